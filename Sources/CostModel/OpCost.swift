import MPC

/// Cost of a stretch of a secure computation, as the protocols define it (DESIGN §5): online bytes of both
/// parties (both directions), rounds, bytes on the critical direction of each round (what a link of finite
/// bandwidth serialises), and the local work that dominates compute time.
public struct Cost: Sendable, Equatable, Codable {
    /// Online bytes sent by the client plus those sent by the server.
    public var bytes = 0
    /// Sequential communication steps.
    public var rounds = 0
    /// Σ over rounds of the bytes the busier direction carries in that round.
    public var wireBytes = 0
    /// Ring multiply-adds of the matrix products, per party (the parties work in parallel).
    public var macs = 0.0
    /// DCF levels evaluated (one AES-based PRG step each), per party.
    public var dcfLevels = 0.0
    /// Multiply-adds of table lookups (`lookupRows`: the server's one-hot-sized product with the table
    /// mask; memory-bound, so it has its own coefficient).
    public var tableMACs = 0.0
    /// Ring words touched by elementwise work (openings, Beaver recombination), per party.
    public var words = 0.0
    /// Plaintext floating-point multiply-adds the client does alone on its own text (a public prefix:
    /// `SecureBertShape.publicLayers`), on the query's critical path.
    public var clientMACs = 0.0

    public init(bytes: Int = 0, rounds: Int = 0, wireBytes: Int = 0, macs: Double = 0, dcfLevels: Double = 0, words: Double = 0,
                tableMACs: Double = 0, clientMACs: Double = 0) {
        self.clientMACs = clientMACs
        self.bytes = bytes
        self.rounds = rounds
        self.wireBytes = wireBytes
        self.macs = macs
        self.dcfLevels = dcfLevels
        self.words = words
        self.tableMACs = tableMACs
    }

    enum CodingKeys: String, CodingKey {
        case bytes = "online_bytes", rounds, wireBytes = "wire_bytes", macs, dcfLevels = "dcf_levels", words, tableMACs = "table_macs"
        case clientMACs = "client_macs"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bytes = try c.decode(Int.self, forKey: .bytes)
        rounds = try c.decode(Int.self, forKey: .rounds)
        wireBytes = try c.decode(Int.self, forKey: .wireBytes)
        macs = try c.decode(Double.self, forKey: .macs)
        dcfLevels = try c.decode(Double.self, forKey: .dcfLevels)
        words = try c.decode(Double.self, forKey: .words)
        tableMACs = try c.decode(Double.self, forKey: .tableMACs)
        clientMACs = try c.decodeIfPresent(Double.self, forKey: .clientMACs) ?? 0  // absent before public layers
    }

    public static func + (a: Cost, b: Cost) -> Cost {
        Cost(bytes: a.bytes + b.bytes, rounds: a.rounds + b.rounds, wireBytes: a.wireBytes + b.wireBytes,
             macs: a.macs + b.macs, dcfLevels: a.dcfLevels + b.dcfLevels, words: a.words + b.words, tableMACs: a.tableMACs + b.tableMACs,
             clientMACs: a.clientMACs + b.clientMACs)
    }
    public static func += (a: inout Cost, b: Cost) { a = a + b }
    public static func * (k: Int, a: Cost) -> Cost {
        Cost(bytes: k * a.bytes, rounds: k * a.rounds, wireBytes: k * a.wireBytes, macs: Double(k) * a.macs,
             dcfLevels: Double(k) * a.dcfLevels, words: Double(k) * a.words, tableMACs: Double(k) * a.tableMACs,
             clientMACs: Double(k) * a.clientMACs)
    }
}

/// The cost of every protocol the secure transformer uses, from its message sizes (the `Party` methods
/// document them; `CostModelTests` checks these formulas against the runtime's counters exactly).
public enum Ops {
    /// Both parties exchange `words` each in one round.
    static func exchange(_ words: Int) -> Cost { Cost(bytes: 16 * words, rounds: 1, wireBytes: 8 * words, words: Double(2 * words)) }
    /// One party sends `words` in one round.
    static func oneWay(_ words: Int) -> Cost { Cost(bytes: 8 * words, rounds: 1, wireBytes: 8 * words, words: Double(words)) }

    /// One party sends `count` 32-bit words, two to a 64-bit word, in one round (a narrow product's opening).
    static func oneWayNarrow(_ count: Int) -> Cost { oneWay((count + 1) / 2) }
    /// Both parties exchange `count` 32-bit words each in one round.
    static func exchangeNarrow(_ count: Int) -> Cost { exchange((count + 1) / 2) }

    /// `matmulWeight`: x [m, k] · server weight [k, n]; the client sends its masked activations (as 32-bit
    /// words when `narrow`: the product runs on Z_2^32).
    public static func matmulWeight(m: Int, k: Int, n: Int, narrow: Bool = false) -> Cost {
        (narrow ? oneWayNarrow(m * k) : oneWay(m * k)) + Cost(macs: Double(m * k * n)) + truncateExact(m * n)
    }
    /// `lookupRows`: m ids into a [v, h] table (one-hot times the masked table).
    public static func lookupRows(m: Int, v: Int, h: Int) -> Cost { oneWay(m * v) + Cost(tableMACs: Double(m * v * h)) }
    /// Beaver `matmulRaw` of `batch` products [m, k]·[k, n] (no truncation).
    public static func matmulRaw(batch: Int, m: Int, k: Int, n: Int, narrow: Bool = false) -> Cost {
        let opened = batch * (m * k + k * n)
        return (narrow ? exchangeNarrow(opened) : exchange(opened)) + Cost(macs: Double(3 * batch * m * k * n))
    }
    /// Beaver `matmul` of `batch` products [m, k]·[k, n], truncated exactly (on Z_2^32 when `narrow`).
    public static func matmul(batch: Int, m: Int, k: Int, n: Int, narrow: Bool = false) -> Cost {
        matmulRaw(batch: batch, m: m, k: k, n: n, narrow: narrow) + truncateExact(batch * m * n)
    }
    /// Elementwise Beaver product (`mulRaw`/`mul`, also `select`) of n elements.
    public static func mul(_ n: Int) -> Cost { exchange(2 * n) + Cost(words: Double(3 * n)) }
    /// `square` of n elements.
    public static func square(_ n: Int) -> Cost { exchange(n) + Cost(words: Double(2 * n)) }
    /// `squareAndProducts` of n elements with `partners` partners: x opened once for all the products.
    public static func squareFan(_ n: Int, partners j: Int) -> Cost { exchange((1 + j) * n) + Cost(words: Double((2 + 3 * j) * n)) }
    /// `stepBits`: n elements against `thresholds` public values on a `width`-bit comparison key.
    public static func stepBits(_ n: Int, width: Int, thresholds: Int) -> Cost {
        exchange((n * width + 63) / 64) + Cost(dcfLevels: Double(n * thresholds * (width - 1)))
    }
    /// 63-bit `drelu` of n elements.
    public static func drelu(_ n: Int) -> Cost { exchange(n) + Cost(dcfLevels: Double(n * 63)) }
    /// `truncateExact` of n elements: one bit each way per element.
    public static func truncateExact(_ n: Int) -> Cost { exchange((n + 63) / 64) + Cost(words: Double(2 * n)) }
    /// `piecewisePolynomial` of degree 3 (select-then-compute) with `breakpoints` on coarse 18-bit comparisons.
    public static func cubicSpline(_ n: Int, breakpoints: Int, width: Int = 18) -> Cost {
        stepBits(n, width: width, thresholds: breakpoints) + squareFan(n, partners: 2) + truncateExact(2 * n) + mul(n) + truncateExact(n)
    }
    /// Octave normalisation of `reciprocal` and `inverseSqrt`.
    static func octave(_ n: Int) -> Cost {
        let (lo, hi) = Approximations.octaves
        return stepBits(n, width: 32, thresholds: hi - lo) + mul(n)
    }
    public static func reciprocal(_ n: Int) -> Cost { octave(n) + mul(n) + mul(n) + mul(2 * n) + mul(n) }
    public static func inverseSqrt(_ n: Int) -> Cost { octave(n) + mul(3 * n) + mul(n) + mul(3 * n) + mul(n) }
    /// `mulRows`: each of `rows` rows of width w times one secret per row.
    public static func mulRows(rows: Int, width: Int) -> Cost { matmul(batch: rows, m: width, k: 1, n: 1) }
    /// Narrow tournament max over the last dimension n of `rows` rows (softmax).
    public static func maxNarrow(rows: Int, n: Int) -> Cost {
        var c = Cost(), cnt = n
        while cnt > 1 {
            let pairs = cnt / 2
            c += stepBits(rows * pairs, width: 20, thresholds: 1) + mul(rows * pairs)
            cnt = (cnt + 1) / 2
        }
        return c
    }
    /// Exact softmax over n of `rows` rows: narrow max, exp, row sums, reciprocal, row products.
    public static func softmax(rows: Int, n: Int) -> Cost {
        maxNarrow(rows: rows, n: n) + cubicSpline(rows * n, breakpoints: Approximations.exp.breakpoints.count)
            + reciprocal(rows) + mulRows(rows: rows, width: n)
    }
    /// Fused 2Quad attention (`quadAttention`) of `batch` heads: scores [m, n] (n valid keys), values [n, d].
    public static func quadAttention(batch: Int, m: Int, n: Int, d: Int) -> Cost {
        exchange(batch * (m * n + n * d)) + Cost(macs: Double(3 * batch * m * n * d), words: Double(batch * (4 * m * n + m * n * d)))
            + truncateExact(batch * m * d) + reciprocal(batch * m) + mulRows(rows: batch * m, width: d)
    }
    /// MPCFormer 2Quad softmax (`Party.quadSoftmax`).
    public static func quadSoftmax(rows: Int, n: Int) -> Cost {
        square(rows * n) + reciprocal(rows) + exchange(rows) + Cost(words: Double(4 * rows * n)) + truncateExact(rows * n)
    }
    /// `multiplyByClientKeys` of `count` scores by `keys` private key flags: the server sends a word per
    /// score, the client one per key, in the same round.
    public static func clientKeys(count: Int, keys: Int) -> Cost {
        Cost(bytes: 8 * (count + keys), rounds: 1, wireBytes: 8 * Swift.max(count, keys), words: Double(3 * count + keys))
    }
    /// LayerNorm over h of `rows` rows with secret β and a server-owned γ masked once per session (a model's
    /// own LayerNorm; a secretly selected member's γ would open h more words per call).
    public static func layerNorm(rows: Int, h: Int) -> Cost {
        exchange(rows * h) + Cost(words: Double(3 * rows * h)) + inverseSqrt(rows) + exchange(rows)
            + Cost(words: Double(6 * rows * h)) + truncateExact(rows * h)
    }
    public static func gelu(_ n: Int) -> Cost { cubicSpline(n, breakpoints: Approximations.gelu.breakpoints.count) }
    public static func tanh(_ n: Int) -> Cost { cubicSpline(n, breakpoints: Approximations.tanh.breakpoints.count) }
    public static func quadGelu(_ n: Int, narrow: Bool = false) -> Cost {
        narrow ? exchangeNarrow(n) + Cost(words: Double(2 * n)) + truncateExact(n) : square(n)
    }
    public static func relu(_ n: Int) -> Cost { drelu(n) + mul(n) }
    /// Secret argmax (one-hot) over the last dimension n of `rows` rows.
    public static func argmax(rows: Int, n: Int) -> Cost {
        var c = Cost(), cnt = n, width = 1
        while cnt > 1 {
            let pairs = cnt / 2
            c += drelu(rows * pairs) + matmulRaw(batch: rows * pairs, m: 1, k: 1, n: 1 + 2 * width)
            cnt = (cnt + 1) / 2
            width *= 2
        }
        return c
    }
    /// Opening n values to one party.
    public static func reveal(_ n: Int) -> Cost { oneWay(n) }
}
