import Checkpoint
import Foundation
import Testing

/// `restrict-vocab`: the kept vocabulary is the training split's pieces plus the specials, and texts made
/// of kept pieces get exactly the original logits.
@Suite(.serialized) struct RestrictVocabTests {
    @Test(.timeLimit(.minutes(4))) func keepsTheTrainingPiecesAndTheirPredictions() throws {
        let dir = try CLI.tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let ckpt = try SecureEvalTests.trainTiny(in: dir)
        // A training word the tiny vocabulary has but the training split never uses: "plot".
        let r = try CLI.run(["restrict-vocab", "--checkpoint", ckpt, "--out", "small.h5", "--json", "r.json"], cwd: dir)
        #expect(r.status == 0, "restrict-vocab failed:\n\(r.stderr)")
        let small = try ModelCheckpoint.read(from: dir.appendingPathComponent("small.h5").path)
        let original = try ModelCheckpoint.read(from: ckpt)
        #expect(small.vocab.count < original.vocab.count && !small.vocab.contains("plot") && small.vocab.contains("movie"))
        #expect(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].allSatisfy(small.vocab.contains))
        #expect(small.weights["bert.embeddings.word_embeddings.weight"]?.shape == [small.vocab.count, 32])
        #expect(small.configJSON.contains("\"vocab_size\":\(small.vocab.count)"))
        // Same logits on texts of kept pieces; the unseen word maps to [UNK] instead.
        try "the movie was very good .\nthe movie was awful .\n".write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
        func logits(_ file: String) throws -> [[Double]] {
            let p = try CLI.run(["predict", "--checkpoint", file, "--text-file", "q.txt", "--json", "-"], cwd: dir)
            #expect(p.status == 0, "predict failed:\n\(p.stderr)")
            let doc = try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as! [String: Any]
            return (doc["predictions"] as! [[String: Any]]).map { $0["logits"] as! [Double] }
        }
        #expect(try logits(ckpt) == logits("small.h5"))
        let bad = try CLI.run(["restrict-vocab", "--checkpoint", "nope.h5", "--out", "x.h5"], cwd: dir)
        #expect(bad.status != 0 && bad.stderr.contains("no such checkpoint"))
    }
}
