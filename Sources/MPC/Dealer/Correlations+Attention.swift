// The fused 2Quad attention correlation (`Party.quadAttention`).

/// One party's share of a fused 2Quad attention correlation for `B` heads of `[m, n]` scores and `[n, d]`
/// values: the masks `a [B, m, n]` and `b [B, n, d]`, and shares of `aa = a ⊙ a`, `aab = (a ⊙ a)·b`
/// `[B, m, d]` and `t [B, m, n, d]` with `t_ikj = a_ik·b_kj` (the term that lets the product `(e + a)²·V`
/// be formed from the opened `e` without opening `(e + a)²`).
public struct QuadAttention: Sendable {
    public var a: [UInt64], b: [UInt64], aa: [UInt64], aab: [UInt64], t: [UInt64]
}

extension Dealer {
    /// Deals a fused 2Quad attention correlation. Offline cost: 8·B·(m·n + m·d + m·n·d) bytes to party 1.
    public func quadAttention(batch: Int, m: Int, n: Int, d: Int) throws {
        let (sa, sb, sc) = (m * n, n * d, m * d)
        let a0 = draw(.client, batch * sa), b0 = draw(.client, batch * sb)
        let a1 = draw(.server, batch * sa), b1 = draw(.server, batch * sb)
        var aa = [UInt64](repeating: 0, count: batch * sa), aab = [UInt64](), t = [UInt64](repeating: 0, count: batch * sa * d)
        aab.reserveCapacity(batch * sc)
        for h in 0..<batch {
            let b = (0..<sb).map { b0[h * sb + $0] &+ b1[h * sb + $0] }
            for ik in 0..<sa {
                let a = a0[h * sa + ik] &+ a1[h * sa + ik], k = ik % n
                aa[h * sa + ik] = a &* a
                let base = (h * sa + ik) * d
                for j in 0..<d { t[base + j] = a &* b[k * d + j] }
            }
            aab += RingMatmul.multiply(Array(aa[(h * sa)..<((h + 1) * sa)]), b, m: m, k: n, n: d)
        }
        try emitShares(.quadAttention, shape: [batch, m, n, d], [aa, aab, t])
    }
}

extension DealerStream {
    /// Next record must be `quadAttention([batch, m, n, d])`.
    public func quadAttention(batch: Int, m: Int, n: Int, d: Int) throws -> QuadAttention {
        let lengths = [batch * m * n, batch * m * d, batch * m * n * d]
        let payload = try next(.quadAttention, shape: [batch, m, n, d], payloadCount: party == .client ? 0 : lengths.reduce(0, +))
        let a = draw(batch * m * n), b = draw(batch * n * d)
        let parts = shares(lengths: lengths, payload: payload)
        return QuadAttention(a: a, b: b, aa: parts[0], aab: parts[1], t: parts[2])
    }
}

/// One party's part of a key-flag correlation (`Party.multiplyByClientKeys`): its mask (a [G·R·n] on the
/// server, b [G·n] on the client) and its share of a ⊙ b [G·R·n] (b broadcast over each group's R rows).
public struct KeyFlags: Sendable {
    public var mask: [UInt64], product: [UInt64]

    /// The key (index into the G·n flags) of element i of G groups of `rows` rows of n keys.
    @inline(__always) static func key(of i: Int, rows r: Int, n: Int) -> Int { (i / (r * n)) * n + i % n }
}

extension Dealer {
    /// Deals a key-flag correlation for G groups of R rows of n keys. Offline cost: 8 bytes per element to
    /// party 1.
    public func keyFlags(groups g: Int, rows r: Int, n: Int) throws {
        let count = g * r * n
        let b = draw(.client, g * n), a = draw(.server, count)
        try emitShares(.keyFlags, shape: [g, r, n], [(0..<count).map { a[$0] &* b[KeyFlags.key(of: $0, rows: r, n: n)] }])
    }
}

extension DealerStream {
    /// Next record must be `keyFlags([groups, rows, n])`.
    public func keyFlags(groups g: Int, rows r: Int, n: Int) throws -> KeyFlags {
        let count = g * r * n
        let payload = try next(.keyFlags, shape: [g, r, n], payloadCount: party == .client ? 0 : count)
        let mask = draw(party == .client ? g * n : count)
        return KeyFlags(mask: mask, product: shares(1, of: count, payload: payload)[0])
    }
}
