import Foundation
import Testing
@testable import MPC

/// Transformer nonlinearities at model sizes; run with
/// `MPC_BENCH=1 swift test -c release -Xswiftc -enable-testing --filter NonlinearBenchmarks`. Reported, not asserted.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["MPC_BENCH"] != nil))
struct NonlinearBenchmarks {
    func bench(_ name: String, shape: [Int], range: Double, deal: @escaping (Dealer) throws -> Void,
               _ op: @escaping @Sendable (Party, ArithmeticShare) throws -> ArithmeticShare) throws {
        let fp = FixedPoint(fracBits: 16)
        var rng = TestData(seed: 5)
        let x = fp.encode(rng.doubles(RingTensor.count(of: shape), range: range), shape: shape)
        let clock = ContinuousClock()
        var dealSeconds = 0.0
        let (r0, r1, offline) = try runTwoParties(seed: 5, receiveTimeout: .seconds(300), deal: { d in
            dealSeconds = try clock.measure { try deal(d) }.seconds
        }) { p in
            let sx = p.share(p.id == .server ? x : nil, owner: .server, shape: shape)
            var y = sx
            let t = try clock.measure { y = try op(p, sx) }.seconds
            return (t, p.rounds, p.peer.bytesSent, y.tensor.data[0])
        }
        print("\(name) \(shape): \(String(format: "%.3f", max(r0.0, r1.0))) s (parties incl. key decoding), dealer \(String(format: "%.3f", dealSeconds)) s, online \(r0.2 + r1.2) B, offline \(offline) B, rounds \(r0.1) [sink \((r0.3 &+ r1.3) & 1)]")
    }

    @Test func gelu() throws { try bench("gelu", shape: [64, 1536], range: 6, deal: { try $0.gelu(shape: [64, 1536]) }) { try $0.gelu($1) } }
    @Test func softmax() throws { try bench("softmax", shape: [12, 64, 64], range: 20, deal: { try $0.softmax(shape: [12, 64, 64]) }) { try $0.softmax($1) } }
    @Test func layerNorm() throws {
        let h = 384, g = [Double](repeating: 1, count: h), b = [Double](repeating: 0, count: h)
        try bench("layerNorm", shape: [64, h], range: 3, deal: { try $0.layerNormPublic(shape: [64, h]) }) { try $0.layerNorm($1, gamma: g, beta: b) }
    }
}
