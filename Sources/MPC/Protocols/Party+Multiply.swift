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
            let e = mine[i] &+ theirs[i], f = mine[n + i] &+ theirs[n + i]
            z[i] = z[i] &+ e &* t.b.data[i] &+ f &* t.a.data[i]
            if isClient { z[i] = z[i] &+ e &* f }
        }
        return ArithmeticShare(RingTensor(shape: x.shape, data: z))
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
        let mine = (x.tensor - p.a).data
        let theirs = try peer.exchange(mine)
        var z = p.c.data
        let isClient = id == .client
        for i in 0..<z.count {
            let e = mine[i] &+ theirs[i]
            z[i] = z[i] &+ 2 &* e &* p.a.data[i]
            if isClient { z[i] = z[i] &+ e &* e }
        }
        return truncate(ArithmeticShare(RingTensor(shape: x.shape, data: z)), bits: fixedPoint.fracBits)
    }

    /// Fixed-point (batched) matrix product: `x [m,k] · y [k,n] → [m,n]`, or `[B,m,k] · [B,k,n] → [B,m,n]`.
    ///
    /// Consumes one `matmulTriple([B,m,k,n])` record (B = 1 for 2-D). Steps: open `E = X - A` and `F = Y - B`
    /// together; party 0 sets `Z_0 = E·(B_0 + F) + A_0·F + C_0`, party 1 `Z_1 = E·B_1 + A_1·F + C_1`; then
    /// truncates `fracBits`. Rounds: 1. Bytes sent by each party: 8·B·(m·k + k·n). Opened: `E`, `F` to both,
    /// uniform (masked by `A`, `B`), so nothing is learned. Error: ±1 ulp per output element, with the
    /// truncation failure probability of `truncate` applied to the accumulated products.
    ///
    /// With `rightShift` r > 0, `y` is first truncated by r bits locally (it keeps f − r bits of resolution)
    /// and the product by f − r: same result scale and cost, but the accumulated products, the values the
    /// final truncation divides, are 2^r smaller, and so is its failure rate.
    public func matmul(_ x: ArithmeticShare, _ y: ArithmeticShare, rightShift: Int = 0) throws -> ArithmeticShare {
        precondition(rightShift >= 0 && rightShift <= fixedPoint.fracBits, "rightShift \(rightShift) out of range")
        let y = rightShift > 0 ? truncate(y, bits: rightShift) : y
        return truncate(try matmulRaw(x, y), bits: fixedPoint.fracBits - rightShift)
    }

    /// `matmul` without the final truncation: exact, for a factor that is an integer (e.g. a secret
    /// one-hot coefficient times fixed-point values: `[g,1,1] · [g,1,n]` costs 8·g·(1 + n) bytes per party,
    /// half of an elementwise product with the coefficient broadcast).
    public func matmulRaw(_ x: ArithmeticShare, _ y: ArithmeticShare) throws -> ArithmeticShare {
        let rank = x.shape.count
        precondition((rank == 2 || rank == 3) && y.shape.count == rank, "matmul needs 2-D or 3-D operands")
        let batch = rank == 3 ? x.shape[0] : 1
        let (m, k, n) = (x.shape[rank - 2], x.shape[rank - 1], y.shape[rank - 1])
        precondition(y.shape[rank - 2] == k && (rank == 2 || y.shape[0] == batch), "matmul shapes \(x.shape) x \(y.shape)")
        let t = try dealer.matmulTriple(batch: batch, m: m, k: k, n: n)
        let eMine = (x.tensor.reshaped([batch, m, k]) - t.a).data
        let fMine = (y.tensor.reshaped([batch, k, n]) - t.b).data
        let theirs = try peer.exchange(eMine + fMine)
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
