import Foundation
import Checkpoint
import CoDesign
import Tensor
import TextData
import Transformer

/// `co-train` settings (see docs/router.md, "Co-training").
public struct CoTrainOptions: Sendable {
    /// Passes over the training split.
    public var epochs = 1
    public var batchSize = 32
    /// AdamW learning rates of the members (fine-tuning) and of the router (fresh).
    public var memberLearningRate: Float = 2e-5, routerLearningRate: Float = 1e-3
    /// Gumbel-softmax temperature of the gates.
    public var temperature: Float = 1
    /// Weights of the load-balance loss (`M·Σ_m P_m²`, 1 when balanced) and of the cost loss
    /// (`Σ_m P_m·cost_m / max cost`), P_m the batch's mean gate of member m.
    public var balanceWeight: Float = 0.01, costWeight: Float = 0.1
    /// Router MLP width and features, as `fit-router` (the [CLS] after `featureLayers` of the feature member).
    public var hidden = 64, featureLayers = 1
    public var featureMember: String?
    /// lambda is chosen on dev as `fit-router` does: the cheapest routing within `maxDrop` of the best member.
    public var maxDrop = 0.005
    public var network = "lan"
    public var seed: UInt64 = 7

    public init() {}
}

/// Co-training (the reference system's option): the pool's members and a router fine-tuned together
/// on the training split. Per batch, the router's gate logits `g_m = z_right − z_wrong` (the utility
/// network's layout, so the secure runtime runs the result unchanged) are perturbed with Gumbel noise
/// and softened, `w = softmax((g + G)/τ)`, and the loss is
///
///     Σ_m mean_b w_bm·CE_m(b)  +  α·M·Σ_m P_m²  +  β·Σ_m P_m·cost_m/max cost,    P_m = mean_b softmax(g/τ)_bm.
///
/// The task term trains each member mostly on the queries the router sends it and the router toward
/// the member with the lowest loss; the load-balance and cost terms depend on the gates only, so they
/// update only the router. The router's features come from the feature member's first layers without
/// gradient (they are the router's input, not its objective). Afterwards lambda is chosen on dev (held
/// out from both) over the gates read as utilities `σ(g_m)`, over both signs of lambda (the gates already
/// price the cost, so the best point may lie on the costlier side), and the co-trained members, the pool
/// summary and the router file are written like `train-pool` and `fit-router` outputs, for `export`.
public final class CoTrainer {
    public let poolDir: URL, outDir: URL
    public let dataDir: String
    public var options: CoTrainOptions
    public var note: ((String) -> Void)?
    public var progress: ((TrainingProgress) -> Void)?

    public init(poolDir: URL, outDir: URL, dataDir: String = "datasets", options: CoTrainOptions = CoTrainOptions()) {
        self.poolDir = poolDir
        self.outDir = outDir
        self.dataDir = dataDir
        self.options = options
    }

    /// Co-trains, writes `<out>/pool/<name>.h5`, `<out>/pool_summary.json` and `<out>/router.h5`, and
    /// returns the router config (with the report).
    public func run() throws -> RouterConfig {
        let o = options
        let pool = try LoadedPool.load(poolDir: poolDir, dataDir: dataDir, network: o.network)
        let train = try pool.read("train"), dev = try pool.read("dev"), test = try pool.read("test")
        let fi = try pool.featureMember(named: o.featureMember, layers: o.featureLayers)
        let members = pool.members, m = members.count
        let batchers = members.indices.map { pool.batcher(train, member: $0, batchSize: o.batchSize) }
        let maxCost = members.indices.map { pool.table[$0][32] ?? pool.table[$0].values.max()! }.max()!
        let cost = Tensor(shape: [m], data: members.indices.map { Float((pool.table[$0][32] ?? 0) / maxCost) })

        // The router, standardised on the initial training features.
        let net = UtilityNetwork(features: members[fi].shape.hidden, hidden: o.hidden, members: m, seed: o.seed)
        net.standardise(on: pool.features(train, member: fi, (o.featureLayers, .cls), split: "train", note: note))
        let memberParams = members.flatMap { $0.model.namedParameters() }
        let memberOpt = AdamW(parameters: memberParams.map(\.tensor), learningRate: o.memberLearningRate, weightDecay: 0.01,
                              decay: memberParams.map { !$0.name.hasSuffix(".bias") && !$0.name.contains("LayerNorm") })
        let routerParams = net.namedParameters()
        let routerOpt = AdamW(parameters: routerParams.map(\.tensor), learningRate: o.routerLearningRate, weightDecay: 0.01,
                              decay: routerParams.map { !$0.name.hasSuffix(".bias") })
        let steps = batchers[0].batchCount
        let schedule = LinearWarmupDecay(totalSteps: steps * o.epochs, warmupSteps: steps * o.epochs / 10, baseLR: o.memberLearningRate)
        let gumbel = SeededGenerator(seed: o.seed &+ 0x6B6)
        var meter = ThroughputMeter()
        var step = 0
        note?("co-training \(members.map(\.name).joined(separator: ", ")) and the router on \(train.count) training examples, "
              + "\(o.epochs) epoch(s); features: \(RouterFeatures.describe(layers: o.featureLayers, member: members[fi].name))")
        for epoch in 0..<o.epochs {
            let order = batchers[0].order(epoch: epoch, seed: o.seed, shuffle: true)
            var lossSum: Float = 0, gateSum = [Float](repeating: 0, count: m)
            for s in 0..<steps {
                let idx = Array(order[(s * o.batchSize)..<min((s + 1) * o.batchSize, order.count)])
                let rng = SeededGenerator(seed: o.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(step))
                let batches = batchers.map { $0.makeBatch(idx) }
                let b = idx.count
                let features = Tensor.withNoGrad { RouterFeatures.batch(model: members[fi].model, batches[fi].encoded, layers: o.featureLayers) }
                let g = net.gates(features)                                                             // [B, M]
                let noise = Tensor(shape: [b, m], data: (0..<(b * m)).map { _ in
                    let u = min(max(gumbel.nextFloat(), 1e-6), 1 - 1e-6)
                    return -logf(-logf(u))
                })
                let w = ((g + noise) * (1 / o.temperature)).softmax()
                var task: Tensor?
                for (j, member) in members.enumerated() {
                    let logits = member.model.forward(batches[j].encoded, training: true, rng: rng)
                    let column = w.matmul(Tensor(shape: [m, 1], data: (0..<m).map { $0 == j ? 1 : 0 })).reshaped([b])
                    let l = Tensor.weightedCrossEntropy(logits: logits, labels: batches[j].labels.map { Int32($0) }, weights: column)
                    task = task.map { $0 + l } ?? l
                }
                let p = (g * (1 / o.temperature)).softmax().mean(dim: 0)                                 // [M]
                let loss = task! + p.square().sum() * (o.balanceWeight * Float(m)) + (p * cost).sum() * o.costWeight
                memberOpt.zeroGrad(); routerOpt.zeroGrad()
                loss.backward()
                _ = clipGradNorm(memberParams.map(\.tensor), maxNorm: 1)
                memberOpt.learningRate = schedule.learningRate(at: step)
                memberOpt.step(); routerOpt.step()
                step += 1
                lossSum += loss.item
                for j in 0..<m { gateSum[j] += p.data[j] }
                meter.add(tokens: b * batches[0].encoded.seqLen * m)
                progress?(TrainingProgress(model: "co-train", epoch: epoch + 1, epochs: o.epochs, step: step, totalSteps: steps * o.epochs,
                                           loss: lossSum / Float(s + 1), tokensPerSecond: meter.tokensPerSecond,
                                           etaSeconds: Double(steps * o.epochs - step) * meter.secondsPerStep))
            }
            note?("epoch \(epoch + 1): mean gates " + zip(members, gateSum).map { String(format: "%@ %.2f", $0.name, $1 / Float(steps)) }.joined(separator: ", "))
        }

        // Honest evaluation and the choice of lambda on dev, as fit-router does (utilities σ(g)).
        let devCorrect = pool.correctness(dev, split: "dev", note: note), testCorrect = pool.correctness(test, split: "test", note: note)
        let final = net.folded()
        let devData = RoutingData(correct: devCorrect, costs: pool.costs(dev),
                                  utilities: final.utilities(pool.features(dev, member: fi, (o.featureLayers, .cls), split: "dev", note: note)))
        // Both signs: the gates already price cost (their cost loss), so the best point may favour costlier members.
        let (lambda, devSweep) = LambdaChoice.choose(devData, maxDrop: o.maxDrop, grid: LambdaChoice.signedGrid)
        let testData = RoutingData(correct: testCorrect, costs: pool.costs(test),
                                   utilities: final.utilities(pool.features(test, member: fi, (o.featureLayers, .cls), split: "test", note: note)))
        let config = pool.routerConfig(devData: devData, testData: testData, memberSeconds: RoutingData.meanColumns(testData.costs), lambda: lambda,
                                       devSweep: devSweep, featureMember: fi, (o.featureLayers, .cls), hidden: o.hidden, maxDrop: o.maxDrop,
                                       folds: 0, network: o.network, grid: LambdaChoice.signedGrid)

        // Outputs: co-trained members, their summary (no measurement: they changed), the router.
        let poolOut = outDir.appendingPathComponent("pool")
        try FileManager.default.createDirectory(at: poolOut, withIntermediateDirectories: true)
        var summary = pool.summary
        for (j, member) in members.enumerated() {
            var c = member.config
            c.devAccuracy = devData.member(j).accuracy
            try FineTuner.checkpoint(model: member.model, config: c, vocab: member.vocab, doLowerCase: member.doLowerCase)
                .write(to: poolOut.appendingPathComponent("\(member.name).h5").path)
            summary.models[j].file = "pool/\(member.name).h5"
            summary.models[j].devAccuracy = devData.member(j).accuracy
            summary.models[j].testAccuracy = testData.member(j).accuracy
            summary.models[j].measured = nil
            summary.models[j].predictedMean = nil
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(summary).write(to: outDir.appendingPathComponent("pool_summary.json"), options: .atomic)
        try RouterFitter.checkpoint(final, config: config).write(to: outDir.appendingPathComponent("router.h5").path)
        return config
    }
}

extension UtilityNetwork {
    /// Gate logits `[B, M]`: each member's `z_right − z_wrong` (differentiable).
    func gates(_ x: Tensor) -> Tensor {
        let n = x.shape[0]
        return logits(x).reshaped([n * members, 2]).matmul(Tensor(shape: [2, 1], data: [-1, 1])).reshaped([n, members])
    }
}
