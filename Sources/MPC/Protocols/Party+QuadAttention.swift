// MPCFormer 2Quad attention with the probabilities never opened: `softmax(x)·V` in one fused protocol.

extension Party {
    /// Fractional bits the shifted scores keep for their square in `quadAttention` (at most f): the
    /// unnormalised context `(x + c)²·V` is at scale 2^(2·12 + f) and must stay below 2^62.
    public static let quadAttentionBits = 12

    /// MPCFormer 2Quad attention `P·V` with `P = (x + c)² / Σ (x + c)²` over the last dimension of the scores
    /// `x [B, m, n]` (masked keys 0) and values `v [B, n, d]`, without opening P.
    ///
    /// Steps: `y = (x + c)/2^k` (local; y keeps min(f, 12) fractional bits); one round opens
    /// `e = y − a` and `g = V − b` together; with the record's shares of a⊙a, (a⊙a)·b and a_ik·b_kj, both
    /// `q = y²` (for the row sums) and the unnormalised context `U = q·V = Σ_k (e² + 2e·a + a²)_ik (g + b)_kj`
    /// are local; `U` is truncated exactly to f bits (1 round); `r = 1/mean(q)` (6 rounds); `ctx = U·r/n_valid`
    /// (`mulRows`, 2 rounds). Records: `quadAttention([B, m, n, d])`, `bitProduct([B·m·d])`, the reciprocal's,
    /// `mulRows`. Compared with `quadSoftmax` then `matmul(p, v)`, the [m, n] matrix P is never opened
    /// (opened instead: U, [m, d]); it pays off when d < n, at 8·m·n·d offline bytes per head.
    /// Input range: |x + c| ≤ 60 and Σ_k (x + c)²·|V_kj| < 2^(38−f) per row (f = 16: 2^22, e.g. n = 64 keys,
    /// |x + c| ≤ 40, |V| ≤ 40). Error: the scores' rounding to 2^−12 (relative ≈ 2^−11/|x + c| on q) and the reciprocal's:
    /// measured 6.5e-5·max|V| absolute against Double (tested bound 1e-4·max|V|). Rounds: 10. Online bytes per head, each party:
    /// 8·(m·n + n·d) + 8·(m·d + m) + m·d/4 + 50·m. Opened: masked values only; nothing is learned.
    /// - Parameters:
    ///   - keys: public key mask (`n` entries, `false` = padding): those keys are dropped from the scores and
    ///     values before anything else (so costs follow the valid count, as `Dealer.quadAttention` deals them).
    public func quadAttention(_ x: ArithmeticShare, _ v: ArithmeticShare, keys: [Bool]? = nil, c: Double = 5) throws -> ArithmeticShare {
        precondition(x.shape.count == 3 && v.shape.count == 3 && x.shape[0] == v.shape[0] && x.shape[2] == v.shape[1],
                     "quadAttention: scores \(x.shape) and values \(v.shape) do not fit")
        if let keys, keys.contains(false) {
            precondition(keys.count == x.shape[2], "quadAttention: \(keys.count) key flags for \(x.shape[2]) keys")
            let kept = keys.indices.filter { keys[$0] }
            let (batch, m, n, d) = (x.shape[0], x.shape[1], x.shape[2], v.shape[2])
            let xs = (0..<(batch * m)).flatMap { row in kept.map { x.tensor.data[row * n + $0] } }
            var vs = [UInt64]()
            vs.reserveCapacity(batch * kept.count * d)
            for h in 0..<batch {
                for k in kept { vs += v.tensor.data[((h * n + k) * d)..<((h * n + k + 1) * d)] }
            }
            return try quadAttention(ArithmeticShare(RingTensor(shape: [batch, m, kept.count], data: xs)),
                                     ArithmeticShare(RingTensor(shape: [batch, kept.count, d], data: vs)), c: c)
        }
        let (batch, m, n, d) = (x.shape[0], x.shape[1], x.shape[2], v.shape[2])
        let (sa, sb, sc) = (m * n, n * d, m * d)
        let fy = Swift.min(fixedPoint.fracBits, Party.quadAttentionBits), count = batch * sa, k = fixedPoint.fracBits - fy
        let shifted = truncate(addPublic(x, RingTensor(shape: x.shape, repeating: fixedPoint.encode(c))), bits: k).tensor.data
        let t = try dealer.quadAttention(batch: batch, m: m, n: n, d: d)
        let opened = try revealToBoth([ArithmeticShare(RingTensor(shape: [count], data: zip(shifted, t.a).map { $0 &- $1 })),
                                       ArithmeticShare(RingTensor(shape: [batch * sb], data: zip(v.tensor.data, t.b).map { $0 &- $1 }))])
        let (e, g) = (opened[0].data, opened[1].data)
        let isClient = id == .client
        // y² = e² + 2e·a + a² (scale 2fy): the public part e² (client), and the shared part 2e·a + a².
        let sq = e.map { $0 &* $0 }, shared = squareShares(opened: e, a: t.a, aa: t.aa, publicPart: false)
        let q = truncate(ArithmeticShare(RingTensor(shape: [count], data: isClient ? zip(sq, shared).map { $0 &+ $1 } : shared)),
                         bits: 2 * fy - fixedPoint.fracBits).tensor.data
        // U = y²·V (scale 2fy + f) = e²·(b + [client] g) + (2e·a + a²)·g + Σ_k 2e_ik·(a_ik b_kj) + (a²)·b.
        var u = t.aab
        for h in 0..<batch {
            let rows = h * sa..<((h + 1) * sa), cols = h * sb..<((h + 1) * sb)
            let right = isClient ? zip(t.b[cols], g[cols]).map { $0 &+ $1 } : Array(t.b[cols])
            let p1 = RingMatmul.multiply(Array(sq[rows]), right, m: m, k: n, n: d)
            let p2 = RingMatmul.multiply(Array(shared[rows]), Array(g[cols]), m: m, k: n, n: d)
            for i in 0..<m {
                var acc = [UInt64](repeating: 0, count: d)
                for kk in 0..<n {
                    let w = 2 &* e[h * sa + i * n + kk], base = (h * sa + i * n + kk) * d
                    for j in 0..<d { acc[j] = acc[j] &+ w &* t.t[base + j] }
                }
                for j in 0..<d {
                    let o = h * sc + i * d + j
                    u[o] = u[o] &+ p1[i * d + j] &+ p2[i * d + j] &+ acc[j]
                }
            }
        }
        let context = try truncateExact(ArithmeticShare(RingTensor(shape: [batch * sc], data: u)), bits: 2 * fy).tensor.data
        let mean = divide(rowSums(q, n: n), by: n)
        let r = try reciprocal(ArithmeticShare(RingTensor(shape: [batch * m], data: mean))).tensor.data
        return ArithmeticShare(RingTensor(shape: [batch, m, d], data: divide(try mulRows(context, r), by: n)))
    }
}

extension Dealer {
    /// Deals the records of `Party.quadAttention` for scores `[B, m, n]` and values `[B, n, d]` (n: the
    /// valid keys, after a public key mask).
    public func quadAttention(scores shape: [Int], headDim d: Int, keys: [Bool]? = nil) throws {
        let (batch, m, n) = (shape[0], shape[1], keys.map { $0.filter { $0 }.count } ?? shape[2])
        try quadAttention(batch: batch, m: m, n: n, d: d)
        try bitProduct(count: batch * m * d)
        try reciprocal(shape: [batch * m])
        try mulRows(rows: batch * m, width: d)
    }
}
