// Beaver multiplication, squaring, matrix products and truncation.

extension Party {
    /// Probabilistic local truncation (SecureML, Mohassel–Zhang 2017, §4.1): divides the secret by `2^bits`.
    ///
    /// Party 0 computes `x0 >> bits` and party 1 `-((-x1) >> bits)` (arithmetic shifts).
    /// Rounds: 0. Bytes: 0. Nothing opened.
    /// Error: the result is `floor(x / 2^bits)` or that plus one (±1 ulp), except with probability about
    /// `|x| / 2^63` per element (`x` the ring value before the shift), when it is off by about `2^(64-bits)`.
    /// For a product with `fracBits = 16` whose real value is below 16 in magnitude (|x| < 2^20 after the
    /// shift), this is below 2^-27 per element.
    /// Used where values are small or few; products whose failure would reach a model's output directly
    /// (matrix products, server-weight products, spline products) use `truncateExact`.
    public func truncate(_ x: ArithmeticShare, bits: Int) -> ArithmeticShare {
        precondition(bits >= 0 && bits < 64)
        if TruncationTrace.prefix != nil { TruncationTrace.record(id, bits: bits, x.tensor.data) }
        let s = UInt64(bits)
        var out = x.tensor
        if id == .client {
            out.data.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] = UInt64(bitPattern: Int64(bitPattern: p[i]) >> s) }
            }
        } else {
            out.data.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count { p[i] = 0 &- UInt64(bitPattern: Int64(bitPattern: 0 &- p[i]) >> s) }
            }
        }
        return ArithmeticShare(out)
    }

    /// Exact truncation: divides the secret by `2^bits` with no large-error failure, for |x| < 2^62.
    ///
    /// Local truncation (`truncate`) goes wrong by about 2^(64−bits) when the two shares wrap around the
    /// ring, with probability |x|/2^64 per element: rare, but a MiniLM-L6 query truncates millions of
    /// values, and one failure can change its answer. Here the wrap is computed instead. Party 0 holds
    /// `a = x0 + 2^62` and computes `a >> bits`, party 1 holds `b = −x1` and computes `−(b >> bits)`, as in
    /// SecureML, so that a secret 0 stays exactly 0. As integers `a − b = x + 2^62 − 2^64·w`, and because
    /// x + 2^62 lies in [0, 2^63) the wrap w is 1 exactly when a's top bit is 0 and b's is 1: the product of
    /// two private bits, which a `bitProduct` record (private random bits α, β, shares of α·β) gives in one
    /// round of one bit per element each way (party 0 sends `(1 − top(a)) ⊕ α`, party 1 `top(b) ⊕ β`). Then
    /// `y = (a >> bits) − (b >> bits) + 2^(64−bits)·w − 2^(62−bits)`.
    ///
    /// With `ringBits: 32` the input is read on Z_2^32 (only the shares' low 32 bits count: a narrow
    /// product's, `matmulWeight(_:_:narrow:)`), the same argument runs with 2^30 and bit 31, and the
    /// result is a share on Z_2^64 again: truncation and the way back to the wide ring in one step.
    ///
    /// Rounds: 1. Online bytes: ⌈n/64⌉·8 from each party. Offline: 8 per element to party 1. Opened:
    /// masked bits, uniform (α and β are the dealer's, each known to one party only). Error:
    /// `floor(x / 2^bits)` or one more (±1 ulp), never more, for |x| < 2^(ringBits−2); a secret 0 gives
    /// exactly 0. Beyond that bound the result is wrong by a multiple of 2^(ringBits−bits).
    public func truncateExact(_ x: ArithmeticShare, bits: Int, ringBits: Int = 64) throws -> ArithmeticShare {
        precondition(ringBits == 64 || ringBits == 32, "truncateExact: ring Z_2^\(ringBits)")
        precondition(bits > 0 && bits < ringBits - 2)
        let n = x.tensor.count
        let r = try dealer.bitProduct(count: n)
        let isClient = id == .client
        let k = UInt64(ringBits), low: UInt64 = ringBits == 64 ? ~0 : (1 << k) - 1, lift: UInt64 = 1 << (k - 2)
        var held = x.tensor.data  // a = x0 + 2^(k−2) on party 0, b = −x1 on party 1, both mod 2^k
        var masked = [UInt64](repeating: 0, count: n), mine = [UInt64](repeating: 0, count: n)
        for i in 0..<n {
            held[i] = (isClient ? held[i] &+ lift : 0 &- held[i]) & low
            let top = held[i] >> (k - 1)
            mine[i] = isClient ? 1 ^ top : top
            masked[i] = mine[i] ^ r.bits[i]
        }
        let theirs = try exchangeNarrow(masked, width: 1)
        let s = UInt64(bits), high = UInt64(1) << (k - s), offset: UInt64 = isClient ? 1 << (k - 2 - s) : 0
        var out = [UInt64](repeating: 0, count: n)
        for i in 0..<n {
            // e = party 0's masked bit, g = party 1's. With u (party 0's bit) = e ⊕ α and v = g ⊕ β:
            // u·v = u·g + (1−2g)·(e·β + (1−2e)·αβ); party 0 holds u, party 1 holds β.
            let e = isClient ? masked[i] : theirs[i], g = isClient ? theirs[i] : masked[i]
            var w = g == 0 ? r.product[i] : 0 &- r.product[i]
            if e == 1 { w = 0 &- w }
            if isClient { w = w &+ mine[i] * g } else if e == 1 { w = w &+ (g == 0 ? r.bits[i] : 0 &- r.bits[i]) }
            let shifted = held[i] >> s
            out[i] = (isClient ? shifted &- offset : 0 &- shifted) &+ w &* high
        }
        return ArithmeticShare(RingTensor(shape: x.shape, data: out))
    }

    /// Elementwise product `x ⊙ y` in the ring (Beaver, no rescaling: the result has `2·fracBits`).
    ///
    /// Consumes one `triple(shape)` record. Steps: open `e = x - a` and `f = y - b` together; party i sets
    /// `z_i = c_i + e ⊙ b_i + f ⊙ a_i (+ e ⊙ f on party 0)`.
    /// Rounds: 1. Bytes per element: 16 from each party. Opened: `e`, `f` to both; they are uniform because
    /// `a`, `b` are uniform and neither party knows both of their shares, so nothing is learned.
    public func mulRaw(_ x: ArithmeticShare, _ y: ArithmeticShare) throws -> ArithmeticShare {
        precondition(x.shape == y.shape, "mul shapes \(x.shape) vs \(y.shape)")
        let t = try dealer.triple(shape: x.shape)
        let n = x.tensor.count
        let mine = (x.tensor - t.a).data + (y.tensor - t.b).data
        let theirs = try peer.exchange(mine)
        var z = t.c.data
        let isClient = id == .client
        for i in 0..<n {
            z[i] = Party.beaverShare(c: z[i], e: mine[i] &+ theirs[i], f: mine[n + i] &+ theirs[n + i], a: t.a.data[i], b: t.b.data[i],
                                     publicPart: isClient)
        }
        return ArithmeticShare(RingTensor(shape: x.shape, data: z))
    }

    /// One party's share of `x·y` from the opened `e = x − a`, `f = y − b` and its shares of a, b and
    /// `c = a·b`: `c + e·b + f·a`, plus the public `e·f` on party 0 (`publicPart`).
    @inline(__always)
    static func beaverShare(c: UInt64, e: UInt64, f: UInt64, a: UInt64, b: UInt64, publicPart: Bool) -> UInt64 {
        let z = c &+ e &* b &+ f &* a
        return publicPart ? z &+ e &* f : z
    }

    /// Fixed-point elementwise product: `mulRaw` then `truncate(fracBits)`.
    ///
    /// Rounds: 1. Bytes per element: 16 from each party. Opened: as `mulRaw`. Error: ±1 ulp (see `truncate`
    /// for the failure probability, which depends on the magnitude of the product).
    public func mul(_ x: ArithmeticShare, _ y: ArithmeticShare) throws -> ArithmeticShare {
        truncate(try mulRaw(x, y), bits: fixedPoint.fracBits)
    }

    /// Fixed-point elementwise square `x ⊙ x`.
    ///
    /// Consumes one `squarePair(shape)` record. Steps: open `e = x - a`; party i sets
    /// `z_i = c_i + 2 e ⊙ a_i (+ e ⊙ e on party 0)`, then truncates.
    /// Rounds: 1. Bytes per element: 8 from each party. Opened: `e` to both, uniform (masked by `a`).
    /// Error: ±1 ulp (see `truncate`).
    public func square(_ x: ArithmeticShare) throws -> ArithmeticShare {
        let p = try dealer.squarePair(shape: x.shape)
        let e = try revealToBoth(ArithmeticShare(x.tensor - p.a)).data
        let z = squareShares(opened: e, a: p.a.data, aa: p.c.data)
        return truncate(ArithmeticShare(RingTensor(shape: x.shape, data: z)), bits: fixedPoint.fracBits)
    }

    /// `x ⊙ x` and `x ⊙ y_j` for each partner `y_j` (untruncated, elementwise), in one round: x's mask is
    /// shared by all the products (one `squareFan([N, J])` record), so x is opened once.
    ///
    /// Steps: open `e = x − a` and every `f_j = y_j − b_j` together; party i sets `x² = c_0 + 2e⊙a (+ e⊙e on
    /// party 0)` and `x·y_j = c_j + e⊙b_j + f_j⊙a (+ e⊙f_j on party 0)`. Rounds: 1. Bytes per element from each
    /// party: 8·(1 + J), against 8 + 16·J with a square pair and a triple per product. Opened: e and f_j,
    /// uniform (fresh masks a, b_j).
    public func squareAndProducts(_ x: [UInt64], _ ys: [[UInt64]]) throws -> (square: [UInt64], products: [[UInt64]]) {
        let (n, j) = (x.count, ys.count)
        precondition(ys.allSatisfy { $0.count == n }, "squareAndProducts: partners of different lengths")
        let r = try dealer.squareFan(count: n, partners: j)
        var mine = [UInt64](repeating: 0, count: (j + 1) * n)
        for i in 0..<n { mine[i] = x[i] &- r.a[i] }
        for p in 0..<j { for i in 0..<n { mine[(p + 1) * n + i] = ys[p][i] &- r.b[p * n + i] } }
        let theirs = try peer.exchange(mine)
        let e = (0..<n).map { mine[$0] &+ theirs[$0] }
        let square = squareShares(opened: e, a: r.a, aa: Array(r.c[0..<n]))
        let isClient = id == .client
        let products = (0..<j).map { p -> [UInt64] in
            (0..<n).map { i in
                Party.beaverShare(c: r.c[(p + 1) * n + i], e: e[i], f: mine[(p + 1) * n + i] &+ theirs[(p + 1) * n + i], a: r.a[i],
                                  b: r.b[p * n + i], publicPart: isClient)
            }
        }
        return (square, products)
    }

    /// This party's share of `y ⊙ y` (untruncated) from the opened `e = y − a` and its shares of a and
    /// `a ⊙ a`: `e² + 2e⊙a + a²`, the public `e²` added by party 0 only (none with `publicPart: false`).
    func squareShares(opened e: [UInt64], a: [UInt64], aa: [UInt64], publicPart: Bool = true) -> [UInt64] {
        let addPublic = publicPart && id == .client
        var z = aa
        for i in 0..<z.count {
            z[i] = z[i] &+ 2 &* e[i] &* a[i]
            if addPublic { z[i] = z[i] &+ e[i] &* e[i] }
        }
        return z
    }

    /// Fixed-point (batched) matrix product: `x [m,k] · y [k,n] → [m,n]`, or `[B,m,k] · [B,k,n] → [B,m,n]`.
    ///
    /// Consumes one `matmulTriple([B,m,k,n])` record (B = 1 for 2-D). Steps: open `E = X - A` and `F = Y - B`
    /// together; party 0 sets `Z_0 = E·(B_0 + F) + A_0·F + C_0`, party 1 `Z_1 = E·B_1 + A_1·F + C_1`; then
    /// truncates `fracBits` exactly (`truncateExact`, one `bitProduct([B·m·n])` record). Rounds: 2. Bytes sent
    /// by each party: 8·B·(m·k + k·n) + 8·⌈B·m·n/64⌉. Opened: `E`, `F` to both, uniform (masked by `A`, `B`),
    /// and the truncation's masked bits, so nothing is learned. Error: ±1 ulp per output element.
    ///
    /// With `rightShift` r > 0, `y` is first truncated by r bits locally (it keeps f − r bits of resolution)
    /// and the product by f − r: same result scale and cost, with the accumulated products 2^r smaller.
    ///
    /// With `narrow` the product runs on Z_2^32 (`FixedPoint.narrowProductBits`): `E` and `F` are opened
    /// as 32-bit words, half the bytes, r is raised to `narrowRightShift` so that the product has at most
    /// 20 fractional bits, and the truncation returns to Z_2^64. Needs |x·y| < 2^10 (else the output is
    /// wrong, see `truncateExact`). Bytes sent by each party: 8·⌈B·(m·k + k·n)/2⌉ + 8·⌈B·m·n/64⌉.
    public func matmul(_ x: ArithmeticShare, _ y: ArithmeticShare, rightShift: Int = 0, narrow: Bool = false) throws -> ArithmeticShare {
        let shift = narrow ? Swift.max(rightShift, fixedPoint.narrowRightShift) : rightShift
        precondition(shift >= 0 && shift < fixedPoint.fracBits, "rightShift \(shift) out of range")
        let y = shift > 0 ? truncate(y, bits: shift) : y
        return try truncateExact(try matmulRaw(x, y, narrow: narrow), bits: fixedPoint.fracBits - shift, ringBits: narrow ? 32 : 64)
    }

    /// `matmul` without the final truncation: exact, for a factor that is an integer (e.g. a secret
    /// one-hot coefficient times fixed-point values: `[g,1,1] · [g,1,n]` costs 8·g·(1 + n) bytes per party,
    /// half of an elementwise product with the coefficient broadcast).
    public func matmulRaw(_ x: ArithmeticShare, _ y: ArithmeticShare) throws -> ArithmeticShare {
        try matmulRaw(x, y, narrow: false)
    }

    /// `matmulRaw`, with `narrow`: correct on Z_2^32 only (the openings carry 32-bit words).
    func matmulRaw(_ x: ArithmeticShare, _ y: ArithmeticShare, narrow: Bool) throws -> ArithmeticShare {
        let rank = x.shape.count
        precondition((rank == 2 || rank == 3) && y.shape.count == rank, "matmul needs 2-D or 3-D operands")
        let batch = rank == 3 ? x.shape[0] : 1
        let (m, k, n) = (x.shape[rank - 2], x.shape[rank - 1], y.shape[rank - 1])
        precondition(y.shape[rank - 2] == k && (rank == 2 || y.shape[0] == batch), "matmul shapes \(x.shape) x \(y.shape)")
        let t = try dealer.matmulTriple(batch: batch, m: m, k: k, n: n)
        let eMine = (x.tensor.reshaped([batch, m, k]) - t.a).data
        let fMine = (y.tensor.reshaped([batch, k, n]) - t.b).data
        let theirs = try exchangeNarrow(eMine + fMine, width: narrow ? 32 : 64)
        let (sa, sb, sc) = (m * k, k * n, m * n)
        var z = t.c.data
        for bt in 0..<batch {
            let e = (0..<sa).map { eMine[bt * sa + $0] &+ theirs[bt * sa + $0] }
            let f = (0..<sb).map { fMine[bt * sb + $0] &+ theirs[batch * sa + bt * sb + $0] }
            let a = Array(t.a.data[bt * sa..<(bt + 1) * sa])
            var b = Array(t.b.data[bt * sb..<(bt + 1) * sb])
            if id == .client { for i in 0..<sb { b[i] = b[i] &+ f[i] } }
            let eb = RingMatmul.multiply(e, b, m: m, k: k, n: n)
            let af = RingMatmul.multiply(a, f, m: m, k: k, n: n)
            for i in 0..<sc { z[bt * sc + i] = z[bt * sc + i] &+ eb[i] &+ af[i] }
        }
        let outShape = rank == 3 ? [batch, m, n] : [m, n]
        return ArithmeticShare(RingTensor(shape: outShape, data: z))
    }
}
