import Foundation
import Checkpoint
import Tensor
import TextData
import Transformer

/// What one pool member's training produced.
public struct MemberResult: Sendable {
    public var name: String
    public var file: String
    public var devAccuracy: Double
    public var testAccuracy: Double?
    public var bestEpoch: Int
    public var parameters: Int
    public var seconds: Double
    public var config: CheckpointConfig
}

/// Tokenized splits of one task, encoded once and reused by every epoch and every pool member.
public struct TaskData {
    public var task: TaskInfo
    public var tokenizer: WordPieceTokenizer
    public var train: Batcher
    public var dev: Batcher
    public var test: Batcher
}

/// Fine-tunes one model on a task: AdamW with linear warm-up and decay, gradient
/// clipping, per-epoch dev accuracy, best-dev checkpoint, resumable state.
///
/// Resumption: every `saveEvery` steps and at each epoch end the full state
/// (weights, AdamW moments, step, best-so-far) is written atomically to
/// `<pool>/<name>.state.h5`. Batch order and dropout masks are functions of
/// (seed, epoch, step), so a resumed run replays the same steps it would have
/// taken without the kill.
public final class FineTuner {
    public let member: PoolMemberConfig
    public let poolDir: URL
    public var progress: ((TrainingProgress) -> Void)?

    public init(member: PoolMemberConfig, poolDir: URL) {
        self.member = member
        self.poolDir = poolDir
    }

    var checkpointURL: URL { poolDir.appendingPathComponent("\(member.name).h5") }
    var stateURL: URL { poolDir.appendingPathComponent("\(member.name).state.h5") }
    var logURL: URL { poolDir.appendingPathComponent("\(member.name).log.jsonl") }

    /// Trains (or resumes) the member and writes its best-dev checkpoint.
    /// - Parameters:
    ///   - model: the initialised model (pretrained or random) with `num_labels` of the task.
    ///   - vocab: the tokenizer vocabulary stored into the checkpoint.
    ///   - resume: continue from `<name>.state.h5` when it exists.
    public func run(
        model: BertForSequenceClassification, baseConfig: CheckpointConfig, vocab: [String],
        doLowerCase: Bool, data: TaskData, resume: Bool
    ) throws -> MemberResult {
        let opts = member.training
        let start = Date()
        let params = model.namedParameters()
        let stepsPerEpoch = data.train.batchCount
        let totalSteps = stepsPerEpoch * opts.epochs
        let schedule = LinearWarmupDecay(
            totalSteps: totalSteps, warmupSteps: Int((Float(totalSteps) * opts.warmupFraction).rounded()),
            baseLR: opts.learningRate)
        let optimizer = AdamW(
            parameters: params.map { $0.tensor }, learningRate: opts.learningRate, weightDecay: opts.weightDecay,
            decay: model.weightDecayMask())

        let resuming = resume && FileManager.default.fileExists(atPath: stateURL.path)
        if !resuming { try? FileManager.default.removeItem(at: logURL) }
        let log = TrainingLog(path: logURL.path)
        let teacher = try member.distill.map { try Teacher.load($0, student: baseConfig, vocab: vocab) }
        var state = TrainingState(epochsDone: 0, stepInEpoch: 0, globalStep: 0, bestDev: -1, bestEpoch: -1)
        if resuming {
            state = try TrainingState.restore(from: stateURL, model: model, optimizer: optimizer)
            log.write("resume", ["global_step": state.globalStep, "epoch": state.epochsDone])
        }

        var config = baseConfig
        config.name = member.name
        config.maxLength = opts.maxLength ?? data.task.defaultMaxLength
        let tokensInEpoch = data.train.encodings.reduce(0) { $0 + $1.count }
        var meter = ThroughputMeter()
        while state.epochsDone < opts.epochs {
            let epoch = state.epochsDone
            let order = data.train.order(epoch: epoch, seed: opts.seed, shuffle: true)
            var lossSum: Float = 0, lossCount = 0
            while state.stepInEpoch < stepsPerEpoch {
                let lo = state.stepInEpoch * opts.batchSize
                let idx = Array(order[lo..<min(lo + opts.batchSize, order.count)])
                let batch = data.train.makeBatch(idx)
                let rng = SeededGenerator(seed: opts.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(state.globalStep))
                let logits = model.forward(batch.encoded, training: true, rng: rng)
                var loss = Tensor.crossEntropy(logits: logits, labels: batch.labels.map { Int32($0) })
                if let teacher {
                    let target = Tensor.withNoGrad { teacher.model.forward(batch.encoded, training: false, rng: rng) }
                    let kd = Tensor.distillationLoss(student: logits, teacher: target, temperature: teacher.config.temperature)
                    loss = loss * (1 - teacher.config.alpha) + kd * teacher.config.alpha
                }
                optimizer.zeroGrad()
                loss.backward()
                _ = clipGradNorm(params.map { $0.tensor }, maxNorm: opts.maxGradNorm)
                optimizer.learningRate = schedule.learningRate(at: state.globalStep)
                optimizer.step()
                state.stepInEpoch += 1
                state.globalStep += 1
                let l = loss.item
                lossSum += l
                lossCount += 1
                meter.add(tokens: batch.encoded.batch * batch.encoded.seqLen)
                let remaining = Double(totalSteps - state.globalStep)
                progress?(TrainingProgress(
                    model: member.name, epoch: epoch + 1, epochs: opts.epochs, step: state.globalStep,
                    totalSteps: totalSteps, loss: lossSum / Float(lossCount), tokensPerSecond: meter.tokensPerSecond,
                    etaSeconds: remaining * meter.secondsPerStep))
                if state.globalStep % 10 == 0 {
                    log.write("step", ["step": state.globalStep, "epoch": epoch + 1, "loss": Double(l),
                                       "lr": Double(optimizer.learningRate)])
                }
                if state.globalStep % opts.saveEvery == 0 {
                    try state.save(to: stateURL, model: model, optimizer: optimizer)
                }
            }
            let dev = Evaluation.accuracy(model: model, data: data.dev, batchSize: opts.evalBatchSize)
            state.epochsDone += 1
            state.stepInEpoch = 0
            log.write("epoch", ["epoch": epoch + 1, "dev_accuracy": dev, "train_loss": Double(lossSum / Float(max(lossCount, 1))),
                                "tokens_per_epoch": tokensInEpoch, "seconds": Date().timeIntervalSince(start)])
            var p = TrainingProgress(model: member.name, epoch: epoch + 1, epochs: opts.epochs, step: state.globalStep,
                                     totalSteps: totalSteps, loss: lossSum / Float(max(lossCount, 1)),
                                     tokensPerSecond: meter.tokensPerSecond, etaSeconds: Double(totalSteps - state.globalStep) * meter.secondsPerStep)
            p.devAccuracy = dev
            progress?(p)
            if dev > state.bestDev {
                state.bestDev = dev
                state.bestEpoch = epoch + 1
                config.devAccuracy = dev
                try Self.checkpoint(model: model, config: config, vocab: vocab, doLowerCase: doLowerCase).write(to: checkpointURL.path)
            }
            try state.save(to: stateURL, model: model, optimizer: optimizer)
        }

        // Test accuracy of the kept (best-dev) weights.
        let best = try ModelCheckpoint.read(from: checkpointURL.path)
        let kept = try BertForSequenceClassification.load(checkpoint: best)
        var final = try CheckpointConfig.decode(best.configJSON, path: checkpointURL.path)
        let test = data.test.count == 0 ? nil : Evaluation.accuracy(model: kept, data: data.test, batchSize: opts.evalBatchSize)
        final.testAccuracy = test
        try Self.checkpoint(model: kept, config: final, vocab: vocab, doLowerCase: doLowerCase).write(to: checkpointURL.path)
        let seconds = Date().timeIntervalSince(start)
        log.write("done", ["dev_accuracy": state.bestDev, "test_accuracy": test ?? -1, "best_epoch": state.bestEpoch, "seconds": seconds])
        return MemberResult(
            name: member.name, file: checkpointURL.path, devAccuracy: state.bestDev, testAccuracy: test,
            bestEpoch: state.bestEpoch, parameters: params.reduce(0) { $0 + $1.tensor.data.count }, seconds: seconds,
            config: final)
    }

    /// Packs a model, its config and vocabulary into the DESIGN §4 layout.
    public static func checkpoint(
        model: BertForSequenceClassification, config: CheckpointConfig, vocab: [String], doLowerCase: Bool
    ) -> ModelCheckpoint {
        var weights: [String: StoredTensor] = [:]
        for (name, t) in model.namedParameters() { weights[name] = StoredTensor(shape: t.shape, data: t.data) }
        return ModelCheckpoint(configJSON: config.jsonString(), weights: weights, vocab: vocab, doLowerCase: doLowerCase)
    }
}

/// Wall-clock tokens/s and s/step over a sliding window of recent steps.
struct ThroughputMeter {
    private var times: [(Date, Int)] = []
    mutating func add(tokens: Int) {
        times.append((Date(), tokens))
        if times.count > 50 { times.removeFirst() }
    }
    var tokensPerSecond: Double {
        guard times.count > 1 else { return 0 }
        let dt = times.last!.0.timeIntervalSince(times.first!.0)
        return dt > 0 ? Double(times.dropFirst().reduce(0) { $0 + $1.1 }) / dt : 0
    }
    var secondsPerStep: Double {
        guard times.count > 1 else { return 0 }
        return times.last!.0.timeIntervalSince(times.first!.0) / Double(times.count - 1)
    }
}
