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

/// DReLU throughput on 2^20 elements in release; run with
/// `MPC_BENCH=1 swift test -c release --filter MPCTests.DReLUBenchmarks`. Reported, not asserted.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["MPC_BENCH"] != nil))
struct DReLUBenchmarks {
    /// Pure DCF work, one thread: key generation (both keys) and one party's evaluation.
    @Test func dcfLocal() {
        let n = 1 << 20
        var prg = PRG(seed: PRGSeed(testValue: 7))
        let alpha = prg.next(n).map { $0 >> 1 }, beta = [UInt64](repeating: 1, count: n)
        let r0 = prg.next(2 * n), r1 = prg.next(2 * n), x = prg.next(n)
        let t0 = ContinuousClock.now
        let cw = DCF.generate(bits: 63, alpha: alpha, beta: beta, roots0: r0, roots1: r1)
        let t1 = ContinuousClock.now
        let y = DCFKeys(bits: 63, count: n, roots: r0, corrections: cw).evaluate(party: .client, x)
        let t2 = ContinuousClock.now
        let (g, e) = (t0.duration(to: t1).seconds, t1.duration(to: t2).seconds)
        print("DCF 63-bit, 2^20 elements, 1 thread: keygen \(String(format: "%.3f", g)) s (\(String(format: "%.2f", Double(n) / g / 1e6)) M/s), eval \(String(format: "%.3f", e)) s (\(String(format: "%.2f", Double(n) / e / 1e6)) M/s), key \(cw.count * 8 / n) B/element/party [sink \(y[n / 2] & 1)]")
    }

    /// The dealer alone, sending into channels that count and discard: PRG draws, DCF key generation,
    /// record encoding and framing for 2^20 elements (8 records of 2^17 per party).
    @Test func dreluDealer() throws {
        let batches = 8, per = 1 << 17
        let sinks = (DiscardChannel(), DiscardChannel())
        let dealer = try Dealer(toClient: FramedConnection(channel: sinks.0), toServer: FramedConnection(channel: sinks.1))
        let t = try ContinuousClock().measure { for _ in 0..<batches { try dealer.dreluKey(shape: [per]) } }.seconds
        let n = batches * per
        print("DReLU dealer, 2^20 elements: \(String(format: "%.3f", t)) s = \(String(format: "%.2f", Double(n) / t / 1e6)) M keys/s (1 thread), offline \(String(format: "%.1f", Double(dealer.offlineBytes) / Double(n))) B/element")
    }

    /// The whole protocol: dealer (offline, timed alone), then both parties over the in-memory transport
    /// on two threads: first each takes its keys from the dealer stream (offline: receive and decode),
    /// then the timed online phase. 2^20 elements in 8 batches of 2^17 (a record is one frame, ≤ 1 GiB).
    @Test func dreluProtocol() throws {
        let batches = 8, per = 1 << 17, n = batches * per
        var rng = TestData(seed: 9)
        let xs = (0..<n).map { _ in rng.next() }
        let clock = ContinuousClock()
        var dealSeconds = 0.0
        let (r0, r1, offline) = try runTwoParties(seed: 9, receiveTimeout: .seconds(120), deal: { d in
            dealSeconds = clock.measure { for _ in 0..<batches { try! d.dreluKey(shape: [per]) } }.seconds
        }) { p in
            let shares = (0..<batches).map { b in
                p.share(p.id == .client ? RingTensor(shape: [per], data: Array(xs[b * per..<(b + 1) * per])) : nil,
                        owner: .client, shape: [per])
            }
            var keys: [DReLUKey] = []
            let fetch = clock.measure { keys = (0..<batches).map { _ in try! p.dealer.dreluKey(shape: [per]) } }.seconds
            var sink: UInt64 = 0
            let online = clock.measure { for b in 0..<batches { sink ^= try! p.drelu(shares[b], key: keys[b]).tensor.data[7] } }.seconds
            return (sink, p.rounds, p.peer.bytesSent, fetch, online)
        }
        let f = (r0.3 + r1.3) / 2, online = max(r0.4, r1.4)
        print("DReLU 2^20 elements (8 × 2^17): dealer \(String(format: "%.3f", dealSeconds)) s (\(String(format: "%.2f", Double(n) / dealSeconds / 1e6)) M/s incl. PRG, records, in-memory send), offline \(offline / n) B/element, party key receive+decode \(String(format: "%.3f", f)) s [sink \(r0.0 ^ r1.0)]")
        print("DReLU online: \(String(format: "%.3f", online)) s for 2^20, both parties in parallel on 2 cores = \(String(format: "%.2f", Double(n) / online / 1e6)) M elements/s; rounds \(r0.1) (1 per batch), \(r0.2 / n) B/element sent by each party")
    }
}

/// A channel that counts and drops what is sent (dealer benchmarks).
final class DiscardChannel: ByteChannel, @unchecked Sendable {
    let peerName = "discard"
    private(set) var bytes = 0
    func send(_ b: UnsafeRawBufferPointer) throws { bytes += b.count }
    func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws {
        throw TransportError.peerClosed(peer: peerName, detail: "discard channel has nothing to read")
    }
    func close() {}
}
