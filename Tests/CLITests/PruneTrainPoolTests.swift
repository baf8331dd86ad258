import Foundation
import Testing

/// Issue 5: a cost-penalized member trains with gates, is exported pruned (per-layer shapes), costs less,
/// and runs under MPC with the same answers as in plaintext and the cost the model predicts.
@Suite(.serialized) struct PruneTrainPoolTests {
    @Test(.timeLimit(.minutes(4))) func prunedMemberShrinksAndRunsSecurely() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        // Prune a fine-tuned model (a random one learns the task too late for gates to see what it needs).
        _ = try SecureEvalTests.trainTiny(in: dir)
        let yaml = """
            task: mr
            data_dir: datasets
            training: {epochs: 3, batch_size: 8, lr: 1.0e-3, max_length: 16}
            models:
              - name: tiny
                init: pretrained
                from: run/pool/tiny.h5
                prune: {lambda: 0.3, ffn_group: 16, gate_lr_scale: 300, net: lan}
            """
        try yaml.write(to: dir.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["train-pool", "--config", "p.yaml", "--out", "pruned", "--measure", "4"], cwd: dir)
        #expect(r.status == 0, "train-pool failed:\n\(r.stderr)")
        #expect(r.stderr.contains("pruned:"), "no pruning progress line:\n\(r.stderr)")
        let summary = try SecureEvalTests.json(dir.appendingPathComponent("pruned/pool_summary.json"))
        let model = try #require((summary["models"] as? [[String: Any]])?.first)
        let predicted = try #require(model["predicted"] as? [String: Any])
        // The unpruned tiny model costs 696,232 bytes at bucket 16 (TrainPoolTests); the pruned one less.
        let bytes = try #require(predicted["online_bytes"] as? Int)
        #expect(bytes < 696_232, "pruned model still costs \(bytes) bytes")

        // --measure: the pruned member ran under MPC (--net none and lan) and cost exactly the predicted bytes and rounds.
        let measured = try #require(model["measured"] as? [String: Any]), mean = try #require(model["predicted_mean"] as? [String: Any])
        #expect(measured["queries"] as? Int == 4 && mean["queries"] as? Int == 4)
        #expect(measured["online_bytes"] as? Double == mean["online_bytes"] as? Double && measured["rounds"] as? Double == mean["rounds"] as? Double,
                "measured \(measured), predicted \(mean)")
        #expect((measured["seconds_lan"] as? Double ?? 0) > (measured["seconds_none"] as? Double ?? 0))
        let i = try CLI.run(["inspect", "pruned/pool/tiny.h5", "--json", "-"], cwd: dir)
        let arch = try #require(((try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as? [String: Any])?["models"]
            as? [[String: Any]])?.first?["architecture"] as? [String: Any])
        let layers = try #require(arch["layers"] as? Int)
        let heads = arch["layer_heads"] as? [Int] ?? [Int](repeating: 2, count: layers)
        let widths = arch["layer_intermediate"] as? [Int] ?? [Int](repeating: 64, count: layers)
        #expect(layers < 2 || heads.reduce(0, +) < 4 || widths.reduce(0, +) < 128, "nothing was pruned: \(arch)")
        #expect(widths.allSatisfy { $0 % 16 == 0 }, "widths are whole groups: \(widths)")

        if Python.hasH5py {  // h5py + NumPy read the per-layer shapes and compute the same logits
            let diff = try TrainPoolTests.numpyLogitDifference(dir.appendingPathComponent("pruned/pool/tiny.h5").path, in: dir)
            #expect(diff <= 1e-4, "NumPy BERT vs predict on the pruned checkpoint: \(diff)")
        }

        let e = try CLI.run(["secure-eval", "--bundle", "pruned/pool/tiny.h5", "--task", "mr", "--split", "test", "--json", "out.json",
                             "--quiet"], cwd: dir)
        #expect(e.status == 0, "secure-eval failed:\n\(e.stderr)")
        let report = try SecureEvalTests.json(dir.appendingPathComponent("out.json"))
        let s = try #require(report["summary"] as? [String: Any])
        #expect(s["agreement_float"] as? Double == 1 && s["accuracy"] as? Double == s["plaintext_accuracy"] as? Double)
        let queries = try #require(report["queries"] as? [[String: Any]])
        #expect(queries.allSatisfy { $0["online_bytes"] as? Int == bytes }, "measured bytes differ from the prediction \(bytes)")
    }
}
