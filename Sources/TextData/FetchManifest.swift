import Foundation

/// `MANIFEST.json` written next to fetched files; the fetch is skipped when it still matches.
///
/// `{"format":1,"source":{"name","version","fileName","sha256"},"files":{"train.tsv":{"sha256","rows"}}}`
/// (`rows` counts data rows, header excluded; absent for non-TSV files).
public struct FetchManifest: Codable, Sendable, Equatable {
    public struct FileRecord: Codable, Sendable, Equatable {
        public var sha256: String
        public var rows: Int?
    }

    public var format: Int = 1
    public var source: WheelSpec
    public var files: [String: FileRecord]

    static let fileName = "MANIFEST.json"

    /// True when `directory` holds a manifest for `source` and every listed file has its hash.
    static func isCurrent(in directory: URL, source: WheelSpec, expectedFiles: [String]) -> Bool {
        let url = directory.appendingPathComponent(fileName)
        guard let data = try? Data(contentsOf: url),
            let manifest = try? JSONDecoder().decode(FetchManifest.self, from: data),
            manifest.format == 1, manifest.source == source,
            Set(manifest.files.keys) == Set(expectedFiles)
        else { return false }
        for (name, record) in manifest.files {
            guard let hash = try? sha256Hex(fileAt: directory.appendingPathComponent(name)), hash == record.sha256
            else { return false }
        }
        return true
    }

    func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(encoder.encode(self), to: directory.appendingPathComponent(Self.fileName))
    }
}

/// Writes `data` to `url` atomically, mapping failures to `FetchError.io`.
func writeAtomically(_ data: Data, to url: URL) throws {
    do { try data.write(to: url, options: .atomic) } catch {
        throw FetchError.io(path: url.path, reason: error.localizedDescription)
    }
}
