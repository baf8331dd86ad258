import Foundation
import Tensor

/// One layer's gate values for a forward pass (each `[0, 1]`, from `StructureGates.values`).
public struct LayerGateValues {
    /// `[A, 1, 1]`: multiplies each head's context `P·V` (`[B, A, S, D]`), or nil: heads not gated.
    public var heads: Tensor?
    /// `[G, 1]`: multiplies each group of `I / G` consecutive feed-forward activations, or nil.
    public var ffn: Tensor?
    /// `[1]`: the layer's output is `x + z·(layer(x) − x)` (z = 0 skips the layer), or nil.
    public var layer: Tensor?
}

/// Learnable hard-concrete gates (Louizos, Welling & Kingma 2018, "L0 regularization") on the
/// structure whose MPC cost can be removed: attention heads, groups of feed-forward neurons and whole
/// encoder layers.
///
/// Why hard-concrete: a gate is a stretched, clipped sigmoid of logistic noise, so it is exactly 0 or
/// exactly 1 with non-zero probability, its probability of being non-zero is differentiable (the
/// expected cost penalty uses it), and at evaluation it is deterministic and usually already 0 or 1,
/// so removing the closed structure (`StructurePruning`) changes the model little or not at all.
///
/// Each gate's log-odds is `logAlphaScale · θ` with θ the trained parameter: Adam moves θ by about the
/// learning rate per step, so the scale lets gates move ~`logAlphaScale` times faster than weights
/// without a second optimizer.
public final class StructureGates {
    /// Stretch interval (γ, ζ) = (-0.1, 1.1) and temperature β = 2/3, the paper's values.
    public static let gamma: Float = -0.1, zeta: Float = 1.1, beta: Float = 2.0 / 3.0

    /// Per layer: `[A_l]` head gates (nil when heads are not gated).
    public let heads: [Tensor?]
    /// Per layer: `[G_l]` feed-forward group gates (nil when not gated).
    public let ffn: [Tensor?]
    /// Per layer: `[1]` layer gate (nil when layers are not gated).
    public let layers: [Tensor?]
    /// Neurons per feed-forward group.
    public let groupSize: Int
    public let logAlphaScale: Float

    /// - Parameters:
    ///   - config: the (unpruned or pruned) model the gates attach to.
    ///   - gateHeads, gateFFN, gateLayers: which structure to gate.
    ///   - groupSize: feed-forward neurons per gate; must divide every layer's width.
    ///   - initialLogAlpha: starting log-odds (3 ≈ every gate open with probability 0.99).
    public init(config: BertConfig, gateHeads: Bool = true, gateFFN: Bool = true, gateLayers: Bool = true,
                groupSize: Int = 64, initialLogAlpha: Float = 3, logAlphaScale: Float = 100) {
        precondition(groupSize >= 1 && logAlphaScale > 0)
        self.groupSize = groupSize
        self.logAlphaScale = logAlphaScale
        let theta = initialLogAlpha / logAlphaScale
        heads = (0..<config.layers).map { gateHeads ? Tensor.full([config.heads(inLayer: $0)], theta, requiresGrad: true) : nil }
        ffn = (0..<config.layers).map { l in
            let i = config.intermediate(inLayer: l)
            precondition(i % groupSize == 0, "group size \(groupSize) must divide the feed-forward width \(i)")
            return gateFFN ? Tensor.full([i / groupSize], theta, requiresGrad: true) : nil
        }
        layers = (0..<config.layers).map { _ in gateLayers ? Tensor.full([1], theta, requiresGrad: true) : nil }
    }

    /// Gate parameters with stable names (`gates.layer.<l>.heads|ffn|layer`), for optimizers and resumable state.
    public func namedParameters() -> [NamedParameter] {
        var out: [NamedParameter] = []
        for l in 0..<heads.count {
            if let t = heads[l] { out.append(("gates.layer.\(l).heads", t)) }
            if let t = ffn[l] { out.append(("gates.layer.\(l).ffn", t)) }
            if let t = layers[l] { out.append(("gates.layer.\(l).layer", t)) }
        }
        return out
    }

    /// Gate values for one forward pass: sampled (training; one sample per gate and step, shared by
    /// the batch) or deterministic (`training` false: `clip(sigmoid(log α)·(ζ−γ)+γ, 0, 1)`).
    public func values(training: Bool, rng: SeededGenerator) -> [LayerGateValues] {
        (0..<heads.count).map { l in
            LayerGateValues(heads: heads[l].map { gate($0, training: training, rng: rng).reshaped([$0.count, 1, 1]) },
                            ffn: ffn[l].map { gate($0, training: training, rng: rng).reshaped([$0.count, 1]) },
                            layer: layers[l].map { gate($0, training: training, rng: rng) })
        }
    }

    /// `P(z ≠ 0) = sigmoid(log α − β·log(−γ/ζ))` of every gate of `theta`, differentiable (the
    /// expected-cost penalty).
    public func openProbability(_ theta: Tensor) -> Tensor {
        let shift = Self.beta * Foundation.log(-Self.gamma / Self.zeta)
        return Self.sigmoid(theta * logAlphaScale - shift)
    }

    /// Deterministic gate values as plain numbers (for pruning and reports).
    public func deterministic(_ theta: Tensor?) -> [Float]? {
        guard let theta else { return nil }
        return theta.data.map { t in
            let s = 1 / (1 + Foundation.exp(-t * logAlphaScale))
            return Swift.min(1, Swift.max(0, s * (Self.zeta - Self.gamma) + Self.gamma))
        }
    }

    private func gate(_ theta: Tensor, training: Bool, rng: SeededGenerator) -> Tensor {
        let logAlpha = theta * logAlphaScale
        let s: Tensor
        if training {
            // Logistic noise log(u) − log(1−u), u ~ U(0,1), kept away from 0 and 1.
            let noise = Tensor(shape: theta.shape, data: (0..<theta.count).map { _ in
                let u = Swift.min(Swift.max(rng.nextFloat(), 1e-6), 1 - 1e-6)
                return Foundation.log(u) - Foundation.log(1 - u)
            })
            s = Self.sigmoid((logAlpha + noise) * (1 / Self.beta))
        } else {
            s = Self.sigmoid(logAlpha)
        }
        let stretched = s * (Self.zeta - Self.gamma) + Self.gamma
        return stretched.relu() - (stretched - 1).relu()  // clip to [0, 1]
    }

    /// `sigmoid(x) = (1 + tanh(x/2)) / 2`, built from ops that have gradients.
    static func sigmoid(_ x: Tensor) -> Tensor { (x * 0.5).tanh() * 0.5 + 0.5 }
}
