import ArgumentParser
import Foundation
import TextData

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize text with a BERT WordPiece vocabulary (uncased rules).",
        discussion: "Prints {\"ids\":[[int]]} on stdout: one list per line, with [CLS] ... [SEP] and no padding.")

    @Option(help: "vocab.txt (one token per line) or a checkpoint .h5 holding tokenizer/vocab.")
    var vocab: String

    @Option(help: "Text file, one sequence per line.")
    var textFile: String

    @Option(help: "Second segment of each pair, one per line (same line count as --text-file).")
    var pairFile: String?

    @Option(help: "Truncate to N tokens, [CLS]/[SEP] included (longest-first for pairs).")
    var maxLen: Int?

    func validate() throws {
        if let maxLen, maxLen < 3 { throw ValidationError("--max-len must be at least 3 ([CLS], one token, [SEP])") }
    }

    func run() throws {
        let tokenizer = try loadTokenizer(vocab)
        let lines = try readQueryLines(textFile)
        var pairs: [String]? = nil
        if let pairFile {
            pairs = try readQueryLines(pairFile)
            guard pairs!.count == lines.count else {
                throw ValidationError("--pair-file has \(pairs!.count) lines but --text-file has \(lines.count)")
            }
        }
        let ids = lines.enumerated().map { i, l in tokenizer.encode(l, pair: pairs?[i], maxLength: maxLen).ids }
        let data = try JSONSerialization.data(withJSONObject: ["ids": ids])
        FileHandle.standardOutput.write(data + Data([0x0A]))
    }
}
