import Crypto
import CryptoExtras
import Foundation

/// A 128-bit PRG seed. Create fresh seeds only with `PRGSeed.random()` (system CSPRNG).
public struct PRGSeed: Sendable, Equatable, CustomStringConvertible {
    /// The 16 key bytes.
    public let bytes: [UInt8]

    /// Wraps 16 bytes (e.g. a seed received from the dealer or fixed in a test).
    public init(bytes: [UInt8]) throws {
        guard bytes.count == 16 else { throw DealerError.malformedRecord("PRG seed must be 16 bytes, found \(bytes.count)") }
        self.bytes = bytes
    }

    /// A seed from two PRG output words (little-endian): derives the seed of a sub-stream from a shared
    /// PRG (`Dealer.beginBranch`), so both holders of that PRG derive the same one without a message.
    init(words: [UInt64]) {
        precondition(words.count == 2, "a seed is two words")
        self.bytes = WordCoding.bytes(words)
    }

    /// A deterministic seed for tests: the 8-byte `value` little-endian, then zeros.
    public init(testValue value: UInt64) {
        var b = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        self.bytes = b
    }

    /// A fresh seed from the system CSPRNG (`SymmetricKey(size: .bits128)`).
    public static func random() -> PRGSeed {
        let key = SymmetricKey(size: .bits128)
        return key.withUnsafeBytes { try! PRGSeed(bytes: Array($0)) }
    }

    /// Hex, for logs of test seeds. Never log production seeds.
    public var description: String { bytes.map { String(format: "%02x", $0) }.joined() }
}

/// A cryptographically secure PRG: AES-128 in counter mode (BoringSSL via swift-crypto's `AES._CTR`).
///
/// The keystream for seed `s` and stream id `t` is `AES_s(t || 0), AES_s(t || 1), ...` (16-byte blocks,
/// 64-bit stream id then 64-bit big-endian block counter). Every request consumes whole blocks, so an odd
/// number of words discards half a block; the sequence of outputs is a deterministic function of the seed,
/// the stream id, and the sequence of request sizes. Keystream is produced in chunks of up to
/// `chunkBytes` per AES call, straight into the caller's buffer.
public struct PRG: Sendable {
    /// Bytes produced per AES-CTR call.
    public static let chunkBytes = 1 << 18
    private static let zeros = [UInt8](repeating: 0, count: chunkBytes)

    private let key: SymmetricKey
    private let stream: UInt64
    /// Index of the next unused 16-byte block.
    public private(set) var blockCounter: UInt64 = 0

    /// - Parameters:
    ///   - seed: 16-byte AES key.
    ///   - stream: domain separator; different streams of one seed are independent.
    public init(seed: PRGSeed, stream: UInt64 = 0) {
        self.key = SymmetricKey(data: seed.bytes)
        self.stream = stream
    }

    private func nonce(at block: UInt64) -> AES._CTR.Nonce {
        var n = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            n[i] = UInt8(truncatingIfNeeded: stream >> (56 - 8 * UInt64(i)))
            n[8 + i] = UInt8(truncatingIfNeeded: block >> (56 - 8 * UInt64(i)))
        }
        return try! AES._CTR.Nonce(nonceBytes: n)
    }

    /// Fills `out` with uniform bytes, consuming `ceil(out.count / 16)` blocks.
    public mutating func fill(_ out: UnsafeMutableRawBufferPointer) {
        var done = 0
        while done < out.count {
            let len = min(PRG.chunkBytes, out.count - done)
            let ks = PRG.zeros.withUnsafeBytes { z in
                // Cannot fail: 128-bit key.
                try! AES._CTR.encrypt(UnsafeRawBufferPointer(rebasing: z[0..<len]), using: key, nonce: nonce(at: blockCounter))
            }
            ks.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(rebasing: out[done..<(done + len)]).copyMemory(from: src)
            }
            blockCounter &+= UInt64((len + 15) / 16)
            done += len
        }
    }

    /// `count` uniform elements of Z_2^64.
    public mutating func next(_ count: Int) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: count)
        out.withUnsafeMutableBytes { fill($0) }
        return out
    }

    /// A uniform tensor of Z_2^64 with the given shape.
    public mutating func tensor(_ shape: [Int]) -> RingTensor {
        RingTensor(shape: shape, data: next(RingTensor.count(of: shape)))
    }

    /// `count` uniform bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { fill($0) }
        return out
    }

    /// A fresh independent seed drawn from this PRG (for deriving sub-streams).
    public mutating func nextSeed() -> PRGSeed { try! PRGSeed(bytes: bytes(16)) }
}
