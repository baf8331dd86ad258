import Foundation
import MPC
import SecureInference
import Tensor
import Testing
import Transformer
@testable import Router

/// Issue 6: the router under MPC. Reveal and oblivious give the same labels, and both agree with the
/// plaintext routed pipeline, routing decision included.
@Suite(.timeLimit(.minutes(3))) struct SecureRoutingTests {
    /// A small random member (trained-scale weights so that members disagree).
    static func member(layers: Int, hidden: Int, heads: Int, softmax: SoftmaxVariant, activation: ActivationVariant, seed: UInt64) -> BertForSequenceClassification {
        let config = BertConfig(layers: layers, hidden: hidden, heads: heads, intermediate: 2 * hidden, vocabSize: 40, maxPosition: 32,
                                numLabels: 3, hiddenDropout: 0, attentionDropout: 0, softmax: softmax, activation: activation)
        let m = BertForSequenceClassification(config: config, rng: SeededGenerator(seed: seed))
        let g = SeededGenerator(seed: seed + 100)
        for (name, t) in m.namedParameters() where !name.contains("LayerNorm") {
            let std: Float = name.hasSuffix(".bias") ? 0.1 : (name.contains("embeddings") ? 1 : 1 / Float(t.shape.last!).squareRoot())
            t.data = Tensor.randn(t.shape, std: std, rng: g).data
        }
        return m
    }

    /// Three members of different shapes and variants, a random router on member 2's first layer, and
    /// a lambda that makes the choice depend on both the utilities and the bucket's costs.
    static func pool() throws -> (RoutedPipeline, [SecureBertShape], [String: RingTensor]) {
        let models = [member(layers: 2, hidden: 16, heads: 2, softmax: .exact, activation: .gelu, seed: 1),
                      member(layers: 1, hidden: 16, heads: 2, softmax: .twoQuad, activation: .quad, seed: 2),
                      member(layers: 2, hidden: 8, heads: 1, softmax: .exact, activation: .relu, seed: 3)]
        let shapes = try models.map { try SecureBertWeights.shape(of: .init(architecture: $0.config, task: "t", labels: ["a", "b", "c"])) }
        let net = UtilityNetwork(features: 8, hidden: 6, members: 3, seed: 4)
        let g = SeededGenerator(seed: 5)
        for (_, t) in net.namedParameters() { t.data = Tensor.randn(t.shape, std: 1, rng: g).data }
        let stored = Dictionary(uniqueKeysWithValues: net.namedParameters().map { ($0.0, (shape: $0.1.shape, data: $0.1.data)) })
        let weights = try SecureRouterWeights(stored: stored, members: 3)
        let router = SecureRouterShape(featureMember: 2, featureLayers: 1, hidden: 6, lambda: 0.3,
                                       costs: ["16": [1.0, 0.4, 0.2], "32": [2.0, 0.8, 0.3]])
        let pipe = RoutedPipeline(names: ["big", "quad", "small"], models: models, router: router, weights: weights)
        var server = weights.ringInputs(fixedPoint: FixedPoint())
        for (j, (m, s)) in zip(models, shapes).enumerated() {
            for (k, v) in SecureBertWeights(model: m).ringInputs(s, rows: 32) { server["m\(j).\(k)"] = v }
        }
        return (pipe, shapes, server)
    }

    static func queries(count: Int) -> (QueryFile, [Int]) {
        var g = SyntheticData(seed: 11)
        let lengths = (0..<count).map { _ in 1 + g.int(below: 30) }
        let buckets = lengths.map { $0 <= 16 ? 16 : 32 }
        let ids = zip(lengths, buckets).map { len, s in (0..<s).map { $0 < len ? 1 + g.int(below: 39) : 0 } }
        return (QueryFile(ids: ids, lengths: lengths), buckets)
    }

    @Test func revealAndObliviousAgreeWithThePlaintextPipeline() throws {
        let (pipe, shapes, server) = try Self.pool()
        let (q, buckets) = Self.queries(count: 12)
        let expected = try pipe.decide(q, buckets: buckets)
        #expect(Set(expected.map(\.member)).count >= 2, "the test pool should route to several members: \(expected.map(\.member))")
        var labels = [RoutingMode: [Int]]()
        for mode in RoutingMode.allCases {
            let program = RoutedBertProgram(names: pipe.names, members: shapes, router: pipe.router, mode: mode, buckets: buckets)
            #expect(program.problem == nil)
            let r = try Session.runInMemory(program, clientInputs: try q.ringInputs(buckets: buckets), serverInputs: server,
                                            options: SessionOptions(seeds: .insecureTest(6)))
            let client = try #require(r.client.output ?? nil), srv = try #require(r.server.output ?? nil)
            labels[mode] = client.map { $0.query.label ?? -1 }
            #expect(srv.allSatisfy { $0.query.label == nil }, "the server never learns a label")
            if mode == .reveal {
                #expect(client.map(\.model) == expected.map(\.member), "routing decisions differ from the plaintext pipeline")
                #expect(srv.map(\.model) == client.map(\.model))
                // Only the chosen member ran: a query routed to the cheapest member costs fewer rounds than one routed to the largest.
                let rounds = Dictionary(grouping: client, by: { $0.model! }).mapValues { $0.map(\.query.cost.rounds).max()! }
                if let big = rounds[0], let small = rounds[2] { #expect(small < big) }
            } else {
                #expect(client.allSatisfy { $0.model == nil })
            }
            #expect(client.allSatisfy { $0.router.rounds > 0 && $0.router.rounds < $0.query.cost.rounds })
        }
        #expect(labels[.reveal] == expected.map(\.label), "secure labels differ from the plaintext routed pipeline")
        #expect(labels[.oblivious] == labels[.reveal])
    }

    @Test func programRefusesInconsistentPools() throws {
        let (pipe, shapes, _) = try Self.pool()
        var other = shapes
        other[1].classes = 2
        #expect(RoutedBertProgram(names: pipe.names, members: other, router: pipe.router, mode: .reveal, buckets: [16]).problem != nil)
        var router = pipe.router
        router.featureLayers = 3
        #expect(RoutedBertProgram(names: pipe.names, members: shapes, router: router, mode: .reveal, buckets: [16]).problem != nil)
        #expect(RoutedBertProgram(names: pipe.names, members: shapes, router: pipe.router, mode: .reveal, buckets: [64]).problem != nil)
    }
}
