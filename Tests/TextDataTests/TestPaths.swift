import Foundation

/// Paths used by the tests, located from this file so they do not depend on the working directory.
enum TestPaths {
    /// `Tests/TextDataTests/fixtures`.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("fixtures")
    /// The package root.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// The real MiniLM vocabulary, present after `securerouter data fetch`.
    static let miniLMVocab = packageRoot.appendingPathComponent("checkpoints/pretrained/minilm-l6/vocab.txt")
    static var hasMiniLMVocab: Bool { FileManager.default.fileExists(atPath: miniLMVocab.path) }

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("TextDataTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
