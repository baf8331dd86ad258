import Foundation
import Tensor
import TextData
import Transformer

extension Batch {
    /// The model input of this padded batch.
    public var encoded: EncodedBatch {
        EncodedBatch(batch: batch, seqLen: seqLen, inputIds: inputIds, tokenTypeIds: tokenTypeIds, attentionMask: attentionMask)
    }
}

/// Accuracy and predictions of a model on tokenized examples (no gradients, no dropout).
public enum Evaluation {
    /// Logits for every example of `data`, in its order. Examples are batched by length
    /// (`batchSize` per forward pass) so that little compute goes to padding.
    public static func logits(model: BertForSequenceClassification, data: Batcher, batchSize: Int) -> [[Float]] {
        var out = [[Float]](repeating: [], count: data.count)
        let byLength = data.encodings.indices.sorted { data.encodings[$0].count < data.encodings[$1].count }
        Tensor.withNoGrad {
            for lo in stride(from: 0, to: byLength.count, by: batchSize) {
                let idx = Array(byLength[lo..<min(lo + batchSize, byLength.count)])
                let logits = model.forward(data.makeBatch(idx).encoded, training: false, rng: SeededGenerator(seed: 0))
                let k = logits.shape[1]
                let d = logits.data
                for (row, i) in idx.enumerated() { out[i] = Array(d[(row * k)..<(row * k + k)]) }
            }
        }
        return out
    }

    /// Fraction of examples whose argmax logit equals the gold label.
    public static func accuracy(model: BertForSequenceClassification, data: Batcher, batchSize: Int) -> Double {
        guard data.count > 0 else { return 0 }
        let all = logits(model: model, data: data, batchSize: batchSize)
        let right = zip(data.labels, all).filter { argmax($0.1) == $0.0 }.count
        return Double(right) / Double(data.count)
    }

    /// Index of the largest value (first on ties, like PyTorch).
    public static func argmax(_ v: [Float]) -> Int {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }
}
