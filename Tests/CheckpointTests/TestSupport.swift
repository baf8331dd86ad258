import Foundation
import Tensor
import Testing

@testable import Checkpoint

/// A fresh empty directory for one test; removed by `cleanup()`.
struct ScratchDirectory {
    let path: String

    init() throws {
        path = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ckpt-tests-" + UUID().uuidString).path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func contents() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: path).sorted() }

    /// Removes the directory, unless CHECKPOINT_TESTS_KEEP is set (to inspect files with h5dump).
    func cleanup() {
        if ProcessInfo.processInfo.environment["CHECKPOINT_TESTS_KEEP"] != nil { return }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The package root (three levels above this file: Tests/CheckpointTests/TestSupport.swift).
let packageRoot: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

/// Runs `error()`'s checks: the kind and that the message names `path`.
func expectError(
    _ kind: CheckpointError.Kind, mentioning path: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    let error = #expect(throws: CheckpointError.self, sourceLocation: sourceLocation) { try body() }
    guard let error else { return }
    #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
    #expect(error.description.contains(path), "message does not name \(path): \(error)",
            sourceLocation: sourceLocation)
}

/// Deterministic pseudo-random floats (SplitMix64), for reproducible weights.
struct SplitMix {
    var rng: SplitMix64
    init(state: UInt64) { rng = SplitMix64(seed: state) }
    mutating func next() -> UInt64 { rng.next() }
    func floatsArray(_ count: Int, scale: Float = 0.1) -> [Float] {
        var copy = self
        return copy.floats(count, scale: scale)
    }
    mutating func floats(_ count: Int, scale: Float = 0.1) -> [Float] {
        (0..<count).map { _ in (Float(next() >> 40) / Float(1 << 24) - 0.5) * 2 * scale }
    }
}

/// A tiny BERT architecture for tests (H 8, 2 heads, I 16, V 20, 2 layers).
let tinyArchitecture = BertArchitecture(
    layers: 2, hidden: 8, heads: 2, intermediate: 16, vocabSize: 20, maxPosition: 16, typeVocabSize: 2,
    numLabels: 3, layerNormEps: 1e-12)

/// A checkpoint with random weights for every BertForSequenceClassification parameter of `arch`.
func randomCheckpoint(_ arch: BertArchitecture = tinyArchitecture, seed: UInt64 = 1) throws -> ModelCheckpoint {
    var rng = SplitMix(state: seed)
    var weights: [String: StoredTensor] = [:]
    for (name, shape) in arch.expectedParameters() {
        weights[name] = StoredTensor(shape: shape, data: rng.floats(shape.reduce(1, *)))
    }
    let config = "{\"architecture\": \(try arch.json()), \"format_version\": 1, \"task\": \"sst2\"}"
    let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (5..<arch.vocabSize).map { "tok\($0)" }
    return ModelCheckpoint(configJSON: config, weights: weights, vocab: vocab, doLowerCase: true)
}
