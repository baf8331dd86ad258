import Foundation
import Testing

/// Issue 6: `fit-router` on a tiny two-member pool writes a router, a report with the lambda sweep,
/// and a plot; bad inputs give one clear sentence.
@Suite(.serialized) struct FitRouterTests {
    /// Trains the tiny task's pool in `dir/run`: the 2-layer `tiny` and the 1-layer 2Quad/Quad `one-layer`.
    /// `oneLayerExtra`: YAML lines added to `one-layer` (indented as its keys).
    static func trainPool(in dir: URL, epochs: Int, oneLayerExtra: String = "") throws {
        try TinyTask.write(to: dir, trainRows: 160)
        let yaml = TinyTask.config(epochs: epochs) + """

              - name: one-layer
                init: random
                vocab: vocab.txt
                layers: 1
                hidden: 32
                heads: 2
                intermediate: 64
                softmax: 2quad
                activation: quad
            """ + oneLayerExtra
        try yaml.write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let t = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--quiet"], cwd: dir)
        #expect(t.status == 0, "train-pool failed:\n\(t.stderr)")
    }

    @Test(.timeLimit(.minutes(4))) func fitsWritesAndReports() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try Self.trainPool(in: dir, epochs: 8)
        let r = try CLI.run(["fit-router", "--pool", "run", "--plot", "sweep.svg", "--json", "report.json", "--quiet"], cwd: dir)
        #expect(r.status == 0, "fit-router failed:\n\(r.stderr)")
        #expect(r.stdout.contains("routed (lambda") && r.stdout.contains("oracle router"), "\(r.stdout)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("report.json"))) as! [String: Any]
        let members = try #require(report["members"] as? [[String: Any]])
        #expect(members.map { $0["name"] as? String } == ["tiny", "one-layer"])
        #expect(report["feature_member"] as? String == "one-layer", "the cheaper member provides the features")
        let sweep = try #require(report["test_sweep"] as? [[String: Any]])
        #expect(sweep.count == 62 && (report["dev_sweep"] as? [Any])?.count == 62)
        let chosen = try #require(report["chosen"] as? [String: Any])
        #expect((chosen["histogram"] as? [Int])?.reduce(0, +) == 16)
        // The oracle is at least as accurate as any member, and no more expensive than the most expensive.
        let oracle = try #require(report["oracle_accuracy"] as? Double)
        #expect(members.allSatisfy { oracle >= ($0["test_accuracy"] as! Double) })
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/router.h5").path))
        let svg = try String(contentsOf: dir.appendingPathComponent("sweep.svg"), encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("one-layer"))
        if Python.hasH5py {
            let keys = try Python.run(["-c", "import h5py, json; f = h5py.File('\(dir.path)/run/router.h5', 'r'); "
                                        + "print(sorted(f['weights'].keys())); print(json.loads(f.attrs['config'])['models'])"])
            #expect(keys.contains("router.fc1.weight") && keys.contains("['tiny', 'one-layer']"), "\(keys)")
        }
        // `members` picks the pool members to route over (kept in pool order); names outside the pool and
        // fewer than two are refused in one sentence.
        func fit(members: String) throws -> CLIResult {
            try "members: \(members)\n".write(to: dir.appendingPathComponent("m.yaml"), atomically: true, encoding: .utf8)
            return try CLI.run(["fit-router", "--pool", "run", "--config", "m.yaml", "--out", "m.h5", "--json", "m.json", "--quiet"], cwd: dir)
        }
        let both = try fit(members: "[one-layer, tiny]")
        #expect(both.status == 0, "\(both.stderr)")
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("m.json"))) as! [String: Any]
        #expect((m["members"] as? [[String: Any]])?.map { $0["name"] as? String } == ["tiny", "one-layer"])
        let unknown = try fit(members: "[tiny, huge]")
        #expect(unknown.status != 0 && unknown.stderr.contains("members: 'huge' is not in"), "\(unknown.stderr)")
        let one = try fit(members: "[tiny]")
        #expect(one.status != 0 && one.stderr.contains("routing needs at least 2"), "\(one.stderr)")
        // --lambda fixes lambda: the chosen point is the test sweep's at that lambda, and the report says it was set.
        let point = try #require(sweep.first { ($0["lambda"] as? Double ?? 0) > 0.5 })
        let fixed = try #require(point["lambda"] as? Double)
        let set = try CLI.run(["fit-router", "--pool", "run", "--out", "l.h5", "--json", "l.json", "--lambda", "\(fixed)", "--quiet"], cwd: dir)
        #expect(set.status == 0, "\(set.stderr)")
        let l = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("l.json"))) as! [String: Any]
        #expect(l["lambda"] as? Double == fixed && l["lambda_set"] as? Bool == true && report["lambda_set"] == nil)
        let lChosen = try #require(l["chosen"] as? [String: Any])
        #expect(lChosen["histogram"] as? [Int] == point["histogram"] as? [Int] && lChosen["accuracy"] as? Double == point["accuracy"] as? Double)
    }

    /// A pool whose members use different fixed points (a 32-bit member at 12 fractional bits): export
    /// keeps the bundle but writes no public description (a deployment runs one fixed point), and
    /// secure-eval routes it with one session-wide --frac-bits, or says to pass it.
    @Test(.timeLimit(.minutes(4))) func mixedFixedPointsExportAndRouteWithOneFracBits() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try Self.trainPool(in: dir, epochs: 2, oneLayerExtra: "\n    ptq: {ring_bits: 32, frac_bits: 12}\n")
        #expect(try CLI.run(["fit-router", "--pool", "run", "--quiet"], cwd: dir).status == 0)
        let e = try CLI.run(["export", "--pool", "run", "--out", "bundle.h5"], cwd: dir)
        #expect(e.status == 0 && e.stdout.contains("content hash"), "export failed:\n\(e.stderr)")
        #expect(e.stderr.contains("no public description written") && e.stderr.contains("--frac-bits 12"), "\(e.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("bundle.public.json").path))
        try "the movie was good .\nthe movie was very awful .\n".write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        let base = ["secure-eval", "--bundle", "bundle.h5", "--text-file", "q.txt", "--routing", "reveal", "--insecure-test-seed", "3", "--quiet"]
        let refused = try CLI.run(base, cwd: dir)
        #expect(refused.status != 0 && refused.stderr.contains("pass --frac-bits"), "\(refused.stderr)")
        let r = try CLI.run(base + ["--frac-bits", "12", "--json", "r.json"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("r.json"))) as! [String: Any]
        let queries = try #require(report["queries"] as? [[String: Any]])
        #expect(queries.count == 2)
        #expect(queries.allSatisfy { $0["model"] as! String != $0["plaintext_model"] as! String
                                     || $0["prediction"] as! Int == $0["plaintext_prediction"] as! Int })
        // The routing emulated on the grid needs the one fixed point too, and is secure-eval's fixed-point reference.
        let predict = ["predict", "--bundle", "bundle.h5", "--text-file", "q.txt", "--fixed-point"]
        let notOne = try CLI.run(predict, cwd: dir)
        #expect(notOne.status != 0 && notOne.stderr.contains("pass --frac-bits"), "\(notOne.stderr)")
        let p = try CLI.run(predict + ["--frac-bits", "12", "--json", "p.json"], cwd: dir)
        #expect(p.status == 0, "\(p.stderr)")
        let fixed = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("p.json"))) as! [String: Any])["predictions"] as? [[String: Any]])
        #expect(fixed.map { $0["model"] as! String } == queries.map { $0["fixed_point_model"] as! String })
    }

    /// Issue 6 acceptance 2 and 3, issue 7's bundle: export, inspect, plaintext routing with `predict
    /// --bundle`, and `secure-eval --routing reveal|oblivious` over three processes: the same labels in
    /// both modes, equal to the plaintext routed pipeline's, routing decisions included.
    /// With both kinds of features: the [CLS] after the cheap member's first layer, and its logits (its whole
    /// forward, whose answer the routed pipeline reuses when the router picks it).
    @Test(.timeLimit(.minutes(5)), arguments: ["cls", "logits"]) func exportedBundleRoutesUnderMPC(features: String) throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try Self.trainPool(in: dir, epochs: 6)
        // A lambda that trades: the router file's config is what export copies.
        try "max_drop: 0.2\nfeatures: \(features)\n".write(to: dir.appendingPathComponent("r.yaml"), atomically: true, encoding: .utf8)
        let fit = try CLI.run(["fit-router", "--pool", "run", "--config", "r.yaml", "--json", "fit.json"], cwd: dir)
        #expect(fit.status == 0, "\(fit.stderr)")
        let fitted = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("fit.json"))) as! [String: Any]
        let e = try CLI.run(["export", "--pool", "run", "--out", "bundle.h5"], cwd: dir)
        #expect(e.status == 0 && e.stdout.contains("content hash"), "export failed:\n\(e.stderr)")
        let i = try CLI.run(["inspect", "bundle.h5", "--json", "inspect.json"], cwd: dir)
        #expect(i.status == 0 && i.stdout.contains("router: 2 members"), "inspect: \(i.stdout)\n\(i.stderr)")
        let info = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("inspect.json"))) as! [String: Any]
        #expect((info["content_hash"] as? String)?.count == 64 && info["best_member"] != nil && info["cost"] != nil)
        #expect((info["router"] as? [String: Any])?["features"] as? String == features)
        if features == "logits" {
            #expect(fit.stdout.contains("logits of one-layer") && i.stdout.contains("logits of one-layer"), "\(fit.stdout)\n\(i.stdout)")
            #expect(fitted["features"] as? String == "logits" && fitted["feature_layers"] as? Int == 1)
            // Routed costs: the router runs one-layer whole, so a query sent to tiny pays both and one sent to one-layer
            // pays nothing more; the members alone keep their own seconds, and the routed point pays the router.
            let m = try #require(fitted["members"] as? [[String: Any]])
            let own = Dictionary(uniqueKeysWithValues: m.map { ($0["name"] as! String, $0["test_seconds"] as! Double) })
            let chosen = try #require(fitted["chosen"] as? [String: Any])
            #expect(chosen["seconds"] as! Double >= own["one-layer"]! - 1e-12, "\(chosen), members alone \(own)")
            // (The tiny task's queries share one length bucket, so every query costs the same per member.)
            for point in try #require(fitted["test_sweep"] as? [[String: Any]]) {
                let toTiny = Double((point["histogram"] as! [Int])[0]) / 16
                #expect(abs((point["seconds"] as! Double) - own["one-layer"]! - toTiny * own["tiny"]!) < 1e-9, "\(point), members alone \(own)")
            }
        } else {
            #expect(fitted["features"] == nil)
        }

        let texts = dir.appendingPathComponent("q.txt")
        let test = try String(contentsOf: dir.appendingPathComponent("datasets/mr/test.tsv"), encoding: .utf8)
        try test.split(separator: "\n").dropFirst().map { $0.split(separator: "\t")[0] }.joined(separator: "\n")
            .write(to: texts, atomically: true, encoding: .utf8)
        let p = try CLI.run(["predict", "--bundle", "bundle.h5", "--text-file", "q.txt", "--json", "plain.json"], cwd: dir)
        #expect(p.status == 0, "predict --bundle failed:\n\(p.stderr)")
        let plain = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("plain.json"))) as! [String: Any])["predictions"] as? [[String: Any]])
        // The same routing emulated on the runtime's grid: secure-eval's fixed-point reference.
        let pf = try CLI.run(["predict", "--bundle", "bundle.h5", "--text-file", "q.txt", "--fixed-point", "--json", "fixed.json"], cwd: dir)
        #expect(pf.status == 0, "predict --bundle --fixed-point failed:\n\(pf.stderr)")
        let fixed = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("fixed.json"))) as! [String: Any])["predictions"] as? [[String: Any]])
        #expect(fixed.count == 16 && fixed.allSatisfy { $0["model"] is String && ($0["utilities"] as? [Double])?.count == 2 })
        var labels = [String: [Int]]()
        let names = ["tiny", "one-layer"]
        for mode in ["reveal", "oblivious"] {
            let r = try CLI.run(["secure-eval", "--bundle", "bundle.h5", "--text-file", "q.txt", "--routing", mode, "--json", "\(mode).json",
                                 "--insecure-test-seed", "3", "--quiet"], cwd: dir)
            #expect(r.status == 0, "secure-eval --routing \(mode) failed:\n\(r.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("\(mode).json"))) as! [String: Any]
            let queries = try #require(report["queries"] as? [[String: Any]]), summary = try #require(report["summary"] as? [String: Any])
            #expect(queries.count == 16)
            labels[mode] = queries.map { $0["prediction"] as! Int }
            #expect(queries.map { $0["plaintext_prediction"] as! Int } == plain.map { $0["label"] as! Int }, "secure-eval's reference is predict --bundle")
            #expect(queries.map { $0["plaintext_model"] as! String } == plain.map { $0["model"] as! String })
            // Secure and plaintext routing agree except on near-ties of the router's scores (fixed-point noise).
            let flipped = queries.filter { $0["model"] as! String != $0["plaintext_model"] as! String }
            if mode == "reveal" {
                #expect(flipped.allSatisfy { ($0["routing_margin"] as! Double) < 0.02 }, "routing disagreements that are not near-ties: \(flipped)")
            }
            #expect(flipped.count <= 2 && (summary["agreement_float"] as? Double ?? 0) >= 0.875, "\(mode): \(summary["agreement_float"] ?? "-")")
            // Where the routing agrees, the labels agree.
            #expect(queries.allSatisfy { $0["model"] as! String != $0["plaintext_model"] as! String
                                         || $0["prediction"] as! Int == $0["plaintext_prediction"] as! Int })
            #expect((summary["routing_histogram"] as? [String: Int])?.values.reduce(0, +) == 16)
            #expect((summary["router_seconds_mean"] as? Double ?? 0) > 0 && summary["baselines"] != nil)
            #expect(queries.map { $0["fixed_point_model"] as! String } == fixed.map { $0["model"] as! String }, "the fixed-point reference is predict --bundle --fixed-point")
            #expect(queries.map { $0["fixed_point_routed_prediction"] as! Int } == fixed.map { $0["label"] as! Int })
            if mode == "reveal" {
                #expect((summary["agreement_routing"] as? Double ?? 0) >= 0.875, "routing decisions: \(summary["agreement_routing"] ?? "-")")
                // Against the fixed-point emulation, only near-ties of a few ulps may go the other way.
                let off = try #require(summary["routing_disagreements_fixed"] as? [[String: Any]])
                #expect(off.allSatisfy { $0["kind"] as? String == "near-tie" }, "fixed-point routing disagreements: \(off)")
                #expect((summary["agreement_routing_fixed"] as? Double ?? 0) >= 0.875)
                labels["reveal-models"] = queries.map { names.firstIndex(of: $0["model"] as! String)! }
            }
        }
        // Oblivious runs every member and selects secretly: the same labels as reveal wherever reveal chose
        // the plaintext router's member (oblivious's choice is the same secret computation, same seed).
        #expect(labels["oblivious"] == labels["reveal"])
        // A single-model checkpoint cannot route.
        let single = try CLI.run(["secure-eval", "--bundle", "run/pool/tiny.h5", "--text-file", "q.txt", "--routing", "reveal"], cwd: dir)
        #expect(single.status != 0 && single.stderr.contains("needs a bundle with a router"), "\(single.stderr)")
    }

    /// `train-pool --crossfit K` labels every training example with each member's prediction by the fold
    /// that held it out, and `fit-router` adds those rows to dev's; a file for another split is refused.
    @Test(.timeLimit(.minutes(4))) func crossFittedTrainingLabelsJoinDev() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try Self.trainPool(in: dir, epochs: 3)
        // 3 folds: the tiny task's labels alternate, so 2 interleaved folds would each train on one class.
        let t = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--resume", "--crossfit", "3", "--quiet"], cwd: dir)
        #expect(t.status == 0, "train-pool --crossfit failed:\n\(t.stderr)")
        let url = dir.appendingPathComponent("run/crossfit.json")
        let labels = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let gold = try #require(labels["gold"] as? [Int]), predictions = try #require(labels["predictions"] as? [String: [Int]])
        #expect(gold.count == 160 && labels["folds"] as? Int == 3)
        #expect(Set(predictions.keys) == ["tiny", "one-layer"] && predictions.values.allSatisfy { $0.count == 160 && !$0.contains(-1) })
        // Each fold reports its held-out rows as its test split: the same rows (i % 3 == k) and predictions.
        for k in 0..<3 {
            let s = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("run/crossfit/fold\(k)/pool_summary.json"))) as! [String: Any]
            let rows = (0..<160).filter { $0 % 3 == k }
            for m in try #require(s["models"] as? [[String: Any]]) {
                let p = predictions[m["name"] as! String]!
                let accuracy = Double(rows.filter { p[$0] == gold[$0] }.count) / Double(rows.count)
                #expect(abs(accuracy - (m["test_accuracy"] as! Double)) < 1e-9, "fold \(k) \(m["name"]!): \(accuracy) vs \(m["test_accuracy"]!)")
            }
        }
        let r = try CLI.run(["fit-router", "--pool", "run", "--json", "report.json", "--quiet"], cwd: dir)
        #expect(r.status == 0 && r.stdout.contains("fitted on dev and 160 cross-fitted training examples"), "\(r.stdout)\n\(r.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("report.json"))) as! [String: Any]
        #expect(report["train_rows"] as? Int == 160 && report["train_features"] as? String == "fold")
        // The training rows' features come from the fold copies by default; the pool's own member gives others.
        try "train_features: final\n".write(to: dir.appendingPathComponent("f.yaml"), atomically: true, encoding: .utf8)
        let f = try CLI.run(["fit-router", "--pool", "run", "--config", "f.yaml", "--json", "final.json", "--quiet"], cwd: dir)
        #expect(f.status == 0 && f.stdout.contains("(features: final)"), "\(f.stdout)\n\(f.stderr)")
        let final = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("final.json"))) as! [String: Any]
        #expect(final["train_features"] as? String == "final")
        let sweep = { (r: [String: Any]) in (r["dev_sweep"] as! [[String: Any]]).map { $0["accuracy"] as! Double } }
        #expect(sweep(final) != sweep(report), "fold and final features gave the same out-of-fold sweep")
        try "train_features: latest\n".write(to: dir.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
        let badKey = try CLI.run(["fit-router", "--pool", "run", "--config", "bad.yaml"], cwd: dir)
        #expect(badKey.status != 0 && badKey.stderr.contains("'train_features' must be fold or final"), "\(badKey.stderr)")
        // Logit features of the fold copies: a different predictor, the same honest rows.
        try "features: logits\n".write(to: dir.appendingPathComponent("l.yaml"), atomically: true, encoding: .utf8)
        let l = try CLI.run(["fit-router", "--pool", "run", "--config", "l.yaml", "--json", "logits.json", "--quiet"], cwd: dir)
        #expect(l.status == 0, "\(l.stderr)")
        let logits = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("logits.json"))) as! [String: Any]
        #expect(logits["features"] as? String == "logits" && logits["train_rows"] as? Int == 160 && logits["train_features"] as? String == "fold")
        try "features: hidden\n".write(to: dir.appendingPathComponent("bf.yaml"), atomically: true, encoding: .utf8)
        let badFeatures = try CLI.run(["fit-router", "--pool", "run", "--config", "bf.yaml"], cwd: dir)
        #expect(badFeatures.status != 0 && badFeatures.stderr.contains("'features' must be cls or logits"), "\(badFeatures.stderr)")
        try "train_labels: false\n".write(to: dir.appendingPathComponent("r.yaml"), atomically: true, encoding: .utf8)
        #expect(try CLI.run(["fit-router", "--pool", "run", "--config", "r.yaml", "--json", "dev.json", "--quiet"], cwd: dir).status == 0)
        let devOnly = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("dev.json"))) as! [String: Any]
        #expect(devOnly["train_rows"] as? Int == 0)
        // A missing fold copy of the feature member is named, with the way out.
        let feature = try #require(report["feature_member"] as? String)
        let copy = dir.appendingPathComponent("run/crossfit/fold1/pool/\(feature).h5")
        try FileManager.default.moveItem(at: copy, to: dir.appendingPathComponent("moved.h5"))
        let gone = try CLI.run(["fit-router", "--pool", "run"], cwd: dir)
        #expect(gone.status != 0 && gone.stderr.contains("fold1/pool/\(feature).h5 not found") && gone.stderr.contains("train_features: final"),
                "\(gone.stderr)")
        try FileManager.default.moveItem(at: dir.appendingPathComponent("moved.h5"), to: copy)
        // Labels for another training split (one gold label changed) are refused in one sentence.
        var tampered = labels
        tampered["gold"] = [1 - gold[0]] + gold.dropFirst()
        try JSONSerialization.data(withJSONObject: tampered).write(to: url)
        let bad = try CLI.run(["fit-router", "--pool", "run"], cwd: dir)
        #expect(bad.status != 0 && bad.stderr.contains("crossfit.json was written for another task or training split"), "\(bad.stderr)")
        let one = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--crossfit", "1"], cwd: dir)
        #expect(one.status != 0 && one.stderr.contains("--crossfit needs at least 2 folds"), "\(one.stderr)")
    }

    @Test func badInputsAreOneSentence() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let missing = try CLI.run(["fit-router", "--pool", "nowhere"], cwd: dir)
        #expect(missing.status != 0 && missing.stderr.contains("pool_summary.json not found"), "\(missing.stderr)")
        try "hidden: 8\nlayers: 2\n".write(to: dir.appendingPathComponent("r.yaml"), atomically: true, encoding: .utf8)
        let bad = try CLI.run(["fit-router", "--pool", "nowhere", "--config", "r.yaml"], cwd: dir)
        #expect(bad.status != 0 && bad.stderr.contains("unknown key 'layers'"), "\(bad.stderr)")
        let net = try CLI.run(["fit-router", "--pool", "nowhere", "--net", "dsl"], cwd: dir)
        #expect(net.status != 0 && net.stderr.contains("--net must be none, lan or wan"), "\(net.stderr)")
        let lambda = try CLI.run(["fit-router", "--pool", "nowhere", "--lambda=-1"], cwd: dir)
        #expect(lambda.status != 0 && lambda.stderr.contains("--lambda must be a number >= 0"), "\(lambda.stderr)")
        let export = try CLI.run(["export", "--pool", "nowhere", "--out", "b.h5"], cwd: dir)
        #expect(export.status != 0 && export.stderr.contains("no such router file"), "\(export.stderr)")
    }
}

/// Issue 6's co-training option: `co-train` fine-tunes the tiny pool and a router together and writes
/// a pool that `export` bundles and `secure-eval` routes like a fit-router one.
@Suite(.serialized) struct CoTrainTests {
    @Test(.timeLimit(.minutes(5))) func coTrainedPoolExportsAndRoutesUnderMPC() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try FitRouterTests.trainPool(in: dir, epochs: 4)
        let c = try CLI.run(["co-train", "--pool", "run", "--out", "co", "--epochs", "2", "--max-drop", "0.2", "--json", "co.json", "--quiet"], cwd: dir)
        #expect(c.status == 0, "co-train failed:\n\(c.stderr)")
        #expect(c.stdout.contains("routed (lambda") && c.stdout.contains("oracle router"), "\(c.stdout)")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("co.json"))) as! [String: Any]
        #expect((report["members"] as? [[String: Any]])?.map { $0["name"] as? String } == ["tiny", "one-layer"])
        // The members changed (they were fine-tuned further) and the summary points at the new files.
        let before = try Data(contentsOf: dir.appendingPathComponent("run/pool/tiny.h5"))
        let after = try Data(contentsOf: dir.appendingPathComponent("co/pool/tiny.h5"))
        #expect(before != after)
        let e = try CLI.run(["export", "--pool", "co", "--out", "co.h5"], cwd: dir)
        #expect(e.status == 0, "export failed:\n\(e.stderr)")
        let test = try String(contentsOf: dir.appendingPathComponent("datasets/mr/test.tsv"), encoding: .utf8)
        try test.split(separator: "\n").dropFirst().map { $0.split(separator: "\t")[0] }.joined(separator: "\n")
            .write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["secure-eval", "--bundle", "co.h5", "--text-file", "q.txt", "--routing", "reveal", "--json", "r.json",
                             "--insecure-test-seed", "3", "--quiet"], cwd: dir)
        #expect(r.status == 0, "secure-eval failed:\n\(r.stderr)")
        let s = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("r.json"))) as! [String: Any]
        let summary = try #require(s["summary"] as? [String: Any])
        #expect((summary["agreement_routing"] as? Double ?? 0) >= 0.875 && (summary["agreement_float"] as? Double ?? 0) >= 0.875, "\(summary)")
        // Bad input: the output directory may not be the pool.
        let same = try CLI.run(["co-train", "--pool", "run", "--out", "run"], cwd: dir)
        #expect(same.status != 0 && same.stderr.contains("--out must differ"), "\(same.stderr)")
    }
}
