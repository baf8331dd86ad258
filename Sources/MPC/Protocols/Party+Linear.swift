// Input sharing, reveal and local linear operations.

extension Party {
    /// Secret-shares `value`, owned by `owner`, with no communication.
    ///
    /// Both parties draw `r` from the PRG they share; the owner's share is `x - r`, the other party's is `r`.
    /// Rounds: 0. Bytes: 0. Opened: nothing. The non-owner learns nothing (its share `r` is independent of
    /// `x`); the owner learns the other party's share, which only hides its own input.
    /// - Parameters:
    ///   - value: the secret on the owner (fixed-point ring elements); ignored (pass nil) on the other party.
    ///   - owner: who holds the secret.
    ///   - shape: shape of the secret, known to both.
    public func share(_ value: RingTensor?, owner: PartyID, shape: [Int]) -> ArithmeticShare {
        let r = shared.tensor(shape)
        guard id == owner else { return ArithmeticShare(r) }
        guard let value else { preconditionFailure("\(id) owns the input but passed nil") }
        precondition(value.shape == shape, "input shape \(value.shape) vs declared \(shape)")
        return ArithmeticShare(value - r)
    }

    /// Secret-shares `value` by sending the other party a masked copy.
    ///
    /// The owner draws `r` from its private PRG, keeps `r` and sends `x - r`.
    /// Rounds: 1. Bytes per element: 8 from the owner, 0 from the other. Opened: nothing. The receiver sees
    /// `x - r` with `r` uniform and private to the owner, hence uniform; the owner learns nothing.
    public func shareBySending(_ value: RingTensor?, owner: PartyID, shape: [Int]) throws -> ArithmeticShare {
        if id == owner {
            guard let value else { preconditionFailure("\(id) owns the input but passed nil") }
            precondition(value.shape == shape, "input shape \(value.shape) vs declared \(shape)")
            let r = local.tensor(shape)
            try peer.sendStep((value - r).data)
            return ArithmeticShare(r)
        }
        return ArithmeticShare(RingTensor(shape: shape, data: try peer.receiveStep(count: RingTensor.count(of: shape))))
    }

    /// Opens `x` to one party.
    ///
    /// Rounds: 1. Bytes per element: 8 from the party that does not learn, 0 from the recipient.
    /// Opened: `x`, to `recipient` only. Returns `x` on the recipient and nil on the other party, which learns
    /// nothing (it only sends).
    public func reveal(_ x: ArithmeticShare, to recipient: PartyID) throws -> RingTensor? {
        if id == recipient {
            let theirs = try peer.receiveStep(count: x.tensor.count)
            return x.tensor + RingTensor(shape: x.shape, data: theirs)
        }
        try peer.sendStep(x.tensor.data)
        return nil
    }

    /// Opens `x` to both parties.
    ///
    /// Rounds: 1. Bytes per element: 8 from each party. Opened: `x`, to both; each learns `x` and nothing else.
    public func revealToBoth(_ x: ArithmeticShare) throws -> RingTensor {
        let theirs = try peer.exchange(x.tensor.data)
        return x.tensor + RingTensor(shape: x.shape, data: theirs)
    }

    /// Opens several secrets to both parties in one round (batching independent openings).
    ///
    /// Rounds: 1. Bytes per element: 8 from each party. Opened: all of `xs`, to both.
    public func revealToBoth(_ xs: [ArithmeticShare]) throws -> [RingTensor] {
        let theirs = try peer.exchange(xs.flatMap { $0.tensor.data })
        var offset = 0
        return xs.map { x in
            defer { offset += x.tensor.count }
            return x.tensor + RingTensor(shape: x.shape, data: Array(theirs[offset..<offset + x.tensor.count]))
        }
    }

    /// `x + y`. Local: 0 rounds, 0 bytes, nothing opened.
    public func add(_ x: ArithmeticShare, _ y: ArithmeticShare) -> ArithmeticShare { ArithmeticShare(x.tensor + y.tensor) }

    /// `x - y`. Local: 0 rounds, 0 bytes, nothing opened.
    public func sub(_ x: ArithmeticShare, _ y: ArithmeticShare) -> ArithmeticShare { ArithmeticShare(x.tensor - y.tensor) }

    /// `-x`. Local.
    public func negate(_ x: ArithmeticShare) -> ArithmeticShare { ArithmeticShare(-x.tensor) }

    /// `x + c` for a public ring tensor `c` (same fixed-point scale as `x`): party 0 adds `c`. Local.
    public func addPublic(_ x: ArithmeticShare, _ c: RingTensor) -> ArithmeticShare {
        id == .client ? ArithmeticShare(x.tensor + c) : x
    }

    /// `x · k` for a public ring integer `k` (no rescaling). Local: 0 rounds, 0 bytes.
    public func mulPublic(_ x: ArithmeticShare, _ k: UInt64) -> ArithmeticShare { ArithmeticShare(x.tensor * k) }

    /// `x ⊙ c` for a public ring tensor `c` (no rescaling: the result carries both scales). Local.
    public func mulPublic(_ x: ArithmeticShare, _ c: RingTensor) -> ArithmeticShare { ArithmeticShare(x.tensor * c) }

    /// `x · s` for a public real `s`: multiplies by `encode(s)` and truncates `fracBits`.
    /// Local: 0 rounds, 0 bytes. Error: ±1 ulp plus the rounding of `s` (see `truncate`).
    public func scale(_ x: ArithmeticShare, by s: Double) -> ArithmeticShare {
        truncate(mulPublic(x, fixedPoint.encode(s)), bits: fixedPoint.fracBits)
    }
}
