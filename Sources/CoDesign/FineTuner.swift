import Foundation
import Checkpoint
import MPC
import SecureInference
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
    /// Informational messages (the transfer set) for stderr.
    public var note: ((String) -> Void)?

    public init(member: PoolMemberConfig, poolDir: URL) {
        self.member = member
        self.poolDir = poolDir
    }

    var checkpointURL: URL { poolDir.appendingPathComponent("\(member.name).h5") }
    var stateURL: URL { poolDir.appendingPathComponent("\(member.name).state.h5") }
    var logURL: URL { poolDir.appendingPathComponent("\(member.name).log.jsonl") }

    /// Trains (or resumes) the member and writes its best-dev checkpoint.
    ///
    /// With `distill.stage1_epochs` > 0 the run first spends that many epochs on layer-wise
    /// distillation (`LayerDistillation`, no dev evaluation), then `epochs` task epochs;
    /// each stage has its own warm-up/decay schedule and fresh AdamW moments. With `qat`,
    /// the model trains (and is evaluated) with fake quantization; with `ptq` it trains in float
    /// and is evaluated with it; either way the checkpoint's `quantization` block records the
    /// ring and fixed point used.
    /// - Parameters:
    ///   - model: the initialised model (pretrained or random) with `num_labels` of the task.
    ///   - vocab: the tokenizer vocabulary stored into the checkpoint.
    ///   - resume: continue from `<name>.state.h5` when it exists.
    public func run(
        model: BertForSequenceClassification, baseConfig: CheckpointConfig, vocab: [String],
        doLowerCase: Bool, data taskData: TaskData, resume: Bool
    ) throws -> MemberResult {
        let opts = member.training
        let start = Date()
        // QAT trains and evaluates with fake quantization; PTQ trains in float and evaluates with it.
        let trainQuantization = member.qat?.fakeQuantization
        let evalQuantization = (member.qat ?? member.ptq)?.fakeQuantization
        model.quantization = trainQuantization
        func evaluate(_ m: BertForSequenceClassification, _ split: Batcher) -> Double {
            m.quantization = evalQuantization
            defer { m.quantization = trainQuantization }
            return Evaluation.accuracy(model: m, data: split, batchSize: opts.evalBatchSize)
        }
        let teacher = try member.distill.map { try Teacher.load($0, student: baseConfig, vocab: vocab) }
        var data = taskData
        var transferLogits: [[Float]] = []
        if let t = teacher, let file = t.config.transfer {
            let texts = try TransferSet.sample(file: file, count: t.config.transferSentences, seed: opts.seed &+ 0x7A5F)
            note?("\(member.name): the teacher labels \(texts.count) transfer sentences from \(file)")
            let transfer = TransferSet.labelled(texts, teacher: t.model, tokenizer: data.tokenizer, like: data.train)
            data.train = data.train.appending(transfer.examples)
            transferLogits = transfer.logits
        }
        let stage1Epochs = teacher?.config.stage1Epochs ?? 0
        let layerwise = try teacher.flatMap { t in
            stage1Epochs == 0 ? nil : try LayerDistillation(
                student: model.config, teacher: t.model.config, hiddenWeight: t.config.hiddenWeight,
                attentionWeight: t.config.attentionWeight, rng: SeededGenerator(seed: opts.seed &+ 0x5EED))
        }
        let penalty = try member.prune.map { try Self.gatePenalty($0, model: model, data: data, publicEmbedding: baseConfig.hasPublicEmbedding) }
        // A public embedding group and public layers stay frozen at the public model's values (ModelFactory.takePublicPrefix).
        let modelParams = model.namedParameters().filter { !ModelFactory.isFrozen($0.name, config: baseConfig) }
        let params = modelParams + (layerwise?.namedParameters() ?? []) + (model.gates?.namedParameters() ?? [])
        let stepsPerEpoch = data.train.batchCount
        let stage1Steps = stepsPerEpoch * stage1Epochs, taskSteps = stepsPerEpoch * opts.epochs
        let totalEpochs = stage1Epochs + opts.epochs, totalSteps = stage1Steps + taskSteps
        func schedule(_ steps: Int) -> LinearWarmupDecay {
            LinearWarmupDecay(totalSteps: steps, warmupSteps: Int((Float(steps) * opts.warmupFraction).rounded()),
                              baseLR: opts.learningRate)
        }
        let (stage1Schedule, taskSchedule) = (schedule(stage1Steps), schedule(taskSteps))
        let optimizer = AdamW(
            parameters: params.map { $0.tensor }, learningRate: opts.learningRate, weightDecay: opts.weightDecay,
            decay: params.map { !$0.name.hasSuffix(".bias") && !$0.name.contains("LayerNorm") && !$0.name.hasPrefix("gates.") })

        let resuming = resume && FileManager.default.fileExists(atPath: stateURL.path)
        if !resuming { try? FileManager.default.removeItem(at: logURL) }
        let log = TrainingLog(path: logURL.path)
        var state = TrainingState(epochsDone: 0, stepInEpoch: 0, globalStep: 0, bestDev: -1, bestEpoch: -1)
        if resuming {
            state = try TrainingState.restore(from: stateURL, parameters: params, optimizer: optimizer)
            log.write("resume", ["global_step": state.globalStep, "epoch": state.epochsDone])
        }

        var config = baseConfig
        config.name = member.name
        config.maxLength = opts.maxLength ?? data.task.defaultMaxLength
        if let q = member.qat ?? member.ptq {
            config.quantization = CheckpointConfig.Quantization(ringBits: q.ringBits, fracBits: q.fracBits, weightBits: q.weightBits)
        }
        let tokensInEpoch = data.train.encodings.reduce(0) { $0 + $1.count }
        var publicCache: PublicOutputCache?
        var meter = ThroughputMeter()
        while state.epochsDone < totalEpochs {
            let epoch = state.epochsDone
            let inStage1 = epoch < stage1Epochs
            if epoch == stage1Epochs && stage1Epochs > 0 && state.stepInEpoch == 0 {
                // Stage 2 starts from fresh moments, as a separate run would (TinyBERT).
                for (i, p) in params.enumerated() {
                    let zeros = [Float](repeating: 0, count: p.tensor.count)
                    optimizer.setMoments(index: i, m: zeros, v: zeros)
                }
                optimizer.stepCount = 0
            }
            let order = data.train.order(epoch: epoch, seed: opts.seed, shuffle: true)
            var lossSum: Float = 0, lossCount = 0
            while state.stepInEpoch < stepsPerEpoch {
                let lo = state.stepInEpoch * opts.batchSize
                let idx = Array(order[lo..<min(lo + opts.batchSize, order.count)])
                let batch = data.train.makeBatch(idx)
                let rng = SeededGenerator(seed: opts.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(state.globalStep))
                let loss: Tensor
                if inStage1, let teacher, let layerwise {
                    let target = Tensor.withNoGrad { teacher.model.trace(batch.encoded, training: false, rng: rng) }
                    loss = layerwise.loss(student: model.trace(batch.encoded, training: true, rng: rng), teacher: target,
                                          attentionMask: batch.encoded.attentionMask).total
                } else {
                    if publicCache == nil && model.config.publicLayerCount > 0 && model.gates == nil {
                        note?("\(member.name): computing the public layers' output\(teacher == nil ? "" : " and the teacher's logits") once for \(data.train.count) training examples")
                        let logits = teacher.map { t in Evaluation.logits(model: t.model, data: taskData.train, batchSize: 64) + transferLogits }
                        publicCache = PublicOutputCache(model: model, teacherLogits: logits, data: data.train)
                    }
                    let task = taskLoss(model: model, teacher: teacher, batch: batch, indices: idx, cache: publicCache, rng: rng)
                    if let penalty, let gates = model.gates {
                        let ramp = Float(state.globalStep - stage1Steps) / max(1, penalty.warmup * Float(taskSteps))
                        loss = task + penalty.cost.relativeCost(gates, config: model.config) * (penalty.lambda * min(1, ramp))
                    } else {
                        loss = task
                    }
                }
                optimizer.zeroGrad()
                loss.backward()
                _ = clipGradNorm(params.map { $0.tensor }, maxNorm: opts.maxGradNorm)
                optimizer.learningRate = inStage1
                    ? stage1Schedule.learningRate(at: state.globalStep)
                    : taskSchedule.learningRate(at: state.globalStep - stage1Steps)
                optimizer.step()
                state.stepInEpoch += 1
                state.globalStep += 1
                let l = loss.item
                lossSum += l
                lossCount += 1
                meter.add(tokens: batch.encoded.batch * batch.encoded.seqLen)
                let remaining = Double(totalSteps - state.globalStep)
                progress?(TrainingProgress(
                    model: member.name, epoch: epoch + 1, epochs: totalEpochs, step: state.globalStep,
                    totalSteps: totalSteps, loss: lossSum / Float(lossCount), tokensPerSecond: meter.tokensPerSecond,
                    etaSeconds: remaining * meter.secondsPerStep))
                if state.globalStep % 10 == 0 {
                    log.write("step", ["step": state.globalStep, "epoch": epoch + 1, "loss": Double(l),
                                       "lr": Double(optimizer.learningRate), "stage": inStage1 ? 1 : 2])
                }
                if state.globalStep % opts.saveEvery == 0 {
                    try state.save(to: stateURL, parameters: params, optimizer: optimizer)
                }
            }
            state.epochsDone += 1
            state.stepInEpoch = 0
            let trainLoss = lossSum / Float(max(lossCount, 1))
            var p = TrainingProgress(model: member.name, epoch: epoch + 1, epochs: totalEpochs, step: state.globalStep,
                                     totalSteps: totalSteps, loss: trainLoss, tokensPerSecond: meter.tokensPerSecond,
                                     etaSeconds: Double(totalSteps - state.globalStep) * meter.secondsPerStep)
            if inStage1 {
                // The classifier is not trained yet: no dev accuracy, no checkpoint.
                log.write("stage1_epoch", ["epoch": epoch + 1, "train_loss": Double(trainLoss),
                                           "seconds": Date().timeIntervalSince(start)])
                progress?(p)
            } else if let penalty, model.gates != nil {
                // Gated: the checkpoint is this epoch's pruned model, measured as pruned; the last epoch is kept.
                let (pruned, report) = StructurePruning.prune(model)
                let dev = evaluate(pruned, data.dev)
                let relative = Tensor.withNoGrad { penalty.cost.relativeCost(model.gates!, config: model.config).item }
                let after = try GateCostPenalty(config: pruned.config, groupSize: 1, bucketWeights: penalty.buckets,
                                                network: penalty.network, publicEmbedding: penalty.publicEmbedding).full
                log.write("epoch", ["epoch": epoch + 1, "dev_accuracy": dev, "train_loss": Double(trainLoss),
                                    "tokens_per_epoch": tokensInEpoch, "seconds": Date().timeIntervalSince(start),
                                    "expected_relative_cost": Double(relative), "pruned_seconds": after,
                                    "full_seconds": penalty.cost.full, "layer_heads": report.layerHeads,
                                    "layer_intermediate": report.layerIntermediate, "kept_layers": report.keptLayers,
                                    "rounded_layer_gates": report.roundedLayerGates])
                p.devAccuracy = dev
                p.note = "pruned: \(report.layerHeads.count) layers, heads \(report.layerHeads), widths \(report.layerIntermediate), "
                    + String(format: "%.3f s/query (full %.3f s, %@)", after, penalty.cost.full, penalty.networkName)
                progress?(p)
                state.bestDev = dev
                state.bestEpoch = epoch + 1 - stage1Epochs
                config.devAccuracy = dev
                config.architecture = pruned.config
                try Self.checkpoint(model: pruned, config: config, vocab: vocab, doLowerCase: doLowerCase).write(to: checkpointURL.path)
            } else {
                let dev = evaluate(model, data.dev)
                log.write("epoch", ["epoch": epoch + 1, "dev_accuracy": dev, "train_loss": Double(trainLoss),
                                    "tokens_per_epoch": tokensInEpoch, "seconds": Date().timeIntervalSince(start)])
                p.devAccuracy = dev
                progress?(p)
                if dev > state.bestDev {
                    state.bestDev = dev
                    state.bestEpoch = epoch + 1 - stage1Epochs
                    config.devAccuracy = dev
                    try Self.checkpoint(model: model, config: config, vocab: vocab, doLowerCase: doLowerCase).write(to: checkpointURL.path)
                }
            }
            try state.save(to: stateURL, parameters: params, optimizer: optimizer)
        }

        // Test accuracy of the kept (best-dev) weights.
        let best = try ModelCheckpoint.read(from: checkpointURL.path)
        let kept = try BertForSequenceClassification.load(checkpoint: best)
        var final = try CheckpointConfig.decode(best.configJSON, path: checkpointURL.path)
        let test = data.test.count == 0 ? nil : evaluate(kept, data.test)  // a QAT or PTQ model is measured on its ring
        final.testAccuracy = test
        try Self.checkpoint(model: kept, config: final, vocab: vocab, doLowerCase: doLowerCase).write(to: checkpointURL.path)
        let seconds = Date().timeIntervalSince(start)
        log.write("done", ["dev_accuracy": state.bestDev, "test_accuracy": test ?? -1, "best_epoch": state.bestEpoch, "seconds": seconds])
        return MemberResult(
            name: member.name, file: checkpointURL.path, devAccuracy: state.bestDev, testAccuracy: test,
            bestEpoch: state.bestEpoch, parameters: kept.parameters().reduce(0) { $0 + $1.count }, seconds: seconds,
            config: final)
    }

    /// The cost penalty of a `prune` member: attaches fresh gates to `model` and prices them with the
    /// cost model over the length buckets of the training texts.
    static func gatePenalty(_ p: PruneConfig, model: BertForSequenceClassification, data: TaskData,
                            publicEmbedding: Bool) throws -> ActivePenalty {
        let c = model.config
        for l in 0..<c.layers where c.intermediate(inLayer: l) % p.ffnGroup != 0 {
            throw PenaltyError("prune.ffn_group \(p.ffnGroup) does not divide layer \(l)'s feed-forward width \(c.intermediate(inLayer: l))")
        }
        model.gates = StructureGates(config: c, gateHeads: p.heads, gateFFN: p.ffn, gateLayers: p.layers, groupSize: p.ffnGroup,
                                     initialLogAlpha: p.initialLogAlpha, logAlphaScale: p.gateLRScale)
        var counts = [Int: Double]()
        for e in data.train.encodings { counts[LengthBuckets.bucket(for: e.count), default: 0] += 1 }
        let n = counts.values.reduce(0, +)
        let buckets = counts.mapValues { $0 / max(n, 1) }
        let network: NetworkProfile = p.network == "none" ? .none : p.network == "wan" ? .wan : .lan
        return ActivePenalty(cost: try GateCostPenalty(config: c, groupSize: p.ffnGroup, bucketWeights: buckets, network: network,
                                                       publicEmbedding: publicEmbedding),
                             lambda: p.lambda, warmup: p.warmup, buckets: buckets, network: network, networkName: p.network,
                             publicEmbedding: publicEmbedding)
    }

    struct ActivePenalty {
        var cost: GateCostPenalty
        var lambda: Float
        var warmup: Float
        var buckets: [Int: Double]
        var network: NetworkProfile
        var networkName: String
        var publicEmbedding: Bool
    }

    /// Stage-2 (task) loss: cross-entropy on the gold labels, mixed with the soft
    /// cross-entropy on the teacher's logits when there is a teacher. With `cache` (a member with public
    /// layers), the public output and the teacher's logits of the examples `indices` come from it.
    private func taskLoss(model: BertForSequenceClassification, teacher: Teacher?, batch: Batch, indices: [Int],
                          cache: PublicOutputCache?, rng: SeededGenerator) -> Tensor {
        let logits = cache.map { model.forward(fromPublic: $0.states(indices, seqLen: batch.seqLen), batch: batch.encoded, training: true, rng: rng) }
            ?? model.forward(batch.encoded, training: true, rng: rng)
        let loss = Tensor.crossEntropy(logits: logits, labels: batch.labels.map { Int32($0) })
        guard let teacher else { return loss }
        let target = cache?.teacher(indices) ?? Tensor.withNoGrad { teacher.model.forward(batch.encoded, training: false, rng: rng) }
        let kd = Tensor.distillationLoss(student: logits, teacher: target, temperature: teacher.config.temperature)
        return loss * (1 - teacher.config.alpha) + kd * teacher.config.alpha
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
public struct ThroughputMeter {
    private var times: [(Date, Int)] = []
    public init() {}
    public mutating func add(tokens: Int) {
        times.append((Date(), tokens))
        if times.count > 50 { times.removeFirst() }
    }
    public var tokensPerSecond: Double {
        guard times.count > 1 else { return 0 }
        let dt = times.last!.0.timeIntervalSince(times.first!.0)
        return dt > 0 ? Double(times.dropFirst().reduce(0) { $0 + $1.1 }) / dt : 0
    }
    public var secondsPerStep: Double {
        guard times.count > 1 else { return 0 }
        return times.last!.0.timeIntervalSince(times.first!.0) / Double(times.count - 1)
    }
}
