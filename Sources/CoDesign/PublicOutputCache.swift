import Foundation
import Tensor
import TextData
import Transformer

/// The part of stage-2 training of a member with public layers (`BertConfig.publicLayers`) that never
/// changes: the public layers' output for every training example, and the teacher's logits when
/// distilling (the transfer set's from its labelling). Computed once, before the first task epoch, so that each step runs only the trainable
/// layers (for one trainable layer after five public ones, about a sixth of the forward work and none
/// of the teacher's). The values are those the uncached step computes: the public part runs without
/// dropout or gradient either way, and padding rows cannot reach a real token's row or the [CLS] row.
struct PublicOutputCache {
    let hidden: Int
    /// Per example, the public output's rows of its real tokens, `[length · H]`.
    private var rows: [[Float]]
    /// Per example, the teacher's logits (`[C]`), or nil without a teacher.
    private var teacherLogits: [[Float]]?

    /// - Parameters:
    ///   - model: the member (its public layers are frozen, so their output is final).
    ///   - teacherLogits: the distillation teacher's logits of every example of `data` (`Evaluation.logits`,
    ///     no dropout), or nil without a teacher.
    ///   - data: the training examples, with any transfer sentences.
    init(model: BertForSequenceClassification, teacherLogits: [[Float]]?, data: Batcher, batchSize: Int = 64) {
        precondition(teacherLogits == nil || teacherLogits!.count == data.count, "PublicOutputCache: one teacher row per example")
        let h = model.config.hidden
        hidden = h
        var rows = [[Float]](repeating: [], count: data.count)
        let byLength = data.encodings.indices.sorted { data.encodings[$0].count < data.encodings[$1].count }
        Tensor.withNoGrad {
            for lo in stride(from: 0, to: byLength.count, by: batchSize) {
                let idx = Array(byLength[lo..<min(lo + batchSize, byLength.count)])
                let batch = data.makeBatch(idx).encoded
                let out = model.publicOutput(batch).data, s = batch.seqLen
                for (r, i) in idx.enumerated() {
                    let n = data.encodings[i].count
                    rows[i] = Array(out[(r * s * h)..<((r * s + n) * h)])
                }
            }
        }
        self.rows = rows
        self.teacherLogits = teacherLogits
    }

    /// The public output of examples `indices` padded to `seqLen` (zero rows after each example's tokens),
    /// `[B, S, H]`.
    func states(_ indices: [Int], seqLen s: Int) -> Tensor {
        let h = hidden
        var data = [Float](repeating: 0, count: indices.count * s * h)
        for (r, i) in indices.enumerated() { data.replaceSubrange((r * s * h)..<(r * s * h + rows[i].count), with: rows[i]) }
        return Tensor(shape: [indices.count, s, h], data: data)
    }

    /// The teacher's logits of examples `indices`, `[B, C]`, or nil without a teacher.
    func teacher(_ indices: [Int]) -> Tensor? {
        teacherLogits.map { l in Tensor(shape: [indices.count, l[indices[0]].count], data: indices.flatMap { l[$0] }) }
    }
}
