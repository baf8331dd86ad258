/// The kinds of correlated randomness the dealer produces. Every record on a dealer stream is tagged
/// with its kind and shape, so a consumer that asks for the wrong thing fails with
/// "expected X, found Y" instead of computing garbage.
public enum CorrelationKind: UInt8, Sendable, CustomStringConvertible {
    /// The 16-byte PRG seed shared between the dealer and one party (first record of every stream).
    case seed = 1
    /// Elementwise Beaver triple (a, b, c = a ⊙ b), shape = the tensor shape.
    case triple = 2
    /// Matrix Beaver triple (A [m,k], B [k,n], C = A·B) per batch entry, shape = [batch, m, k, n].
    case matmulTriple = 3
    /// Square pair (a, c = a ⊙ a), shape = the tensor shape.
    case squarePair = 4
    /// DReLU key (input mask, shares of its top bit, 63-bit DCF keys), shape = the tensor shape.
    case dreluKey = 5
    /// Narrow comparison key (mask in Z_2^w, shares of its top bit, (w−1)-bit DCF keys), shape = [N, w];
    /// one key serves any number of thresholds on the same input (`Party.stepBits`).
    case comparisonKey = 6
    /// LayerNorm correlation (a [R,h], b [h], c [R]; shares of a⊙a, a⊙b, c⊙b, c⊙a, c⊙a⊙b, all broadcast to
    /// [R, h]), shape = [R, h]: one opening of `x − a`, `γ − b` and one of `s − c` give `x⊙x` and `(x⊙γ)·s`.
    case normScale = 7
    /// Bit-product correlation of `Party.truncateExact`: a private random bit per element for each party
    /// (α for party 0, β for party 1) and arithmetic shares of α·β, shape = [N].
    case bitProduct = 8
    /// 2Quad softmax correlation (a [R,n], c [R]; shares of a⊙a, c⊙a, c⊙a⊙a with c broadcast over
    /// columns), shape = [R, n]: one opening of `x − a` and one of `r − c` give `(x⊙x)·r` per row.
    case quadScale = 9
    /// LayerNorm correlation for a server-owned gain masked once per session (`Party.loadWeight`): as
    /// `normScale`, but b is that gain's session mask (the dealer's copy, by handle), not fresh, so `γ − b`
    /// is opened once per session instead of once per query; shape = [R, h].
    case normScaleGain = 10
    /// Fused 2Quad attention correlation (`Party.quadAttention`), shape = [B, m, n, d]: masks a [B,m,n] of the
    /// shifted scores and b [B,n,d] of V, and shares of a⊙a, (a⊙a)·b [B,m,d] and a_ik·b_kj [B,m,n,d], so that one
    /// opening of both gives `(x + c)²·V` without opening the probabilities.
    case quadAttention = 11
    /// Private key-flag correlation (`Party.multiplyByClientKeys`), shape = [G, R, n]: a mask a [G·R·n] for the
    /// server, a mask b [G·n] for the client, and shares of a ⊙ b (b broadcast over each group's R rows), so
    /// that one round multiplies shared scores by 0/1 key flags that only the client holds.
    case keyFlags = 12
    /// Square-and-fan correlation (`Party.squareAndProducts`), shape = [N, J]: a mask a [N] of x, masks b [J·N]
    /// of J partners y_j, and shares of a ⊙ a and of each a ⊙ b_j, so that one opening of `x − a` and every
    /// `y_j − b_j` gives `x ⊙ x` and every `x ⊙ y_j` (x's mask is opened once for all of them).
    case squareFan = 13
    /// Session mask B [k,n] of a server-owned weight (server draws it from its PRG), shape = [k, n].
    case weightMask = 16
    /// Per-query correlation for `x · W` with a masked weight: A [m,k] (client PRG) and shares of A·B,
    /// shape = [m, k, n].
    case maskedWeightTriple = 17
    /// Per-query correlation for `x · W_j` with g masked weights of one shape sharing the activation
    /// mask A [m,k] (client PRG) and shares of every A·B_j, shape = [g, m, k, n] (select-then-compute).
    case maskedWeightGroup = 18
    /// Start of one alternative of a secret-free branch (header only; see `Dealer.beginBranch`).
    case branch = 28
    /// End of that alternative (header only).
    case branchEnd = 29
    /// Boundary between units of a program (e.g. queries; header only): lets a party read one unit's
    /// records ahead (`DealerStream.preload(through:)`) and attribute offline bytes per unit.
    case mark = 30
    /// End of the program's records (header only): lets a party read the whole offline phase ahead and
    /// check that it consumed exactly what was dealt.
    case end = 31

    public var description: String {
        switch self {
        case .seed: return "seed"
        case .triple: return "triple"
        case .matmulTriple: return "matmulTriple"
        case .squarePair: return "squarePair"
        case .dreluKey: return "dreluKey"
        case .comparisonKey: return "comparisonKey"
        case .normScale: return "normScale"
        case .bitProduct: return "bitProduct"
        case .quadScale: return "quadScale"
        case .normScaleGain: return "normScaleGain"
        case .quadAttention: return "quadAttention"
        case .keyFlags: return "keyFlags"
        case .squareFan: return "squareFan"
        case .weightMask: return "weightMask"
        case .maskedWeightTriple: return "maskedWeightTriple"
        case .maskedWeightGroup: return "maskedWeightGroup"
        case .branch: return "branch"
        case .branchEnd: return "branchEnd"
        case .mark: return "mark"
        case .end: return "end"
        }
    }
}

/// A dealer record header plus its correction payload.
///
/// Wire format (one frame): magic "MPCD" (4 bytes), kind (1 byte), rank (1 byte), 2 zero bytes,
/// `rank` little-endian UInt64 dimensions, then the payload words (little-endian UInt64).
struct DealerRecord: Equatable {
    static let magic: [UInt8] = Array("MPCD".utf8)
    var kind: CorrelationKind
    var shape: [Int]
    var payload: [UInt64]

    var tag: String { "\(kind)\(shape)" }

    /// The bytes before the payload: magic, kind, rank, two zero bytes, the shape's words.
    var header: [UInt8] {
        DealerRecord.magic + [kind.rawValue, UInt8(shape.count), 0, 0] + WordCoding.bytes(shape.map { UInt64($0) })
    }

    static func decode(_ bytes: [UInt8]) throws -> DealerRecord {
        guard bytes.count >= 8, Array(bytes[0..<4]) == magic else {
            throw DealerError.malformedRecord("missing magic (\(bytes.count) bytes)")
        }
        guard let kind = CorrelationKind(rawValue: bytes[4]) else {
            throw DealerError.malformedRecord("unknown kind \(bytes[4])")
        }
        let rank = Int(bytes[5])
        let headerBytes = 8 + 8 * rank
        guard bytes.count >= headerBytes, (bytes.count - headerBytes) % 8 == 0 else {
            throw DealerError.malformedRecord("\(kind): \(bytes.count) bytes do not fit rank \(rank)")
        }
        let dims = WordCoding.words(Array(bytes[8..<headerBytes]))
        guard dims.allSatisfy({ $0 < 1 << 40 }) else { throw DealerError.malformedRecord("\(kind): absurd shape \(dims)") }
        var payload = [UInt64](repeating: 0, count: (bytes.count - headerBytes) / 8)
        payload.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[headerBytes...])) }
        }
        #if _endian(big)
        for i in payload.indices { payload[i] = UInt64(littleEndian: payload[i]) }
        #endif
        return DealerRecord(kind: kind, shape: dims.map { Int($0) }, payload: payload)
    }
}
