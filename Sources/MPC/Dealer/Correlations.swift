// The correlation types, their dealer generators and their decoders (the online evaluators live in
// Protocols/). Generator and decoder draw from the shared PRGs in exactly the same order.

/// One party's share of an elementwise Beaver triple: a, b uniform, c = a ⊙ b (mod 2^64).
public struct BeaverTriple: Sendable {
    public var a: RingTensor, b: RingTensor, c: RingTensor
}

/// One party's share of a batch of matrix triples: A [batch, m, k], B [batch, k, n], C = A·B [batch, m, n].
public struct MatmulTriple: Sendable {
    public var a: RingTensor, b: RingTensor, c: RingTensor
}

/// One party's share of a square pair: a uniform, c = a ⊙ a.
public struct SquarePair: Sendable {
    public var a: RingTensor, c: RingTensor
}

/// One party's share of a square-and-fan correlation for N elements and J partners: a [N] (x's mask), b [J·N]
/// (partner j's mask at `j·N + i`), and c [(1 + J)·N]: `a ⊙ a` first, then `a ⊙ b_j` for each j.
public struct SquareFan: Sendable {
    public var a: [UInt64], b: [UInt64], c: [UInt64]
}

/// One party's share of a LayerNorm correlation: a [R, h], b [h], c [R], and, over [R, h] (b broadcast over
/// rows, c over columns), `sq = a ⊙ a`, `ab = a ⊙ b`, `cb = c ⊙ b`, `ca = c ⊙ a`, `cab = c ⊙ a ⊙ b`. One
/// opening of `x − a` and `γ − b` gives `x ⊙ x` and `x ⊙ γ`; one of `s − c` (a value per row) then gives
/// `(x ⊙ γ)·s` without opening the [R, h] product.
public struct NormScale: Sendable {
    public var a: [UInt64], b: [UInt64], c: [UInt64], sq: [UInt64], ab: [UInt64], cb: [UInt64], ca: [UInt64], cab: [UInt64]
}

extension Dealer {
    /// Deals an elementwise triple of `shape`. Offline cost: 8 bytes per element to party 1.
    public func triple(shape: [Int]) throws {
        let n = RingTensor.count(of: shape)
        let a0 = draw(.client, n), b0 = draw(.client, n), c0 = draw(.client, n)
        let a1 = draw(.server, n), b1 = draw(.server, n)
        var c1 = [UInt64](repeating: 0, count: n)
        for i in 0..<n { c1[i] = (a0[i] &+ a1[i]) &* (b0[i] &+ b1[i]) &- c0[i] }
        try emitCorrection(.triple, shape: shape, correction: c1)
    }

    /// Deals `batch` matrix triples for `[m,k]·[k,n]`. Offline cost: 8·batch·m·n bytes to party 1.
    public func matmulTriple(batch: Int = 1, m: Int, k: Int, n: Int) throws {
        let (sa, sb, sc) = (m * k, k * n, m * n)
        let a0 = draw(.client, batch * sa), b0 = draw(.client, batch * sb), c0 = draw(.client, batch * sc)
        let a1 = draw(.server, batch * sa), b1 = draw(.server, batch * sb)
        var c1 = [UInt64](repeating: 0, count: batch * sc)
        for t in 0..<batch {
            let a = zip(a0[t * sa..<(t + 1) * sa], a1[t * sa..<(t + 1) * sa]).map { $0 &+ $1 }
            let b = zip(b0[t * sb..<(t + 1) * sb], b1[t * sb..<(t + 1) * sb]).map { $0 &+ $1 }
            let c = RingMatmul.multiply(a, b, m: m, k: k, n: n)
            for i in 0..<sc { c1[t * sc + i] = c[i] &- c0[t * sc + i] }
        }
        try emitCorrection(.matmulTriple, shape: [batch, m, k, n], correction: c1)
    }

    /// Deals a square-and-fan correlation (`Party.squareAndProducts`) for `count` elements and `partners`
    /// partners. Offline cost: 8·(1 + partners) bytes per element to party 1.
    public func squareFan(count n: Int, partners j: Int) throws {
        let a0 = draw(.client, n), b0 = draw(.client, j * n), c0 = draw(.client, (j + 1) * n)
        let a1 = draw(.server, n), b1 = draw(.server, j * n)
        var c1 = [UInt64](repeating: 0, count: (j + 1) * n)
        for i in 0..<n {
            let a = a0[i] &+ a1[i]
            c1[i] = a &* a &- c0[i]
            for p in 0..<j { c1[(p + 1) * n + i] = a &* (b0[p * n + i] &+ b1[p * n + i]) &- c0[(p + 1) * n + i] }
        }
        try emitCorrection(.squareFan, shape: [n, j], correction: c1)
    }

    /// Deals a square pair of `shape`. Offline cost: 8 bytes per element to party 1.
    public func squarePair(shape: [Int]) throws {
        let n = RingTensor.count(of: shape)
        let a0 = draw(.client, n), c0 = draw(.client, n)
        let a1 = draw(.server, n)
        var c1 = [UInt64](repeating: 0, count: n)
        for i in 0..<n { let a = a0[i] &+ a1[i]; c1[i] = a &* a &- c0[i] }
        try emitCorrection(.squarePair, shape: shape, correction: c1)
    }
}

extension Dealer {
    /// Deals a LayerNorm correlation for `[rows, h]`. Offline cost: 40 bytes per element to party 1.
    /// - Parameter gainHandle: the session mask of a server-owned gain (`maskWeight(k: 1, n: h)`), used as
    ///   b (a `normScaleGain` record); nil: a fresh b (a `normScale` record).
    public func normScale(rows: Int, h: Int, gainHandle: Int? = nil) throws {
        let n = rows * h
        let b: [UInt64], a0 = draw(.client, n), c0: [UInt64], a1: [UInt64], c1: [UInt64]
        if let gainHandle {
            precondition(gainHandle >= 0 && gainHandle < weightMasks.count && weightMasks[gainHandle].k * weightMasks[gainHandle].n == h,
                         "normScale: handle \(gainHandle) is not a [1, \(h)] gain mask")
            c0 = draw(.client, rows)
            (a1, c1) = (draw(.server, n), draw(.server, rows))
            b = weightMasks[gainHandle].rowMajor()
        } else {
            let b0 = draw(.client, h)
            c0 = draw(.client, rows)
            let b1: [UInt64]
            (a1, b1, c1) = (draw(.server, n), draw(.server, h), draw(.server, rows))
            b = zip(b0, b1).map { $0 &+ $1 }
        }
        var values = [[UInt64]](repeating: [UInt64](repeating: 0, count: n), count: 5)  // sq, ab, cb, ca, cab
        for i in 0..<n {
            let a = a0[i] &+ a1[i], bj = b[i % h], c = c0[i / h] &+ c1[i / h]
            (values[0][i], values[1][i], values[2][i], values[3][i], values[4][i]) = (a &* a, a &* bj, c &* bj, c &* a, c &* a &* bj)
        }
        try emitShares(gainHandle == nil ? .normScale : .normScaleGain, shape: [rows, h], values)
    }
}

extension DealerStream {
    /// Next record must be `normScale([rows, h])`, or with `gainMask` (this party's share of a server-owned
    /// gain's session mask: the mask on the server, zeros on the client) `normScaleGain([rows, h])`.
    public func normScale(rows: Int, h: Int, gainMask: [UInt64]? = nil) throws -> NormScale {
        let n = rows * h
        let kind: CorrelationKind = gainMask == nil ? .normScale : .normScaleGain
        let payload = try next(kind, shape: [rows, h], payloadCount: party == .client ? 0 : 5 * n)
        let a = draw(n), b = gainMask ?? draw(h), c = draw(rows)
        let parts = shares(5, of: n, payload: payload)
        return NormScale(a: a, b: b, c: c, sq: parts[0], ab: parts[1], cb: parts[2], ca: parts[3], cab: parts[4])
    }

    /// Next record must be `triple(shape)`.
    public func triple(shape: [Int]) throws -> BeaverTriple {
        let n = RingTensor.count(of: shape)
        let payload = try next(.triple, shape: shape, payloadCount: party == .client ? 0 : n)
        let a = draw(n), b = draw(n)
        let c = party == .client ? draw(n) : payload
        return BeaverTriple(a: RingTensor(shape: shape, data: a), b: RingTensor(shape: shape, data: b),
                            c: RingTensor(shape: shape, data: c))
    }

    /// Next record must be `matmulTriple([batch, m, k, n])`.
    public func matmulTriple(batch: Int = 1, m: Int, k: Int, n: Int) throws -> MatmulTriple {
        let payload = try next(.matmulTriple, shape: [batch, m, k, n], payloadCount: party == .client ? 0 : batch * m * n)
        let a = draw(batch * m * k), b = draw(batch * k * n)
        let c = party == .client ? draw(batch * m * n) : payload
        return MatmulTriple(a: RingTensor(shape: [batch, m, k], data: a), b: RingTensor(shape: [batch, k, n], data: b),
                            c: RingTensor(shape: [batch, m, n], data: c))
    }

    /// Next record must be `squareFan([count, partners])`.
    public func squareFan(count n: Int, partners j: Int) throws -> SquareFan {
        let payload = try next(.squareFan, shape: [n, j], payloadCount: party == .client ? 0 : (j + 1) * n)
        let a = draw(n), b = draw(j * n)
        return SquareFan(a: a, b: b, c: party == .client ? draw((j + 1) * n) : payload)
    }

    /// Next record must be `squarePair(shape)`.
    public func squarePair(shape: [Int]) throws -> SquarePair {
        let n = RingTensor.count(of: shape)
        let payload = try next(.squarePair, shape: shape, payloadCount: party == .client ? 0 : n)
        let a = draw(n)
        let c = party == .client ? draw(n) : payload
        return SquarePair(a: RingTensor(shape: shape, data: a), c: RingTensor(shape: shape, data: c))
    }
}

/// One party's share of a bit-product correlation (`Party.truncateExact`): its own private random bits
/// (α on party 0, β on party 1; each a word holding 0 or 1) and its share of α·β in the ring.
public struct BitProduct: Sendable {
    public var bits: [UInt64], product: [UInt64]
}

extension Dealer {
    /// Deals a bit-product correlation for `count` elements. Offline cost: 8 bytes per element to party 1.
    public func bitProduct(count n: Int) throws {
        let alpha = draw(.client, n), p0 = draw(.client, n), beta = draw(.server, n)
        var corr = [UInt64](repeating: 0, count: n)
        for i in 0..<n { corr[i] = ((alpha[i] & 1) & (beta[i] & 1)) &- p0[i] }
        try emitCorrection(.bitProduct, shape: [n], correction: corr)
    }
}

extension DealerStream {
    /// Next record must be `bitProduct([count])`.
    public func bitProduct(count n: Int) throws -> BitProduct {
        let payload = try next(.bitProduct, shape: [n], payloadCount: party == .client ? 0 : n)
        let bits = draw(n).map { $0 & 1 }
        return BitProduct(bits: bits, product: party == .client ? draw(n) : payload)
    }
}

/// One party's share of a 2Quad softmax correlation: a [R, n], c [R], and over [R, n] (c broadcast over
/// columns) `aa = a ⊙ a`, `ca = c ⊙ a`, `caa = c ⊙ a ⊙ a`.
public struct QuadScale: Sendable {
    public var a: [UInt64], c: [UInt64], aa: [UInt64], ca: [UInt64], caa: [UInt64]
}

extension Dealer {
    /// Deals a 2Quad softmax correlation for `[rows, n]`. Offline cost: 24 bytes per element to party 1.
    public func quadScale(rows: Int, n width: Int) throws {
        let n = rows * width
        let a0 = draw(.client, n), c0 = draw(.client, rows)
        let a1 = draw(.server, n), c1 = draw(.server, rows)
        var values = [[UInt64]](repeating: [UInt64](repeating: 0, count: n), count: 3)  // aa, ca, caa
        for i in 0..<n {
            let a = a0[i] &+ a1[i], c = c0[i / width] &+ c1[i / width]
            (values[0][i], values[1][i], values[2][i]) = (a &* a, c &* a, c &* a &* a)
        }
        try emitShares(.quadScale, shape: [rows, width], values)
    }
}

extension DealerStream {
    /// Next record must be `quadScale([rows, n])`.
    public func quadScale(rows: Int, n width: Int) throws -> QuadScale {
        let n = rows * width
        let payload = try next(.quadScale, shape: [rows, width], payloadCount: party == .client ? 0 : 3 * n)
        let a = draw(n), c = draw(rows)
        let parts = shares(3, of: n, payload: payload)
        return QuadScale(a: a, c: c, aa: parts[0], ca: parts[1], caa: parts[2])
    }
}

extension Dealer {
    /// Emits a record of secret-shared values (each `values[q]` of one length n): party 0 draws its shares
    /// from its PRG, party 1 receives `value − share` (8·n bytes per value). `DealerStream.shares` reads them.
    func emitShares(_ kind: CorrelationKind, shape: [Int], _ values: [[UInt64]]) throws {
        var corr = [UInt64]()
        corr.reserveCapacity(values.reduce(0) { $0 + $1.count })
        for v in values {
            let own = draw(.client, v.count)
            for i in v.indices { corr.append(v[i] &- own[i]) }
        }
        try emitCorrection(kind, shape: shape, correction: corr)
    }
}

extension DealerStream {
    /// This party's shares of `count` values of length n dealt by `Dealer.emitShares` (after the record's
    /// other draws): party 0 draws them, party 1 reads them from the payload.
    func shares(_ count: Int, of n: Int, payload: [UInt64]) -> [[UInt64]] {
        shares(lengths: [Int](repeating: n, count: count), payload: payload)
    }

    /// As above for values of different lengths, in order.
    func shares(lengths: [Int], payload: [UInt64]) -> [[UInt64]] {
        if party == .client { return lengths.map { draw($0) } }
        var offset = 0
        return lengths.map { n in defer { offset += n }; return Array(payload[offset..<(offset + n)]) }
    }
}
