import ArgumentParser
import Foundation
import MPC

extension BenchCommand {
    /// `bench secure`: the encrypted forward pass of a random encoder from hidden states (DESIGN §2).
    struct Secure: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypted forward pass of a random BERT encoder from hidden states, over three processes.",
            discussion: """
                Starts the dealer, the server (random weights at the scale of a trained encoder) and the client \
                (random S x H hidden states) as three processes on loopback. The server masks its weights once \
                (setup, reported apart); the parties receive the dealer's whole offline phase before the online \
                clock starts; then L post-LN encoder layers, a classifier on the first token and a secret argmax \
                run, and only the label (and, for the error measurement, the logits) is opened to the client.

                JSON keys: seconds (client's online wall time), online_bytes (both parties, both ways), \
                offline_bytes (dealer), rounds, max_abs_logit_error (against the float forward of the same \
                weights), plus setup_bytes, setup_seconds, offline_seconds, dealer_seconds and a per-section profile.

                Variants: exact = exp softmax and erf GeLU; mpcformer = 2Quad softmax and Quad GeLU (MPCFormer).
                """)

        @Option(help: "Encoder layers L.") var layers: Int = 2
        @Option(help: "Hidden size H.") var hidden: Int = 128
        @Option(help: "Attention heads A.") var heads: Int = 2
        @Option(help: "Intermediate (FFN) size I.") var inter: Int = 512
        @Option(help: "Sequence length S.") var seq: Int = 64
        @Option(help: "exact or mpcformer.") var variant = "exact"
        @Option(help: "Emulated network between the parties: none, lan or wan.") var net = "none"
        @Option(help: "Sessions to run (each reported; the summary is their mean, and the minimum seconds).") var runs = 1
        @Flag(name: .customLong("secure-channel"),
              help: "Authenticate and encrypt every link (fresh keys per run, AES-256-GCM records) as `party` deployments do; measures the channel's overhead.")
        var secureChannel = false
        @OptionGroup var json: JSONOutputOptions
        @OptionGroup var progress: ProgressOptions

        func validate() throws {
            for (n, v) in [("layers", layers), ("hidden", hidden), ("heads", heads), ("inter", inter), ("seq", seq), ("runs", runs)] where v < 1 {
                throw ValidationError("--\(n) must be at least 1")
            }
            guard hidden % heads == 0 else { throw ValidationError("--hidden (\(hidden)) must be a multiple of --heads (\(heads))") }
            guard ["exact", "mpcformer"].contains(variant) else { throw ValidationError("--variant must be exact or mpcformer, not '\(variant)'") }
            guard NetworkProfile(name: net) != nil else { throw ValidationError("--net must be none, lan or wan, not '\(net)'") }
        }

        func run() throws {
            let shape = EncoderShape(layers: layers, hidden: hidden, heads: heads, intermediate: inter, seq: seq, classes: 2,
                                     softmax: variant == "exact" ? .exact : .twoQuad, activation: variant == "exact" ? .gelu : .quad)
            let program = EncoderProgram(shape: shape, revealLogits: true)
            var launcher = SessionLauncher(executable: selfExecutable(), network: NetworkProfile(name: net)!,
                                           clientInputSeed: 1, serverInputSeed: 2)
            launcher.preprocess = true
            launcher.receiveTimeout = 600
            launcher.authenticate = secureChannel
            let reference = program.plaintextLogits(client: program.syntheticInputs(for: .client, seed: 1),
                                                    server: program.syntheticInputs(for: .server, seed: 2))
            var reports = [SecureBenchReport]()
            for r in 0..<runs {
                if !progress.quiet { printErr("bench secure: session \(r + 1)/\(runs): starting dealer, server and client (L=\(layers) H=\(hidden) A=\(heads) I=\(inter) S=\(seq), \(variant), --net \(net)\(secureChannel ? ", secure channel" : ""))") }
                let result: SessionResult<EncoderProgram.Prediction?>
                do { result = try launcher.run(program, timeout: .seconds(3600)) } catch { throw CommandFailure("secure session failed: \(error)") }
                guard let prediction = result.client.output ?? nil, let words = prediction.logits else {
                    throw CommandFailure("secure session failed: the client reported no prediction")
                }
                let logits = FixedPoint().decode(RingTensor(shape: [words.count], data: words))
                let report = SecureBenchReport(result, error: zip(logits, reference).map { abs($0 - $1) }.max() ?? 0)
                reports.append(report)
                if !progress.quiet { printErr(String(format: "  session %d: %.3f s online, %@ online, %d rounds", r + 1, report.seconds, formatBytes(report.onlineBytes), report.rounds)) }
            }
            let mean = reports.reduce(0.0) { $0 + $1.seconds } / Double(reports.count)
            let first = reports[0]
            if !json.usesStdout {
                print("bench secure L=\(layers) H=\(hidden) A=\(heads) I=\(inter) S=\(seq) variant=\(variant) net=\(net) (\(runs) session\(runs == 1 ? "" : "s"))")
                print(String(format: "  online:  %.3f s (min %.3f), %@, %d rounds", mean, reports.map(\.seconds).min()!, formatBytes(first.onlineBytes), first.rounds))
                print(String(format: "  offline: %@ from the dealer (dealer %.3f s, received in %.3f s)", formatBytes(first.offlineBytes), first.dealerSeconds, first.offlineSeconds))
                print(String(format: "  setup:   %@ (server weights, once per session), %.3f s", formatBytes(first.setupBytes), first.setupSeconds))
                print(String(format: "  max |logit error| vs float: %.2e", reports.map(\.maxAbsLogitError).max()!))
                print("  " + ["section", "seconds", "online", "rounds", "offline"].enumerated().map { pad($0.element, $0.offset == 0 ? -18 : 11) }.joined())
                for (name, c) in first.profile.sorted(by: { $0.value.seconds > $1.value.seconds }) {
                    print("  " + pad(name, -18) + pad(String(format: "%.3f", c.seconds), 11) + pad(formatBytes(c.bytesSent + c.bytesReceived), 11)
                          + pad(String(c.rounds), 11) + pad(formatBytes(c.offlineBytes), 11))
                }
            }
            var object = first.json
            object["seconds"] = mean
            object["seconds_min"] = reports.map(\.seconds).min()!
            object["runs"] = runs
            object["max_abs_logit_error"] = reports.map(\.maxAbsLogitError).max()!
            object["shape"] = ["layers": layers, "hidden": hidden, "heads": heads, "inter": inter, "seq": seq]
            object["variant"] = variant
            object["net"] = net
            object["secure_channel"] = secureChannel
            try json.write(object)
        }
    }
}

/// The figures of one `bench secure` session.
struct SecureBenchReport {
    var seconds: Double, onlineBytes: Int, offlineBytes: Int, rounds: Int, maxAbsLogitError: Double
    var setupBytes: Int, setupSeconds: Double, offlineSeconds: Double, dealerSeconds: Double
    /// Per section: the client's online seconds and rounds, both parties' bytes, the dealer's offline bytes.
    var profile: [String: CostSample]

    init(_ r: SessionResult<EncoderProgram.Prediction?>, error: Double) {
        seconds = r.client.seconds
        onlineBytes = r.client.onlineBytesSent + r.server.onlineBytesSent
        offlineBytes = r.dealer.offlineBytes
        rounds = r.client.rounds
        maxAbsLogitError = error
        setupBytes = (r.client.setup?.bytesSent ?? 0) + (r.server.setup?.bytesSent ?? 0)
        setupSeconds = r.client.setup?.seconds ?? 0
        offlineSeconds = max(r.client.offlineSeconds ?? 0, r.server.offlineSeconds ?? 0)
        dealerSeconds = r.dealer.seconds
        var profile = [String: CostSample]()
        for (name, c) in r.client.profile ?? [:] {
            var s = c
            s.bytesReceived = r.server.profile?[name]?.bytesSent ?? 0
            s.offlineBytes = r.dealer.profile?[name]?.offlineBytes ?? 0
            profile[name] = s
        }
        for (name, d) in r.dealer.profile ?? [:] where profile[name] == nil { profile[name] = CostSample(offlineBytes: d.offlineBytes) }
        self.profile = profile
    }

    var json: [String: Any] {
        [
            "seconds": seconds, "online_bytes": onlineBytes, "offline_bytes": offlineBytes, "rounds": rounds,
            "max_abs_logit_error": maxAbsLogitError, "setup_bytes": setupBytes, "setup_seconds": setupSeconds,
            "offline_seconds": offlineSeconds, "dealer_seconds": dealerSeconds,
            "profile": profile.mapValues { c in
                ["seconds": c.seconds, "online_bytes": c.bytesSent + c.bytesReceived, "rounds": c.rounds, "offline_bytes": c.offlineBytes] as [String: Any]
            },
        ]
    }
}

/// This process's executable (to start `mpc-worker` children).
func selfExecutable() -> URL {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
}

/// `s` padded to `width` characters (negative: left-aligned).
func pad(_ s: String, _ width: Int) -> String {
    let n = max(0, abs(width) - s.count)
    return width < 0 ? s + String(repeating: " ", count: n) : String(repeating: " ", count: n) + s
}

/// "12.3 MB" (decimal units, as network figures are quoted).
func formatBytes(_ n: Int) -> String {
    let v = Double(n)
    if v >= 1e9 { return String(format: "%.2f GB", v / 1e9) }
    if v >= 1e6 { return String(format: "%.1f MB", v / 1e6) }
    if v >= 1e3 { return String(format: "%.1f kB", v / 1e3) }
    return "\(n) B"
}
