import MPC

/// One BERT classifier prepared for a session (its weights masked once) and the steps of a query on
/// it, so that a program can run a whole query (`BertProgram`) or split it (the router reuses the
/// first layers of a pool member, `RoutedBertProgram`).
///
/// Server inputs are named as in `BertProgram`, each preceded by `prefix` (`m0.`, `m1.`, ... for the
/// members of a pool); client inputs (`q{i}.ids`, `q{i}.mask`) are shared by all models of a session.
struct SecureBert {
    let model: SecureBertShape
    let prefix: String
    let embedding: Embedding
    let layers: [EncoderProgram.Layer]
    let pool: SecureWeight, cls: SecureWeight
    /// Rows of the position table the server passes (the widest bucket of the session).
    let positionRows: Int

    /// Setup: masks the model's weights for the session (server inputs named `prefix` + the usual names).
    init(_ model: SecureBertShape, prefix: String = "", widest: Int, on b: some SecureBackend) throws {
        let h = model.hidden
        self.model = model
        self.prefix = prefix
        positionRows = widest
        embedding = try Embedding(model, prefix: prefix, widest: widest, on: b)
        layers = try EncoderProgram.loadLayers(model.encoder(seq: widest), prefix: prefix, on: b)
        pool = try b.weight(prefix + "pool.w", k: h, n: h, narrow: model.narrowLinear)
        cls = try b.weight(prefix + "cls.w", k: h, n: model.classes, narrow: model.narrowLinear)
    }

    /// The state of a group of `g` stacked queries of bucket `s` partway through the model.
    struct State {
        var x: SecureTensor
        let queries: [Int], seq: Int
        /// Layers applied so far.
        var layer: Int
        /// `x` holds only each query's first-token row `[g, H]`: the model's last layer computed nothing else.
        var firstTokensOnly = false
    }

    /// A model's embedding tables for a session.
    enum Embedding {
        /// Private tables: the word table masked for lookups, the LayerNorm gain masked, its offset shared.
        case secret(word: SecureWeight, gain: SecureWeight, offset: SecureTensor)
        /// Public tables (`PublicEmbedding`), opened to the client at setup; nil on the server and the dealer.
        case open(PublicEmbedding?)

        /// Setup: masks the private tables, or opens the public ones to the client (8 bytes per value,
        /// once per session: `[V, H]` words, the `widest` position rows, gain and offset, and the public
        /// layers' weights).
        init(_ model: SecureBertShape, prefix: String, widest: Int, on b: some SecureBackend) throws {
            let h = model.hidden
            guard model.hasPublicEmbedding else {
                self = .secret(word: try b.weight(prefix + "emb.word", k: model.vocab, n: h, lookup: true),
                               gain: try b.gain(prefix + "emb.ln.g", n: h),
                               offset: try b.input(prefix + "emb.ln.b", owner: .server, shape: [h]))
                return
            }
            let fp = FixedPoint(fracBits: model.fracBits)
            func opened(_ name: String, _ shape: [Int]) throws -> [Double]? {
                try b.reveal(b.input(prefix + name, owner: .server, shape: shape), to: .client).map { fp.decode(input: name, $0) }
            }
            let tables = (try opened("emb.word", [model.vocab, h]), try opened("emb.pos", [widest, h]),
                          try opened("emb.ln.g", [h]), try opened("emb.ln.b", [h]))
            let layers = try (0..<(model.publicLayers ?? 0)).map { l in try SecureBertWeights.publicLayer(l, model) { try opened($0, $1) } }
            guard let word = tables.0, let position = tables.1, let gain = tables.2, let offset = tables.3 else {
                self = .open(nil)
                return
            }
            self = .open(PublicEmbedding(word: word, position: position, gain: gain, offset: offset, layers: layers.compactMap { $0 }, model: model))
        }
    }

    /// Embedding section: word rows (`lookupRows`), position and token-type rows, LayerNorm; with a public
    /// embedding, the client's plaintext rows secret-shared (0 rounds, 0 bytes).
    func embed(_ queries: [Int], seq s: Int, on b: some SecureBackend) throws -> State {
        let x = try b.section(BertProgram.Section.embedding) { () throws -> SecureTensor in
            switch embedding {
            case let .secret(word, gain, offset):
                let rows = try b.lookupRows(queries.map { "q\($0).ids" }, each: s, table: word)             // [g·S, H]
                let placed = try b.addOwnedRows(rows, prefix + "emb.pos", owner: .server, tableRows: positionRows, period: s)
                return try b.layerNorm(placed, gain: gain, beta: offset, eps: model.layerNormEps, preShift: BertProgram.embeddingNormShift)
            case let .open(table):
                return try b.clientEmbedding(queries, each: s, hidden: model.hidden, table)
            }
        }
        return State(x: x, queries: queries, seq: s, layer: 0)
    }

    /// The mean of the query's embedding rows over its real tokens, `[1, H]`, computed by the client from
    /// its plaintext rows (a public embedding only) and shared: 0 bytes, 0 rounds (the router's cheapest
    /// features).
    func meanEmbedding(query i: Int, seq s: Int, on b: some SecureBackend) throws -> SecureTensor {
        guard case let .open(table) = embedding else { preconditionFailure("meanEmbedding of a private embedding") }
        let shape = [1, model.hidden]
        return try b.apply(shape) { p in
            guard p.id == .client, let table else { return p.share(nil, owner: .client, shape: shape) }
            let ids = try b.ownedTokenIds(["q\(i).ids"], each: s)
            let length = try b.ownedInput("q\(i).mask", shape: [s]).data.filter { $0 != 0 }.count
            return p.share(table.ring(mean: try table.checked(ids), length: length, period: s), owner: .client, shape: shape)
        }
    }

    /// Runs encoder layers `state.layer ..< upTo` (padding hidden as `BertProgram` describes). The model's
    /// last layer computes the [CLS] rows alone (`EncoderProgram.encoderLayer(firstTokenOnly:)`), all that
    /// the pooler reads.
    func encode(_ state: State, upTo end: Int, on b: some SecureBackend) throws -> State {
        try encode(state, upTo: end, with: layers, on: b)
    }

    /// `encode` with other parameters of this shape (a selected group member's, `SecureBertGroup`).
    func encode<L: EncoderLayerParameters>(_ state: State, upTo end: Int, with layers: [L], on b: some SecureBackend) throws -> State {
        var state = state
        guard state.layer < end else { return state }
        let (s, g) = (state.seq, state.queries.count)
        let encoder = EncoderProgram(shape: model.encoder(seq: s))
        var layouts = [Int: EncoderProgram.HeadLayout]()
        /// The attention mask of a layer with `a` heads.
        let mask: (Int) -> AttentionMask
        switch model.softmax {
        case .exact:
            // Per score element of [g·A, S, S]: the key's mask in its own sequence (client only).
            let keyRows = b.partyID == .client
                ? try state.queries.map { i in try b.ownedInput("q\(i).mask", shape: [s]).data.map { $0 != 0 } } : nil
            mask = { a in
                AttentionMask(clientKeys: keyRows.map { rows in rows.flatMap { k in Array([[Bool]](repeating: k, count: a * s).joined()) } })
            }
        case .twoQuad:
            // [g·S] on the client: flags of sequence q apply to the A·S score rows of sequence q.
            let flags = b.partyID == .client
                ? try state.queries.flatMap { i in try b.ownedInput("q\(i).mask", shape: [s]).data.map { $0 != 0 } } : nil
            let keys = AttentionMask(privateKeys: PrivateKeys(flags: flags, groups: g))
            mask = { _ in keys }
        }
        for l in state.layer..<end {
            let a = encoder.shape.heads(l)
            let layout = layouts[a] ?? EncoderProgram.HeadLayout(encoder.shape, heads: a, batch: g)
            layouts[a] = layout
            let last = l == model.layers - 1
            state.x = try encoder.encoderLayer(state.x, layers[l], index: l, heads: layout, mask: mask(a), firstTokenOnly: last, on: b)
            state.firstTokensOnly = last
        }
        state.layer = end
        return state
    }

    /// The [CLS] rows `[g, H]` of a state.
    func firstTokens(_ state: State, on b: some SecureBackend) -> SecureTensor {
        if state.firstTokensOnly { return state.x }
        let (s, h) = (state.seq, model.hidden)
        return b.rearrange(state.x, to: [state.queries.count, h], source: (0..<state.queries.count).flatMap { q in (0..<h).map { q * s * h + $0 } })
    }

    /// Head section: pooler (tanh) and classifier on the [CLS] rows: logits `[g, C]`.
    func logits(_ state: State, on b: some SecureBackend) throws -> SecureTensor {
        precondition(state.layer == model.layers, "logits of a state after \(state.layer) of \(model.layers) layers")
        return try b.section(EncoderProgram.Section.head) {
            let pooled = try b.tanh(b.addOwned(b.matmulWeight(firstTokens(state, on: b), pool), prefix + "pool.b", owner: .server))
            return try b.addOwned(b.matmulWeight(pooled, cls), prefix + "cls.b", owner: .server)
        }
    }
}

/// Pool members of one shape run as one model whose parameters a secret one-hot selects
/// (select-then-compute, SecMoE 2026): the embedding lookup and every linear map run for all members
/// at the online cost of one, the chosen member's output is kept by the one-hot, and the attention,
/// softmax, activations and LayerNorms run once. With all-zero coefficients (the router chose a member
/// outside the group) the result is garbage that the caller multiplies by zero.
struct SecureBertGroup {
    let members: [SecureBert]
    var model: SecureBertShape { members[0].model }

    init(_ members: [SecureBert]) {
        precondition(members.count >= 2 && members.allSatisfy { $0.model == members[0].model }, "SecureBertGroup: members of different shapes")
        self.members = members
    }

    /// The chosen member's logits `[1, C]` for query `i` of bucket `s`; `coefficients` `[g]` is the
    /// group's part of the router's one-hot.
    func logits(query i: Int, seq s: Int, coefficients c: SecureTensor, on b: some SecureBackend) throws -> SecureTensor {
        let h = model.hidden
        let x = try b.section(BertProgram.Section.embedding) { () throws -> SecureTensor in
            let secret = members.compactMap { m -> (word: SecureWeight, gain: SecureWeight, offset: SecureTensor)? in
                guard case let .secret(word, gain, offset) = m.embedding else { return nil }
                return (word, gain, offset)
            }
            guard secret.count == members.count else {
                // Public embeddings (one shape, so all public): each member's rows from the client, then selected.
                let tables = members.map { m -> PublicEmbedding? in
                    guard case let .open(t) = m.embedding else { preconditionFailure("SecureBertGroup: mixed embeddings") }
                    return t
                }
                return try b.select(b.stack(tables.map { try b.clientEmbedding([i], each: s, hidden: h, $0) }), by: c)
            }
            let rows = try b.lookupRowsGroup(["q\(i).ids"], each: s, tables: secret.map(\.word))        // [g, S, H]
            let placed = try members.enumerated().map { j, m in
                try b.addOwnedRows(b.slice(rows, j), m.prefix + "emb.pos", owner: .server, tableRows: m.positionRows, period: s)
            }
            let ln = try b.select(b.stack(secret.map { b.stack([b.shares(of: $0.gain), $0.offset]) }), by: c)            // [2, H]
            return try b.layerNorm(b.select(b.stack(placed), by: c), gamma: b.slice(ln, 0), beta: b.slice(ln, 1), eps: model.layerNormEps,
                                   preShift: BertProgram.embeddingNormShift)
        }
        let layers = try EncoderProgram.SelectedLayer.select(members.map(\.layers), coefficients: c, on: b)
        let state = try members[0].encode(SecureBert.State(x: x, queries: [i], seq: s, layer: 0), upTo: model.layers, with: layers, on: b)
        return try b.section(EncoderProgram.Section.head) {
            func linear(_ x: SecureTensor, _ w: KeyPath<SecureBert, SecureWeight>, bias: String) throws -> SecureTensor {
                let all = try b.matmulWeightGroup(x, members.map { $0[keyPath: w] })
                let biased = try members.enumerated().map { j, m in try b.addOwned(b.slice(all, j), m.prefix + bias, owner: .server) }
                return try b.select(b.stack(biased), by: c)
            }
            let first = members[0].firstTokens(state, on: b)
            precondition(first.shape == [1, h])
            let pooled = try b.tanh(linear(first, \.pool, bias: "pool.b"))
            return try linear(pooled, \.cls, bias: "cls.b")
        }
    }
}

extension SecureBackend {
    /// The client's plaintext embedding (`PublicEmbedding`, with the public layers if any) of its queries
    /// `queries` (token ids `q{i}.ids`, each `[each]`, real lengths from `q{i}.mask`), stacked and
    /// secret-shared, `[queries·each, H]`: 0 rounds, 0 bytes (`Party.share`). `table` is the client's
    /// copy (nil on the server and the dealer).
    func clientEmbedding(_ queries: [Int], each: Int, hidden h: Int, _ table: PublicEmbedding?) throws -> SecureTensor {
        let shape = [queries.count * each, h]
        return try apply(shape) { p in
            guard p.id == .client, let table else { return p.share(nil, owner: .client, shape: shape) }
            let ids = try ownedTokenIds(queries.map { "q\($0).ids" }, each: each)
            let lengths = try queries.map { i in try ownedInput("q\(i).mask", shape: [each]).data.filter { $0 != 0 }.count }
            return p.share(table.ring(try table.checked(ids), period: each, lengths: lengths), owner: .client, shape: shape)
        }
    }
}
