import Foundation
import Testing
@testable import MPC

/// Linear layers on Z_2^32 (`ring_bits: 32` models): the exact truncation read on 32 bits, the narrow
/// weight product and the narrow Beaver product, against plaintext, with their halved openings.
@Suite struct NarrowRingTests {
    /// `truncateExact(ringBits: 32)` only reads the shares' low 32 bits (their high bits are garbage, as
    /// after a narrow product) and returns a share on Z_2^64 of floor(x/2^s) or one more, for every
    /// |x| < 2^30, including shares placed so that they straddle the 32-bit boundary; 0 stays 0.
    @Test func narrowTruncationIsExactAndReturnsToTheWideRing() throws {
        let seed: UInt64 = 71
        var rng = TestData(seed: seed)
        let n = 40_000, bits = 8
        let xs: [Int64] = rng.doubles(n, range: 1).enumerated().map { i, u in
            i % 7 == 3 ? 0 : Int64(u * Double((1 << 30) - 1))
        }
        let garbage = rng.doubles(2 * n, range: 1).map { UInt64(bitPattern: Int64($0 * 9.2e18)) << 32 }
        let uniform = rng.doubles(n, range: 1)
        // Party 0's share mod 2^32: uniform, or (every third element) within |x| of the ±2^31 boundary.
        let x0: [UInt64] = (0..<n).map { i in
            let low: UInt64
            if i % 3 == 0 {
                let gap = UInt64(abs(xs[i]) / 2)
                low = xs[i] > 0 ? (1 << 31) + gap : (1 << 31) - 1 - gap
            } else {
                low = UInt64(abs(uniform[i]) * 4.29e9) & 0xFFFF_FFFF
            }
            return low | garbage[i]
        }
        let x1 = (0..<n).map { i in ((UInt64(bitPattern: xs[i]) &- x0[i]) & 0xFFFF_FFFF) | garbage[n + i] }
        let (r0, r1, _) = try runTwoParties(seed: seed, deal: { d in try d.bitProduct(count: n) }) { p in
            let mine = ArithmeticShare(RingTensor(shape: [n], data: p.id == .client ? x0 : x1))
            p.peer.connection.receivedLog = []
            let y = try p.truncateExact(mine, bits: bits, ringBits: 32)
            let (log, sent) = (p.peer.connection.receivedLog!, p.peer.bytesSent)
            return (try p.revealToBoth(y), log, sent)
        }
        #expect(r0.0 == r1.0)
        let errors = (0..<n).filter { i in
            let d = Int64(bitPattern: r0.0.data[i]) &- (xs[i] >> Int64(bits))
            return d != 0 && (d != 1 || xs[i] == 0)
        }
        #expect(errors.isEmpty, "narrow truncation off by more than 1 ulp at \(errors.count) of \(n)")
        #expect(r0.2 == 8 * ((n + 63) / 64) && r1.2 == r0.2, "one bit per element each way, sent \(r0.2)")
        #expect(chiSquareBytes(r0.1.flatMap { $0 }) < chiSquareLimit && chiSquareBytes(r1.1.flatMap { $0 }) < chiSquareLimit)
    }

    /// A narrow weight product (f = 12: x keeps 8 fractional bits, the product 20): within the input's
    /// coarser rounding of plaintext, at half the client's bytes, with a uniform view for the server.
    @Test(arguments: [UInt64(72), 73])
    func narrowWeightProductMatchesPlaintextAtHalfTheBytes(seed: UInt64) throws {
        let fp = FixedPoint(fracBits: 12)
        #expect(fp.narrowInputShift == 4)
        var rng = TestData(seed: seed)
        let (m, k, n) = (24, 40, 36)
        let xs = rng.doubles(m * k, range: 6), ws = rng.doubles(k * n, range: 1)
        let x = fp.encode(xs, shape: [m, k]), w = fp.weights.encode(ws, shape: [k, n])
        let (r0, r1, _) = try runTwoParties(seed: seed, fracBits: 12, deal: { d in
            let h = try d.maskWeight(k: k, n: n)
            for _ in 0..<2 {
                try d.maskedWeightTriple(handle: h, m: m, k: k, n: n)
                try d.bitProduct(count: m * n)
            }
        }) { p in
            let weight = try p.loadWeight(p.id == .server ? w : nil, k: k, n: n)
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: x.shape)
            let wide = try p.matmulWeight(sx, weight)
            let wideSent = p.peer.bytesSent
            p.peer.resetCounters()
            p.peer.connection.receivedLog = []
            let narrow = try p.matmulWeight(sx, weight, narrow: true)
            let (sent, rounds, log) = (p.peer.bytesSent, p.rounds, p.peer.connection.receivedLog!)
            return (try p.revealToBoth([wide, narrow]), wideSent, sent, rounds, log)
        }
        #expect(r0.0 == r1.0)
        let (xd, wd) = (fp.decode(x), fp.weights.decode(w))
        let wide = fp.decode(r0.0[0]), narrow = fp.decode(r0.0[1])
        // x loses 4 of its 12 bits (floor, or one more at 2^-8), so each output moves by at most
        // Σ_k |W_kj|·2^-8, plus the final truncation's ulp.
        for j in 0..<n {
            let bound = (0..<k).reduce(0.0) { $0 + abs(wd[$1 * n + j]) } / 256 + 2.0 / 4096
            for i in 0..<m {
                let ref = (0..<k).reduce(0.0) { $0 + xd[i * k + $1] * wd[$1 * n + j] }
                #expect(abs(narrow[i * n + j] - ref) <= bound, "output [\(i), \(j)]: \(narrow[i * n + j]) vs \(ref)")
            }
        }
        #expect(maxAbsDiff(wide, narrow) > 0, "the narrow product rounds its input coarser")
        let bits = 8 * ((m * n + 63) / 64)
        #expect(r0.2 == 8 * ((m * k + 1) / 2) + bits && r1.2 == bits, "client sent \(r0.2), server \(r1.2)")
        #expect(r0.1 == 8 * m * k + bits, "the wide product sends 8 bytes per activation")
        #expect(r0.3 == 2)
        // The server's view: 32-bit masked words, uniform, none equal to an activation's low 32 bits.
        let received = r1.4.flatMap { $0 }
        #expect(chiSquareBytes(received) < chiSquareLimit)
        let lows = Set(x.data.map { UInt32(truncatingIfNeeded: $0) }.filter { $0 > 0xFF && $0 < 0xFFFF_FF00 })
        let words = stride(from: 0, to: received.count - 3, by: 4).map { i in
            UInt32(received[i]) | UInt32(received[i + 1]) << 8 | UInt32(received[i + 2]) << 16 | UInt32(received[i + 3]) << 24
        }
        #expect(words.filter { lows.contains($0) }.count <= 1, "activations' low words appear in the server's view")
    }

    /// A narrow Beaver product (`Q·Kᵀ`-like, both operands secret) matches plaintext within the right
    /// operand's coarser grid and opens half the bytes of the wide one.
    @Test func narrowSecretProductMatchesPlaintextAtHalfTheBytes() throws {
        let seed: UInt64 = 74
        let fp = FixedPoint(fracBits: 12)
        var rng = TestData(seed: seed)
        let (b, m, k, n) = (3, 8, 16, 8)
        let x = fp.encode(rng.doubles(b * m * k, range: 3), shape: [b, m, k]), y = fp.encode(rng.doubles(b * k * n, range: 3), shape: [b, k, n])
        let (r0, r1, _) = try runTwoParties(seed: seed, fracBits: 12, deal: { d in
            for _ in 0..<2 {
                try d.matmulTriple(batch: b, m: m, k: k, n: n)
                try d.bitProduct(count: b * m * n)
            }
        }) { p in
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: x.shape)
            let sy = p.share(p.id == .server ? y : nil, owner: .server, shape: y.shape)
            let wide = try p.matmul(sx, sy, rightShift: 2)
            let wideSent = p.peer.bytesSent
            p.peer.resetCounters()
            let narrow = try p.matmul(sx, sy, rightShift: 2, narrow: true)
            let narrowSent = p.peer.bytesSent
            return (try p.revealToBoth([wide, narrow]), wideSent, narrowSent)
        }
        #expect(r0.0 == r1.0)
        let (xd, yd, got) = (fp.decode(x), fp.decode(y), fp.decode(r0.0[1]))
        for bt in 0..<b {
            for i in 0..<m {
                for j in 0..<n {
                    let ref = (0..<k).reduce(0.0) { $0 + xd[(bt * m + i) * k + $1] * yd[(bt * k + $1) * n + j] }
                    let bound = (0..<k).reduce(0.0) { $0 + abs(xd[(bt * m + i) * k + $1]) } / 256 + 2.0 / 4096
                    #expect(abs(got[(bt * m + i) * n + j] - ref) <= bound)
                }
            }
        }
        let bits = 8 * ((b * m * n + 63) / 64), opened = b * (m * k + k * n)
        #expect(r0.1 == 8 * opened + bits && r0.2 == 8 * ((opened + 1) / 2) + bits, "sent \(r0.1) wide, \(r0.2) narrow")
    }

    /// The Quad activation's square on Z_2^32: within x's rounding to 2^−8 of plaintext over the whole
    /// range |x| < 128, 4 bytes per element and the truncation's bits (half the wide square's 8), one
    /// round more; each party's view uniform.
    @Test func narrowQuadActivationMatchesPlaintextAtHalfTheBytes() throws {
        let seed: UInt64 = 75
        let fp = FixedPoint(fracBits: 12)
        var rng = TestData(seed: seed)
        let n = 4096
        var xs = rng.doubles(n, range: 8)
        for (i, e) in [127.9, -127.9, 0, 1.0 / 4096, -1.0 / 4096, 60, -60].enumerated() { xs[i] = e }
        let x = fp.encode(xs, shape: [n])
        let (r0, r1, _) = try runTwoParties(seed: seed, fracBits: 12, deal: { d in try d.quadGelu(shape: [n], narrow: true) }) { p in
            let sx = p.share(p.id == .server ? x : nil, owner: .server, shape: [n])
            let y = try p.quadGelu(sx, narrow: true)
            let c = (p.rounds, p.peer.bytesSent, p.peer.connection.receivedLog!)
            return (try p.revealToBoth(y), c)
        }
        #expect(r0.0 == r1.0)
        let got = fp.decode(r0.0)
        // x loses 4 bits (≤ 2^−8, random rounding): 0.125·2|x|·2^−8, plus a few ulp of the truncations.
        var worst = 0.0
        for i in 0..<n {
            let x = xs[i], reference: Double = 0.125 * x * x + 0.25 * x + 0.5
            worst = max(worst, abs(got[i] - reference) - abs(x) / 1024)
        }
        #expect(worst <= 4.0 / 4096, "narrow Quad error beyond x's rounding: \(worst)")
        #expect(r0.1.0 == 2 && r0.1.1 == 4 * n + 8 * ((n + 63) / 64) && r1.1.1 == r0.1.1, "rounds \(r0.1.0), bytes \(r0.1.1)")
        expectUniformView(r0.1.2, plaintext: x.data, seed: seed)
        expectUniformView(r1.1.2, plaintext: x.data, seed: seed)
    }
}
