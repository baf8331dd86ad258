import Foundation

/// A WordPiece vocabulary: token strings indexed by id, plus a prefix trie for greedy
/// longest-match-first lookup.
///
/// Loading follows Hugging Face `load_vocab`: line `i` (newline-separated, only `\n` stripped)
/// is token id `i`; when a token appears twice the later id wins for string -> id lookups.
public struct Vocabulary: Sendable {
    /// Token strings by id (V entries).
    public let tokens: [String]
    /// Token string -> id.
    public let ids: [String: Int]
    let trie: WordPieceTrie

    /// Builds a vocabulary from token strings; id = array index.
    public init(tokens: [String]) {
        self.tokens = tokens
        var ids = [String: Int](minimumCapacity: tokens.count)
        for (i, token) in tokens.enumerated() { ids[token] = i }
        self.ids = ids
        self.trie = WordPieceTrie(tokens: tokens)
    }

    /// Loads `vocab.txt` (UTF-8, one token per line).
    /// - Throws: `TokenizerError.unreadableVocabulary` when the file is missing or not UTF-8.
    public init(contentsOf url: URL) throws {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadableVocabulary(path: url.path, reason: error.localizedDescription)
        }
        guard String(data: data, encoding: .utf8) != nil else {
            throw TokenizerError.unreadableVocabulary(path: url.path, reason: "not valid UTF-8")
        }
        // Split on "\n" bytes only (HF strips "\n" and keeps any "\r").
        var lines = [UInt8](data).split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        if lines.last == "" { lines.removeLast() }
        self.init(tokens: lines)
    }

    /// Number of tokens (V).
    public var count: Int { tokens.count }

    /// The id of `token`, or nil.
    public func id(of token: String) -> Int? { ids[token] }
}

/// Prefix trie over Unicode scalars. Children live in one hash table keyed by
/// `(node << 21) | scalar`, which is much cheaper than hashing `String`s in the hot loop.
struct WordPieceTrie: Sendable {
    private var children: [UInt64: Int32] = [:]
    /// Token id ending at each node, or -1.
    private(set) var tokenId: [Int32] = [-1]
    /// Node reached by "##" from the root (continuation pieces), or -1 when absent.
    private(set) var continuationRoot: Int32 = -1

    init(tokens: [String]) {
        children.reserveCapacity(tokens.count * 4)
        for (id, token) in tokens.enumerated() {
            var node: Int32 = 0
            for scalar in token.unicodeScalars { node = insertChild(node, scalar.value) }
            tokenId[Int(node)] = Int32(id)
        }
        let hash = UInt32(UInt8(ascii: "#"))
        if let a = child(0, hash), let b = child(a, hash) { continuationRoot = b }
    }

    private mutating func insertChild(_ node: Int32, _ scalar: UInt32) -> Int32 {
        let key = UInt64(node) << 21 | UInt64(scalar)
        if let next = children[key] { return next }
        let next = Int32(tokenId.count)
        tokenId.append(-1)
        children[key] = next
        return next
    }

    @inline(__always)
    func child(_ node: Int32, _ scalar: UInt32) -> Int32? {
        children[UInt64(node) << 21 | UInt64(scalar)]
    }

    /// Greedy longest-match-first WordPiece of one word (HF `WordpieceTokenizer.tokenize`).
    /// Appends piece ids to `out`, or `unk` alone when some position has no matching piece.
    func pieces(of word: ArraySlice<UInt32>, unk: Int, maxChars: Int, into out: inout [Int]) {
        if word.count > maxChars {
            out.append(unk)
            return
        }
        let mark = out.count
        var start = word.startIndex
        while start < word.endIndex {
            var node: Int32 = start == word.startIndex ? 0 : continuationRoot
            var best: Int32 = -1
            var bestEnd = start
            var i = start
            while node >= 0, i < word.endIndex, let next = child(node, word[i]) {
                node = next
                i += 1
                let t = tokenId[Int(node)]
                if t >= 0 { best = t; bestEnd = i }
            }
            if best < 0 {
                out.removeSubrange(mark...)
                out.append(unk)
                return
            }
            out.append(Int(best))
            start = bestEnd
        }
    }
}
