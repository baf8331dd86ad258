import Foundation

/// BERT's "basic" pre-tokenizer (HF `BasicTokenizer`), on Unicode scalars.
///
/// Steps, in HF order:
/// 1. clean: drop U+0000, U+FFFD and controls (general category C*, except `\t \n \r`);
///    whitespace (`\t \n \r`, space, Zs, and Zl/Zp which Python's `str.split` treats as
///    whitespace) separates tokens;
/// 2. CJK ideographs (HF `_is_chinese_char` ranges) become one-character tokens;
/// 3. per whitespace token when `doLowerCase`: strip accents (NFD, drop Mn), then lower-case
///    each scalar (full Unicode mapping, no context rules such as Greek final sigma), which is
///    what transformers 5 / `tokenizers` do; cased tokenizers leave the token unchanged;
/// 4. split off every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126, or P*).
///
/// ASCII tokens take a table-driven fast path; only tokens with non-ASCII scalars go through
/// Foundation's normalisation.
struct BasicTokenizer: Sendable {
    var doLowerCase: Bool

    /// Calls `body` with each word (a run of scalars) in order. `buffer` is scratch space.
    func forEachWord(_ text: String, _ body: (ArraySlice<UInt32>) -> Void) {
        var token: [UInt32] = []
        token.reserveCapacity(64)
        var normalized: [UInt32] = []
        normalized.reserveCapacity(64)
        var isASCII = true

        func flush() {
            guard !token.isEmpty else { return }
            if isASCII {
                if doLowerCase {
                    for i in token.indices where token[i] &- 65 < 26 { token[i] |= 0x20 }
                }
                splitOnPunctuation(token[...], body)
            } else {
                normalize(token, into: &normalized)
                splitOnPunctuation(normalized[...], body)
            }
            token.removeAll(keepingCapacity: true)
            isASCII = true
        }

        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v < 0x80 {
                switch v {
                case 0x09, 0x0A, 0x0D, 0x20: flush()
                case 0x00..<0x20, 0x7F: continue
                default: token.append(v)
                }
                continue
            }
            if v == 0xFFFD { continue }
            if Self.isChineseChar(v) {
                flush()
                token.append(v)
                isASCII = false
                flush()
                continue
            }
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned: continue
            case .spaceSeparator, .lineSeparator, .paragraphSeparator: flush()
            default:
                token.append(v)
                isASCII = false
            }
        }
        flush()
    }

    /// Strip accents (NFD, drop Mn) then lower-case each scalar, like `tokenizers`'
    /// `BertNormalizer`. Cased tokenizers leave the token as is.
    private func normalize(_ token: [UInt32], into out: inout [UInt32]) {
        out.removeAll(keepingCapacity: true)
        guard doLowerCase else {
            out += token
            return
        }
        var s = String.UnicodeScalarView()
        for v in token { s.append(Unicode.Scalar(v)!) }
        for u in String(s).decomposedStringWithCanonicalMapping.unicodeScalars
        where u.properties.generalCategory != .nonspacingMark {
            if u.isASCII {
                out.append(u.value &- 65 < 26 ? u.value | 0x20 : u.value)
            } else {
                for l in u.properties.lowercaseMapping.unicodeScalars { out.append(l.value) }
            }
        }
    }

    private func splitOnPunctuation(_ token: ArraySlice<UInt32>, _ body: (ArraySlice<UInt32>) -> Void) {
        var start = token.startIndex
        for i in token.indices where Self.isPunctuation(token[i]) {
            if start < i { body(token[start..<i]) }
            body(token[i..<(i + 1)])
            start = i + 1
        }
        if start < token.endIndex { body(token[start..<token.endIndex]) }
    }

    /// HF `_is_punctuation`: all non-alphanumeric ASCII printables, plus Unicode P*.
    @inline(__always)
    static func isPunctuation(_ v: UInt32) -> Bool {
        if v < 0x80 {
            return (33...47).contains(v) || (58...64).contains(v) || (91...96).contains(v)
                || (123...126).contains(v)
        }
        guard let scalar = Unicode.Scalar(v) else { return false }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
            .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return true
        default:
            return false
        }
    }

    /// HF `_is_chinese_char`: the CJK Unified Ideographs blocks (not Hangul or kana).
    @inline(__always)
    static func isChineseChar(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v)
            || (0x20000...0x2A6DF).contains(v) || (0x2A700...0x2B73F).contains(v)
            || (0x2B740...0x2B81F).contains(v) || (0x2B820...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }
}
