internal import CCryptoBoringSSL

/// Fixed-key AES-128 applied to many 16-byte blocks at once (ECB through BoringSSL's EVP layer, which
/// uses pipelined AES-NI when the CPU has it), and the Matyas–Meyer–Oseas hash built on it.
///
/// The DCF's length-doubling PRG needs AES on arbitrary inputs (the tree's seeds), many per call: one
/// `EVP_EncryptUpdate` over a whole batch costs about a cycle per byte, against ~1 µs per block through
/// swift-crypto's one-block `AES.permute` (which re-expands the key every call).
/// The key is public and fixed (anyone may know it): security rests on AES behaving as a random
/// permutation, as in fixed-key garbling (Guo, Katz, Wang, Yu, S&P 2020, MMO tweakable hash).
final class FixedKeyAES: @unchecked Sendable {
    private let ctx: UnsafeMutablePointer<EVP_CIPHER_CTX>

    /// - Parameter key: 16 public key bytes.
    init(key: [UInt8]) {
        precondition(key.count == 16, "AES-128 key must be 16 bytes")
        ctx = CCryptoBoringSSL_EVP_CIPHER_CTX_new()!
        let rc = key.withUnsafeBufferPointer {
            CCryptoBoringSSL_EVP_EncryptInit_ex(ctx, CCryptoBoringSSL_EVP_aes_128_ecb(), nil, $0.baseAddress, nil)
        }
        precondition(rc == 1, "EVP_EncryptInit_ex failed")
        CCryptoBoringSSL_EVP_CIPHER_CTX_set_padding(ctx, 0)
    }

    deinit { CCryptoBoringSSL_EVP_CIPHER_CTX_free(ctx) }

    /// Writes the MMO hash `AES(x) ⊕ x` of each block `x` of `input` to `output` (`count` blocks each;
    /// the buffers must not overlap).
    func mmo(_ input: UnsafePointer<UInt64>, into output: UnsafeMutablePointer<UInt64>, count: Int) {
        encrypt(input, into: output, count: count)
        for i in 0..<(2 * count) { output[i] ^= input[i] }
    }

    /// Writes `AES(x)` of each block (the caller XORs `x` back in where it needs the MMO hash).
    func encrypt(_ input: UnsafePointer<UInt64>, into output: UnsafeMutablePointer<UInt64>, count: Int) {
        let chunk = 1 << 20
        var done = 0
        while done < count {
            let n = min(chunk, count - done)
            var outLen: Int32 = 0
            let rc = CCryptoBoringSSL_EVP_EncryptUpdate(
                ctx, UnsafeMutableRawPointer(output + 2 * done).assumingMemoryBound(to: UInt8.self), &outLen,
                UnsafeRawPointer(input + 2 * done).assumingMemoryBound(to: UInt8.self), Int32(16 * n))
            precondition(rc == 1 && outLen == Int32(16 * n), "EVP_EncryptUpdate failed")
            done += n
        }
    }
}
