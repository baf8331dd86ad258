import ArgumentParser
import Checkpoint
import Foundation
import TextData
import Transformer

/// A model read from a checkpoint or a bundle member, with its tokenizer.
struct LoadedModel {
    var model: BertForSequenceClassification
    var config: CheckpointConfig
    var tokenizer: WordPieceTokenizer
}

/// Loads a single-model checkpoint, or the member `name` of a bundle (its first model when nil).
func loadModel(path: String, bundleMember: String? = nil, isBundle: Bool = false) throws -> LoadedModel {
    var group: String? = nil
    if isBundle {
        let names = try ModelCheckpoint.listModels(inBundle: path)
        guard !names.isEmpty else { throw ValidationError("\(path) holds no /models/<name> group; is it a bundle?") }
        let name = bundleMember ?? names[0]
        guard names.contains(name) else {
            throw ValidationError("\(path) has no model '\(name)' (it has: \(names.joined(separator: ", ")))")
        }
        group = name
    }
    let ckpt = try ModelCheckpoint.read(from: path, group: group)
    let config = try CheckpointConfig.decode(ckpt.configJSON, path: path)
    let model = try BertForSequenceClassification.load(checkpoint: ckpt, path: path)
    guard !ckpt.vocab.isEmpty else { throw ValidationError("\(path) has no tokenizer/vocab dataset") }
    return LoadedModel(model: model, config: config, tokenizer: try WordPieceTokenizer(tokens: ckpt.vocab, doLowerCase: ckpt.doLowerCase))
}

/// A tokenizer from a vocab.txt or from a checkpoint's tokenizer/vocab.
func loadTokenizer(_ path: String) throws -> WordPieceTokenizer {
    guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no such file: \(path)") }
    if path.hasSuffix(".h5") {
        let ckpt = try ModelCheckpoint.read(from: path)
        return try WordPieceTokenizer(tokens: ckpt.vocab, doLowerCase: ckpt.doLowerCase)
    }
    return try WordPieceTokenizer(vocabURL: URL(fileURLWithPath: path), doLowerCase: true)
}
