import CoDesign
import Foundation
import Testing

/// The transfer set of distillation: sentences cut from unlabelled text, a seeded sample of them.
@Suite struct TransferSetTests {
    @Test func splitsIntoSentencesOfFourToSixtyWords() {
        let text = "A fine film. Truly!<br /><br />Why would anyone make this? It is long and slow... but the ending works"
            + " (mostly). 3.5 stars out of five for it"
        #expect(TransferSet.sentences([text]) == [
            "A fine film.", "Why would anyone make this?", "It is long and slow...",
            "but the ending works (mostly).", "3.5 stars out of five for it",
        ].filter { $0.split(separator: " ").count >= 4 })
        let long = Array(repeating: "word", count: 61).joined(separator: " ") + "."
        #expect(TransferSet.sentences([long]).isEmpty)
    }

    @Test func sampleIsSeededAndFileErrorsAreClear() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("transfer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("u.tsv")
        let rows = (0..<50).map { "review \($0) has four words. and then another one here \($0)\t\($0 % 2)" }
        try (["sentence\tlabel"] + rows).joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        let a = try TransferSet.sample(file: file.path, count: 30, seed: 1), b = try TransferSet.sample(file: file.path, count: 30, seed: 1)
        #expect(a == b && a.count == 30 && Set(a).count == 30)
        #expect(try TransferSet.sample(file: file.path, count: 30, seed: 2) != a)
        #expect(try TransferSet.sample(file: file.path, count: 1000, seed: 1).count == 100)
        #expect { try TransferSet.sample(file: dir.appendingPathComponent("none.tsv").path, count: 5, seed: 1) } throws: { error in
            "\(error)".contains("none.tsv not found")
        }
    }
}
