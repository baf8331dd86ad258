import Foundation
import Tensor
import Testing
import TextData
import Transformer
@testable import CoDesign

/// Stage-2 training of a member with public layers reads their output (and the teacher's logits) from a
/// cache: the logits and the loss are those of the uncached forward pass, dropout included.
@Suite struct PublicOutputCacheTests {
    @Test func cachedForwardEqualsTheWholeForward() throws {
        let words = ["good", "bad", "film", "plot", "slow", "fun", "the", "was", "very", "not"]
        let tokenizer = try WordPieceTokenizer(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)
        var g = SplitMix64(seed: 4)
        let examples = (0..<20).map { i in
            Example(text: (0..<(2 + i % 7)).map { _ in words[Int(g.next(below: UInt64(words.count)))] }.joined(separator: " "), label: i % 2)
        }
        let data = Batcher(examples: examples, tokenizer: tokenizer, maxLength: 16, batchSize: 8)
        var config = BertConfig(layers: 2, hidden: 16, heads: 2, intermediate: 32, vocabSize: 15, maxPosition: 32, numLabels: 2,
                                softmax: .twoQuad, activation: .quad)
        config.publicLayers = 1
        let model = BertForSequenceClassification(config: config, rng: SeededGenerator(seed: 1))
        for (name, t) in model.namedParameters() where !name.contains("LayerNorm") {
            t.data = Tensor.randn(t.shape, std: 0.3, rng: SeededGenerator(seed: UInt64(name.count))).data
        }
        let teacher = BertForSequenceClassification(config: BertConfig(layers: 1, hidden: 16, heads: 2, intermediate: 32, vocabSize: 15,
                                                                      maxPosition: 32, numLabels: 2), rng: SeededGenerator(seed: 2))
        let cache = PublicOutputCache(model: model, teacherLogits: Evaluation.logits(model: teacher, data: data, batchSize: 6), data: data)
        let idx = [3, 17, 0, 9, 12]
        let batch = data.makeBatch(idx).encoded
        for training in [false, true] {
            let whole = model.forward(batch, training: training, rng: SeededGenerator(seed: 9)).data
            let cached = model.forward(fromPublic: cache.states(idx, seqLen: batch.seqLen), batch: batch, training: training,
                                       rng: SeededGenerator(seed: 9)).data
            let diff = zip(whole, cached).map { abs($0 - $1) }.max()!
            #expect(diff < 1e-5, "training \(training): logits differ by \(diff)")
        }
        // Dropout does act in training (so the equality above is not the eval path twice).
        let eval = model.forward(batch, training: false, rng: SeededGenerator(seed: 9)).data
        #expect(zip(eval, model.forward(batch, training: true, rng: SeededGenerator(seed: 9)).data).map { abs($0 - $1) }.max()! > 1e-3)
        let t = teacher.forward(batch, training: false, rng: SeededGenerator(seed: 0)).data
        #expect(zip(t, try #require(cache.teacher(idx)).data).map { abs($0 - $1) }.max()! < 1e-5)
    }
}
