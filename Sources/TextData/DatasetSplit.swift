import Crypto
import Foundation

/// Train/dev/test rows of one task, ready to be written as TSV.
public struct DatasetSplits: Sendable, Equatable {
    public var train: [Example] = []
    public var dev: [Example] = []
    public var test: [Example] = []

    public init(train: [Example] = [], dev: [Example] = [], test: [Example] = []) {
        self.train = train
        self.dev = dev
        self.test = test
    }

    /// DESIGN §3 rule: number rows 0, 1, 2, ... in file order; row i goes to test when
    /// i % 10 == 0, dev when i % 10 == 1, train otherwise.
    public static func byIndex(_ rows: [Example]) -> DatasetSplits {
        var s = DatasetSplits()
        for (i, row) in rows.enumerated() {
            switch i % 10 {
            case 0: s.test.append(row)
            case 1: s.dev.append(row)
            default: s.train.append(row)
            }
        }
        return s
    }

    /// Official test set; dev = official-train rows with i % 10 == 1, train = the rest (r8).
    public static func officialTest(train rows: [Example], test: [Example]) -> DatasetSplits {
        var s = DatasetSplits(test: test)
        for (i, row) in rows.enumerated() {
            if i % 10 == 1 { s.dev.append(row) } else { s.train.append(row) }
        }
        return s
    }

    /// `sentence\tlabel` TSV (integer labels) of `rows`; tabs, `\r` and `\n` in text become spaces.
    public static func tsv(_ rows: [Example]) -> Data {
        var out = "sentence\tlabel\n"
        for row in rows {
            out += sanitize(row.text)
            out += "\t\(row.label)\n"
        }
        return Data(out.utf8)
    }

    /// Replaces the TSV separators (tab, CR, LF) by spaces.
    public static func sanitize(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else { return text }
        return String(decoding: text.utf8.map { $0 == 0x09 || $0 == 0x0A || $0 == 0x0D ? 0x20 : $0 }, as: UTF8.self)
    }
}

/// Lower-case hex SHA-256.
func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

/// Streams a file through SHA-256 (the model file is ~90 MB).
func sha256Hex(fileAt url: URL) throws -> String {
    guard let handle = try? FileHandle(forReadingFrom: url) else {
        throw FetchError.io(path: url.path, reason: "cannot open for reading")
    }
    defer { try? handle.close() }
    var hasher = SHA256()
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
}
