import Foundation

import Transformer

/// DESIGN §4's `architecture` entry is the Transformer module's `BertConfig`.
public typealias BertArchitecture = BertConfig

extension BertConfig {
    /// This architecture as a JSON object string with sorted keys (for the `architecture` entry of `config`).
    /// - Throws: `EncodingError` only when `layerNormEps` is not finite.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The `BertForSequenceClassification` state_dict names and shapes (H hidden, I intermediate,
    /// V vocab, P max positions, T token types, L labels; Linear weights are `[out, in]`),
    /// in HF order. Without `includeClassifier`, `classifier.weight [L, H]` and `classifier.bias [L]` are left out.
    public func expectedParameters(includeClassifier: Bool = true) -> [(name: String, shape: [Int])] {
        let (h, i) = (hidden, intermediate)
        var list: [(name: String, shape: [Int])] = [
            ("bert.embeddings.word_embeddings.weight", [vocabSize, h]),
            ("bert.embeddings.position_embeddings.weight", [maxPosition, h]),
            ("bert.embeddings.token_type_embeddings.weight", [typeVocabSize, h]),
            ("bert.embeddings.LayerNorm.weight", [h]), ("bert.embeddings.LayerNorm.bias", [h]),
        ]
        for layer in 0..<layers {
            let p = "bert.encoder.layer.\(layer)."
            for part in ["query", "key", "value"] {
                list += [(p + "attention.self.\(part).weight", [h, h]), (p + "attention.self.\(part).bias", [h])]
            }
            list += [
                (p + "attention.output.dense.weight", [h, h]), (p + "attention.output.dense.bias", [h]),
                (p + "attention.output.LayerNorm.weight", [h]), (p + "attention.output.LayerNorm.bias", [h]),
                (p + "intermediate.dense.weight", [i, h]), (p + "intermediate.dense.bias", [i]),
                (p + "output.dense.weight", [h, i]), (p + "output.dense.bias", [h]),
                (p + "output.LayerNorm.weight", [h]), (p + "output.LayerNorm.bias", [h]),
            ]
        }
        list += [("bert.pooler.dense.weight", [h, h]), ("bert.pooler.dense.bias", [h])]
        if includeClassifier { list += [("classifier.weight", [numLabels, h]), ("classifier.bias", [numLabels])] }
        return list
    }
}

/// A Hugging Face BERT encoder imported from a model folder, renamed to
/// `BertForSequenceClassification` state_dict names, without classifier weights.
public struct HuggingFaceModel: Sendable {
    /// Architecture (with `layers` after truncation and `numLabels` as requested).
    public var architecture: BertArchitecture
    /// HF `hidden_act` (e.g. "gelu": exact erf GeLU).
    public var hiddenAct: String
    /// Encoder, embedding and pooler weights by state_dict name (`bert.` prefix).
    public var weights: [String: StoredTensor]
    /// vocab.txt in id order.
    public var vocab: [String]
    /// From tokenizer_config.json `do_lower_case` (default true when absent).
    public var doLowerCase: Bool
    /// Source tensors that were not imported (position_ids buffers, layers >= N, pre-training heads).
    public var dropped: [String]

    /// A checkpoint with these weights and vocabulary; the caller adds the classifier weights.
    public func checkpoint(configJSON: String) -> ModelCheckpoint {
        ModelCheckpoint(configJSON: configJSON, weights: weights, vocab: vocab, doLowerCase: doLowerCase)
    }
}

/// HF config.json keys we need (BertConfig).
private struct HFBertConfig: Decodable {
    var num_hidden_layers: Int
    var hidden_size: Int
    var num_attention_heads: Int
    var intermediate_size: Int
    var vocab_size: Int
    var max_position_embeddings: Int
    var type_vocab_size: Int?
    var layer_norm_eps: Double?
    var hidden_act: String?
}

/// Imports a Hugging Face BERT folder (`config.json`, `model.safetensors`, `vocab.txt`,
/// optional `tokenizer_config.json`).
///
/// Names are mapped to `BertForSequenceClassification` keys: a `bert.` prefix is added when
/// missing, legacy `LayerNorm.gamma/beta` become `weight/bias`, `embeddings.position_ids` /
/// `token_type_ids` buffers and pre-training heads (`cls.*`) are dropped, and with `layers: N`
/// encoder layers >= N are dropped (the first N are kept).
/// - Parameters:
///   - layers: keep the first N encoder layers (nil: all); must be in 1...num_hidden_layers.
///   - numLabels: recorded in the architecture (unknown at import; default 2).
/// - Throws: `.noSuchFile`, `.invalidModel` (bad config, layer count, vocabulary),
///   `.malformedSafetensors`, `.wrongType`, `.schemaMismatch` (missing or mis-shaped tensors).
public func importHuggingFace(modelDir: URL, layers: Int?, numLabels: Int = 2) throws -> HuggingFaceModel {
    let configPath = modelDir.appendingPathComponent("config.json").path
    let config: HFBertConfig
    do {
        config = try JSONDecoder().decode(HFBertConfig.self, from: readFile(configPath))
    } catch let error as CheckpointError {
        throw error
    } catch {
        throw CheckpointError(.invalidModel, path: configPath, message: "not a BERT config.json: \(error)")
    }
    let available = config.num_hidden_layers
    let keep = layers ?? available
    guard keep >= 1, keep <= available else {
        throw CheckpointError(.invalidModel, path: configPath, object: "num_hidden_layers",
                              message: "cannot keep \(keep) layers: the model has \(available) (use 1...\(available))")
    }
    let architecture = BertArchitecture(
        layers: keep, hidden: config.hidden_size, heads: config.num_attention_heads,
        intermediate: config.intermediate_size, vocabSize: config.vocab_size,
        maxPosition: config.max_position_embeddings, typeVocabSize: config.type_vocab_size ?? 2,
        numLabels: numLabels, layerNormEps: Float(config.layer_norm_eps ?? 1e-12))

    let tensorsPath = modelDir.appendingPathComponent("model.safetensors").path
    let source = try SafeTensorsFile(path: tensorsPath)
    var weights: [String: StoredTensor] = [:]
    var dropped: [String] = []
    for name in source.names {
        guard let target = stateDictName(name, keepLayers: keep) else {
            dropped.append(name)
            continue
        }
        weights[target] = try source.floats(name)
    }
    let model = ModelCheckpoint(configJSON: "{}", weights: weights)
    try model.validate(expected: architecture.expectedParameters(includeClassifier: false), path: tensorsPath)

    let vocabPath = modelDir.appendingPathComponent("vocab.txt").path
    var vocab = String(decoding: try readFile(vocabPath), as: UTF8.self)
        .split(separator: "\n", omittingEmptySubsequences: false)
        .map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
    if vocab.last == "" { vocab.removeLast() }
    guard !vocab.isEmpty, vocab.count <= config.vocab_size else {
        throw CheckpointError(.invalidModel, path: vocabPath,
                              message: "vocab.txt has \(vocab.count) tokens but vocab_size is \(config.vocab_size)")
    }
    var doLowerCase = true
    let tokenizerConfig = modelDir.appendingPathComponent("tokenizer_config.json").path
    if FileManager.default.fileExists(atPath: tokenizerConfig),
        let object = try? JSONSerialization.jsonObject(with: readFile(tokenizerConfig)) as? [String: Any],
        let flag = object["do_lower_case"] as? Bool
    {
        doLowerCase = flag
    }
    return HuggingFaceModel(architecture: architecture, hiddenAct: config.hidden_act ?? "gelu", weights: weights,
                            vocab: vocab, doLowerCase: doLowerCase, dropped: dropped)
}

/// The `BertForSequenceClassification` name of a HF tensor, or nil when it is not imported.
func stateDictName(_ name: String, keepLayers: Int) -> String? {
    if name.hasPrefix("cls.") || name.hasPrefix("classifier.") { return nil }
    if name.hasSuffix("embeddings.position_ids") || name.hasSuffix("embeddings.token_type_ids") { return nil }
    var target = name.hasPrefix("bert.") ? name : "bert." + name
    if target.hasSuffix(".LayerNorm.gamma") { target = String(target.dropLast(5)) + "weight" }
    if target.hasSuffix(".LayerNorm.beta") { target = String(target.dropLast(4)) + "bias" }
    let layerPrefix = "bert.encoder.layer."
    if target.hasPrefix(layerPrefix),
        let index = Int(target.dropFirst(layerPrefix.count).prefix { $0 != "." }), index >= keepLayers
    {
        return nil
    }
    return target
}

private func readFile(_ path: String) throws -> Data {
    guard FileManager.default.fileExists(atPath: path) else {
        throw CheckpointError(.noSuchFile, path: path, message: "no such file: \(path)")
    }
    do {
        return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
        throw CheckpointError(.io, path: path, message: "cannot read: \(error.localizedDescription)")
    }
}
