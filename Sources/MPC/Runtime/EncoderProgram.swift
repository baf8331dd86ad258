import Foundation

/// Softmax of a secure encoder's attention.
public enum SecureSoftmax: String, Codable, Sendable, CaseIterable {
    /// `exp(x − max) / Σ exp(x − max)` (`SecureBackend.softmax`).
    case exact
    /// MPCFormer "2Quad" `(x + c)² / Σ (x + c)²`, c = 5 (`SecureBackend.quadSoftmax`).
    case twoQuad = "2quad"
}

/// Activation of a secure encoder's feed-forward layer.
public enum SecureActivation: String, Codable, Sendable, CaseIterable {
    /// GeLU, erf form (`SecureBackend.gelu`).
    case gelu
    /// MPCFormer "Quad" `0.125x² + 0.25x + 0.5` (`SecureBackend.quadGelu`).
    case quad
    /// `max(x, 0)` (`SecureBackend.relu`).
    case relu
}

/// How a secure encoder's attention hides padding keys.
public struct AttentionMask {
    /// Public key mask (`true` = real token), known to both parties (benchmarks with a public length).
    public var publicKeys: [Bool]?
    /// Exact softmax with a private length: the key mask on the client, nil on the server (the client
    /// alone offsets its share of the padded scores, so the server learns nothing).
    public var clientKeys: [Bool]?
    /// 2Quad with private lengths: the client's key flags of each stacked sequence.
    public var privateKeys: PrivateKeys?

    public init(publicKeys: [Bool]? = nil, clientKeys: [Bool]? = nil, privateKeys: PrivateKeys? = nil) {
        self.publicKeys = publicKeys
        self.clientKeys = clientKeys
        self.privateKeys = privateKeys
    }
}

extension AttentionMask {
    /// The mask of the first query row of each of `blocks` score blocks `[S, keys]` (`encoderLayer(firstTokenOnly:)`):
    /// per-element client keys keep each block's first row; per-key and private masks do not depend on rows.
    func firstQueryRows(blocks: Int, keys n: Int) -> AttentionMask {
        guard let k = clientKeys, k.count != n else { return self }
        precondition(k.count == blocks * n * n, "firstQueryRows: \(k.count) key flags for \(blocks) blocks of \(n)×\(n)")
        return AttentionMask(publicKeys: publicKeys, clientKeys: (0..<blocks).flatMap { k[($0 * n * n)..<($0 * n * n + n)] }, privateKeys: privateKeys)
    }
}

/// Which keys of G stacked sequences are real tokens, known to the client alone (`Party.multiplyByClientKeys`).
public struct PrivateKeys {
    /// `G·S` flags on the client (`true` = real token); nil on the server and the dealer.
    public var flags: [Bool]?
    /// G, known to every role.
    public var groups: Int

    public init(flags: [Bool]?, groups: Int) {
        self.flags = flags
        self.groups = groups
    }
}

/// Shapes and variant of a BERT-style encoder run under MPC from hidden states.
public struct EncoderShape: Codable, Sendable, Equatable {
    /// Layers L, hidden width H, heads A, feed-forward width I, sequence length S, classes C.
    public var layers: Int, hidden: Int, heads: Int, intermediate: Int, seq: Int, classes: Int
    public var softmax: SecureSoftmax
    public var activation: SecureActivation
    /// Real tokens at the start of the sequence; keys beyond are padding, masked in attention (public:
    /// the length bucket and this count are known to both parties). nil: all `seq` are real.
    public var validLength: Int?
    /// LayerNorm epsilon.
    public var layerNormEps: Double
    /// Pruned models: each layer's head count (the head width stays `hidden / heads`), or nil: `heads` everywhere.
    public var layerHeads: [Int]?
    /// Pruned models: each layer's feed-forward width, or nil: `intermediate` everywhere.
    public var layerIntermediate: [Int]?
    /// Ring of the linear layers' products: 32 (`narrowLinear`: Z_2^32, half their bytes; a model trained
    /// for it, `ring_bits: 32`), or nil / 64: Z_2^64. Every other protocol runs on Z_2^64 either way.
    public var ringBits: Int?
    /// Whether the linear layers (weight products, `Q·Kᵀ`, `P·V`, pooler, classifier) run on Z_2^32.
    public var narrowLinear: Bool { ringBits == 32 }

    public init(layers: Int, hidden: Int, heads: Int, intermediate: Int, seq: Int, classes: Int = 2,
                softmax: SecureSoftmax = .exact, activation: SecureActivation = .gelu, validLength: Int? = nil,
                layerNormEps: Double = 1e-12, layerHeads: [Int]? = nil, layerIntermediate: [Int]? = nil, ringBits: Int? = nil) {
        self.ringBits = ringBits
        self.layerHeads = layerHeads
        self.layerIntermediate = layerIntermediate
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.intermediate = intermediate
        self.seq = seq
        self.classes = classes
        self.softmax = softmax
        self.activation = activation
        self.validLength = validLength
        self.layerNormEps = layerNormEps
    }

    enum CodingKeys: String, CodingKey {
        case layers, hidden, heads, intermediate, seq, classes, softmax, activation
        case validLength = "valid_length", layerNormEps = "layer_norm_eps"
        case layerHeads = "layer_heads", layerIntermediate = "layer_intermediate", ringBits = "ring_bits"
    }

    /// Head width D = H / A.
    public var headDim: Int { hidden / heads }
    /// Heads of layer `l`.
    public func heads(_ l: Int) -> Int { layerHeads?[l] ?? heads }
    /// Feed-forward width of layer `l`.
    public func intermediate(_ l: Int) -> Int { layerIntermediate?[l] ?? intermediate }
    /// Width of layer `l`'s query, key, value and context: heads(l)·D.
    public func attentionWidth(_ l: Int) -> Int { heads(l) * headDim }

    /// Why these shapes cannot run, or nil.
    public var problem: String? {
        if [layers, hidden, heads, intermediate, seq, classes].contains(where: { $0 < 1 }) { return "every size must be at least 1" }
        if hidden % heads != 0 { return "hidden width \(hidden) is not a multiple of the head count \(heads)" }
        if classes < 2 { return "need at least 2 classes" }
        if let v = validLength, v < 1 || v > seq { return "valid length \(v) outside 1...\(seq)" }
        if let r = ringBits, r != 32 && r != 64 { return "ring_bits \(r): the linear layers run on Z_2^64 or Z_2^32" }
        for (key, list) in [("layer heads", layerHeads), ("layer widths", layerIntermediate)] {
            guard let list else { continue }
            if list.count != layers { return "\(key) list \(list.count) layers, the shape has \(layers)" }
            if list.contains(where: { $0 < 1 }) { return "every entry of the \(key) must be at least 1" }
        }
        return nil
    }
}

/// A BERT-style encoder evaluated under MPC from hidden states (no embedding): the program of
/// `securerouter bench secure` (DESIGN §2) and the encoder part of secure inference.
///
/// Inputs. Client: `x [S, H]` (hidden states, fixed point). Server, per layer `l`: `l.qkv.w [H, 3H]`
/// (query, key, value weights side by side, `[in, out]`, the query part already scaled by 1/√D), `l.qkv.b
/// [3H]`, `l.out.w [H, H]`, `l.out.b`, `l.ln1.g`, `l.ln1.b` `[H]`, `l.ffn1.w [H, I]`, `l.ffn1.b [I]`,
/// `l.ffn2.w [I, H]`, `l.ffn2.b`, `l.ln2.g`, `l.ln2.b` `[H]`; then `cls.w [H, C]`, `cls.b [C]`.
///
/// Setup (once per session, before the input is known): every weight matrix is masked and sent to the
/// client (`weight`); LayerNorm gains and offsets are secret-shared. Online, per layer (post-LN BERT):
/// `qkv = x·Wqkv + b` (1 round); scores `Q·Kᵀ` per head (Beaver, 1 round); softmax with the padding mask;
/// context `P·V` (1 round); `x = LN(x + ctx·Wo + b)`; `x = LN(x + act(x·W1 + b1)·W2 + b2)`. Then
/// `logits = x[0]·Wc + bc`, secret argmax, the index revealed to the client only (and the logits too
/// with `revealLogits`, for error measurements). Biases are added by the server to its share (free).
public struct EncoderProgram: SecureProgram, Equatable {
    public static let name = "encoder"
    /// `preShift` of the encoder layers' LayerNorms (`Party.layerNorm`): their inputs are residual sums
    /// with row variances ≥ 0.1 in trained models, and their `d²` are the largest values a BERT query
    /// truncates (outlier dimensions reach |d| ≈ 200); 2 bits cut those products' failure rate 16x.
    public static let layerNormPreShift = 2
    /// `rightShift` of the attention scores `Q·Kᵀ` (`Party.matmul`): K keeps 14 of 16 fractional bits
    /// (6e-5), and the scores' products, the next largest values truncated, shrink 4x.
    public static let keyShift = 2
    public var shape: EncoderShape

    /// Whether 2Quad attention runs fused (`SecureBackend.quadAttention`, after the private key flags when the
    /// length is private: the [S, S] probabilities are not opened, the [S, D] context is) rather than as
    /// softmax then `P·V`: when that opens less (D < S), and while its offline record (8·S²·D bytes per head) stays moderate (S ≤ 128).
    /// Not on a model whose linear layers run on Z_2^32 (`narrow`): its `P·V` is a narrow product, which
    /// opens less than the fused protocol (on Z_2^64) and is what its quantization-aware training models.
    public static func fusesQuadAttention(seq n: Int, headDim d: Int, narrow: Bool) -> Bool { !narrow && d < n && n <= 128 }
    /// MPCFormer's 2Quad shift c in `(x + c)²`.
    public static let quadShift = 5.0
    /// Also open the logits to the client (benchmarks measure their error; real queries do not).
    public var revealLogits: Bool

    public init(shape: EncoderShape, revealLogits: Bool = false) {
        self.shape = shape
        self.revealLogits = revealLogits
    }

    enum CodingKeys: String, CodingKey { case shape, revealLogits = "reveal_logits" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        shape = try c.decode(EncoderShape.self, forKey: .shape)
        revealLogits = try c.decodeIfPresent(Bool.self, forKey: .revealLogits) ?? false
        if let p = shape.problem { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: p)) }
    }

    /// The client's result: the predicted class, and the logits (ring words) if revealed.
    public struct Prediction: Codable, Sendable, Equatable {
        public var label: Int
        public var logits: [UInt64]?
    }

    /// Profile sections of the program (cost breakdown by layer type, issue 4's report).
    public enum Section {
        public static let attentionLinear = "attention linear", softmax = "softmax", ffn = "ffn",
            activation = "activation", norm = "norm", head = "head", setup = "setup"
    }

    /// One layer's session state (its weights masked, its LayerNorm parameters shared).
    public struct Layer: EncoderLayerParameters {
        var qkv: SecureWeight, out: SecureWeight, ffn1: SecureWeight, ffn2: SecureWeight
        var ln1g: SecureWeight, ln1b: SecureTensor, ln2g: SecureWeight, ln2b: SecureTensor
        /// Prefix of the server inputs of this layer (its biases are read by name as it runs).
        var prefix: String

        func weight(_ kind: Linear) -> SecureWeight {
            switch kind {
            case .qkv: return qkv
            case .out: return out
            case .ffn1: return ffn1
            case .ffn2: return ffn2
            }
        }

        /// `x·W + b` with the server's bias input `<prefix><l>.<kind>.b`.
        public func linear(_ kind: Linear, _ x: SecureTensor, layer l: Int, on b: some SecureBackend) throws -> SecureTensor {
            try b.addOwned(b.matmulWeight(x, weight(kind)), "\(prefix)\(l).\(kind.rawValue).b", owner: .server)
        }

        public func norm(afterFFN: Bool) -> (gamma: SecureGain, beta: SecureTensor) { afterFFN ? (.owned(ln2g), ln2b) : (.owned(ln1g), ln1b) }
    }

    /// The linear maps of an encoder layer (named as the server's inputs: `<l>.qkv.w`, ...).
    public enum Linear: String, CaseIterable { case qkv, out, ffn1, ffn2 }

    /// One layer of a secretly chosen member of a group of models of one shape (select-then-compute,
    /// SecMoE): every linear map runs for all members at the online cost of one
    /// (`SecureBackend.matmulWeightGroup`) and a secret one-hot keeps the chosen member's output; the
    /// LayerNorm parameters are selected once per query; softmax, activation and normalisation run once.
    /// With all-zero coefficients (the choice is outside the group) every output is zero.
    public struct SelectedLayer: EncoderLayerParameters {
        let members: [Layer]
        let coefficients: SecureTensor
        let ln1: (SecureTensor, SecureTensor), ln2: (SecureTensor, SecureTensor)

        /// The layers of a group for one query: `members[j]` holds member j's layers (all of one shape),
        /// `coefficients` `[g]` the secret integer one-hot (or zeros). Selects every LayerNorm γ and β of
        /// every layer in one round.
        public static func select(_ members: [[Layer]], coefficients: SecureTensor, on b: some SecureBackend) throws -> [SelectedLayer] {
            let g = members.count, count = members[0].count
            precondition(g >= 1 && members.allSatisfy { $0.count == count }, "SelectedLayer: members with different layer counts")
            let h = members[0][0].ln1g.n
            let rows = members.map { layers in b.stack(layers.flatMap { [b.shares(of: $0.ln1g), $0.ln1b, b.shares(of: $0.ln2g), $0.ln2b] }) }   // [4L, H] each
            let picked = try b.select(b.stack(rows), by: coefficients)                                             // [4L, H]
            return (0..<count).map { l in
                func part(_ i: Int) -> SecureTensor { b.rearrange(picked, to: [h], source: Array(((4 * l + i) * h)..<((4 * l + i + 1) * h))) }
                return SelectedLayer(members: members.map { $0[l] }, coefficients: coefficients, ln1: (part(0), part(1)), ln2: (part(2), part(3)))
            }
        }

        public func linear(_ kind: Linear, _ x: SecureTensor, layer l: Int, on b: some SecureBackend) throws -> SecureTensor {
            let all = try b.matmulWeightGroup(x, members.map { $0.weight(kind) })
            let biased = try members.enumerated().map { j, m in
                try b.addOwned(b.slice(all, j), "\(m.prefix)\(l).\(kind.rawValue).b", owner: .server)
            }
            return try b.select(b.stack(biased), by: coefficients)
        }

        public func norm(afterFFN: Bool) -> (gamma: SecureGain, beta: SecureTensor) { afterFFN ? (.shared(ln2.0), ln2.1) : (.shared(ln1.0), ln1.1) }
    }

    /// Prepares every layer's weights for the session (setup: server inputs named as in the type's doc,
    /// each name preceded by `prefix`, e.g. `m0.` for the first model of a pool).
    public static func loadLayers(_ s: EncoderShape, prefix: String = "", on b: some SecureBackend) throws -> [Layer] {
        let h = s.hidden
        return try (0..<s.layers).map { l in
            let (w, i, p, narrow) = (s.attentionWidth(l), s.intermediate(l), "\(prefix)\(l)", s.narrowLinear)
            return Layer(qkv: try b.weight("\(p).qkv.w", k: h, n: 3 * w, narrow: narrow), out: try b.weight("\(p).out.w", k: w, n: h, narrow: narrow),
                  ffn1: try b.weight("\(p).ffn1.w", k: h, n: i, narrow: narrow), ffn2: try b.weight("\(p).ffn2.w", k: i, n: h, narrow: narrow),
                  ln1g: try b.gain("\(p).ln1.g", n: h), ln1b: try b.input("\(p).ln1.b", owner: .server, shape: [h]),
                  ln2g: try b.gain("\(p).ln2.g", n: h), ln2b: try b.input("\(p).ln2.b", owner: .server, shape: [h]),
                  prefix: prefix)
        }
    }

    public func run(on b: some SecureBackend) throws -> Prediction? {
        let s = shape
        let h = s.hidden
        // Setup: weights masked once per session.
        b.enterSection(Section.setup)
        let layers = try Self.loadLayers(s, on: b)
        let cls = try b.weight("cls.w", k: h, n: s.classes, narrow: s.narrowLinear)
        b.beginOnline()
        var x = try b.input("x", owner: .client, shape: [s.seq, h])
        var layouts = [Int: HeadLayout]()
        let mask = AttentionMask(publicKeys: s.validLength.map { v in (0..<s.seq).map { $0 < v } })
        for l in 0..<s.layers {
            let heads = layouts[s.heads(l)] ?? HeadLayout(s, heads: s.heads(l))
            layouts[s.heads(l)] = heads
            x = try encoderLayer(x, layers[l], index: l, heads: heads, mask: mask, on: b)
        }
        return try b.section(Section.head) {
            let first = b.rearrange(x, to: [1, h], source: Array(0..<h))
            let logits = try b.addOwned(b.matmulWeight(first, cls), "cls.b", owner: .server)
            let opened = revealLogits ? try b.reveal(logits, to: .client) : nil
            let (_, oneHot) = try b.argmax(logits)
            return try b.revealIndex(oneHot, to: .client).map { Prediction(label: $0[0], logits: opened?.data) }
        }
    }

    /// One post-LN encoder layer on `x [B·S, H]` (sections: attention linear, softmax, norm, ffn, activation);
    /// `heads` must be the layout of this layer's head count. `w`: one model's layer, or a secretly
    /// selected member's (`SelectedLayer`).
    ///
    /// With `firstTokenOnly` the layer returns only each sequence's first ([CLS]) row, `[B, H]`: keys and
    /// values come from every token, but the query, the softmax, the output map, the LayerNorms and the
    /// feed-forward run on one row per sequence. A classifier's last layer needs nothing else (rows do not
    /// mix after attention), and that row is the same computation as in the full layer.
    public func encoderLayer(_ x: SecureTensor, _ w: some EncoderLayerParameters, index l: Int, heads: HeadLayout, mask: AttentionMask,
                             firstTokenOnly: Bool = false, on b: some SecureBackend) throws -> SecureTensor {
        let s = shape
        let (n, a, d, width) = (s.seq, s.heads(l), s.headDim, s.attentionWidth(l))
        precondition(heads.heads == a, "encoderLayer: head layout for \(heads.heads) heads, layer \(l) has \(a)")
        let ba = heads.batch * a, m = firstTokenOnly ? 1 : n                                    // m: query rows per sequence
        let (q, kT, v) = try b.section(Section.attentionLinear) {
            let qkv = try w.linear(.qkv, x, layer: l, on: b)                                    // [S, 3·A·D]
            // Q [A, m, D], Kᵀ [A, D, S], V [A, S, D] (local rearrangements of the shares).
            return (b.rearrange(qkv, to: [ba, m, d], source: firstTokenOnly ? heads.firstQ : heads.q),
                    b.rearrange(qkv, to: [ba, d, n], source: heads.kT), b.rearrange(qkv, to: [ba, n, d], source: heads.v))
        }
        let scores = try b.section(Section.attentionLinear) { try b.matmul(q, kT, rightShift: EncoderProgram.keyShift, narrow: s.narrowLinear) }   // [A, m, S]
        let mask = firstTokenOnly ? mask.firstQueryRows(blocks: ba, keys: n) : mask
        let ctx: SecureTensor                                                                     // [A, m, D]
        // 2Quad with private lengths: (x + c)·k first, padded keys exact zeros, then c = 0 below.
        let (quadScores, c) = try mask.privateKeys.map { keys in
            (try b.section(Section.softmax) { try b.multiplyByClientKeys(scores, keys: keys, c: Self.quadShift) }, 0.0)
        } ?? (scores, Self.quadShift)
        if s.softmax == .twoQuad && Self.fusesQuadAttention(seq: n, headDim: d, narrow: s.narrowLinear) {
            ctx = try b.section(Section.softmax) { try b.quadAttention(quadScores, v, keys: mask.publicKeys, c: c) }
        } else {
            let p = try b.section(Section.softmax) {
                switch s.softmax {
                case .exact: return try b.softmax(scores, mask: mask.publicKeys ?? mask.clientKeys)
                case .twoQuad: return try b.quadSoftmax(quadScores, mask: mask.publicKeys, c: c)
                }
            }
            ctx = try b.section(Section.attentionLinear) { try b.matmul(p, v, narrow: s.narrowLinear) }
        }
        let attended = try b.section(Section.attentionLinear) { () throws -> SecureTensor in
            let merged = b.rearrange(ctx, to: [heads.batch * m, width], source: firstTokenOnly ? heads.firstMerge : heads.merge)
            return try w.linear(.out, merged, layer: l, on: b)
        }
        let residual = firstTokenOnly ? b.rearrange(x, to: [heads.batch, s.hidden], source: heads.firstRows) : x
        let (g1, b1) = w.norm(afterFFN: false), (g2, b2) = w.norm(afterFFN: true)
        let x1 = try b.section(Section.norm) { try b.layerNorm(b.add(residual, attended), gain: g1, beta: b1, eps: s.layerNormEps, preShift: EncoderProgram.layerNormPreShift) }
        let f1 = try b.section(Section.ffn) { try w.linear(.ffn1, x1, layer: l, on: b) }
        let g = try b.section(Section.activation) {
            switch s.activation {
            case .gelu: return try b.gelu(f1)
            case .quad: return try b.quadGelu(f1, narrow: s.narrowLinear)
            case .relu: return try b.relu(f1)
            }
        }
        let f2 = try b.section(Section.ffn) { try w.linear(.ffn2, g, layer: l, on: b) }
        return try b.section(Section.norm) { try b.layerNorm(b.add(x1, f2), gain: g2, beta: b2, eps: s.layerNormEps, preShift: EncoderProgram.layerNormPreShift) }
    }

    /// The head split and merge permutations of one shape and head count (computed once per run, used by
    /// every layer with that many heads), for `batch` sequences stacked as `x [batch·S, H]` (their attention
    /// stays within each sequence).
    public struct HeadLayout {
        /// Sources of Q `[B·A, S, D]`, Kᵀ `[B·A, D, S]`, V `[B·A, S, D]` in `qkv [B·S, 3·A·D]`, and of
        /// `[B·S, A·D]` in `[B·A, S, D]`.
        let q: [Int], kT: [Int], v: [Int], merge: [Int]
        /// The same for the first token of each sequence alone (`encoderLayer(firstTokenOnly:)`): Q `[B·A, 1, D]`,
        /// `[B, A·D]` from `[B·A, 1, D]`, and the rows `[B, H]` of `x [B·S, H]`.
        let firstQ: [Int], firstMerge: [Int], firstRows: [Int]
        /// Sequences stacked.
        public let batch: Int
        /// Heads A of the layers this layout serves.
        public let heads: Int
        /// - `heads`: the layer's head count (default: the shape's unpruned `heads`).
        public init(_ s: EncoderShape, heads: Int? = nil, batch: Int = 1) {
            let a = heads ?? s.heads, (n, d) = (s.seq, s.headDim), aw = a * s.headDim, w = 3 * aw
            self.batch = batch
            self.heads = a
            func stacked(_ one: [Int], stride: Int) -> [Int] { (0..<batch).flatMap { b in one.map { $0 + b * stride } } }
            q = stacked(EncoderProgram.headIndices(a: a, n: n, d: d, offset: 0, width: w, transposed: false), stride: n * w)
            kT = stacked(EncoderProgram.headIndices(a: a, n: n, d: d, offset: aw, width: w, transposed: true), stride: n * w)
            v = stacked(EncoderProgram.headIndices(a: a, n: n, d: d, offset: 2 * aw, width: w, transposed: false), stride: n * w)
            merge = stacked(EncoderProgram.mergeIndices(a: a, n: n, d: d), stride: a * n * d)
            firstQ = stacked(EncoderProgram.headIndices(a: a, n: 1, d: d, offset: 0, width: w, transposed: false), stride: n * w)
            firstMerge = stacked(EncoderProgram.mergeIndices(a: a, n: 1, d: d), stride: a * d)
            firstRows = stacked(Array(0..<s.hidden), stride: n * s.hidden)
        }
    }

    /// Flat source indices of head-split `[A, S, D]` (or `[A, D, S]` when `transposed`) from rows of
    /// `width` starting at column `offset`.
    static func headIndices(a: Int, n: Int, d: Int, offset: Int, width: Int, transposed: Bool) -> [Int] {
        var out = [Int]()
        out.reserveCapacity(a * n * d)
        for head in 0..<a {
            if transposed {
                for e in 0..<d { for s in 0..<n { out.append(s * width + offset + head * d + e) } }
            } else {
                for s in 0..<n { for e in 0..<d { out.append(s * width + offset + head * d + e) } }
            }
        }
        return out
    }

    /// Flat source indices of `[S, A·D]` from `[A, S, D]` (heads merged back).
    static func mergeIndices(a: Int, n: Int, d: Int) -> [Int] {
        var out = [Int]()
        out.reserveCapacity(a * n * d)
        for s in 0..<n { for head in 0..<a { for e in 0..<d { out.append((head * n + s) * d + e) } } }
        return out
    }

    // MARK: Synthetic data and the plaintext reference

    public func syntheticInputs(for party: PartyID, seed: UInt64) -> [String: RingTensor] {
        var g = SyntheticData(seed: seed)
        let fp = fixedPoint
        switch party {
        case .client:
            // Hidden states of a LayerNorm output: zero mean, unit-ish spread.
            return ["x": fp.encode(g.doubles(shape.seq * shape.hidden, range: 1.7), shape: [shape.seq, shape.hidden])]
        case .server:
            return EncoderWeights.random(shape, generator: &g).ringInputs(fixedPoint: fp)
        }
    }
}

/// The parameters an encoder layer runs with: one model's (`EncoderProgram.Layer`) or a secretly
/// selected member of a group of one shape (`EncoderProgram.SelectedLayer`).
public protocol EncoderLayerParameters {
    /// `x·W + b` for the layer's linear map `kind` (layer index `l` names the server's bias input).
    func linear(_ kind: EncoderProgram.Linear, _ x: SecureTensor, layer l: Int, on b: some SecureBackend) throws -> SecureTensor
    /// γ and β of the LayerNorm after attention (false) or after the feed-forward block (true).
    func norm(afterFFN: Bool) -> (gamma: SecureGain, beta: SecureTensor)
}

/// Plaintext weights of an `EncoderProgram` (Double, `[in, out]` layout, query not yet scaled), the
/// source of the server's ring inputs and of the float reference forward.
public struct EncoderWeights: Sendable {
    public struct Layer: Sendable {
        public var qkvW: [Double], qkvB: [Double], outW: [Double], outB: [Double]
        public var ln1G: [Double], ln1B: [Double], ffn1W: [Double], ffn1B: [Double]
        public var ffn2W: [Double], ffn2B: [Double], ln2G: [Double], ln2B: [Double]

        public init(qkvW: [Double], qkvB: [Double], outW: [Double], outB: [Double], ln1G: [Double], ln1B: [Double],
                    ffn1W: [Double], ffn1B: [Double], ffn2W: [Double], ffn2B: [Double], ln2G: [Double], ln2B: [Double]) {
            self.qkvW = qkvW; self.qkvB = qkvB; self.outW = outW; self.outB = outB
            self.ln1G = ln1G; self.ln1B = ln1B; self.ffn1W = ffn1W; self.ffn1B = ffn1B
            self.ffn2W = ffn2W; self.ffn2B = ffn2B; self.ln2G = ln2G; self.ln2B = ln2B
        }
    }
    public var shape: EncoderShape
    public var layers: [Layer]
    public var clsW: [Double], clsB: [Double]

    public init(shape: EncoderShape, layers: [Layer], clsW: [Double], clsB: [Double]) {
        self.shape = shape
        self.layers = layers
        self.clsW = clsW
        self.clsB = clsB
    }

    /// Random weights at the scale of a trained encoder: matrices uniform with variance 1/fan-in (so
    /// projections and attention scores have unit spread), small biases, gains near 1.
    public static func random(_ s: EncoderShape, generator g: inout SyntheticData) -> EncoderWeights {
        let h = s.hidden
        func mat(_ fanIn: Int, _ count: Int) -> [Double] { g.doubles(count, range: (3.0 / Double(fanIn)).squareRoot()) }
        let layers = (0..<s.layers).map { l in
            let (w, i) = (s.attentionWidth(l), s.intermediate(l))
            return Layer(qkvW: mat(h, h * 3 * w), qkvB: g.doubles(3 * w, range: 0.1), outW: mat(w, w * h), outB: g.doubles(h, range: 0.1),
                  ln1G: g.doubles(h, range: 0.25).map { 1 + $0 }, ln1B: g.doubles(h, range: 0.2),
                  ffn1W: mat(h, h * i), ffn1B: g.doubles(i, range: 0.1), ffn2W: mat(i, i * h), ffn2B: g.doubles(h, range: 0.1),
                  ln2G: g.doubles(h, range: 0.25).map { 1 + $0 }, ln2B: g.doubles(h, range: 0.2))
        }
        return EncoderWeights(shape: s, layers: layers, clsW: mat(h, h * s.classes), clsB: g.doubles(s.classes, range: 0.1))
    }

    /// The server's private inputs of `EncoderProgram` (the query weights and bias scaled by 1/√D).
    public func ringInputs(fixedPoint fp: FixedPoint) -> [String: RingTensor] {
        let h = shape.hidden
        let scale = 1 / Double(shape.headDim).squareRoot()
        var out = [String: RingTensor]()
        for (l, w) in layers.enumerated() {
            let (aw, i) = (shape.attentionWidth(l), shape.intermediate(l))
            let qkvW = w.qkvW.enumerated().map { $0.offset % (3 * aw) < aw ? $0.element * scale : $0.element }
            let qkvB = w.qkvB.enumerated().map { $0.offset < aw ? $0.element * scale : $0.element }
            out["\(l).qkv.w"] = fp.weights.encode(qkvW, shape: [h, 3 * aw])
            out["\(l).qkv.b"] = fp.encode(qkvB, shape: [3 * aw])
            out["\(l).out.w"] = fp.weights.encode(w.outW, shape: [aw, h])
            out["\(l).out.b"] = fp.encode(w.outB, shape: [h])
            out["\(l).ln1.g"] = fp.encode(w.ln1G, shape: [h])
            out["\(l).ln1.b"] = fp.encode(w.ln1B, shape: [h])
            out["\(l).ffn1.w"] = fp.weights.encode(w.ffn1W, shape: [h, i])
            out["\(l).ffn1.b"] = fp.encode(w.ffn1B, shape: [i])
            out["\(l).ffn2.w"] = fp.weights.encode(w.ffn2W, shape: [i, h])
            out["\(l).ffn2.b"] = fp.encode(w.ffn2B, shape: [h])
            out["\(l).ln2.g"] = fp.encode(w.ln2G, shape: [h])
            out["\(l).ln2.b"] = fp.encode(w.ln2B, shape: [h])
        }
        out["cls.w"] = fp.weights.encode(clsW, shape: [h, shape.classes])
        out["cls.b"] = fp.encode(clsB, shape: [shape.classes])
        return out
    }
}

extension EncoderProgram {
    /// Float forward of the same inputs (the reference of `max_abs_logit_error`): the ring inputs
    /// decoded to Double and run through the exact math of the variant (erf GeLU, exp softmax, or the
    /// MPCFormer polynomials), with no approximation or rounding beyond the inputs' own encoding.
    public func plaintextLogits(client: [String: RingTensor], server: [String: RingTensor]) -> [Double] {
        let s = shape, fp = fixedPoint
        let (n, h, d) = (s.seq, s.hidden, s.headDim)
        func w(_ name: String) -> [Double] { fp.decode(input: name, server[name]!) }
        func linear(_ x: [Double], rows: Int, k: Int, _ wt: [Double], _ bias: [Double], n m: Int) -> [Double] {
            var out = [Double](repeating: 0, count: rows * m)
            for r in 0..<rows {
                for c in 0..<m { out[r * m + c] = bias[c] }
                for j in 0..<k {
                    let xv = x[r * k + j]
                    if xv == 0 { continue }
                    for c in 0..<m { out[r * m + c] += xv * wt[j * m + c] }
                }
            }
            return out
        }
        func layerNorm(_ x: [Double], _ g: [Double], _ bt: [Double]) -> [Double] {
            plainLayerNorm(x, width: h, gain: g, beta: bt, eps: s.layerNormEps)
        }
        let valid = s.validLength ?? n
        var x = fp.decode(client["x"]!)
        for l in 0..<s.layers {
            let (a, aw, ff) = (s.heads(l), s.attentionWidth(l), s.intermediate(l))
            let qkv = linear(x, rows: n, k: h, w("\(l).qkv.w"), w("\(l).qkv.b"), n: 3 * aw)
            var ctx = [Double](repeating: 0, count: n * aw)
            for head in 0..<a {
                for i in 0..<n {
                    var sc = (0..<n).map { j in
                        (0..<d).reduce(0.0) { $0 + qkv[i * 3 * aw + head * d + $1] * qkv[j * 3 * aw + aw + head * d + $1] }
                    }
                    switch s.softmax {
                    case .exact:
                        let m = sc.prefix(valid).max()!
                        sc = sc.enumerated().map { $0.offset < valid ? Foundation.exp($0.element - m) : 0 }
                    case .twoQuad:
                        sc = sc.enumerated().map { $0.offset < valid ? ($0.element + 5) * ($0.element + 5) : 0 }
                    }
                    let z = sc.reduce(0, +)
                    for e in 0..<d {
                        ctx[i * aw + head * d + e] = (0..<valid).reduce(0.0) { $0 + sc[$1] / z * qkv[$1 * 3 * aw + 2 * aw + head * d + e] }
                    }
                }
            }
            let att = linear(ctx, rows: n, k: aw, w("\(l).out.w"), w("\(l).out.b"), n: h)
            let x1 = layerNorm(zip(x, att).map { $0 + $1 }, w("\(l).ln1.g"), w("\(l).ln1.b"))
            let f1 = linear(x1, rows: n, k: h, w("\(l).ffn1.w"), w("\(l).ffn1.b"), n: ff)
            let g = f1.map { v -> Double in
                switch s.activation {
                case .gelu: return 0.5 * v * (1 + erf(v / 2.0.squareRoot()))
                case .quad: return 0.125 * v * v + 0.25 * v + 0.5
                case .relu: return Swift.max(v, 0)
                }
            }
            let f2 = linear(g, rows: n, k: ff, w("\(l).ffn2.w"), w("\(l).ffn2.b"), n: h)
            x = layerNorm(zip(x1, f2).map { $0 + $1 }, w("\(l).ln2.g"), w("\(l).ln2.b"))
        }
        return linear(Array(x[0..<h]), rows: 1, k: h, w("cls.w"), w("cls.b"), n: s.classes)
    }
}
