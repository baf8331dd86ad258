import CoDesign
import Tensor
import Testing
import Transformer

/// Stage-1 distillation: layer map, zero loss on an identical student, padding, learning.
@Suite struct LayerDistillationTests {
    func config(layers: Int, hidden: Int, heads: Int) -> BertConfig {
        BertConfig(layers: layers, hidden: hidden, heads: heads, intermediate: 2 * hidden, vocabSize: 30, maxPosition: 16,
                   numLabels: 2, hiddenDropout: 0, attentionDropout: 0)
    }

    let batch = EncodedBatch(batch: 2, seqLen: 6, inputIds: [2, 5, 9, 7, 3, 0, 2, 11, 4, 3, 0, 0],
                             attentionMask: [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0])

    @Test(arguments: [(2, 6, [2, 5]), (3, 6, [1, 3, 5]), (4, 6, [0, 2, 3, 5]), (4, 4, [0, 1, 2, 3]), (1, 3, [2])])
    func uniformLayerMap(student: Int, teacher: Int, expected: [Int]) throws {
        let d = try LayerDistillation(student: config(layers: student, hidden: 8, heads: 2),
                                      teacher: config(layers: teacher, hidden: 8, heads: 2), rng: SeededGenerator(seed: 1))
        #expect(d.layerMap == expected)
        #expect(d.projection == nil && d.namedParameters().isEmpty)
    }

    @Test func deeperStudentIsRefused() {
        #expect(throws: ConfigError.self) {
            try LayerDistillation(student: config(layers: 3, hidden: 8, heads: 2), teacher: config(layers: 2, hidden: 8, heads: 2),
                                  rng: SeededGenerator(seed: 1))
        }
    }

    @Test func identicalStudentHasZeroLossAndZeroGradient() throws {
        let c = config(layers: 2, hidden: 8, heads: 2)
        let teacher = BertForSequenceClassification(config: c, rng: SeededGenerator(seed: 2))
        let student = BertForSequenceClassification(config: c, rng: SeededGenerator(seed: 3))
        let d = try LayerDistillation(student: c, teacher: c, rng: SeededGenerator(seed: 4))
        let target = Tensor.withNoGrad { teacher.trace(batch) }
        // Different weights: a positive loss in both parts.
        let before = d.loss(student: student.trace(batch), teacher: target, attentionMask: batch.attentionMask)
        #expect(before.hidden > 0.01 && before.attention > 0 && before.total.item > 0, "\(before)")
        // Same weights: exactly zero, and so is every gradient.
        for ((_, s), (_, t)) in zip(student.namedParameters(), teacher.namedParameters()) { s.data = t.data }
        let same = d.loss(student: student.trace(batch), teacher: target, attentionMask: batch.attentionMask)
        #expect(same.total.item == 0 && same.hidden == 0 && same.attention == 0)
        same.total.backward()
        for (name, p) in student.namedParameters() {
            #expect((p.grad ?? []).allSatisfy { $0 == 0 }, "\(name) has a gradient")
        }
    }

    @Test func paddedPositionsDoNotCount() throws {
        let (sc, tc) = (config(layers: 1, hidden: 8, heads: 2), config(layers: 2, hidden: 16, heads: 4))
        let student = BertForSequenceClassification(config: sc, rng: SeededGenerator(seed: 5))
        let teacher = BertForSequenceClassification(config: tc, rng: SeededGenerator(seed: 6))
        let d = try LayerDistillation(student: sc, teacher: tc, rng: SeededGenerator(seed: 7))
        func loss(_ ids: [Int32]) -> (Float, Float) {
            let b = EncodedBatch(batch: 2, seqLen: 6, inputIds: ids, attentionMask: batch.attentionMask)
            let l = Tensor.withNoGrad { d.loss(student: student.trace(b), teacher: teacher.trace(b), attentionMask: b.attentionMask) }
            return (l.hidden, l.attention)
        }
        var other = batch.inputIds
        other[5] = 17; other[10] = 21; other[11] = 13  // only padded positions change
        #expect(loss(batch.inputIds) == loss(other))
        other[4] = 17  // a real token changes: so does the loss
        #expect(loss(batch.inputIds) != loss(other))
    }

    /// A narrower, shallower student with fewer heads (projection and head averaging in play)
    /// learns to imitate the teacher: the stage-1 loss falls.
    @Test func stageOneLossDecreasesOnATinyRandomModel() throws {
        let (sc, tc) = (config(layers: 1, hidden: 8, heads: 2), config(layers: 2, hidden: 16, heads: 4))
        let student = BertForSequenceClassification(config: sc, rng: SeededGenerator(seed: 8))
        let teacher = BertForSequenceClassification(config: tc, rng: SeededGenerator(seed: 9))
        let d = try LayerDistillation(student: sc, teacher: tc, hiddenWeight: 1, attentionWeight: 10, rng: SeededGenerator(seed: 10))
        #expect(d.layerMap == [1] && d.projection?.weight.shape == [16, 8])
        let target = Tensor.withNoGrad { teacher.trace(batch) }
        let params = student.parameters() + d.namedParameters().map(\.tensor)
        let opt = AdamW(parameters: params, learningRate: 1e-2, weightDecay: 0)
        var losses: [Float] = []
        for _ in 0..<60 {
            opt.zeroGrad()
            let l = d.loss(student: student.trace(batch), teacher: target, attentionMask: batch.attentionMask)
            l.total.backward()
            opt.step()
            losses.append(l.total.item)
        }
        #expect(losses.last! < 0.5 * losses.first!, "stage-1 loss went from \(losses.first!) to \(losses.last!)")
    }

    /// Finite differences of the stage-1 loss against its gradient, on the projection and on a student weight.
    @Test func gradientMatchesFiniteDifferences() throws {
        let (sc, tc) = (config(layers: 1, hidden: 8, heads: 2), config(layers: 2, hidden: 16, heads: 4))
        let student = BertForSequenceClassification(config: sc, rng: SeededGenerator(seed: 11))
        let teacher = BertForSequenceClassification(config: tc, rng: SeededGenerator(seed: 12))
        let d = try LayerDistillation(student: sc, teacher: tc, rng: SeededGenerator(seed: 13))
        // Larger weights than the N(0, 0.02) init, so the attention scores (and their gradients) are not tiny.
        let noise = SeededGenerator(seed: 14)
        for (_, t) in student.namedParameters() + teacher.namedParameters() + d.namedParameters() {
            t.data = t.data.map { $0 + 0.3 * noise.nextGaussian() }
        }
        let target = Tensor.withNoGrad { teacher.trace(batch) }
        func value() -> Double {
            Double(Tensor.withNoGrad { d.loss(student: student.trace(batch), teacher: target, attentionMask: batch.attentionMask).total.item })
        }
        d.loss(student: student.trace(batch), teacher: target, attentionMask: batch.attentionMask).total.backward()
        let probes = [d.projection!.weight, student.encoder.layers[0].query.weight, student.encoder.layers[0].output.weight]
        for t in probes {
            let analytic = t.grad!
            for i in [0, 5, 17] {
                let saved = t.data[i], h: Float = 1e-2
                t.data[i] = saved + h
                let plus = value()
                t.data[i] = saved - h
                let minus = value()
                t.data[i] = saved
                let numeric = Float((plus - minus) / Double(2 * h))
                #expect(abs(numeric - analytic[i]) <= 1e-3 + 2e-2 * abs(numeric), "d loss / d \(t.shape)[\(i)]: \(analytic[i]) vs \(numeric)")
            }
        }
    }
}
