import Foundation
import Checkpoint
import CostModel
import MPC
import SecureInference
import TextData
import Transformer

/// One row of `pool_summary.json` (DESIGN §2).
public struct PoolSummaryEntry: Codable, Sendable {
    public var name: String
    public var file: String
    public var devAccuracy: Double
    public var testAccuracy: Double?
    public var params: Int
    public var variant: String
    public var ringBits: Int
    public var bestEpoch: Int
    public var trainSeconds: Double
    /// The cost model's prediction for one query at the bucket holding the training max length (nil for
    /// variants the secure runtime does not run).
    public var predicted: PredictedCost?
    /// With `train-pool --measure N`: the cost model's mean over the first N test sentences, and the
    /// means measured by secure sessions on the same sentences (`--net none` and `--net lan`).
    public var predictedMean: MeanCost?, measured: MeanCost?
    /// The pruned structure (heads and feed-forward width per layer), when the member was pruned.
    public var layerHeads: [Int]?, layerIntermediate: [Int]?

    enum CodingKeys: String, CodingKey {
        case name, file, params, variant, predicted, measured
        case predictedMean = "predicted_mean", layerHeads = "layer_heads", layerIntermediate = "layer_intermediate"
        case devAccuracy = "dev_accuracy", testAccuracy = "test_accuracy", ringBits = "ring_bits"
        case bestEpoch = "best_epoch", trainSeconds = "train_seconds"
    }
}

/// `predicted` of a pool summary row: one query's online bytes, rounds and LAN seconds at bucket `seq`.
public struct PredictedCost: Codable, Sendable, Equatable {
    public var seq: Int
    public var onlineBytes: Int
    public var rounds: Int
    public var secondsLan: Double
    public var secondsNone: Double

    enum CodingKeys: String, CodingKey {
        case seq, rounds, onlineBytes = "online_bytes", secondsLan = "seconds_lan", secondsNone = "seconds_none"
    }

    /// The prediction for a checkpoint's model at the smallest length bucket holding `maxLength`.
    public static func of(_ config: CheckpointConfig, maxLength: Int) -> PredictedCost? {
        guard let m = try? SecureBertWeights.shape(of: config) else { return nil }
        let seq = LengthBuckets.bucket(for: maxLength)
        let c = CostModel.total(m.predictedCost(seq: seq))
        return PredictedCost(seq: seq, onlineBytes: c.bytes, rounds: c.rounds,
                             secondsLan: CostModel.seconds(c, network: .lan), secondsNone: CostModel.seconds(c, network: .none))
    }
}

/// `<out>/pool_summary.json`.
public struct PoolSummary: Codable, Sendable {
    public var task: String
    public var models: [PoolSummaryEntry]
}

/// Trains every member of a pool config in turn and writes the pool summary.
public final class PoolTrainer {
    public let config: PoolConfig
    public let outDir: URL
    public var progress: ((TrainingProgress) -> Void)?
    /// Informational messages (data loading, skipped members) for stderr.
    public var note: ((String) -> Void)?
    /// When set, every member is measured under MPC after the pool is trained (`measured` in the summary).
    public var measurement: PoolMeasurement?
    /// When set (a cross-fitting fold, `PoolCrossFit`), members train on the training rows this fold does not
    /// hold out, and the held-out rows replace the test split (their accuracy is the summary's `test_accuracy`).
    public var trainFold: TrainFold?

    /// Fold `index` of `folds`: rows with `i % folds == index` are held out (`CrossFitLabels.heldOut`).
    public struct TrainFold: Sendable {
        public var index: Int, folds: Int
        public init(index: Int, folds: Int) { self.index = index; self.folds = folds }
    }

    public init(config: PoolConfig, outDir: URL) {
        self.config = config
        self.outDir = outDir
    }

    /// Trains the pool. With `resume`, members with a finished checkpoint and no
    /// pending state are skipped and an interrupted member continues where it stopped.
    public func run(resume: Bool) throws -> PoolSummary {
        let task = try TaskInfo.named(config.task)
        let poolDir = outDir.appendingPathComponent("pool")
        try FileManager.default.createDirectory(at: poolDir, withIntermediateDirectories: true)
        let splits = try loadSplits(task: task)
        var entries: [PoolSummaryEntry] = []
        var cache: [String: TaskData] = [:]
        for member in config.models {
            let tuner = FineTuner(member: member, poolDir: poolDir)
            tuner.progress = progress
            tuner.note = note
            let result: MemberResult
            if resume, let done = try finished(tuner) {
                note?("\(member.name): already trained (dev \(String(format: "%.2f", done.devAccuracy * 100))%), skipping")
                result = done
            } else {
                let initial = try ModelFactory.make(member, task: task, seed: member.training.seed)
                let maxLength = member.training.maxLength ?? task.defaultMaxLength
                let batchSize = member.training.batchSize
                let key = "\(initial.vocab.count)-\(initial.vocab.first ?? "")-\(initial.vocab.last ?? "")-\(maxLength)-\(batchSize)"
                if cache[key] == nil {
                    note?("tokenizing \(task.name) (max length \(maxLength))")
                    cache[key] = try tokenize(
                        splits, task: task, vocab: initial.vocab, lower: initial.doLowerCase, maxLength: maxLength, batchSize: batchSize)
                }
                note?("\(member.name): \(initial.config.architecture.layers) layers, hidden \(initial.config.architecture.hidden), "
                      + "\(initial.model.namedParameters().reduce(0) { $0 + $1.tensor.data.count }) parameters")
                result = try tuner.run(model: initial.model, baseConfig: initial.config, vocab: initial.vocab,
                                       doLowerCase: initial.doLowerCase, data: cache[key]!, resume: resume)
                try? FileManager.default.removeItem(at: tuner.stateURL)
            }
            let a = result.config.architecture
            entries.append(PoolSummaryEntry(
                name: result.name, file: "pool/\(result.name).h5", devAccuracy: result.devAccuracy,
                testAccuracy: result.testAccuracy, params: result.parameters,
                variant: "\(result.config.variant.softmax)/\(result.config.variant.activation)",
                ringBits: result.config.quantization.ringBits, bestEpoch: result.bestEpoch, trainSeconds: result.seconds,
                predicted: PredictedCost.of(result.config, maxLength: member.training.maxLength ?? task.defaultMaxLength),
                layerHeads: a.isPruned ? a.headsPerLayer : nil,
                layerIntermediate: a.isPruned ? a.intermediatePerLayer : nil))
            try writeSummary(PoolSummary(task: task.name, models: entries))
        }
        if let measurement {
            let texts = splits.test.isEmpty ? splits.dev.map(\.text) : splits.test.map(\.text)
            for i in entries.indices {
                note?("\(entries[i].name): measuring the secure cost of \(min(measurement.count, texts.count)) test sentences (--net none, lan)")
                if let (p, m) = try measurement.measure(checkpoint: poolDir.appendingPathComponent("\(entries[i].name).h5").path, texts: texts) {
                    entries[i].predictedMean = p
                    entries[i].measured = m
                    note?(String(format: "%@: measured %.3f s none, %.3f s lan (predicted %.3f, %.3f); %.0f bytes, %.1f rounds (predicted %.0f, %.1f)",
                                 entries[i].name, m.secondsNone, m.secondsLan, p.secondsNone, p.secondsLan, m.onlineBytes, m.rounds,
                                 p.onlineBytes, p.rounds))
                } else {
                    note?("\(entries[i].name): its variant has no secure implementation; not measured")
                }
                try writeSummary(PoolSummary(task: task.name, models: entries))
            }
        }
        return PoolSummary(task: task.name, models: entries)
    }

    /// A member whose checkpoint exists with a test accuracy and whose resumable state is gone is done.
    private func finished(_ tuner: FineTuner) throws -> MemberResult? {
        let path = tuner.checkpointURL.path
        guard FileManager.default.fileExists(atPath: path),
              !FileManager.default.fileExists(atPath: tuner.stateURL.path) else { return nil }
        let ckpt = try ModelCheckpoint.read(from: path)
        let config = try CheckpointConfig.decode(ckpt.configJSON, path: path)
        guard let dev = config.devAccuracy, config.testAccuracy != nil else { return nil }
        return MemberResult(
            name: tuner.member.name, file: path, devAccuracy: dev, testAccuracy: config.testAccuracy, bestEpoch: -1,
            parameters: ckpt.weights.values.reduce(0) { $0 + $1.data.count }, seconds: 0, config: config)
    }

    private func writeSummary(_ summary: PoolSummary) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let url = outDir.appendingPathComponent("pool_summary.json")
        try enc.encode(summary).write(to: url, options: .atomic)
    }

    struct Splits { var train: [Example]; var dev: [Example]; var test: [Example] }

    private func loadSplits(task: TaskInfo) throws -> Splits {
        let dir = URL(fileURLWithPath: config.dataDir).appendingPathComponent(task.name)
        func read(_ split: String, required: Bool) throws -> [Example] {
            let url = dir.appendingPathComponent("\(split).tsv")
            guard FileManager.default.fileExists(atPath: url.path) else {
                if required {
                    throw ConfigError("\(url.path) not found; run `securerouter data fetch --task \(task.name)` or set data_dir")
                }
                return []
            }
            return try DatasetReader(task: task).read(url)
        }
        var s = Splits(train: try read("train", required: true), dev: try read("dev", required: true), test: try read("test", required: false))
        if let f = trainFold {
            let held = s.train.indices.map { CrossFitLabels.heldOut($0, fold: f.index, folds: f.folds) }
            s.test = s.train.indices.filter { held[$0] }.map { s.train[$0] }
            s.train = s.train.indices.filter { !held[$0] }.map { s.train[$0] }
            note?("\(task.name): fold \(f.index) of \(f.folds): \(s.train.count) train examples, \(s.test.count) held out (reported as test)")
            return s
        }
        note?("\(task.name): \(s.train.count) train, \(s.dev.count) dev, \(s.test.count) test examples")
        return s
    }

    private func tokenize(_ s: Splits, task: TaskInfo, vocab: [String], lower: Bool, maxLength: Int, batchSize: Int) throws -> TaskData {
        let tok = try WordPieceTokenizer(tokens: vocab, doLowerCase: lower)
        func enc(_ xs: [Example], _ batchSize: Int) -> Batcher {
            Batcher(examples: xs, tokenizer: tok, maxLength: maxLength, batchSize: batchSize)
        }
        return TaskData(task: task, tokenizer: tok, train: enc(s.train, batchSize), dev: enc(s.dev, batchSize), test: enc(s.test, batchSize))
    }
}
