import Foundation
import Checkpoint
import Tensor
import TextData
import Transformer

/// A freshly initialised pool member, ready to train.
public struct InitialModel {
    public var model: BertForSequenceClassification
    public var config: CheckpointConfig
    public var vocab: [String]
    public var doLowerCase: Bool
}

/// Builds pool members from their `init` entry: pretrained weights (a Hugging Face
/// directory or one of our checkpoints, optionally truncated to N layers) or random.
public enum ModelFactory {
    public static func make(_ member: PoolMemberConfig, task: TaskInfo, seed: UInt64) throws -> InitialModel {
        var initial = try makeInitialised(member, task: task, seed: seed)
        if let path = member.publicEmbedding {
            try takePublicPrefix(from: path, into: initial.model, vocab: initial.vocab)
            initial.config.embedding = CheckpointConfig.publicEmbedding
        }
        return initial
    }

    /// Prefix of the embedding group's parameters (word, position, token type, LayerNorm).
    public static let embeddingPrefix = "bert.embeddings."

    /// Whether parameter `name` of a model with `config` is public and frozen: in the embedding group of a
    /// model with a public embedding, or in one of its public leading layers.
    public static func isFrozen(_ name: String, config: CheckpointConfig) -> Bool {
        guard config.hasPublicEmbedding else { return false }
        if name.hasPrefix(embeddingPrefix) { return true }
        return (0..<config.architecture.publicLayerCount).contains { name.hasPrefix("bert.encoder.layer.\($0).") }
    }

    /// Copies the embedding group and the first `model.config.publicLayerCount` encoder layers of the public
    /// model at `path` into `model` (which then keeps them frozen).
    /// - Throws: `ConfigError` if the public model's vocabulary, depth or shapes differ from the member's.
    static func takePublicPrefix(from path: String, into model: BertForSequenceClassification, vocab: [String]) throws {
        let k = model.config.publicLayerCount
        let source = try PretrainedSource.load(path: path, layers: max(k, 1))
        guard source.vocab == vocab else {
            throw ConfigError("public_embedding \(path) has another vocabulary (\(source.vocab.count) pieces) than the model (\(vocab.count))")
        }
        if k > 0 {
            let a = source.architecture
            guard a.softmax == .exact, a.activation == .gelu, !a.isPruned, a.hidden == model.config.hidden,
                  a.heads == model.config.heads, a.intermediate == model.config.intermediate else {
                throw ConfigError("public_embedding \(path) is not an unpruned exact/GeLU model of the member's width; "
                                  + "its layers cannot be the member's public layers")
            }
        }
        let prefixes = [embeddingPrefix] + (0..<k).map { "bert.encoder.layer.\($0)." }
        var w: [String: (shape: [Int], data: [Float])] = [:]
        for (name, t) in model.namedParameters() where prefixes.contains(where: { name.hasPrefix($0) }) {
            guard let v = source.weights[name], v.shape == t.shape else {
                throw ConfigError("public_embedding \(path) has no \(name) of shape \(t.shape)")
            }
            w[name] = (v.shape, v.data)
        }
        try model.load(weights: w, strict: false, keepMissing: true)
    }

    private static func makeInitialised(_ member: PoolMemberConfig, task: TaskInfo, seed: UInt64) throws -> InitialModel {
        let rng = SeededGenerator(seed: seed)
        switch member.initialization {
        case let .pretrained(path, layers):
            let source = try PretrainedSource.load(path: path, layers: layers)
            var arch = source.architecture
            arch.numLabels = task.numLabels
            if let p = member.training.dropout { arch.hiddenDropout = p; arch.attentionDropout = p }
            arch.softmax = member.softmax
            arch.activation = member.activation
            if let k = member.publicLayers {
                guard k <= arch.layers else {
                    throw ConfigError("\(member.name): public_layers \(k) is more than the model's \(arch.layers) layers")
                }
                arch.publicLayers = k
            }
            let model = BertForSequenceClassification(config: arch, rng: rng)
            // The classifier keeps its fresh init unless the source was fine-tuned on this very task and labels
            // (continuing from a fine-tuned member, e.g. to prune it); the pooler too if the source lacks one.
            let sameTask = source.task == task.name && source.labels == task.labelNames
            var w: [String: (shape: [Int], data: [Float])] = [:]
            for (k, v) in source.weights where sameTask || !k.hasPrefix("classifier.") { w[k] = (v.shape, v.data) }
            try model.load(weights: w, strict: false, keepMissing: true)
            let config = CheckpointConfig(architecture: arch, task: task.name, labels: task.labelNames, name: member.name)
            return InitialModel(model: model, config: config, vocab: source.vocab, doLowerCase: source.doLowerCase)
        case let .random(layers, hidden, heads, intermediate, vocabPath):
            let vocab = try Vocabulary(contentsOf: URL(fileURLWithPath: vocabPath)).tokens
            var arch = BertConfig(
                layers: layers, hidden: hidden, heads: heads, intermediate: intermediate, vocabSize: vocab.count,
                maxPosition: 512, typeVocabSize: 2, numLabels: task.numLabels)
            if let p = member.training.dropout { arch.hiddenDropout = p; arch.attentionDropout = p }
            arch.softmax = member.softmax
            arch.activation = member.activation
            let model = BertForSequenceClassification(config: arch, rng: rng)
            let config = CheckpointConfig(architecture: arch, task: task.name, labels: task.labelNames, name: member.name)
            return InitialModel(model: model, config: config, vocab: vocab, doLowerCase: true)
        }
    }
}

/// Pretrained weights and vocabulary from a Hugging Face directory or a SecureRouter checkpoint.
public struct PretrainedSource {
    public var architecture: BertConfig
    public var weights: [String: StoredTensor]
    public var vocab: [String]
    public var doLowerCase: Bool
    /// The task and labels of a fine-tuned checkpoint (nil for a Hugging Face directory).
    public var task: String? = nil, labels: [String]? = nil

    /// - Parameters:
    ///   - path: a directory with config.json, model.safetensors and vocab.txt, or an `.h5` checkpoint.
    ///   - layers: keep only the first N encoder layers.
    public static func load(path: String, layers: Int?) throws -> PretrainedSource {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ConfigError("pretrained model not found at \(path); run `securerouter data fetch` first or fix the path")
        }
        if isDir.boolValue {
            let hf = try importHuggingFace(modelDir: URL(fileURLWithPath: path), layers: layers)
            return PretrainedSource(architecture: hf.architecture, weights: hf.weights, vocab: hf.vocab, doLowerCase: hf.doLowerCase)
        }
        let ckpt = try ModelCheckpoint.read(from: path)
        var config = try CheckpointConfig.decode(ckpt.configJSON, path: path)
        var weights = ckpt.weights
        if let n = layers {
            guard n <= config.architecture.layers else {
                throw ConfigError("\(path) has \(config.architecture.layers) layers; cannot keep \(n)")
            }
            weights = weights.filter { k, _ in
                guard k.hasPrefix("bert.encoder.layer.") else { return true }
                let idx = k.dropFirst("bert.encoder.layer.".count).prefix { $0 != "." }
                return Int(idx)! < n
            }
            config.architecture.layers = n
            config.architecture.layerHeads = config.architecture.layerHeads.map { Array($0.prefix(n)) }
            config.architecture.layerIntermediate = config.architecture.layerIntermediate.map { Array($0.prefix(n)) }
        }
        return PretrainedSource(architecture: config.architecture, weights: weights, vocab: ckpt.vocab, doLowerCase: ckpt.doLowerCase,
                                task: config.task, labels: config.labels)
    }
}
