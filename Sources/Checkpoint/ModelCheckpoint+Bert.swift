import Foundation
import Tensor
import Transformer

extension CheckpointError {
    /// A checkpoint whose content does not describe a usable model.
    static func invalid(path: String, _ message: String) -> CheckpointError {
        CheckpointError(.invalidModel, path: path, message: message)
    }
}

extension CheckpointConfig {
    /// Decodes a checkpoint's `config` attribute.
    /// - Throws: `CheckpointError` naming the file when the JSON is malformed, lacks a key, or is from a newer format.
    public static func decode(_ json: String, path: String) throws -> CheckpointConfig {
        var config: CheckpointConfig
        do {
            config = try JSONDecoder().decode(CheckpointConfig.self, from: Data(json.utf8))
        } catch let DecodingError.keyNotFound(key, ctx) {
            let at = (ctx.codingPath.map(\.stringValue) + [key.stringValue]).joined(separator: ".")
            throw CheckpointError.invalid(path: path, "its config attribute lacks '\(at)'")
        } catch let DecodingError.dataCorrupted(ctx) where !ctx.codingPath.isEmpty {
            let at = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            throw CheckpointError.invalid(path: path, "its config has a bad value at '\(at)': \(ctx.debugDescription)")
        } catch {
            throw CheckpointError.invalid(path: path, "its config attribute is not a SecureRouter model config (\(error))")
        }
        guard config.formatVersion <= currentFormatVersion else {
            throw CheckpointError.invalid(
                path: path, "format_version \(config.formatVersion) is newer than this tool reads (\(currentFormatVersion)); update securerouter")
        }
        // `variant` is authoritative; the architecture carries the same kinds for the model code.
        guard let softmax = SoftmaxVariant(rawValue: config.variant.softmax),
              let activation = ActivationVariant(rawValue: config.variant.activation)
        else {
            throw CheckpointError.invalid(
                path: path, "unknown variant softmax=\(config.variant.softmax) activation=\(config.variant.activation) "
                    + "(known: softmax \(SoftmaxVariant.allCases.map(\.rawValue)), activation \(ActivationVariant.allCases.map(\.rawValue)))")
        }
        config.architecture.softmax = softmax
        config.architecture.activation = activation
        do { try config.architecture.validate() } catch {
            throw CheckpointError.invalid(path: path, "its architecture is inconsistent: \(error)")
        }
        guard config.labels.count == config.architecture.numLabels else {
            throw CheckpointError.invalid(
                path: path, "lists \(config.labels.count) labels but the classifier has \(config.architecture.numLabels) outputs")
        }
        return config
    }
}

extension BertForSequenceClassification {
    /// Rebuilds a model from a checkpoint, checking every tensor's presence and shape.
    /// - Throws: `CheckpointError` on a bad config, `ModelError` on missing or misshapen tensors.
    public static func load(checkpoint: ModelCheckpoint, path: String = "<checkpoint>") throws -> BertForSequenceClassification {
        let config = try CheckpointConfig.decode(checkpoint.configJSON, path: path)
        guard checkpoint.vocab.isEmpty || checkpoint.vocab.count == config.architecture.vocabSize else {
            throw CheckpointError.invalid(
                path: path, "its vocabulary has \(checkpoint.vocab.count) tokens but the embedding table has \(config.architecture.vocabSize) rows")
        }
        // Every tensor comes from the checkpoint (a strict load), so the layers need no random start.
        let model = Tensor.$drawsInitialValues.withValue(false) {
            BertForSequenceClassification(config: config.architecture, rng: SeededGenerator(seed: 0))
        }
        var weights: [String: (shape: [Int], data: [Float])] = [:]
        for (k, v) in checkpoint.weights { weights[k] = (v.shape, v.data) }
        do {
            try model.load(weights: weights)
        } catch {
            throw CheckpointError.invalid(path: path, "\(error)")
        }
        return model
    }
}
