import Checkpoint
import Foundation
import Tensor
import TextData
import Testing
import Transformer

/// The imported MiniLM-L6 against an independent reference implementation (sentence-transformers).
/// Needs `securerouter data fetch --task none` (scripts/test.sh runs it).
@Suite struct PretrainedMiniLMTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modelDir = root.appendingPathComponent("checkpoints/pretrained/minilm-l6")
    static let available = FileManager.default.fileExists(atPath: modelDir.appendingPathComponent("model.safetensors").path)

    @Test(.enabled(if: available, "pretrained MiniLM missing: run `securerouter data fetch --task none`"))
    func tokenizerMatchesBert() throws {
        let tok = try WordPieceTokenizer(vocabURL: Self.modelDir.appendingPathComponent("vocab.txt"), doLowerCase: true)
        #expect(tok.encode("The new movie is awesome", pair: nil, maxLength: nil).ids == [101, 1996, 2047, 3185, 2003, 12476, 102])
    }

    @Test(.enabled(if: available, "pretrained MiniLM missing: run `securerouter data fetch --task none`"))
    func meanPooledEmbeddingMatchesSentenceTransformers() throws {
        let hf = try importHuggingFace(modelDir: Self.modelDir, layers: nil)
        let model = BertForSequenceClassification(config: hf.architecture, rng: SeededGenerator(seed: 0))
        var w: [String: (shape: [Int], data: [Float])] = [:]
        for (k, v) in hf.weights { w[k] = (v.shape, v.data) }
        try model.load(weights: w, strict: false, keepMissing: true)
        let tok = try WordPieceTokenizer(tokens: hf.vocab, doLowerCase: hf.doLowerCase)
        let ids = tok.encode("A man is eating food.", pair: nil, maxLength: nil).ids.map { Int32($0) }
        let batch = EncodedBatch(
            batch: 1, seqLen: ids.count, inputIds: ids, tokenTypeIds: [Int32](repeating: 0, count: ids.count),
            attentionMask: [Float](repeating: 1, count: ids.count))
        let hidden = Tensor.withNoGrad { model.encode(batch) }   // [1, S, H]
        let h = hf.architecture.hidden
        var pooled = [Double](repeating: 0, count: h)
        for s in 0..<ids.count { for j in 0..<h { pooled[j] += Double(hidden.data[s * h + j]) / Double(ids.count) } }
        let norm = pooled.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let got = pooled.prefix(5).map { $0 / norm }
        let expected = [0.03324, 0.00441, -0.00628, 0.04838, -0.1387]
        let diff = zip(got, expected).map { abs($0 - $1) }.max()!
        #expect(diff <= 1e-4, "expected \(expected), got \(got), max difference \(diff)")
    }
}
