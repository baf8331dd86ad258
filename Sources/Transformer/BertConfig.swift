/// Softmax used in attention: `exact`, or an MPC-friendly approximation
/// without `exp` (MPCFormer, Li et al. 2023).
public enum SoftmaxVariant: String, Codable, Sendable, Equatable, CaseIterable {
    /// `exp(x_i) / sum_j exp(x_j)`.
    case exact
    /// `(x_i + c)^2 / sum_j (x_j + c)^2` with c = 5.
    case twoQuad = "2quad"
    /// `relu(x_i) / (sum_j relu(x_j) + 1e-6)`.
    case reluNorm = "relu-norm"
}

/// Activation of the intermediate (feed-forward) layer.
public enum ActivationVariant: String, Codable, Sendable, Equatable, CaseIterable {
    /// Exact GeLU, erf form (HF "gelu").
    case gelu
    /// MPCFormer's quadratic GeLU stand-in `0.125 x^2 + 0.25 x + 0.5`.
    case quad
    /// `max(x, 0)`.
    case relu
}

/// Hyper-parameters of a BERT classifier. JSON keys: `layers, hidden, heads,
/// intermediate, vocab_size, max_position, type_vocab_size, num_labels,
/// layer_norm_eps, hidden_dropout, attention_dropout, softmax, activation, layer_heads,
/// layer_intermediate, public_layers`; every key is optional and defaults to MiniLM-L6-H384 (uncased) values.
///
/// Pruned models (cost-penalized training removes heads, feed-forward neurons and layers) keep
/// `heads` as the unpruned head count, which fixes the head width D = hidden / heads, and list
/// each layer's own head count and feed-forward width in `layer_heads` and `layer_intermediate`.
/// Layer l's query/key/value weights are then `[layer_heads[l]·D, hidden]` and its feed-forward
/// weights `[layer_intermediate[l], hidden]`; absent lists mean every layer has `heads` and
/// `intermediate`.
///
/// A model with `public_layers: k` keeps its first k encoder layers frozen at a public pretrained
/// model's values (and its embedding group too): those layers always use the public model's exact
/// softmax and GeLU, whatever `softmax` and `activation` say (those apply to the layers after them), so
/// that the client can compute them on its own text in plaintext and the secure runtime starts at layer k.
public struct BertConfig: Codable, Sendable, Equatable {
    public var layers: Int
    public var hidden: Int
    public var heads: Int
    public var intermediate: Int
    public var vocabSize: Int
    public var maxPosition: Int
    public var typeVocabSize: Int
    public var numLabels: Int
    public var layerNormEps: Float
    public var hiddenDropout: Float
    public var attentionDropout: Float
    public var softmax: SoftmaxVariant
    public var activation: ActivationVariant
    /// Heads of each layer after pruning (count `layers`), or nil: `heads` everywhere.
    public var layerHeads: [Int]?
    /// Feed-forward width of each layer after pruning (count `layers`), or nil: `intermediate` everywhere.
    public var layerIntermediate: [Int]?
    /// Leading encoder layers frozen at a public model's values (exact softmax and GeLU), or nil: none.
    public var publicLayers: Int?

    /// How many leading layers are public (0 when `publicLayers` is nil).
    public var publicLayerCount: Int { publicLayers ?? 0 }

    /// Whether layer `l` is one of the public leading layers.
    public func isPublic(layer l: Int) -> Bool { l < publicLayerCount }

    /// The attention normalisation of layer `l`: exact in a public layer, `softmax` otherwise.
    public func softmax(inLayer l: Int) -> SoftmaxVariant { isPublic(layer: l) ? .exact : softmax }

    /// The feed-forward activation of layer `l`: GeLU in a public layer, `activation` otherwise.
    public func activation(inLayer l: Int) -> ActivationVariant { isPublic(layer: l) ? .gelu : activation }

    /// Head dimension D = H / A.
    public var headDim: Int { hidden / heads }

    /// Attention heads of layer `l`.
    public func heads(inLayer l: Int) -> Int { layerHeads?[l] ?? heads }

    /// Feed-forward width of layer `l`.
    public func intermediate(inLayer l: Int) -> Int { layerIntermediate?[l] ?? intermediate }

    /// Every layer's head count (the `layer_heads` a pruned model stores).
    public var headsPerLayer: [Int] { (0..<layers).map { heads(inLayer: $0) } }

    /// Every layer's feed-forward width (the `layer_intermediate` a pruned model stores).
    public var intermediatePerLayer: [Int] { (0..<layers).map { intermediate(inLayer: $0) } }

    /// True when some layer differs from the uniform `heads`/`intermediate` shape.
    public var isPruned: Bool {
        (0..<layers).contains { heads(inLayer: $0) != heads || intermediate(inLayer: $0) != intermediate }
    }

    /// Additive attention-mask value for padding keys: `exp` of it underflows
    /// to exactly 0 in Float32 for any realistic score, so padding gets zero weight.
    public static let maskValue: Float = -10_000

    public init(
        layers: Int = 6, hidden: Int = 384, heads: Int = 12, intermediate: Int = 1536,
        vocabSize: Int = 30522, maxPosition: Int = 512, typeVocabSize: Int = 2, numLabels: Int = 2,
        layerNormEps: Float = 1e-12, hiddenDropout: Float = 0.1, attentionDropout: Float = 0.1,
        softmax: SoftmaxVariant = .exact, activation: ActivationVariant = .gelu
    ) {
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.intermediate = intermediate
        self.vocabSize = vocabSize
        self.maxPosition = maxPosition
        self.typeVocabSize = typeVocabSize
        self.numLabels = numLabels
        self.layerNormEps = layerNormEps
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
        self.softmax = softmax
        self.activation = activation
    }

    enum CodingKeys: String, CodingKey {
        case layers, hidden, heads, intermediate
        case vocabSize = "vocab_size"
        case maxPosition = "max_position"
        case typeVocabSize = "type_vocab_size"
        case numLabels = "num_labels"
        case layerNormEps = "layer_norm_eps"
        case hiddenDropout = "hidden_dropout"
        case attentionDropout = "attention_dropout"
        case softmax, activation
        case layerHeads = "layer_heads", layerIntermediate = "layer_intermediate"
        case publicLayers = "public_layers"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BertConfig()
        layers = try c.decodeIfPresent(Int.self, forKey: .layers) ?? d.layers
        hidden = try c.decodeIfPresent(Int.self, forKey: .hidden) ?? d.hidden
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? d.heads
        intermediate = try c.decodeIfPresent(Int.self, forKey: .intermediate) ?? d.intermediate
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        maxPosition = try c.decodeIfPresent(Int.self, forKey: .maxPosition) ?? d.maxPosition
        typeVocabSize = try c.decodeIfPresent(Int.self, forKey: .typeVocabSize) ?? d.typeVocabSize
        numLabels = try c.decodeIfPresent(Int.self, forKey: .numLabels) ?? d.numLabels
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? d.layerNormEps
        hiddenDropout = try c.decodeIfPresent(Float.self, forKey: .hiddenDropout) ?? d.hiddenDropout
        attentionDropout = try c.decodeIfPresent(Float.self, forKey: .attentionDropout) ?? d.attentionDropout
        softmax = try c.decodeIfPresent(SoftmaxVariant.self, forKey: .softmax) ?? d.softmax
        activation = try c.decodeIfPresent(ActivationVariant.self, forKey: .activation) ?? d.activation
        layerHeads = try c.decodeIfPresent([Int].self, forKey: .layerHeads)
        layerIntermediate = try c.decodeIfPresent([Int].self, forKey: .layerIntermediate)
        publicLayers = try c.decodeIfPresent(Int.self, forKey: .publicLayers)
    }

    /// Checks that the sizes are consistent.
    /// - Throws: `ModelError.invalidConfig` with the offending field.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws {
            if !ok { throw ModelError.invalidConfig(message) }
        }
        try check(layers >= 0, "layers must be >= 0, got \(layers)")
        try check(hidden > 0 && heads > 0 && hidden % heads == 0,
                  "hidden (\(hidden)) must be a positive multiple of heads (\(heads))")
        try check(intermediate > 0 && vocabSize > 0 && maxPosition > 0 && typeVocabSize > 0 && numLabels > 0,
                  "intermediate, vocab_size, max_position, type_vocab_size and num_labels must be positive")
        for (key, list) in [("layer_heads", layerHeads), ("layer_intermediate", layerIntermediate)] {
            guard let list else { continue }
            try check(list.count == layers, "\(key) lists \(list.count) layers, the model has \(layers)")
            try check(list.allSatisfy { $0 >= 1 }, "every entry of \(key) must be >= 1, got \(list)")
        }
        try check((0...layers).contains(publicLayerCount), "public_layers must be in 0...\(layers), got \(publicLayerCount)")
        try check((0..<1).contains(hiddenDropout) && (0..<1).contains(attentionDropout),
                  "dropout probabilities must be in [0, 1)")
    }
}

/// Errors from building or loading a model.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    /// A tensor the model needs is absent from the weights.
    case missingTensor(name: String, expectedShape: [Int])
    /// A tensor has the wrong shape.
    case shapeMismatch(name: String, expected: [Int], found: [Int])
    /// The weights hold tensors the model does not use (strict loading only).
    case unexpectedTensors([String])
    /// A tensor's data count does not match its declared shape.
    case badData(name: String, shape: [Int], count: Int)
    /// The configuration is inconsistent or names a variant this build does not know.
    case invalidConfig(String)
    /// The batch does not fit the model (sequence too long, bad ids).
    case invalidBatch(String)

    public var description: String {
        switch self {
        case let .missingTensor(name, shape):
            return "missing tensor '\(name)' (expected shape \(shape)); check the checkpoint matches the config"
        case let .shapeMismatch(name, expected, found):
            return "tensor '\(name)' has shape \(found), expected \(expected); check the config (hidden, layers, vocab)"
        case let .unexpectedTensors(names):
            return "unexpected tensors \(names); load with strict: false to ignore them"
        case let .badData(name, shape, count):
            return "tensor '\(name)' declares shape \(shape) but has \(count) values"
        case let .invalidConfig(message):
            return "invalid BERT config: \(message)"
        case let .invalidBatch(message):
            return "invalid batch: \(message)"
        }
    }
}
