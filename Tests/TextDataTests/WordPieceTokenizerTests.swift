import Foundation
import Testing

@testable import TextData

/// A tiny vocabulary: ids 0-4 special, then words and pieces.
private let smallTokens = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "movie", "is", "awe", "##some", "un", "##believ", "##able", "##ably", ",", "!", ".", "'",
    "s", "cafe", "ecole", "我", "爱", "a", "##a", "σοφος", "σοφοσ", "b", "##b", "[", "]", "sep", "?",
]

private func small(lower: Bool = true) throws -> WordPieceTokenizer {
    try WordPieceTokenizer(tokens: smallTokens, doLowerCase: lower)
}

struct WordPieceTokenizerTests {
    @Test(arguments: [
        ("The movie is awesome!", ["the", "movie", "is", "awe", "##some", "!"]),
        ("unbelievably", ["un", "##believ", "##ably"]),
        ("unbelievable,the", ["un", "##believ", "##able", ",", "the"]),
        ("Café ÉCOLE", ["cafe", "ecole"]),
        ("我爱the", ["我", "爱", "the"]),
        ("the\tmovie\nis\r\n\u{00A0}awesome", ["the", "movie", "is", "awe", "##some"]),
        ("th\u{0000}e mo\u{200B}vie\u{FFFD}", ["the", "movie"]),
        ("unknownword the", ["[UNK]", "the"]),
        ("awex", ["[UNK]"]),
        ("movie's", ["movie", "'", "s"]),
        ("[SEP]", ["[", "sep", "]"]),
        ("ΣΟΦΟΣ", ["σοφοσ"]),
        ("", []),
        ("   \t ", []),
        ("😀", ["[UNK]"]),
    ])
    func tokenizeSmallVocab(text: String, expected: [String]) throws {
        #expect(try small().tokenize(text) == expected)
    }

    @Test func wordLongerThan100CharactersIsUnknown() throws {
        let tok = try small()
        let a100 = String(repeating: "a", count: 100)
        #expect(tok.tokenize(a100) == ["a"] + Array(repeating: "##a", count: 99))
        #expect(tok.tokenize(a100 + "a") == ["[UNK]"])
        #expect(tok.tokenize(a100 + "a the") == ["[UNK]", "the"])
    }

    @Test func casedKeepsCaseAndAccents() throws {
        let tok = try small(lower: false)
        #expect(tok.tokenize("The movie") == ["[UNK]", "movie"])
        #expect(tok.tokenize("cafe\u{301}") == ["[UNK]"])
    }

    @Test func encodeAddsSpecialTokensAndSegments() throws {
        let tok = try small()
        let one = tok.encode("the movie")
        #expect(one.ids == [2, 5, 6, 3])
        #expect(one.tokenTypeIds == [0, 0, 0, 0])
        let two = tok.encode("the movie", pair: "is awesome")
        #expect(two.ids == [2, 5, 6, 3, 7, 8, 9, 3])
        #expect(two.tokenTypeIds == [0, 0, 0, 0, 1, 1, 1, 1])
        #expect(tok.encode("the movie is", maxLength: 4).ids == [2, 5, 6, 3])
        #expect(tok.encode("the movie is", maxLength: 2).ids == [2, 3])
    }

    @Test(arguments: [
        // (lengths a, b, budget) -> kept (a, b), as Hugging Face tokenizers' LongestFirst.
        ((5, 5, 6), (3, 3)), ((5, 5, 5), (2, 3)), ((1, 9, 7), (1, 6)), ((9, 1, 7), (6, 1)),
        ((7, 11, 9), (4, 5)), ((11, 7, 9), (5, 4)), ((3, 3, 10), (3, 3)), ((4, 4, 0), (0, 0)),
    ])
    func longestFirstTruncation(input: (Int, Int, Int), kept: (Int, Int)) {
        var a = Array(0..<input.0)
        var b: [Int]? = Array(100..<(100 + input.1))
        WordPieceTokenizer.truncateLongestFirst(&a, &b, budget: input.2)
        #expect(a == Array(0..<kept.0))
        #expect(b == Array(100..<(100 + kept.1)))
    }

    @Test func missingSpecialTokenThrows() {
        #expect(throws: TokenizerError.self) { try WordPieceTokenizer(tokens: ["[PAD]", "[UNK]", "a"]) }
    }

    @Test func vocabularyFileLoadsLikeHuggingFace() throws {
        let dir = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("vocab.txt")
        try (smallTokens.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        let tok = try WordPieceTokenizer(vocabURL: url)
        #expect(tok.vocabulary.count == smallTokens.count)
        #expect(tok.clsId == 2 && tok.sepId == 3 && tok.padId == 0 && tok.unkId == 1 && tok.maskId == 4)
        #expect(throws: TokenizerError.self) {
            try WordPieceTokenizer(vocabURL: dir.appendingPathComponent("missing.txt"))
        }
    }
}

/// Golden ids from `fixtures/make_wordpiece_golden.py` (Hugging Face transformers' BertTokenizer).
@Suite(.enabled(if: TestPaths.hasMiniLMVocab,
    "needs checkpoints/pretrained/minilm-l6/vocab.txt: run `securerouter data fetch` first"))
struct WordPieceGoldenTests {
    struct Golden: Decodable {
        struct Case: Decodable {
            var text: String
            var pair: String?
            var max_length: Int?
            var ids: [Int]
            var token_type_ids: [Int]?
        }
        var singles: [Case]
        var pairs: [Case]
    }

    func load() throws -> (WordPieceTokenizer, Golden) {
        let tok = try WordPieceTokenizer(vocabURL: TestPaths.miniLMVocab)
        let data = try Data(contentsOf: TestPaths.fixtures.appendingPathComponent("wordpiece_golden.json"))
        return (tok, try JSONDecoder().decode(Golden.self, from: data))
    }

    @Test func acceptanceSentence() throws {
        let tok = try WordPieceTokenizer(vocabURL: TestPaths.miniLMVocab)
        #expect(tok.encode("The new movie is awesome").ids == [101, 1996, 2047, 3185, 2003, 12476, 102])
    }

    @Test func matchesHuggingFace() throws {
        let (tok, golden) = try load()
        for c in golden.singles + golden.pairs {
            let enc = tok.encode(c.text, pair: c.pair, maxLength: c.max_length)
            #expect(enc.ids == c.ids, "text: \(c.text.debugDescription) pair: \(String(describing: c.pair))")
            if let types = c.token_type_ids { #expect(enc.tokenTypeIds == types) }
        }
    }
}
