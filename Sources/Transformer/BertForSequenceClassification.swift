import Tensor

/// A tokenised batch: B sequences of S tokens each, row-major `[B,S]`.
public struct EncodedBatch: Sendable, Equatable {
    public var batch: Int
    public var seqLen: Int
    /// Token ids `[B*S]`.
    public var inputIds: [Int32]
    /// Segment ids `[B*S]` (0 for single sentences).
    public var tokenTypeIds: [Int32]
    /// 1 for real tokens, 0 for padding `[B*S]`.
    public var attentionMask: [Float]

    public init(batch: Int, seqLen: Int, inputIds: [Int32], tokenTypeIds: [Int32]? = nil, attentionMask: [Float]? = nil) {
        precondition(inputIds.count == batch * seqLen, "EncodedBatch: \(inputIds.count) ids for \(batch)x\(seqLen)")
        self.batch = batch
        self.seqLen = seqLen
        self.inputIds = inputIds
        self.tokenTypeIds = tokenTypeIds ?? [Int32](repeating: 0, count: batch * seqLen)
        self.attentionMask = attentionMask ?? [Float](repeating: 1, count: batch * seqLen)
        precondition(self.tokenTypeIds.count == batch * seqLen && self.attentionMask.count == batch * seqLen,
                     "EncodedBatch: token types and mask must have B*S entries")
    }
}

/// BERT embeddings: word + position + token type, then LayerNorm and dropout.
public final class BertEmbeddings {
    public let word: Tensor  // [V,H]
    public let position: Tensor  // [maxPosition,H]
    public let tokenType: Tensor  // [typeVocab,H]
    public let norm: LayerNorm
    let dropout: Float

    public init(config: BertConfig, rng: SeededGenerator) {
        let h = config.hidden
        word = Tensor.randn([config.vocabSize, h], std: 0.02, rng: rng, requiresGrad: true)
        position = Tensor.randn([config.maxPosition, h], std: 0.02, rng: rng, requiresGrad: true)
        tokenType = Tensor.randn([config.typeVocabSize, h], std: 0.02, rng: rng, requiresGrad: true)
        norm = LayerNorm(size: h, eps: config.layerNormEps)
        dropout = config.hiddenDropout
    }

    /// With QAT (`quantization` non-nil) the summed embeddings and the LayerNorm
    /// output are fake-quantized, as the runtime encodes them.
    /// - Returns: `[B,S,H]`.
    public func callAsFunction(
        _ batch: EncodedBatch, training: Bool, rng: SeededGenerator, quantization: FakeQuantization? = nil
    ) -> Tensor {
        let (b, s) = (batch.batch, batch.seqLen)
        let positions = (0..<b * s).map { Int32($0 % s) }
        let sum = Tensor.embedding(word, ids: batch.inputIds, shape: [b, s])
            + Tensor.embedding(position, ids: positions, shape: [b, s])
            + Tensor.embedding(tokenType, ids: batch.tokenTypeIds, shape: [b, s])
        return norm(quantization.activation(sum), quantization: quantization).dropout(p: dropout, training: training, rng: rng)
    }

    public func namedParameters(prefix p: String) -> [NamedParameter] {
        [(p + ".word_embeddings.weight", word), (p + ".position_embeddings.weight", position),
         (p + ".token_type_embeddings.weight", tokenType)] + norm.namedParameters(prefix: p + ".LayerNorm")
    }
}

/// BERT with a sequence-classification head (HF `BertForSequenceClassification`):
/// embeddings, post-LN encoder, pooler (dense + tanh on `[CLS]`), dropout, classifier.
public final class BertForSequenceClassification {
    public let config: BertConfig
    public let embeddings: BertEmbeddings
    public let encoder: BertEncoder
    public let pooler: Linear
    public let classifier: Linear
    /// Quantization-aware training: when set, the forward pass fake-quantizes
    /// activations and weights to the secure runtime's fixed point (see
    /// `FakeQuantization`). nil (the default): the plain float model.
    public var quantization: FakeQuantization?
    /// Cost-penalized training: structure gates applied in every forward pass (sampled when
    /// training, deterministic otherwise). nil (the default): no gates.
    public var gates: StructureGates?

    /// Builds a randomly initialised model (HF init: N(0, 0.02) weights and
    /// embeddings, zero biases, LayerNorm 1/0). Call `config.validate()` first
    /// for user-provided configs.
    public init(config: BertConfig, rng: SeededGenerator) {
        self.config = config
        embeddings = BertEmbeddings(config: config, rng: rng)
        encoder = BertEncoder(config: config, rng: rng)
        pooler = Linear(inFeatures: config.hidden, outFeatures: config.hidden, rng: rng)
        classifier = Linear(inFeatures: config.hidden, outFeatures: config.numLabels, rng: rng)
    }

    /// Parameters with exactly the names and shapes of the HF state_dict.
    public func namedParameters() -> [NamedParameter] {
        embeddings.namedParameters(prefix: "bert.embeddings")
            + encoder.namedParameters(prefix: "bert.encoder")
            + pooler.namedParameters(prefix: "bert.pooler.dense")
            + classifier.namedParameters(prefix: "classifier")
    }

    /// All trainable tensors, in `namedParameters()` order.
    public func parameters() -> [Tensor] { namedParameters().map(\.tensor) }

    /// Weight-decay flags in `parameters()` order: false for biases and LayerNorm (HF convention).
    public func weightDecayMask() -> [Bool] {
        namedParameters().map { !$0.name.hasSuffix(".bias") && !$0.name.contains("LayerNorm") }
    }

    /// Last hidden states of the encoder.
    /// - Returns: `[B,S,H]`.
    public func encode(_ batch: EncodedBatch, training: Bool = false, rng: SeededGenerator? = nil) -> Tensor {
        trace(batch, training: training, rng: rng).hiddenStates.last!
    }

    /// The output of the public part of a model with public layers (`BertConfig.publicLayers`): embedding
    /// and public layers, frozen, without dropout, before the fake quantization the trained layers see.
    /// It depends on nothing that trains, so a trainer may compute it once per example and keep it
    /// (`forward(fromPublic:)`).
    /// - Returns: `[B,S,H]`, without gradient.
    public func publicOutput(_ batch: EncodedBatch) -> Tensor {
        precondition(config.publicLayerCount > 0, "publicOutput of a model without public layers")
        let rng = SeededGenerator(seed: 0)
        let mask = BertEncoder.additiveMask(batch.attentionMask, batch: batch.batch, seqLen: batch.seqLen)
        return Tensor.withNoGrad {
            var x = embeddings(batch, training: false, rng: rng, quantization: quantization)
            for layer in encoder.layers.prefix(config.publicLayerCount) { x = layer(x, mask: mask, training: false, rng: rng) }
            return x
        }
    }

    /// Logits from `publicOutput(batch)` (computed earlier, for the same batch): the same values as
    /// `forward(batch, ...)`, without recomputing the public part.
    public func forward(fromPublic hidden: Tensor, batch: EncodedBatch, training: Bool, rng: SeededGenerator) -> Tensor {
        let mask = BertEncoder.additiveMask(batch.attentionMask, batch: batch.batch, seqLen: batch.seqLen)
        let states = encoder.trace(hidden, from: config.publicLayerCount, mask: mask, training: training, rng: rng,
                                   quantization: quantization, gates: gates?.values(training: training, rng: rng))
        return classify(states.hiddenStates.last!, training: training, rng: rng)
    }

    /// The embedding output, every layer's output and attention scores (layer-wise
    /// distillation); `trace(b).hiddenStates.last` equals `encode(b)`.
    public func trace(_ batch: EncodedBatch, training: Bool = false, rng: SeededGenerator? = nil) -> EncoderTrace {
        precondition(batch.seqLen <= config.maxPosition, "trace: seqLen \(batch.seqLen) > max_position \(config.maxPosition)")
        let rng = rng ?? SeededGenerator(seed: 0)
        let mask = BertEncoder.additiveMask(batch.attentionMask, batch: batch.batch, seqLen: batch.seqLen)
        let q = quantization
        // A public embedding followed by public layers is the client's plaintext computation: no dropout.
        let embedded = embeddings(batch, training: training && config.publicLayerCount == 0, rng: rng, quantization: q)
        return encoder.trace(embedded, mask: mask, training: training, rng: rng, quantization: q,
                             gates: gates?.values(training: training, rng: rng))
    }

    /// Classification logits.
    /// - Returns: `[B, numLabels]`.
    public func forward(_ batch: EncodedBatch, training: Bool, rng: SeededGenerator) -> Tensor {
        classify(encode(batch, training: training, rng: rng), training: training, rng: rng)
    }

    /// The head: pooler (dense + tanh on `[CLS]`), dropout, classifier.
    /// - `hidden`: `[B,S,H]`. Returns: `[B, numLabels]`.
    public func classify(_ hidden: Tensor, training: Bool, rng: SeededGenerator) -> Tensor {
        let q = quantization
        let pooled = q.activation(pooler(hidden.selectToken(0), quantization: q).tanh())  // [B,H]
        return classifier(pooled.dropout(p: config.hiddenDropout, training: training, rng: rng), quantization: q)
    }

    /// Replaces every parameter's values with `weights` (HF names).
    ///
    /// - Parameters:
    ///   - strict: when true, names the model does not use are an error.
    ///   - keepMissing: parameters absent from `weights` keep their current values
    ///     (initialising from a base model that has no classifier); otherwise an error.
    /// - Throws: `ModelError.missingTensor`, `.shapeMismatch`, `.badData`,
    ///   `.unexpectedTensors`; nothing is modified when it throws.
    public func load(weights: [String: (shape: [Int], data: [Float])], strict: Bool = true, keepMissing: Bool = false) throws {
        let params = namedParameters()
        for (name, tensor) in params {
            guard let w = weights[name] else {
                if keepMissing { continue }
                throw ModelError.missingTensor(name: name, expectedShape: tensor.shape)
            }
            guard w.shape == tensor.shape else {
                throw ModelError.shapeMismatch(name: name, expected: tensor.shape, found: w.shape)
            }
            guard w.data.count == tensor.count else {
                throw ModelError.badData(name: name, shape: w.shape, count: w.data.count)
            }
        }
        if strict {
            let known = Set(params.map(\.name))
            let extra = weights.keys.filter { !known.contains($0) }.sorted()
            if !extra.isEmpty { throw ModelError.unexpectedTensors(extra) }
        }
        for (name, tensor) in params { if let w = weights[name] { tensor.data = w.data } }
    }
}
