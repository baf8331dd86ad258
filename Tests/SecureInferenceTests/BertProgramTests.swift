import Checkpoint
import CostModel
import Foundation
import MPC
import Tensor
import Testing
import TextData
import Transformer
@testable import SecureInference

/// Issue 4: a whole BERT classifier (embedding, encoder, pooler, classifier, argmax) under MPC agrees
/// with the float model, for every variant, with private lengths.
@Suite(.timeLimit(.minutes(3))) struct BertProgramTests {
    /// A small random model (trained-scale weights) and queries of several lengths in two buckets.
    /// `pruned`: layer 0 keeps 1 of 2 heads and 24 of 64 neurons (the per-layer shapes of a pruned checkpoint).
    static func model(softmax: SoftmaxVariant, activation: ActivationVariant, pruned: Bool = false) -> BertForSequenceClassification {
        var config = BertConfig(layers: 2, hidden: 32, heads: 2, intermediate: 64, vocabSize: 60, maxPosition: 64,
                                numLabels: 3, hiddenDropout: 0, attentionDropout: 0, softmax: softmax, activation: activation)
        if pruned {
            config.layerHeads = [1, 2]
            config.layerIntermediate = [24, 64]
        }
        let m = BertForSequenceClassification(config: config, rng: SeededGenerator(seed: 7))
        // Spread the weights so that logits differ clearly (N(0, 0.02) init is nearly constant).
        let g = SeededGenerator(seed: 8)
        for (name, t) in m.namedParameters() where !name.contains("LayerNorm") {
            let std: Float = name.hasSuffix(".bias") ? 0.1 : (name.contains("embeddings") ? 1 : 1 / Float(t.shape.last!).squareRoot())
            t.data = Tensor.randn(t.shape, std: std, rng: g).data
        }
        return m
    }

    static let lengths = [3, 16, 9, 1, 12, 30]

    static func queries(vocab: Int) -> (QueryFile, [Int]) {
        var g = SyntheticData(seed: 3)
        let buckets = lengths.map { $0 <= 16 ? 16 : 32 }
        let ids = zip(lengths, buckets).map { len, s in (0..<s).map { $0 < len ? 1 + g.int(below: vocab - 1) : 0 } }
        return (QueryFile(ids: ids, lengths: lengths), buckets)
    }

    func floatLogits(_ m: BertForSequenceClassification, _ q: QueryFile, _ buckets: [Int]) -> [[Float]] {
        zip(q.ids, zip(q.lengths, buckets)).map { ids, lb in
            let batch = EncodedBatch(batch: 1, seqLen: lb.1, inputIds: ids.map(Int32.init),
                                     attentionMask: (0..<lb.1).map { $0 < lb.0 ? 1 : 0 })
            return m.forward(batch, training: false, rng: SeededGenerator(seed: 0)).data
        }
    }

    @Test(arguments: [(SoftmaxVariant.exact, ActivationVariant.gelu, false), (.twoQuad, .quad, false), (.exact, .relu, false),
                      (.exact, .gelu, true), (.twoQuad, .quad, true)])
    func agreesWithTheFloatModel(variant: (SoftmaxVariant, ActivationVariant, Bool)) throws {
        let m = Self.model(softmax: variant.0, activation: variant.1, pruned: variant.2)
        let (q, buckets) = Self.queries(vocab: m.config.vocabSize)
        let shape = try SecureBertWeights.shape(of: .init(architecture: m.config, task: "t", labels: ["a", "b", "c"]))
        #expect(shape.layerHeads == (variant.2 ? [1, 2] : nil) && shape.layerIntermediate == (variant.2 ? [24, 64] : nil))
        let program = BertProgram(model: shape, buckets: buckets, revealLogits: true)
        let r = try Session.runInMemory(program, clientInputs: try q.ringInputs(buckets: buckets),
                                        serverInputs: SecureBertWeights(model: m).ringInputs(shape, rows: 32),
                                        options: SessionOptions(seeds: .insecureTest(5)))
        let logits = floatLogits(m, q, buckets)
        let outcomes = try #require(r.client.output ?? nil)
        #expect(outcomes.count == buckets.count)
        var margins = [Float](), maxError = 0.0
        for (o, l) in zip(outcomes, logits) {
            let sorted = l.sorted(by: >)
            margins.append(sorted[0] - sorted[1])
            let secure = try #require(o.logits)
            maxError = Swift.max(maxError, zip(secure, l).map { abs($0 - Double($1)) }.max()!)
            // Labels must agree wherever the float model is not on a knife edge.
            if sorted[0] - sorted[1] > 0.05 { #expect(o.label == l.firstIndex(of: sorted[0]), "query \(o.index): logits \(l)") }
            #expect(o.cost.rounds > 0 && o.cost.bytesSent > 0 && o.sections["embedding"] != nil)
        }
        // The plaintext emulation of the runtime's arithmetic is closer to the secure logits than float is.
        let emulation = FixedPointEmulation(weights: SecureBertWeights(model: m), model: shape)
        var emulationError = 0.0
        for (o, (ids, len)) in zip(outcomes, zip(q.ids, q.lengths)) {
            emulationError = Swift.max(emulationError, zip(emulation.logits(ids: ids, length: len), o.logits!).map { abs($0 - $1) }.max()!)
        }
        print("\(variant): max |secure − emulated| logit \(emulationError)")
        #expect(emulationError < 1e-3 && emulationError <= maxError, "emulation error \(emulationError) vs float error \(maxError)")
        print("\(variant): labels \(outcomes.map { $0.label ?? -1 }), float margins \(margins), max logit error \(maxError)")
        // Float32 model vs fixed point (f = 16) with the documented approximations (GeLU 1.3e-3, exp 6e-4,
        // tanh 7e-4, LayerNorm 5e-4): the logits stay within 2e-2.
        #expect(maxError < 2e-2, "max logit error \(maxError)")
        #expect(margins.filter { $0 > 0.05 }.count >= 4, "test data too close to the decision boundary")
        let spread = (0..<3).map { c in logits.map { $0[c] }.max()! - logits.map { $0[c] }.min()! }.max()!
        #expect(spread > 0.2, "the float logits hardly depend on the input (spread \(spread))")
        // The server's outcomes carry no labels; both parties see the same per-query rounds.
        let server = try #require(r.server.output ?? nil)
        #expect(server.allSatisfy { $0.label == nil })
        #expect(zip(server, outcomes).allSatisfy { $0.cost.rounds == $1.cost.rounds })
    }

    /// Stacked queries (batch 3, buckets 16 and 32 mixed) give the same answers as one at a time, in
    /// fewer rounds per query and the same bytes per query.
    @Test(arguments: [SoftmaxVariant.exact, .twoQuad]) func batchesMatchOneAtATime(softmax: SoftmaxVariant) throws {
        let m = Self.model(softmax: softmax, activation: .gelu)
        let (q, buckets) = Self.queries(vocab: m.config.vocabSize)
        let shape = try SecureBertWeights.shape(of: .init(architecture: m.config, task: "t", labels: ["a", "b", "c"]))
        let server = SecureBertWeights(model: m).ringInputs(shape, rows: 32)
        func run(_ batch: Int) throws -> [QueryOutcome] {
            let p = BertProgram(model: shape, buckets: buckets, revealLogits: true, batch: batch)
            let r = try Session.runInMemory(p, clientInputs: try q.ringInputs(buckets: buckets), serverInputs: server,
                                            options: SessionOptions(seeds: .insecureTest(9)))
            return try #require(r.client.output ?? nil)
        }
        let one = try run(1), three = try run(3)
        #expect(buckets == [16, 16, 16, 16, 16, 32])
        #expect(BertProgram(model: shape, buckets: buckets, batch: 3).groups == [[0, 1, 2], [3, 4], [5]])
        #expect(three.map(\.index) == Array(0..<buckets.count) && three.map(\.batch) == [3, 3, 3, 2, 2, 1])
        let err = zip(one, three).map { zip($0.logits!, $1.logits!).map { abs($0 - $1) }.max()! }.max()!
        #expect(err < 2e-3, "batched logits differ by \(err)")
        #expect(one.map(\.label) == three.map(\.label))
        #expect(three[0].cost.rounds == one[0].cost.rounds, "a batch takes the rounds of one query")
        let bytes = { (o: QueryOutcome) in o.cost.bytesSent + o.cost.bytesReceived }
        #expect(abs(bytes(three[0]) - bytes(one[0])) <= bytes(one[0]) / 50, "bytes per query \(bytes(three[0])) vs \(bytes(one[0]))")
    }

    /// Checks the outcomes of a model whose embedding the client computes: the embedding section costs no
    /// bytes and no rounds, and the logits are within 2e-2 of the float model's and 1e-3 of the emulation's.
    func checkClientEmbedding(_ outcomes: [QueryOutcome], float: [[Float]], emulation: FixedPointEmulation, queries q: QueryFile) throws {
        for (o, (l, (ids, len))) in zip(outcomes, zip(float, zip(q.ids, q.lengths))) {
            let e = try #require(o.sections["embedding"])
            #expect(e.bytesSent == 0 && e.bytesReceived == 0 && e.rounds == 0, "embedding section \(e)")
            let secure = try #require(o.logits)
            let floatError = zip(secure, l).map { abs($0 - Double($1)) }.max()!
            let emulated = zip(secure, emulation.logits(ids: ids, length: len)).map { abs($0 - $1) }.max()!
            #expect(floatError < 2e-2 && emulated < 1e-3, "query \(o.index): float error \(floatError), emulation \(emulated)")
        }
    }

    /// A model with a public embedding group: the client embeds its own text in plaintext (the server opens
    /// the public tables to it once, at setup), so the query's embedding section costs no bytes and no
    /// rounds, and the answers still agree with the float model and the emulation.
    @Test func publicEmbeddingIsComputedByTheClient() throws {
        let m = Self.model(softmax: .twoQuad, activation: .quad)
        let (q, buckets) = Self.queries(vocab: m.config.vocabSize)
        var config = CheckpointConfig(architecture: m.config, task: "t", labels: ["a", "b", "c"])
        config.embedding = CheckpointConfig.publicEmbedding
        let shape = try SecureBertWeights.shape(of: config)
        #expect(shape.hasPublicEmbedding)
        let weights = SecureBertWeights(model: m)
        func run(_ shape: SecureBertShape) throws -> [QueryOutcome] {
            let r = try Session.runInMemory(BertProgram(model: shape, buckets: buckets, revealLogits: true),
                                            clientInputs: try q.ringInputs(buckets: buckets), serverInputs: weights.ringInputs(shape, rows: 32),
                                            options: SessionOptions(seeds: .insecureTest(5)))
            return try #require(r.client.output ?? nil)
        }
        let open = try run(shape)
        var secret = shape
        secret.embedding = nil
        let looked = try run(secret)
        let float = floatLogits(m, q, buckets), emulation = FixedPointEmulation(weights: weights, model: shape)
        try checkClientEmbedding(open, float: float, emulation: emulation, queries: q)
        // Same model, same answers as with the private lookup, and fewer bytes and rounds.
        for (a, (b, l)) in zip(open, zip(looked, float)) {
            let sorted = l.sorted(by: >)
            if sorted[0] - sorted[1] > 0.05 { #expect(a.label == b.label, "query \(a.index)") }
        }
        let bytes = { (o: QueryOutcome) in o.cost.bytesSent + o.cost.bytesReceived }
        #expect(zip(open, looked).allSatisfy { bytes($0) < bytes($1) && $0.cost.rounds < $1.cost.rounds })
        // A private-embedding checkpoint does not load into a public-embedding session.
        #expect(shape != secret)
    }

    /// A model whose first layer is public (`public_layers: 1`, exact softmax and GeLU) on top of a public
    /// embedding, with a 2Quad/Quad layer after it: the client computes the embedding and the public layer in
    /// plaintext, the session runs one private layer, and the answers agree with the float model (which runs
    /// the public layer exactly) and with the emulation. The client's work is in the embedding section, at
    /// no bytes and no rounds, and the session costs what a one-layer model costs.
    @Test func publicLayersAreComputedByTheClient() throws {
        let m = Self.model(softmax: .twoQuad, activation: .quad)
        var arch = m.config
        arch.publicLayers = 1
        let publicPrefix = BertForSequenceClassification(config: arch, rng: SeededGenerator(seed: 1))
        try publicPrefix.load(weights: Dictionary(uniqueKeysWithValues: m.namedParameters().map { ($0.name, ($0.tensor.shape, $0.tensor.data)) }))
        #expect(publicPrefix.encoder.layers[0].softmax == .exact && publicPrefix.encoder.layers[1].softmax == .twoQuad)
        let (q, buckets) = Self.queries(vocab: arch.vocabSize)
        var config = CheckpointConfig(architecture: arch, task: "t", labels: ["a", "b", "c"])
        config.embedding = CheckpointConfig.publicEmbedding
        let shape = try SecureBertWeights.shape(of: config)
        #expect(shape.layers == 1 && shape.publicLayers == 1)
        let weights = SecureBertWeights(model: publicPrefix)
        #expect(weights.publicLayers.count == 1 && weights.encoder.layers.count == 1)
        let r = try Session.runInMemory(BertProgram(model: shape, buckets: buckets, revealLogits: true),
                                        clientInputs: try q.ringInputs(buckets: buckets), serverInputs: weights.ringInputs(shape, rows: 32),
                                        options: SessionOptions(seeds: .insecureTest(5)))
        let outcomes = try #require(r.client.output ?? nil)
        let float = floatLogits(publicPrefix, q, buckets), emulation = FixedPointEmulation(weights: weights, model: shape)
        // The float model with every layer 2Quad differs: the public layer really is exact.
        let allPrivate = floatLogits(m, q, buckets)
        #expect(zip(float, allPrivate).map { zip($0, $1).map { abs($0 - $1) }.max()! }.max()! > 0.05)
        try checkClientEmbedding(outcomes, float: float, emulation: emulation, queries: q)
        var margins = 0
        for (o, l) in zip(outcomes, float) {
            let sorted = l.sorted(by: >)
            if sorted[0] - sorted[1] > 0.05 {
                margins += 1
                #expect(o.label == l.firstIndex(of: sorted[0]), "query \(o.index)")
            }
            // Bytes and rounds are those the cost model predicts for the one private layer.
            let predicted = CostModel.total(shape.predictedCost(seq: buckets[o.index], revealLogits: true))
            #expect(o.cost.rounds == predicted.rounds && o.cost.bytesSent + o.cost.bytesReceived == predicted.bytes)
            #expect(predicted.clientMACs > 0)
        }
        #expect(margins >= 4, "test data too close to the decision boundary")
    }

    /// The same bucket costs the same whatever the private length (the server cannot tell lengths apart).
    @Test func costDoesNotDependOnThePrivateLength() throws {
        let m = Self.model(softmax: .exact, activation: .gelu)
        let shape = try SecureBertWeights.shape(of: .init(architecture: m.config, task: "t", labels: ["a", "b", "c"]))
        let q = QueryFile(ids: [[5] + [Int](repeating: 0, count: 15), (0..<16).map { 1 + $0 }], lengths: [1, 16])
        let program = BertProgram(model: shape, buckets: [16, 16])
        let r = try Session.runInMemory(program, clientInputs: try q.ringInputs(buckets: [16, 16]),
                                        serverInputs: SecureBertWeights(model: m).ringInputs(shape, rows: 16),
                                        options: SessionOptions(seeds: .insecureTest(6)))
        let o = try #require(r.client.output ?? nil)
        #expect(o[0].cost.rounds == o[1].cost.rounds && o[0].cost.bytesSent == o[1].cost.bytesSent
                && o[0].cost.bytesReceived == o[1].cost.bytesReceived && o[0].cost.offlineBytes == o[1].cost.offlineBytes)
    }

    /// A paced dealer (`SessionOptions.pacedDealer`, what `secure-eval` uses on one machine) deals each query
    /// only after both parties finished the previous one: the same answers and counters as a dealer running
    /// ahead, and every query's online time lies inside the dealer's run (it waited for each of them).
    @Test func pacedDealerWaitsForEachQuery() throws {
        let m = Self.model(softmax: .twoQuad, activation: .quad)
        let (q, buckets) = Self.queries(vocab: m.config.vocabSize)
        let shape = try SecureBertWeights.shape(of: .init(architecture: m.config, task: "t", labels: ["a", "b", "c"]))
        let server = SecureBertWeights(model: m).ringInputs(shape, rows: 32)
        func run(paced: Bool) throws -> (queries: [QueryOutcome], dealerSeconds: Double) {
            var options = SessionOptions(seeds: .insecureTest(4))
            options.preprocess = true
            options.pacedDealer = paced
            let r = try Session.runInMemory(BertProgram(model: shape, buckets: buckets, revealLogits: true),
                                            clientInputs: try q.ringInputs(buckets: buckets), serverInputs: server, options: options)
            return (try #require(r.client.output ?? nil), r.dealer.seconds)
        }
        let ahead = try run(paced: false), paced = try run(paced: true)
        #expect(paced.queries.map(\.label) == ahead.queries.map(\.label))
        #expect(paced.queries.map(\.logits) == ahead.queries.map(\.logits), "same seeds: bit-identical logits")
        for (a, b) in zip(ahead.queries, paced.queries) {
            #expect(a.cost.rounds == b.cost.rounds && a.cost.bytesSent == b.cost.bytesSent && a.cost.offlineBytes == b.cost.offlineBytes)
        }
        let online = paced.queries.map(\.cost.seconds).reduce(0, +)
        #expect(paced.dealerSeconds >= online, "the paced dealer finished in \(paced.dealerSeconds) s, before the queries' \(online) s online")
    }

    /// Queries are truncated to the length the model was trained at (its checkpoint's `max_length`, rounded up
    /// to a bucket), as `predict` truncates them, not to the widest bucket the position table allows.
    @Test func queriesAreTruncatedToTheTrainingLength() throws {
        let m = Self.model(softmax: .exact, activation: .gelu)
        var config = CheckpointConfig(architecture: m.config, task: "t", labels: ["a", "b", "c"])
        config.maxLength = 20
        var shape = try SecureBertWeights.shape(of: config)
        #expect(shape.maxLength == 20 && shape.maxPosition == 64)
        #expect(shape.inputLimit == 32, "the smallest bucket holding 20 tokens")
        let tokenizer = try WordPieceTokenizer(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"], doLowerCase: true)
        let long = Array(repeating: "a", count: 50).joined(separator: " ")
        let (q, buckets, truncated) = LengthBuckets.encode([long, "a a"], tokenizer: tokenizer, maxPosition: shape.inputLimit)
        #expect(buckets == [32, 16] && truncated == 1 && q.lengths == [32, 4])
        shape.maxLength = nil
        #expect(shape.inputLimit == 64, "no training length: the widest bucket within the position table")
        shape.maxLength = 1000
        #expect(shape.inputLimit == 64)
        var short = shape
        short.maxLength = 20
        #expect(LengthBuckets.inputLimit([short, short]) == 32)
        #expect(LengthBuckets.inputLimit([short, shape]) == 64, "a pool reads the longest member's length")
        short.maxPosition = 16
        #expect(LengthBuckets.inputLimit([short, shape]) == 16, "within every member's position table")
    }

    @Test func unsupportedVariantsAndRingsAreRefused() {
        var c = BertConfig(layers: 1, hidden: 8, heads: 2, intermediate: 8, vocabSize: 10, softmax: .reluNorm)
        #expect(throws: SecureInferenceError.self) { try SecureBertWeights.shape(of: .init(architecture: c, task: "t", labels: ["a", "b"])) }
        c.softmax = .exact
        // Z_2^32 linear layers need at most 12 fractional bits; other rings do not exist.
        #expect(throws: SecureInferenceError.self) {
            try SecureBertWeights.shape(of: .init(architecture: c, quantization: .init(ringBits: 32, fracBits: 14), task: "t", labels: ["a", "b"]))
        }
        #expect(throws: SecureInferenceError.self) {
            try SecureBertWeights.shape(of: .init(architecture: c, quantization: .init(ringBits: 48, fracBits: 12), task: "t", labels: ["a", "b"]))
        }
        let narrow = try? SecureBertWeights.shape(of: .init(architecture: c, quantization: .init(ringBits: 32, fracBits: 12), task: "t", labels: ["a", "b"]))
        #expect(narrow?.ringBits == 32 && narrow?.fracBits == 12 && narrow?.encoder(seq: 8).narrowLinear == true)
    }

    /// A `ring_bits: 32` model: its linear layers run on Z_2^32. The secure logits follow the plaintext
    /// emulation of that arithmetic and the float model; the linear layers open half the bytes of the
    /// same model on Z_2^64 (f = 12 both), and so does the Quad activation's square (one round more per
    /// layer); nothing else changes.
    @Test(arguments: [(SoftmaxVariant.exact, ActivationVariant.gelu), (.twoQuad, .quad)])
    func narrowLinearLayersHalveTheirBytes(variant: (SoftmaxVariant, ActivationVariant)) throws {
        let m = Self.model(softmax: variant.0, activation: variant.1)
        let (q, buckets) = Self.queries(vocab: m.config.vocabSize)
        func run(ring: Int) throws -> ([QueryOutcome], SecureBertShape) {
            let shape = try SecureBertWeights.shape(of: .init(architecture: m.config, quantization: .init(ringBits: ring, fracBits: 12),
                                                              task: "t", labels: ["a", "b", "c"]))
            let program = BertProgram(model: shape, buckets: buckets, revealLogits: true)
            let r = try Session.runInMemory(program, clientInputs: try q.ringInputs(buckets: buckets),
                                            serverInputs: SecureBertWeights(model: m).ringInputs(shape, rows: 32),
                                            options: SessionOptions(seeds: .insecureTest(9)))
            return (try #require(r.client.output ?? nil), shape)
        }
        let (narrow, shape) = try run(ring: 32), (wide, _) = try run(ring: 64)
        let logits = floatLogits(m, q, buckets), emulation = FixedPointEmulation(weights: SecureBertWeights(model: m), model: shape)
        var floatError = 0.0, emulationError = 0.0
        for (o, (l, (ids, len))) in zip(narrow, zip(logits, zip(q.ids, q.lengths))) {
            let secure = try #require(o.logits)
            floatError = max(floatError, zip(secure, l).map { abs($0 - Double($1)) }.max()!)
            emulationError = max(emulationError, zip(secure, emulation.logits(ids: ids, length: len)).map { abs($0 - $1) }.max()!)
            let sorted = l.sorted(by: >)
            if sorted[0] - sorted[1] > 0.1 { #expect(o.label == l.firstIndex(of: sorted[0]), "query \(o.index): logits \(l)") }
        }
        print("\(variant) on Z_2^32: max |secure − float| \(floatError), |secure − emulated| \(emulationError)")
        #expect(floatError < 0.1, "max logit error against float \(floatError)")
        // The random rounding of the products' shifted operands (±2^-8 per element) dominates both.
        #expect(emulationError < 0.02, "emulation error \(emulationError)")
        for (n, (w, bucket)) in zip(narrow, zip(wide, buckets)) {
            // On Z_2^64, 2Quad attention at a bucket longer than the head width runs fused (P·V inside the
            // softmax section); on Z_2^32 it never does (EncoderProgram.fusesQuadAttention).
            let fused = variant.0 == .twoQuad && EncoderProgram.fusesQuadAttention(seq: bucket, headDim: 16, narrow: false)
            for section in (fused ? ["ffn"] : ["attention linear", "ffn"]) + (variant.1 == .quad ? ["activation"] : []) {
                let (nb, wb) = (n.sections[section]!.bytesSent + n.sections[section]!.bytesReceived,
                                w.sections[section]!.bytesSent + w.sections[section]!.bytesReceived)
                #expect(Double(nb) < 0.56 * Double(wb), "\(section): \(nb) bytes on Z_2^32 against \(wb) on Z_2^64")
            }
            // The narrow Quad square takes one more round per layer (its exact truncation).
            if !fused { #expect(n.cost.rounds == w.cost.rounds + (variant.1 == .quad ? 2 : 0)) }
            for section in (fused ? ["norm"] : ["softmax", "norm"]) + (variant.1 == .quad ? [] : ["activation"]) {
                #expect(n.sections[section]!.bytesSent == w.sections[section]!.bytesSent, "\(section) is not narrowed")
            }
        }
    }
}
