import ArgumentParser
import Checkpoint
import CoDesign
import Foundation
import Router
import MPC
import SecureInference
import Tensor
import TextData
import Transformer

/// `secure-eval`: encrypted inference of a checkpoint over three processes, with the plaintext answers
/// and the cost of every query (DESIGN §2).
struct SecureEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secure-eval",
        abstract: "Encrypted inference of a checkpoint (dealer, server and client as three processes) with cost per query.",
        discussion: """
            The server process loads the checkpoint and masks its weights once (setup); the client process \
            tokenizes nothing itself here but receives the token ids of each query in a private file, pads \
            each query to a public length bucket (16, 32, 64, 128, 256; texts longer than the model's training \
            length, its max_length rounded up to a bucket, are truncated and counted), and secret-shares it. \
            Embedding, encoder, pooler, classifier and argmax run under MPC; only the label is opened, to the \
            client. The parties read each query's offline records from the dealer before its clock starts, and \
            the dealer deals a query only after both parties finished the previous one (all three share this \
            machine); `seconds` is the client's online wall time of the query.

            The same queries also run through the plaintext model in float and through the plaintext emulation \
            of the runtime's arithmetic (`predict --fixed-point`: same fixed point, approximations and padding), \
            so the report gives agreement with both.

            Stdout: one line per query and a summary table (or the JSON with --json -). JSON: \
            {"queries":[{"index","prediction","plaintext_prediction","fixed_point_prediction","gold","model",\
            "bucket","seconds","online_bytes","offline_bytes","rounds"}], "summary":{"n","accuracy",\
            "plaintext_accuracy","agreement_float","agreement_fixed","latency_mean","latency_p50",\
            "latency_p95","online_bytes_mean","offline_bytes_mean","rounds_mean","routing_histogram",\
            "router_seconds_mean","best_member","breakdown":{layer:{"seconds","online_bytes","rounds"}},\
            "setup","truncated","buckets","by_bucket","completed","disagreements","failure","fixed_point":{"frac_bits","ring_bits"}}} \
            (fixed_point: the session's encoding; ring_bits 32 when the linear layers ran on Z_2^32; disagreements: each query whose \
            secure label differs from the emulation's, with the emulated margin: below 0.05 a near-tie, above a \
            protocol failure). When a process fails mid-run, the report \
            of the finished queries is still written, and the command exits non-zero.
            """)

    @Option(help: "A single-model checkpoint (.h5) or a bundle written by export.") var bundle: String
    @OptionGroup var queries: QueryOptions
    @Option(help: "reveal (default for a bundle with a router: the router's choice is opened, only that member runs), oblivious (every member runs, the choice stays secret) or model:NAME (that member for every query; a single-model checkpoint: its own model).")
    var routing: String?
    @Option(help: "Emulated network between the parties: none, lan or wan.") var net = "none"
    @Flag(name: .customLong("no-select-then-compute"),
          help: "Oblivious routing: run every member separately even where members share a shape (default: such members run as one model whose weights the secret choice selects).")
    var noSelectThenCompute = false
    @Option(help: "Stack up to N consecutive queries of the same bucket into one secure computation (same bytes per query, the rounds of one query; seconds are the batch's).")
    var batch = 1
    @OptionGroup var fixedPoint: FixedPointOverrides
    @Flag(name: .customLong("reveal-logits"),
          help: "Diagnostic: also open each query's logits to the client (more than the label: use it on your own model) and report their distance from the fixed-point emulation's (`logits`, `fixed_point_logits`, summary `logit_difference_fixed`). Adds one opening per query.")
    var revealLogits = false
    @Option(help: "Seconds a party waits for a message before it gives up.") var timeout: Double = 120
    @Option(name: .customLong("insecure-test-seed"), help: .hidden) var insecureTestSeed: UInt64?
    @OptionGroup var json: JSONOutputOptions
    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        try queries.check()
        guard NetworkProfile(name: net) != nil else { throw ValidationError("--net must be none, lan or wan, not '\(net)'") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        try fixedPoint.check()
        if let r = routing, r != "reveal", r != "oblivious", !r.hasPrefix("model:") {
            throw ValidationError("--routing must be reveal, oblivious or model:NAME, not '\(r)'")
        }
    }

    func run() throws {
        Runtime.configureForTraining()
        guard FileManager.default.fileExists(atPath: bundle) else { throw ValidationError("no such checkpoint or bundle: \(bundle)") }
        // Which model: a bundle member (model:NAME) or the checkpoint's own model.
        let members = (try? ModelCheckpoint.listModels(inBundle: bundle)) ?? []
        var member: String?
        if let r = routing, let mode = RoutingMode(rawValue: r) {
            guard !members.isEmpty else { throw ValidationError("--routing \(r) needs a bundle with a router; \(bundle) is a single-model checkpoint") }
            return try runRouted(mode)
        }
        if !members.isEmpty {
            guard let r = routing, r.hasPrefix("model:") else {
                if PoolBundle.hasRouter(bundle) { return try runRouted(.reveal) }
                throw ValidationError("\(bundle) is a bundle of \(members.joined(separator: ", ")) without a router; choose one with --routing model:NAME")
            }
            member = String(r.dropFirst(6))
        }
        let loaded = try loadModel(path: bundle, bundleMember: member, isBundle: !members.isEmpty)
        let name = member ?? loaded.config.name ?? URL(fileURLWithPath: bundle).deletingPathExtension().lastPathComponent
        if let r = routing, r.hasPrefix("model:"), members.isEmpty, String(r.dropFirst(6)) != name {
            throw ValidationError("\(bundle) holds the single model '\(name)', not '\(r.dropFirst(6))'")
        }
        var shape: SecureBertShape
        do { shape = try SecureBertWeights.shape(of: loaded.config) } catch { throw ValidationError("\(bundle): \(error)") }
        try fixedPoint.apply(to: &shape, model: name)

        var (texts, gold) = try queries.load(outputs: loaded.config.architecture.numLabels, what: "the model has")
        // With --batch, queries of one bucket run together: order them by bucket (the report keeps each
        // query's original index).
        var (queries, buckets, truncated) = LengthBuckets.encode(texts, tokenizer: loaded.tokenizer, maxPosition: shape.inputLimit)
        var order = Array(texts.indices)
        if batch > 1 {
            order.sort { (buckets[$0], $0) < (buckets[$1], $1) }
            queries = QueryFile(ids: order.map { queries.ids[$0] }, lengths: order.map { queries.lengths[$0] })
            buckets = order.map { buckets[$0] }
            gold = gold.map { g in order.map { g[$0] } }
        }
        if truncated > 0, !progress.quiet { printErr("secure-eval: warning: \(truncated) of \(texts.count) texts truncated to \(buckets.max()!) tokens") }


        // The secure run.
        var runner = SecureEvaluation(executable: selfExecutable(), network: NetworkProfile(name: net)!)
        runner.receiveTimeout = timeout
        runner.insecureTestSeed = insecureTestSeed
        let line = ProgressLine(enabled: !progress.quiet)
        let started = Date()
        if !progress.quiet {
            printErr("secure-eval: \(texts.count) queries of \(name) (L=\(shape.layers) H=\(shape.hidden), \(shape.softmax.rawValue)/\(shape.activation.rawValue)), --net \(net): starting dealer, server and client")
        }
        let spec = member.map { "\(bundle)::models/\($0)" } ?? bundle
        let result = try runner.run(BertProgram(model: shape, buckets: buckets, revealLogits: revealLogits, batch: batch), checkpoint: spec, queries: queries) { done in
            let elapsed = Date().timeIntervalSince(started)
            let eta = done > 0 ? elapsed / Double(done) * Double(texts.count - done) : .nan
            line.update("secure-eval: \(done)/\(texts.count) queries, \(formatDuration(elapsed)) elapsed, ETA \(formatDuration(eta))")
        }
        line.finish("secure-eval: \(result.client.count)/\(texts.count) queries in \(formatDuration(Date().timeIntervalSince(started)))")

        // Plaintext answers on exactly the same padded ids, for the queries that ran: float, and the
        // emulation of the runtime's arithmetic.
        let done = result.client.count
        let float = PaddedInference.logits(loaded.model, QueryFile(ids: Array(queries.ids.prefix(done)), lengths: Array(queries.lengths.prefix(done))),
                                           buckets: Array(buckets.prefix(done))).map(Evaluation.argmax)
        let emulation = FixedPointEmulation(weights: SecureBertWeights(model: loaded.model), model: shape)
        let emulated = zip(queries.ids.prefix(done), queries.lengths.prefix(done)).map { emulation.logits(ids: $0, length: $1) }
        let fixed = emulated.map { Evaluation.argmax($0.map(Float.init)) }
        let report = SecureEvalReport(model: name, result: result, float: float, fixed: fixed, gold: gold, buckets: buckets,
                                      truncated: truncated, requested: texts.count, batch: batch, order: order,
                                      margins: emulated.map { l in let s = l.sorted(by: >); return s.count > 1 ? s[0] - s[1] : 0 },
                                      emulatedLogits: emulated,
                                      fixedPoint: ["frac_bits": shape.fracBits, "ring_bits": shape.narrowLinear ? 32 : 64])
        try finishReport(json, report.json, table: report.printTable, failure: result.failure, done: result.client.count,
                         requested: texts.count)
    }
}

/// The report of `secure-eval` (DESIGN §2 keys), built from the parties' per-query outcomes.
struct SecureEvalReport {
    var model: String
    var result: SecureEvaluation.Result
    var float: [Int], fixed: [Int], gold: [Int]?, buckets: [Int]
    var truncated: Int, requested: Int, batch: Int
    /// Original index of each query in session order.
    var order: [Int]
    /// Gap between the two largest emulated logits of each query: a secure label that differs where this
    /// is tiny is a near-tie flipped by the protocol's rounding noise, not a failure.
    var margins: [Double]
    /// The emulation's logits of each query (reported next to the secure ones with `--reveal-logits`).
    var emulatedLogits: [[Double]] = []
    /// The session's fixed point (`frac_bits`; `ring_bits` 32: the linear layers on Z_2^32), empty if mixed.
    var fixedPoint: [String: Int] = [:]

    var n: Int { result.client.count }

    /// Per query, max |secure − emulated logit|, for the queries whose logits were opened.
    var logitDifferences: [Double] {
        result.client.indices.compactMap { i in
            result.client[i].logits.map { l in zip(l, emulatedLogits[i]).map { abs($0 - $1) }.max() ?? 0 }
        }
    }

    func onlineBytes(_ o: QueryOutcome) -> Int { o.cost.bytesSent + o.cost.bytesReceived }
    func offlineBytes(_ i: Int) -> Int { result.client[i].cost.offlineBytes + (i < result.server.count ? result.server[i].cost.offlineBytes : 0) }

    static func percentile(_ v: [Double], _ p: Double) -> Double {
        guard !v.isEmpty else { return 0 }
        let s = v.sorted()
        return s[min(s.count - 1, Int((p * Double(s.count - 1)).rounded()))]
    }

    func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
    func fraction(_ hits: Int) -> Double { n == 0 ? 0 : Double(hits) / Double(n) }

    var queries: [[String: Any]] {
        result.client.enumerated().map { i, o in
            var q: [String: Any] = ["index": order[i], "prediction": o.label ?? -1, "plaintext_prediction": float[i],
                                    "fixed_point_prediction": fixed[i], "model": model, "bucket": buckets[i],
                                    "seconds": o.cost.seconds, "online_bytes": onlineBytes(o), "offline_bytes": offlineBytes(i),
                                    "rounds": o.cost.rounds, "batch": o.batch]
            if let gold { q["gold"] = gold[i] }
            if let l = o.logits { q["logits"] = l; q["fixed_point_logits"] = emulatedLogits[i] }
            return q
        }.sorted { ($0["index"] as! Int) < ($1["index"] as! Int) }
    }

    /// Per layer type: mean seconds, online bytes and rounds per query.
    var breakdown: [String: [String: Double]] { Self.breakdown(result.client.map(\.sections)) }

    /// Mean seconds, online bytes and rounds per query of each section over `queries`' section costs.
    static func breakdown(_ queries: [[String: CostSample]]) -> [String: [String: Double]] {
        var sums = [String: CostSample]()
        for q in queries { for (k, v) in q { sums[k] = (sums[k] ?? CostSample()) + v } }
        let d = Double(max(queries.count, 1))
        return sums.mapValues { ["seconds": $0.seconds / d, "online_bytes": Double($0.bytesSent + $0.bytesReceived) / d, "rounds": Double($0.rounds) / d] }
    }

    var summary: [String: Any] {
        let labels = result.client.map { $0.label ?? -1 }
        let secs = result.client.map(\.cost.seconds)
        var s: [String: Any] = [
            "n": n, "completed": n, "requested": requested, "truncated": truncated,
            "agreement_float": fraction(labels.indices.filter { labels[$0] == float[$0] }.count),
            "agreement_fixed": fraction(labels.indices.filter { labels[$0] == fixed[$0] }.count),
            "latency_mean": mean(secs), "latency_p50": Self.percentile(secs, 0.5), "latency_p95": Self.percentile(secs, 0.95),
            "online_bytes_mean": mean(result.client.map { Double(onlineBytes($0)) }),
            "offline_bytes_mean": mean(labels.indices.map { Double(offlineBytes($0)) }),
            "rounds_mean": mean(result.client.map { Double($0.cost.rounds) }),
            "routing_histogram": [model: n], "router_seconds_mean": 0.0, "best_member": model,
            "breakdown": breakdown, "buckets": Dictionary(grouping: buckets.prefix(n), by: { "\($0)" }).mapValues(\.count),
            "batch": batch, "fixed_point": fixedPoint,
            "batching": batch == 1 ? "one query at a time, all in one session (weights masked once)"
                : "up to \(batch) consecutive queries of a bucket stacked into one computation; seconds and rounds are per batch, bytes per query",
        ]
        s["by_bucket"] = Dictionary(grouping: result.client.indices, by: { buckets[$0] }).reduce(into: [String: Any]()) { out, kv in
            let q = kv.value.map { result.client[$0] }
            out["\(kv.key)"] = ["n": q.count, "latency_mean": mean(q.map(\.cost.seconds)),
                                "online_bytes_mean": mean(q.map { Double(onlineBytes($0)) }),
                                "offline_bytes_mean": mean(kv.value.map { Double(offlineBytes($0)) }),
                                "rounds_mean": mean(q.map { Double($0.cost.rounds) })] as [String: Any]
        }
        if let setup = result.setup {
            s["setup"] = ["seconds": setup.seconds, "bytes": setup.bytesSent + setup.bytesReceived, "rounds": setup.rounds]
        }
        if let gold {
            s["accuracy"] = fraction(labels.indices.filter { labels[$0] == gold[$0] }.count)
            s["plaintext_accuracy"] = fraction(labels.indices.filter { float[$0] == gold[$0] }.count)
        }
        if let f = result.failure { s["failure"] = f }
        let diffs = logitDifferences
        if !diffs.isEmpty {
            s["logit_difference_fixed"] = ["max": diffs.max()!, "mean": mean(diffs), "p95": Self.percentile(diffs, 0.95)]
        }
        // Every disagreement with the emulation, with its emulated margin (near-tie or protocol failure).
        s["disagreements"] = labels.indices.filter { labels[$0] != fixed[$0] }.map {
            ["index": order[$0], "prediction": labels[$0], "fixed_point_prediction": fixed[$0], "fixed_point_margin": margins[$0],
             "kind": margins[$0] < 0.05 ? "near-tie" : "protocol failure"] as [String: Any]
        }
        return s
    }

    var json: [String: Any] { ["queries": queries, "summary": summary] }

    func printTable() {
        print("query\tbucket\tsecure\tfloat\tfixed\tgold\tseconds\tonline\trounds")
        for (i, o) in result.client.enumerated() {
            print("\(order[i])\t\(buckets[i])\t\(o.label ?? -1)\t\(float[i])\t\(fixed[i])\t\(gold.map { String($0[i]) } ?? "-")\t"
                  + String(format: "%.3f", o.cost.seconds) + "\t\(formatBytes(onlineBytes(o)))\t\(o.cost.rounds)")
        }
        let s = summary
        func pct(_ k: String) -> String { (s[k] as? Double).map { String(format: "%.2f%%", 100 * $0) } ?? "-" }
        print("")
        print("model \(model): \(n) of \(requested) queries" + (truncated > 0 ? " (\(truncated) truncated)" : ""))
        print("accuracy \(pct("accuracy")) (plaintext \(pct("plaintext_accuracy"))), agreement with float \(pct("agreement_float")), with fixed point \(pct("agreement_fixed"))")
        print(String(format: "latency mean %.3f s, p50 %.3f s, p95 %.3f s; online %@ and %.0f rounds per query; offline %@",
                     s["latency_mean"] as! Double, s["latency_p50"] as! Double, s["latency_p95"] as! Double,
                     formatBytes(Int(s["online_bytes_mean"] as! Double)), s["rounds_mean"] as! Double,
                     formatBytes(Int(s["offline_bytes_mean"] as! Double))))
        if let byBucket = s["by_bucket"] as? [String: [String: Any]], byBucket.count > 1 {
            for (b, v) in byBucket.sorted(by: { Int($0.key)! < Int($1.key)! }) {
                print("  bucket \(b): \(v["n"]!) queries, " + String(format: "%.3f s", v["latency_mean"] as! Double)
                      + ", \(formatBytes(Int(v["online_bytes_mean"] as! Double))), " + String(format: "%.0f rounds", v["rounds_mean"] as! Double))
            }
        }
        if let d = s["logit_difference_fixed"] as? [String: Double] {
            print(String(format: "secure vs fixed-point logits: max |difference| %.2e, mean %.2e, p95 %.2e", d["max"]!, d["mean"]!, d["p95"]!))
        }
        for d in (s["disagreements"] as? [[String: Any]]) ?? [] {
            print("  disagreement: query \(d["index"]!) secure \(d["prediction"]!), fixed point \(d["fixed_point_prediction"]!) (emulated margin "
                  + String(format: "%.4f", d["fixed_point_margin"] as! Double) + ": \(d["kind"]!))")
        }
        print("per query, by layer type:")
        for (k, v) in breakdown.sorted(by: { $0.value["seconds"]! > $1.value["seconds"]! }) {
            print("  " + pad(k, -16) + String(format: "%8.3f s  ", v["seconds"]!) + pad(formatBytes(Int(v["online_bytes"]!)), 10)
                  + String(format: "  %6.1f rounds", v["rounds"]!))
        }
    }
}
