// Comparison family: DReLU (sign), comparisons, select (mux) and ReLU.
//
// Bits are arithmetic shares in Z_2^64 of the integers 0 and 1 (not fixed-point encoded): multiplying a
// fixed-point value by such a bit needs no truncation, so `select` and `relu` are exact.

extension Party {
    /// DReLU: the secret bit `x ≥ 0` (x read as a signed 64-bit integer), as an arithmetic share of 0/1.
    ///
    /// Consumes one `dreluKey(shape)` record (mask `r`, shares of `msb(r)`, 63-bit DCF keys for
    /// `α = r mod 2^63`, `β = 1 − 2·msb(r)`). Steps (Boyle et al. 2021, signed comparison; Sigma's DReLU):
    /// 1. open `x̂ = x + r` to both;
    /// 2. each party evaluates its DCF key at `x̂ mod 2^63`, getting shares of `c·β` with
    ///    `c = 1{x̂ mod 2^63 < r mod 2^63}` (the borrow out of the low 63 bits of `x̂ − r`);
    ///    adding its share of `msb(r)` gives shares of `u = msb(r) ⊕ c`, because `β = 1 − 2·msb(r)`;
    /// 3. `msb(x) = msb(x̂) ⊕ u` with `msb(x̂)` public, so `drelu = 1 − msb(x)` is `u` or `1 − u`: local.
    ///
    /// Exact for every ring element (Int64.min gives 0, Int64.max gives 1); no failure probability.
    /// Rounds: 1. Bytes per element: 8 from each party online; offline 1536 bytes to each party plus 8 to
    /// party 1 (`Dealer.dreluKey`). Opened: `x + r` to both; it is uniform because `r` is uniform and each
    /// party holds only a share of it, so neither learns anything about `x`. The DCF key of each party is
    /// pseudorandom on its own (it hides `r`), so the local evaluation reveals nothing either.
    /// - Returns: shares of 1 where `x ≥ 0` and 0 where `x < 0`, same shape as `x`.
    public func drelu(_ x: ArithmeticShare) throws -> ArithmeticShare {
        try drelu(x, key: try dealer.dreluKey(shape: x.shape))
    }

    /// `drelu` with a key already taken from the dealer stream (`dealer.dreluKey(shape:)`), so that
    /// receiving and decoding the 1.5 KB-per-element key stays in the offline phase. Same cost and view.
    /// - Precondition: `key` was dealt for `x.shape`.
    public func drelu(_ x: ArithmeticShare, key: DReLUKey) throws -> ArithmeticShare {
        precondition(key.mask.shape == x.shape, "DReLU key for \(key.mask.shape) used on \(x.shape)")
        let mine = (x.tensor + key.mask).data
        let theirs = try peer.exchange(mine)
        var opened = mine
        for i in opened.indices { opened[i] = opened[i] &+ theirs[i] }
        let c = key.dcf.evaluate(party: id, opened)
        let one: UInt64 = id == .client ? 1 : 0
        var out = c
        key.maskMSB.data.withUnsafeBufferPointer { msb in
            for i in out.indices {
                let u = msb[i] &+ c[i]
                out[i] = opened[i] >> 63 == 1 ? u : one &- u
            }
        }
        return ArithmeticShare(RingTensor(shape: x.shape, data: out))
    }

    /// `1 − bit` for an arithmetic share of a bit. Local: 0 rounds, 0 bytes.
    public func not(_ bit: ArithmeticShare) -> ArithmeticShare {
        let one = RingTensor(shape: bit.shape, repeating: 1)
        return addPublic(negate(bit), one)
    }

    /// The secret bit `x < y`, elementwise (arithmetic share of 0/1): `1 − drelu(x − y)`.
    ///
    /// Input range: exact whenever `x − y` does not wrap as a signed 64-bit integer, e.g. both of magnitude
    /// below 2^62 as signed ring values (|real| < 2^46 in fixed point with 16 fractional bits).
    /// Consumes one `dreluKey(shape)`. Rounds: 1. Bytes per element: 8 from each party (offline as
    /// `drelu`). Opened: `x − y + r` to both, uniform; nothing is learned.
    public func lessThan(_ x: ArithmeticShare, _ y: ArithmeticShare) throws -> ArithmeticShare {
        precondition(x.shape == y.shape, "lessThan shapes \(x.shape) vs \(y.shape)")
        return not(try drelu(sub(x, y)))
    }

    /// The secret bit `x < c` for a public ring tensor `c` of the same shape (same encoding as `x`).
    ///
    /// Same range, cost and view as `lessThan(_:_:)`: one `dreluKey(shape)`, 1 round, 8 bytes per element each way.
    public func lessThan(_ x: ArithmeticShare, constant c: RingTensor) throws -> ArithmeticShare {
        precondition(x.shape == c.shape, "lessThan shapes \(x.shape) vs \(c.shape)")
        return not(try drelu(addPublic(x, -c)))
    }

    /// The secret bit `x < c` for one public real `c`, encoded with this party's fixed point.
    public func lessThan(_ x: ArithmeticShare, constant c: Double) throws -> ArithmeticShare {
        try lessThan(x, constant: RingTensor(shape: x.shape, repeating: fixedPoint.encode(c)))
    }

    /// The secret bit `x > c` for one public real `c` (`−x < −c`). Same cost as `lessThan`.
    public func greaterThan(_ x: ArithmeticShare, constant c: Double) throws -> ArithmeticShare {
        try lessThan(negate(x), constant: RingTensor(shape: x.shape, repeating: 0 &- fixedPoint.encode(c)))
    }

    /// Multiplexer: `bit ? a : b` elementwise, as `b + bit·(a − b)` with one Beaver multiplication.
    ///
    /// `bit` must share 0 or 1 (e.g. from `drelu`); `a`, `b` any encoding (the result keeps it, exactly:
    /// no truncation). Consumes one `triple(shape)`. Rounds: 1. Bytes per element: 16 from each party.
    /// Opened: `bit − t.a` and `(a − b) − t.b`, uniform (Beaver masks); nothing is learned.
    public func select(_ bit: ArithmeticShare, _ a: ArithmeticShare, _ b: ArithmeticShare) throws -> ArithmeticShare {
        precondition(bit.shape == a.shape && a.shape == b.shape, "select shapes \(bit.shape), \(a.shape), \(b.shape)")
        return add(b, try mulRaw(bit, sub(a, b)))
    }

    /// Row multiplexer: `bit[p] ? a[p, :] : b[p, :]`, one bit per row of `width` values.
    ///
    /// `bit` has shape `S` (P elements), `a` and `b` shape `S + [width]`. Computes `b + bit·(a − b)` with a
    /// batch of 1×1·1×width matrix triples, so each bit's mask is opened once per row, not once per value.
    /// Consumes one `matmulTriple([P, 1, 1, width])` (`Dealer.selectRows`). Rounds: 1. Bytes sent by each
    /// party: 8·P·(1 + width). Opened: Beaver-masked `bit` and `a − b`, uniform; nothing is learned. Exact.
    public func selectRows(_ bit: ArithmeticShare, _ a: ArithmeticShare, _ b: ArithmeticShare) throws -> ArithmeticShare {
        precondition(a.shape == b.shape && a.shape.count == bit.shape.count + 1 && Array(a.shape.dropLast()) == bit.shape,
                     "selectRows shapes \(bit.shape), \(a.shape), \(b.shape)")
        let z = try rowSelect(bit.tensor.data, base: b.tensor.data, delta: sub(a, b).tensor.data, width: a.shape.last!)
        return ArithmeticShare(RingTensor(shape: a.shape, data: z))
    }

    /// `base + bit[p]·delta[p, :]` per row: the evaluator of `selectRows` (one `matmulTriple([P,1,1,width])`).
    func rowSelect(_ bit: [UInt64], base: [UInt64], delta: [UInt64], width w: Int) throws -> [UInt64] {
        let p = bit.count
        precondition(base.count == p * w && delta.count == p * w)
        let t = try dealer.matmulTriple(batch: p, m: 1, k: 1, n: w)
        var mine = [UInt64](repeating: 0, count: p + p * w)
        for i in 0..<p { mine[i] = bit[i] &- t.a.data[i] }
        for q in 0..<(p * w) { mine[p + q] = delta[q] &- t.b.data[q] }
        let theirs = try peer.exchange(mine)
        var z = base
        let isClient = id == .client
        for i in 0..<p {
            let e = mine[i] &+ theirs[i], ai = t.a.data[i]
            for j in 0..<w {
                let q = i * w + j
                let f = mine[p + q] &+ theirs[p + q]
                z[q] = z[q] &+ t.c.data[q] &+ e &* t.b.data[q] &+ ai &* f
                if isClient { z[q] = z[q] &+ e &* f }
            }
        }
        return z
    }

    /// ReLU: `max(x, 0)` elementwise, as `x · drelu(x)`. Exact (no truncation).
    ///
    /// Consumes `dreluKey(shape)` then `triple(shape)` (`Dealer.relu`). Rounds: 2. Bytes per element:
    /// 8 + 16 = 24 from each party online; offline 1536 bytes to party 0 and 1552 to party 1.
    /// Opened: `x + r` and the Beaver-masked `x`, `bit`; all uniform, nothing is learned.
    public func relu(_ x: ArithmeticShare) throws -> ArithmeticShare {
        try mulRaw(x, try drelu(x))
    }
}

extension Dealer {
    /// Deals the records of `Party.select` (one elementwise triple).
    public func select(shape: [Int]) throws { try triple(shape: shape) }

    /// Deals the records of `Party.selectRows` for `bitShape` bits of `width` values each.
    public func selectRows(bitShape: [Int], width: Int) throws {
        try matmulTriple(batch: RingTensor.count(of: bitShape), m: 1, k: 1, n: width)
    }

    /// Deals the records of `Party.relu`: a DReLU key, then a triple.
    public func relu(shape: [Int]) throws {
        try dreluKey(shape: shape)
        try triple(shape: shape)
    }

    /// Deals the records of `Party.lessThan` (any variant) and `greaterThan`: one DReLU key.
    public func lessThan(shape: [Int]) throws { try dreluKey(shape: shape) }
}
