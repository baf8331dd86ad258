import Foundation
import Checkpoint
import CoDesign
import CostModel
import MPC
import SecureInference
import Tensor
import TextData
import Transformer

/// `fit-router` settings (YAML keys in parentheses; see docs/router.md).
public struct RouterFitOptions: Sendable {
    /// Hidden width of the MLP (`hidden`).
    public var hidden = 64
    /// Full-batch AdamW epochs (`epochs`), learning rate (`lr`), weight decay (`weight_decay`).
    public var epochs = 400, learningRate: Float = 3e-3, weightDecay: Float = 0.01
    /// Gaussian noise on the raw features during training (`feature_noise`; see `UtilityNetwork.train`).
    public var featureNoise: Float = 0.02
    /// Cross-fitting folds on dev (`folds`).
    public var folds = 5
    /// Routed dev accuracy may be at most this far below the best member's (`max_drop`, 0.005 = 0.5 points).
    public var maxDrop = 0.005
    /// Use this lambda instead of choosing one on dev (`lambda`, per second; nil: chosen by `maxDrop`). The
    /// dev and test sweeps are written either way, so a user can pick a point of the sweep and refit.
    public var lambda: Double?
    /// Network whose predicted seconds price the members (`net`: none, lan, wan).
    public var network = "lan"
    /// Features: the [CLS] state after this many layers (`feature_layers`) of this member (`feature_member`,
    /// default the cheapest), so that the work is reused when that member is chosen.
    public var featureLayers = 1
    public var featureMember: String?
    /// `features`: `cls` (the [CLS] state above) or `logits` (the feature member's whole forward and its
    /// logits; `feature_layers` is ignored, and that member's answer is free once the router has run).
    public var features = RouterFeatureSource.cls
    public var seed: UInt64 = 7
    /// Add the pool's cross-fitted training rows (`<pool>/crossfit.json`, `train-pool --crossfit`) to dev's
    /// when the file exists (`train_labels`).
    public var trainLabels = true
    /// Where the features of those training rows come from (`train_features`): `fold`, the copy of the
    /// feature member that fold held the row out of (`<pool>/crossfit/fold<k>/pool/`), so that the
    /// features, like the labels, are those of a model that never saw the row, as on a new query; or
    /// `final`, the pool's own feature member, which trained on every row.
    public var trainFeatures = TrainFeatures.fold
    public enum TrainFeatures: String, Sendable, CaseIterable { case fold, final }
    /// Route over these pool members only (`members`, in pool order; nil: all). A pool whose members use
    /// different fixed points can give a router for the members that share one (a routed session runs
    /// one), or a smaller pool to compare.
    public var members: [String]?

    public init() {}
}

/// Everything `fit-router` measured and chose (written into the router file's config and the report).
public struct RouterReport: Codable, Sendable {
    public struct Member: Codable, Sendable {
        public var name: String
        public var devAccuracy: Double, testAccuracy: Double
        /// Mean predicted seconds per query on test (at each query's bucket).
        public var testSeconds: Double
        /// Predicted seconds per bucket.
        public var seconds: [String: Double]
    }
    public var task: String
    public var members: [Member]
    public var featureMember: String, featureLayers: Int
    /// `logits` for logit features (nil: the [CLS] state).
    public var features: RouterFeatureSource?
    public var network: String
    public var lambda: Double
    public var maxDrop: Double
    public var folds: Int
    /// Cross-fitted training rows added to dev's (0: dev alone).
    public var trainRows: Int?
    /// Where those rows' features came from: `fold` (the fold copies of the feature member) or `final`.
    public var trainFeatures: String?
    /// The lambda was given (`lambda` config key, `--lambda`), not chosen on dev (nil: chosen).
    public var lambdaSet: Bool?
    /// Out-of-fold dev sweep (what lambda was chosen on) and the final router's test sweep.
    public var devSweep: [SweepPoint], testSweep: [SweepPoint]
    /// The chosen lambda on test, the oracle router and the most accurate (on dev) member on test.
    public var chosen: SweepPoint
    public var oracleAccuracy: Double, oracleSeconds: Double
    public var bestMember: String

    enum CodingKeys: String, CodingKey {
        case task, members, network, lambda, folds, chosen, features, trainRows = "train_rows", lambdaSet = "lambda_set"
        case trainFeatures = "train_features"
        case featureMember = "feature_member", featureLayers = "feature_layers", maxDrop = "max_drop"
        case devSweep = "dev_sweep", testSweep = "test_sweep", oracleAccuracy = "oracle_accuracy"
        case oracleSeconds = "oracle_seconds", bestMember = "best_member"
    }
}

extension RouterReport.Member {
    enum CodingKeys: String, CodingKey {
        case name, seconds
        case devAccuracy = "dev_accuracy", testAccuracy = "test_accuracy", testSeconds = "test_seconds"
    }
}

/// The `config` attribute of a router file (DESIGN §4): what runs the router and how it decides.
public struct RouterConfig: Codable, Sendable {
    public static let currentFormatVersion = 1
    public var formatVersion = RouterConfig.currentFormatVersion
    public var kind = "router"
    /// Pool members in the order of the router's outputs.
    public var models: [String]
    public var featureMember: String, featureLayers: Int
    /// Where the features come from (`features`; absent in files written before logit features: `cls`).
    public var features: RouterFeatureSource?
    public var hidden: Int
    public var lambda: Double
    public var network: String
    /// Predicted seconds of a query routed to each member, per length bucket (`cost_table[name][bucket]`):
    /// the member's own seconds, and with logit features the feature member's added to every other member's
    /// (the router ran it first) — the costs the decision rule prices.
    public var costTable: [String: [String: Double]]
    public var report: RouterReport

    /// `features`, `cls` when absent.
    public var featureSource: RouterFeatureSource { features ?? .cls }

    enum CodingKeys: String, CodingKey {
        case kind, models, hidden, lambda, network, report, features
        case formatVersion = "format_version", featureMember = "feature_member", featureLayers = "feature_layers"
        case costTable = "cost_table"
    }
}

/// Fits the router of a trained pool (`train-pool` output directory): honest correctness labels on dev
/// (members are trained on train only; the dev split only picked their best epoch), K-fold cross-fitted
/// utilities to choose lambda, a final predictor on all of dev, and the test split for the report.
public final class RouterFitter {
    public let poolDir: URL
    public let dataDir: String
    public var options: RouterFitOptions
    public var note: ((String) -> Void)?

    public init(poolDir: URL, dataDir: String = "datasets", options: RouterFitOptions = RouterFitOptions()) {
        self.poolDir = poolDir
        self.dataDir = dataDir
        self.options = options
    }

    /// Fits and returns the router (folded weights) and its config.
    public func run() throws -> (network: UtilityNetwork, config: RouterConfig) {
        let o = options
        let pool = try LoadedPool.load(poolDir: poolDir, dataDir: dataDir, network: o.network, only: o.members)
        let dev = try pool.read("dev"), test = try pool.read("test")
        let fi = try pool.featureMember(named: o.featureMember, layers: o.featureLayers, features: o.features)
        let layers = o.features == .logits ? pool.members[fi].model.config.layers : o.featureLayers
        let source = (layers: layers, features: o.features)
        let devCorrect = pool.correctness(dev, split: "dev", note: note), testCorrect = pool.correctness(test, split: "test", note: note)
        let devFeatures = pool.features(dev, member: fi, source, split: "dev", note: note)
        let testFeatures = pool.features(test, member: fi, source, split: "test", note: note)
        /// Routed costs: with logit features, every member but the feature member also pays for the router's forward.
        func costs(_ xs: [Example]) -> [[Double]] { LoadedPool.routed(pool.costs(xs), featureMember: fi, features: o.features) }
        // The rows the predictor learns from and lambda is chosen on: dev, then any cross-fitted train rows.
        var rows = (features: devFeatures, correct: devCorrect, costs: costs(dev))
        var trainRows = 0
        if o.trainLabels, let labels = try CrossFitLabels.load(poolDir: poolDir) {
            let train = try pool.read("train")
            let correct = try pool.crossFitCorrectness(labels, train: train)
            note?("adding \(train.count) training examples with cross-fitted labels (\(labels.folds) folds, \(CrossFitLabels.fileName))")
            switch o.trainFeatures {
            case .fold:
                rows.features += try pool.foldFeatures(train, member: fi, source, folds: labels.folds, poolDir: poolDir, note: note)
            case .final:
                rows.features += pool.features(train, member: fi, source, split: "train", note: note)
            }
            rows.correct += correct
            rows.costs += costs(train)
            trainRows = train.count
        }
        let members = pool.members
        func fit(_ idx: [Int]) -> UtilityNetwork {
            let net = UtilityNetwork(features: rows.features[0].count, hidden: o.hidden, members: members.count, seed: o.seed)
            net.train(features: idx.map { rows.features[$0] }, correct: idx.map { rows.correct[$0] }, epochs: o.epochs,
                      learningRate: o.learningRate, weightDecay: o.weightDecay, featureNoise: o.featureNoise, seed: o.seed)
            return net
        }
        let count = rows.features.count
        note?("cross-fitting the utility predictor on \(trainRows > 0 ? "dev and train" : "dev") (\(count) examples, \(o.folds) folds)")
        let oof = CrossFitting.outOfFold(count: count, folds: o.folds) { train in
            let net = fit(train)
            return { held in net.utilities(held.map { rows.features[$0] }) }
        }
        // Platt scaling per member on the out-of-fold logits: calibrated utilities, comparable across members.
        let platt = members.indices.map { m in
            PlattScaling.fit(logits: oof.map { PlattScaling.logit($0[m]) }, right: rows.correct.map { $0[m] })
        }
        let calibrated = oof.map { row in row.indices.map { m in
            1 / (1 + Foundation.exp(-(platt[m].a * PlattScaling.logit(row[m]) + platt[m].b)))
        } }
        note?("calibration (Platt, out-of-fold): " + zip(members, platt).map { String(format: "%@ a=%.2f b=%.2f", $0.name, $1.a, $1.b) }.joined(separator: ", "))
        let bounded = zip(members, platt).filter { abs($1.a) >= PlattScaling.maxSlope || abs($1.b) >= PlattScaling.maxOffset }.map(\.0.name)
        if !bounded.isEmpty {
            note?("warning: the calibration of \(bounded.joined(separator: ", ")) hit its bounds: the out-of-fold utilities carry little "
                  + "information about who is right; try features: logits (with cross-fitted labels), or another feature_member or "
                  + "feature_layers in the router config")
        }
        let fitData = RoutingData(correct: rows.correct, costs: rows.costs, utilities: calibrated)
        let (devChoice, devSweep) = LambdaChoice.choose(fitData, maxDrop: o.maxDrop)
        let lambda = o.lambda ?? devChoice
        note?("fitting the final predictor on all \(count) examples; lambda = \(lambda)"
              + (o.lambda == nil ? "" : " (set; the dev rule would choose \(devChoice))"))
        let final = fit(Array(0..<count)).folded()
        final.calibrate(platt)
        let devData = RoutingData(correct: devCorrect, costs: Array(rows.costs.prefix(dev.count)), utilities: Array(calibrated.prefix(dev.count)))
        let testData = RoutingData(correct: testCorrect, costs: costs(test), utilities: final.utilities(testFeatures))
        var config = pool.routerConfig(devData: devData, testData: testData, memberSeconds: RoutingData.meanColumns(pool.costs(test)), lambda: lambda,
                                       devSweep: devSweep, featureMember: fi, source, hidden: o.hidden, maxDrop: o.maxDrop, folds: o.folds,
                                       network: o.network)
        config.report.trainRows = trainRows
        if trainRows > 0 { config.report.trainFeatures = o.trainFeatures.rawValue }
        if o.lambda != nil { config.report.lambdaSet = true }
        return (final, config)
    }

    /// The router file (DESIGN §4): `weights/router.fc{1,2}.{weight,bias}` and the `config` attribute.
    public static func checkpoint(_ net: UtilityNetwork, config: RouterConfig) throws -> ModelCheckpoint {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = String(decoding: try enc.encode(config), as: UTF8.self)
        var weights = [String: StoredTensor]()
        for (name, t) in net.namedParameters() { weights[name] = StoredTensor(shape: t.shape, data: t.data) }
        return ModelCheckpoint(configJSON: json, weights: weights)
    }
}

/// A trained pool loaded for routing: its members (plaintext models, tokenizers, secure shapes), its
/// task and data, and every member's predicted seconds per length bucket (shared by `fit-router` and
/// `co-train`).
struct LoadedPool {
    struct Member {
        var name: String
        var model: BertForSequenceClassification
        var config: CheckpointConfig
        var tokenizer: WordPieceTokenizer
        var shape: SecureBertShape
        var vocab: [String]
        var doLowerCase: Bool
    }
    var summary: PoolSummary
    var members: [Member]
    var task: TaskInfo
    var dataDir: String
    /// Predicted seconds of member i at bucket b: `table[i][b]`.
    var table: [[Int: Double]]

    /// `only`: the members to keep (names; nil keeps all).
    static func load(poolDir: URL, dataDir: String, network name: String, only: [String]? = nil) throws -> LoadedPool {
        let summaryURL = poolDir.appendingPathComponent("pool_summary.json")
        guard let data = FileManager.default.contents(atPath: summaryURL.path) else {
            throw RouterError("\(summaryURL.path) not found: --pool must be a train-pool output directory")
        }
        var summary: PoolSummary
        do { summary = try JSONDecoder().decode(PoolSummary.self, from: data) } catch {
            throw RouterError("\(summaryURL.path) is not a pool summary: \(error)")
        }
        if let only {
            let names = summary.models.map(\.name)
            if let bad = only.first(where: { !names.contains($0) }) {
                throw RouterError("members: '\(bad)' is not in \(summaryURL.path) (\(names.joined(separator: ", ")))")
            }
            summary.models = summary.models.filter { only.contains($0.name) }
        }
        guard summary.models.count >= 2 else { throw RouterError("the pool has \(summary.models.count) member(s); routing needs at least 2") }
        let members = try summary.models.map { e -> Member in
            let path = poolDir.appendingPathComponent(e.file).path
            let ckpt = try ModelCheckpoint.read(from: path)
            let model = try BertForSequenceClassification.load(checkpoint: ckpt, path: path)
            let config = try CheckpointConfig.decode(ckpt.configJSON, path: path)
            let shape: SecureBertShape
            do { shape = try SecureBertWeights.shape(of: config) } catch {
                throw RouterError("\(e.name): \(error); every routed member must run under MPC")
            }
            return Member(name: e.name, model: model, config: config,
                          tokenizer: try WordPieceTokenizer(tokens: ckpt.vocab, doLowerCase: ckpt.doLowerCase), shape: shape,
                          vocab: ckpt.vocab, doLowerCase: ckpt.doLowerCase)
        }
        guard let network = NetworkProfile(name: name) else { throw RouterError("unknown network '\(name)'") }
        let table = members.map { m in
            Dictionary(uniqueKeysWithValues: LengthBuckets.usable(maxPosition: m.shape.maxPosition).map { b in
                (b, CostModel.seconds(CostModel.total(m.shape.predictedCost(seq: b)), network: network))
            })
        }
        return LoadedPool(summary: summary, members: members, task: try TaskInfo.named(summary.task), dataDir: dataDir, table: table)
    }

    /// A split of the task (`dev`, `test`, `train`).
    func read(_ split: String) throws -> [Example] {
        let url = URL(fileURLWithPath: dataDir).appendingPathComponent(task.name).appendingPathComponent("\(split).tsv")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw RouterError("\(url.path) not found; run `securerouter data fetch --task \(task.name)` or pass --data-dir")
        }
        return try DatasetReader(task: task).read(url)
    }

    /// Predicted seconds of every member for every example (at the example's bucket).
    func costs(_ xs: [Example]) -> [[Double]] {
        let limit = LengthBuckets.inputLimit(members.map(\.shape))
        return xs.map { x in
            members.indices.map { i in
                let n = members[i].tokenizer.encode(x.text, maxLength: limit).count
                return table[i][LengthBuckets.bucket(for: n)] ?? table[i].values.max()!
            }
        }
    }

    /// A member's batcher over examples (its own tokenizer and training length).
    func batcher(_ xs: [Example], member i: Int, batchSize: Int = 64) -> Batcher {
        Batcher(examples: xs, tokenizer: members[i].tokenizer, maxLength: members[i].config.maxLength ?? task.defaultMaxLength, batchSize: batchSize)
    }

    /// Whether every member is right on every example (plaintext float, as each member was trained).
    func correctness(_ xs: [Example], split: String, note: ((String) -> Void)?) -> [[Bool]] {
        var out = [[Bool]](repeating: [], count: xs.count)
        for (i, m) in members.enumerated() {
            note?("\(m.name): plaintext predictions on \(split) (\(xs.count) examples)")
            let logits = Evaluation.logits(model: m.model, data: batcher(xs, member: i), batchSize: 64)
            for (r, (l, x)) in zip(logits, xs).enumerated() { out[r].append(Evaluation.argmax(l) == x.label) }
        }
        return out
    }

    /// Every member's correctness on the training split from the pool's cross-fitted predictions.
    /// - Throws: `RouterError` when the file was written for another task, training split or pool.
    func crossFitCorrectness(_ labels: CrossFitLabels, train: [Example]) throws -> [[Bool]] {
        let redo = "; rerun `train-pool --crossfit K --resume` for this pool"
        guard labels.task == task.name, labels.gold == train.map(\.label) else {
            throw RouterError("\(CrossFitLabels.fileName) was written for another task or training split than \(task.name)'s\(redo)")
        }
        let columns = try members.map { m -> [Int] in
            guard let p = labels.predictions[m.name], p.count == train.count, !p.contains(-1) else {
                throw RouterError("\(CrossFitLabels.fileName) has no cross-fitted predictions for member '\(m.name)'\(redo)")
            }
            return p
        }
        return train.indices.map { i in columns.map { $0[i] == train[i].label } }
    }

    /// The feature member: `name`, or the cheapest at bucket 32; checked to have `layers` layers (any depth
    /// for logit features, which run the whole member).
    func featureMember(named name: String?, layers: Int, features: RouterFeatureSource = .cls) throws -> Int {
        let fi: Int
        if let name {
            guard let i = members.firstIndex(where: { $0.name == name }) else {
                throw RouterError("feature member '\(name)' is not in the pool (\(members.map(\.name).joined(separator: ", ")))")
            }
            fi = i
        } else {
            fi = members.indices.min { table[$0][32] ?? 0 < table[$1][32] ?? 0 }!
        }
        guard features == .cls else { return fi }
        guard (0...members[fi].model.config.layers).contains(layers) else {
            throw RouterError("feature_layers \(layers): \(members[fi].name) has \(members[fi].model.config.layers) layer(s)")
        }
        let publicLayers = members[fi].shape.publicLayers ?? 0
        guard layers == 0 || layers >= publicLayers else {
            throw RouterError("feature_layers \(layers): the first \(publicLayers) layers of \(members[fi].name) are public and computed together by the client; use 0 or \(publicLayers)...\(members[fi].model.config.layers)")
        }
        guard layers > 0 || members[fi].shape.hasPublicEmbedding else {
            throw RouterError("feature_layers 0 (the mean of the public embedding) needs a feature member with a public embedding; \(members[fi].name) has a private one")
        }
        return fi
    }

    /// Where router features come from: the feature member's depth they are read at and their kind.
    typealias FeatureSource = (layers: Int, features: RouterFeatureSource)

    /// Router features of member `fi` (`RouterFeatures`).
    func features(_ xs: [Example], member fi: Int, _ source: FeatureSource, split: String, note: ((String) -> Void)?) -> [[Float]] {
        note?("router features on \(split): " + RouterFeatures.describe(layers: source.layers, member: members[fi].name, features: source.features))
        return RouterFeatures.extract(model: members[fi].model, data: batcher(xs, member: fi), layers: source.layers, features: source.features)
    }

    /// `costs[i][m]` (member m alone on row i) as the routed pipeline pays them: with logit features the router
    /// has run member `fi` whole on every row, so choosing it adds nothing and choosing another adds that member.
    static func routed(_ costs: [[Double]], featureMember fi: Int, features: RouterFeatureSource) -> [[Double]] {
        guard features == .logits else { return costs }
        return costs.map { row in row.indices.map { $0 == fi ? row[fi] : row[fi] + row[$0] } }
    }

    /// Router features of the training rows, each from the copy of member `fi` that its cross-fitting fold
    /// trained without it (`<pool>/crossfit/fold<k>/pool/<name>.h5`, row i in fold i % folds).
    /// - Throws: `RouterError` when a fold's copy is missing or has another architecture.
    func foldFeatures(_ xs: [Example], member fi: Int, _ source: FeatureSource, folds: Int, poolDir: URL,
                      note: ((String) -> Void)?) throws -> [[Float]] {
        let name = members[fi].name
        note?("router features on train: " + RouterFeatures.describe(layers: source.layers, member: name, features: source.features)
              + ", each row from the fold that held it out")
        var out = [[Float]](repeating: [], count: xs.count)
        for k in 0..<folds {
            let path = poolDir.appendingPathComponent("crossfit/fold\(k)/pool/\(name).h5").path
            guard FileManager.default.fileExists(atPath: path) else {
                throw RouterError("\(path) not found: train_features: fold needs every fold's copy of the feature member \(name) "
                                  + "(rerun `train-pool --crossfit \(folds) --resume`, or set train_features: final)")
            }
            let model = try BertForSequenceClassification.load(checkpoint: try ModelCheckpoint.read(from: path), path: path)
            guard model.config == members[fi].model.config else {
                throw RouterError("\(path) has another architecture than the pool's \(name); rerun `train-pool --crossfit \(folds) --resume`")
            }
            let held = xs.indices.filter { CrossFitLabels.heldOut($0, fold: k, folds: folds) }
            let rows = RouterFeatures.extract(model: model, data: batcher(held.map { xs[$0] }, member: fi), layers: source.layers,
                                              features: source.features)
            for (i, f) in zip(held, rows) { out[i] = f }
        }
        return out
    }

    /// The router file's config and report from the dev data (what lambda was chosen on) and test data
    /// (routed costs), and each member's mean seconds alone on test.
    func routerConfig(devData: RoutingData, testData: RoutingData, memberSeconds: [Double], lambda: Double, devSweep: [SweepPoint],
                      featureMember fi: Int, _ source: FeatureSource, hidden: Int, maxDrop: Double, folds: Int, network: String,
                      grid: [Double] = LambdaChoice.grid) -> RouterConfig {
        let testSweep = grid.map { testData.evaluate(lambda: $0) }
        let oracle = testData.oracle()
        let best = members.indices.max { devData.member($0).accuracy < devData.member($1).accuracy }!
        let report = RouterReport(
            task: task.name,
            members: members.indices.map { i in
                RouterReport.Member(name: members[i].name, devAccuracy: devData.member(i).accuracy, testAccuracy: testData.member(i).accuracy,
                                    testSeconds: memberSeconds[i],
                                    seconds: Dictionary(uniqueKeysWithValues: table[i].map { ("\($0.key)", $0.value) }))
            },
            featureMember: members[fi].name, featureLayers: source.layers, features: source.features == .cls ? nil : source.features,
            network: network, lambda: lambda, maxDrop: maxDrop, folds: folds,
            devSweep: devSweep, testSweep: testSweep, chosen: testData.evaluate(lambda: lambda),
            oracleAccuracy: oracle.accuracy, oracleSeconds: oracle.seconds, bestMember: members[best].name)
        // The decision's cost table: each member's seconds per bucket, routed as the rows' costs are (with logit
        // features, at the buckets every member has).
        var costTable = report.members.reduce(into: [String: [String: Double]]()) { $0[$1.name] = $1.seconds }
        if source.features == .logits {
            let buckets = table.dropFirst().reduce(Set(table[0].keys)) { $0.intersection($1.keys) }.sorted()
            let routed = LoadedPool.routed(buckets.map { b in table.map { $0[b]! } }, featureMember: fi, features: source.features)
            for (i, m) in members.enumerated() {
                costTable[m.name] = Dictionary(uniqueKeysWithValues: buckets.indices.map { ("\(buckets[$0])", routed[$0][i]) })
            }
        }
        return RouterConfig(models: members.map(\.name), featureMember: members[fi].name, featureLayers: source.layers,
                            features: report.features, hidden: hidden, lambda: lambda, network: network, costTable: costTable, report: report)
    }
}

/// Router features computed in plaintext exactly as the secure runtime will: the [CLS] row of the
/// hidden states after the first `layers` encoder layers of a pool member; with `layers` 0 (a member with
/// a public embedding only), the mean of its embedding rows over the query's real tokens, which the
/// client computes in plaintext (no MPC cost).
public enum RouterFeatures {
    /// What the features are, for messages: "[CLS] after 1 layer(s) of l1-mpc" or "mean public embedding of l1-pub".
    public static func describe(layers: Int, member: String, features: RouterFeatureSource = .cls) -> String {
        if features == .logits { return "logits of \(member) (its whole forward)" }
        return layers == 0 ? "mean public embedding of \(member)" : "[CLS] after \(layers) layer(s) of \(member)"
    }

    /// How many features a row has: the model's hidden width, or its number of classes for logit features.
    public static func width(_ model: BertForSequenceClassification, features: RouterFeatureSource) -> Int {
        features == .logits ? model.config.numLabels : model.config.hidden
    }

    public static func extract(model: BertForSequenceClassification, data: Batcher, layers: Int, features: RouterFeatureSource = .cls) -> [[Float]] {
        var out = [[Float]](repeating: [], count: data.count)
        let h = width(model, features: features)
        let byLength = data.encodings.indices.sorted { data.encodings[$0].count < data.encodings[$1].count }
        Tensor.withNoGrad {
            for lo in stride(from: 0, to: byLength.count, by: 64) {
                let idx = Array(byLength[lo..<min(lo + 64, byLength.count)])
                let cls = batch(model: model, data.makeBatch(idx).encoded, layers: layers, features: features).data
                for (row, i) in idx.enumerated() { out[i] = Array(cls[(row * h)..<((row + 1) * h)]) }
            }
        }
        return out
    }

    /// The features for one encoded batch, `[B, H]`: the [CLS] state after the embedding and the first
    /// `layers` layers only, as the secure router runs them; for `layers` 0, the mean embedding row over
    /// each query's real tokens; for logit features, `[B, C]`, the model's logits.
    static func batch(model: BertForSequenceClassification, _ batch: EncodedBatch, layers: Int, features: RouterFeatureSource = .cls) -> Tensor {
        let rng = SeededGenerator(seed: 0)
        if features == .logits { return model.forward(batch, training: false, rng: rng) }
        let mask = BertEncoder.additiveMask(batch.attentionMask, batch: batch.batch, seqLen: batch.seqLen)
        var state = model.embeddings(batch, training: false, rng: rng, quantization: model.quantization)   // [B, S, H]
        for layer in model.encoder.layers.prefix(layers) {
            state = layer(state, mask: mask, training: false, rng: rng, quantization: model.quantization)
        }
        let (s, h) = (batch.seqLen, model.config.hidden)
        guard layers == 0 else {
            return Tensor(shape: [batch.batch, h], data: (0..<batch.batch).flatMap { r in Array(state.data[(r * s * h)..<(r * s * h + h)]) })
        }
        return Tensor(shape: [batch.batch, h], data: (0..<batch.batch).flatMap { r -> [Float] in
            let real = (0..<s).filter { batch.attentionMask[r * s + $0] != 0 }
            return (0..<h).map { j in real.reduce(Float(0)) { $0 + state.data[(r * s + $1) * h + j] } / Float(real.count) }
        })
    }
}

/// A router that cannot be fitted (the message says why).
public struct RouterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
