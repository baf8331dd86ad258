import Foundation
import Testing
@testable import MPC
import CFSSKernel

@Suite(.timeLimit(.minutes(1))) struct DCFTests {
    /// Generates keys for `alpha`/`beta`, evaluates both on `xs[j]`, returns the reconstructed outputs.
    func reconstruct(bits: Int, alpha: [UInt64], beta: [UInt64], xs: [UInt64], seed: UInt64,
                     kernel: DCF.Kernel = DCF.defaultKernel) -> [UInt64] {
        var prg = PRG(seed: PRGSeed(testValue: seed))
        let n = alpha.count
        let r0 = prg.next(2 * n), r1 = prg.next(2 * n)
        let cw = DCF.generate(bits: bits, alpha: alpha, beta: beta, roots0: r0, roots1: r1, kernel: kernel)
        let y0 = DCFKeys(bits: bits, count: n, roots: r0, corrections: cw).evaluate(party: .client, xs, kernel: kernel)
        let y1 = DCFKeys(bits: bits, count: n, roots: r1, corrections: cw).evaluate(party: .server, xs, kernel: kernel)
        return zip(y0, y1).map { $0 &+ $1 }
    }

    /// Every (α, x) pair on 6 bits, with every kernel: output is β exactly when x < α.
    @Test(arguments: DCF.available) func exhaustiveSixBits(kernel: DCF.Kernel) {
        let bits = 6, size = 1 << bits
        var alpha: [UInt64] = [], xs: [UInt64] = [], beta: [UInt64] = []
        for a in 0..<size { for x in 0..<size { alpha.append(UInt64(a)); xs.append(UInt64(x)); beta.append(UInt64(a * 1000 + x) | 1 << 63) } }
        let out = reconstruct(bits: bits, alpha: alpha, beta: beta, xs: xs, seed: 1, kernel: kernel)
        let wrong = (0..<out.count).filter { out[$0] != (xs[$0] < alpha[$0] ? beta[$0] : 0) }
        #expect(wrong.isEmpty, "\(wrong.count) wrong, first at α=\(wrong.first.map { alpha[$0] } ?? 0) x=\(wrong.first.map { xs[$0] } ?? 0)")
    }

    @Test(arguments: [63, 64], DCF.available)
    func randomWide(bits: Int, kernel: DCF.Kernel) {
        let seed = UInt64(bits)
        var rng = TestData(seed: seed)
        let n = 10_000
        let mask: UInt64 = bits == 64 ? ~0 : (1 << UInt64(bits)) - 1
        let alpha = (0..<n).map { _ in rng.next() & mask }
        // Half the inputs near α (±3), half uniform; plus the extremes.
        var xs = (0..<n).map { j in j % 2 == 0 ? rng.next() & mask : (alpha[j] &+ (rng.next() % 7) &- 3) & mask }
        xs[0] = 0; xs[1] = mask; xs[2] = alpha[2]
        let beta = (0..<n).map { _ in rng.next() }
        let out = reconstruct(bits: bits, alpha: alpha, beta: beta, xs: xs, seed: seed, kernel: kernel)
        let wrong = (0..<n).filter { out[$0] != (xs[$0] < alpha[$0] ? beta[$0] : 0) }.count
        #expect(wrong == 0, "\(wrong) wrong of \(n), seed \(seed)")
    }

    /// The AES-NI kernel's AES is the standard AES-128 that BoringSSL computes.
    @Test func aesniMatchesBoringSSL() throws {
        try #require(DCF.available.contains(.aesni), "this CPU has no AES-NI")
        var rng = TestData(seed: 11)
        let blocks = (0..<64).map { _ in rng.next() }
        var c = [UInt64](repeating: 0, count: 64), swift = c
        sr_aes128_encrypt(DCF.fixedKey, blocks, &c, 32)
        blocks.withUnsafeBufferPointer { b in
            swift.withUnsafeMutableBufferPointer { FixedKeyAES(key: DCF.fixedKey).encrypt(b.baseAddress!, into: $0.baseAddress!, count: 32) }
        }
        #expect(c == swift)
    }

    /// Every kernel writes the same correction words and the same output shares as the Swift one, for
    /// widths from 1 to 64 bits, group tails, and several points per key.
    @Test(arguments: [1, 17, 31, 63, 64]) func kernelsAgreeWordForWord(bits: Int) {
        var rng = TestData(seed: UInt64(100 + bits))
        let mask: UInt64 = bits == 64 ? ~0 : (1 << UInt64(bits)) - 1
        for (n, k) in [(1, 1), (5, 3), (13, 1), (9, 7)] {
            let alpha = (0..<n).map { _ in rng.next() & mask }, beta = (0..<n).map { _ in rng.next() }
            let r0 = (0..<(2 * n)).map { _ in rng.next() }, r1 = (0..<(2 * n)).map { _ in rng.next() }
            let xs = (0..<(n * k)).map { _ in rng.next() }
            let reference = DCF.generate(bits: bits, alpha: alpha, beta: beta, roots0: r0, roots1: r1, kernel: .swift)
            let shares = { (kernel: DCF.Kernel) in
                [(PartyID.client, r0), (PartyID.server, r1)].map { party, roots in
                    DCFKeys(bits: bits, count: n, roots: roots, corrections: reference).evaluate(party: party, xs, pointsPerKey: k, kernel: kernel)
                }
            }
            for kernel in DCF.available {
                #expect(DCF.generate(bits: bits, alpha: alpha, beta: beta, roots0: r0, roots1: r1, kernel: kernel) == reference,
                        "\(kernel) generation, \(bits) bits, n \(n)")
                #expect(shares(kernel) == shares(.swift), "\(kernel) evaluation, \(bits) bits, n \(n), k \(k)")
            }
        }
    }
}
