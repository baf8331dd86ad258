import Foundation

// Piecewise polynomials by select-then-compute (SecMoE, 2026), and the shared machinery of the nonlinear
// gadgets: batched comparisons against public thresholds (one round however many thresholds), public
// tables selected by the resulting step bits (local), batched Beaver products (one round for many pairs).
//
// Shapes: x [N] (any shape, flattened), k thresholds → step bits [N, k] (element-major).

/// A public piecewise polynomial: breakpoints `b_1 < ... < b_k` split the line into `k + 1` segments
/// (segment 0 is `x < b_1`, segment `j` is `b_j ≤ x < b_(j+1)`, segment `k` is `x ≥ b_k`), each with a
/// polynomial of degree ≤ 3. Coefficients are stored in the segment-local variable `t = x − center_j`
/// (the midpoint of a bounded segment, the adjacent breakpoint of an unbounded one), which keeps `|t|`
/// small so that fixed-point coefficients lose no precision on segments far from 0.
public struct PiecewisePolynomial: Sendable {
    /// Ascending breakpoints `b_1..b_k`.
    public let breakpoints: [Double]
    /// Segment centers (`k + 1`).
    public let centers: [Double]
    /// Per segment, coefficients of `t^0, t^1, ..., t^degree` in `t = x − centers[j]` (`k + 1` rows).
    public let centered: [[Double]]
    /// Highest degree over the segments (0...3).
    public let degree: Int
    /// Compare at a resolution of 2^−6 on 18 bits (cheaper; inputs within 2^−6 of a breakpoint may use
    /// the neighbouring segment, so only for fits that are continuous to within their error; |x| < 2048)
    /// instead of exactly on 38 bits.
    public var coarseComparisons = false

    /// - Parameters:
    ///   - breakpoints: strictly ascending, at least one.
    ///   - coefficients: `breakpoints.count + 1` rows of coefficients of `x^0, x^1, ...` (ascending powers, in
    ///     `x` itself), degree ≤ 3; rows may differ in length.
    public init(breakpoints: [Double], coefficients: [[Double]]) {
        precondition(!breakpoints.isEmpty && zip(breakpoints, breakpoints.dropFirst()).allSatisfy { $0 < $1 },
                     "breakpoints must be strictly ascending")
        precondition(coefficients.count == breakpoints.count + 1, "need \(breakpoints.count + 1) coefficient rows")
        let degree = coefficients.map { $0.count - 1 }.max()!
        precondition(degree >= 0 && degree <= 3, "degree \(degree) not supported (0...3)")
        let k = breakpoints.count
        let centers = (0...k).map { j -> Double in
            if j == 0 { return breakpoints[0] }
            if j == k { return breakpoints[k - 1] }
            return (breakpoints[j - 1] + breakpoints[j]) / 2
        }
        self.breakpoints = breakpoints
        self.centers = centers
        self.degree = degree
        // Taylor shift: p(x) = Σ a_d x^d = Σ a_d (t + m)^d = Σ_e t^e Σ_{d≥e} a_d C(d,e) m^(d−e).
        self.centered = zip(coefficients, centers).map { a, m in
            taylorShift(a + [Double](repeating: 0, count: degree + 1 - a.count), by: m)
        }
    }

    /// Least-squares fit of `f` by a polynomial of `degree` (2 or 3) on every bounded segment (dense grid
    /// of `samples` points per segment), with the given polynomials on the two unbounded segments, and the
    /// values at the breakpoints pinned (to `f` inside, to `below` and `above` at the two ends): adjacent
    /// pieces agree exactly at every breakpoint, so an input compared coarsely (`coarseComparisons`) that
    /// lands on the neighbouring piece moves by only (slope difference)·2^−6, and the secure result stays
    /// close to the plaintext one (`predict --fixed-point`) whichever piece it took.
    public static func fit(_ f: (Double) -> Double, breakpoints: [Double], degree: Int, below: [Double],
                           above: [Double], samples: Int = 2001) -> PiecewisePolynomial {
        precondition(degree == 2 || degree == 3, "fit: degree 2 or 3")
        func value(_ c: [Double], _ x: Double) -> Double { c.reversed().reduce(0.0) { $0 * x + $1 } }
        var rows = [below]
        let k = breakpoints.count
        for (i, (a, b)) in zip(breakpoints, breakpoints.dropFirst()).enumerated() {
            let m = (a + b) / 2, w = (b - a) / 2
            let fa = i == 0 ? value(below, a) : f(a), fb = i == k - 2 ? value(above, b) : f(b)
            // p(t) = l0 + l1·t + (t² − w²)·(c0 + c1·t): the line through both pinned ends plus a correction
            // that vanishes there, fitted by least squares to the rest.
            let (l0, l1) = ((fa + fb) / 2, (fb - fa) / (2 * w))
            let ts = (0..<samples).map { -w + 2 * w * Double($0) / Double(samples - 1) }
            let basis = ts.map { t in [t * t - w * w, t * (t * t - w * w)].prefix(degree - 1) }
            let c = leastSquares(basis: basis.map(Array.init), ts.map { f($0 + m) - l0 - l1 * $0 })
            let (c0, c1) = (c[0], degree == 3 ? c[1] : 0)
            let centered = [l0 - c0 * w * w, l1 - c1 * w * w, c0, c1].prefix(degree + 1)
            // Back to powers of x (the initializer re-centers; exact in Double up to rounding).
            rows.append(taylorShift(Array(centered), by: -m))
        }
        rows.append(above)
        return PiecewisePolynomial(breakpoints: breakpoints, coefficients: rows)
    }

    /// The segment of `x` (0...k).
    public func segment(_ x: Double) -> Int { breakpoints.reduce(0) { $0 + (x >= $1 ? 1 : 0) } }

    /// Plaintext evaluation (reference for tests).
    public func evaluate(_ x: Double) -> Double {
        let j = segment(x), t = x - centers[j]
        return centered[j].reversed().reduce(0.0) { $0 * t + $1 }
    }
}

/// Coefficients of `q(t) = p(t + m)` from those of `p` (ascending powers).
func taylorShift(_ a: [Double], by m: Double) -> [Double] {
    let n = a.count
    var out = [Double](repeating: 0, count: n)
    for e in 0..<n {
        var s = 0.0
        for d in e..<n { s += a[d] * binomial(d, e) * Foundation.pow(m, Double(d - e)) }
        out[e] = s
    }
    return out
}

func binomial(_ n: Int, _ k: Int) -> Double {
    (0..<k).reduce(1.0) { $0 * Double(n - $1) / Double($1 + 1) }
}

/// Least-squares coefficients of `ys` on the given basis values (`basis[i]` = the basis functions at sample
/// i), by normal equations with Gaussian elimination; fine for a few well-scaled functions.
func leastSquares(basis: [[Double]], _ ys: [Double]) -> [Double] {
    let m = basis.first?.count ?? 0
    var a = [[Double]](repeating: [Double](repeating: 0, count: m + 1), count: m)
    for (p, y) in zip(basis, ys) {
        for r in 0..<m {
            for c in 0..<m { a[r][c] += p[r] * p[c] }
            a[r][m] += p[r] * y
        }
    }
    for c in 0..<m {
        let piv = (c..<m).max { abs(a[$0][c]) < abs(a[$1][c]) }!
        a.swapAt(c, piv)
        for r in 0..<m where r != c {
            let f = a[r][c] / a[c][c]
            for q in c...m { a[r][q] -= f * a[c][q] }
        }
    }
    return (0..<m).map { a[$0][m] / a[$0][$0] }
}

/// Most elements in one `dreluKey` record of a batched comparison (a record is one frame, ≤ 1 GiB).
let comparisonChunk = 1 << 19

/// Record shapes of a batched comparison of `count` elements: `[c]` chunks of at most `comparisonChunk`.
func comparisonChunks(_ count: Int) -> [Int] {
    stride(from: 0, to: Swift.max(count, 1), by: comparisonChunk).map { Swift.min(comparisonChunk, count - $0) }
}

extension Party {
    /// Step bits `s[i, j] = 1{x_i ≥ b_j}` for every element and every public threshold, in ONE round,
    /// with ONE narrow comparison key per element whatever the number of thresholds.
    ///
    /// Steps: `y = x >> shift` (local probabilistic truncation, ±1 ulp of y); open `ŷ = (y + r) mod 2^w`
    /// (`w` = `width` bits, packed two per word when w ≤ 32); for threshold j, `ŷ − (b_j >> shift)` is
    /// the same mask over `y − t_j`, so each party evaluates its DCF key at every `ŷ − t_j` (Boyle et al.
    /// 2021 signed comparison, as `drelu`, on w bits). A DCF key may be evaluated at any number of points:
    /// the evaluations are local and the key alone is pseudorandom, so sharing the mask costs no security.
    /// Records: `comparisonKey([c, w])` per chunk of at most 2^19 elements (`Dealer.stepBits`).
    /// Rounds: 1. Online: w/8 bytes (rounded up to 4 or 8) per element from each party, however many
    /// thresholds. Offline: 8·(3w + 1) bytes per element. Compute: 2(w−1) AES blocks per element and threshold.
    /// Exact when `|y − t_j| < 2^(w−1)`, i.e. `|x| < 2^(w−1+shift)` as a signed ring value (2^23 real for
    /// f = 16, w = 32, shift = 8); with `shift > 0`, inputs within 2^shift ulps of a threshold may fall on
    /// either side. Opened: `ŷ`, uniform in Z_2^w because r is; nothing is learned.
    /// - Returns: shares of integer 0/1, flattened `[N, k]` (element-major).
    func stepBits(_ x: [UInt64], thresholds: [UInt64], shift: Int, width: Int) throws -> [UInt64] {
        let n = x.count, k = thresholds.count
        let keys = try comparisonChunks(n).map { try dealer.comparisonKey(count: $0, width: width) }
        let y = shift == 0 ? x : truncate(ArithmeticShare(RingTensor(shape: [n], data: x)), bits: shift).tensor.data
        let low: UInt64 = width == 64 ? .max : (1 << UInt64(width)) - 1
        var mine = [UInt64](repeating: 0, count: n)
        var off = 0
        for key in keys {
            for q in 0..<key.mask.count { mine[off + q] = (y[off + q] &+ key.mask[q]) & low }
            off += key.mask.count
        }
        let theirs = try exchangeNarrow(mine, width: width)
        let t = thresholds.map { UInt64(bitPattern: Int64(bitPattern: $0) >> Int64(shift)) }
        let top = UInt64(width - 1), one: UInt64 = id == .client ? 1 : 0
        var out = [UInt64](repeating: 0, count: n * k)
        off = 0
        for key in keys {
            let c = key.mask.count
            var points = [UInt64](repeating: 0, count: c * k)
            for q in 0..<c {
                let opened = mine[off + q] &+ theirs[off + q]
                for j in 0..<k { points[q * k + j] = (opened &- t[j]) & low }
            }
            let v = key.dcf.evaluate(party: id, points, pointsPerKey: k)
            for q in 0..<c {
                for j in 0..<k {
                    let u = key.maskMSB[q] &+ v[q * k + j]
                    out[(off + q) * k + j] = (points[q * k + j] >> top) & 1 == 1 ? u : one &- u
                }
            }
            off += c
        }
        return out
    }

    /// One round exchanging values of `width` bits, packed back to back (⌈n·w/64⌉ words), so the wire
    /// carries only the w uniform bits of each value.
    func exchangeNarrow(_ mine: [UInt64], width: Int) throws -> [UInt64] {
        guard width < 64 else { return try peer.exchange(mine) }
        return Party.unpack(try peer.exchange(Party.pack(mine, width: width)), count: mine.count, width: width)
    }

    /// The low `width` bits of each value, as one bit stream in 64-bit words.
    static func pack(_ v: [UInt64], width w: Int) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: (v.count * w + 63) / 64)
        let mask: UInt64 = (1 << UInt64(w)) - 1
        for i in v.indices {
            let bit = i * w, word = bit >> 6, off = UInt64(bit & 63), x = v[i] & mask
            out[word] |= x << off
            if off + UInt64(w) > 64 { out[word + 1] |= x >> (64 - off) }
        }
        return out
    }

    /// Inverse of `pack`.
    static func unpack(_ words: [UInt64], count: Int, width w: Int) -> [UInt64] {
        let mask: UInt64 = (1 << UInt64(w)) - 1
        return (0..<count).map { i in
            let bit = i * w, word = bit >> 6, off = UInt64(bit & 63)
            var x = words[word] >> off
            if off + UInt64(w) > 64 { x |= words[word + 1] << (64 - off) }
            return x & mask
        }
    }

    /// Shares of `table[segment(x_i)]` per element from step bits `[N, k]` and a public table of `k + 1`
    /// ring values: `table[0] + Σ_j s_j·(table[j] − table[j−1])`. Local (bits are integer 0/1 shares).
    func lookup(_ bits: [UInt64], k: Int, table: [UInt64]) -> [UInt64] {
        precondition(table.count == k + 1)
        let n = bits.count / Swift.max(k, 1)
        let delta = (1...k).map { table[$0] &- table[$0 - 1] }
        let base: UInt64 = id == .client ? table[0] : 0
        var out = [UInt64](repeating: base, count: n)
        for i in 0..<n {
            var acc = base
            for j in 0..<k { acc = acc &+ bits[i * k + j] &* delta[j] }
            out[i] = acc
        }
        return out
    }

    /// Raw Beaver products of several pairs (each pair same length) in ONE round: one `triple([Σ len])`.
    /// Rounds: 1. Online 16 bytes per product from each party; offline 8 per product to party 1.
    func mulRawMany(_ pairs: [([UInt64], [UInt64])]) throws -> [[UInt64]] {
        Party.split(try mulRawFlat(pairs).tensor.data, counts: pairs.map { $0.0.count })
    }

    /// The products of `mulRawMany`, concatenated.
    func mulRawFlat(_ pairs: [([UInt64], [UInt64])]) throws -> ArithmeticShare {
        let total = pairs.reduce(0) { $0 + $1.0.count }
        return try mulRaw(ArithmeticShare(RingTensor(shape: [total], data: pairs.flatMap { $0.0 })),
                          ArithmeticShare(RingTensor(shape: [total], data: pairs.flatMap { $0.1 })))
    }

    /// `flat` cut into consecutive pieces of `counts` elements.
    static func split(_ flat: [UInt64], counts: [Int]) -> [[UInt64]] {
        var off = 0
        return counts.map { c in defer { off += c }; return Array(flat[off..<off + c]) }
    }

    /// Fixed-point products of several pairs in one round (`mulRawMany`, then truncation by `fracBits`).
    func mulMany(_ pairs: [([UInt64], [UInt64])]) throws -> [[UInt64]] {
        try mulRawMany(pairs).map { truncate(ArithmeticShare(RingTensor(shape: [$0.count], data: $0)),
                                             bits: fixedPoint.fracBits).tensor.data }
    }

    /// `mulMany` with `truncateExact`: 2 rounds, one `triple([Σ len])` and one `bitProduct([Σ len])`.
    func mulManyExact(_ pairs: [([UInt64], [UInt64])]) throws -> [[UInt64]] {
        Party.split(try truncateExact(try mulRawFlat(pairs), bits: fixedPoint.fracBits).tensor.data,
                    counts: pairs.map { $0.0.count })
    }

    /// Shift and width of a piecewise polynomial's segment comparisons: exact on 38 bits (|x| < 2^37 ulps,
    /// 2^21 real for f = 16), or, with `coarseComparisons`, at a resolution of 2^−6 on 18 bits (|x − b_j| < 2^11
    /// = 2048 real, far beyond transformer activations; breakpoints should be multiples of 2^−6).
    static func segmentComparison(_ p: PiecewisePolynomial, _ fp: FixedPoint) -> (shift: Int, width: Int) {
        (p.coarseComparisons ? Swift.max(0, fp.fracBits - 6) : 0, segmentWidth(p))
    }
    static func segmentWidth(_ p: PiecewisePolynomial) -> Int { p.coarseComparisons ? 18 : 38 }

    func addConst(_ x: [UInt64], _ c: UInt64) -> [UInt64] { id == .client ? x.map { $0 &+ c } : x }

    /// A piecewise polynomial of a secret, by select-then-compute (SecMoE, 2026).
    ///
    /// Steps: (1) compare `x` with all `k` breakpoints in one round with one comparison key per element
    /// (`stepBits`: 38 bits exact, or 18 bits at a resolution of 2^−6 with `coarseComparisons`); the step
    /// bits' adjacent differences are the one-hot segment selector, so the segment's center and
    /// coefficients are `table[0] + Σ_j s_j·Δtable_j` (public tables: local); (2) `t = x − center` (local)
    /// and one polynomial of degree D with secret coefficients: D = 1: `c0 + c1·t` (1 mul round);
    /// D = 2: `c0 + (c1 + c2·t)·t` (2 rounds); D = 3: round A `t², u = c3·t` and `c1·t` with t opened once
    /// (`squareAndProducts`), round B `(c2 + u)·t² + c1·t` (2 rounds). Every product is truncated exactly
    /// (`truncateExact`, one more round each time): a failed local truncation here would reach the output
    /// directly. Records (`Dealer.piecewisePolynomial`): the comparison keys, then `triple([N])`,
    /// `bitProduct([N])` (D = 1), that twice (D = 2), or `squareFan([N, 2])`, `bitProduct([2N])`, `triple([N])`,
    /// `bitProduct([N])` (D = 3).
    ///
    /// Rounds: 1 (D = 0), 3 (D = 1), 5 (D = 2, 3). Online bytes per element, each party: w/8 + 8·{0,2,4,5}
    /// + {0,1,2,3}/8 for D = 0...3 (w = 38 or 18 comparison bits), whatever k. Offline per element:
    /// 8·(3(w − 1) + 4) + 8·{0,1,2,4} + 8·{0,1,2,3}. Compute: k DCF evaluations of w − 1 levels per element. Opened: the comparison-masked input and
    /// Beaver-masked values only, all uniform; neither party learns the segment.
    /// Error: the approximation error of the polynomials, plus fixed-point rounding of the coefficients
    /// (2^−(f+1)·Σ|t|^d) and ±1 ulp per truncation. Range: any `x` with |x − b_j| < 2^21 (2^11 with coarse comparisons) when the outer
    /// segments have degree ≤ 1 (higher powers of a large `t` wrap, and are then multiplied by an exact 0
    /// coefficient); inner segments must be short enough that `|c_d·t^d|` stays below 2^20.
    public func piecewisePolynomial(_ x: ArithmeticShare, _ p: PiecewisePolynomial) throws -> ArithmeticShare {
        let fp = fixedPoint, k = p.breakpoints.count
        let (shift, width) = Party.segmentComparison(p, fp)
        let bits = try stepBits(x.tensor.data, thresholds: p.breakpoints.map(fp.encode), shift: shift, width: width)
        let center = lookup(bits, k: k, table: p.centers.map(fp.encode))
        let c = (0...p.degree).map { d in lookup(bits, k: k, table: p.centered.map { fp.encode($0[d]) }) }
        let t = zip(x.tensor.data, center).map { $0 &- $1 }
        let raw: [UInt64]
        switch p.degree {
        case 0: return ArithmeticShare(RingTensor(shape: x.shape, data: c[0]))
        case 1: raw = try mulRawMany([(c[1], t)])[0]
        case 2:
            let u = try mulManyExact([(c[2], t)])[0]
            raw = try mulRawMany([(zip(c[1], u).map { $0 &+ $1 }, t)])[0]
        default:
            // Round A: t², c3·t and c1·t with t opened once; t² and c3·t truncated exactly, c1·t kept raw.
            let (square, fan) = try squareAndProducts(t, [c[3], c[1]])
            let r = Party.split(try truncateExact(ArithmeticShare(RingTensor(shape: [2 * t.count], data: square + fan[0])),
                                                  bits: fp.fracBits).tensor.data, counts: [t.count, t.count])
            // Round B: (c2 + c3·t)·t², plus c1·t.
            let v = try mulRawMany([(zip(c[2], r[1]).map { $0 &+ $1 }, r[0])])[0]
            raw = zip(v, fan[1]).map { $0 &+ $1 }
        }
        let tail = try truncateExact(ArithmeticShare(RingTensor(shape: x.shape, data: raw)), bits: fp.fracBits)
        return add(tail, ArithmeticShare(RingTensor(shape: x.shape, data: c[0])))
    }

    /// `piecewisePolynomial` from breakpoints and per-segment coefficients of `x^0, x^1, ...` (ascending,
    /// degree ≤ 3, `breakpoints.count + 1` rows). Same cost as the `PiecewisePolynomial` overload.
    public func piecewisePolynomial(_ x: ArithmeticShare, breakpoints: [Double], coefficients: [[Double]]) throws -> ArithmeticShare {
        try piecewisePolynomial(x, PiecewisePolynomial(breakpoints: breakpoints, coefficients: coefficients))
    }
}

extension Dealer {
    /// Deals the records of `Party.stepBits` for `count` elements (any number of thresholds).
    func stepBits(count: Int, width: Int) throws {
        for c in comparisonChunks(count) { try comparisonKey(count: c, width: width) }
    }

    /// Deals the records of `Party.piecewisePolynomial` for a secret of `shape`.
    public func piecewisePolynomial(shape: [Int], _ p: PiecewisePolynomial) throws {
        let n = RingTensor.count(of: shape)
        try stepBits(count: n, width: Party.segmentWidth(p))
        switch p.degree {
        case 0: break
        case 1: try triple(shape: [n]); try bitProduct(count: n)
        case 2: try triple(shape: [n]); try bitProduct(count: n); try triple(shape: [n]); try bitProduct(count: n)
        default: try squareFan(count: n, partners: 2); try bitProduct(count: 2 * n); try triple(shape: [n]); try bitProduct(count: n)
        }
    }

    /// Deals the records of `Party.piecewisePolynomial(_:breakpoints:coefficients:)`.
    public func piecewisePolynomial(shape: [Int], breakpoints: [Double], coefficients: [[Double]]) throws {
        try piecewisePolynomial(shape: shape, PiecewisePolynomial(breakpoints: breakpoints, coefficients: coefficients))
    }
}
