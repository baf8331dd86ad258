import Foundation
import Testing
import Tensor
import Transformer

let tiny = BertConfig(
    layers: 2, hidden: 8, heads: 2, intermediate: 16, vocabSize: 20, maxPosition: 16, typeVocabSize: 2,
    numLabels: 3, layerNormEps: 1e-12, hiddenDropout: 0.1, attentionDropout: 0.1)

func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

@Suite struct BertTests {
    @Test func parameterNamesAndShapesMatchHF() {
        let model = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 1))
        let params = model.namedParameters()
        var expected: [(String, [Int])] = [
            ("bert.embeddings.word_embeddings.weight", [20, 8]),
            ("bert.embeddings.position_embeddings.weight", [16, 8]),
            ("bert.embeddings.token_type_embeddings.weight", [2, 8]),
            ("bert.embeddings.LayerNorm.weight", [8]), ("bert.embeddings.LayerNorm.bias", [8]),
        ]
        for i in 0..<2 {
            let p = "bert.encoder.layer.\(i)."
            for m in ["query", "key", "value"] {
                expected += [(p + "attention.self.\(m).weight", [8, 8]), (p + "attention.self.\(m).bias", [8])]
            }
            expected += [
                (p + "attention.output.dense.weight", [8, 8]), (p + "attention.output.dense.bias", [8]),
                (p + "attention.output.LayerNorm.weight", [8]), (p + "attention.output.LayerNorm.bias", [8]),
                (p + "intermediate.dense.weight", [16, 8]), (p + "intermediate.dense.bias", [16]),
                (p + "output.dense.weight", [8, 16]), (p + "output.dense.bias", [8]),
                (p + "output.LayerNorm.weight", [8]), (p + "output.LayerNorm.bias", [8]),
            ]
        }
        expected += [
            ("bert.pooler.dense.weight", [8, 8]), ("bert.pooler.dense.bias", [8]),
            ("classifier.weight", [3, 8]), ("classifier.bias", [3]),
        ]
        #expect(params.map(\.name) == expected.map(\.0))
        #expect(params.map(\.tensor.shape) == expected.map(\.1))
        #expect(Set(params.map { ObjectIdentifier($0.tensor) }).count == params.count)
    }

    @Test func initFollowsHF() {
        let config = BertConfig(layers: 1, hidden: 64, heads: 4, intermediate: 128, vocabSize: 500)
        let model = BertForSequenceClassification(config: config, rng: SeededGenerator(seed: 2))
        let w = model.embeddings.word.data
        let std = (w.map { $0 * $0 }.reduce(0, +) / Float(w.count)).squareRoot()
        #expect(abs(std - 0.02) < 0.001)
        #expect(model.encoder.layers[0].query.bias.data.allSatisfy { $0 == 0 })
        #expect(model.encoder.layers[0].attentionNorm.weight.data.allSatisfy { $0 == 1 })
    }

    @Test func paddingDoesNotChangeLogits() {
        let model = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 3))
        let ids: [Int32] = [1, 5, 7, 2, 9, 1, 3, 2, 0, 0]
        let mask: [Float] = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
        let types: [Int32] = [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
        let short = EncodedBatch(batch: 2, seqLen: 5, inputIds: ids, tokenTypeIds: types, attentionMask: mask)
        // Same sequences with three more padding positions (different pad ids on purpose).
        var ids2: [Int32] = [], mask2: [Float] = [], types2: [Int32] = []
        for b in 0..<2 {
            ids2 += ids[b * 5..<b * 5 + 5] + [4, 11, 0]
            mask2 += mask[b * 5..<b * 5 + 5] + [0, 0, 0]
            types2 += types[b * 5..<b * 5 + 5] + [1, 0, 0]
        }
        let long = EncodedBatch(batch: 2, seqLen: 8, inputIds: ids2, tokenTypeIds: types2, attentionMask: mask2)
        let rng = SeededGenerator(seed: 0)
        let a = Tensor.withNoGrad { model.forward(short, training: false, rng: rng) }
        let b = Tensor.withNoGrad { model.forward(long, training: false, rng: rng) }
        #expect(a.shape == [2, 3])
        #expect(maxAbsDiff(a.data, b.data) < 1e-5, "logits \(a.data) vs \(b.data)")
    }

    @Test func gradientReachesEveryParameter() {
        let model = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 4))
        let batch = EncodedBatch(
            batch: 2, seqLen: 4, inputIds: [1, 2, 3, 4, 5, 6, 7, 0], tokenTypeIds: [0, 0, 1, 1, 0, 0, 0, 0],
            attentionMask: [1, 1, 1, 1, 1, 1, 1, 0])
        let loss = Tensor.crossEntropy(logits: model.forward(batch, training: true, rng: SeededGenerator(seed: 5)),
                                       labels: [0, 2])
        loss.backward()
        for (name, t) in model.namedParameters() {
            let norm = t.grad.map { $0.map { $0 * $0 }.reduce(0, +) } ?? 0
            #expect(norm > 0, "no gradient reached \(name)")
        }
    }

    @Test func tinyModelOverfitsTinyDataset() {
        var config = tiny
        config.hiddenDropout = 0
        config.attentionDropout = 0
        config.numLabels = 2
        let model = BertForSequenceClassification(config: config, rng: SeededGenerator(seed: 6))
        let rng = SeededGenerator(seed: 7)
        let (b, s) = (8, 6)
        let ids = (0..<b * s).map { _ in Int32(1 + rng.next() % 19) }
        let labels = (0..<b).map { Int32($0 % 2) }
        let batch = EncodedBatch(batch: b, seqLen: s, inputIds: ids)
        let opt = AdamW(parameters: model.parameters(), learningRate: 3e-3, weightDecay: 0.01,
                        decay: model.weightDecayMask())
        var first: Float = 0, last: Float = 0
        for step in 0..<100 {
            opt.zeroGrad()
            let loss = Tensor.crossEntropy(logits: model.forward(batch, training: true, rng: rng), labels: labels)
            loss.backward()
            clipGradNorm(model.parameters(), maxNorm: 1)
            opt.step()
            if step == 0 { first = loss.item }
            last = loss.item
        }
        #expect(last < first / 20, "loss went from \(first) to \(last)")
    }

    @Test func encodeAndEncoderFromHiddenStates() {
        let model = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 8))
        let batch = EncodedBatch(batch: 3, seqLen: 4, inputIds: (0..<12).map { Int32($0) })
        let hidden = Tensor.withNoGrad { model.encode(batch) }
        #expect(hidden.shape == [3, 4, 8])
        let pooled = hidden.mean(dim: 1)
        #expect(pooled.shape == [3, 8])
        let encoder = BertEncoder(config: tiny, rng: SeededGenerator(seed: 9))
        let x = Tensor.randn([3, 4, 8], rng: SeededGenerator(seed: 10), requiresGrad: true)
        let y = encoder(x, mask: nil, training: true, rng: SeededGenerator(seed: 11))
        #expect(y.shape == [3, 4, 8])
        y.selectToken(0).sum().backward()
        #expect(x.grad != nil && encoder.layers[1].output.weight.grad != nil)
    }
}

@Suite struct LoadingAndConfigTests {
    func weights(of model: BertForSequenceClassification) -> [String: (shape: [Int], data: [Float])] {
        var w: [String: (shape: [Int], data: [Float])] = [:]
        for (name, t) in model.namedParameters() { w[name] = (t.shape, t.data) }
        return w
    }

    @Test func loadRoundTrips() throws {
        let a = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 1))
        let b = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 2))
        try b.load(weights: weights(of: a))
        #expect(a.namedParameters().map(\.tensor.data) == b.namedParameters().map(\.tensor.data))
    }

    @Test func loadIsStrict() throws {
        let model = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 1))
        var w = weights(of: model)
        w["bert.embeddings.position_ids"] = ([1, 16], [Float](repeating: 0, count: 16))
        #expect(throws: ModelError.unexpectedTensors(["bert.embeddings.position_ids"])) { try model.load(weights: w) }
        try model.load(weights: w, strict: false)
        w["classifier.bias"] = ([4], [0, 0, 0, 0])
        #expect(throws: ModelError.shapeMismatch(name: "classifier.bias", expected: [3], found: [4])) {
            try model.load(weights: w, strict: false)
        }
        w["classifier.bias"] = nil
        #expect(throws: ModelError.missingTensor(name: "classifier.bias", expectedShape: [3])) {
            try model.load(weights: w, strict: false)
        }
    }

    @Test func configJSONKeysAndDefaults() throws {
        let json = #"{"layers": 2, "hidden": 128, "heads": 2, "intermediate": 512, "vocab_size": 1000,"#
            + #" "max_position": 64, "type_vocab_size": 2, "num_labels": 3, "layer_norm_eps": 1e-5}"#
        let c = try JSONDecoder().decode(BertConfig.self, from: Data(json.utf8))
        #expect(c.layers == 2 && c.hidden == 128 && c.vocabSize == 1000 && c.maxPosition == 64 && c.numLabels == 3)
        #expect(c.hiddenDropout == 0.1 && c.attentionDropout == 0.1 && c.softmax == .exact && c.activation == .gelu)
        let round = try JSONDecoder().decode(BertConfig.self, from: JSONEncoder().encode(c))
        #expect(round == c)
        let keys = try JSONSerialization.jsonObject(with: JSONEncoder().encode(c)) as! [String: Any]
        #expect(Set(keys.keys) == ["layers", "hidden", "heads", "intermediate", "vocab_size", "max_position",
                                   "type_vocab_size", "num_labels", "layer_norm_eps", "hidden_dropout",
                                   "attention_dropout", "softmax", "activation"])
        try c.validate()
        var bad = c
        bad.heads = 3
        #expect(throws: ModelError.self) { try bad.validate() }
    }
}

@Suite struct VariantTests {
    @Test(arguments: SoftmaxVariant.allCases, ActivationVariant.allCases)
    func variantsRunAndPaddingStaysInvisible(softmax: SoftmaxVariant, activation: ActivationVariant) throws {
        var config = tiny
        config.softmax = softmax
        config.activation = activation
        try config.validate()
        let model = BertForSequenceClassification(config: config, rng: SeededGenerator(seed: 12))
        let short = EncodedBatch(batch: 1, seqLen: 3, inputIds: [1, 2, 3])
        let long = EncodedBatch(batch: 1, seqLen: 5, inputIds: [1, 2, 3, 0, 0], attentionMask: [1, 1, 1, 0, 0])
        let a = Tensor.withNoGrad { model.forward(short, training: false, rng: SeededGenerator(seed: 0)) }
        let b = Tensor.withNoGrad { model.forward(long, training: false, rng: SeededGenerator(seed: 0)) }
        #expect(maxAbsDiff(a.data, b.data) < 1e-5)
        #expect(a.data.allSatisfy { $0.isFinite })
    }
}
