import Foundation
import Testing

/// Issue 6: `fit-router` on a tiny two-member pool writes a router, a report with the lambda sweep,
/// and a plot; bad inputs give one clear sentence.
@Suite(.serialized) struct FitRouterTests {
    @Test(.timeLimit(.minutes(4))) func fitsWritesAndReports() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir, trainRows: 160)
        let yaml = TinyTask.config(epochs: 8) + """

              - name: one-layer
                init: random
                vocab: vocab.txt
                layers: 1
                hidden: 32
                heads: 2
                intermediate: 64
                softmax: 2quad
                activation: quad
            """
        try yaml.write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let t = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--quiet"], cwd: dir)
        #expect(t.status == 0, "train-pool failed:\n\(t.stderr)")
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
    }
}
