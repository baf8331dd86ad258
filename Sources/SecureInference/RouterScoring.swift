import CBLAS
import Foundation
import MPC

/// The secure router's decision rule (`RoutedBertProgram`) in plaintext: the folded MLP, ReLU, the
/// runtime's tanh spline, the public cost offsets and the argmax's tie rule (lowest index), either in
/// float (`fracBits` nil: the plaintext routed pipeline, the runtime's expectation) or emulated on the
/// runtime's fixed-point grid (the MLP's weights as the server encodes them, each product rounded where
/// the runtime truncates it, the spline's output and the offsets rounded).
///
/// On the grid, with features from `FixedPointEmulation.routerFeatures`, it shows what the grid makes of a
/// decision: its margin in ulps, and the ties that appear where two members' scores differ by less than
/// one ulp (cost offsets closer than 2^−f round to the same value). It is not a better predictor of the
/// secure decision than float near a tie: the runtime's truncations round up or down at random in
/// proportion, so the secure scores scatter around the float ones by a few ulps, while the emulation
/// rounds to nearest and settles ties on the lowest index. Margins of a few ulps go either way.
public struct RouterScoring: Sendable {
    public let shape: SecureRouterShape
    /// The grid, or nil for float arithmetic.
    public let fixedPoint: FixedPoint?
    private let fc1W: [Double], fc1B: [Double], diffW: [Double], diffB: [Double]
    private let features: Int, hidden: Int, members: Int

    /// `fracBits`: emulate the grid with this many fractional bits (the weights exactly as
    /// `SecureRouterWeights.ringInputs` encodes them, decoded back to reals); nil: float.
    public init(shape: SecureRouterShape, weights: SecureRouterWeights, fracBits: Int? = nil) {
        self.shape = shape
        (features, hidden, members) = (weights.features, weights.hidden, weights.members)
        guard let fracBits else {
            fixedPoint = nil
            (fc1W, fc1B, diffW, diffB) = (weights.fc1W, weights.fc1B, weights.diffW, weights.diffB)
            return
        }
        let fp = FixedPoint(fracBits: fracBits)
        fixedPoint = fp
        let ring = weights.ringInputs(fixedPoint: fp)
        func v(_ name: String) -> [Double] { fp.decode(input: name, ring[name]!) }
        (fc1W, fc1B, diffW, diffB) = (v("router.fc1.w"), v("router.fc1.b"), v("router.fc2.w"), v("router.fc2.b"))
    }

    /// `x` rounded to the grid (unchanged in float).
    private func q(_ x: Double) -> Double {
        guard let fp = fixedPoint else { return x }
        return (x * fp.scale).rounded() / fp.scale
    }

    /// `x · W + b` with the product rounded to the grid (the runtime's truncation after a weight product).
    private func linear(_ x: [Double], k: Int, _ w: [Double], _ b: [Double], n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, Int32(n), Int32(k), 1, x, Int32(k), w, Int32(n), 0, &out, Int32(n))
        return (0..<n).map { q(out[$0]) + b[$0] }
    }

    /// Utilities `(1 + tanh(z_m))/2` and scores `tanh(z_m) − 2·lambda·cost_m(bucket)` of one feature row,
    /// as the runtime computes them.
    /// - Throws: `SecureInferenceError` if the router has no cost row for `bucket`.
    public func scores(features x: [Double], bucket: Int) throws -> (utilities: [Double], scores: [Double]) {
        precondition(x.count == features, "\(x.count) features for a router of \(features)")
        let h = linear(x, k: features, fc1W, fc1B, n: hidden).map { Swift.max(0, $0) }
        let t = linear(h, k: hidden, diffW, diffB, n: members).map { q(Approximations.tanhWide.evaluate($0)) }
        let offsets = try shape.offsets(bucket: bucket, members: members).map(q)
        return (t.map { (1 + $0) / 2 }, zip(t, offsets).map { $0 + $1 })
    }

    /// The index of the largest score, the lowest on a tie (the secure argmax's rule), and its margin over
    /// the second largest.
    public static func choice(_ scores: [Double]) -> (member: Int, margin: Double) {
        let best = scores.indices.reduce(0) { scores[$1] > scores[$0] ? $1 : $0 }
        let second = scores.indices.filter { $0 != best }.map { scores[$0] }.max() ?? -.infinity
        return (best, scores[best] - second)
    }
}
