import ArgumentParser
import Checkpoint
import CostModel
import Foundation
import MPC
import SecureInference

/// `securerouter cost`: the predicted MPC cost of a checkpoint per layer type and length bucket, and the
/// calibration of the compute model against measured sessions.
struct CostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost",
        abstract: "Predicted MPC cost (online bytes, rounds, seconds none/lan/wan) of a checkpoint, per layer type.",
        discussion: """
            Bytes and rounds come from the protocols' message sizes and are exact (they depend only on shapes). \
            Seconds are compute (a linear model of the local work: ring multiply-adds, DCF levels, words, \
            rounds, fitted to measured sessions) plus one one-way latency per round plus the busier \
            direction's bytes at the link bandwidth.

            With --calibrate, runs `bench secure`-style sessions (three processes, loopback) for a few encoder \
            shapes, fits the compute model to their per-layer-type profiles, prints the fit and writes it to \
            --out (use it later with --calibration FILE). Without a calibration file the built-in one \
            (fitted on this project's 2-core machine, docs/benchmarks.md) is used.
            """)

    @Option(help: "A single-model checkpoint (.h5) or a bundle member (PATH::models/NAME).") var checkpoint: String?
    @Option(help: "Sequence bucket; default: every bucket the model can use (16..256).") var seq: Int?
    @Option(help: "Queries stacked per computation.") var batch = 1
    @Option(help: "A calibration JSON written by --calibrate.") var calibration: String?
    @Flag(help: "Measure sessions on this machine and fit the compute model.") var calibrate = false
    @Option(help: "With --calibrate: where to write the fitted calibration.") var out: String?
    @OptionGroup var json: JSONOutputOptions
    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard calibrate || checkpoint != nil else { throw ValidationError("give --checkpoint FILE.h5, or --calibrate") }
        if let seq, seq < 1 { throw ValidationError("--seq must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func loadCalibration() throws -> Calibration { try Calibration.load(path: calibration) }

    func run() throws {
        if calibrate { return try runCalibration() }
        let spec = checkpoint!
        let parts = spec.components(separatedBy: "::")
        let loaded = try loadModel(path: parts[0], bundleMember: parts.count > 1 ? String(parts[1].split(separator: "/").last!) : nil,
                                   isBundle: parts.count > 1)
        let m: SecureBertShape
        do { m = try SecureBertWeights.shape(of: loaded.config) } catch { throw ValidationError("\(parts[0]): \(error)") }
        let cal = try loadCalibration()
        let buckets = seq.map { [$0] } ?? LengthBuckets.usable(maxPosition: m.maxPosition)
        var rows = [[String: Any]]()
        for s in buckets {
            let sections = m.predictedCost(seq: s, batch: batch)
            func entry(_ c: Cost) -> [String: Any] {
                ["online_bytes": c.bytes / batch, "rounds": c.rounds,
                 "seconds_none": CostModel.seconds(c, network: .none, calibration: cal),
                 "seconds_lan": CostModel.seconds(c, network: .lan, calibration: cal),
                 "seconds_wan": CostModel.seconds(c, network: .wan, calibration: cal)]
            }
            var row = entry(CostModel.total(sections))
            row["seq"] = s
            row["sections"] = sections.mapValues(entry)
            rows.append(row)
        }
        if !json.usesStdout {
            print("predicted MPC cost per query of \(spec) (L=\(m.layers)\(m.publicLayers.map { " after \($0) public layers" } ?? "") H=\(m.hidden) A=\(m.heads) I=\(m.intermediate), \(m.softmax.rawValue)/\(m.activation.rawValue)\(m.hasPublicEmbedding ? ", public embedding" : "")\(batch > 1 ? ", batch \(batch)" : ""))")
            print(["seq", "online", "rounds", "s none", "s lan", "s wan"].enumerated().map { pad($0.element, $0.offset == 0 ? -6 : 11) }.joined())
            for r in rows {
                print(pad("\(r["seq"]!)", -6) + pad(formatBytes(r["online_bytes"] as! Int), 11) + pad("\(r["rounds"]!)", 11)
                      + [r["seconds_none"], r["seconds_lan"], r["seconds_wan"]].map { pad(String(format: "%.3f", $0 as! Double), 11) }.joined())
            }
            if buckets.count == 1, let sections = rows[0]["sections"] as? [String: [String: Any]] {
                for (name, c) in sections.sorted(by: { ($0.value["seconds_none"] as! Double) > ($1.value["seconds_none"] as! Double) }) {
                    print("  " + pad(name, -16) + pad(formatBytes(c["online_bytes"] as! Int), 11) + pad("\(c["rounds"]!)", 9)
                          + [c["seconds_none"], c["seconds_lan"], c["seconds_wan"]].map { pad(String(format: "%.3f", $0 as! Double), 11) }.joined())
                }
            }
        }
        try json.write(["checkpoint": spec, "batch": batch, "calibration": cal.note, "buckets": rows])
    }

    /// Measures multi-query BERT sessions as `secure-eval` runs them (the dealer paced, each query's
    /// records read before its clock starts), fits the compute model on every query's sections, and
    /// reports the fit.
    func runCalibration() throws {
        func publicEmbedding(_ m: SecureBertShape) -> SecureBertShape {
            var m = m
            m.embedding = CheckpointConfig.publicEmbedding
            return m
        }
        func publicLayers(_ k: Int, _ m: SecureBertShape) -> SecureBertShape {
            var m = m
            m.publicLayers = k
            return m
        }
        let v = 30522
        let models: [(SecureBertShape, [Int], String)] = [
            (SecureBertShape(layers: 2, hidden: 384, heads: 12, intermediate: 1536, classes: 2, vocab: v, maxPosition: 512),
             [16, 32, 64, 16, 32, 64, 128], "L2 H384 exact"),
            (SecureBertShape(layers: 2, hidden: 384, heads: 12, intermediate: 1536, classes: 2, vocab: v, maxPosition: 512,
                             softmax: .twoQuad, activation: .quad), [16, 32, 64, 32, 64], "L2 H384 mpcformer"),
            (SecureBertShape(layers: 1, hidden: 256, heads: 4, intermediate: 1024, classes: 2, vocab: v, maxPosition: 512,
                             activation: .relu), [16, 32, 64, 32], "L1 H256 relu"),
            (SecureBertShape(layers: 3, hidden: 128, heads: 2, intermediate: 512, classes: 2, vocab: 8000, maxPosition: 512),
             [16, 64, 32, 64], "L3 H128 exact"),
            (SecureBertShape(layers: 1, hidden: 384, heads: 12, intermediate: 1536, classes: 2, vocab: v, maxPosition: 512,
                             softmax: .twoQuad, activation: .quad), [16, 32, 64, 16, 32], "L1 H384 mpcformer"),
            (publicEmbedding(SecureBertShape(layers: 1, hidden: 384, heads: 12, intermediate: 1536, classes: 2, vocab: v, maxPosition: 512,
                                             softmax: .twoQuad, activation: .quad)), [16, 32, 64, 16, 32, 64], "L1 H384 mpcformer, public embedding"),
            (publicLayers(2, publicEmbedding(SecureBertShape(layers: 1, hidden: 384, heads: 12, intermediate: 1536, classes: 2, vocab: v,
                                                             maxPosition: 512, softmax: .twoQuad, activation: .quad))),
             [16, 32, 64, 16, 32, 64], "L1 H384 mpcformer, 2 public layers"),
        ]
        var launcher = SessionLauncher(executable: selfExecutable(), network: .none, clientInputSeed: 1, serverInputSeed: 2)
        launcher.preprocess = true
        launcher.pacedDealer = true
        launcher.receiveTimeout = 600
        var samples = [(cost: Cost, seconds: Double)](), labels = [String]()
        // The client's public layers: plaintext work alone, timed apart from the protocols' fit.
        var client = [(macs: Double, seconds: Double)]()
        for (m, buckets, label) in models {
            if !progress.quiet { printErr("cost --calibrate: measuring \(label), buckets \(buckets)") }
            let r: SessionResult<[QueryOutcome]>
            do { r = try launcher.run(BertProgram(model: m, buckets: buckets), timeout: .seconds(1800)) } catch {
                throw CommandFailure("calibration session failed: \(error)")
            }
            for o in (r.client.output ?? nil)?.dropFirst() ?? [] {   // the first query warms up caches and threads
                let predicted = m.predictedCost(seq: buckets[o.index])
                for (name, c) in predicted {
                    guard let measured = o.sections[name] else { continue }
                    if c.clientMACs > 0 {
                        client.append((c.clientMACs, measured.seconds))
                        continue
                    }
                    samples.append((c, measured.seconds))
                    labels.append("\(label) S=\(buckets[o.index]) \(name)")
                }
            }
        }
        var fit = Calibration.fit(samples, note: "fitted by `cost --calibrate` on \(ProcessInfo.processInfo.hostName), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ISO8601DateFormatter().string(from: Date()))")
        // Least squares through the origin: seconds = perClientMAC · client MACs.
        fit.perClientMAC = client.map { $0.macs * $0.seconds }.reduce(0, +) / max(client.map { $0.macs * $0.macs }.reduce(0, +), 1)
        var worst = 0.0
        if !json.usesStdout {
            print(String(format: "per MAC %.3g s, per DCF level %.3g s, per word %.3g s, per round %.3g s, per table MAC %.3g s, per client MAC %.3g s",
                         fit.perMAC, fit.perDCFLevel, fit.perWord, fit.perRound, fit.perTableMAC, fit.perClientMAC))
            print(pad("section", -32) + pad("measured", 10) + pad("predicted", 11))
        }
        for (s, label) in zip(samples, labels) {
            let p = CostModel.seconds(s.cost, network: .none, calibration: fit)
            worst = max(worst, abs(p - s.seconds) / max(s.seconds, 1e-3))
            if !json.usesStdout { print(pad(label, -32) + pad(String(format: "%.4f", s.seconds), 10) + pad(String(format: "%.4f", p), 11)) }
        }
        if !json.usesStdout {
            for c in client {
                print(pad(String(format: "client public layers %.0fM MACs", c.macs / 1e6), -32) + pad(String(format: "%.4f", c.seconds), 10)
                      + pad(String(format: "%.4f", c.macs * fit.perClientMAC), 11))
            }
        }
        if let out {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try enc.encode(fit).write(to: URL(fileURLWithPath: out), options: .atomic)
        }
        try json.write(["per_mac": fit.perMAC, "per_dcf_level": fit.perDCFLevel, "per_word": fit.perWord, "per_round": fit.perRound,
                        "per_table_mac": fit.perTableMAC, "per_client_mac": fit.perClientMAC,
                        "worst_relative_error": worst, "samples": samples.count])
    }
}

extension Calibration {
    /// The calibration in the JSON file at `path` (written by `cost --calibrate`), or the built-in one for nil.
    static func load(path: String?) throws -> Calibration {
        guard let path else { return .default }
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read calibration file \(path)") }
        do { return try JSONDecoder().decode(Calibration.self, from: data) } catch {
            throw ValidationError("\(path) is not a calibration written by `cost --calibrate`: \(error)")
        }
    }
}
