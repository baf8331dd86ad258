import Checkpoint
import Foundation
import TextData

/// Shrinks a checkpoint's vocabulary to the word pieces its task's training texts use (plus the special
/// tokens), keeping their order and embedding rows.
///
/// Why: the secure embedding lookup costs 8·S·V bytes online and an `[S, V]·[V, H]` ring product on the
/// server (docs/protocols.md), linear in the vocabulary size V; MiniLM's 30,522 pieces are mostly unused
/// by one task (`mr` train uses 12,039). Texts made only of kept pieces tokenize to the same pieces,
/// so the model computes exactly what it did on them (its training data among them); a piece never seen
/// in training, whose embedding was never fine-tuned, is tokenized with the kept pieces instead (shorter
/// pieces of the word, or `[UNK]`).
public enum VocabularyRestriction {
    /// What `restrict` kept.
    public struct Report: Sendable {
        public var before: Int, after: Int
        /// Texts of the training split tokenized.
        public var texts: Int
    }

    /// Special tokens always kept (when the vocabulary has them).
    public static let specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

    /// The checkpoint with only the pieces used by tokenizing `texts` (and the specials).
    /// - Throws: `CheckpointError` for a checkpoint without a tokenizer or word-embedding table.
    public static func restrict(_ ckpt: ModelCheckpoint, texts: [String], path: String = "") throws -> (ModelCheckpoint, Report) {
        let tokenizer = try WordPieceTokenizer(tokens: ckpt.vocab, doLowerCase: ckpt.doLowerCase)
        var used = Set<Int>()
        for t in texts { used.formUnion(tokenizer.tokenIds(t)) }
        for s in specials { if let i = ckpt.vocab.firstIndex(of: s) { used.insert(i) } }
        let kept = used.sorted()
        let name = "bert.embeddings.word_embeddings.weight"
        guard let table = ckpt.weights[name], table.shape.count == 2, table.shape[0] == ckpt.vocab.count else {
            throw CheckpointError(.schemaMismatch, path: path, object: name,
                                  message: "\(path): no word-embedding table matching the \(ckpt.vocab.count)-piece vocabulary")
        }
        let h = table.shape[1]
        var out = ckpt
        out.vocab = kept.map { ckpt.vocab[$0] }
        out.weights[name] = StoredTensor(shape: [kept.count, h], data: kept.flatMap { table.data[($0 * h)..<(($0 + 1) * h)] })
        // The config's vocabulary size (other keys untouched).
        guard var config = try JSONSerialization.jsonObject(with: Data(ckpt.configJSON.utf8)) as? [String: Any],
              var arch = config["architecture"] as? [String: Any] else {
            throw CheckpointError(.missingConfig, path: path, object: "@config", message: "\(path): config has no architecture")
        }
        arch["vocab_size"] = kept.count
        config["architecture"] = arch
        out.configJSON = String(decoding: try JSONSerialization.data(withJSONObject: config, options: [.sortedKeys]), as: UTF8.self)
        return (out, Report(before: ckpt.vocab.count, after: kept.count, texts: texts.count))
    }
}
