// Correlations for linear layers whose weights the server owns in plaintext (see Party+Weights.swift).

/// The per-query correlation of `x · W` for a masked weight: A [m,k] and this party's share of A·B.
public struct MaskedWeightTriple: Sendable {
    /// Party 0: the mask A of its activation share. Party 1: empty (it never learns A).
    public var a: RingTensor
    /// This party's additive share of A·B [m, n].
    public var c: RingTensor
    /// The same as a group record of one weight (`maskedWeightGroupTriple(count: 1, ...)`'s shape).
    var group: (a: RingTensor, c: [RingTensor]) { (a, [c]) }
}

extension Dealer {
    /// Deals the session mask B of a `[k, n]` server-owned weight and returns its handle.
    ///
    /// B is drawn from the PRG shared with the server, so nothing but a header travels
    /// (offline bytes: headers only). The dealer keeps B for the per-query triples.
    public func maskWeight(k: Int, n: Int) throws -> Int {
        weightMasks.append(RingMatmul.RightOperand(draw(.server, k * n), k: k, n: n))
        try emit(.client, DealerRecord(kind: .weightMask, shape: [k, n], payload: []))
        try emit(.server, DealerRecord(kind: .weightMask, shape: [k, n], payload: []))
        return weightMasks.count - 1
    }

    /// Deals one query's correlation for `x [m,k] · W` where W has the session mask `handle`.
    ///
    /// A [m,k] comes from the client's PRG and C_0 from the client's PRG; only C_1 = A·B − C_0
    /// travels, to the server. Offline cost: 8·m·n bytes to party 1.
    public func maskedWeightTriple(handle: Int, m: Int, k: Int, n: Int) throws {
        precondition(handle >= 0 && handle < weightMasks.count && weightMasks[handle].k == k && weightMasks[handle].n == n,
                     "maskedWeightTriple: handle \(handle) is not a [\(k), \(n)] weight mask")
        let a = draw(.client, m * k), c0 = draw(.client, m * n)
        var c1 = RingMatmul.multiply(a, weightMasks[handle], m: m)
        for i in 0..<c1.count { c1[i] = c1[i] &- c0[i] }
        try emitCorrection(.maskedWeightTriple, shape: [m, k, n], correction: c1)
    }

    /// Deals one query's correlation for `x [m,k] · W_j` for every weight of `handles` (all `[k, n]`):
    /// one activation mask A for all of them, so the client opens `x − A` once for the whole group.
    ///
    /// A and every C_0,j come from the client's PRG; C_1,j = A·B_j − C_0,j travel to the server.
    /// Offline cost: 8·g·m·n bytes to party 1.
    public func maskedWeightGroupTriple(handles: [Int], m: Int, k: Int, n: Int) throws {
        precondition(!handles.isEmpty && handles.allSatisfy { $0 >= 0 && $0 < weightMasks.count && weightMasks[$0].k == k && weightMasks[$0].n == n },
                     "maskedWeightGroupTriple: handles \(handles) are not all [\(k), \(n)] weight masks")
        let a = draw(.client, m * k)
        var c1 = [UInt64]()
        c1.reserveCapacity(handles.count * m * n)
        for h in handles {
            let c0 = draw(.client, m * n)
            var c = RingMatmul.multiply(a, weightMasks[h], m: m)
            for i in 0..<c.count { c[i] = c[i] &- c0[i] }
            c1 += c
        }
        try emitCorrection(.maskedWeightGroup, shape: [handles.count, m, k, n], correction: c1)
    }
}

extension DealerStream {
    /// Next record must be `weightMask([k, n])`. Returns B on the server, nil on the client.
    public func weightMask(k: Int, n: Int) throws -> RingTensor? {
        _ = try next(.weightMask, shape: [k, n], payloadCount: 0)
        weightMasksReceived += 1
        return party == .server ? RingTensor(shape: [k, n], data: draw(k * n)) : nil
    }

    /// Next record must be `maskedWeightTriple([m, k, n])`.
    public func maskedWeightTriple(m: Int, k: Int, n: Int) throws -> MaskedWeightTriple {
        let payload = try next(.maskedWeightTriple, shape: [m, k, n], payloadCount: party == .client ? 0 : m * n)
        if party == .client {
            let a = draw(m * k)
            return MaskedWeightTriple(a: RingTensor(shape: [m, k], data: a), c: RingTensor(shape: [m, n], data: draw(m * n)))
        }
        return MaskedWeightTriple(a: RingTensor(shape: [0], data: []), c: RingTensor(shape: [m, n], data: payload))
    }

    /// Next record must be `maskedWeightGroup([g, m, k, n])`: A (client only) and this party's share of
    /// each A·B_j.
    public func maskedWeightGroupTriple(count g: Int, m: Int, k: Int, n: Int) throws -> (a: RingTensor, c: [RingTensor]) {
        let payload = try next(.maskedWeightGroup, shape: [g, m, k, n], payloadCount: party == .client ? 0 : g * m * n)
        if party == .client {
            let a = RingTensor(shape: [m, k], data: draw(m * k))
            return (a, (0..<g).map { _ in RingTensor(shape: [m, n], data: draw(m * n)) })
        }
        return (RingTensor(shape: [0], data: []),
                (0..<g).map { j in RingTensor(shape: [m, n], data: Array(payload[(j * m * n)..<((j + 1) * m * n)])) })
    }
}
