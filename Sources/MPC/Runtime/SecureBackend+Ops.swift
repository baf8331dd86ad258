// The op catalogue of `SecureBackend`: each op pairs the dealer generator with the party evaluator
// (same order as the `Party` method consumes records). Costs and views are documented on the `Party`
// methods; these wrappers add nothing to the wire.

extension SecureBackend {
    /// One op whose result is a secret of `shape`.
    public func apply(_ shape: [Int], deal: (Dealer) throws -> Void = { _ in },
                      _ compute: (Party) throws -> ArithmeticShare) throws -> SecureTensor {
        SecureTensor(shape: shape, share: try step(deal: deal, compute: compute))
    }

    /// A local (communication-free, correlation-free) op.
    public func local(_ shape: [Int], _ compute: (Party) -> ArithmeticShare) -> SecureTensor {
        // `step` only throws when a closure does; these closures do not.
        SecureTensor(shape: shape, share: try! step(deal: { _ in }, compute: compute))
    }

    // MARK: Inputs and outputs

    /// Secret-shares the private input `name` of `owner` (`Party.share`: 0 rounds, 0 bytes). Only the
    /// owner's process reads the plaintext (`ownedInput`); the other party draws its share from the PRG.
    public func input(_ name: String, owner: PartyID, shape: [Int]) throws -> SecureTensor {
        try apply(shape) { p in
            p.share(p.id == owner ? try self.ownedInput(name, shape: shape) : nil, owner: owner, shape: shape)
        }
    }

    /// Opens `x` to `recipient` (`Party.reveal`); nil on the other party and in the dealer.
    public func reveal(_ x: SecureTensor, to recipient: PartyID) throws -> RingTensor? {
        try step(deal: { _ in }) { p in try p.reveal(x.mine, to: recipient) } ?? nil
    }

    /// Opens `x` to both parties (`Party.revealToBoth`); nil in the dealer.
    public func revealToBoth(_ x: SecureTensor) throws -> RingTensor? {
        try step(deal: { _ in }) { p in try p.revealToBoth(x.mine) }
    }

    /// Opens the index of a one-hot to `recipient` (`Party.revealIndex`); nil elsewhere.
    public func revealIndex(_ oneHot: SecureTensor, to recipient: PartyID) throws -> [Int]? {
        try step(deal: { _ in }) { p in try p.revealIndex(oneHot.mine, to: recipient) } ?? nil
    }

    // MARK: Local linear ops

    /// `x` reshaped and reordered: element `i` of the result is element `source[i]` of `x` (head
    /// splits, transposes, row picks). Local: each party permutes its own share.
    public func rearrange(_ x: SecureTensor, to shape: [Int], source: [Int]) -> SecureTensor {
        precondition(source.count == RingTensor.count(of: shape), "rearrange: \(source.count) indices for shape \(shape)")
        return local(shape) { _ in
            let d = x.mine.tensor.data
            return ArithmeticShare(RingTensor(shape: shape, data: source.map { d[$0] }))
        }
    }

    /// `x + b` with `b` the private input `name` (`[n]`, n = last dimension of `x`) of `owner`,
    /// broadcast over rows: the owner adds its plaintext to its own share. Local: 0 rounds, 0 bytes,
    /// and the other party learns nothing (its share is unchanged). Used for server-owned biases.
    public func addOwned(_ x: SecureTensor, _ name: String, owner: PartyID) throws -> SecureTensor {
        let n = x.shape.last!
        return try apply(x.shape) { p in
            guard p.id == owner else { return x.mine }
            let bias = try self.ownedInput(name, shape: [n]).data
            var d = x.mine.tensor.data
            for i in d.indices { d[i] = d[i] &+ bias[i % n] }
            return ArithmeticShare(RingTensor(shape: x.shape, data: d))
        }
    }

    /// `x [B·S, n] + T[0..<S]` for each of the B blocks of S rows, with T the private table `name`
    /// (`[tableRows, n]`) of `owner` (position embeddings: the rows are public positions, the values
    /// private). Local, like `addOwned`.
    public func addOwnedRows(_ x: SecureTensor, _ name: String, owner: PartyID, tableRows: Int, period: Int) throws -> SecureTensor {
        let n = x.shape.last!
        precondition(x.shape.count == 2 && period <= tableRows && x.shape[0] % period == 0,
                     "addOwnedRows: \(x.shape) in blocks of \(period) vs a table of \(tableRows) rows")
        return try apply(x.shape) { p in
            guard p.id == owner else { return x.mine }
            let table = try self.ownedInput(name, shape: [tableRows, n]).data
            var d = x.mine.tensor.data
            let block = period * n
            for i in d.indices { d[i] = d[i] &+ table[i % block] }
            return ArithmeticShare(RingTensor(shape: x.shape, data: d))
        }
    }

    /// The tensors stacked along a new leading dimension (`[count] + shape`, all of one shape). Local.
    public func stack(_ xs: [SecureTensor]) -> SecureTensor {
        let shape = xs[0].shape
        precondition(xs.allSatisfy { $0.shape == shape }, "stack: shapes differ")
        return local([xs.count] + shape) { _ in
            ArithmeticShare(RingTensor(shape: [xs.count] + shape, data: xs.flatMap { $0.mine.tensor.data }))
        }
    }

    public func add(_ x: SecureTensor, _ y: SecureTensor) -> SecureTensor {
        precondition(x.shape == y.shape, "add shapes \(x.shape) vs \(y.shape)")
        return local(x.shape) { $0.add(x.mine, y.mine) }
    }
    public func sub(_ x: SecureTensor, _ y: SecureTensor) -> SecureTensor {
        precondition(x.shape == y.shape, "sub shapes \(x.shape) vs \(y.shape)")
        return local(x.shape) { $0.sub(x.mine, y.mine) }
    }
    public func negate(_ x: SecureTensor) -> SecureTensor { local(x.shape) { $0.negate(x.mine) } }
    /// `x + c` for a public ring tensor in `x`'s encoding.
    public func addPublic(_ x: SecureTensor, _ c: RingTensor) -> SecureTensor { local(x.shape) { $0.addPublic(x.mine, c) } }
    /// `x · k` for a public ring integer (no rescaling).
    public func mulPublic(_ x: SecureTensor, _ k: UInt64) -> SecureTensor { local(x.shape) { $0.mulPublic(x.mine, k) } }
    /// `x · s` for a public real, truncated back to `fracBits`.
    public func scale(_ x: SecureTensor, by s: Double) -> SecureTensor { local(x.shape) { $0.scale(x.mine, by: s) } }
    /// Probabilistic local truncation by `bits`.
    public func truncate(_ x: SecureTensor, bits: Int) -> SecureTensor { local(x.shape) { $0.truncate(x.mine, bits: bits) } }
    /// `1 − bit`.
    public func not(_ bit: SecureTensor) -> SecureTensor { local(bit.shape) { $0.not(bit.mine) } }

    // MARK: Multiplications

    /// Fixed-point elementwise product (one `triple`).
    public func mul(_ x: SecureTensor, _ y: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.triple(shape: x.shape) }) { try $0.mul(x.mine, y.mine) }
    }
    /// Ring elementwise product without truncation (one `triple`).
    public func mulRaw(_ x: SecureTensor, _ y: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.triple(shape: x.shape) }) { try $0.mulRaw(x.mine, y.mine) }
    }
    /// Fixed-point square (one `squarePair`).
    public func square(_ x: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.squarePair(shape: x.shape) }) { try $0.square(x.mine) }
    }
    /// Fixed-point (batched) matrix product `[m,k]·[k,n]` or `[B,m,k]·[B,k,n]` (one `matmulTriple`, one
    /// `bitProduct` for its exact truncation).
    /// Either operand may be owned by either party (e.g. server weights × client activations).
    /// `narrow`: on Z_2^32, half the bytes (`Party.matmul(_:_:rightShift:narrow:)`; needs |x·y| < 1024).
    public func matmul(_ x: SecureTensor, _ y: SecureTensor, rightShift: Int = 0, narrow: Bool = false) throws -> SecureTensor {
        let (out, deal) = matmulPlan(x, y)
        let count = out.reduce(1, *)
        return try apply(out, deal: { try deal($0); try $0.bitProduct(count: count) }) {
            try $0.matmul(x.mine, y.mine, rightShift: rightShift, narrow: narrow)
        }
    }

    /// `matmul` without truncation (`Party.matmulRaw`), for an integer factor.
    public func matmulRaw(_ x: SecureTensor, _ y: SecureTensor) throws -> SecureTensor {
        let (out, deal) = matmulPlan(x, y)
        return try apply(out, deal: deal) { try $0.matmulRaw(x.mine, y.mine) }
    }

    /// The result shape of a (batched) matrix product and its dealer step.
    private func matmulPlan(_ x: SecureTensor, _ y: SecureTensor) -> (out: [Int], deal: (Dealer) throws -> Void) {
        let rank = x.shape.count
        precondition((rank == 2 || rank == 3) && y.shape.count == rank, "matmul needs 2-D or 3-D operands")
        let batch = rank == 3 ? x.shape[0] : 1
        let (m, k, n) = (x.shape[rank - 2], x.shape[rank - 1], y.shape[rank - 1])
        precondition(y.shape[rank - 2] == k, "matmul shapes \(x.shape) x \(y.shape)")
        return (rank == 3 ? [batch, m, n] : [m, n], { try $0.matmulTriple(batch: batch, m: m, k: k, n: n) })
    }

    // MARK: Comparisons

    /// Shares of `x ≥ 0` (one `dreluKey`).
    public func drelu(_ x: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.dreluKey(shape: x.shape) }) { try $0.drelu(x.mine) }
    }
    /// `max(x, 0)` (`Dealer.relu`).
    public func relu(_ x: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.relu(shape: x.shape) }) { try $0.relu(x.mine) }
    }
    /// Shares of `x < y` (`Dealer.lessThan`).
    public func lessThan(_ x: SecureTensor, _ y: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.lessThan(shape: x.shape) }) { try $0.lessThan(x.mine, y.mine) }
    }
    /// Shares of `x < c` for a public real `c`.
    public func lessThan(_ x: SecureTensor, constant c: Double) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.lessThan(shape: x.shape) }) { try $0.lessThan(x.mine, constant: c) }
    }
    /// `bit ? a : b` (`Dealer.select`).
    public func select(_ bit: SecureTensor, _ a: SecureTensor, _ b: SecureTensor) throws -> SecureTensor {
        try apply(a.shape, deal: { try $0.select(shape: a.shape) }) { try $0.select(bit.mine, a.mine, b.mine) }
    }
    /// Row multiplexer `bit[p] ? a[p, :] : b[p, :]` (`Dealer.selectRows`).
    public func selectRows(_ bit: SecureTensor, _ a: SecureTensor, _ b: SecureTensor) throws -> SecureTensor {
        try apply(a.shape, deal: { try $0.selectRows(bitShape: bit.shape, width: a.shape.last!) }) {
            try $0.selectRows(bit.mine, a.mine, b.mine)
        }
    }
    /// Maximum over the last dimension (`Dealer.max`).
    public func max(_ x: SecureTensor) throws -> SecureTensor {
        try apply(Array(x.shape.dropLast()), deal: { try $0.max(shape: x.shape) }) { try $0.max(x.mine) }
    }
    /// Maximum and secret one-hot argmax over the last dimension (`Dealer.argmax`).
    public func argmax(_ x: SecureTensor) throws -> (max: SecureTensor, oneHot: SecureTensor) {
        let r = try step(deal: { try $0.argmax(shape: x.shape) }) { try $0.argmax(x.mine) }
        return (SecureTensor(shape: Array(x.shape.dropLast()), share: r?.max), SecureTensor(shape: x.shape, share: r?.oneHot))
    }
}
