import Foundation

/// The output of `WordPieceTokenizer.encode`: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, unpadded.
public struct Encoding: Sendable, Equatable {
    /// Token ids (S).
    public var ids: [Int]
    /// Segment ids (S): 0 for `[CLS] a [SEP]`, 1 for `b [SEP]`.
    public var tokenTypeIds: [Int]

    public init(ids: [Int], tokenTypeIds: [Int]) {
        precondition(ids.count == tokenTypeIds.count, "ids and tokenTypeIds differ in length")
        self.ids = ids
        self.tokenTypeIds = tokenTypeIds
    }

    /// Number of tokens (S).
    public var count: Int { ids.count }
}

/// BERT WordPiece tokenizer with Hugging Face `BertTokenizer` semantics
/// (basic tokenizer + greedy longest-match-first WordPiece, `##` continuations,
/// words over 100 characters -> `[UNK]`).
///
/// Deliberate difference: special-token strings inside the text (e.g. a literal "[SEP]")
/// are tokenized as ordinary text, so user text can never inject structure.
public struct WordPieceTokenizer: Sendable {
    public let vocabulary: Vocabulary
    public let doLowerCase: Bool
    /// HF `max_input_chars_per_word`.
    public let maxCharsPerWord: Int
    public let clsId: Int
    public let sepId: Int
    public let padId: Int
    public let unkId: Int
    public let maskId: Int
    private let basic: BasicTokenizer

    /// - Throws: `TokenizerError.missingSpecialToken` when a special token is absent.
    public init(vocabulary: Vocabulary, doLowerCase: Bool = true, maxCharsPerWord: Int = 100) throws {
        func special(_ token: String) throws -> Int {
            guard let id = vocabulary.id(of: token) else {
                throw TokenizerError.missingSpecialToken(token: token, source: "(\(vocabulary.count) tokens)")
            }
            return id
        }
        self.vocabulary = vocabulary
        self.doLowerCase = doLowerCase
        self.maxCharsPerWord = maxCharsPerWord
        clsId = try special("[CLS]")
        sepId = try special("[SEP]")
        padId = try special("[PAD]")
        unkId = try special("[UNK]")
        maskId = try special("[MASK]")
        basic = BasicTokenizer(doLowerCase: doLowerCase)
    }

    /// Builds a tokenizer from token strings (id = index).
    public init(tokens: [String], doLowerCase: Bool = true) throws {
        try self.init(vocabulary: Vocabulary(tokens: tokens), doLowerCase: doLowerCase)
    }

    /// Loads a `vocab.txt`.
    /// - Throws: `TokenizerError` when the file is unreadable or lacks a special token.
    public init(vocabURL: URL, doLowerCase: Bool = true) throws {
        do {
            try self.init(vocabulary: Vocabulary(contentsOf: vocabURL), doLowerCase: doLowerCase)
        } catch TokenizerError.missingSpecialToken(let token, _) {
            throw TokenizerError.missingSpecialToken(token: token, source: vocabURL.path)
        }
    }

    /// WordPiece tokens of `text`, without special tokens.
    public func tokenize(_ text: String) -> [String] {
        tokenIds(text).map { vocabulary.tokens[$0] }
    }

    /// WordPiece ids of `text`, without special tokens.
    public func tokenIds(_ text: String) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(text.utf8.count / 4 + 4)
        let trie = vocabulary.trie
        basic.forEachWord(text) { word in
            trie.pieces(of: word, unk: unkId, maxChars: maxCharsPerWord, into: &out)
        }
        return out
    }

    /// Encodes one sequence or a pair as `[CLS] a [SEP] (b [SEP])`.
    ///
    /// With `maxLength`, truncates like Hugging Face (`truncation="longest_first"` in
    /// transformers 5 / `tokenizers`, also v4's fast tokenizer): a single sequence loses its tail;
    /// for a pair, when the shorter one fits in half the budget only the longer is cut, otherwise
    /// the shorter keeps `budget / 2` and the longer `budget - budget / 2` (on a tie the first
    /// sequence is the "shorter"). v4's slow Python loop differs by one token on some ties.
    /// - Precondition: `maxLength` leaves room for the special tokens (>= 2, or >= 3 for a pair).
    public func encode(_ text: String, pair: String? = nil, maxLength: Int? = nil) -> Encoding {
        var a = tokenIds(text)
        var b = pair.map(tokenIds)
        if let maxLength {
            let specials = b == nil ? 2 : 3
            precondition(maxLength >= specials, "maxLength \(maxLength) < \(specials) special tokens")
            Self.truncateLongestFirst(&a, &b, budget: maxLength - specials)
        }
        var ids = [clsId]
        ids.reserveCapacity(a.count + (b?.count ?? 0) + 3)
        ids += a
        ids.append(sepId)
        var types = [Int](repeating: 0, count: ids.count)
        if let b {
            ids += b
            ids.append(sepId)
            types += [Int](repeating: 1, count: b.count + 1)
        }
        return Encoding(ids: ids, tokenTypeIds: types)
    }

    /// `tokenizers` `truncate_encodings` with `LongestFirst`, on the text budget
    /// (maxLength minus the special tokens).
    static func truncateLongestFirst(_ a: inout [Int], _ b: inout [Int]?, budget: Int) {
        guard var second = b else {
            if a.count > budget { a.removeLast(a.count - budget) }
            return
        }
        guard a.count + second.count > budget else { return }
        let firstIsShorter = a.count <= second.count
        let shorter = min(a.count, second.count)
        let (keepShort, keepLong) = shorter > budget / 2
            ? (budget / 2, budget - budget / 2) : (shorter, budget - shorter)
        let (na, nb) = firstIsShorter ? (keepShort, keepLong) : (keepLong, keepShort)
        a.removeLast(a.count - na)
        second.removeLast(second.count - nb)
        b = second
    }
}
