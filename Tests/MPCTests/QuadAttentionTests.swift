import Foundation
import Testing
@testable import MPC

/// The fused 2Quad attention (`Party.quadAttention`): `softmax₂Quad(x)·V` without opening the probabilities.
@Suite struct QuadAttentionTests {
    let fp = FixedPoint()

    /// Float reference: per head, rows of `(x + 5)²` over the kept keys, normalised, times V.
    static func reference(_ xs: [Double], _ vs: [Double], batch: Int, m: Int, n: Int, d: Int, keys: [Bool]?) -> [Double] {
        var out = [Double]()
        for h in 0..<batch {
            for i in 0..<m {
                let q = (0..<n).map { k -> Double in (keys?[k] ?? true) ? pow(xs[(h * m + i) * n + k] + 5, 2) : 0 }
                let z = q.reduce(0, +)
                out += (0..<d).map { j in (0..<n).reduce(0.0) { $0 + q[$1] / z * vs[(h * n + $1) * d + j] } }
            }
        }
        return out
    }

    @Test(arguments: [false, true]) func matchesTheFloatAttention(masked: Bool) throws {
        let (batch, m, n, d) = (3, 8, 64, 16)
        var rng = TestData(seed: 281)
        var xs = rng.doubles(batch * m * n, range: 20), vs = rng.doubles(batch * n * d, range: 2)
        for j in 0..<n { xs[j] = 0; xs[n + j] = -20; xs[2 * n + j] = j == 5 ? 20 : -20 }  // flat, flat low, one spike
        for j in 0..<d { vs[j] = 40; vs[d + j] = -40 }  // two large values
        let keys: [Bool]? = masked ? (0..<n).map { $0 < 50 || $0 == 60 } : nil
        let kept = keys?.filter { $0 }.count ?? n
        let (x, v) = (fp.encode(xs, shape: [batch, m, n]), fp.encode(vs, shape: [batch, n, d]))
        let (r0, r1, _) = try runTwoParties(seed: 281, deal: { try $0.quadAttention(scores: [batch, m, n], headDim: d, keys: keys) }) { p in
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: x.shape)
            let sv = p.share(p.id == .server ? v : nil, owner: .server, shape: v.shape)
            let y = try p.quadAttention(sx, sv, keys: keys)
            let cost = (p.rounds, p.peer.bytesSent, p.peer.connection.receivedLog!)
            return (try p.revealToBoth(y), cost)
        }
        #expect(r0.0 == r1.0 && r0.1.0 == r1.1.0 && r0.1.1 == r1.1.1)
        let err = maxAbsDiff(fp.decode(r0.0), Self.reference(xs, vs, batch: batch, m: m, n: n, d: d, keys: keys))
        print("quadAttention (masked \(masked)) max abs error \(err); rounds \(r0.1.0), online \(r0.1.1) B per party")
        // Relative to the largest |V| (40): the probabilities' error is ≈ 1e-4, as in `quadSoftmax`.
        #expect(err < 1e-4 * 40, "error \(err)")
        #expect(r0.1.0 == 10, "rounds \(r0.1.0)")
        // Opened per party: the scores and values once, the [m, d] context once (with one value per row),
        // truncation bits and the reciprocal's ≈ 50 words per row; never the [m, n] probabilities.
        let words = batch * (m * kept + kept * d) + batch * (m * d + m) + 2 * ((batch * m * d + 63) / 64) + 50 * batch * m
        #expect(r0.1.1 <= 8 * words, "bytes \(r0.1.1) > \(8 * words)")
        let plain = x.data + v.data
        expectUniformView(r0.1.2, plaintext: plain, seed: 281)
        expectUniformView(r1.1.2, plaintext: plain, seed: 281)
    }
}
