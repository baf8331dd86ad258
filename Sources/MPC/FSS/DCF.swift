// Distributed comparison functions (DCF), batched.
//
// Boyle, Chandran, Gilboa, Gupta, Ishai, Kumar, Rathee, "Function Secret Sharing for Mixed-Mode and
// Fixed-Point Secure Computation", Eurocrypt 2021, Fig. 3 (DCF from a length-doubling PRG), with the
// payload group G = Z_2^64 (so Convert is the identity on a 64-bit word) and the usual optimisations:
// the control bit t is the low bit of each PRG seed block (which is then cleared), and the two branch
// payloads share one block.
//
// The function f_{α,β}: {0,1}^n → Z_2^64, f(x) = β if x < α (as unsigned n-bit integers), else 0, is
// split into two keys; Eval(k_0, x) + Eval(k_1, x) = f(x) for every x, and each key alone is
// pseudorandom (it hides α and β).
//
// PRG: G(s) = H(s) ‖ H(s ⊕ 1) ‖ H(s ⊕ 2) with H(y) = AES_k(y) ⊕ y under a fixed public key k
// (MMO hash, `FixedKeyAES`). H(s) gives the left child (seed, t bit), H(s ⊕ 1) the right child,
// H(s ⊕ 2) the two payload words (low word left, high word right). An evaluation needs only the
// branch it takes: 2 AES blocks per level; generation needs 3 per level per party.
//
// Key layout for a batch of N elements and n levels (words, level-major so a chunk of elements is
// contiguous in every level): the root seed of party b (2 words per element, from the PRG it shares with
// the dealer, so it never travels), then the correction words common to both parties:
//   sCW [n][N][2]  seed corrections
//   vCW [n][N]     payload corrections
//   tL  [N]        bit i = left control-bit correction at level i
//   tR  [N]        bit i = right control-bit correction at level i
//   cwOut [N]      final payload correction
// (3n + 3) words = 24n + 24 bytes per element, sent to each party.

import CFSSKernel
import Foundation

/// One party's keys for a batch of DCFs over n-bit inputs with payloads in Z_2^64.
struct DCFKeys: Sendable {
    /// Input width n in bits (1 ... 64).
    let bits: Int
    /// Number of elements N.
    let count: Int
    /// Root seeds, 2 words per element.
    let roots: [UInt64]
    /// Correction words, `DCF.correctionWords(bits:) * count` words (layout above).
    let corrections: [UInt64]
}

/// DCF key generation and evaluation. Two kernels compute the same words: portable Swift, and AES-NI in
/// C (`Sources/CFSSKernel`), which interleaves the AES rounds of several tree paths and keeps each path's
/// state in registers; the parties' evaluations are on the online path of every comparison.
public enum DCF {
    /// The implementations of `generate` and `evaluate`.
    public enum Kernel: String, Sendable, CaseIterable {
        /// Swift over BoringSSL's batched AES (`FixedKeyAES`).
        case swift
        /// AES-NI intrinsics in C.
        case aesni
    }

    /// The kernels this CPU runs.
    public static let available: [Kernel] = sr_aesni_available() != 0 ? [.swift, .aesni] : [.swift]

    /// The kernel used: the fastest available, or the one named by the environment variable
    /// `SECUREROUTER_FSS_KERNEL` (`swift` or `aesni`, if available) for comparisons.
    public static let defaultKernel: Kernel = preferredKernel(environment: "SECUREROUTER_FSS_KERNEL", available: available)

    /// The fixed public AES key of the MMO hash: hex digits of π (nothing up the sleeve).
    static let fixedKey: [UInt8] = [0x24, 0x3f, 0x6a, 0x88, 0x85, 0xa3, 0x08, 0xd3,
                                    0x13, 0x19, 0x8a, 0x2e, 0x03, 0x70, 0x73, 0x44]
    /// Elements processed together: the AES batch (up to 6 blocks per element) stays in L2.
    static let chunk = 4096

    /// Correction words per element for n-bit inputs.
    @inlinable static func correctionWords(bits: Int) -> Int { 3 * bits + 3 }

    /// Dealer side: correction words for `f_{α_j, β_j}` for every element j.
    /// - Parameters:
    ///   - alpha: thresholds, each `< 2^bits`.
    ///   - beta: payloads.
    ///   - roots0, roots1: root seeds of party 0 and party 1 (2 words per element; low bit ignored).
    static func generate(bits: Int, alpha: [UInt64], beta: [UInt64], roots0: [UInt64], roots1: [UInt64],
                         kernel: Kernel = defaultKernel) -> [UInt64] {
        let n = alpha.count
        precondition(bits >= 1 && bits <= 64 && beta.count == n && roots0.count == 2 * n && roots1.count == 2 * n)
        precondition(available.contains(kernel), "DCF: the \(kernel) kernel does not run on this CPU")
        var cw = [UInt64](repeating: 0, count: correctionWords(bits: bits) * n)
        if kernel == .aesni {
            sr_dcf_generate(Int32(bits), Int64(n), alpha, beta, roots0, roots1, fixedKey, &cw)
            return cw
        }
        let aes = FixedKeyAES(key: fixedKey)
        let c = min(chunk, max(n, 1))
        var buf = [UInt64](repeating: 0, count: 12 * c), scratch = buf
        // Per-chunk state: seeds (party 0 at [2j], party 1 at [2c + 2j]), control bits (party 0 at [j],
        // party 1 at [c + j]) and the on-path payload difference.
        let s = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 4 * c)
        let t = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 2 * c)
        let va = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: c)
        defer { s.deallocate(); t.deallocate(); va.deallocate() }
        alpha.withUnsafeBufferPointer { alpha in beta.withUnsafeBufferPointer { beta in
        cw.withUnsafeMutableBufferPointer { cw in
            buf.withUnsafeMutableBufferPointer { buf in
                scratch.withUnsafeMutableBufferPointer { scratch in
                    for start in stride(from: 0, to: n, by: c) {
                        let m = min(c, n - start)
                        for j in 0..<m {
                            s[2 * j] = roots0[2 * (start + j)] & ~1; s[2 * j + 1] = roots0[2 * (start + j) + 1]
                            s[2 * c + 2 * j] = roots1[2 * (start + j)] & ~1; s[2 * c + 2 * j + 1] = roots1[2 * (start + j) + 1]
                            t[j] = 0; t[c + j] = 1; va[j] = 0
                        }
                        for level in 0..<bits {
                            expandBoth(level: level, bits: bits, n: n, start: start, m: m, c: c, alpha: alpha, beta: beta,
                                       s: s, t: t, va: va, buf: buf, scratch: scratch, aes: aes, cw: cw)
                        }
                        let outBase = 3 * bits * n + 2 * n
                        for j in 0..<m {
                            let d = s[2 * c + 2 * j + 1] &- s[2 * j + 1] &- va[j]
                            cw[outBase + start + j] = t[c + j] == 1 ? 0 &- d : d
                        }
                    }
                }
            }
        }
        } }
        return cw
    }

    /// One level of generation for elements `start ..< start + m`: expands both parties' seeds, writes
    /// the level's corrections and advances seeds, control bits and the on-path payload difference `va`.
    private static func expandBoth(level: Int, bits: Int, n: Int, start: Int, m: Int, c: Int,
                                   alpha: UnsafeBufferPointer<UInt64>, beta: UnsafeBufferPointer<UInt64>,
                                   s: UnsafeMutableBufferPointer<UInt64>, t: UnsafeMutableBufferPointer<UInt64>,
                                   va: UnsafeMutableBufferPointer<UInt64>, buf: UnsafeMutableBufferPointer<UInt64>,
                                   scratch: UnsafeMutableBufferPointer<UInt64>, aes: FixedKeyAES,
                                   cw: UnsafeMutableBufferPointer<UInt64>) {
        // Blocks of party b, element j: (b·m + j)·3 + {0: H(s), 1: H(s⊕1), 2: H(s⊕2)}.
        for b in 0..<2 {
            for j in 0..<m {
                let (lo, hi) = (s[2 * (b * c + j)], s[2 * (b * c + j) + 1])
                let o = 6 * (b * m + j)
                scratch[o] = lo; scratch[o + 1] = hi; scratch[o + 2] = lo ^ 1; scratch[o + 3] = hi
                scratch[o + 4] = lo ^ 2; scratch[o + 5] = hi
            }
        }
        aes.mmo(scratch.baseAddress!, into: buf.baseAddress!, count: 6 * m)
        let shift = UInt64(bits - 1 - level)
        let (sBase, vBase, tLBase, tRBase) = (2 * level * n, 2 * bits * n + level * n, 3 * bits * n, 3 * bits * n + n)
        for j in 0..<m {
            let a = (alpha[start + j] >> shift) & 1
            let o0 = 6 * j, o1 = 6 * (m + j)
            // Lose side: the branch the path to α leaves by (right if α_i = 0, left if α_i = 1).
            let lose = a == 0 ? 2 : 0, keep = 2 - lose
            let sCWlo = (buf[o0 + lose] ^ buf[o1 + lose]) & ~1, sCWhi = buf[o0 + lose + 1] ^ buf[o1 + lose + 1]
            let vLose0 = a == 0 ? buf[o0 + 5] : buf[o0 + 4], vLose1 = a == 0 ? buf[o1 + 5] : buf[o1 + 4]
            let vKeep0 = a == 0 ? buf[o0 + 4] : buf[o0 + 5], vKeep1 = a == 0 ? buf[o1 + 4] : buf[o1 + 5]
            let t1Neg = t[c + j] == 1
            var vcw = vLose1 &- vLose0 &- va[j]
            if a == 1 { vcw = vcw &+ beta[start + j] }  // x goes left of α here: x < α
            if t1Neg { vcw = 0 &- vcw }
            va[j] = va[j] &- vKeep1 &+ vKeep0 &+ (t1Neg ? 0 &- vcw : vcw)
            let tL0 = buf[o0] & 1, tL1 = buf[o1] & 1, tR0 = buf[o0 + 2] & 1, tR1 = buf[o1 + 2] & 1
            let tCWL = tL0 ^ tL1 ^ a ^ 1, tCWR = tR0 ^ tR1 ^ a
            cw[sBase + 2 * (start + j)] = sCWlo; cw[sBase + 2 * (start + j) + 1] = sCWhi
            cw[vBase + start + j] = vcw
            cw[tLBase + start + j] |= tCWL << UInt64(level)
            cw[tRBase + start + j] |= tCWR << UInt64(level)
            let tKeepCW = a == 0 ? tCWL : tCWR
            for b in 0..<2 {
                let o = b == 0 ? o0 : o1, tb = t[b * c + j]
                let mask = 0 &- tb
                s[2 * (b * c + j)] = (buf[o + keep] & ~1) ^ (sCWlo & mask)
                s[2 * (b * c + j) + 1] = buf[o + keep + 1] ^ (sCWhi & mask)
                t[b * c + j] = (buf[o + keep] & 1) ^ (tb & tKeepCW)
            }
        }
    }
}

extension DCFKeys {
    /// Evaluates this party's share of `f_{α_j, β_j}(x_j)` for every element j (only the low `bits`
    /// bits of `x_j` are read). Party 0's and party 1's outputs add up to `β_j · 1{x_j < α_j}`.
    /// Cost: 2 fixed-key AES blocks per level per element, no communication.
    func evaluate(party: PartyID, _ x: [UInt64], kernel: DCF.Kernel = DCF.defaultKernel) -> [UInt64] {
        evaluate(party: party, x, pointsPerKey: 1, kernel: kernel)
    }

    /// Evaluates every key at `pointsPerKey` consecutive points: point `p` of `x` uses key `p / pointsPerKey`
    /// (many thresholds of one masked input share one key). Cost: 2 AES blocks per level per point.
    func evaluate(party: PartyID, _ x: [UInt64], pointsPerKey k: Int, kernel: DCF.Kernel = DCF.defaultKernel) -> [UInt64] {
        let n = count
        precondition(k >= 1 && x.count == n * k && roots.count == 2 * n && corrections.count == DCF.correctionWords(bits: bits) * n)
        precondition(DCF.available.contains(kernel), "DCF: the \(kernel) kernel does not run on this CPU")
        let points = n * k
        var out = [UInt64](repeating: 0, count: points)
        if kernel == .aesni {
            sr_dcf_evaluate(Int32(bits), Int64(n), Int64(k), roots, corrections, x, party == .server ? 1 : 0, DCF.fixedKey, &out)
            return out
        }
        let aes = FixedKeyAES(key: DCF.fixedKey)
        let c = min(DCF.chunk, max(points, 1))
        var buf = [UInt64](repeating: 0, count: 4 * c), scratch = buf
        let s = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 2 * c)
        let t = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: c)
        let v = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: c)
        let keyOf = UnsafeMutableBufferPointer<Int>.allocate(capacity: c)
        defer { s.deallocate(); t.deallocate(); v.deallocate(); keyOf.deallocate() }
        let negate = party == .server
        let inputMask: UInt64 = bits == 64 ? ~0 : (1 << UInt64(bits)) - 1
        x.withUnsafeBufferPointer { x in
        corrections.withUnsafeBufferPointer { cw in
            buf.withUnsafeMutableBufferPointer { buf in
                scratch.withUnsafeMutableBufferPointer { scratch in
                    for start in stride(from: 0, to: points, by: c) {
                        let m = min(c, points - start)
                        for j in 0..<m {
                            let key = k == 1 ? start + j : (start + j) / k
                            keyOf[j] = key
                            s[2 * j] = roots[2 * key] & ~1; s[2 * j + 1] = roots[2 * key + 1]
                            t[j] = party == .client ? 0 : 1
                        }
                        for j in 0..<m { v[j] = 0 }
                        for level in 0..<bits {
                            let shift = UInt64(bits - 1 - level)
                            for j in 0..<m {
                                let dir = ((x[start + j] & inputMask) >> shift) & 1
                                scratch[4 * j] = s[2 * j] ^ dir; scratch[4 * j + 1] = s[2 * j + 1]
                                scratch[4 * j + 2] = s[2 * j] ^ 2; scratch[4 * j + 3] = s[2 * j + 1]
                            }
                            aes.encrypt(scratch.baseAddress!, into: buf.baseAddress!, count: 2 * m)
                            let (sBase, vBase, tBase) = (2 * level * n, 2 * bits * n + level * n, 3 * bits * n)
                            for j in 0..<m {
                                let key = keyOf[j]
                                let dir = ((x[start + j] & inputMask) >> shift) & 1
                                let mask = 0 &- t[j]
                                // MMO: H(y) = AES(y) ⊕ y, computed only for the words used.
                                let pw = 4 * j + 2 + Int(dir)
                                var w = buf[pw] ^ scratch[pw]
                                w = w &+ (cw[vBase + key] & mask)
                                v[j] = negate ? v[j] &- w : v[j] &+ w
                                let tCW = (cw[tBase + Int(dir) * n + key] >> UInt64(level)) & 1
                                let lo = buf[4 * j] ^ scratch[4 * j], hi = buf[4 * j + 1] ^ scratch[4 * j + 1]
                                s[2 * j] = (lo & ~1) ^ (cw[sBase + 2 * key] & mask)
                                s[2 * j + 1] = hi ^ (cw[sBase + 2 * key + 1] & mask)
                                t[j] = (lo & 1) ^ (t[j] & tCW)
                            }
                        }
                        let outBase = 3 * bits * n + 2 * n
                        for j in 0..<m {
                            let w = s[2 * j + 1] &+ (cw[outBase + keyOf[j]] & (0 &- t[j]))
                            out[start + j] = negate ? v[j] &- w : v[j] &+ w
                        }
                    }
                }
            }
        }
        }
        return out
    }
}
