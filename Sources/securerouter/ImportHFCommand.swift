import ArgumentParser
import Checkpoint
import CoDesign
import Foundation
import Tensor
import Transformer

struct ImportHFCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-hf",
        abstract: "Convert a Hugging Face BERT directory (config.json, model.safetensors, vocab.txt) into a SecureRouter checkpoint.",
        discussion: """
            The encoder and pooler weights are copied under HF state_dict names; the classifier
            (absent from a base model) is initialised like Hugging Face does (normal, std 0.02, seed 0),
            so the file loads into BertForSequenceClassification as is.
            """)

    @Option(help: "Hugging Face model directory.")
    var modelDir: String

    @Option(help: "Output .h5 file.")
    var out: String

    @Option(help: "Keep only the first N encoder layers.")
    var layers: Int?

    @Option(help: "Number of classifier outputs.")
    var numLabels: Int = 2

    func validate() throws {
        if let layers, layers < 1 { throw ValidationError("--layers must be at least 1") }
        guard numLabels >= 1 else { throw ValidationError("--num-labels must be at least 1") }
    }

    func run() throws {
        let hf = try importHuggingFace(modelDir: URL(fileURLWithPath: modelDir), layers: layers, numLabels: numLabels)
        var arch = hf.architecture
        arch.numLabels = numLabels
        let model = BertForSequenceClassification(config: arch, rng: SeededGenerator(seed: 0))
        var w: [String: (shape: [Int], data: [Float])] = [:]
        for (k, v) in hf.weights { w[k] = (v.shape, v.data) }
        try model.load(weights: w, strict: false, keepMissing: true)
        let config = CheckpointConfig(
            architecture: arch, task: "none", labels: (0..<numLabels).map { "LABEL_\($0)" },
            name: URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent)
        try FineTuner.checkpoint(model: model, config: config, vocab: hf.vocab, doLowerCase: hf.doLowerCase).write(to: out)
        print("wrote \(out): \(arch.layers) layers, hidden \(arch.hidden), \(hf.vocab.count) tokens")
    }
}
