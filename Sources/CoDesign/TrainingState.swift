import Foundation
import Checkpoint
import Tensor
import Transformer

/// The resumable part of a training run, stored next to the checkpoint as
/// `<name>.state.h5`: weights and AdamW moments as datasets, counters as JSON.
struct TrainingState: Codable {
    var epochsDone: Int
    var stepInEpoch: Int
    var globalStep: Int
    var bestDev: Double
    var bestEpoch: Int

    /// Writes the state atomically (temporary file, then rename).
    func save(to url: URL, model: BertForSequenceClassification, optimizer: AdamW) throws {
        var weights: [String: StoredTensor] = [:]
        let params = model.namedParameters()
        for (i, (name, t)) in params.enumerated() {
            weights["model." + name] = StoredTensor(shape: t.shape, data: t.data)
            let (m, v) = optimizer.moments(index: i)
            weights["adam_m." + name] = StoredTensor(shape: t.shape, data: m)
            weights["adam_v." + name] = StoredTensor(shape: t.shape, data: v)
        }
        var doc = self
        doc.optimizerStep = optimizer.stepCount
        let json = String(decoding: try JSONEncoder().encode(doc), as: UTF8.self)
        try ModelCheckpoint(configJSON: json, weights: weights, vocab: [], doLowerCase: true).write(to: url.path)
    }

    /// Loads a saved state into `model` and `optimizer`.
    static func restore(from url: URL, model: BertForSequenceClassification, optimizer: AdamW) throws -> TrainingState {
        let file = try ModelCheckpoint.read(from: url.path)
        guard let state = try? JSONDecoder().decode(TrainingState.self, from: Data(file.configJSON.utf8)) else {
            throw ConfigError(path: url.path, "is not a training state written by train-pool; delete it or run without --resume")
        }
        var model_: [String: (shape: [Int], data: [Float])] = [:]
        for (name, t) in model.namedParameters() {
            guard let w = file.weights["model." + name], let m = file.weights["adam_m." + name],
                  let v = file.weights["adam_v." + name], w.shape == t.shape
            else {
                throw ConfigError(path: url.path, "does not match this model (tensor \(name)); the config changed since it was saved: delete it or run without --resume")
            }
            model_[name] = (w.shape, w.data)
            _ = (m, v)
        }
        try model.load(weights: model_)
        for (i, (name, _)) in model.namedParameters().enumerated() {
            optimizer.setMoments(index: i, m: file.weights["adam_m." + name]!.data, v: file.weights["adam_v." + name]!.data)
        }
        optimizer.stepCount = state.optimizerStep ?? state.globalStep
        return state
    }

    var optimizerStep: Int?
}
