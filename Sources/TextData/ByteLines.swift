import Foundation

/// Line and field splitting on UTF-8 bytes. `String.split` works on grapheme clusters, where
/// "\r\n" is one Character and splitting is slow; bytes are exact and fast.
enum ByteLines {
    /// Reads `url` as bytes and checks it is UTF-8.
    static func read(_ url: URL) throws -> [UInt8] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw DatasetError.unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        guard String(data: data, encoding: .utf8) != nil else {
            throw DatasetError.unreadableFile(path: url.path, reason: "not valid UTF-8")
        }
        return [UInt8](data)
    }

    /// Splits on "\n", drops one trailing "\r" per line and the empty line after a final "\n".
    static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        return lines.map { $0.last == 0x0D ? $0.dropLast() : $0 }
    }

    /// Splits one line on `separator` (tab by default) into Strings.
    static func fields(_ line: ArraySlice<UInt8>, separator: UInt8 = 0x09) -> [String] {
        line.split(separator: separator, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Drops a UTF-8 byte-order mark.
    static func dropBOM(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        line.starts(with: [0xEF, 0xBB, 0xBF]) ? line.dropFirst(3) : line
    }
}
