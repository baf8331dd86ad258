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
    /// - Parameter parameters: everything `optimizer` updates, in its order (the model's
    ///   parameters, then training-only ones such as a distillation projection).
    func save(to url: URL, parameters: [NamedParameter], optimizer: AdamW) throws {
        var weights: [String: StoredTensor] = [:]
        for (i, (name, t)) in parameters.enumerated() {
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

    /// Loads a saved state into `parameters` (same list and order as for `save`) and `optimizer`;
    /// nothing is modified when it throws.
    static func restore(from url: URL, parameters: [NamedParameter], optimizer: AdamW) throws -> TrainingState {
        let file = try ModelCheckpoint.read(from: url.path)
        guard let state = try? JSONDecoder().decode(TrainingState.self, from: Data(file.configJSON.utf8)) else {
            throw ConfigError(path: url.path, "is not a training state written by train-pool; delete it or run without --resume")
        }
        for (name, t) in parameters {
            guard let w = file.weights["model." + name], let m = file.weights["adam_m." + name],
                  let v = file.weights["adam_v." + name], w.shape == t.shape, w.data.count == t.count,
                  m.data.count == t.count, v.data.count == t.count
            else {
                throw ConfigError(path: url.path, "does not match this model (tensor \(name)); the config changed since it was saved: delete it or run without --resume")
            }
        }
        for (i, (name, t)) in parameters.enumerated() {
            t.data = file.weights["model." + name]!.data
            optimizer.setMoments(index: i, m: file.weights["adam_m." + name]!.data, v: file.weights["adam_v." + name]!.data)
        }
        optimizer.stepCount = state.optimizerStep ?? state.globalStep
        return state
    }

    var optimizerStep: Int?
}
