import Foundation
import Testing

/// CLI commands on the real pretrained MiniLM (fetched by scripts/test.sh).
@Suite struct PretrainedCLITests {
    static let modelDir = CLI.root.appendingPathComponent("checkpoints/pretrained/minilm-l6")
    static let available = FileManager.default.fileExists(atPath: modelDir.appendingPathComponent("model.safetensors").path)

    @Test(.enabled(if: available, "pretrained MiniLM missing: run `securerouter data fetch --task none`"))
    func tokenizePrintsBertIds() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try "The new movie is awesome\n".write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["tokenize", "--vocab", Self.modelDir.appendingPathComponent("vocab.txt").path, "--text-file", "q.txt"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == #"{"ids":[[101,1996,2047,3185,2003,12476,102]]}"#)
    }

    @Test(.enabled(if: available, "pretrained MiniLM missing: run `securerouter data fetch --task none`"))
    func importHFTruncatesAndInspectReportsIt() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let r = try CLI.run(["import-hf", "--model-dir", Self.modelDir.path, "--out", "l2.h5", "--layers", "2"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let i = try CLI.run(["inspect", "l2.h5", "--json", "-"], cwd: dir)
        #expect(i.status == 0, "\(i.stderr)")
        let models = (try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as! [String: Any])["models"] as! [[String: Any]]
        let arch = models[0]["architecture"] as! [String: Any]
        #expect(arch["layers"] as? Int == 2 && arch["hidden"] as? Int == 384 && models[0]["vocab_size"] as? Int == 30522)

        let bad = try CLI.run(["import-hf", "--model-dir", Self.modelDir.path, "--out", "l9.h5", "--layers", "9"], cwd: dir)
        #expect(bad.status != 0 && bad.stderr.contains("cannot keep 9 layers"), "\(bad.stderr)")
    }
}
