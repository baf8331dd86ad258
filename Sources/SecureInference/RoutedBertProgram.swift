import Foundation
import MPC

/// How a routed query hides which pool member answers it (DESIGN §5).
public enum RoutingMode: String, Codable, Sendable, CaseIterable {
    /// The router's choice is opened to both parties and only that member runs: leaks which member.
    case reveal
    /// Every member runs and a secret one-hot selects the answer: leaks nothing, saves nothing.
    case oblivious
}

/// Where the router's features come from (`features` in the router's config).
public enum RouterFeatureSource: String, Codable, Sendable, CaseIterable {
    /// The [CLS] row after the feature member's first `feature_layers` layers (0: its mean public embedding).
    case cls
    /// The feature member's logits: its whole forward pass, whose answer is then already paid for when the
    /// router picks it (a cascade's signal, the cheap member's confidence, which keeps its meaning across
    /// separately trained copies of that member, unlike its hidden states).
    case logits
}

/// The public part of a router run under MPC: where its features come from, its size, and the rule.
///
/// Features (`features` `.cls`): the [CLS] row after the first `featureLayers` layers of member `featureMember` (in reveal
/// mode that work is reused when that member is chosen); with `featureLayers` 0 (a member with a public
/// embedding), the mean of that member's embedding rows over the real tokens, which the client computes
/// in plaintext and shares (0 bytes, 0 rounds). `featureLayers` counts the checkpoint's layers: for a
/// member with public layers it is 0 or at least their number, and the client computes those (0 bytes,
/// 0 rounds) before the secure ones. With `features` `.logits`, the feature member's logits (its whole
/// forward; `featureLayers` is then its depth). Predictor: `fc1` (F → hidden), ReLU, and one
/// output per member, `z_m = (z_right − z_wrong)/2` folded into the server's second layer, so that the
/// utility `σ(2·z_m) = (1 + tanh(z_m))/2`. Decision: argmax over members of
/// `tanh(z_m) − 2·lambda·cost_m(bucket)` (the utility-minus-lambda-cost rule, doubled and shifted by a
/// constant, so the same argmax), with the costs public for the query's public bucket.
public struct SecureRouterShape: Codable, Sendable, Equatable {
    public var featureMember: Int
    public var featureLayers: Int
    public var hidden: Int
    public var lambda: Double
    /// Predicted seconds of each member (in pool order) at each bucket: `costs["32"] = [s_0, s_1, ...]`.
    public var costs: [String: [Double]]
    public var features: RouterFeatureSource

    public init(featureMember: Int, featureLayers: Int, hidden: Int, lambda: Double, costs: [String: [Double]],
                features: RouterFeatureSource = .cls) {
        self.featureMember = featureMember
        self.featureLayers = featureLayers
        self.hidden = hidden
        self.lambda = lambda
        self.costs = costs
        self.features = features
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        featureMember = try c.decode(Int.self, forKey: .featureMember)
        featureLayers = try c.decode(Int.self, forKey: .featureLayers)
        hidden = try c.decode(Int.self, forKey: .hidden)
        lambda = try c.decode(Double.self, forKey: .lambda)
        costs = try c.decode([String: [Double]].self, forKey: .costs)
        features = try c.decodeIfPresent(RouterFeatureSource.self, forKey: .features) ?? .cls
    }

    enum CodingKeys: String, CodingKey {
        case hidden, lambda, costs, features
        case featureMember = "feature_member", featureLayers = "feature_layers"
    }

    /// The number of features the router's first layer reads from a feature member of shape `m`.
    public func featureCount(_ m: SecureBertShape) -> Int { features == .logits ? m.classes : m.hidden }

    /// The public per-member offsets `−2·lambda·cost_m` at bucket `s`.
    func offsets(bucket s: Int, members: Int) throws -> [Double] {
        guard let c = costs["\(s)"], c.count == members else {
            throw SecureInferenceError("the router has no cost row for bucket \(s) with \(members) members")
        }
        return c.map { -2 * lambda * $0 }
    }
}

/// The router's weights as the server holds them (`[in, out]` layout): `fc1W [F, hidden]`, `fc1B`,
/// and the folded second layer `diffW [hidden, M]`, `diffB [M]` (half the right-minus-wrong logits).
public struct SecureRouterWeights: Sendable, Equatable {
    public var features: Int, hidden: Int, members: Int
    public var fc1W: [Double], fc1B: [Double], diffW: [Double], diffB: [Double]

    /// From the stored router (`router.fc1.weight [hidden, F]`, `router.fc1.bias`, `router.fc2.weight
    /// [2M, hidden]` with rows (wrong, right) per member, `router.fc2.bias`).
    /// - Throws: `SecureInferenceError` if a tensor is missing or has another shape.
    public init(stored w: [String: (shape: [Int], data: [Float])], members m: Int) throws {
        func get(_ n: String) throws -> (shape: [Int], data: [Float]) {
            guard let t = w[n] else { throw SecureInferenceError("the router has no tensor \(n)") }
            return t
        }
        let (w1, b1, w2, b2) = (try get("router.fc1.weight"), try get("router.fc1.bias"), try get("router.fc2.weight"), try get("router.fc2.bias"))
        guard w1.shape.count == 2, b1.shape == [w1.shape[0]], w2.shape == [2 * m, w1.shape[0]], b2.shape == [2 * m] else {
            throw SecureInferenceError("router tensors do not fit \(m) members: fc1 \(w1.shape), fc2 \(w2.shape)")
        }
        let (hd, f) = (w1.shape[0], w1.shape[1])
        features = f; hidden = hd; members = m
        fc1W = (0..<(f * hd)).map { i in Double(w1.data[(i % hd) * f + i / hd]) }
        fc1B = b1.data.map(Double.init)
        diffW = (0..<(hd * m)).map { i in
            let (j, k) = (i / m, i % m)
            return 0.5 * Double(w2.data[(2 * k + 1) * hd + j] - w2.data[2 * k * hd + j])
        }
        diffB = (0..<m).map { 0.5 * Double(b2.data[2 * $0 + 1] - b2.data[2 * $0]) }
    }

    /// The server's ring inputs (`router.fc1.w/.b`, `router.fc2.w/.b`).
    public func ringInputs(fixedPoint fp: FixedPoint) -> [String: RingTensor] {
        ["router.fc1.w": fp.encode(input: "router.fc1.w", fc1W, shape: [features, hidden]),
         "router.fc1.b": fp.encode(fc1B, shape: [hidden]),
         "router.fc2.w": fp.encode(input: "router.fc2.w", diffW, shape: [hidden, members]),
         "router.fc2.b": fp.encode(diffB, shape: [members])]
    }
}

/// What one routed query returned to a party.
public struct RoutedOutcome: Codable, Sendable, Equatable {
    /// The query and its answer, as `BertProgram` reports it (`cost` over the whole routed query).
    public var query: QueryOutcome
    /// Reveal mode: the member that ran (both parties know it). Oblivious: nil.
    public var model: Int?
    /// This party's cost of the router: features (embedding and the first layers of the feature
    /// member), MLP, tanh, argmax and the opening of the choice.
    public var router: CostSample
}

/// Encrypted routing and inference over a pool of BERT classifiers in one session (DESIGN §5).
///
/// Setup: every member's weights and the router's are masked once (server inputs `m{j}.` + the
/// `BertProgram` names, and `router.fc{1,2}.{w,b}`). Per query (client inputs as `BertProgram`): the
/// router runs the feature member's embedding and first layers, the MLP, the secure tanh and the
/// argmax; then
/// - `reveal`: the one-hot is opened to both parties and only that member runs (continuing from the
///   router's state when it is the feature member). The dealer, which must not learn the choice, deals
///   every member as one alternative of a branch (`SecureBackend.branches`): offline bytes are the
///   pool's, online cost is the chosen member's.
/// - `oblivious`: every member runs; each member's argmax one-hot is multiplied by the router's secret
///   one-hot entry and summed, so only the chosen member's label is opened, to the client. Members
///   of one shape (same layers, widths, heads, vocabulary and variant) run as one model whose weights
///   the secret one-hot selects (`selectThenCompute`, `SecureBertGroup`): their linear maps cost one
///   member's online bytes plus a selection, their nonlinear layers run once.
/// Members must share the vocabulary, the maximum position and the number of classes.
public struct RoutedBertProgram: SecureProgram, Equatable {
    public static let name = "routed-bert"
    /// Pool members' names (bundle groups `/models/<name>`) and shapes, in the router's order.
    public var names: [String]
    public var members: [SecureBertShape]
    public var router: SecureRouterShape
    public var mode: RoutingMode
    public var buckets: [Int]
    /// Oblivious mode: run members of one shape as one selected model (default); false runs each
    /// member separately (the comparison).
    public var selectThenCompute = true

    public init(names: [String], members: [SecureBertShape], router: SecureRouterShape, mode: RoutingMode, buckets: [Int]) {
        self.names = names
        self.members = members
        self.router = router
        self.mode = mode
        self.buckets = buckets
    }

    public var fixedPoint: FixedPoint { FixedPoint(fracBits: members.first?.fracBits ?? 16) }

    /// Why this program cannot run, or nil.
    public var problem: String? {
        guard let first = members.first, members.count >= 2 else { return "routing needs at least two members" }
        guard names.count == members.count else { return "\(names.count) names for \(members.count) members" }
        for (j, m) in members.enumerated() {
            if let p = BertProgram(model: m, buckets: buckets).problem { return "member \(j): \(p)" }
            if m.vocab != first.vocab || m.classes != first.classes || m.maxPosition != first.maxPosition || m.fracBits != first.fracBits {
                return "member \(j) differs from member 0 in vocabulary, classes, positions or fractional bits"
            }
        }
        guard members.indices.contains(router.featureMember) else { return "feature member \(router.featureMember) is not a member" }
        let feature = members[router.featureMember], publicLayers = feature.publicLayers ?? 0
        if router.features == .logits, router.featureLayers != publicLayers + feature.layers {
            return "logit features are the feature member's whole forward: feature_layers must be its depth, \(publicLayers + feature.layers)"
        }
        guard router.featureLayers == 0 || (publicLayers...(publicLayers + feature.layers)).contains(router.featureLayers) else {
            return "feature_layers \(router.featureLayers) outside 0 and \(publicLayers)...\(publicLayers + feature.layers)"
                + (publicLayers > 0 ? " (the feature member's first \(publicLayers) layers are public: the client computes them together)" : "")
        }
        guard router.featureLayers > 0 || members[router.featureMember].hasPublicEmbedding else {
            return "feature_layers 0 needs a feature member with a public embedding"
        }
        for s in Set(buckets) where router.costs["\(s)"]?.count != members.count { return "no router costs for bucket \(s)" }
        return nil
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        names = try c.decode([String].self, forKey: .names)
        members = try c.decode([SecureBertShape].self, forKey: .members)
        router = try c.decode(SecureRouterShape.self, forKey: .router)
        mode = try c.decode(RoutingMode.self, forKey: .mode)
        buckets = try c.decode([Int].self, forKey: .buckets)
        selectThenCompute = try c.decodeIfPresent(Bool.self, forKey: .selectThenCompute) ?? true
        if let p = problem { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: p)) }
    }
    enum CodingKeys: String, CodingKey {
        case names, members, router, mode, buckets
        case selectThenCompute = "select_then_compute"
    }

    /// The units oblivious mode runs: groups of member indices of one shape (first-appearance order),
    /// each alone when `selectThenCompute` is off.
    /// With logit features the feature member is always alone: its answer is the router's features.
    public var obliviousUnits: [[Int]] {
        guard selectThenCompute else { return members.indices.map { [$0] } }
        var units = [[Int]]()
        let alone = { (j: Int) in self.router.features == .logits && j == self.router.featureMember }
        for j in members.indices {
            if !alone(j), let u = units.firstIndex(where: { !alone($0[0]) && members[$0[0]] == members[j] }) {
                units[u].append(j)
            } else {
                units.append([j])
            }
        }
        return units
    }

    /// Profile section of the router's MLP, tanh and argmax (its features are the feature member's
    /// embedding and layers, profiled in their own sections).
    public static let routerSection = "router"

    public func run(on b: some SecureBackend) throws -> [RoutedOutcome] {
        let widest = buckets.max() ?? 1
        let f = router.featureMember
        b.enterSection(EncoderProgram.Section.setup)
        let berts = try members.enumerated().map { j, m in try SecureBert(m, prefix: "m\(j).", widest: widest, on: b) }
        let fc1 = try b.weight("router.fc1.w", k: router.featureCount(members[f]), n: router.hidden)
        let fc2 = try b.weight("router.fc2.w", k: router.hidden, n: members.count)
        let units = obliviousUnits
        b.beginOnline()
        _ = try b.boundary()
        var outcomes = [RoutedOutcome]()
        var before = b.profile()
        for (i, s) in buckets.enumerated() {
            // Router: features, MLP, scores, secret one-hot choice.
            let start = Self.total(b.profile())
            // The feature member's state after its feature layers (reused if it is chosen), or none for the
            // mean public embedding.
            let features = router.featureLayers == 0
                ? nil : try berts[f].encode(berts[f].embed([i], seq: s, on: b), upTo: router.featureLayers - (members[f].publicLayers ?? 0), on: b)
            // Logit features: the feature member's answer, computed once and reused when it is chosen.
            let featureLogits = try router.features == .logits ? features.map { try berts[f].logits($0, on: b) } : nil
            let oneHot = try b.section(Self.routerSection) { () throws -> SecureTensor in
                let x = try featureLogits ?? features.map { try berts[f].firstTokens($0, on: b) }
                    ?? berts[f].meanEmbedding(query: i, seq: s, on: b)                                                // [1, F]
                let hidden = try b.relu(b.addOwned(b.matmulWeight(x, fc1), "router.fc1.b", owner: .server))
                let z = try b.addOwned(b.matmulWeight(hidden, fc2), "router.fc2.b", owner: .server)             // [1, M]
                let offsets = try router.offsets(bucket: s, members: members.count)
                let scores = b.addPublic(try b.piecewise(z, Approximations.tanhWide), b.fixedPoint.encode(offsets, shape: [1, members.count]))
                return try b.argmax(scores).oneHot
            }
            var chosen: Int?
            if mode == .reveal {
                chosen = try b.section(Self.routerSection) { try b.revealToBoth(oneHot) }.map { t in t.data.firstIndex(of: 1) ?? -1 }
            }
            let routerCost = Self.total(b.profile()) - start
            /// Member j's state after its embedding: the router's state when j is the feature member.
            func embedded(_ j: Int) throws -> SecureBert.State {
                try j == f ? features ?? berts[j].embed([i], seq: s, on: b) : berts[j].embed([i], seq: s, on: b)
            }
            /// Member j's logits: the router's features when they are j's logits.
            func logits(_ j: Int) throws -> SecureTensor {
                if j == f, let featureLogits { return featureLogits }
                return try berts[j].logits(berts[j].encode(embedded(j), upTo: members[j].layers, on: b), on: b)
            }

            // The answer.
            let label: [Int]?
            switch mode {
            case .reveal:
                label = try b.branches(members.count, chosen: chosen) { j -> [Int]? in
                    let answer = try logits(j)
                    return try b.section(EncoderProgram.Section.head) { try b.revealIndex(b.argmax(answer).oneHot, to: .client) }
                } ?? nil
            case .oblivious:
                // Per unit (one member, or a group of one shape): its argmax one-hot and its coefficient
                // (the router's entry, or the sum of the group's entries).
                var hots = [SecureTensor](), coefficients = [SecureTensor]()
                for unit in units {
                    let entries = b.rearrange(oneHot, to: [unit.count], source: unit)
                    let answer: SecureTensor
                    if unit.count == 1 {
                        answer = try logits(unit[0])
                        coefficients.append(entries)
                    } else {
                        answer = try SecureBertGroup(unit.map { berts[$0] }).logits(query: i, seq: s, coefficients: entries, on: b)
                        coefficients.append(unit.indices.dropFirst().reduce(b.rearrange(entries, to: [1], source: [0])) { acc, q in
                            b.add(acc, b.rearrange(entries, to: [1], source: [q]))
                        })
                    }
                    hots.append(try b.section(EncoderProgram.Section.head) { try b.argmax(answer).oneHot })   // [1, C]
                }
                label = try b.section(EncoderProgram.Section.head) { () throws -> [Int]? in
                    let c = members[0].classes
                    let selected = try b.select(b.stack(hots), by: b.stack(coefficients))
                    precondition(selected.shape.reduce(1, *) == c)
                    return try b.revealIndex(selected, to: .client)
                }
            }
            let sections = CostSample.sections(from: before, to: b.profile())
            let cost = try b.boundary()
            before = b.profile()
            let outcome = RoutedOutcome(query: QueryOutcome(index: i, label: label?.first, logits: nil, cost: cost, sections: sections),
                                        model: chosen, router: routerCost)
            if b.partyID != nil, let line = try? String(decoding: JSONEncoder.sorted.encode(outcome), as: UTF8.self) { b.emit(line) }
            outcomes.append(outcome)
        }
        return outcomes
    }

    /// Sum of a profile's sections (the preload section excluded: offline waiting is not online cost).
    static func total(_ profile: [String: CostSample]) -> CostSample {
        profile.filter { $0.key != PartyBackend.preloadSection }.values.reduce(CostSample(), +)
    }

    public func syntheticInputs(for party: PartyID, seed: UInt64) -> [String: RingTensor] {
        switch party {
        case .client:
            return BertProgram(model: members[0], buckets: buckets).syntheticInputs(for: .client, seed: seed)
        case .server:
            var g = SyntheticData(seed: seed)
            var out = [String: RingTensor]()
            for (j, m) in members.enumerated() {
                for (k, v) in SecureBertWeights.random(m, generator: &g).ringInputs(m, rows: buckets.max() ?? 1) { out["m\(j).\(k)"] = v }
            }
            let (fdim, hd, mm) = (router.featureCount(members[router.featureMember]), router.hidden, members.count)
            let w = SecureRouterWeights(fc1W: g.doubles(fdim * hd, range: (3.0 / Double(fdim)).squareRoot()), fc1B: g.doubles(hd, range: 0.1),
                                        diffW: g.doubles(hd * mm, range: 2 * (3.0 / Double(hd)).squareRoot()), diffB: g.doubles(mm, range: 0.5))
            return out.merging(w.ringInputs(fixedPoint: fixedPoint)) { a, _ in a }
        }
    }

    /// Server: `file` is a bundle with `/models/<name>` per member, in `names` order, and `/router`
    /// (see `RoutedBundle`). Client: a `QueryFile`.
    public func inputs(for party: PartyID, file: String) throws -> [String: RingTensor] {
        switch party {
        case .server: return try RoutedBundle.read(file, expected: self).ringInputs(rows: buckets.max() ?? 1, fixedPoint: fixedPoint)
        case .client: return try QueryFile.read(file).ringInputs(buckets: buckets)
        }
    }
}

extension SecureRouterWeights {
    /// Synthetic or already folded weights.
    public init(fc1W: [Double], fc1B: [Double], diffW: [Double], diffB: [Double]) {
        self.fc1W = fc1W; self.fc1B = fc1B; self.diffW = diffW; self.diffB = diffB
        hidden = fc1B.count; members = diffB.count; features = fc1W.count / max(fc1B.count, 1)
    }
}
