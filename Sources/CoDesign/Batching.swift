import Foundation
import Tensor
import Transformer

/// One tokenized example: `[CLS] a [SEP] (b [SEP])` ids, token types and its gold label.
public struct EncodedExample: Sendable {
    public var ids: [Int32]
    public var typeIds: [Int32]
    public var label: Int

    public init(ids: [Int32], typeIds: [Int32], label: Int) {
        self.ids = ids
        self.typeIds = typeIds
        self.label = label
    }
}

/// A padded batch and its labels.
public struct LabeledBatch {
    public var encoded: EncodedBatch
    public var labels: [Int]
}

/// Padding and deterministic shuffling.
public enum Batching {
    /// Pads to the longest sequence of the batch; padding has mask 0, id `padId`, type 0.
    public static func makeBatch(_ examples: [EncodedExample], padId: Int32) -> LabeledBatch {
        let b = examples.count
        let s = examples.map(\.ids.count).max() ?? 0
        var ids = [Int32](repeating: padId, count: b * s)
        var types = [Int32](repeating: 0, count: b * s)
        var mask = [Float](repeating: 0, count: b * s)
        for (i, e) in examples.enumerated() {
            for j in 0..<e.ids.count {
                ids[i * s + j] = e.ids[j]
                types[i * s + j] = e.typeIds[j]
                mask[i * s + j] = 1
            }
        }
        let batch = EncodedBatch(batch: b, seqLen: s, inputIds: ids, tokenTypeIds: types, attentionMask: mask)
        return LabeledBatch(encoded: batch, labels: examples.map(\.label))
    }

    /// A permutation of 0..<count that depends only on `seed` (Fisher-Yates with a seeded generator).
    public static func shuffledOrder(count: Int, seed: UInt64) -> [Int] {
        var order = Array(0..<count)
        var rng = SeededGenerator(seed: seed)
        order.shuffle(using: &rng)
        return order
    }

    /// Batches in a fixed order, sorted by length within the batch list so that
    /// evaluation wastes little compute on padding; returns original indices too.
    public static func evaluationBatches(_ examples: [EncodedExample], batchSize: Int) -> [[Int]] {
        let order = examples.indices.sorted { examples[$0].ids.count < examples[$1].ids.count }
        return stride(from: 0, to: order.count, by: batchSize).map { Array(order[$0..<min($0 + batchSize, order.count)]) }
    }
}

/// Accuracy and predictions of a model on encoded examples (no gradients, no dropout).
public enum Evaluation {
    /// Logits for every example, in the examples' order.
    public static func logits(model: BertForSequenceClassification, examples: [EncodedExample], batchSize: Int, padId: Int32) -> [[Float]] {
        var out = [[Float]](repeating: [], count: examples.count)
        Tensor.withNoGrad {
            for idx in Batching.evaluationBatches(examples, batchSize: batchSize) {
                let batch = Batching.makeBatch(idx.map { examples[$0] }, padId: padId)
                let logits = model.forward(batch.encoded, training: false, rng: SeededGenerator(seed: 0))
                let k = logits.shape[1]
                let d = logits.data
                for (row, i) in idx.enumerated() { out[i] = Array(d[(row * k)..<(row * k + k)]) }
            }
        }
        return out
    }

    /// Fraction of examples whose argmax logit equals the gold label.
    public static func accuracy(model: BertForSequenceClassification, examples: [EncodedExample], batchSize: Int, padId: Int32) -> Double {
        guard !examples.isEmpty else { return 0 }
        let all = logits(model: model, examples: examples, batchSize: batchSize, padId: padId)
        var right = 0
        for (e, l) in zip(examples, all) where argmax(l) == e.label { right += 1 }
        return Double(right) / Double(examples.count)
    }

    /// Index of the largest value (first on ties, like PyTorch).
    public static func argmax(_ v: [Float]) -> Int {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }
}
