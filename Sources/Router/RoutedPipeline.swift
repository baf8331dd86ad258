import Checkpoint
import CoDesign
import Foundation
import MPC
import SecureInference
import Tensor
import Transformer

/// Plaintext inference of models on padded queries (`QueryFile` rows at their buckets), batched by bucket.
public enum PaddedInference {
    /// The logits of `model` on every query.
    public static func logits(_ model: BertForSequenceClassification, _ q: QueryFile, buckets: [Int]) -> [[Float]] {
        var out = [[Float]](repeating: [], count: buckets.count)
        forEachChunk(q, buckets: buckets) { chunk, batch in
            let logits = Tensor.withNoGrad { model.forward(batch, training: false, rng: SeededGenerator(seed: 0)) }
            let c = model.config.numLabels
            for (r, i) in chunk.enumerated() { out[i] = Array(logits.data[(r * c)..<((r + 1) * c)]) }
        }
        return out
    }

    /// The router's features of every query (`RouterFeatures.batch`).
    public static func features(_ model: BertForSequenceClassification, layers: Int, features: RouterFeatureSource = .cls,
                                _ q: QueryFile, buckets: [Int]) -> [[Float]] {
        var out = [[Float]](repeating: [], count: buckets.count)
        let h = RouterFeatures.width(model, features: features)
        forEachChunk(q, buckets: buckets) { chunk, batch in
            let f = Tensor.withNoGrad { RouterFeatures.batch(model: model, batch, layers: layers, features: features) }.data
            for (r, i) in chunk.enumerated() { out[i] = Array(f[(r * h)..<((r + 1) * h)]) }
        }
        return out
    }

    /// Calls `body` with chunks of at most 32 query indices of one bucket and their batch.
    static func forEachChunk(_ q: QueryFile, buckets: [Int], _ body: ([Int], EncodedBatch) -> Void) {
        for s in Set(buckets).sorted() {
            let idx = buckets.indices.filter { buckets[$0] == s }
            for lo in stride(from: 0, to: idx.count, by: 32) {
                let chunk = Array(idx[lo..<min(lo + 32, idx.count)])
                let batch = EncodedBatch(batch: chunk.count, seqLen: s, inputIds: chunk.flatMap { q.ids[$0].map(Int32.init) },
                                         attentionMask: chunk.flatMap { i in (0..<s).map { $0 < q.lengths[i] ? Float(1) : 0 } })
                body(chunk, batch)
            }
        }
    }
}

/// A routed pool in plaintext, deciding exactly as the secure router does (`RoutedBertProgram`): the
/// same features, the same folded MLP, the runtime's tanh approximation, the same public costs and
/// tie rule (lowest index); only float arithmetic instead of the ring's. This is `predict --bundle`'s
/// routing and `secure-eval`'s reference for the routing decision.
public struct RoutedPipeline {
    public var names: [String]
    public var models: [BertForSequenceClassification]
    public var router: SecureRouterShape
    public var weights: SecureRouterWeights
    /// The router file's config (report, network, cost table), when read from a bundle.
    public var config: RouterConfig?

    public init(names: [String], models: [BertForSequenceClassification], router: SecureRouterShape,
                weights: SecureRouterWeights, config: RouterConfig? = nil) {
        self.names = names
        self.models = models
        self.router = router
        self.weights = weights
        self.config = config
    }

    /// One routed query: the chosen member, its label, and every member's utility.
    public struct Decision: Sendable, Equatable {
        public var member: Int
        public var label: Int
        /// The chosen member's logits.
        public var logits: [Float]
        public var utilities: [Double]
        /// Gap between the best and the second-best score: below ≈ 0.01 the runtime's fixed-point noise
        /// may pick the other member (a near-tie, not an error).
        public var margin: Double
    }

    /// Utilities `(1 + tanh(z_m))/2` and scores `tanh(z_m) − 2·lambda·cost_m(bucket)` of one feature row, in float.
    /// - Throws: `RouterError` if the router has no cost row for `bucket`.
    public func scores(features x: [Float], bucket: Int) throws -> (utilities: [Double], scores: [Double]) {
        try Self.scores(RouterScoring(shape: router, weights: weights), x.map(Double.init), bucket: bucket)
    }

    /// `r`'s utilities and scores, its missing cost row reported as a `RouterError`.
    static func scores(_ r: RouterScoring, _ x: [Double], bucket: Int) throws -> (utilities: [Double], scores: [Double]) {
        do { return try r.scores(features: x, bucket: bucket) } catch let e as SecureInferenceError { throw RouterError(e.description) }
    }

    /// Routes and answers every query (padded rows at their buckets), in float.
    public func decide(_ q: QueryFile, buckets: [Int]) throws -> [Decision] {
        let f = router.featureMember
        let features = PaddedInference.features(models[f], layers: router.featureLayers, features: router.features, q, buckets: buckets)
        let r = RouterScoring(shape: router, weights: weights)
        let choices = try features.enumerated().map { i, x in
            let (u, s) = try Self.scores(r, x.map(Double.init), bucket: buckets[i])
            let (best, margin) = RouterScoring.choice(s)
            return (member: best, utilities: u, margin: margin)
        }
        var logits = [[Float]](repeating: [], count: buckets.count)
        for m in models.indices {
            let idx = choices.indices.filter { choices[$0].member == m }
            guard !idx.isEmpty else { continue }
            let sub = QueryFile(ids: idx.map { q.ids[$0] }, lengths: idx.map { q.lengths[$0] })
            let out = PaddedInference.logits(models[m], sub, buckets: idx.map { buckets[$0] })
            for (k, i) in idx.enumerated() { logits[i] = out[k] }
        }
        return choices.indices.map {
            Decision(member: choices[$0].member, label: Evaluation.argmax(logits[$0]), logits: logits[$0], utilities: choices[$0].utilities,
                     margin: choices[$0].margin)
        }
    }

    /// Routes and answers every query as the secure runtime computes them with the members' `shapes`
    /// (their fractional bits and ring; one fractional-bit count for the whole pool, as one session runs):
    /// the feature member's layers and the chosen member by `FixedPointEmulation`, the router by
    /// `RouterScoring` (`predict --bundle --fixed-point`; `secure-eval`'s `agreement_routing_fixed`).
    /// Decisions whose margin here is a few ulps of the grid go either way in the runtime (see
    /// `RouterScoring`); the float `decide` is the runtime's expectation and stays the reference.
    /// - Throws: `RouterError` if the shapes do not match the pool or differ in fractional bits.
    public func decideFixedPoint(_ q: QueryFile, buckets: [Int], shapes: [SecureBertShape]) throws -> [Decision] {
        guard shapes.count == models.count else { throw RouterError("\(shapes.count) shapes for \(models.count) members") }
        guard let bits = shapes.first?.fracBits, shapes.allSatisfy({ $0.fracBits == bits }) else {
            throw RouterError("the pool members use different fractional bits (\(shapes.map(\.fracBits))); one session runs one fixed point")
        }
        var emulations = [Int: FixedPointEmulation]()
        func emulation(_ m: Int) -> FixedPointEmulation {
            if let e = emulations[m] { return e }
            let e = FixedPointEmulation(weights: SecureBertWeights(model: models[m]), model: shapes[m])
            emulations[m] = e
            return e
        }
        let r = RouterScoring(shape: router, weights: weights, fracBits: bits)
        return try q.ids.indices.map { i in
            let x = emulation(router.featureMember).routerFeatures(ids: q.ids[i], length: q.lengths[i], layers: router.featureLayers,
                                                                   features: router.features)
            let (u, s) = try Self.scores(r, x, bucket: buckets[i])
            let (m, margin) = RouterScoring.choice(s)
            let logits = emulation(m).logits(ids: q.ids[i], length: q.lengths[i]).map(Float.init)
            return Decision(member: m, label: Evaluation.argmax(logits), logits: logits, utilities: u, margin: margin)
        }
    }
}
