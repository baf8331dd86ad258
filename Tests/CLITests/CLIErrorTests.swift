import Foundation
import Testing

/// Every mistake a user can make gets one clear line on stderr and a non-zero exit.
@Suite(.serialized) struct CLIErrorTests {
    /// Expects failure with a single-line message containing `fragment`.
    func expectFailure(_ r: CLIResult, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.status != 0, "expected a non-zero exit", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n").filter { !$0.isEmpty && !$0.hasPrefix("Usage:") && !$0.hasPrefix("  See") }
        #expect(lines.count == 1, "expected one error line, got:\n\(r.stderr)", sourceLocation: sourceLocation)
        #expect(r.stderr.contains(fragment), "stderr lacks '\(fragment)':\n\(r.stderr)", sourceLocation: sourceLocation)
        #expect(!r.stderr.contains("Fatal error"), "crashed:\n\(r.stderr)", sourceLocation: sourceLocation)
    }

    @Test func missingCheckpoint() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try "hello\n".write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["predict", "--checkpoint", "nope.h5", "--text-file", "q.txt"], cwd: dir)
        expectFailure(r, "nope.h5")
    }

    @Test func corruptCheckpoint() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try "hello\n".write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7) }).write(to: dir.appendingPathComponent("bad.h5"))
        let r = try CLI.run(["predict", "--checkpoint", "bad.h5", "--text-file", "q.txt"], cwd: dir)
        expectFailure(r, "bad.h5")
    }

    @Test func unknownYAMLKey() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        try TinyTask.config(extra: "  learning_rat: 0.1").write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--quiet"], cwd: dir)
        expectFailure(r, "learning_rat")
    }

    @Test func calibrationNeedsMeasureAndAReadableFile() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        try TinyTask.config().write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        expectFailure(try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--quiet", "--calibration", "cal.json"], cwd: dir),
                      "--calibration is used only with --measure")
        expectFailure(try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--quiet", "--measure", "2",
                                   "--calibration", "cal.json"], cwd: dir), "cannot read calibration file cal.json")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/pool/tiny.h5").path), "trained before failing")
    }

    @Test func malformedTSVLineNamesTheLine() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        let train = dir.appendingPathComponent("datasets/mr/train.tsv")
        var text = try String(contentsOf: train, encoding: .utf8)
        text += "a line without a label column\n"
        try text.write(to: train, atomically: true, encoding: .utf8)
        try TinyTask.config().write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--quiet"], cwd: dir)
        expectFailure(r, "train.tsv:98")
    }

    @Test func labelOutsideTheLabelSet() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        let dev = dir.appendingPathComponent("datasets/mr/dev.tsv")
        try (try String(contentsOf: dev, encoding: .utf8) + "a fine movie\t7\n").write(to: dev, atomically: true, encoding: .utf8)
        try TinyTask.config().write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--quiet"], cwd: dir)
        expectFailure(r, "7")
    }

    @Test func emptyTextLine() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        try "good movie\n\nbad movie\n".write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["tokenize", "--vocab", "vocab.txt", "--text-file", "q.txt"], cwd: dir)
        expectFailure(r, "q.txt:2")
    }

    @Test func unknownTaskInFetch() throws {
        let r = try CLI.run(["data", "fetch", "--task", "sst5"])
        expectFailure(r, "sst5")
    }
}
