import Checkpoint
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
    static func member(layers: Int, hidden: Int, heads: Int, softmax: SoftmaxVariant, activation: ActivationVariant, seed: UInt64,
                       publicLayers: Int? = nil) -> BertForSequenceClassification {
        var config = BertConfig(layers: layers, hidden: hidden, heads: heads, intermediate: 2 * hidden, vocabSize: 40, maxPosition: 32,
                                numLabels: 3, hiddenDropout: 0, attentionDropout: 0, softmax: softmax, activation: activation)
        config.publicLayers = publicLayers
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
    /// With `twins`, a fourth member of member 0's shape (other weights): select-then-compute runs the
    /// two as one selected model in oblivious mode.
    /// With `publicEmbedding`, every member's embedding is public (the client embeds its text) and the
    /// router's features are member 2's mean embedding (`featureLayers` 0).
    /// With `publicLayers` (and `publicEmbedding`), member 2's first layer is public (the client computes it) and
    /// the router's features are the [CLS] row after it (`featureLayers` 1: the client's rows, no MPC cost).
    /// `fracBits`: the session's fixed point (every member's shape and the server's encoding).
    /// With `logits`, the router's features are member 2's logits (its whole forward).
    static func pool(twins: Bool = false, publicEmbedding: Bool = false, publicLayers: Bool = false, fracBits: Int = 16,
                     logits: Bool = false) throws
        -> (RoutedPipeline, [SecureBertShape], [String: RingTensor])
    {
        var models = [member(layers: 2, hidden: 16, heads: 2, softmax: .exact, activation: .gelu, seed: 1),
                      member(layers: 1, hidden: 16, heads: 2, softmax: .twoQuad, activation: .quad, seed: 2),
                      member(layers: 2, hidden: 8, heads: 1, softmax: .exact, activation: .relu, seed: 3, publicLayers: publicLayers ? 1 : nil)]
        if twins { models.append(member(layers: 2, hidden: 16, heads: 2, softmax: .exact, activation: .gelu, seed: 7)) }
        let shapes = try models.map { model in
            var c = CheckpointConfig(architecture: model.config, task: "t", labels: ["a", "b", "c"])
            if publicEmbedding || model.config.publicLayerCount > 0 { c.embedding = CheckpointConfig.publicEmbedding }
            var shape = try SecureBertWeights.shape(of: c)
            shape.fracBits = fracBits
            return shape
        }
        let m = models.count
        let net = UtilityNetwork(features: logits ? 3 : 8, hidden: 6, members: m, seed: 4)
        let g = SeededGenerator(seed: 5)
        for (name, t) in net.namedParameters() {
            // Mean-embedding features vary less between queries than a layer's [CLS]: a wider first layer.
            // So do a random member's three logits.
            let std: Float = (publicEmbedding || logits) && name == "router.fc1.weight" ? 6 : 1
            t.data = Tensor.randn(t.shape, std: std, rng: g).data
        }
        let stored = Dictionary(uniqueKeysWithValues: net.namedParameters().map { ($0.0, (shape: $0.1.shape, data: $0.1.data)) })
        let weights = try SecureRouterWeights(stored: stored, members: m)
        let costs = twins ? ["16": [0.1, 0.4, 0.2, 0.05], "32": [0.2, 0.8, 0.3, 0.1]] : ["16": [1.0, 0.4, 0.2], "32": [2.0, 0.8, 0.3]]
        let router = SecureRouterShape(featureMember: 2, featureLayers: logits ? 2 : publicEmbedding && !publicLayers ? 0 : 1, hidden: 6,
                                       lambda: 0.3, costs: costs, features: logits ? .logits : .cls)
        let pipe = RoutedPipeline(names: Array(["big", "quad", "small", "twin"].prefix(m)), models: models, router: router, weights: weights)
        var server = weights.ringInputs(fixedPoint: FixedPoint(fracBits: fracBits))
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

    /// Select-then-compute: members 0 and 3 share a shape, so oblivious mode runs them as one model whose
    /// weights the secret one-hot selects. Same labels as reveal and as the plaintext pipeline, whether
    /// the choice falls inside the group or outside it, and fewer online bytes than running each member.
    @Test func selectThenComputeGivesTheChosenMembersLabels() throws {
        let (pipe, shapes, server) = try Self.pool(twins: true)
        let (q, buckets) = Self.queries(count: 12)
        let expected = try pipe.decide(q, buckets: buckets)
        let chosen = Set(expected.map(\.member))
        #expect(!chosen.isDisjoint(with: [0, 3]) && !chosen.isSubset(of: [0, 3]), "route both into and outside the group: \(expected.map(\.member))")
        // The twins disagree on some query routed into the group, so selecting the wrong one would show.
        let alone = [0, 3].map { PaddedInference.logits(pipe.models[$0], q, buckets: buckets).map { l in l.indices.max { l[$0] < l[$1] }! } }
        #expect(expected.indices.contains { [0, 3].contains(expected[$0].member) && alone[0][$0] != alone[1][$0] },
                "members: \(expected.map(\.member)), twin labels \(alone)")
        var program = RoutedBertProgram(names: pipe.names, members: shapes, router: pipe.router, mode: .oblivious, buckets: buckets)
        #expect(program.obliviousUnits == [[0, 3], [1], [2]])
        func run(_ p: RoutedBertProgram) throws -> [RoutedOutcome] {
            let r = try Session.runInMemory(p, clientInputs: try q.ringInputs(buckets: buckets), serverInputs: server,
                                            options: SessionOptions(seeds: .insecureTest(8)))
            return try #require(r.client.output ?? nil)
        }
        let grouped = try run(program)
        program.selectThenCompute = false
        #expect(program.obliviousUnits == [[0], [1], [2], [3]])
        let separate = try run(program)
        #expect(grouped.map { $0.query.label ?? -1 } == expected.map(\.label), "select-then-compute labels differ from the plaintext pipeline")
        #expect(separate.map { $0.query.label ?? -1 } == expected.map(\.label))
        let bytes = { (o: [RoutedOutcome]) in o.map { $0.query.cost.bytesSent + $0.query.cost.bytesReceived }.reduce(0, +) }
        print("oblivious online bytes, 12 queries: select-then-compute \(bytes(grouped)), each member separately \(bytes(separate))")
        #expect(bytes(grouped) < bytes(separate))
    }

    /// Runs 12 queries through `pool` in both modes and checks them against the plaintext pipeline: labels in
    /// both modes, routing decisions in reveal, on every query whose score margin is clear (near-ties below
    /// the runtime's fixed-point noise may go either way). Returns each mode's client outcomes.
    static func agreeWithThePipeline(_ pool: (RoutedPipeline, [SecureBertShape], [String: RingTensor]), seed: UInt64) throws
        -> [RoutingMode: [RoutedOutcome]]
    {
        let (pipe, shapes, server) = pool
        let (q, buckets) = queries(count: 12)
        let expected = try pipe.decide(q, buckets: buckets)
        #expect(Set(expected.map(\.member)).count >= 2, "the test pool should route to several members: \(expected.map(\.member))")
        let clear = expected.indices.filter { expected[$0].margin >= 0.01 }
        #expect(clear.count >= 9, "margins \(expected.map(\.margin))")
        var out = [RoutingMode: [RoutedOutcome]]()
        for mode in RoutingMode.allCases {
            let program = RoutedBertProgram(names: pipe.names, members: shapes, router: pipe.router, mode: mode, buckets: buckets)
            #expect(program.problem == nil)
            let r = try Session.runInMemory(program, clientInputs: try q.ringInputs(buckets: buckets), serverInputs: server,
                                            options: SessionOptions(seeds: .insecureTest(seed)))
            let client = try #require(r.client.output ?? nil)
            #expect(clear.map { client[$0].query.label ?? -1 } == clear.map { expected[$0].label }, "\(mode): labels differ from the plaintext pipeline")
            if mode == .reveal { #expect(clear.map { client[$0].model } == clear.map { expected[$0].member }, "routing decisions differ") }
            out[mode] = client
        }
        return out
    }

    /// Public embeddings: every member's embedding comes from the client, the router's features are the
    /// mean public embedding (no MPC cost). Reveal takes the plaintext pipeline's decisions and labels;
    /// oblivious with select-then-compute (a public group of twins) the same labels.
    @Test func publicEmbeddingsAndMeanEmbeddingFeatures() throws {
        let pool = try Self.pool(twins: true, publicEmbedding: true)
        let outcomes = try Self.agreeWithThePipeline(pool, seed: 7)
        // (Oblivious mode's embedding section holds the group's selection of its rows.)
        for o in try #require(outcomes[.reveal]) {
            let e = try #require(o.query.sections["embedding"])
            #expect(e.bytesSent == 0 && e.bytesReceived == 0 && e.rounds == 0, "embedding section \(e)")
        }
        // A private feature member cannot give mean-embedding features.
        let (pipe, shapes, _) = pool
        var private2 = shapes
        private2[2].embedding = nil
        #expect(RoutedBertProgram(names: pipe.names, members: private2, router: pipe.router, mode: .reveal, buckets: [16]).problem != nil)
    }

    /// A feature member with a public first layer: the router's features are the client's [CLS] row after
    /// it (no bytes, no rounds before the router's MLP), the member's private layer runs under MPC when it is
    /// chosen, and reveal and oblivious agree with the plaintext pipeline (which runs the public layer
    /// exactly, as the client does).
    @Test func publicLayersGiveFreeFeatures() throws {
        let pool = try Self.pool(publicEmbedding: true, publicLayers: true)
        let (pipe, shapes, _) = pool
        #expect(shapes[2].publicLayers == 1 && shapes[2].layers == 1)
        _ = try Self.agreeWithThePipeline(pool, seed: 8)
        // The [CLS] after the secure layer too (2) is allowed; past the model (3) is not.
        var router = pipe.router
        router.featureLayers = 3
        #expect(RoutedBertProgram(names: pipe.names, members: shapes, router: router, mode: .reveal, buckets: [16]).problem != nil)
        router.featureLayers = 2
        #expect(RoutedBertProgram(names: pipe.names, members: shapes, router: router, mode: .reveal, buckets: [16]).problem == nil)
    }

    /// Logit features: the router reads member 2's logits, so member 2's answer is already computed when the
    /// router picks it. Reveal and oblivious agree with the plaintext pipeline; a query routed to member 2
    /// costs no secure layer after the router, and oblivious mode never folds member 2 into a group (its
    /// answer is the router's features). The depth must be the member's whole forward.
    @Test func logitFeaturesReuseTheFeatureMembersAnswer() throws {
        let pool = try Self.pool(twins: true, logits: true)
        let outcomes = try Self.agreeWithThePipeline(pool, seed: 9)
        let reveal = try #require(outcomes[.reveal])
        let after = { (o: RoutedOutcome) in o.query.cost.rounds - o.router.rounds }
        let toFeature = reveal.filter { $0.model == 2 }.map(after), toOthers = reveal.filter { $0.model != 2 }.map(after)
        let most = try #require(toFeature.max(), "decisions \(reveal.map(\.model))"), least = try #require(toOthers.min())
        #expect(most < least, "rounds after the router: to member 2 \(toFeature), to the others \(toOthers)")
        let (pipe, shapes, _) = pool
        var router = pipe.router
        router.featureMember = 0   // member 0 has a twin (member 3): with logit features it runs alone
        #expect(RoutedBertProgram(names: pipe.names, members: shapes, router: router, mode: .oblivious, buckets: [16]).obliviousUnits
                == [[0], [1], [2], [3]])
        #expect(RoutedBertProgram(names: pipe.names, members: shapes, router: pipe.router, mode: .oblivious, buckets: [16]).obliviousUnits
                == [[0, 3], [1], [2]])
        router = pipe.router
        router.featureLayers = 1
        #expect(RoutedBertProgram(names: pipe.names, members: shapes, router: router, mode: .reveal, buckets: [16]).problem?
                    .contains("whole forward") == true)
    }

    /// The routed pipeline emulated on the runtime's grid (`decideFixedPoint`, the reference of `secure-eval`'s
    /// `agreement_routing_fixed`) takes the secure reveal run's decision and label on every query, at 16 and
    /// at 12 fractional bits and with each kind of features; its utilities stay within 0.02 of the float
    /// pipeline's (the fixed point's error, not another router).
    @Test(arguments: [16, 12]) func fixedPointEmulationReproducesTheSecureRouter(fracBits: Int) throws {
        let (q, buckets) = Self.queries(count: 12)
        for (k, kind) in [(false, false, false), (true, false, false), (true, true, false), (false, false, true)].enumerated() {
            let (pipe, shapes, server) = try Self.pool(twins: kind.2, publicEmbedding: kind.0, publicLayers: kind.1, fracBits: fracBits, logits: kind.2)
            let float = try pipe.decide(q, buckets: buckets)
            let fixed = try pipe.decideFixedPoint(q, buckets: buckets, shapes: shapes)
            let gap = zip(float, fixed).map { a, b in zip(a.utilities, b.utilities).map { abs($0 - $1) }.max()! }.max()!
            #expect(gap < 0.02, "pool \(k): utilities \(gap) from the float pipeline's")
            #expect(Set(fixed.map(\.member)).count >= 2, "pool \(k) routes to one member: \(fixed.map(\.member))")
            let program = RoutedBertProgram(names: pipe.names, members: shapes, router: pipe.router, mode: .reveal, buckets: buckets)
            let r = try Session.runInMemory(program, clientInputs: try q.ringInputs(buckets: buckets), serverInputs: server,
                                            options: SessionOptions(seeds: .insecureTest(20 + UInt64(k))))
            let client = try #require(r.client.output ?? nil)
            // Every margin here is clear of the truncations' random ±1 ulp (a margin of a few ulps goes either way).
            #expect(fixed.allSatisfy { $0.margin * Double(1 << fracBits) > 32 }, "pool \(k): emulated margins \(fixed.map(\.margin))")
            #expect(client.map(\.model) == fixed.map(\.member), "pool \(k), f = \(fracBits): decisions, emulated margins \(fixed.map(\.margin))")
            #expect(client.map { $0.query.label ?? -1 } == fixed.map(\.label), "pool \(k), f = \(fracBits): labels")
        }
        // One session runs one fixed point: shapes of mixed fractional bits are refused.
        let (pipe, shapes, _) = try Self.pool()
        var mixed = shapes
        mixed[1].fracBits = 12
        #expect(throws: RouterError.self) { try pipe.decideFixedPoint(q, buckets: buckets, shapes: mixed) }
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
