// Ops for secure transformer layers: server-owned weights masked once per session, and the
// nonlinear functions. Costs and views are documented on the `Party` methods.

/// A server-owned weight `[k, n]` prepared for the session (`Party.loadWeight`).
public struct SecureWeight: Sendable {
    public let k: Int
    public let n: Int
    /// The dealer's mask handle (dealer run only).
    let dealerHandle: Int?
    /// The party's masked weight (party runs only).
    let masked: MaskedWeight?
    /// Products with it run on Z_2^32 (`Party.matmulWeight(_:_:narrow:)`): a `ring_bits: 32` model's
    /// linear layers.
    public let narrow: Bool
}

/// A LayerNorm gain γ: one model's, a server-owned session weight (masked once: `SecureBackend.gain`),
/// or secret shares (e.g. a secretly selected member's, `SecureBackend.select`).
public enum SecureGain {
    case owned(SecureWeight)
    case shared(SecureTensor)
}

extension SecureBackend {
    /// Prepares the server's private input `name` (`[k, n]`, fixed point) as a session weight: the
    /// server sends `W − B` once; later `matmulWeight` calls cost only the client's masked activations.
    /// With `lookup`, the table is prepared for `lookupRows` (the server keeps its mask); with `narrow`,
    /// products with it run on Z_2^32 (a `ring_bits: 32` model's linear layers).
    public func weight(_ name: String, k: Int, n: Int, lookup: Bool = false, narrow: Bool = false) throws -> SecureWeight {
        try weight(name, inputShape: [k, n], k: k, n: n, keepMask: lookup, narrow: narrow)
    }

    /// Prepares the server's private LayerNorm gain `name` (`[n]`) as a session weight `[1, n]` (the
    /// server keeps its mask): `layerNorm(_:gain:beta:)` then opens no γ per query.
    public func gain(_ name: String, n: Int) throws -> SecureWeight {
        try weight(name, inputShape: [n], k: 1, n: n, keepMask: true)
    }

    /// The input `name` of shape `inputShape` masked as a `[k, n]` session weight.
    private func weight(_ name: String, inputShape: [Int], k: Int, n: Int, keepMask: Bool, narrow: Bool = false) throws -> SecureWeight {
        var handle: Int?
        let masked = try step(deal: { handle = try $0.maskWeight(k: k, n: n) }) { p in
            try p.loadWeight(p.id == .server ? try self.ownedInput(name, shape: inputShape).reshaped([k, n]) : nil, k: k, n: n, keepMask: keepMask)
        }
        return SecureWeight(k: k, n: n, dealerHandle: handle, masked: masked, narrow: narrow)
    }

    /// Additive shares `[n]` of a gain prepared by `gain` (client: γ − b, server: b). Local: for
    /// secret selection among several models' gains.
    public func shares(of gain: SecureWeight) -> SecureTensor {
        local([gain.n]) { p in
            let w = gain.masked!
            return ArithmeticShare(RingTensor(shape: [gain.n], data: p.id == .server ? w.mask!.rowMajor() : w.values.rowMajor()))
        }
    }

    /// `x [..., k] · W [k, n]` for a session weight (`Party.matmulWeight`: 1 round client → server, 1 for
    /// the exact truncation).
    public func matmulWeight(_ x: SecureTensor, _ w: SecureWeight) throws -> SecureTensor {
        precondition(x.shape.last == w.k, "matmulWeight shapes \(x.shape) x [\(w.k), \(w.n)]")
        let m = x.shape.reduce(1, *) / w.k
        return try apply(Array(x.shape.dropLast()) + [w.n], deal: { d in
            try d.maskedWeightTriple(handle: w.dealerHandle!, m: m, k: w.k, n: w.n)
            try d.bitProduct(count: m * w.n)
        }) { p in try p.matmulWeight(x.mine, w.masked!, narrow: w.narrow) }
    }

    /// Rows of the session table `w` (`[V, H]`, loaded with `lookup: true`) at the client's private token
    /// ids: the inputs `idsNames` (each `[each]`, integer ring values) stacked, `[names·each, H]`
    /// (`Party.lookupRows`, 1 round, 8·names·each·V bytes).
    public func lookupRows(_ idsNames: [String], each: Int, table w: SecureWeight) throws -> SecureTensor {
        let count = idsNames.count * each
        return try apply([count, w.n], deal: { d in try d.maskedWeightGroupTriple(handles: [w.dealerHandle!], m: count, k: w.k, n: w.n) }) { p in
            let ids = p.id == .client
                ? try ownedTokenIds(idsNames, each: each) : nil
            return try p.lookupRows(ids, count: count, table: w.masked!)
        }
    }

    /// GeLU (erf form), max error 9.7e-4 (`Party.gelu`).
    public func gelu(_ x: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.gelu(shape: x.shape) }) { try $0.gelu(x.mine) }
    }

    /// tanh, max error 6.7e-4 (`Party.tanh`; BERT's pooler).
    public func tanh(_ x: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.tanh(shape: x.shape) }) { try $0.tanh(x.mine) }
    }

    /// A piecewise polynomial by select-then-compute (`Party.piecewisePolynomial`).
    public func piecewise(_ x: SecureTensor, _ p: PiecewisePolynomial) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.piecewisePolynomial(shape: x.shape, p) }) { try $0.piecewisePolynomial(x.mine, p) }
    }

    /// MPCFormer "Quad" GeLU 0.125x² + 0.25x + 0.5 (`Party.quadGelu`).
    /// `narrow`: the square on Z_2^32 (a `ring_bits: 32` model).
    public func quadGelu(_ x: SecureTensor, narrow: Bool = false) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.quadGelu(shape: x.shape, narrow: narrow) }) { try $0.quadGelu(x.mine, narrow: narrow) }
    }

    /// exp for x ≤ 0 (`Party.exp`).
    public func exp(_ x: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.exp(shape: x.shape) }) { try $0.exp(x.mine) }
    }

    /// 1/x on [2^−10, 2^13) (`Party.reciprocal`).
    public func reciprocal(_ x: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.reciprocal(shape: x.shape) }) { try $0.reciprocal(x.mine) }
    }

    /// 1/√x on [2^−10, 2^13) (`Party.inverseSqrt`).
    public func inverseSqrt(_ x: SecureTensor) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.inverseSqrt(shape: x.shape) }) { try $0.inverseSqrt(x.mine) }
    }

    /// Softmax over the last dimension with max subtraction and an optional padding mask (`Party.softmax`).
    public func softmax(_ x: SecureTensor, mask: [Bool]? = nil) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.softmax(shape: x.shape) }) { try $0.softmax(x.mine, mask: mask) }
    }

    /// MPCFormer "2Quad" softmax (`Party.quadSoftmax`); `mask`: public key mask.
    public func quadSoftmax(_ x: SecureTensor, mask: [Bool]? = nil, c: Double = 5) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.quadSoftmax(shape: x.shape) }) { try $0.quadSoftmax(x.mine, mask: mask, c: c) }
    }

    /// `(x + c) ⊙ k` for the client's private key flags (`Party.multiplyByClientKeys`): padded keys become
    /// exact zeros before 2Quad attention, the length hidden from the server.
    public func multiplyByClientKeys(_ x: SecureTensor, keys: PrivateKeys, c: Double) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.multiplyByClientKeys(shape: x.shape, groups: keys.groups) }) {
            try $0.multiplyByClientKeys(x.mine, flags: keys.flags, groups: keys.groups, c: c)
        }
    }

    /// MPCFormer "2Quad" attention `softmax₂Quad(x)·V` for scores `[B, m, n]` and values `[B, n, d]`, the
    /// probabilities never opened (`Party.quadAttention`); `keys`: public key mask (`n` entries).
    public func quadAttention(_ x: SecureTensor, _ v: SecureTensor, keys: [Bool]? = nil, c: Double = 5) throws -> SecureTensor {
        try apply([x.shape[0], x.shape[1], v.shape[2]], deal: { try $0.quadAttention(scores: x.shape, headDim: v.shape[2], keys: keys) }) {
            try $0.quadAttention(x.mine, v.mine, keys: keys, c: c)
        }
    }

    /// LayerNorm over the last dimension with secret γ, β (`Party.layerNorm`; `preShift` as there).
    public func layerNorm(_ x: SecureTensor, gamma: SecureTensor, beta: SecureTensor, eps: Double = 1e-12,
                          preShift: Int = 0) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.layerNormSecret(shape: x.shape) }) {
            try $0.layerNorm(x.mine, gamma: gamma.mine, beta: beta.mine, eps: eps, preShift: preShift)
        }
    }

    /// LayerNorm with a server-owned gain prepared once per session (`gain`): no γ opening per query
    /// (`Party.layerNorm(_:gain:beta:)`).
    public func layerNorm(_ x: SecureTensor, gain: SecureWeight, beta: SecureTensor, eps: Double = 1e-12,
                          preShift: Int = 0) throws -> SecureTensor {
        try apply(x.shape, deal: { try $0.layerNormSecret(shape: x.shape, gainHandle: gain.dealerHandle!) }) {
            try $0.layerNorm(x.mine, gain: gain.masked!, beta: beta.mine, eps: eps, preShift: preShift)
        }
    }

    /// LayerNorm with either kind of gain.
    public func layerNorm(_ x: SecureTensor, gain: SecureGain, beta: SecureTensor, eps: Double = 1e-12,
                          preShift: Int = 0) throws -> SecureTensor {
        switch gain {
        case .owned(let w): return try layerNorm(x, gain: w, beta: beta, eps: eps, preShift: preShift)
        case .shared(let g): return try layerNorm(x, gamma: g, beta: beta, eps: eps, preShift: preShift)
        }
    }
}

// MARK: Select-then-compute (weight groups of one shape)

extension SecureBackend {
    /// `x · W_j` for every session weight of a group of one shape, stacked `[g, ..., n]`, at the online
    /// cost of one `matmulWeight` (`Party.matmulWeightGroup`). The weights must agree on `narrow`.
    public func matmulWeightGroup(_ x: SecureTensor, _ ws: [SecureWeight]) throws -> SecureTensor {
        precondition(!ws.isEmpty && ws.allSatisfy { $0.k == x.shape.last && $0.k == ws[0].k && $0.n == ws[0].n && $0.narrow == ws[0].narrow },
                     "matmulWeightGroup shapes \(x.shape) x \(ws.map { [$0.k, $0.n] })")
        let (k, n) = (ws[0].k, ws[0].n)
        let m = x.shape.reduce(1, *) / k
        return try apply([ws.count] + Array(x.shape.dropLast()) + [n], deal: { d in
            try d.maskedWeightGroupTriple(handles: ws.map { $0.dealerHandle! }, m: m, k: k, n: n)
            try d.bitProduct(count: ws.count * m * n)
        }) { p in try p.matmulWeightGroup(x.mine, ws.map { $0.masked! }, narrow: ws[0].narrow) }
    }

    /// Rows of every table of a group (`lookupRows` of each), stacked `[g, names·each, H]`, with one
    /// opening of the one-hot matrix (`Party.lookupRowsGroup`).
    public func lookupRowsGroup(_ idsNames: [String], each: Int, tables ws: [SecureWeight]) throws -> SecureTensor {
        let count = idsNames.count * each
        let (v, h) = (ws[0].k, ws[0].n)
        return try apply([ws.count, count, h], deal: { d in
            try d.maskedWeightGroupTriple(handles: ws.map { $0.dealerHandle! }, m: count, k: v, n: h)
        }) { p in
            let ids = p.id == .client
                ? try ownedTokenIds(idsNames, each: each) : nil
            return try p.lookupRowsGroup(ids, count: count, tables: ws.map { $0.masked! })
        }
    }

    /// Slice `j` of a stacked tensor `[g, rest...]`: `rest`. Local.
    public func slice(_ x: SecureTensor, _ j: Int) -> SecureTensor {
        let rest = Array(x.shape.dropFirst()), n = RingTensor.count(of: rest)
        return rearrange(x, to: rest, source: Array((j * n)..<((j + 1) * n)))
    }

    /// `Σ_j c_j · x_j` for stacked values `x [g, rest...]` and secret integer coefficients `c [g]` (a
    /// one-hot, or zeros): the entry of the chosen member, or zero. One batched Beaver product
    /// `[g,1,1]·[g,1,n]` of integers by fixed point (`matmulRaw`: exact, no truncation). Rounds: 1.
    /// Online bytes: 8·g·(1 + |rest|) from each party.
    public func select(_ x: SecureTensor, by c: SecureTensor) throws -> SecureTensor {
        let g = x.shape[0], rest = Array(x.shape.dropFirst()), n = RingTensor.count(of: rest)
        precondition(c.shape.reduce(1, *) == g, "select: \(g) stacked values, coefficients \(c.shape)")
        let picked = try matmulRaw(rearrange(c, to: [g, 1, 1], source: Array(0..<g)), rearrange(x, to: [g, 1, n], source: Array(0..<(g * n))))
        let flat = rearrange(picked, to: [g] + rest, source: Array(0..<(g * n)))
        return (1..<g).reduce(slice(flat, 0)) { acc, j in add(acc, slice(flat, j)) }
    }
}

extension SecureBackend {
    /// The owner's token-id inputs `names` (each `[each]`, integer ring values), concatenated.
    public func ownedTokenIds(_ names: [String], each: Int) throws -> [Int] {
        try names.flatMap { try ownedInput($0, shape: [each]).data.map { Int(Int64(bitPattern: $0)) } }
    }
}
