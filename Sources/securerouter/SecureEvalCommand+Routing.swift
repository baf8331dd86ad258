import ArgumentParser
import CoDesign
import CostModel
import Foundation
import MPC
import Router
import SecureInference
import TextData

extension SecureEvalCommand {
    /// `--routing reveal|oblivious`: the bundle's router and pool in one secure session, against the
    /// plaintext routed pipeline, each member alone in plaintext, and the oracle router.
    func runRouted(_ mode: RoutingMode) throws {
        guard PoolBundle.hasRouter(bundle) else {
            throw ValidationError("\(bundle) has no router; --routing \(mode.rawValue) needs a bundle written by export (fit-router, then export)")
        }
        guard batch == 1 else { throw ValidationError("--batch applies to --routing model:NAME only; routed queries run one at a time") }
        let (pipe, shapesRead, source) = try PoolBundle.pipeline(bundle)
        var shapes = shapesRead
        for j in shapes.indices { try fixedPoint.apply(to: &shapes[j], model: pipe.names[j]) }
        guard Set(shapes.map(\.fracBits)).count == 1 else {
            throw ValidationError("the pool members use different fractional bits (\(shapes.map(\.fracBits))); pass --frac-bits to run them in one session")
        }
        let tokenizer = try WordPieceTokenizer(tokens: source.vocab, doLowerCase: source.doLowerCase)
        let info = try PoolBundle.info(bundle)
        let best = info.bestMember.flatMap { pipe.names.firstIndex(of: $0) } ?? 0

        let (texts, gold) = try queries.load(outputs: shapes[0].classes, what: "the pool's models have")
        let (queries, buckets, truncated) = LengthBuckets.encode(texts, tokenizer: tokenizer, maxPosition: LengthBuckets.inputLimit(shapes))
        if truncated > 0, !progress.quiet { printErr("secure-eval: warning: \(truncated) of \(texts.count) texts truncated to \(buckets.max()!) tokens") }

        // Plaintext: the routed pipeline (the reference), every member alone, predicted costs.
        let decisions = try pipe.decide(queries, buckets: buckets)
        let alone = pipe.models.map { m in PaddedInference.logits(m, queries, buckets: buckets).map(Evaluation.argmax) }
        let network = NetworkProfile(name: net)!
        let predicted = shapes.map { s in
            buckets.map { CostModel.seconds(CostModel.total(s.predictedCost(seq: $0)), network: network) }
        }

        // The secure run.
        var runner = SecureEvaluation(executable: selfExecutable(), network: network)
        runner.receiveTimeout = timeout
        runner.insecureTestSeed = insecureTestSeed
        var program = RoutedBertProgram(names: pipe.names, members: shapes, router: pipe.router, mode: mode, buckets: buckets)
        program.selectThenCompute = !noSelectThenCompute
        if let p = program.problem { throw ValidationError("\(bundle): \(p)") }
        let line = ProgressLine(enabled: !progress.quiet)
        let started = Date()
        if !progress.quiet {
            printErr("secure-eval: \(texts.count) queries, --routing \(mode.rawValue) over \(pipe.names.joined(separator: ", ")) "
                     + "(router on the " + RouterFeatures.describe(layers: pipe.router.featureLayers, member: pipe.names[pipe.router.featureMember],
                                                          features: pipe.router.features) + ", lambda \(pipe.router.lambda)), --net \(net)")
        }
        let result = try runner.run(program, bundle: bundle, queries: queries) { done in
            let elapsed = Date().timeIntervalSince(started)
            let eta = done > 0 ? elapsed / Double(done) * Double(texts.count - done) : .nan
            line.update("secure-eval: \(done)/\(texts.count) queries, \(formatDuration(elapsed)) elapsed, ETA \(formatDuration(eta))")
        }
        line.finish("secure-eval: \(result.client.count)/\(texts.count) queries in \(formatDuration(Date().timeIntervalSince(started)))")

        // The member that answered each query: opened in reveal mode; in oblivious mode nobody learns
        // it, and the report uses the plaintext router's choice.
        let n = result.client.count
        let ran = (0..<n).map { result.client[$0].model ?? decisions[$0].member }
        // The fixed-point reference: the routed pipeline emulated on the runtime's grid, and the label of
        // the member that ran in that emulation (the same unless the decisions differ).
        let done = QueryFile(ids: Array(queries.ids.prefix(n)), lengths: Array(queries.lengths.prefix(n)))
        if !progress.quiet { printErr("secure-eval: emulating the routed pipeline in fixed point for the comparison") }
        let fixedDecisions = try pipe.decideFixedPoint(done, buckets: Array(buckets.prefix(n)), shapes: shapes)
        var emulations = [Int: FixedPointEmulation]()   // one per member that ran (it rounds the whole model)
        let emulated = (0..<n).map { i -> Int in
            let m = ran[i]
            if m == fixedDecisions[i].member { return fixedDecisions[i].label }
            let emulation = emulations[m] ?? FixedPointEmulation(weights: SecureBertWeights(model: pipe.models[m]), model: shapes[m])
            emulations[m] = emulation
            return Evaluation.argmax(emulation.logits(ids: queries.ids[i], length: queries.lengths[i]).map(Float.init))
        }
        var report = RoutedEvalReport(mode: mode, names: pipe.names, best: best, result: result, decisions: decisions, alone: alone,
                                      fixed: emulated, fixedDecisions: fixedDecisions, ran: ran, predicted: predicted, gold: gold, buckets: buckets,
                                      truncated: truncated, requested: texts.count, network: net)
        report.fracBits = shapes[0].fracBits
        report.units = mode == .oblivious ? program.obliviousUnits.map { $0.map { pipe.names[$0] } } : nil
        try finishReport(json, report.json, table: report.printTable, failure: result.failure, done: n, requested: texts.count)
    }
}

/// The report of a routed `secure-eval` (DESIGN §2 keys plus the routing ones).
struct RoutedEvalReport {
    var mode: RoutingMode
    var names: [String]
    /// The most accurate member on dev (the bundle's `best_member`).
    var best: Int
    var result: SecureEvaluation.Outcomes<RoutedOutcome>
    /// The plaintext routed pipeline's decision per query.
    var decisions: [RoutedPipeline.Decision]
    /// Each member alone, plaintext float labels per query: `alone[m][i]`.
    var alone: [[Int]]
    /// The fixed-point emulation's label of the member that ran.
    var fixed: [Int]
    /// The routed pipeline emulated in fixed point (`RoutedPipeline.decideFixedPoint`), per query.
    var fixedDecisions: [RoutedPipeline.Decision]
    /// The member that ran (reveal: opened; oblivious: the plaintext router's choice).
    var ran: [Int]
    /// Predicted seconds of every member at each query's bucket: `predicted[m][i]`.
    var predicted: [[Double]]
    var gold: [Int]?, buckets: [Int]
    var truncated: Int, requested: Int
    var network: String
    /// Oblivious mode: the members run together by select-then-compute (one list per unit).
    var units: [[String]]?
    /// The session's fractional bits (the router's grid).
    var fracBits = 16
    /// A routing flip against the fixed-point emulation whose emulated margin is below this many ulps of
    /// the router's grid is reported as a near-tie: the truncations' random ±1 ulp in the features and the
    /// MLP scatter the secure scores by a few ulps (the flips measured on `mr`: 0 to 2 ulps), with room.
    static let nearTieUlps = 32.0

    init(mode: RoutingMode, names: [String], best: Int, result: SecureEvaluation.Outcomes<RoutedOutcome>, decisions: [RoutedPipeline.Decision],
         alone: [[Int]], fixed: [Int], fixedDecisions: [RoutedPipeline.Decision], ran: [Int], predicted: [[Double]], gold: [Int]?,
         buckets: [Int], truncated: Int, requested: Int, network: String) {
        (self.mode, self.names, self.best, self.result, self.decisions, self.alone) = (mode, names, best, result, decisions, alone)
        (self.fixed, self.fixedDecisions, self.ran, self.predicted, self.gold, self.buckets) = (fixed, fixedDecisions, ran, predicted, gold, buckets)
        (self.truncated, self.requested, self.network) = (truncated, requested, network)
        labels = result.client.map { $0.query.label ?? -1 }
    }

    var n: Int { result.client.count }
    func online(_ c: CostSample) -> Int { c.bytesSent + c.bytesReceived }
    func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
    func fraction(_ hits: Int) -> Double { n == 0 ? 0 : Double(hits) / Double(n) }
    /// The secure labels (−1 where none was opened).
    let labels: [Int]
    /// Offline bytes of query `i`, both parties.
    func offline(_ i: Int) -> Int { result.client[i].query.cost.offlineBytes + (i < result.server.count ? result.server[i].query.cost.offlineBytes : 0) }

    var queries: [[String: Any]] {
        result.client.enumerated().map { i, o in
            var q: [String: Any] = [
                "index": i, "prediction": o.query.label ?? -1, "plaintext_prediction": decisions[i].label,
                "fixed_point_prediction": fixed[i], "model": names[ran[i]], "plaintext_model": names[decisions[i].member],
                "fixed_point_model": names[fixedDecisions[i].member], "fixed_point_routed_prediction": fixedDecisions[i].label,
                "fixed_point_routing_margin": fixedDecisions[i].margin,
                "bucket": buckets[i], "seconds": o.query.cost.seconds, "online_bytes": online(o.query.cost),
                "offline_bytes": offline(i),
                "rounds": o.query.cost.rounds, "router_seconds": o.router.seconds, "router_online_bytes": online(o.router),
                "router_rounds": o.router.rounds, "utilities": decisions[i].utilities, "routing_margin": decisions[i].margin,
            ]
            if let gold { q["gold"] = gold[i] }
            return q
        }
    }

    var summary: [String: Any] {
        let secs = result.client.map(\.query.cost.seconds)
        let routerSecs = result.client.map(\.router.seconds)
        var s: [String: Any] = [
            "n": n, "completed": n, "requested": requested, "truncated": truncated, "routing": mode.rawValue, "network": network,
            "agreement_float": fraction((0..<n).filter { labels[$0] == decisions[$0].label }.count),
            "agreement_fixed": fraction((0..<n).filter { labels[$0] == fixed[$0] }.count),
            "agreement_fixed_routed": fraction((0..<n).filter { labels[$0] == fixedDecisions[$0].label }.count),
            "latency_mean": mean(secs), "latency_p50": SecureEvalReport.percentile(secs, 0.5), "latency_p95": SecureEvalReport.percentile(secs, 0.95),
            "online_bytes_mean": mean(result.client.map { Double(online($0.query.cost)) }),
            "offline_bytes_mean": mean((0..<n).map { Double(offline($0)) }),
            "rounds_mean": mean(result.client.map { Double($0.query.cost.rounds) }),
            "routing_histogram": Dictionary(uniqueKeysWithValues: names.indices.map { m in (names[m], ran.filter { $0 == m }.count) }),
            "router_seconds_mean": mean(routerSecs),
            "router_online_bytes_mean": mean(result.client.map { Double(online($0.router)) }),
            "router_rounds_mean": mean(result.client.map { Double($0.router.rounds) }),
            "router_share": mean(secs) > 0 ? mean(routerSecs) / mean(secs) : 0,
            "best_member": names[best],
            "breakdown": breakdown,
        ]
        if mode == .reveal {
            s["agreement_routing"] = fraction((0..<n).filter { ran[$0] == decisions[$0].member }.count)
            // Each routing disagreement with the plaintext router's score margin: below 0.02 a near-tie
            // that the runtime's fixed-point noise (features, tanh spline) can flip.
            s["routing_disagreements"] = (0..<n).filter { ran[$0] != decisions[$0].member }.map {
                ["index": $0, "model": names[ran[$0]], "plaintext_model": names[decisions[$0].member], "routing_margin": decisions[$0].margin,
                 "kind": decisions[$0].margin < 0.02 ? "near-tie" : "disagreement"] as [String: Any]
            }
            // Against the routed pipeline emulated on the grid (round to nearest, ties to the lowest index):
            // a flip is a near-tie when the emulated margin is within the truncations' random scatter.
            s["agreement_routing_fixed"] = fraction((0..<n).filter { ran[$0] == fixedDecisions[$0].member }.count)
            let ulp = 1 / Double(1 << fracBits)
            s["routing_disagreements_fixed"] = (0..<n).filter { ran[$0] != fixedDecisions[$0].member }.map {
                ["index": $0, "model": names[ran[$0]], "fixed_point_model": names[fixedDecisions[$0].member],
                 "fixed_point_routing_margin": fixedDecisions[$0].margin, "margin_ulps": fixedDecisions[$0].margin / ulp,
                 "kind": fixedDecisions[$0].margin < Self.nearTieUlps * ulp ? "near-tie" : "disagreement"] as [String: Any]
            }
        } else {
            s["routing_source"] = "oblivious mode opens no choice: routing_histogram and model are the plaintext router's"
            s["oblivious_units"] = units ?? []
        }
        // Baselines on the same queries, from plaintext predictions and predicted seconds (--net's network).
        let bestSeconds = mean((0..<n).map { predicted[best][$0] })
        s["baselines"] = [
            "best_member": ["name": names[best], "predicted_seconds_mean": bestSeconds,
                            "plaintext_accuracy": gold.map { g in fraction((0..<n).filter { alone[best][$0] == g[$0] }.count) } as Any],
            "members": Dictionary(uniqueKeysWithValues: names.indices.map { m in
                (names[m], ["predicted_seconds_mean": mean((0..<n).map { predicted[m][$0] }),
                            "plaintext_accuracy": gold.map { g in fraction((0..<n).filter { alone[m][$0] == g[$0] }.count) } as Any])
            }),
            "oracle": oracle as Any,
            "routed_predicted_seconds_mean": mean((0..<n).map { predicted[ran[$0]][$0] }),
        ] as [String: Any]
        s["speedup_vs_best_member_predicted"] = mean(secs) > 0 ? bestSeconds / mean(secs) : 0
        if let gold {
            s["accuracy"] = fraction((0..<n).filter { labels[$0] == gold[$0] }.count)
            s["plaintext_accuracy"] = fraction((0..<n).filter { decisions[$0].label == gold[$0] }.count)
        }
        if let f = result.failure { s["failure"] = f }
        if let setup = result.setup { s["setup"] = ["seconds": setup.seconds, "bytes": setup.bytesSent + setup.bytesReceived, "rounds": setup.rounds] }
        return s
    }

    /// The best possible router on these queries (with gold labels): the cheapest member that is right,
    /// else the cheapest member; accuracy and predicted seconds.
    var oracle: [String: Double]? {
        guard let gold else { return nil }
        var right = 0, seconds = 0.0
        for i in 0..<n {
            let byCost = names.indices.sorted { predicted[$0][i] < predicted[$1][i] }
            if let m = byCost.first(where: { alone[$0][i] == gold[i] }) { right += 1; seconds += predicted[m][i] } else { seconds += predicted[byCost[0]][i] }
        }
        return ["accuracy": fraction(right), "predicted_seconds_mean": n == 0 ? 0 : seconds / Double(n)]
    }

    var breakdown: [String: [String: Double]] { SecureEvalReport.breakdown(result.client.map(\.query.sections)) }

    var json: [String: Any] { ["queries": queries, "summary": summary] }

    func printTable() {
        print("query\tbucket\tmodel\tsecure\tplain\tfixed\tgold\tseconds\trouter s\tonline\trounds")
        for (i, o) in result.client.enumerated() {
            print("\(i)\t\(buckets[i])\t\(names[ran[i]])\t\(o.query.label ?? -1)\t\(decisions[i].label)\t\(fixed[i])\t\(gold.map { String($0[i]) } ?? "-")\t"
                  + String(format: "%.3f\t%.3f", o.query.cost.seconds, o.router.seconds) + "\t\(formatBytes(online(o.query.cost)))\t\(o.query.cost.rounds)")
        }
        let s = summary
        func pct(_ k: String) -> String { (s[k] as? Double).map { String(format: "%.2f%%", 100 * $0) } ?? "-" }
        print("")
        print("routing \(mode.rawValue) over \(names.count) members, \(n) of \(requested) queries" + (truncated > 0 ? " (\(truncated) truncated)" : "") + ", --net \(network)")
        if let units, units.contains(where: { $0.count > 1 }) {
            print("select-then-compute: " + units.filter { $0.count > 1 }.map { $0.joined(separator: " + ") }.joined(separator: "; ") + " run as one selected model")
        }
        print("accuracy \(pct("accuracy")) (plaintext routed \(pct("plaintext_accuracy"))), agreement with the plaintext routed pipeline \(pct("agreement_float"))"
              + (mode == .reveal ? ", routing decisions \(pct("agreement_routing"))" : "") + ", with the chosen member's fixed point \(pct("agreement_fixed"))")
        print("against the routed pipeline emulated in fixed point: labels \(pct("agreement_fixed_routed"))"
              + (mode == .reveal ? ", routing decisions \(pct("agreement_routing_fixed"))" : ""))
        print(String(format: "latency mean %.3f s (p50 %.3f, p95 %.3f); router %.3f s (%.1f%% of it), %@ and %.0f rounds per query",
                     s["latency_mean"] as! Double, s["latency_p50"] as! Double, s["latency_p95"] as! Double, s["router_seconds_mean"] as! Double,
                     100 * (s["router_share"] as! Double), formatBytes(Int(s["online_bytes_mean"] as! Double)), s["rounds_mean"] as! Double))
        let hist = s["routing_histogram"] as! [String: Int]
        print("routing histogram: " + names.map { "\($0) \(hist[$0] ?? 0)" }.joined(separator: ", ") + (mode == .oblivious ? " (plaintext router's choice)" : ""))
        let base = s["baselines"] as! [String: Any]
        let bm = base["best_member"] as! [String: Any]
        print(String(format: "best member %@ alone: predicted %.3f s/query at --net %@ (%.2fx the routed measured mean)", names[best],
                     bm["predicted_seconds_mean"] as! Double, network, s["speedup_vs_best_member_predicted"] as! Double)
              + ((bm["plaintext_accuracy"] as? Double).map { String(format: ", plaintext accuracy %.2f%%", $0 * 100) } ?? "")
              + "; measure it with --routing model:\(names[best])")
        if let o = base["oracle"] as? [String: Double] {
            print(String(format: "oracle router: accuracy %.2f%%, predicted %.3f s/query", o["accuracy"]! * 100, o["predicted_seconds_mean"]!))
        }
    }
}
