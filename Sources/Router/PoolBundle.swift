import Checkpoint
import CoDesign
import CostModel
import Crypto
import Foundation
import MPC
import SecureInference
import Transformer

/// The deployable bundle (DESIGN §4): every pool member under `/models/<name>`, the router under
/// `/router`, the predicted cost table under `/cost`, and root attributes `kind = "bundle"`,
/// `format_version`, `best_member` and `content_hash`.
///
/// `content_hash` is the SHA-256 (hex) of the router's and every member's config JSON and float32
/// weights, in name order: two bundles with the same hash run the same computation, whatever HDF5
/// chose for the file's layout. `/cost/buckets` lists the length buckets; `/cost/<name>/{online_bytes,
/// rounds}` (int64) and `/cost/<name>/{seconds_lan, seconds_wan}` (float32) hold one value per bucket,
/// from the cost model.
public enum PoolBundle {
    public static let formatVersion = 1
    public static let routerGroup = "/router"

    /// What `export` wrote.
    public struct Summary: Sendable {
        public var members: [String]
        public var bestMember: String
        public var contentHash: String
        public var bytes: Int
    }

    /// Writes the bundle of a trained pool (`train-pool` directory) and its router (`fit-router` file).
    /// - Throws: `RouterError` naming what is missing or inconsistent (a router fitted on another pool).
    @discardableResult
    public static func export(poolDir: URL, routerFile: String, to out: String) throws -> Summary {
        guard FileManager.default.fileExists(atPath: routerFile) else { throw RouterError("no such router file: \(routerFile)") }
        let routerCkpt = try ModelCheckpoint.read(from: routerFile)
        let config: RouterConfig
        do { config = try JSONDecoder().decode(RouterConfig.self, from: Data(routerCkpt.configJSON.utf8)) } catch {
            throw RouterError("\(routerFile) is not a router file (fit-router output): \(error)")
        }
        let summaryURL = poolDir.appendingPathComponent("pool_summary.json")
        guard let data = FileManager.default.contents(atPath: summaryURL.path),
              let summary = try? JSONDecoder().decode(PoolSummary.self, from: data) else {
            throw RouterError("\(summaryURL.path) is missing or not a pool summary: --pool must be a train-pool output directory")
        }
        var models = [(name: String, checkpoint: ModelCheckpoint)]()
        for name in config.models {
            guard let entry = summary.models.first(where: { $0.name == name }) else {
                throw RouterError("the router routes to '\(name)', which is not in \(summaryURL.path) (\(summary.models.map(\.name).joined(separator: ", ")))")
            }
            models.append((name, try ModelCheckpoint.read(from: poolDir.appendingPathComponent(entry.file).path)))
        }
        let shapes = try models.map { m in try SecureBertWeights.shape(of: CheckpointConfig.decode(m.checkpoint.configJSON, path: m.name)) }
        guard Set(models.map { $0.checkpoint.vocab }).count == 1 else {
            throw RouterError("the pool members do not share one vocabulary; a routed query is tokenized once")
        }
        let hash = contentHash(router: routerCkpt, models: models)
        try ModelCheckpoint.writeBundle(to: out, models: models) { file in
            let root = try file.root()
            try root.writeAttribute("kind", .string("bundle"))
            try root.writeAttribute("format_version", .integer(Int64(formatVersion)))
            try root.writeAttribute("best_member", .string(config.report.bestMember))
            try root.writeAttribute("content_hash", .string(hash))
            try routerCkpt.write(into: root.createGroup(String(routerGroup.dropFirst())))
            let buckets = LengthBuckets.usable(maxPosition: shapes.map(\.maxPosition).min() ?? 512)
            try root.writeInt64("cost/buckets", shape: [buckets.count], values: buckets.map(Int64.init))
            for (m, shape) in zip(models, shapes) {
                let costs = buckets.map { CostModel.total(shape.predictedCost(seq: $0)) }
                try root.writeInt64("cost/\(m.name)/online_bytes", shape: [buckets.count], values: costs.map { Int64($0.bytes) })
                try root.writeInt64("cost/\(m.name)/rounds", shape: [buckets.count], values: costs.map { Int64($0.rounds) })
                for net in ["lan", "wan"] {
                    let profile = NetworkProfile(name: net)!
                    try root.writeFloat32("cost/\(m.name)/seconds_\(net)", shape: [buckets.count],
                                          values: costs.map { Float(CostModel.seconds($0, network: profile)) })
                }
            }
        }
        let bytes = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        return Summary(members: config.models, bestMember: config.report.bestMember, contentHash: hash, bytes: bytes ?? 0)
    }

    /// SHA-256 of the configs and weights (see the type's documentation).
    static func contentHash(router: ModelCheckpoint, models: [(name: String, checkpoint: ModelCheckpoint)]) -> String {
        var h = SHA256()
        func feed(_ label: String, _ c: ModelCheckpoint) {
            h.update(data: Data("\(label)\n\(c.configJSON)\n".utf8))
            for name in c.weights.keys.sorted() {
                let t = c.weights[name]!
                h.update(data: Data("\(name)\(t.shape)\n".utf8))
                t.data.withUnsafeBytes { h.update(bufferPointer: $0) }
            }
        }
        feed("router", router)
        for m in models.sorted(by: { $0.name < $1.name }) { feed("models/\(m.name)", m.checkpoint) }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The bundle-level facts `inspect` prints (nil fields when absent, e.g. a bundle without a router).
    public struct Info: Sendable {
        public var contentHash: String?, bestMember: String?
        public var router: RouterConfig?
        /// `/cost`: buckets and, per member, online bytes, rounds and LAN/WAN seconds per bucket.
        public var costBuckets: [Int]
        public var costs: [String: [String: [Double]]]
    }

    /// Reads the root attributes, the router's config and the cost table of `path`.
    public static func info(_ path: String) throws -> Info {
        try H5File.withLibraryLock {
            let root = try H5File.open(path: path).root()
            func string(_ name: String) throws -> String? { root.hasAttribute(name) ? try root.readStringAttribute(name) : nil }
            var info = Info(contentHash: try string("content_hash"), bestMember: try string("best_member"), router: nil, costBuckets: [], costs: [:])
            if root.isGroup(String(routerGroup.dropFirst())), root.hasAttribute("config", on: String(routerGroup.dropFirst())) {
                let json = try root.readStringAttribute("config", on: String(routerGroup.dropFirst()))
                info.router = try? JSONDecoder().decode(RouterConfig.self, from: Data(json.utf8))
            }
            if root.isDataset("cost/buckets") {
                info.costBuckets = try root.readInt64("cost/buckets").values.map { Int($0) }
                for name in try root.openGroup("cost").memberNames() where root.isGroup("cost/\(name)") {
                    var row = [String: [Double]]()
                    for k in ["online_bytes", "rounds"] where root.isDataset("cost/\(name)/\(k)") {
                        row[k] = try root.readInt64("cost/\(name)/\(k)").values.map(Double.init)
                    }
                    for k in ["seconds_lan", "seconds_wan"] where root.isDataset("cost/\(name)/\(k)") {
                        row[k] = try root.readFloat32("cost/\(name)/\(k)").values.map(Double.init)
                    }
                    info.costs[name] = row
                }
            }
            return info
        }
    }

    /// Whether `path` is a bundle with a router (routing modes need one).
    public static func hasRouter(_ path: String) -> Bool {
        (try? ModelCheckpoint.read(from: path, group: routerGroup)) != nil
    }

    /// What anyone may know about a bundle: member names and shapes, the router's public shape (no
    /// weights), the vocabulary and the content hash. A `party` client needs only this.
    public struct PublicPart: Sendable {
        public var names: [String]
        public var shapes: [SecureBertShape]
        public var router: SecureRouterShape?
        public var routerConfig: RouterConfig?
        public var vocab: [String]
        public var doLowerCase: Bool
        public var contentHash: String?
        public var bestMember: String?
    }

    /// Reads the public part of a bundle without loading any weight.
    /// - Throws: `RouterError` when it is not a bundle (no `/models`) or a member is unreadable.
    public static func publicPart(_ path: String) throws -> PublicPart {
        let info = try info(path)
        var names = try ModelCheckpoint.listModels(inBundle: path)
        guard !names.isEmpty else { throw RouterError("\(path) is not a bundle (no /models group); write one with export") }
        var config: RouterConfig?
        if let routerCkpt = try? ModelCheckpoint.read(from: path, group: routerGroup, includeWeights: false) {
            do { config = try JSONDecoder().decode(RouterConfig.self, from: Data(routerCkpt.configJSON.utf8)) } catch {
                throw RouterError("\(path): the router's config is not readable: \(error)")
            }
            names = config!.models
        }
        var shapes = [SecureBertShape](), vocab = [String](), lower = true
        for name in names {
            let ckpt = try ModelCheckpoint.read(from: path, group: name, includeWeights: false)
            let mc = try CheckpointConfig.decode(ckpt.configJSON, path: "\(path)::models/\(name)")
            do { shapes.append(try SecureBertWeights.shape(of: mc)) } catch { throw RouterError("\(name): \(error)") }
            if vocab.isEmpty { (vocab, lower) = (ckpt.vocab, ckpt.doLowerCase) }
        }
        let router = try config.map { try routerShape($0, names: names, shapes: shapes, path: path) }
        return PublicPart(names: names, shapes: shapes, router: router, routerConfig: config, vocab: vocab, doLowerCase: lower,
                          contentHash: info.contentHash, bestMember: info.bestMember)
    }

    /// The router's public shape: feature member, size, lambda and the cost row of every usable bucket.
    static func routerShape(_ config: RouterConfig, names: [String], shapes: [SecureBertShape], path: String) throws -> SecureRouterShape {
        guard let f = names.firstIndex(of: config.featureMember) else {
            throw RouterError("\(path): the router's feature member '\(config.featureMember)' is not one of its models")
        }
        let buckets = LengthBuckets.usable(maxPosition: shapes.map(\.maxPosition).min() ?? 512)
        var costs = [String: [Double]]()
        for b in buckets {
            costs["\(b)"] = try config.models.map { name in
                guard let s = config.costTable[name]?["\(b)"] else { throw RouterError("\(path): the router has no cost for \(name) at bucket \(b)") }
                return s
            }
        }
        return SecureRouterShape(featureMember: f, featureLayers: config.featureLayers, hidden: config.hidden,
                                 lambda: config.lambda, costs: costs, features: config.featureSource)
    }

    /// The routed pool of a bundle, ready for plaintext routing (`predict --bundle`) and for building
    /// its secure program; the members' shapes are those the secure runtime will check.
    public static func pipeline(_ path: String) throws -> (pipeline: RoutedPipeline, shapes: [SecureBertShape], tokenizerSource: ModelCheckpoint) {
        let routerCkpt: ModelCheckpoint
        do { routerCkpt = try ModelCheckpoint.read(from: path, group: routerGroup) } catch {
            throw RouterError("\(path) has no router (\(error)); routing needs a bundle written by export")
        }
        let config: RouterConfig
        do { config = try JSONDecoder().decode(RouterConfig.self, from: Data(routerCkpt.configJSON.utf8)) } catch {
            throw RouterError("\(path): the router's config is not readable: \(error)")
        }
        var models = [BertForSequenceClassification](), shapes = [SecureBertShape](), first: ModelCheckpoint?
        for name in config.models {
            let ckpt = try ModelCheckpoint.read(from: path, group: name)
            let mc = try CheckpointConfig.decode(ckpt.configJSON, path: "\(path)::models/\(name)")
            models.append(try BertForSequenceClassification.load(checkpoint: ckpt, path: "\(path)::models/\(name)"))
            do { shapes.append(try SecureBertWeights.shape(of: mc)) } catch { throw RouterError("\(name): \(error)") }
            if first == nil { first = ckpt }
        }
        let shape = try routerShape(config, names: config.models, shapes: shapes, path: path)
        let weights = try SecureRouterWeights(stored: routerCkpt.weights.mapValues { ($0.shape, $0.data) }, members: config.models.count)
        let pipe = RoutedPipeline(names: config.models, models: models, router: shape, weights: weights, config: config)
        return (pipe, shapes, first!)
    }
}
