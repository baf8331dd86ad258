import Testing
import Tensor
import Transformer
import _TestSupport

/// Issue 5: hard-concrete gates have correct gradients, and pruning removes gated-off structure without
/// changing what the (evaluation-mode) gated model computes.
struct StructureGatesTests {
    static func config(layers: Int = 2) -> BertConfig {
        BertConfig(layers: layers, hidden: 16, heads: 4, intermediate: 24, vocabSize: 40, maxPosition: 32, numLabels: 3,
                   hiddenDropout: 0, attentionDropout: 0)
    }

    static func model(_ c: BertConfig, seed: UInt64 = 3) -> BertForSequenceClassification {
        let m = BertForSequenceClassification(config: c, rng: SeededGenerator(seed: seed))
        let g = SeededGenerator(seed: seed + 1)
        for (name, t) in m.namedParameters() where !name.contains("LayerNorm") {
            t.data = Tensor.randn(t.shape, std: name.hasSuffix(".bias") ? 0.1 : 0.5, rng: g).data
        }
        return m
    }

    static let batch = EncodedBatch(batch: 2, seqLen: 5, inputIds: [1, 5, 9, 3, 0, 2, 7, 7, 11, 4],
                                    attentionMask: [1, 1, 1, 1, 0, 1, 1, 1, 1, 1])

    /// Gate parameters strictly inside the clipping range, so that finite differences see a smooth function.
    static func interior(_ gates: StructureGates, seed: UInt64) {
        let g = SeededGenerator(seed: seed)
        for (_, t) in gates.namedParameters() { t.data = (0..<t.count).map { _ in g.nextFloat() * 2 - 1 } }
    }

    @Test(arguments: [false, true]) func gatedModelGradientsMatchFiniteDifferences(training: Bool) {
        let c = Self.config()
        let m = Self.model(c)
        // Scale 1 so that the finite-difference step (1e-2) is a small change of log α; group size 6 (4 groups).
        let gates = StructureGates(config: c, groupSize: 6, logAlphaScale: 1)
        Self.interior(gates, seed: 9)
        m.gates = gates
        let thetas = gates.namedParameters().map(\.tensor)
        // The same logistic noise on every evaluation (training), so the function being differentiated is fixed.
        checkGradients(thetas, rtol: 3e-2, atol: 3e-3) { _ in
            m.forward(Self.batch, training: training, rng: SeededGenerator(seed: 11))
        }
    }

    @Test func openProbabilityGradientAndValues() {
        let gates = StructureGates(config: Self.config(layers: 1), groupSize: 6, logAlphaScale: 2)
        let theta = param([5], seed: 4)
        checkGradients([theta]) { gates.openProbability($0[0]) }
        // log α → +∞: always open; → −∞: never.
        let p = gates.openProbability(Tensor(shape: [2], data: [40, -40])).data
        #expect(abs(p[0] - 1) < 1e-6 && p[1] < 1e-6)
        // Sampled gates are exactly 0 or exactly 1 a fair share of the time (the "hard" in hard-concrete).
        let open = StructureGates(config: Self.config(layers: 1), gateHeads: true, gateFFN: false, gateLayers: false,
                                  groupSize: 6, initialLogAlpha: 0)
        let rng = SeededGenerator(seed: 5)
        var zeros = 0, ones = 0, total = 0
        for _ in 0..<200 {
            for z in open.values(training: true, rng: rng)[0].heads!.data {
                total += 1
                if z == 0 { zeros += 1 } else if z == 1 { ones += 1 }
            }
        }
        #expect(zeros > total / 20 && ones > total / 20, "zeros \(zeros), ones \(ones) of \(total)")
    }

    @Test func pruningKeepsTheGatedModelsOutputs() throws {
        let c = Self.config(layers: 3)
        let m = Self.model(c)
        let gates = StructureGates(config: c, groupSize: 6, logAlphaScale: 1)
        m.gates = gates
        // Layer 0: heads 1 and 3 closed, head 2 half open; FFN group 0 closed, group 2 partly open.
        gates.heads[0]!.data = [5, -9, 0.3, -9]
        gates.ffn[0]!.data = [-9, 5, -0.5, 5]
        // Layer 1 removed by its layer gate; layer 2: every head closed (one must stay), all groups open.
        gates.layers[1]!.data = [-9]
        gates.heads[2]!.data = [-9, -9, -9, -9]
        let before = m.forward(Self.batch, training: false, rng: SeededGenerator(seed: 0)).data
        let (pruned, report) = StructurePruning.prune(m)
        #expect(report.keptLayers == [0, 2])
        #expect(report.layerHeads == [2, 1] && report.layerIntermediate == [18, 24])
        #expect(report.roundedLayerGates == 0)
        #expect(pruned.config.layers == 2 && pruned.config.layerHeads == [2, 1] && pruned.config.layerIntermediate == [18, 24])
        #expect(pruned.encoder.layers[0].query.weight.shape == [8, 16] && pruned.encoder.layers[0].attentionOutput.weight.shape == [16, 8])
        #expect(pruned.encoder.layers[0].intermediate.weight.shape == [18, 16] && pruned.encoder.layers[0].output.weight.shape == [16, 18])
        let after = pruned.forward(Self.batch, training: false, rng: SeededGenerator(seed: 0)).data
        expectClose(after, before, rtol: 1e-4, atol: 1e-5, "pruned vs gated logits")
        // Fewer parameters, same HF names per kept layer.
        #expect(pruned.parameters().reduce(0) { $0 + $1.count } < m.parameters().reduce(0) { $0 + $1.count })
        try pruned.config.validate()
    }

    @Test func prunedConfigRoundTripsAndIsValidated() throws {
        var c = Self.config(layers: 2)
        c.layerHeads = [1, 3]
        c.layerIntermediate = [6, 12]
        let m = BertForSequenceClassification(config: c, rng: SeededGenerator(seed: 1))
        #expect(m.encoder.layers[1].value.weight.shape == [12, 16] && m.encoder.layers[1].output.weight.shape == [16, 12])
        #expect(m.forward(Self.batch, training: false, rng: SeededGenerator(seed: 0)).shape == [2, 3])
        var bad = c
        bad.layerHeads = [1]
        #expect(throws: ModelError.self) { try bad.validate() }
        bad = c
        bad.layerIntermediate = [0, 3]
        #expect(throws: ModelError.self) { try bad.validate() }
    }
}
