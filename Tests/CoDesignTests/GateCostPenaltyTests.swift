import CostModel
import MPC
import Testing
import Tensor
import Transformer
@testable import CoDesign

/// Issue 5: the cost penalty prices gates with the cost model, so that fully open gates cost the full
/// model and closed structure costs exactly what removing it saves.
struct GateCostPenaltyTests {
    static let config = BertConfig(layers: 3, hidden: 32, heads: 4, intermediate: 64, vocabSize: 100, maxPosition: 64,
                                   numLabels: 2, softmax: .exact, activation: .gelu)
    static let buckets: [Int: Double] = [16: 0.25, 32: 0.75]

    /// Cost model seconds of a (possibly pruned) model, bucket-averaged.
    func seconds(heads: [Int], widths: [Int], publicEmbedding: Bool = false) -> Double {
        let c = Self.config
        return Self.buckets.reduce(0.0) { sum, b in
            let s = EncoderShape(layers: heads.count, hidden: c.hidden, heads: c.heads, intermediate: c.intermediate, seq: b.key,
                                 classes: 2, layerHeads: heads, layerIntermediate: widths)
            let q = CostModel.bertQuery(s, vocab: c.vocabSize, publicEmbedding: publicEmbedding)
            return sum + b.value * CostModel.seconds(CostModel.total(q), network: .lan)
        }
    }

    /// A member with a public embedding is priced without the embedding lookup it never pays.
    @Test func publicEmbeddingLeavesTheLookupOutOfTheFullCost() throws {
        let c = Self.config
        let open = try GateCostPenalty(config: c, groupSize: 16, bucketWeights: Self.buckets, network: .lan, publicEmbedding: true)
        let looked = try GateCostPenalty(config: c, groupSize: 16, bucketWeights: Self.buckets, network: .lan)
        #expect(abs(open.full - seconds(heads: [4, 4, 4], widths: [64, 64, 64], publicEmbedding: true)) < 1e-12)
        #expect(open.full < looked.full)
    }

    @Test func openGatesCostTheFullModelAndClosedOnesCostNothing() throws {
        let c = Self.config
        let penalty = try GateCostPenalty(config: c, groupSize: 16, bucketWeights: Self.buckets, network: .lan)
        #expect(abs(penalty.full - seconds(heads: [4, 4, 4], widths: [64, 64, 64])) < 1e-12)
        let gates = StructureGates(config: c, groupSize: 16, logAlphaScale: 1)
        for (_, t) in gates.namedParameters() { t.data = [Float](repeating: 30, count: t.count) }
        let open = gates.openProbabilityCheck(penalty)
        #expect(abs(open - 1) < 1e-5, "all open: relative cost \(open)")
        // Close layer 1, two heads and one group of layer 0, and three groups of layer 2.
        gates.layers[1]!.data = [-30]
        gates.heads[0]!.data = [30, -30, -30, 30]
        gates.ffn[0]!.data = [30, 30, -30, 30]
        gates.ffn[2]!.data = [-30, 30, -30, -30]
        let expected = seconds(heads: [2, 4], widths: [48, 16]) / penalty.full
        let got = gates.openProbabilityCheck(penalty)
        #expect(abs(got - expected) < 1e-4, "relative cost \(got), the pruned model's \(expected)")
        #expect(got < 0.7)
    }

    @Test func unsupportedVariantIsRefused() {
        var c = Self.config
        c.softmax = .reluNorm
        #expect(throws: PenaltyError.self) { try GateCostPenalty(config: c, groupSize: 16, bucketWeights: [16: 1], network: .lan) }
    }
}

extension StructureGates {
    fileprivate func openProbabilityCheck(_ p: GateCostPenalty) -> Double {
        Double(p.relativeCost(self, config: GateCostPenaltyTests.config).item)
    }
}
