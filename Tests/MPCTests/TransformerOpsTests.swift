import Foundation
import Testing
@testable import MPC

/// A small attention-plus-FFN block through the backend ops (masked session weight, softmax, GeLU,
/// LayerNorm): dealer and parties stay in step, and the result matches plaintext.
struct BlockProgram: SecureProgram, Equatable {
    static let name = "block-test"
    var s = 4, h = 8

    func run(on b: some SecureBackend) throws -> [UInt64]? {
        let x = try b.input("x", owner: .client, shape: [s, h])
        let w = try b.weight("w", k: h, n: h)
        let gamma = try b.input("gamma", owner: .server, shape: [h])
        let beta = try b.input("beta", owner: .server, shape: [h])
        let y = try b.matmulWeight(x, w)                        // [s, h]
        let p = try b.softmax(y, mask: [true, true, true, true, true, true, false, false])
        let g = try b.gelu(b.add(p, y))
        let out = try b.layerNorm(g, gamma: gamma, beta: beta)
        return try b.reveal(out, to: .client)?.data
    }

    func syntheticInputs(for party: PartyID, seed: UInt64) -> [String: RingTensor] {
        var g = SyntheticData(seed: seed)
        if party == .client { return ["x": fixedPoint.encode(g.doubles(s * h, range: 1), shape: [s, h])] }
        return ["w": fixedPoint.weights.encode(g.doubles(h * h, range: 1), shape: [h, h]),
                "gamma": fixedPoint.encode(g.doubles(h, range: 1).map { 1 + $0 / 4 }, shape: [h]),
                "beta": fixedPoint.encode(g.doubles(h, range: 0.5), shape: [h])]
    }

    /// The same computation in Double.
    static func plaintext(_ x: [Double], _ w: [Double], _ gamma: [Double], _ beta: [Double], s: Int, h: Int) -> [Double] {
        var out = [Double]()
        for i in 0..<s {
            let y = (0..<h).map { j in (0..<h).reduce(0.0) { $0 + x[i * h + $1] * w[$1 * h + j] } }
            let valid = 6
            let mx = y.prefix(valid).max()!
            let e = y.enumerated().map { $0.offset < valid ? Foundation.exp($0.element - mx) : 0 }
            let z = e.reduce(0, +)
            let g = (0..<h).map { j -> Double in let v = e[j] / z + y[j]; return 0.5 * v * (1 + erf(v / 2.0.squareRoot())) }
            let mean = g.reduce(0, +) / Double(h)
            let varc = g.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(h)
            out += (0..<h).map { j in (g[j] - mean) / (varc + 1e-12).squareRoot() * gamma[j] + beta[j] }
        }
        return out
    }
}

@Suite struct TransformerOpsTests {
    @Test func blockMatchesPlaintextAndStaysInStep() throws {
        let p = BlockProgram()
        let ci = p.syntheticInputs(for: .client, seed: 11), si = p.syntheticInputs(for: .server, seed: 12)
        let r = try Session.runInMemory(p, clientInputs: ci, serverInputs: si, options: SessionOptions(seeds: .insecureTest(5)))
        let got = FixedPoint().decode(RingTensor(shape: [p.s * p.h], data: try #require(r.client.output ?? nil)))
        let fp = FixedPoint()
        let ref = BlockProgram.plaintext(fp.decode(ci["x"]!), fp.weights.decode(si["w"]!), fp.decode(si["gamma"]!), fp.decode(si["beta"]!), s: p.s, h: p.h)
        let err = maxAbsDiff(got, ref)
        // GeLU 1.2e-3 and softmax 1e-3 propagate through LayerNorm (gain ≈ γ/σ, σ ≈ 0.3 here).
        #expect(err < 3e-2, "block error \(err)")
    }
}
