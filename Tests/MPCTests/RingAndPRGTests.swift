import Foundation
import Testing
@testable import MPC

@Suite struct RingAndPRGTests {
    @Test func fixedPointRoundTrip() {
        let fp = FixedPoint(fracBits: 16)
        for x in [0.0, 1.0, -1.0, 0.5, -0.25, 3.14159, -12345.678, 1e9, -1e9] {
            #expect(abs(fp.decode(fp.encode(x)) - x) <= 0.5 / fp.scale, "x = \(x)")
        }
        #expect(fp.encode(-1.0) == UInt64.max - 65535)
        #expect(fp.decode(fp.encode(2.0) &+ fp.encode(-3.0)) == -1.0)
        let fp32 = FixedPoint(fracBits: 8, ringBits: 32)
        #expect(fp32.decode32(fp32.encode32(-2.5) &+ fp32.encode32(1.0)) == -1.5)
    }

    @Test func ringWraps() {
        let a = RingTensor(shape: [3], data: [UInt64.max, 1 << 63, 5])
        let b = RingTensor(shape: [3], data: [1, 1 << 63, 0])
        #expect((a + b).data == [0, 0, 5])
        #expect((b - a).data == [2, 0, 0 &- 5])
        #expect((a * b).data == [UInt64.max, 0, 0])
        #expect((-a).data == [1, 1 << 63, 0 &- 5])
    }

    /// FIPS-197: AES-128 with the all-zero key on the all-zero block is 66e94bd4ef8a2c3b884cfa59ca342b2e.
    @Test func prgIsAESCounterMode() {
        var prg = PRG(seed: try! PRGSeed(bytes: [UInt8](repeating: 0, count: 16)))
        let first = prg.bytes(16)
        #expect(first.map { String(format: "%02x", $0) }.joined() == "66e94bd4ef8a2c3b884cfa59ca342b2e")
    }

    @Test func prgDeterministicAndChunkIndependent() {
        let seed = PRGSeed(testValue: 42)
        var a = PRG(seed: seed), b = PRG(seed: seed)
        let big = a.next(100_000)
        var pieces: [UInt64] = []
        for n in [2, 6, 1000, 98_992] { pieces += b.next(n) }  // even sizes consume exactly the same blocks
        #expect(big == pieces)
        var c = PRG(seed: PRGSeed(testValue: 43)), d = PRG(seed: seed, stream: 1), f = PRG(seed: seed)
        let base = f.next(4)
        #expect(c.next(4) != base)
        #expect(d.next(4) != base)
        var e = PRG(seed: seed)
        _ = e.next(1)  // odd count: half a block is discarded
        #expect(e.blockCounter == 1)
    }

    @Test func prgBytesLookUniform() {
        var prg = PRG(seed: .random())
        let chi = chiSquareBytes(prg.bytes(1 << 20))
        #expect(chi < chiSquareLimit, "chi2 = \(chi)")
    }

    @Test func ringMatmulMatchesNaive() {
        var rng = TestData(seed: 7)
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 70, 130), (5, 300, 2)] {
            let a = (0..<m * k).map { _ in rng.next() }, b = (0..<k * n).map { _ in rng.next() }
            var ref = [UInt64](repeating: 0, count: m * n)
            for i in 0..<m { for p in 0..<k { for j in 0..<n { ref[i * n + j] &+= a[i * k + p] &* b[p * n + j] } } }
            #expect(RingMatmul.multiply(a, b, m: m, k: k, n: n) == ref, "m=\(m) k=\(k) n=\(n)")
            // A prepared (session) operand: the same product, reused, and its elements in place.
            let prepared = RingMatmul.RightOperand(b, k: k, n: n)
            #expect(RingMatmul.multiply(a, prepared, m: m) == ref && RingMatmul.multiply(a, prepared, m: m) == ref)
            #expect(prepared.rowMajor() == b && prepared[k - 1, n - 1] == b[k * n - 1] && prepared[0, n - 1] == b[n - 1])
        }
    }

    /// Every kernel this CPU runs gives the naive product's words, on shapes that leave every kind of tail:
    /// rows and columns not multiples of the 4x4 tile, k not a multiple of the 8 lanes or of the k block
    /// (512), and products large enough to be split over threads.
    @Test(arguments: RingMatmul.Kernel.allCases) func everyKernelMatchesNaive(kernel: RingMatmul.Kernel) throws {
        try #require(RingMatmul.available.contains(kernel) || kernel == .avx512, "the scalar kernel always runs")
        guard RingMatmul.available.contains(kernel) else { return }   // no AVX-512 on this CPU: nothing to compare
        var rng = TestData(seed: 11)
        let shapes = [(1, 1, 1), (1, 7, 3), (4, 8, 4), (5, 9, 6), (3, 513, 5), (8, 1030, 9), (7, 512, 4), (33, 384, 70), (64, 700, 130)]
        for (m, k, n) in shapes {
            let a = (0..<m * k).map { _ in rng.next() }, b = (0..<k * n).map { _ in rng.next() }
            var ref = [UInt64](repeating: 0, count: m * n)
            for i in 0..<m { for p in 0..<k { for j in 0..<n { ref[i * n + j] &+= a[i * k + p] &* b[p * n + j] } } }
            #expect(RingMatmul.multiply(a, b, m: m, k: k, n: n, kernel: kernel) == ref, "\(kernel) m=\(m) k=\(k) n=\(n)")
        }
    }
}
