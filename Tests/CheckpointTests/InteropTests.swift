import Foundation
import Testing

@testable import Checkpoint

/// Runs `python3 args...` in the package root; returns (exit status, stdout, stderr).
func runPython(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    process.currentDirectoryURL = URL(fileURLWithPath: packageRoot)
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

let pythonInteropAvailable: Bool = {
    (try? runPython(["-c", "import h5py, numpy, scipy"]).status) == 0
}()

/// Our checkpoints read back by h5py (scripts/interop): names, shapes, config, vocabulary and
/// a NumPy forward. Skipped when python3 with h5py, numpy and scipy is missing.
@Suite(.enabled(if: pythonInteropAvailable, "python3 with h5py, numpy and scipy is required: pip install h5py numpy scipy"))
struct InteropTests {
    func summary(_ arguments: [String]) throws -> [String: Any] {
        let result = try runPython(["scripts/interop/check_h5.py"] + arguments + ["--json"])
        #expect(result.status == 0, "check_h5.py failed: \(result.err)\(result.out)")
        let object = try JSONSerialization.jsonObject(with: Data(result.out.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(result.out)")
    }

    func check(_ model: ModelCheckpoint, against summary: [String: Any]) throws {
        let weights = try #require(summary["weights"] as? [String: [String: Any]])
        #expect(Set(weights.keys) == Set(model.weights.keys))
        for (name, tensor) in model.weights {
            #expect(weights[name]?["shape"] as? [Int] == tensor.shape, "\(name)")
            #expect(weights[name]?["dtype"] as? String == "float32", "\(name)")
        }
        let stateDictCheck = try #require(summary["state_dict_check"] as? [String: [String]])
        let loadable = stateDictCheck.values.allSatisfy { $0.isEmpty }
        #expect(loadable, "load_state_dict would fail: \(stateDictCheck)")
        #expect(summary["vocab_size"] as? Int == model.vocab.count)
        #expect(summary["vocab_head"] as? [String] == Array(model.vocab.prefix(5)))
        #expect(summary["do_lower_case"] as? Bool == model.doLowerCase)
        let config = try #require(summary["config"] as? [String: Any])
        #expect(config["format_version"] as? Int == 1)
        #expect((config["architecture"] as? [String: Any])?["num_labels"] as? Int == 3)
    }

    @Test func h5pyReadsSingleModelFiles() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let path = dir.file("tiny.h5")
        var model = try randomCheckpoint(seed: 11)
        model.vocab[9] = "naïve"
        model.doLowerCase = false
        model.attributes = ["step": .integer(5)]
        try model.write(to: path)
        let result = try summary([path])
        try check(model, against: result)
        #expect((result["attributes"] as? [String: Any])?["step"] as? Int == 5)
    }

    @Test func h5pyReadsBundleGroups() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let path = dir.file("bundle.h5")
        let model = try randomCheckpoint(seed: 12)
        try ModelCheckpoint.writeBundle(to: path, models: [("tiny", model)])
        try check(model, against: summary([path, "--group", "models/tiny"]))
    }

    @Test func numpyForwardRuns() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let path = dir.file("tiny.h5")
        try randomCheckpoint(seed: 13).write(to: path)
        let inline = try runPython(["scripts/interop/numpy_bert.py", path, "--ids", "[[2, 7, 9, 3], [2, 3]]"])
        #expect(inline.status == 0, "numpy_bert.py failed: \(inline.err)")
        let object = try JSONSerialization.jsonObject(with: Data(inline.out.utf8)) as? [String: Any]
        let logits = try #require(object?["logits"] as? [[Double]], "no logits in \(inline.out)")
        let wellFormed = logits.count == 2 && logits.allSatisfy { row in row.count == 3 && row.allSatisfy { $0.isFinite } }
        #expect(wellFormed, "logits: \(logits)")
        let idsFile = dir.file("ids.json")
        try "{\"ids\": [[2, 7, 9, 3], [2, 3]]}".write(toFile: idsFile, atomically: false, encoding: .utf8)
        let fromFile = try runPython(["scripts/interop/numpy_bert.py", path, "--ids-json", idsFile])
        #expect(fromFile.out == inline.out)
    }

    /// The whole import path on the real model: safetensors -> importHuggingFace -> our HDF5 ->
    /// h5py -> NumPy encoder. Paraphrases must be close and unrelated sentences far apart
    /// (all-MiniLM-L6-v2 gives cosines ~0.75 and ~0.05 here); a wrong name mapping, shape or
    /// transposition destroys that.
    @Test(.enabled(if: minilmPresent, "checkpoints/pretrained/minilm-l6 missing"))
    func importedMiniLMEmbedsSentences() throws {
        let model = try importHuggingFace(modelDir: URL(fileURLWithPath: minilmDirectory), layers: nil)
        var checkpoint = model.checkpoint(configJSON: "{\"architecture\": \(try model.architecture.json())}")
        checkpoint.weights["classifier.weight"] = StoredTensor(shape: [2, 384], data: [Float](repeating: 0, count: 768))
        checkpoint.weights["classifier.bias"] = StoredTensor(shape: [2], data: [0, 0])
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        try checkpoint.write(to: dir.file("minilm.h5"))
        let ids = "[[101, 1037, 2158, 2003, 5983, 2833, 1012, 102], "  // A man is eating food.
            + "[101, 1037, 2158, 2003, 5983, 1037, 3538, 1997, 7852, 1012, 102], "  // ... a piece of bread.
            + "[101, 1037, 10608, 2003, 2652, 3846, 1012, 102]]"  // A monkey is playing drums.
        let result = try runPython(["scripts/interop/numpy_bert.py", dir.file("minilm.h5"), "--ids", ids, "--embed"])
        #expect(result.status == 0, "\(result.err)")
        let object = try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as? [String: Any]
        let e = try #require(object?["embeddings"] as? [[Double]], "\(result.out)")
        func cosine(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { $0 * $1 }.reduce(0, +) }
        let (paraphrase, unrelated) = (cosine(e[0], e[1]), cosine(e[0], e[2]))
        #expect(paraphrase > 0.7 && paraphrase < 0.8, "cos(food, bread) = \(paraphrase)")
        #expect(abs(unrelated) < 0.15, "cos(food, drums) = \(unrelated)")
    }
}
