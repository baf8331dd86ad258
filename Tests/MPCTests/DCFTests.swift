import Foundation
import Testing
@testable import MPC

@Suite(.timeLimit(.minutes(1))) struct DCFTests {
    /// Generates keys for `alpha`/`beta`, evaluates both on `xs[j]`, returns the reconstructed outputs.
    func reconstruct(bits: Int, alpha: [UInt64], beta: [UInt64], xs: [UInt64], seed: UInt64) -> [UInt64] {
        var prg = PRG(seed: PRGSeed(testValue: seed))
        let n = alpha.count
        let r0 = prg.next(2 * n), r1 = prg.next(2 * n)
        let cw = DCF.generate(bits: bits, alpha: alpha, beta: beta, roots0: r0, roots1: r1)
        let y0 = DCFKeys(bits: bits, count: n, roots: r0, corrections: cw).evaluate(party: .client, xs)
        let y1 = DCFKeys(bits: bits, count: n, roots: r1, corrections: cw).evaluate(party: .server, xs)
        return zip(y0, y1).map { $0 &+ $1 }
    }

    /// Every (α, x) pair on 6 bits: output is β exactly when x < α.
    @Test func exhaustiveSixBits() {
        let bits = 6, size = 1 << bits
        var alpha: [UInt64] = [], xs: [UInt64] = [], beta: [UInt64] = []
        for a in 0..<size { for x in 0..<size { alpha.append(UInt64(a)); xs.append(UInt64(x)); beta.append(UInt64(a * 1000 + x) | 1 << 63) } }
        let out = reconstruct(bits: bits, alpha: alpha, beta: beta, xs: xs, seed: 1)
        let wrong = (0..<out.count).filter { out[$0] != (xs[$0] < alpha[$0] ? beta[$0] : 0) }
        #expect(wrong.isEmpty, "\(wrong.count) wrong, first at α=\(wrong.first.map { alpha[$0] } ?? 0) x=\(wrong.first.map { xs[$0] } ?? 0)")
    }

    @Test(arguments: [63, 64])
    func randomWide(bits: Int) {
        let seed = UInt64(bits)
        var rng = TestData(seed: seed)
        let n = 10_000
        let mask: UInt64 = bits == 64 ? ~0 : (1 << UInt64(bits)) - 1
        let alpha = (0..<n).map { _ in rng.next() & mask }
        // Half the inputs near α (±3), half uniform; plus the extremes.
        var xs = (0..<n).map { j in j % 2 == 0 ? rng.next() & mask : (alpha[j] &+ (rng.next() % 7) &- 3) & mask }
        xs[0] = 0; xs[1] = mask; xs[2] = alpha[2]
        let beta = (0..<n).map { _ in rng.next() }
        let out = reconstruct(bits: bits, alpha: alpha, beta: beta, xs: xs, seed: seed)
        let wrong = (0..<n).filter { out[$0] != (xs[$0] < alpha[$0] ? beta[$0] : 0) }.count
        #expect(wrong == 0, "\(wrong) wrong of \(n), seed \(seed)")
    }
}
