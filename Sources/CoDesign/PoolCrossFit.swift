import Foundation
import Checkpoint
import TextData
import Transformer

/// Every pool member's prediction on every training example, each made by a copy of the member that was
/// not trained on it: honest correctness labels for the router on the training split (`<out>/crossfit.json`).
///
/// Members train on all of `train`, so their correctness there is not what they will show on new queries,
/// and dev alone (549 articles for r8, 853 sentences for mr) is few rows for a predictor over hundreds of
/// features and for choosing λ within half a point. Cross-fitting (`train-pool --crossfit K`) trains the
/// whole pool K more times, fold k on the training rows `i % K != k`, and records each fold's predictions
/// on its held-out rows `i % K == k`. A fold's member differs from the final one only by seeing (K−1)/K of
/// the data, so its labels are slightly pessimistic.
public struct CrossFitLabels: Codable, Sendable, Equatable {
    public var task: String
    public var folds: Int
    /// Gold labels of the training split, in file order (to check that the split has not changed).
    public var gold: [Int]
    /// `predictions[member][i]`: the label predicted for training example i by the fold that held it out.
    public var predictions: [String: [Int]]

    public init(task: String, folds: Int, gold: [Int], predictions: [String: [Int]]) {
        self.task = task
        self.folds = folds
        self.gold = gold
        self.predictions = predictions
    }

    /// The file name inside a `train-pool` output directory.
    public static let fileName = "crossfit.json"

    /// The labels in `poolDir`, or nil when the pool was not cross-fitted.
    /// - Throws: `ConfigError` when the file exists but cannot be read.
    public static func load(poolDir: URL) throws -> CrossFitLabels? {
        let url = poolDir.appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        do { return try JSONDecoder().decode(CrossFitLabels.self, from: data) } catch {
            throw ConfigError("\(url.path) is not a cross-fitting file written by `train-pool --crossfit`: \(error)")
        }
    }

    /// Whether fold `k` of `folds` holds training row `i` out.
    public static func heldOut(_ i: Int, fold k: Int, folds: Int) -> Bool { i % folds == k }
}

/// Runs `train-pool --crossfit K`: the pool's config once per fold, in `<out>/crossfit/fold<k>`.
///
/// Paths into the pool's own `<out>/pool/` (a member initialised from, or distilled from, an earlier
/// member) are redirected to the fold's, so that nothing a fold trains has seen its held-out rows. A path
/// into another pool (e.g. a teacher trained elsewhere on all of `train`) cannot be redirected: the fold
/// keeps it and a note says that its labels are then optimistic.
public struct PoolCrossFit {
    public let config: PoolConfig
    public let outDir: URL
    public let folds: Int

    public init(config: PoolConfig, outDir: URL, folds: Int) {
        precondition(folds >= 2, "cross-fitting needs at least 2 folds")
        self.config = config
        self.outDir = outDir
        self.folds = folds
    }

    /// The directory of fold `k`.
    public func foldDir(_ k: Int) -> URL { outDir.appendingPathComponent("crossfit").appendingPathComponent("fold\(k)") }

    /// The pool config of fold `k` (paths into `<out>/pool/` redirected) and the paths that point into
    /// another pool's directory (kept as they are).
    public func foldConfig(_ k: Int) -> (config: PoolConfig, foreign: [String]) {
        let poolPrefix = outDir.appendingPathComponent("pool").standardizedFileURL.path + "/"
        let foldPool = foldDir(k).appendingPathComponent("pool").path + "/"
        var foreign = [String]()
        func redirect(_ path: String) -> String {
            let full = URL(fileURLWithPath: path).standardizedFileURL.path
            if full.hasPrefix(poolPrefix) { return foldPool + full.dropFirst(poolPrefix.count) }
            if full.hasSuffix(".h5") && full.contains("/pool/") { foreign.append(path) }
            return path
        }
        var c = config
        for i in c.models.indices {
            if case .pretrained(let path, let layers) = c.models[i].initialization {
                c.models[i].initialization = .pretrained(path: redirect(path), layers: layers)
            }
            if let teacher = c.models[i].distill?.teacher { c.models[i].distill?.teacher = redirect(teacher) }
            if let e = c.models[i].publicEmbedding { c.models[i].publicEmbedding = redirect(e) }
        }
        return (c, Array(Set(foreign)).sorted())
    }

    /// Trains every fold (with `resume`, finished fold members are skipped) and writes `<out>/crossfit.json`.
    public func run(resume: Bool, progress: ((TrainingProgress) -> Void)?, note: ((String) -> Void)?) throws -> CrossFitLabels {
        let task = try TaskInfo.named(config.task)
        let trainURL = URL(fileURLWithPath: config.dataDir).appendingPathComponent(task.name).appendingPathComponent("train.tsv")
        let train = try DatasetReader(task: task).read(trainURL)
        guard train.count >= folds else { throw ConfigError("--crossfit \(folds): the training split has only \(train.count) examples") }
        var predictions = [String: [Int]]()
        for m in config.models { predictions[m.name] = [Int](repeating: -1, count: train.count) }
        for k in 0..<folds {
            let (foldConfig, foreign) = foldConfig(k)
            if !foreign.isEmpty {
                note?("warning: fold \(k) uses \(foreign.joined(separator: ", ")), trained outside this pool on all of train; "
                      + "its cross-fitted labels are optimistic")
            }
            let held = train.indices.filter { CrossFitLabels.heldOut($0, fold: k, folds: folds) }
            note?("cross-fitting fold \(k + 1)/\(folds): training on \(train.count - held.count) examples, holding out \(held.count)")
            let trainer = PoolTrainer(config: foldConfig, outDir: foldDir(k))
            trainer.trainFold = PoolTrainer.TrainFold(index: k, folds: folds)
            trainer.progress = progress
            trainer.note = note.map { n in { n("fold \(k): " + $0) } }
            let summary = try trainer.run(resume: resume)
            let heldOut = held.map { train[$0] }
            for entry in summary.models {
                let path = foldDir(k).appendingPathComponent(entry.file).path
                let ckpt = try ModelCheckpoint.read(from: path)
                let model = try BertForSequenceClassification.load(checkpoint: ckpt, path: path)
                let config = try CheckpointConfig.decode(ckpt.configJSON, path: path)
                let tokenizer = try WordPieceTokenizer(tokens: ckpt.vocab, doLowerCase: ckpt.doLowerCase)
                let batcher = Batcher(examples: heldOut, tokenizer: tokenizer,
                                      maxLength: config.maxLength ?? task.defaultMaxLength, batchSize: 64)
                let labels = Evaluation.logits(model: model, data: batcher, batchSize: 64).map(Evaluation.argmax)
                for (row, label) in zip(held, labels) { predictions[entry.name]![row] = label }
            }
        }
        let labels = CrossFitLabels(task: task.name, folds: folds, gold: train.map(\.label), predictions: predictions)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try enc.encode(labels).write(to: outDir.appendingPathComponent(CrossFitLabels.fileName), options: .atomic)
        for m in config.models {
            let right = zip(predictions[m.name]!, labels.gold).filter { $0 == $1 }.count
            note?(String(format: "%@: cross-fitted train accuracy %.2f%% (%d examples)", m.name, Double(right) * 100 / Double(train.count), train.count))
        }
        return labels
    }
}
