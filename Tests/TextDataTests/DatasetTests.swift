import Foundation
import Testing

@testable import TextData

struct DatasetReaderTests {
    @Test func readsOurSingleAndPairLayouts() throws {
        let single = try DatasetReader(task: .trec).parse("sentence\tlabel\nwhat is x ?\t2\r\nwho ?\t3\n", path: "t.tsv")
        #expect(single == [Example(text: "what is x ?", label: 2), Example(text: "who ?", label: 3)])
        let pair = try DatasetReader(task: .qnli).parse("sentence1\tsentence2\tlabel\na\tb\t1\n", path: "p.tsv")
        #expect(pair == [Example(text: "a", pair: "b", label: 1)])
    }

    @Test func readsGLUEFiles() throws {
        let mrpc = "\u{FEFF}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t11\t12\tHe said \"hi\".\tHe said hello.\n"
        #expect(try DatasetReader(task: .mrpc).parse(mrpc, path: "m") == [Example(text: "He said \"hi\".", pair: "He said hello.", label: 1)])
        let qnli = "index\tquestion\tsentence\tlabel\n0\tWhat?\tThat.\tnot_entailment\n"
        #expect(try DatasetReader(task: .qnli).parse(qnli, path: "q") == [Example(text: "What?", pair: "That.", label: 1)])
        let rte = "index\tsentence1\tsentence2\tlabel\n0\tA.\tB.\tentailment\n"
        #expect(try DatasetReader(task: .rte).parse(rte, path: "r") == [Example(text: "A.", pair: "B.", label: 0)])
    }

    @Test(arguments: [
        ("sentence\tlabel\ngood\t1\nbad\n", DatasetError.malformedLine(path: "f.tsv", line: 3, expectedFields: 2, foundFields: 1)),
        ("sentence\tlabel\ngood\t7\n", DatasetError.unknownLabel(path: "f.tsv", line: 2, label: "7", allowed: ["0", "1"])),
        ("sentence\tlabel\ngood\t1\n \t0\n", DatasetError.emptyText(path: "f.tsv", line: 3, column: "sentence")),
        ("text\tlabel\ngood\t1\n", DatasetError.unknownHeader(path: "f.tsv", header: "text\\tlabel")),
    ])
    func errorsNameFileAndLine(content: String, expected: DatasetError) {
        #expect(throws: expected) { try DatasetReader(task: .mr).parse(content, path: "f.tsv") }
    }

    @Test func registry() throws {
        #expect(try TaskInfo.named("imdb").defaultMaxLength == 256)
        #expect(try TaskInfo.named("r8").numLabels == 8)
        #expect(try TaskInfo.named("trec").labelNames == ["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"])
        #expect(throws: DatasetError.self) { try TaskInfo.named("nope") }
    }
}

struct BatcherTests {
    let tokenizer = try! WordPieceTokenizer(tokens: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"])

    @Test func padsToLongestAndFixed() {
        let examples = [Example(text: "a", label: 0), Example(text: "a b a", label: 1), Example(text: "b", pair: "a", label: 1)]
        let batcher = Batcher(examples: examples, tokenizer: tokenizer, maxLength: 8, batchSize: 2)
        let batches = batcher.batches(epoch: 0, seed: 1, shuffle: false)
        #expect(batches.count == 2)
        #expect(batches[0].seqLen == 5 && batches[0].batch == 2)
        #expect(batches[0].inputIds == [2, 5, 3, 0, 0, 2, 5, 6, 5, 3])
        #expect(batches[0].attentionMask == [1, 1, 1, 0, 0, 1, 1, 1, 1, 1])
        #expect(batches[0].labels == [0, 1])
        #expect(batches[1].tokenTypeIds == [0, 0, 0, 1, 1])
        let fixed = Batcher(examples: examples, tokenizer: tokenizer, maxLength: 4, batchSize: 3, padding: .fixed)
        let b = fixed.batches(epoch: 0, seed: 1, shuffle: false)[0]
        #expect(b.seqLen == 4 && b.inputIds.count == 12)
        #expect(Array(b.inputIds[4..<8]) == [2, 5, 6, 3])  // truncated to maxLength
    }

    @Test func shuffleIsDeterministicPerEpoch() {
        let examples = (0..<50).map { Example(text: "a", label: $0 % 2) }
        let batcher = Batcher(examples: examples, tokenizer: tokenizer, maxLength: 8, batchSize: 7)
        let e0 = batcher.order(epoch: 0, seed: 42, shuffle: true)
        #expect(e0 == batcher.order(epoch: 0, seed: 42, shuffle: true))
        #expect(e0 != batcher.order(epoch: 1, seed: 42, shuffle: true))
        #expect(e0.sorted() == Array(0..<50))
        #expect(batcher.batches(epoch: 3, seed: 42).flatMap(\.exampleIndices) == batcher.order(epoch: 3, seed: 42, shuffle: true))
    }
}
