import Foundation

/// One labelled example; `label` is an index into `TaskInfo.labels`.
public struct Example: Sendable, Equatable {
    public var text: String
    public var pair: String?
    public var label: Int

    public init(text: String, pair: String? = nil, label: Int) {
        self.text = text
        self.pair = pair
        self.label = label
    }
}

/// Reads labelled TSV files. The layout is detected from the header line:
///
/// | header | layout | text, pair, label columns |
/// |---|---|---|
/// | `sentence\tlabel` | ours and GLUE SST-2 | 0, -, 1 |
/// | `sentence1\tsentence2\tlabel` | ours (pairs) | 0, 1, 2 |
/// | `Quality\t#1 ID\t#2 ID\t#1 String\t#2 String` | GLUE MRPC | 3, 4, 0 |
/// | `index\tquestion\tsentence\tlabel` | GLUE QNLI | 1, 2, 3 |
/// | `index\tsentence1\tsentence2\tlabel` | GLUE RTE | 1, 2, 3 |
///
/// A label must be one of `task.labels`; in our two layouts an integer `0..<numLabels` is also
/// accepted (so a QNLI file converted to our layout may store 0/1). Fields are split on tabs
/// with no quoting (GLUE's `QUOTE_NONE`); a UTF-8 BOM and `\r` line ends are tolerated; a final
/// empty line is ignored, any other line must have exactly the header's field count.
public struct DatasetReader: Sendable {
    public let task: TaskInfo

    public init(task: TaskInfo) { self.task = task }

    struct Layout {
        var fields: Int
        var text: Int
        var pair: Int?
        var label: Int
        var ours: Bool
    }

    static func layout(forHeader header: [String]) -> Layout? {
        switch header {
        case ["sentence", "label"]: return Layout(fields: 2, text: 0, pair: nil, label: 1, ours: true)
        case ["sentence1", "sentence2", "label"]: return Layout(fields: 3, text: 0, pair: 1, label: 2, ours: true)
        case ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]:
            return Layout(fields: 5, text: 3, pair: 4, label: 0, ours: false)
        case ["index", "question", "sentence", "label"]: return Layout(fields: 4, text: 1, pair: 2, label: 3, ours: false)
        case ["index", "sentence1", "sentence2", "label"]: return Layout(fields: 4, text: 1, pair: 2, label: 3, ours: false)
        default: return nil
        }
    }

    /// Reads every example of `url`.
    /// - Throws: `DatasetError` with the path and 1-based line number for an unreadable file,
    ///   unknown header, wrong field count, label outside `task.labels`, or empty text.
    public func read(_ url: URL) throws -> [Example] {
        try parse(ByteLines.read(url), path: url.path)
    }

    /// Parses TSV `content`; `path` is only used in error messages.
    public func parse(_ content: String, path: String) throws -> [Example] {
        try parse(Array(content.utf8), path: path)
    }

    func parse(_ bytes: [UInt8], path: String) throws -> [Example] {
        let table = try Self.table(bytes, path: path)
        let (header, layout) = (table.header, table.layout)
        let labelIndex = Dictionary(task.labels.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var examples: [Example] = []
        examples.reserveCapacity(table.rows.count)
        for (lineNumber, fields) in table.rows {
            let labelText = fields[layout.label]
            var label = labelIndex[labelText]
            if label == nil, layout.ours, let i = Int(labelText), (0..<task.numLabels).contains(i) { label = i }
            guard let label else {
                throw DatasetError.unknownLabel(path: path, line: lineNumber, label: labelText, allowed: task.labels)
            }
            let text = try Self.text(fields, layout.text, header, path, lineNumber)
            let pair = try layout.pair.map { try Self.text(fields, $0, header, path, lineNumber) }
            examples.append(Example(text: text, pair: pair, label: label))
        }
        return examples
    }

    /// The header, its layout and every data line's fields (with its 1-based line number), each line
    /// checked to have the header's field count.
    static func table(_ bytes: [UInt8], path: String) throws -> (header: [String], layout: Layout, rows: [(line: Int, fields: [String])]) {
        let lines = ByteLines.lines(bytes)
        guard let first = lines.first else { throw DatasetError.unknownHeader(path: path, header: "") }
        let header = ByteLines.fields(ByteLines.dropBOM(first))
        guard let layout = layout(forHeader: header) else {
            throw DatasetError.unknownHeader(path: path, header: header.joined(separator: "\\t"))
        }
        let rows = try lines.enumerated().dropFirst().map { offset, raw -> (line: Int, fields: [String]) in
            let fields = ByteLines.fields(raw)
            guard fields.count == layout.fields else {
                throw DatasetError.malformedLine(path: path, line: offset + 1, expectedFields: layout.fields, foundFields: fields.count)
            }
            return (offset + 1, fields)
        }
        return (header, layout, rows)
    }

    /// The first text column of every line of `url` (any layout above), labels ignored: unlabelled text
    /// for distillation (`TransferSet`). Empty texts are skipped.
    /// - Throws: `DatasetError` for an unreadable file, unknown header or wrong field count.
    public static func texts(_ url: URL) throws -> [String] {
        let table = try table(try ByteLines.read(url), path: url.path)
        return table.rows.map { $0.fields[table.layout.text] }.filter { $0.unicodeScalars.contains { !$0.properties.isWhitespace } }
    }

    private static func text(_ fields: [String], _ i: Int, _ header: [String], _ path: String, _ line: Int) throws -> String {
        let field = fields[i]
        guard field.unicodeScalars.contains(where: { !$0.properties.isWhitespace }) else {
            throw DatasetError.emptyText(path: path, line: line, column: header[i])
        }
        return field
    }
}
