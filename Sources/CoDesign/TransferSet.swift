import Foundation
import Tensor
import TextData
import Transformer

/// Unlabelled in-domain sentences that a teacher labels for its student: the augmentation of
/// task-specific distillation (TinyBERT, Jiao et al. 2020; Tang et al. 2019). A small student learns
/// more of its teacher's function from many examples of its input distribution than from the task's
/// few labelled ones, and the teacher's answers cost nothing to collect.
///
/// A transfer file is a TSV in a dataset layout (`DatasetReader`), e.g. `datasets/imdb/train.tsv` for
/// `mr` (movie reviews both); its labels are ignored. Texts are split into sentences (at `.`, `!`, `?`
/// followed by a space, HTML line breaks removed); sentences of 4 to 60 words are kept, and a seeded
/// sample of them is labelled with the teacher's argmax. They then join the training set: the student
/// sees the teacher's soft targets on them (`distill.alpha`) and the teacher's label as hard target.
public enum TransferSet {
    /// Sentences of `texts`, in order (see the type's doc for the rule).
    public static func sentences(_ texts: [String]) -> [String] {
        var out = [String]()
        for text in texts {
            var current = ""
            let cleaned = text.replacingOccurrences(of: "<br />", with: " ").replacingOccurrences(of: "<br/>", with: " ")
            let chars = Array(cleaned)
            for (i, c) in chars.enumerated() {
                current.append(c)
                let end = (c == "." || c == "!" || c == "?") && (i + 1 == chars.count || chars[i + 1] == " ")
                if end || i + 1 == chars.count {
                    let words = current.split(separator: " ", omittingEmptySubsequences: true)
                    if (4...60).contains(words.count) { out.append(words.joined(separator: " ")) }
                    current = ""
                }
            }
        }
        return out
    }

    /// A seeded sample of `count` sentences (all of them if fewer) of the texts of `file`.
    /// - Throws: `ConfigError` naming the file when it is missing or has no usable sentence.
    public static func sample(file: String, count: Int, seed: UInt64) throws -> [String] {
        guard FileManager.default.fileExists(atPath: file) else {
            throw ConfigError("distill.transfer: \(file) not found (a TSV of unlabelled text, e.g. `securerouter data fetch --task imdb`)")
        }
        var all = sentences(try DatasetReader.texts(URL(fileURLWithPath: file)))
        guard !all.isEmpty else { throw ConfigError("distill.transfer: \(file) has no sentence of 4 to 60 words") }
        var rng = SplitMix64(seed: seed)
        for i in stride(from: all.count - 1, to: 0, by: -1) { all.swapAt(i, Int(rng.next(below: UInt64(i + 1)))) }
        return Array(all.prefix(count))
    }

    /// The sentences, tokenized as `like` (maximum length, batch size), each labelled with the teacher's
    /// argmax (`Evaluation.logits`, no dropout), and the teacher's logits (for a trainer that keeps them).
    static func labelled(_ texts: [String], teacher: BertForSequenceClassification, tokenizer: WordPieceTokenizer,
                         like like: Batcher) -> (examples: Batcher, logits: [[Float]]) {
        let unlabelled = Batcher(examples: texts.map { Example(text: $0, label: 0) }, tokenizer: tokenizer,
                                 maxLength: like.maxLength, batchSize: like.batchSize)
        let logits = Evaluation.logits(model: teacher, data: unlabelled, batchSize: 64)
        let examples = Batcher(examples: zip(texts, logits.map(Evaluation.argmax)).map { Example(text: $0, label: $1) }, tokenizer: tokenizer,
                               maxLength: like.maxLength, batchSize: like.batchSize)
        return (examples, logits)
    }
}
