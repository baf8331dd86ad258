import Checkpoint
import Foundation
import Testing

/// train-pool end to end on a tiny synthetic task: checkpoint, summary, log, predict, interop, resume.
@Suite(.serialized) struct TrainPoolTests {
    /// Trains the tiny pool once in `dir` and returns the checkpoint path.
    func trainTiny(in dir: URL, epochs: Int = 2) throws -> String {
        try TinyTask.write(to: dir)
        try TinyTask.config(epochs: epochs).write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--quiet"], cwd: dir)
        #expect(r.status == 0, "train-pool failed:\n\(r.stderr)")
        return dir.appendingPathComponent("run/pool/tiny.h5").path
    }

    @Test func summaryLogAndPredictAgree() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let ckpt = try trainTiny(in: dir)
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("run/pool_summary.json"))) as! [String: Any]
        #expect(summary["task"] as? String == "mr")
        let model = (summary["models"] as! [[String: Any]])[0]
        let dev = model["dev_accuracy"] as! Double
        #expect(model["file"] as? String == "pool/tiny.h5")
        #expect((model["params"] as! Int) > 0)
        // The cost model's prediction for a query at the bucket of max_length 16 (bytes as secure-eval measures them;
        // the last layer computes the [CLS] row alone and the splines open their input once for three products:
        // 658,280 bytes before either).
        let predicted = try #require(model["predicted"] as? [String: Any])
        #expect(predicted["seq"] as? Int == 16 && predicted["online_bytes"] as? Int == 299_304 && predicted["rounds"] as? Int == 134, "\(predicted)")
        #expect((predicted["seconds_lan"] as? Double ?? 0) > 0)

        // The log has one record per epoch and a final one.
        let log = try String(contentsOfFile: dir.appendingPathComponent("run/pool/tiny.log.jsonl").path, encoding: .utf8)
        #expect(log.split(separator: "\n").filter { $0.contains("\"event\":\"epoch\"") }.count == 2)
        #expect(log.contains("\"event\":\"done\""))

        // predict on the dev sentences reproduces the summary's dev accuracy (the kept weights are the best-dev ones).
        let devRows = try String(contentsOf: dir.appendingPathComponent("datasets/mr/dev.tsv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { $0.split(separator: "\t") }
        try devRows.map { String($0[0]) }.joined(separator: "\n").appending("\n")
            .write(to: dir.appendingPathComponent("dev.txt"), atomically: true, encoding: .utf8)
        let p = try CLI.run(["predict", "--checkpoint", ckpt, "--text-file", "dev.txt", "--json", "-"], cwd: dir)
        #expect(p.status == 0, "\(p.stderr)")
        let preds = (try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as! [String: Any])["predictions"] as! [[String: Any]]
        let right = zip(preds, devRows).filter { ($0.0["label"] as! Int) == Int($0.1[1])! }.count
        #expect(abs(Double(right) / Double(devRows.count) - dev) < 1e-9)
    }

    @Test func missingAndMisshapenTensorsAreRefused() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let ckpt = try trainTiny(in: dir, epochs: 1)
        try "good movie\n".write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        var c = try ModelCheckpoint.read(from: ckpt)
        let name = "bert.encoder.layer.1.output.dense.weight"
        let saved = c.weights[name]!
        c.weights[name] = nil
        try c.write(to: dir.appendingPathComponent("missing.h5").path)
        c.weights[name] = StoredTensor(shape: [saved.shape[1], saved.shape[0]], data: saved.data)
        try c.write(to: dir.appendingPathComponent("shape.h5").path)
        for (file, fragment) in [("missing.h5", name), ("shape.h5", name)] {
            let r = try CLI.run(["predict", "--checkpoint", file, "--text-file", "q.txt"], cwd: dir)
            #expect(r.status != 0)
            #expect(r.stderr.contains(fragment) && r.stderr.contains(file), "\(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        }
    }

    @Test(.enabled(if: Python.hasH5py, "python3 with h5py and numpy is needed for the interop check"))
    func numpyBertReadsTheCheckpointWithTheSameLogits() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let ckpt = try trainTiny(in: dir, epochs: 1)
        let maxDiff = try Self.numpyLogitDifference(ckpt, in: dir)
        #expect(maxDiff <= 1e-4, "max |logit difference| \(maxDiff)")
    }

    /// Max |logit difference| between `predict` and the NumPy BERT reading `ckpt` with h5py, on three sentences.
    static func numpyLogitDifference(_ ckpt: String, in dir: URL) throws -> Double {
        let texts = ["the movie was very good .", "awful plot", "a sad , poor movie"]
        try texts.joined(separator: "\n").appending("\n").write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        let tok = try CLI.run(["tokenize", "--vocab", ckpt, "--text-file", "q.txt"], cwd: dir)
        #expect(tok.status == 0, "\(tok.stderr)")
        try tok.stdout.write(to: dir.appendingPathComponent("ids.json"), atomically: true, encoding: .utf8)
        let p = try CLI.run(["predict", "--checkpoint", ckpt, "--text-file", "q.txt", "--json", "-"], cwd: dir)
        let ours = ((try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as! [String: Any])["predictions"] as! [[String: Any]])
            .map { $0["logits"] as! [Double] }
        let py = try Python.run([CLI.root.appendingPathComponent("scripts/interop/numpy_bert.py").path, ckpt, "--ids-json", dir.appendingPathComponent("ids.json").path])
        let theirs = (try JSONSerialization.jsonObject(with: Data(py.utf8)) as! [String: Any])["logits"] as! [[Double]]
        #expect(theirs.count == ours.count)
        var maxDiff = 0.0
        for (a, b) in zip(ours, theirs) { for (x, y) in zip(a, b) { maxDiff = max(maxDiff, abs(x - y)) } }
        return maxDiff
    }

    @Test func killedRunResumesAndLosesNothing() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir, trainRows: 1600)
        try TinyTask.config(epochs: 2, saveEvery: 20).write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)

        // Reference: an uninterrupted run.
        let ref = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "ref", "--quiet"], cwd: dir, timeout: 300)
        #expect(ref.status == 0, "\(ref.stderr)")

        // Kill a second run with SIGKILL as soon as it has saved a mid-run state.
        let p = Process()
        p.executableURL = CLI.executable
        p.arguments = ["train-pool", "--config", "c.yaml", "--out", "run", "--quiet"]
        p.currentDirectoryURL = dir
        p.standardError = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let state = dir.appendingPathComponent("run/pool/tiny.state.h5").path
        let deadline = Date().addingTimeInterval(120)
        while p.isRunning && !FileManager.default.fileExists(atPath: state) && Date() < deadline { usleep(2_000) }
        guard p.isRunning else {
            Issue.record("training finished before it could be killed; make the task larger")
            return
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()

        let resumed = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--resume", "--quiet"], cwd: dir, timeout: 300)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let log = try String(contentsOfFile: dir.appendingPathComponent("run/pool/tiny.log.jsonl").path, encoding: .utf8)
        #expect(log.contains("\"event\":\"resume\""), "the resumed run did not start from the saved state")

        let a = try ModelCheckpoint.read(from: dir.appendingPathComponent("ref/pool/tiny.h5").path)
        let b = try ModelCheckpoint.read(from: dir.appendingPathComponent("run/pool/tiny.h5").path)
        #expect(Set(a.weights.keys) == Set(b.weights.keys))
        var maxDiff: Float = 0
        for (k, t) in a.weights { for (x, y) in zip(t.data, b.weights[k]!.data) { maxDiff = max(maxDiff, abs(x - y)) } }
        #expect(maxDiff <= 1e-5, "resumed weights differ from the uninterrupted run by \(maxDiff)")
    }
}

/// Finds python3 with h5py for the interop tests.
enum Python {
    static let hasH5py: Bool = (try? run(["-c", "import h5py, numpy"])) != nil

    /// Runs python3 with `args`; returns stdout or throws on a non-zero exit.
    static func run(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = DataCollector(out.fileHandleForReading), e = DataCollector(err.fileHandleForReading)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            struct PythonFailed: Error, CustomStringConvertible { var description: String }
            throw PythonFailed(description: "python3 \(args.joined(separator: " ")) failed: \(e.string())")
        }
        return o.string()
    }
}

/// A pool member with MPC-friendly nonlinearities trains, records its variant, and predicts.
@Suite struct VariantTrainPoolTests {
    @Test func polynomialVariantMemberTrainsAndRecordsItsVariant() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        let yaml = TinyTask.config(epochs: 1) + "\n    softmax: 2quad\n    activation: quad\n"
        try yaml.write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
        let r = try CLI.run(["train-pool", "--config", "c.yaml", "--out", "run", "--quiet"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let i = try CLI.run(["inspect", "run/pool/tiny.h5", "--json", "-"], cwd: dir)
        let model = ((try JSONSerialization.jsonObject(with: Data(i.stdout.utf8)) as! [String: Any])["models"] as! [[String: Any]])[0]
        #expect(model["variant"] as? [String: String] == ["softmax": "2quad", "activation": "quad"])
        try "good movie\n".write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        #expect(try CLI.run(["predict", "--checkpoint", "run/pool/tiny.h5", "--text-file", "q.txt"], cwd: dir).status == 0)
    }
}

/// Logit distillation from a teacher checkpoint.
@Suite struct DistillationTrainPoolTests {
    @Test func studentDistillsFromTeacherAndMismatchedTeacherIsRefused() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        try TinyTask.config(epochs: 2).write(to: dir.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let t = try CLI.run(["train-pool", "--config", "t.yaml", "--out", "teacher", "--quiet"], cwd: dir)
        #expect(t.status == 0, "\(t.stderr)")

        let student = TinyTask.config(epochs: 1) + "\n    distill: {teacher: teacher/pool/tiny.h5, alpha: 0.7, temperature: 2.0}\n"
        try student.write(to: dir.appendingPathComponent("s.yaml"), atomically: true, encoding: .utf8)
        let s = try CLI.run(["train-pool", "--config", "s.yaml", "--out", "student", "--quiet"], cwd: dir)
        #expect(s.status == 0, "\(s.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("student/pool/tiny.h5").path))

        // A teacher with another vocabulary cannot teach: one clear error.
        var vocab = TinyTask.vocab()
        vocab.append("extra")
        try vocab.joined(separator: "\n").appending("\n").write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        let bad = try CLI.run(["train-pool", "--config", "s.yaml", "--out", "student2", "--quiet"], cwd: dir)
        #expect(bad.status != 0 && bad.stderr.contains("different vocabulary"), "\(bad.stderr)")
    }
}

/// Stage-1 (layer-wise) distillation into students initialised from the teacher's first layer
/// or random and narrower, with QAT on a 32-bit ring recorded in the checkpoint.
@Suite struct StageOneDistillationQATTrainPoolTests {
    @Test func stageOneThenTaskEpochsAndQuantizationIsRecorded() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        try TinyTask.config(epochs: 1).write(to: dir.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let t = try CLI.run(["train-pool", "--config", "t.yaml", "--out", "teacher", "--quiet"], cwd: dir)
        #expect(t.status == 0, "\(t.stderr)")

        let yaml = """
            task: mr
            training: {epochs: 1, batch_size: 8, lr: 1.0e-3, max_length: 16}
            models:
              - name: head
                init: pretrained
                from: teacher/pool/tiny.h5
                layers: 1
                distill: {teacher: teacher/pool/tiny.h5, stage1_epochs: 1, hidden_weight: 1.0, attention_weight: 2.0}
                qat: {ring_bits: 32, frac_bits: 12, weight_bits: null}
              - name: narrow
                init: random
                vocab: vocab.txt
                layers: 1
                hidden: 16
                heads: 1
                intermediate: 32
                distill: {teacher: teacher/pool/tiny.h5, stage1_epochs: 2}
            """
        try yaml.write(to: dir.appendingPathComponent("s.yaml"), atomically: true, encoding: .utf8)
        let s = try CLI.run(["train-pool", "--config", "s.yaml", "--out", "student", "--quiet"], cwd: dir)
        #expect(s.status == 0, "\(s.stderr)")

        func quantization(_ path: String) throws -> [String: Int] {
            let config = try ModelCheckpoint.read(from: dir.appendingPathComponent(path).path).configJSON
            let json = try JSONSerialization.jsonObject(with: Data(config.utf8)) as! [String: Any]
            return json["quantization"] as! [String: Int]
        }
        #expect(try quantization("student/pool/head.h5") == ["ring_bits": 32, "frac_bits": 12])
        #expect(try quantization("student/pool/narrow.h5") == ["ring_bits": 64, "frac_bits": 16])
        #expect(try quantization("teacher/pool/tiny.h5") == ["ring_bits": 64, "frac_bits": 16])
        for (name, stage1) in [("head", 1), ("narrow", 2)] {
            let log = try String(contentsOfFile: dir.appendingPathComponent("student/pool/\(name).log.jsonl").path, encoding: .utf8)
            let lines = log.split(separator: "\n")
            #expect(lines.filter { $0.contains("\"event\":\"stage1_epoch\"") }.count == stage1, "\(name): \(log)")
            #expect(lines.filter { $0.contains("\"event\":\"epoch\"") }.count == 1, "\(name): \(log)")
        }
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("student/pool_summary.json"))) as! [String: Any]
        #expect((summary["models"] as! [[String: Any]]).map { $0["ring_bits"] as! Int } == [32, 64])
    }
}

/// A member with `public_embedding` takes the public model's embedding group and keeps it frozen.
@Suite struct PublicEmbeddingTrainPoolTests {
    @Test func embeddingGroupStaysAtThePublicModelsValues() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        try TinyTask.config(epochs: 1).write(to: dir.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        #expect(try CLI.run(["train-pool", "--config", "t.yaml", "--out", "public", "--quiet"], cwd: dir).status == 0)
        let yaml = TinyTask.config(epochs: 1) + "\n    public_embedding: public/pool/tiny.h5\n"
        try yaml.write(to: dir.appendingPathComponent("s.yaml"), atomically: true, encoding: .utf8)
        let s = try CLI.run(["train-pool", "--config", "s.yaml", "--out", "student", "--quiet"], cwd: dir)
        #expect(s.status == 0, "\(s.stderr)")

        let source = try ModelCheckpoint.read(from: dir.appendingPathComponent("public/pool/tiny.h5").path)
        let student = try ModelCheckpoint.read(from: dir.appendingPathComponent("student/pool/tiny.h5").path)
        let embedding = source.weights.keys.filter { $0.hasPrefix("bert.embeddings.") }
        #expect(embedding.count == 5)
        for name in embedding { #expect(student.weights[name] == source.weights[name], "\(name) moved") }
        // The encoder trained (from its own random initialisation, not the public model's).
        let q = "bert.encoder.layer.0.attention.self.query.weight"
        #expect(student.weights[q] != source.weights[q])
        let config = try JSONSerialization.jsonObject(with: Data(student.configJSON.utf8)) as! [String: Any]
        #expect(config["embedding"] as? String == "public")

        // A public model with another vocabulary cannot lend its embedding: one clear error.
        var vocab = TinyTask.vocab()
        vocab.append("extra")
        try vocab.joined(separator: "\n").appending("\n").write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        let bad = try CLI.run(["train-pool", "--config", "s.yaml", "--out", "student2", "--quiet"], cwd: dir)
        #expect(bad.status != 0 && bad.stderr.contains("another vocabulary"), "\(bad.stderr)")
        #expect(bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
    }

    /// `public_layers: 1`: the member also takes the public model's first encoder layer and keeps it frozen;
    /// the layer after it trains, with the member's own variant, and the cost model counts one private layer.
    @Test func publicLayersStayAtThePublicModelsValues() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        try TinyTask.config(epochs: 1).write(to: dir.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        #expect(try CLI.run(["train-pool", "--config", "t.yaml", "--out", "public", "--quiet"], cwd: dir).status == 0)
        let yaml = TinyTask.config(epochs: 1).replacingOccurrences(of: "init: random", with: "init: pretrained\n    from: public/pool/tiny.h5")
            .replacingOccurrences(of: "    vocab: vocab.txt\n", with: "").replacingOccurrences(of: "    hidden: 32\n    heads: 2\n    intermediate: 64", with: "")
            + "\n    public_embedding: public/pool/tiny.h5\n    public_layers: 1\n    softmax: 2quad\n    activation: quad\n"
        try yaml.write(to: dir.appendingPathComponent("s.yaml"), atomically: true, encoding: .utf8)
        let s = try CLI.run(["train-pool", "--config", "s.yaml", "--out", "student", "--quiet"], cwd: dir)
        #expect(s.status == 0, "\(s.stderr)")

        let source = try ModelCheckpoint.read(from: dir.appendingPathComponent("public/pool/tiny.h5").path)
        let student = try ModelCheckpoint.read(from: dir.appendingPathComponent("student/pool/tiny.h5").path)
        let frozen = source.weights.keys.filter { $0.hasPrefix("bert.embeddings.") || $0.hasPrefix("bert.encoder.layer.0.") }
        #expect(frozen.count == 5 + 16)
        for name in frozen { #expect(student.weights[name] == source.weights[name], "\(name) moved") }
        let q = "bert.encoder.layer.1.attention.self.query.weight"
        #expect(student.weights[q] != source.weights[q], "the private layer did not train")
        let config = try JSONSerialization.jsonObject(with: Data(student.configJSON.utf8)) as! [String: Any]
        let architecture = try #require(config["architecture"] as? [String: Any])
        #expect(architecture["public_layers"] as? Int == 1 && config["embedding"] as? String == "public")

        let cost = try CLI.run(["cost", "--checkpoint", "student/pool/tiny.h5", "--seq", "16"], cwd: dir)
        #expect(cost.status == 0 && cost.stdout.contains("L=1 after 1 public layers"), "\(cost.stdout)\(cost.stderr)")
    }
}

/// A `ptq` member trains in float, exactly as the same member without it, and its checkpoint records the
/// ring it is to run on.
@Suite struct PostTrainingQuantizationTrainPoolTests {
    @Test func trainsInFloatAndRecordsTheRing() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        try TinyTask.write(to: dir)
        try TinyTask.config(epochs: 1).write(to: dir.appendingPathComponent("f.yaml"), atomically: true, encoding: .utf8)
        try (TinyTask.config(epochs: 1) + "\n    ptq: {ring_bits: 32, frac_bits: 12}\n")
            .write(to: dir.appendingPathComponent("p.yaml"), atomically: true, encoding: .utf8)
        for (yaml, out) in [("f.yaml", "float"), ("p.yaml", "post")] {
            let r = try CLI.run(["train-pool", "--config", yaml, "--out", out, "--quiet"], cwd: dir)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let float = try ModelCheckpoint.read(from: dir.appendingPathComponent("float/pool/tiny.h5").path)
        let post = try ModelCheckpoint.read(from: dir.appendingPathComponent("post/pool/tiny.h5").path)
        #expect(float.weights.count == post.weights.count && !post.weights.isEmpty)
        for (name, w) in float.weights { #expect(post.weights[name]?.data == w.data, "\(name) differs: ptq must not change training") }
        func quantization(_ c: ModelCheckpoint) throws -> [String: Int] {
            (try JSONSerialization.jsonObject(with: Data(c.configJSON.utf8)) as! [String: Any])["quantization"] as! [String: Int]
        }
        #expect(try quantization(post) == ["ring_bits": 32, "frac_bits": 12])
        #expect(try quantization(float) == ["ring_bits": 64, "frac_bits": 16])
    }
}
