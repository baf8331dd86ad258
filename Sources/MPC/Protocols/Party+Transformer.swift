import Foundation

// Transformer layers built from the nonlinear gadgets: softmax (exact-style and MPCFormer 2Quad) and
// LayerNorm, over the last dimension. Shapes: x [R..., n]; "rows" are the R leading elements.

extension Party {
    /// Public additive offset given to masked entries before the max (their exp is then exactly 0).
    static let maskOffset = -1024.0

    /// Repeats each of `rows` values `n` times (a per-row value broadcast over the last dimension).
    func broadcastRows(_ v: [UInt64], n: Int) -> [UInt64] { v.flatMap { [UInt64](repeating: $0, count: n) } }

    /// Row sums over the last dimension `n`. Local.
    func rowSums(_ x: [UInt64], n: Int) -> [UInt64] {
        (0..<(x.count / Swift.max(n, 1))).map { r in x[(r * n)..<((r + 1) * n)].reduce(0, &+) }
    }

    /// Divides by a public positive integer `d` locally: multiply by `round(2^(f+6)/d)`, truncate f+6 bits
    /// (relative error ≤ 2^−(f+7)·d, ±1 ulp; raw magnitude |x|·2^(f+6)/d must stay far below 2^63).
    func divide(_ x: [UInt64], by d: Int) -> [UInt64] {
        let extra = 6, k = (Double(1 << (fixedPoint.fracBits + extra)) / Double(d)).rounded()
        let t = ArithmeticShare(RingTensor(shape: [x.count], data: x.map { $0 &* UInt64(k) }))
        return truncate(t, bits: fixedPoint.fracBits + extra).tensor.data
    }

    /// Softmax over the last dimension with max subtraction and an optional padding mask.
    ///
    /// `mask` (public) has `n` entries (applied to every row) or one per element; `false` marks padding.
    /// Steps: masked entries get −1024 (public, local); `m = max` per row (tournament, 2·⌈log2 n⌉ rounds);
    /// `e = exp(x − m)` (3 rounds; masked entries are below −14 so exactly 0); `s = Σ e` (local, ≥ 1 − 6e-4
    /// since the max contributes exp(0)); `r = reciprocal(s)` (6 rounds); `p = e·r` (1 round, `r` opened
    /// once per row). The max is `narrow` (2^−6 resolution, which softmax's shift invariance absorbs).
    /// Input range: |x| ≤ 400 (masked, max-subtracted entries stay inside exp's range) and n ≤ 4096
    /// (s < 2^13). Error: ≤ 1e-3 absolute per probability for |x| ≤ 20 (measured ≤ 6e-4).
    /// Rounds: 2⌈log2 n⌉ + 13. Online bytes per element, each party: ≈ 2.5 + 16 (max) + 66.6 (exp) + 8.1
    /// (product) + 108/n (reciprocal, row opening). Offline ≈ 190 (max) + 496 (exp) + 24 per element plus
    /// ≈ 830 per row. Opened: masked values only; nothing is learned (not even which entry is the max).
    public func softmax(_ x: ArithmeticShare, mask: [Bool]? = nil) throws -> ArithmeticShare {
        let n = x.shape.last!, count = x.tensor.count, rows = count / n
        var data = x.tensor.data
        if let mask {
            precondition(mask.count == n || mask.count == count, "mask has \(mask.count) entries, need \(n) or \(count)")
            let off = fixedPoint.encode(Party.maskOffset)
            if id == .client { for i in 0..<count where !mask[mask.count == n ? i % n : i] { data[i] = data[i] &+ off } }
        }
        let xm = ArithmeticShare(RingTensor(shape: x.shape, data: data))
        let m = try max(xm, narrow: true)
        let d = zip(data, broadcastRows(m.tensor.data, n: n)).map { $0 &- $1 }
        let e = try exp(ArithmeticShare(RingTensor(shape: [count], data: d))).tensor.data
        let s = rowSums(e, n: n)
        let r = try reciprocal(ArithmeticShare(RingTensor(shape: [rows], data: s))).tensor.data
        let p = try mulRows(e, r)
        return ArithmeticShare(RingTensor(shape: x.shape, data: p))
    }

    /// MPCFormer "2Quad" softmax: `(x + c)² / Σ (x + c)²` over the last dimension, masked entries 0.
    ///
    /// Steps: `q = (x + c)²` (1 round, opens `e = x + c − a`); the denominator is rescaled to the row mean
    /// `D = Σq / n_valid` (local, public n_valid) so that the reciprocal works in its accurate range
    /// whatever n; `r = 1/D` (6 rounds); `p = q·r / n_valid`: one round opens `r − c` (a value per row) and,
    /// with the record's shares of c, c·a and c·a², `q·r = (r − c)·q + c·(e² + 2e·a + a²)` is local, so the
    /// [rows, n] matrix q is never opened; then `truncateExact` (1 round) and the division (local).
    /// Records: `quadScale([rows, n])`, the reciprocal's, `bitProduct([rows·n])`.
    /// Input range: |x + c| ≤ 60 and D ≥ 2^−10 (not all entries of a row at −c). Error: 2.6e-4 absolute
    /// measured against the same formula in Double (tested bound 1e-3). Rounds: 9. Online bytes per element,
    /// each party: 8 + 1/8 + 328/n. Offline 32 per element plus ≈ 3080·22 per row. Opened: masked values only.
    /// Padding that the server must not see is dropped first by `multiplyByClientKeys` (then c = 0 here).
    public func quadSoftmax(_ x: ArithmeticShare, mask: [Bool]? = nil, c: Double = 5) throws -> ArithmeticShare {
        let n = x.shape.last!, count = x.tensor.count, rows = count / n
        let shifted = addPublic(x, RingTensor(shape: x.shape, repeating: fixedPoint.encode(c))).tensor.data
        let t = try dealer.quadScale(rows: rows, n: n)
        let e = try revealToBoth(ArithmeticShare(RingTensor(shape: [count], data: zip(shifted, t.a).map { $0 &- $1 }))).data
        let raw = squareShares(opened: e, a: t.a, aa: t.aa)
        var q = truncate(ArithmeticShare(RingTensor(shape: [count], data: raw)), bits: fixedPoint.fracBits).tensor.data
        let rowScale = { (r: [UInt64]) throws -> [UInt64] in
            let opened = try self.revealToBoth(ArithmeticShare(RingTensor(shape: [rows], data: zip(r, t.c).map { $0 &- $1 }))).data
            var y = [UInt64](repeating: 0, count: count)
            for i in 0..<count {
                let row = i / n
                y[i] = opened[row] &* raw[i] &+ e[i] &* e[i] &* t.c[row] &+ 2 &* e[i] &* t.ca[i] &+ t.caa[i]
            }
            return try self.truncateExact(ArithmeticShare(RingTensor(shape: [count], data: y)), bits: 2 * self.fixedPoint.fracBits).tensor.data
        }
        var valid = [Int](repeating: n, count: rows)
        var masked = [Bool](repeating: false, count: count)
        if let mask {
            precondition(mask.count == n || mask.count == count, "mask has \(mask.count) entries, need \(n) or \(count)")
            for i in 0..<count where !mask[mask.count == n ? i % n : i] { q[i] = 0; masked[i] = true; valid[i / n] -= 1 }
        }
        let sums = rowSums(q, n: n)
        let mean = (0..<rows).map { divide([sums[$0]], by: Swift.max(valid[$0], 1))[0] }
        let r = try reciprocal(ArithmeticShare(RingTensor(shape: [rows], data: mean))).tensor.data
        var p = try rowScale(r)
        for i in 0..<count where masked[i] { p[i] = 0 }
        for row in 0..<rows {
            let d = divide(Array(p[(row * n)..<((row + 1) * n)]), by: Swift.max(valid[row], 1))
            for j in 0..<n { p[row * n + j] = d[j] }
        }
        return ArithmeticShare(RingTensor(shape: x.shape, data: p))
    }

    /// `(x + c) ⊙ k` for 0/1 key flags k that only the client holds (its padding: which of the n keys of
    /// each of G stacked sequences are real tokens), so that 2Quad attention drops padded keys without
    /// either party learning the length and without a Beaver product.
    ///
    /// `x` is `[…, n]` with its rows in G equal groups (group g uses `flags[g·n ..< (g+1)·n]`). With the
    /// server's share x₁, one `keyFlags` record (server: a; client: b; shares of a⊙b) and one round in which
    /// the server sends `u = x₁ − a` (one word per element) and the client sends `v = k − b` (one word per
    /// key): the client sets `y₀ = k⊙(x₀ + c + u) + (ab)₀`, the server `y₁ = a⊙v + (ab)₁`, and
    /// `y₀ + y₁ = k⊙(x + c)` exactly, so a padded key's entry is an exact 0.
    /// Rounds: 1. Online bytes: 8 per element from the server, 8 per key and group from the client. Offline:
    /// 8 per element to party 1. Opened: `u` to the client (masked by the server's uniform a) and `v` to
    /// the server (masked by the client's uniform b); nothing is learned.
    /// - Parameters:
    ///   - flags: the client's flags, `G·n` of them (`true` = real key); nil on the server.
    ///   - groups: G, known to both.
    public func multiplyByClientKeys(_ x: ArithmeticShare, flags: [Bool]?, groups: Int, c: Double = 0) throws -> ArithmeticShare {
        let n = x.shape.last!, count = x.tensor.count
        precondition(groups >= 1 && count % (groups * n) == 0, "multiplyByClientKeys: \(count) elements in \(groups) groups of \(n) keys")
        let per = count / (groups * n)
        let r = try dealer.keyFlags(groups: groups, rows: per, n: n)
        var y = r.product
        if id == .client {
            guard let flags else { preconditionFailure("the client holds the key flags but passed nil") }
            precondition(flags.count == groups * n, "multiplyByClientKeys: \(flags.count) flags for \(groups)·\(n) keys")
            let k = flags.map { $0 ? UInt64(1) : 0 }
            let u = try peer.exchange(zip(k, r.mask).map { $0 &- $1 }, receiving: count)
            let shift = fixedPoint.encode(c), x0 = x.tensor.data
            for i in 0..<count where k[KeyFlags.key(of: i, rows: per, n: n)] == 1 { y[i] = y[i] &+ x0[i] &+ shift &+ u[i] }
        } else {
            let v = try peer.exchange(zip(x.tensor.data, r.mask).map { $0 &- $1 }, receiving: groups * n)
            for i in 0..<count { y[i] = y[i] &+ r.mask[i] &* v[KeyFlags.key(of: i, rows: per, n: n)] }
        }
        return ArithmeticShare(RingTensor(shape: x.shape, data: y))
    }

    /// LayerNorm over the last dimension with secret-shared `gamma`, `beta` (`[H]`, server-owned weights).
    ///
    /// Steps (one `normScale([R, H])` record): `μ = Σx/H` (local), `d = x − μ`; one round opens `e = d − a`
    /// and `f = γ − b` and gives `d²` (truncated) and `d·γ` (kept at scale 2^2f); `v = Σd²/H + eps` (local);
    /// `s = inverseSqrt(v)` (6 rounds); one round opens `s − c` (a value per row), and with the record's
    /// shares of c·b, c·a and c·a·b, `(d·γ)·s = (s − c)·(dγ) + c·(e·f + e·b + a·f + a·b)` is local: the
    /// [R, H] product is never opened. Then `truncateExact` by 2f (1 round) and `+ β`.
    /// Input range: variance + eps in [2^−10, 2^13), |x| ≤ 2^10. Error: measured 5.5e-4 absolute (tested bound 2e-2) with |γ| ≤ 2
    /// and row variances from 4e-2 to 200 (dominated by the fixed-point rounding of the variance: its
    /// relative error is ≈ 2^−16/var, so rows with variance below ≈ 1e-2 lose accuracy; use f > 16 there). Rounds: 9.
    /// Online bytes per element, each party: 8 + 1/8 + 108/H. Offline 40 per element plus ≈ 824 per row.
    /// Opened: masked values only (`d − a`, `γ − b`, `s − c`, the truncation's masked bits); nothing is learned.
    ///
    /// `preShift` k ≠ 0 normalises `d/2^k` instead of `d` (LayerNorm is scale-invariant; eps becomes eps/4^k).
    /// k < 0 is for rows of small variance (the embedding's): `2^|k|·x` is exact, so the mean's rounding and
    /// the variance's relative rounding error shrink by 2^|k| and 4^|k|. k > 0:
    /// the product `d²`, the largest value this layer truncates locally, shrinks by 4^k, and so does its
    /// truncation failure rate, at the price of k bits of resolution of `d`. The variance range
    /// becomes [4^k·2^−10, 4^k·2^13): use it where rows have variance well above that (encoder layers, not
    /// the embedding's LayerNorm).
    public func layerNorm(_ x: ArithmeticShare, gamma: ArithmeticShare, beta: ArithmeticShare, eps: Double = 1e-5,
                          preShift: Int = 0) throws -> ArithmeticShare {
        let h = x.shape.last!
        precondition(gamma.shape == [h] && beta.shape == [h], "gamma/beta must be [\(h)]")
        return try layerNorm(x, beta: beta, eps: eps, preShift: preShift) { d, rows in
            let t = try dealer.normScale(rows: rows, h: h)
            // Round 1: e = d − a, f = γ − b.
            let opened = try revealToBoth([ArithmeticShare(RingTensor(shape: [d.count], data: zip(d, t.a).map { $0 &- $1 })),
                                           ArithmeticShare(RingTensor(shape: [h], data: zip(gamma.tensor.data, t.b).map { $0 &- $1 }))])
            return (t, opened[0].data, opened[1].data)
        }
    }

    /// LayerNorm as above with a server-owned gain masked once per session (`loadWeight(γ, k: 1, n: H,
    /// keepMask: true)`: the client holds `f = γ − b`, the server γ and b). The per-query round opens only
    /// `e = d − a`: one `normScaleGain([R, H])` record, whose b is the gain's session mask. Online bytes
    /// per element, each party: 8 + 1/8 + 100/H (8·H fewer per call than the secret-γ version); rounds 9.
    /// Opened: `d − a`, `s − c` and masked bits per query, `γ − b` once per session (setup); nothing is learned.
    public func layerNorm(_ x: ArithmeticShare, gain: MaskedWeight, beta: ArithmeticShare, eps: Double = 1e-5,
                          preShift: Int = 0) throws -> ArithmeticShare {
        let h = x.shape.last!
        precondition(gain.k == 1 && gain.n == h && beta.shape == [h], "gain must be [1, \(h)] and beta [\(h)]")
        let mask: [UInt64]
        if id == .server {
            guard let b = gain.mask else { throw ProtocolError.shapeMismatch("layerNorm: the gain was loaded without keepMask") }
            mask = b.rowMajor()
        } else {
            mask = [UInt64](repeating: 0, count: h)
        }
        let f = id == .server ? zip(gain.values.rowMajor(), mask).map { $0 &- $1 } : gain.values.rowMajor()
        return try layerNorm(x, beta: beta, eps: eps, preShift: preShift) { d, rows in
            let t = try dealer.normScale(rows: rows, h: h, gainMask: mask)
            let e = try revealToBoth(ArithmeticShare(RingTensor(shape: [d.count], data: zip(d, t.a).map { $0 &- $1 }))).data
            return (t, e, f)
        }
    }

    /// The LayerNorm of both gain kinds, after `open(d, rows)` has read the record and returned it with
    /// the opened `e = d − a` and `f = γ − b`.
    private func layerNorm(_ x: ArithmeticShare, beta: ArithmeticShare, eps: Double, preShift: Int,
                           open: ([UInt64], Int) throws -> (NormScale, [UInt64], [UInt64])) throws -> ArithmeticShare {
        let h = x.shape.last!
        precondition(preShift > -8 && preShift < fixedPoint.fracBits, "preShift \(preShift) out of range")
        let rows = x.tensor.count / h, n = x.tensor.count
        var d: [UInt64]
        if preShift >= 0 {
            d = centeredRows(x.tensor.data, h: h)
            if preShift > 0 { d = truncate(ArithmeticShare(RingTensor(shape: [d.count], data: d)), bits: preShift).tensor.data }
        } else {
            // 2^k·x is exact; only the mean's division rounds, at 2^−k of the unscaled resolution.
            let up = UInt64(1) << UInt64(-preShift)
            d = centeredRows(x.tensor.data.map { $0 &* up }, h: h)
        }
        let (t, e, f) = try open(d, rows)
        let isClient = id == .client
        var dg = t.ab
        for i in 0..<n {
            let j = i % h
            dg[i] = dg[i] &+ e[i] &* t.b[j] &+ t.a[i] &* f[j]
            if isClient { dg[i] = dg[i] &+ e[i] &* f[j] }
        }
        let sq = truncate(ArithmeticShare(RingTensor(shape: [n], data: squareShares(opened: e, a: t.a, aa: t.sq))),
                          bits: fixedPoint.fracBits).tensor.data
        let epsilon = fixedPoint.encode(eps * Foundation.pow(4, Double(-preShift)))
        let s = try inverseSqrt(ArithmeticShare(RingTensor(shape: [rows], data: addConst(divide(rowSums(sq, n: h), by: h), epsilon)))).tensor.data
        // Round: s − c per row, then (dγ)·s locally at scale 2^3f.
        let opened = try revealToBoth(ArithmeticShare(RingTensor(shape: [rows], data: zip(s, t.c).map { $0 &- $1 }))).data
        var y = [UInt64](repeating: 0, count: n)
        for i in 0..<n {
            let r = i / h, j = i % h
            y[i] = opened[r] &* dg[i] &+ e[i] &* f[j] &* t.c[r] &+ e[i] &* t.cb[i] &+ f[j] &* t.ca[i] &+ t.cab[i]
        }
        let scaled = try truncateExact(ArithmeticShare(RingTensor(shape: [n], data: y)), bits: 2 * fixedPoint.fracBits).tensor.data
        let b = (0..<rows).flatMap { _ in beta.tensor.data }
        return ArithmeticShare(RingTensor(shape: x.shape, data: zip(scaled, b).map { $0 &+ $1 }))
    }

    /// Fixed-point `x[r, :] · s[r]` for `x [rows, w]` and one value per row (`matmul`: a batch of
    /// `[w,1]·[1,1]` matrix triples, so each `s[r]` is opened once, 8·(rows·w + rows) bytes per party;
    /// then the exact truncation).
    func mulRows(_ x: [UInt64], _ s: [UInt64]) throws -> [UInt64] {
        let rows = s.count, w = x.count / Swift.max(rows, 1)
        return try matmul(ArithmeticShare(RingTensor(shape: [rows, w, 1], data: x)),
                          ArithmeticShare(RingTensor(shape: [rows, 1, 1], data: s))).tensor.data
    }

    /// LayerNorm with public `gamma`, `beta` (`[H]` reals): as the secret version, but `γ` multiplies locally
    /// after the normalisation. Rounds: 9 (`d²` alone in the first). Online bytes per element, each party:
    /// 8 + 8 + 100/H. Offline 8 + 8 per element plus 824 per row.
    public func layerNorm(_ x: ArithmeticShare, gamma: [Double], beta: [Double], eps: Double = 1e-5) throws -> ArithmeticShare {
        let h = x.shape.last!, fp = fixedPoint
        precondition(gamma.count == h && beta.count == h, "gamma/beta must have \(h) entries")
        let rows = x.tensor.count / h
        let d = centeredRows(x.tensor.data, h: h)
        let sq = try square(ArithmeticShare(RingTensor(shape: [d.count], data: d))).tensor.data
        let s = try inverseSqrt(ArithmeticShare(RingTensor(shape: [rows], data: addConst(divide(rowSums(sq, n: h), by: h), fp.encode(eps)))))
        let y = try mulRows(d, s.tensor.data)
        let g = RingTensor(shape: [x.tensor.count], data: (0..<x.tensor.count).map { fp.encode(gamma[$0 % h]) })
        let yg = truncate(ArithmeticShare(RingTensor(shape: [y.count], data: y) * g), bits: fp.fracBits)
        let b = RingTensor(shape: x.shape, data: (0..<x.tensor.count).map { fp.encode(beta[$0 % h]) })
        return addPublic(ArithmeticShare(yg.tensor.reshaped(x.shape)), b)
    }

    /// `x − mean(x)` per row of `h`. Local.
    func centeredRows(_ x: [UInt64], h: Int) -> [UInt64] {
        let mu = divide(rowSums(x, n: h), by: h)
        return zip(x, broadcastRows(mu, n: h)).map { $0 &- $1 }
    }
}

extension Dealer {
    /// Deals the records of `Party.mulRows`.
    func mulRows(rows: Int, width: Int) throws {
        try matmulTriple(batch: rows, m: width, k: 1, n: 1)
        try bitProduct(count: rows * width)
    }

    /// Deals the records of `Party.softmax` for `shape` (the mask does not change the records).
    public func softmax(shape: [Int]) throws {
        let n = shape.last!, count = RingTensor.count(of: shape)
        try max(shape: shape, narrow: true)
        try exp(shape: [count])
        try reciprocal(shape: [count / n])
        try mulRows(rows: count / n, width: n)
    }

    /// Deals the record of `Party.multiplyByClientKeys` for `shape` in `groups` groups.
    public func multiplyByClientKeys(shape: [Int], groups: Int) throws {
        let n = shape.last!
        try keyFlags(groups: groups, rows: RingTensor.count(of: shape) / (groups * n), n: n)
    }

    /// Deals the records of `Party.quadSoftmax`.
    public func quadSoftmax(shape: [Int]) throws {
        let n = shape.last!, count = RingTensor.count(of: shape)
        try quadScale(rows: count / n, n: n)
        try reciprocal(shape: [count / n])
        try bitProduct(count: count)
    }

    /// Deals the records of `Party.layerNorm` with secret `gamma`/`beta` (with `gainHandle`: a server-owned
    /// gain masked once per session, that mask's handle).
    public func layerNormSecret(shape: [Int], gainHandle: Int? = nil) throws {
        let h = shape.last!, count = RingTensor.count(of: shape)
        try normScale(rows: count / h, h: h, gainHandle: gainHandle)
        try inverseSqrt(shape: [count / h])
        try bitProduct(count: count)
    }

    /// Deals the records of `Party.layerNorm` with public `gamma`/`beta`.
    public func layerNormPublic(shape: [Int]) throws {
        let h = shape.last!, count = RingTensor.count(of: shape)
        try squarePair(shape: [count])
        try inverseSqrt(shape: [count / h])
        try mulRows(rows: count / h, width: h)
    }
}
