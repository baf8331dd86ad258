import CostModel
import Foundation
import MPC
import Testing
@testable import SecureInference

/// Issue 5: the cost model's online bytes and rounds equal the runtime's counters, section by section.
@Suite(.timeLimit(.minutes(3))) struct CostModelTests {
    func measured(_ profile: [String: CostSample]) -> [String: (bytes: Int, rounds: Int)] {
        profile.filter { CostModel.sections.contains($0.key) }.mapValues { ($0.bytesSent + $0.bytesReceived, $0.rounds) }
    }

    func expectEqual(_ predicted: [String: Cost], _ got: [String: (bytes: Int, rounds: Int)], _ what: String) {
        for name in Set(predicted.keys).union(got.keys) {
            let p = predicted[name] ?? Cost(), g = got[name] ?? (0, 0)
            #expect(p.bytes == g.bytes && p.rounds == g.rounds,
                    "\(what) \(name): predicted \(p.bytes) B / \(p.rounds) rounds, measured \(g.bytes) B / \(g.rounds) rounds")
        }
    }

    @Test(arguments: [
        EncoderShape(layers: 1, hidden: 32, heads: 2, intermediate: 64, seq: 16, classes: 2),
        EncoderShape(layers: 2, hidden: 24, heads: 3, intermediate: 40, seq: 13, classes: 5, softmax: .twoQuad, activation: .quad),
        EncoderShape(layers: 1, hidden: 16, heads: 1, intermediate: 32, seq: 7, classes: 3, activation: .relu, validLength: 5),
        // 2Quad fused with P·V (D < S) on the valid keys only, and unfused (D ≥ S).
        EncoderShape(layers: 1, hidden: 16, heads: 2, intermediate: 32, seq: 12, classes: 2, softmax: .twoQuad, activation: .quad, validLength: 9),
        EncoderShape(layers: 1, hidden: 32, heads: 1, intermediate: 32, seq: 16, classes: 2, softmax: .twoQuad, activation: .quad),
        // A pruned encoder: per-layer heads and widths.
        EncoderShape(layers: 2, hidden: 24, heads: 3, intermediate: 40, seq: 9, classes: 2, softmax: .twoQuad, activation: .quad,
                     layerHeads: [1, 3], layerIntermediate: [16, 40]),
        // Linear layers on Z_2^32.
        EncoderShape(layers: 1, hidden: 32, heads: 2, intermediate: 64, seq: 16, classes: 2, ringBits: 32),
    ])
    func encoderProgramCountsMatch(shape: EncoderShape) throws {
        let program = EncoderProgram(shape: shape, revealLogits: true)
        let r = try Session.runInMemory(program, clientInputs: program.syntheticInputs(for: .client, seed: 1),
                                        serverInputs: program.syntheticInputs(for: .server, seed: 2),
                                        options: SessionOptions(seeds: .insecureTest(3)))
        let predicted = CostModel.encoderProgram(shape, revealLogits: true)
        expectEqual(predicted, measured(r.client.profile ?? [:]), "encoder \(shape.seq)")
        let total = CostModel.total(predicted)
        #expect(total.rounds == r.client.rounds && total.bytes == r.client.onlineBytesSent + r.client.onlineBytesReceived)
    }

    @Test(arguments: [(SecureSoftmax.exact, false, 64), (.twoQuad, false, 64), (.twoQuad, true, 64), (.exact, false, 32), (.twoQuad, true, 32)])
    func bertQueriesMatch(variant: (softmax: SecureSoftmax, publicEmbedding: Bool, ringBits: Int)) throws {
        let softmax = variant.softmax
        var shape = SecureBertShape(layers: 1, hidden: 32, heads: 2, intermediate: 48, classes: 3, vocab: 50, maxPosition: 64,
                                    softmax: softmax, activation: softmax == .exact ? .gelu : .quad, fracBits: variant.ringBits == 32 ? 12 : 16)
        if variant.publicEmbedding { shape.embedding = "public" }
        if variant.ringBits == 32 { shape.ringBits = 32 }
        let buckets = [16, 32, 16, 16]
        for batch in [1, 2] {
            let program = BertProgram(model: shape, buckets: buckets, batch: batch)
            let r = try Session.runInMemory(program, clientInputs: program.syntheticInputs(for: .client, seed: 4),
                                            serverInputs: program.syntheticInputs(for: .server, seed: 5),
                                            options: SessionOptions(seeds: .insecureTest(6)))
            let outcomes = try #require(r.client.output ?? nil)
            for o in outcomes {
                let predicted = shape.predictedCost(seq: buckets[o.index], batch: o.batch)
                #expect((predicted["embedding"]!.bytes == 0) == variant.publicEmbedding)
                if o.batch == 1 {
                    expectEqual(predicted, measured(o.sections), "query \(o.index)")
                } else {
                    // Batched queries report the batch's rounds and their share of its bytes.
                    let t = CostModel.total(predicted)
                    #expect(o.cost.rounds == t.rounds)
                    #expect(abs((o.cost.bytesSent + o.cost.bytesReceived) - t.bytes / o.batch) <= 2, "query \(o.index) in a batch of \(o.batch)")
                }
            }
        }
    }

    /// The calibration fit recovers known coefficients from synthetic samples.
    @Test func calibrationFitRecoversCoefficients() {
        let truth = Calibration(perMAC: 1e-9, perDCFLevel: 3e-8, perWord: 2e-9, perRound: 1e-4, perTableMAC: 4e-9)
        var g = SyntheticData(seed: 1)
        let samples = (0..<40).map { _ -> (cost: Cost, seconds: Double) in
            let c = Cost(rounds: 1 + g.int(below: 200), macs: Double(g.int(below: 1 << 28)), dcfLevels: Double(g.int(below: 1 << 22)),
                         words: Double(g.int(below: 1 << 24)), tableMACs: Double(g.int(below: 1 << 26)))
            return (c, CostModel.seconds(c, network: .none, calibration: truth))
        }
        let fit = Calibration.fit(samples, note: "test")
        for (a, b) in [(fit.perMAC, truth.perMAC), (fit.perDCFLevel, truth.perDCFLevel), (fit.perWord, truth.perWord), (fit.perRound, truth.perRound),
                       (fit.perTableMAC, truth.perTableMAC)] {
            #expect(abs(a - b) <= 0.02 * b, "fitted \(a) vs \(b)")
        }
    }
}
