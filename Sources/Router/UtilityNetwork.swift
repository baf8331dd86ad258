import Foundation
import Tensor
import Transformer

/// The router's predictor: a 2-layer MLP from a query's features to, for each pool member, the
/// probability that the member answers that query correctly (its utility).
///
/// `features [F] → Linear → ReLU → Linear → [M, 2]`, a softmax over each member's pair (wrong, right);
/// utility = P(right) = sigmoid(z_right − z_wrong). Trained with cross-entropy on honest correctness
/// labels, so the probabilities are calibrated the way logistic regression is. ReLU and a sigmoid
/// (from the secure `tanh`) are what the MPC runtime evaluates cheaply.
///
/// Feature standardisation (mean/std of the training features) is folded into the first layer by
/// `folded()`, so a stored router is just two linear layers.
public final class UtilityNetwork {
    public let fc1: Linear, fc2: Linear
    public let members: Int
    /// Smallest feature standard deviation used for standardisation (caps the folded fc1 weights).
    public static let minFeatureStd: Float = 0.05
    /// Standardisation applied before `fc1` (identity after `folded()`).
    public private(set) var mean: [Float], scale: [Float]

    public init(features: Int, hidden: Int, members: Int, seed: UInt64) {
        let rng = SeededGenerator(seed: seed)
        fc1 = Linear(inFeatures: features, outFeatures: hidden, rng: rng, std: (2 / Float(features)).squareRoot())
        fc2 = Linear(inFeatures: hidden, outFeatures: 2 * members, rng: rng, std: (1 / Float(hidden)).squareRoot())
        self.members = members
        mean = [Float](repeating: 0, count: features)
        scale = [Float](repeating: 1, count: features)
    }

    /// HF-style names of the stored tensors.
    public func namedParameters() -> [NamedParameter] {
        fc1.namedParameters(prefix: "router.fc1") + fc2.namedParameters(prefix: "router.fc2")
    }

    /// `[N, M, 2]` logits for `x [N, F]`.
    func logits(_ x: Tensor) -> Tensor {
        let n = x.shape[0]
        let standardised = (x - Tensor(shape: [mean.count], data: mean)) * Tensor(shape: [scale.count], data: scale)
        return fc2(fc1(standardised).relu()).reshaped([n, members, 2])
    }

    /// P(member m is right) for every row of `features` (`[N][F]`).
    public func utilities(_ features: [[Float]]) -> [[Double]] {
        guard let f = features.first?.count else { return [] }
        let out = Tensor.withNoGrad { logits(Tensor(shape: [features.count, f], data: features.flatMap { $0 })) }.data
        return (0..<features.count).map { i in
            (0..<members).map { m in
                let z = Double(out[(i * members + m) * 2 + 1] - out[(i * members + m) * 2])
                return 1 / (1 + Foundation.exp(-z))
            }
        }
    }

    /// Fits on `features [N][F]` and `correct [N][M]` (member m right on row i): full-batch AdamW.
    /// `featureNoise`: standard deviation of Gaussian noise added to the raw features afresh every epoch,
    /// so that the predictor does not hinge on differences the secure runtime's fixed-point arithmetic
    /// blurs (its features differ from float ones by ~1e-3); it also regularises a small dev set.
    public func train(features: [[Float]], correct: [[Bool]], epochs: Int, learningRate: Float, weightDecay: Float,
                      featureNoise: Float = 0, seed: UInt64 = 0) {
        let n = features.count, f = features[0].count
        standardise(on: features)
        let x = Tensor(shape: [n, f], data: features.flatMap { $0 })
        let labels = correct.flatMap { $0.map { Int32($0 ? 1 : 0) } }
        let params = namedParameters()
        let opt = AdamW(parameters: params.map(\.tensor), learningRate: learningRate, weightDecay: weightDecay,
                        decay: params.map { !$0.name.hasSuffix(".bias") })
        let noise = SeededGenerator(seed: seed &+ 0x5eed)
        for _ in 0..<epochs {
            let input = featureNoise > 0 ? x + Tensor.randn([n, f], std: featureNoise, rng: noise) : x
            let loss = Tensor.crossEntropy(logits: logits(input).reshaped([n * members, 2]), labels: labels)
            opt.zeroGrad()
            loss.backward()
            opt.step()
        }
    }

    /// Sets the standardisation from training features: per-feature mean and 1/std.
    public func standardise(on features: [[Float]]) {
        let n = features.count
        for j in 0..<(features.first?.count ?? 0) {
            let col = features.map { $0[j] }
            let mu = col.reduce(0, +) / Float(n)
            let sd = (col.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Float(n)).squareRoot()
            mean[j] = mu
            // Floor: a nearly constant feature carries no signal, and a huge scale would amplify the secure
            // runtime's fixed-point noise in it (the scale is folded into fc1's weights).
            scale[j] = 1 / max(sd, UtilityNetwork.minFeatureStd)
        }
    }

    /// Folds the standardisation into `fc1` (`W' = W·diag(scale)`, `b' = b − W'·mean`), so that the
    /// stored router reads raw features; outputs are unchanged.
    public func folded() -> UtilityNetwork {
        let (h, f) = (fc1.weight.shape[0], fc1.weight.shape[1])
        let copy = UtilityNetwork(features: f, hidden: h, members: members, seed: 0)
        var w = fc1.weight.data, b = fc1.bias.data
        for r in 0..<h {
            var shift: Float = 0
            for c in 0..<f {
                w[r * f + c] *= scale[c]
                shift += w[r * f + c] * mean[c]
            }
            b[r] -= shift
        }
        copy.fc1.weight.data = w
        copy.fc1.bias.data = b
        copy.fc2.weight.data = fc2.weight.data
        copy.fc2.bias.data = fc2.bias.data
        return copy
    }

    /// Rescales member m's logit difference `z_m = z_right − z_wrong` to `a_m·z_m + b_m` (Platt scaling),
    /// by scaling both of its output rows by `a_m` and adding `b_m` to its "right" bias.
    public func calibrate(_ platt: [(a: Double, b: Double)]) {
        precondition(platt.count == members, "one (a, b) per member")
        let hd = fc2.weight.shape[1]
        var w = fc2.weight.data, b = fc2.bias.data
        for (m, p) in platt.enumerated() {
            for row in [2 * m, 2 * m + 1] {
                for j in 0..<hd { w[row * hd + j] *= Float(p.a) }
                b[row] *= Float(p.a)
            }
            b[2 * m + 1] += Float(p.b)
        }
        fc2.weight.data = w
        fc2.bias.data = b
    }

    /// Loads stored (folded) weights by name.
    public func load(_ weights: [String: (shape: [Int], data: [Float])]) throws {
        for (name, t) in namedParameters() {
            guard let w = weights[name] else { throw ModelError.missingTensor(name: name, expectedShape: t.shape) }
            guard w.shape == t.shape else { throw ModelError.shapeMismatch(name: name, expected: t.shape, found: w.shape) }
            t.data = w.data
        }
    }
}
