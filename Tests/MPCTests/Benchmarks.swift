import Foundation
import Testing
@testable import MPC

/// Release-build throughput measurements; run with
/// `MPC_BENCH=1 swift test -c release --filter MPCTests.Benchmarks`. Reported, not asserted.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["MPC_BENCH"] != nil))
struct Benchmarks {
    func time(_ reps: Int, _ body: () -> UInt64) -> (seconds: Double, sink: UInt64) {
        var sink: UInt64 = 0
        sink ^= body()  // warm-up
        let start = ContinuousClock.now
        for _ in 0..<reps { sink ^= body() }
        return (start.duration(to: .now).seconds / Double(reps), sink)
    }

    @Test func prgThroughput() {
        var prg = PRG(seed: .random())
        let words = 1 << 21  // 16 MiB per call
        var buffer = [UInt64](repeating: 0, count: words)
        let (t, sink) = time(8) {
            buffer.withUnsafeMutableBytes { prg.fill($0) }
            return buffer[words / 2]
        }
        print("PRG AES-128-CTR: \(String(format: "%.2f", Double(words * 8) / t / 1e9)) GB/s single core (16 MiB requests) [sink \(sink & 1)]")
        let (t2, _) = time(200) { prg.next(1 << 13).last! }  // 64 KiB requests incl. allocation
        print("PRG AES-128-CTR: \(String(format: "%.2f", Double(1 << 16) / t2 / 1e9)) GB/s single core (64 KiB next())")
    }

    @Test(arguments: [(64, 384, 1536), (768, 768, 768), (128, 128, 512)])
    func ringMatmulThroughput(shape: (Int, Int, Int)) {
        let (m, k, n) = shape
        var prg = PRG(seed: .random())
        let a = prg.next(m * k), b = prg.next(k * n)
        let (t, sink) = time(5) { RingMatmul.multiply(a, b, m: m, k: k, n: n)[0] }
        let macs = Double(m * k * n)
        print("ring matmul \(m)x\(k) · \(k)x\(n): \(String(format: "%.2f", t * 1e3)) ms, \(String(format: "%.2f", macs / t / 1e9)) G mul-add/s = \(String(format: "%.2f", 2 * macs / t / 1e9)) GOPS [sink \(sink & 1)]")
    }
}
