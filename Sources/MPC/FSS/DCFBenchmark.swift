import Foundation

extension DCF {
    /// What `benchmark` measured for one kernel.
    public struct Throughput: Sendable {
        /// Keys generated per second (the dealer's work: both parties' trees, one key per element).
        public var keysPerSecond: Double
        /// Points evaluated per second by one party (the online work of every comparison).
        public var evaluationsPerSecond: Double
        /// The reconstructed outputs of the last evaluation (to check that kernels agree).
        public var outputs: [UInt64]
    }

    /// Times key generation and one party's evaluation of `count` random `bits`-bit DCFs, each at
    /// `pointsPerKey` points (as the spline and octave comparisons use one key for several thresholds),
    /// for at least `seconds` each (`securerouter bench dcf`).
    public static func benchmark(bits: Int, count n: Int, pointsPerKey k: Int, kernel: Kernel, seconds: Double) -> Throughput {
        var g = SyntheticData(seed: UInt64(bits))
        let mask: UInt64 = bits == 64 ? ~0 : (1 << UInt64(bits)) - 1
        let alpha = (0..<n).map { _ in g.next() & mask }, beta = (0..<n).map { _ in g.next() }
        let r0 = (0..<(2 * n)).map { _ in g.next() }, r1 = (0..<(2 * n)).map { _ in g.next() }
        let xs = (0..<(n * k)).map { _ in g.next() & mask }
        var cw: [UInt64] = []
        let keyRate = callsPerSecond(seconds: seconds) {
            cw = generate(bits: bits, alpha: alpha, beta: beta, roots0: r0, roots1: r1, kernel: kernel)
        } * Double(n)
        let key0 = DCFKeys(bits: bits, count: n, roots: r0, corrections: cw), key1 = DCFKeys(bits: bits, count: n, roots: r1, corrections: cw)
        let evalRate = callsPerSecond(seconds: seconds) { _ = key0.evaluate(party: .client, xs, pointsPerKey: k, kernel: kernel) } * Double(n * k)
        let outputs = zip(key0.evaluate(party: .client, xs, pointsPerKey: k, kernel: kernel),
                          key1.evaluate(party: .server, xs, pointsPerKey: k, kernel: kernel)).map { $0 &+ $1 }
        return Throughput(keysPerSecond: keyRate, evaluationsPerSecond: evalRate, outputs: outputs)
    }
}

/// Calls `body` once to warm up, then repeatedly for at least `seconds` (at least once), and returns the calls
/// per second (the `bench ring` and `bench dcf` timings).
public func callsPerSecond(seconds: Double, _ body: () -> Void) -> Double {
    body()
    var count = 0, elapsed = 0.0
    let start = DispatchTime.now().uptimeNanoseconds
    repeat {
        body()
        count += 1
        elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    } while elapsed < seconds
    return Double(count) / elapsed
}
