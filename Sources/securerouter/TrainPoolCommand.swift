import ArgumentParser
import CoDesign
import CostModel
import Foundation
import Tensor

struct TrainPoolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-pool",
        abstract: "Train every model of a pool config on its task.",
        discussion: """
            Writes <out>/pool/<model>.h5 (the best-dev epoch's weights, DESIGN §4 layout),
            <out>/pool/<model>.log.jsonl (one JSON record per logged step and epoch) and
            <out>/pool_summary.json. A resumable state <model>.state.h5 is saved every
            `save_every` steps; after a kill, rerun with --resume to continue from it.

            With --crossfit K the pool is then trained K more times, fold k on the
            training rows i % K != k (in <out>/crossfit/fold<k>), and every member's
            prediction on each training example, by the fold that held it out, is
            written to <out>/crossfit.json: honest correctness labels on train, which
            fit-router then adds to dev's (docs/router.md). It costs about one more
            training of the pool; with --resume, finished pool and fold members are skipped.
            See configs/*.yaml and docs/training.md for the config keys.
            """)

    @Option(help: "YAML pool config (see configs/).")
    var config: String

    @Option(help: "Output directory (default: runs/<config file name>).")
    var out: String?

    @Flag(help: "Continue an interrupted run: skip finished members, resume the interrupted one from its last saved step.")
    var resume = false

    @Option(help: ArgumentHelp("After training, run each member's first N test sentences under MPC (three processes, --net none and lan) and record `measured` and `predicted_mean` in the summary.", valueName: "N"))
    var measure: Int?
    @Option(help: ArgumentHelp("With --measure: predict seconds with this calibration (written by `cost --calibrate` on this machine) instead of the built-in one.", valueName: "FILE"))
    var calibration: String?

    @Option(help: ArgumentHelp("Also cross-fit the pool in K folds on train (router labels; see above).", valueName: "K"))
    var crossfit: Int?

    @OptionGroup var progressOptions: ProgressOptions
    @OptionGroup var json: JSONOutputOptions

    func run() throws {
        Runtime.configureForTraining()
        let pool = try PoolConfig.load(path: config)
        let outDir = out ?? "runs/" + URL(fileURLWithPath: config).deletingPathExtension().lastPathComponent
        let trainer = PoolTrainer(config: pool, outDir: URL(fileURLWithPath: outDir))
        let line = ProgressLine(enabled: !progressOptions.quiet)
        trainer.note = { if !progressOptions.quiet { printErr("train-pool: " + $0) } }
        if calibration != nil && measure == nil { throw ValidationError("--calibration is used only with --measure N") }
        if let n = measure {
            guard n >= 1 else { throw ValidationError("--measure must be at least 1, got \(n)") }
            var m = PoolMeasurement(executable: selfExecutable(), count: n)
            m.calibration = try Calibration.load(path: calibration)
            m.progress = { line.update($0) }
            trainer.measurement = m
        }
        trainer.progress = { p in
            if let dev = p.devAccuracy {
                line.finish(String(format: "%@ epoch %d/%d: train loss %.4f, dev accuracy %.2f%%",
                                   p.model, p.epoch, p.epochs, p.loss, dev * 100) + (p.note.map { "; " + $0 } ?? ""))
            } else {
                line.update(String(format: "%@ epoch %d/%d step %d/%d loss %.4f %.0f tok/s ETA %@",
                                   p.model, p.epoch, p.epochs, p.step, p.totalSteps, p.loss, p.tokensPerSecond,
                                   formatDuration(p.etaSeconds)))
            }
        }
        if let k = crossfit, k < 2 { throw ValidationError("--crossfit needs at least 2 folds, got \(k)") }
        let summary = try trainer.run(resume: resume)
        if let k = crossfit {
            let labels = try PoolCrossFit(config: pool, outDir: URL(fileURLWithPath: outDir), folds: k)
                .run(resume: resume, progress: trainer.progress, note: trainer.note)
            if !progressOptions.quiet { printErr("train-pool: wrote \(outDir)/\(CrossFitLabels.fileName) (\(labels.gold.count) training examples, \(k) folds)") }
        }
        if !json.usesStdout {
            print("task \(summary.task): \(summary.models.count) model(s) in \(outDir)/pool")
            print("model".padding(toLength: 20, withPad: " ", startingAt: 0) + "   params    dev%   test%  best epoch")
            for m in summary.models {
                print(m.name.padding(toLength: 20, withPad: " ", startingAt: 0)
                      + String(format: " %9d  %6.2f  %6.2f  %d", m.params, m.devAccuracy * 100, (m.testAccuracy ?? .nan) * 100, m.bestEpoch))
            }
        }
        let data = try JSONEncoder().encode(summary)
        try json.write(try JSONSerialization.jsonObject(with: data))
    }
}
