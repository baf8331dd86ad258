import ArgumentParser
import CoDesign
import Foundation
import Router

/// `co-train`: the pool and a router fine-tuned together (issue 6's co-training option).
struct CoTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "co-train",
        abstract: "Fine-tune a trained pool and a router together (Gumbel-softmax gates; task + load-balance + cost loss).",
        discussion: """
            Reads <pool> (a train-pool output), fine-tunes every member and a fresh router on the training split: \
            per batch the router's gates, perturbed with Gumbel noise and softened (temperature --temperature), \
            weight each member's cross-entropy; a load-balance loss (--balance) and a cost loss (--cost-weight, \
            predicted secure seconds at bucket 32) act on the router only. Then chooses lambda on dev like \
            fit-router (--max-drop) and writes <out>/pool/<member>.h5, <out>/pool_summary.json and <out>/router.h5, \
            which `export --pool <out>` bundles. Prints the same table as fit-router; compare it with fit-router's \
            on the original pool (docs/router.md, "Co-training").
            """)

    @Option(help: "A train-pool output directory (with pool_summary.json).") var pool: String
    @Option(help: "Output directory (co-trained members, pool summary, router).") var out: String
    @Option(help: "Directory holding <task>/{train,dev,test}.tsv.") var dataDir = "datasets"
    @Option(help: "Passes over the training split.") var epochs = 1
    @Option(help: "Batch size.") var batchSize = 32
    @Option(help: "Learning rate of the members.") var lr: Float = 2e-5
    @Option(help: "Learning rate of the router.") var routerLr: Float = 1e-3
    @Option(help: "Gumbel-softmax temperature.") var temperature: Float = 1
    @Option(help: "Weight of the load-balance loss.") var balance: Float = 0.01
    @Option(help: "Weight of the cost loss.") var costWeight: Float = 0.1
    @Option(help: "Largest routed dev accuracy loss accepted when choosing lambda (0.005 = 0.5 points).") var maxDrop = 0.005
    @Option(help: "Network whose predicted seconds price the members: none, lan or wan.") var net = "lan"
    @Option(help: "Router features: the [CLS] after this many layers of the feature member (0: its mean public embedding).") var featureLayers = 1
    @Option(help: "The feature member (default: the cheapest).") var featureMember: String?
    @Option(help: "Seed of the batch order, dropout and Gumbel noise.") var seed: UInt64 = 7
    @OptionGroup var progressOptions: ProgressOptions
    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        guard epochs >= 1, batchSize >= 1, featureLayers >= 0 else { throw ValidationError("--epochs and --batch-size must be at least 1, --feature-layers at least 0") }
        guard lr > 0, routerLr > 0, temperature > 0 else { throw ValidationError("--lr, --router-lr and --temperature must be positive") }
        guard balance >= 0, costWeight >= 0 else { throw ValidationError("--balance and --cost-weight must be >= 0") }
        guard (0...1).contains(maxDrop) else { throw ValidationError("--max-drop must be a fraction in [0, 1], got \(maxDrop)") }
        guard ["none", "lan", "wan"].contains(net) else { throw ValidationError("--net must be none, lan or wan, not '\(net)'") }
        guard URL(fileURLWithPath: out).standardizedFileURL != URL(fileURLWithPath: pool).standardizedFileURL else {
            throw ValidationError("--out must differ from --pool (co-training writes new members)")
        }
    }

    func run() throws {
        var o = CoTrainOptions()
        (o.epochs, o.batchSize, o.memberLearningRate, o.routerLearningRate) = (epochs, batchSize, lr, routerLr)
        (o.temperature, o.balanceWeight, o.costWeight, o.maxDrop, o.network) = (temperature, balance, costWeight, maxDrop, net)
        (o.featureLayers, o.featureMember, o.seed) = (featureLayers, featureMember, seed)
        let trainer = CoTrainer(poolDir: URL(fileURLWithPath: pool), outDir: URL(fileURLWithPath: out), dataDir: dataDir, options: o)
        let quiet = progressOptions.quiet
        trainer.note = { if !quiet { printErr("co-train: " + $0) } }
        let line = ProgressLine(enabled: !quiet)
        trainer.progress = { p in
            line.update(String(format: "co-train: epoch %d/%d step %d/%d loss %.4f %.0f tok/s ETA %@", p.epoch, p.epochs, p.step, p.totalSteps,
                               p.loss, p.tokensPerSecond, formatDuration(p.etaSeconds)))
        }
        let cfg = try trainer.run()
        line.finish("co-train: done")
        if !json.usesStdout {
            FitRouterCommand.printReport(cfg.report)
            print("wrote \(out)/pool/, \(out)/pool_summary.json and \(out)/router.h5 (bundle them with export --pool \(out))")
        }
        try json.write(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(cfg.report)))
    }
}
