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

/// One party's share of a square-and-scale correlation: a [R, h], b [h], `sq = a ⊙ a`, `ab = a ⊙ b`
/// (b broadcast over the R rows). One opening of `x − a` then serves both `x ⊙ x` and `x ⊙ γ`.
public struct SquareScale: Sendable {
    public var a: [UInt64], b: [UInt64], sq: [UInt64], ab: [UInt64]
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
    /// Deals a square-and-scale correlation for `[rows, h]`. Offline cost: 16 bytes per element to party 1.
    public func squareScale(rows: Int, h: Int) throws {
        let n = rows * h
        let a0 = draw(.client, n), b0 = draw(.client, h), sq0 = draw(.client, n), ab0 = draw(.client, n)
        let a1 = draw(.server, n), b1 = draw(.server, h)
        var corr = [UInt64](repeating: 0, count: 2 * n)
        for i in 0..<n {
            let a = a0[i] &+ a1[i], b = b0[i % h] &+ b1[i % h]
            corr[i] = a &* a &- sq0[i]
            corr[n + i] = a &* b &- ab0[i]
        }
        try emitCorrection(.squareScale, shape: [rows, h], correction: corr)
    }
}

extension DealerStream {
    /// Next record must be `squareScale([rows, h])`.
    public func squareScale(rows: Int, h: Int) throws -> SquareScale {
        let n = rows * h
        let payload = try next(.squareScale, shape: [rows, h], payloadCount: party == .client ? 0 : 2 * n)
        let a = draw(n), b = draw(h)
        if party == .client { return SquareScale(a: a, b: b, sq: draw(n), ab: draw(n)) }
        return SquareScale(a: a, b: b, sq: Array(payload[0..<n]), ab: Array(payload[n...]))
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
