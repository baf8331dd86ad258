/// A server-owned weight matrix `W [k, n]` prepared for many queries in one session.
///
/// The server holds `W` (fixed point, plaintext to it); the client holds `W − B`, where the mask `B`
/// is known only to the server and the dealer. Built once per session by `Party.loadWeight`.
public struct MaskedWeight: Sendable {
    /// Dealer handle of the mask (same value on both parties and the dealer).
    public let handle: Int
    /// Server: W. Client: W − B. Prepared once for the session's products.
    public let values: RingMatmul.RightOperand
    /// Server: B, when kept for `lookupRows` (tables indexed by the client); nil otherwise.
    public let mask: RingMatmul.RightOperand?
    public var k: Int { values.k }
    public var n: Int { values.n }

    init(handle: Int, values: RingTensor, mask: RingTensor?) {
        self.handle = handle
        let (k, n) = (values.shape[0], values.shape[1])
        self.values = RingMatmul.RightOperand(values.data, k: k, n: n)
        self.mask = mask.map { RingMatmul.RightOperand($0.data, k: k, n: n) }
    }
}

extension Party {
    /// Prepares a server-owned weight for the session: the server sends `W − B` to the client.
    ///
    /// Consumes one `weightMask([k, n])` record (the dealer's `maskWeight(k:n:)`; handles count up in
    /// dealing order on both sides). Rounds: 1 (server → client). Bytes: 8·k·n from the server, once per
    /// session, before any input is known (setup, not online, under DESIGN §5's accounting).
    /// Opened: `W − B` to the client, uniform because B is pseudo-random from the server–dealer seed;
    /// the client learns nothing about W. The dealer never sees W.
    /// - Parameters:
    ///   - weight: W [k, n] in fixed point on the server; nil on the client.
    ///   - keepMask: the server keeps B (`lookupRows` needs it; costs 8·k·n bytes of its memory).
    public func loadWeight(_ weight: RingTensor?, k: Int, n: Int, keepMask: Bool = false) throws -> MaskedWeight {
        let handle = dealer.weightMasksReceived
        let mask = try dealer.weightMask(k: k, n: n)
        if id == .server {
            guard let w = weight, w.shape == [k, n], let b = mask else {
                throw ProtocolError.shapeMismatch("loadWeight: the server must pass W of shape [\(k), \(n)], got \(weight?.shape.description ?? "nil")")
            }
            try peer.sendStep((w - b).data)
            return MaskedWeight(handle: handle, values: w, mask: keepMask ? b : nil)
        }
        let masked = try peer.receiveStep(count: k * n)
        return MaskedWeight(handle: handle, values: RingTensor(shape: [k, n], data: masked), mask: nil)
    }

    /// Fixed-point `x · W` for secret-shared activations `x [..., m, k]` and a server-owned weight.
    ///
    /// Consumes one `maskedWeightTriple([M, k, n])` record (M = product of the leading dimensions).
    /// Steps: the client sends `E = X_0 − A`; the client sets `Z_0 = A·(W − B) + C_0`, the server
    /// `Z_1 = (X_1 + E)·W + C_1`, so `Z_0 + Z_1 = X·W`; then both truncate `fracBits`.
    /// Rounds: 1 (client → server only), then 1 for the exact truncation (`truncateExact`, a
    /// `bitProduct([M·n])` record). Online bytes: 8·M·k from the client, plus 8·⌈M·n/64⌉ each way.
    /// Offline bytes: 16·M·n to the server. Compare Beaver `matmul`: 8·(M·k + k·n) from each party.
    /// Opened: `E` to the server, uniform (masked by the fresh pseudo-random A); nothing to the client.
    /// W is on the weight grid (`FixedPoint.weightFracBits`), so the product is truncated by that many bits.
    /// Error: ±1 ulp.
    ///
    /// With `narrow` (a model whose linear layers run on Z_2^32, `ring_bits: 32`): x is first truncated
    /// locally by `FixedPoint.narrowInputShift` bits so that the product carries 20 fractional bits, the
    /// client sends `E` as 32-bit words (4·M·k bytes, half), the product is computed on Z_2^32 and the
    /// exact truncation returns it to Z_2^64. Needs |x·W| < 1024 (`FixedPoint.narrowProductLimit`);
    /// beyond, the output is wrong. Opened: the low 32 bits of `E`, uniform.
    public func matmulWeight(_ x: ArithmeticShare, _ w: MaskedWeight, narrow: Bool = false) throws -> ArithmeticShare {
        let one = try weightProducts(x, [w], narrow: narrow, record: { m, k, n in try self.dealer.maskedWeightTriple(m: m, k: k, n: n).group })
        return ArithmeticShare(one.tensor.reshaped(Array(one.shape.dropFirst())))
    }

    /// Rows `ids` of a server-owned table `W [V, H]` (word embeddings) for token ids the client holds in
    /// plaintext: shares of `X·W` with X the one-hot matrix of the ids, without either party learning
    /// the other's secret.
    ///
    /// Consumes one `maskedWeightGroup([1, S, V, H])` record (the weight must be loaded with `keepMask`).
    /// Steps: the client sends `E = X − A` (A from its dealer PRG) and keeps `X·(W − B) + C_0` (row
    /// lookups in its masked copy); the server keeps `E·B + C_1`. Sum: `X·W − X·B + (X − A)·B + A·B = X·W`,
    /// exact (X is an integer matrix: no truncation). Rounds: 1 (client → server). Online bytes: 8·S·V
    /// from the client. Offline: 8·S·H to the server. Compute: one dense `[S, V]·[V, H]` ring product
    /// on the server and one on the dealer; row lookups on the client.
    /// Opened: `E` to the server, uniform (A is fresh and pseudo-random); nothing to the client.
    /// - Parameters:
    ///   - ids: the client's token ids (each in `0..<V`); nil on the server.
    ///   - count: S, the number of ids (public).
    /// - Throws: `ProtocolError.shapeMismatch` if the server's weight was loaded without its mask, or an
    ///   id is outside the table.
    public func lookupRows(_ ids: [Int]?, count: Int, table w: MaskedWeight) throws -> ArithmeticShare {
        let rows = try lookupRowsGroup(ids, count: count, tables: [w])
        return ArithmeticShare(rows.tensor.reshaped([count, w.n]))
    }
}

// MARK: Weight groups (select-then-compute)

extension Party {
    /// `x · W_j` for every server-owned weight of a group of one shape, at the online cost of one:
    /// the client opens `E = X_0 − A` once (one `maskedWeightGroup` record; A is shared by the group's
    /// triples), and each party computes every product locally, as `matmulWeight` does for one.
    ///
    /// Rounds: 1 (client → server) and 1 for the exact truncation. Online bytes: 8·M·k from the client,
    /// whatever the group size g, plus 8·⌈g·M·n/64⌉ each way. Offline: 16·g·M·n to the server. Opened: `E`,
    /// uniform, and masked bits. Error: ±1 ulp per product.
    /// - Returns: the g products stacked, `[g, ..., n]`.
    public func matmulWeightGroup(_ x: ArithmeticShare, _ ws: [MaskedWeight], narrow: Bool = false) throws -> ArithmeticShare {
        try weightProducts(x, ws, narrow: narrow, record: { m, k, n in try self.dealer.maskedWeightGroupTriple(count: ws.count, m: m, k: k, n: n) })
    }

    /// `matmulWeightGroup` with the dealer record read by `record(m, k, n)`.
    private func weightProducts(_ x: ArithmeticShare, _ ws: [MaskedWeight], narrow: Bool,
                                record: (Int, Int, Int) throws -> (a: RingTensor, c: [RingTensor])) throws -> ArithmeticShare {
        let k = x.shape.last ?? 0
        guard let n = ws.first?.n, ws.allSatisfy({ $0.k == k && $0.n == n }) else {
            throw ProtocolError.shapeMismatch("matmulWeight: activations \(x.shape) do not match the weights \(ws.map { [$0.k, $0.n] })")
        }
        let m = x.tensor.count / Swift.max(k, 1), shift = narrow ? fixedPoint.narrowInputShift : 0
        let x = shift > 0 ? truncate(x, bits: shift) : x
        let t = try record(m, k, n)
        var left: [UInt64]
        if id == .client {
            let e = (x.tensor.reshaped([m, k]) - t.a).data
            try peer.sendStep(narrow ? Party.pack(e, width: 32) : e)
            left = t.a.data
        } else {
            let e = narrow ? Party.unpack(try peer.receiveStep(count: (m * k + 1) / 2), count: m * k, width: 32)
                           : try peer.receiveStep(count: m * k)
            left = x.tensor.data
            for i in 0..<left.count { left[i] = left[i] &+ e[i] }
        }
        var out = [UInt64]()
        out.reserveCapacity(ws.count * m * n)
        for (w, c) in zip(ws, t.c) {
            var z = RingMatmul.multiply(left, w.values, m: m)
            for i in 0..<z.count { z[i] = z[i] &+ c.data[i] }
            out += z
        }
        let outShape = [ws.count] + Array(x.shape.dropLast()) + [n]
        return try truncateExact(ArithmeticShare(RingTensor(shape: outShape, data: out)), bits: fixedPoint.weightFracBits - shift,
                                 ringBits: narrow ? 32 : 64)
    }

    /// Rows `ids` of every table of a group of one shape (`lookupRows` for each), with one opening of
    /// the one-hot matrix for the whole group: one `maskedWeightGroup` record, 1 round, 8·S·V bytes from
    /// the client whatever the group size; the server's dense product is done once per table.
    /// - Returns: `[g, S, H]`, exact.
    public func lookupRowsGroup(_ ids: [Int]?, count: Int, tables ws: [MaskedWeight]) throws -> ArithmeticShare {
        guard let first = ws.first, ws.allSatisfy({ $0.k == first.k && $0.n == first.n }) else {
            throw ProtocolError.shapeMismatch("lookupRowsGroup: the tables differ in shape")
        }
        let (v, h) = (first.k, first.n)
        let t = try dealer.maskedWeightGroupTriple(count: ws.count, m: count, k: v, n: h)
        var out = t.c.flatMap(\.data)
        if id == .client {
            guard let ids, ids.count == count else { throw ProtocolError.shapeMismatch("lookupRowsGroup: the client must pass \(count) ids") }
            if let bad = ids.first(where: { !(0..<v).contains($0) }) {
                throw ProtocolError.shapeMismatch("lookupRowsGroup: token id \(bad) outside the tables' \(v) rows")
            }
            var e = t.a.data
            for i in 0..<e.count { e[i] = 0 &- e[i] }
            for (r, tok) in ids.enumerated() { e[r * v + tok] = e[r * v + tok] &+ 1 }
            for (j, w) in ws.enumerated() {
                for (r, tok) in ids.enumerated() {
                    for c in 0..<h { out[j * count * h + r * h + c] = out[j * count * h + r * h + c] &+ w.values[tok, c] }
                }
            }
            try peer.sendStep(e)
        } else {
            guard ws.allSatisfy({ $0.mask != nil }) else { throw ProtocolError.shapeMismatch("lookupRowsGroup: a table was loaded without keepMask") }
            let e = try peer.receiveStep(count: count * v)
            for (j, w) in ws.enumerated() {
                let eb = RingMatmul.multiply(e, w.mask!, m: count)
                for i in 0..<eb.count { out[j * count * h + i] = out[j * count * h + i] &+ eb[i] }
            }
        }
        return ArithmeticShare(RingTensor(shape: [ws.count, count, h], data: out))
    }
}
