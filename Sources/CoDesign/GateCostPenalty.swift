import CostModel
import MPC
import SecureInference
import Tensor
import Transformer

/// The expected secure cost of a gated model, differentiable in its gates' open probabilities: the
/// penalty term of cost-penalized training (`PruneConfig`).
///
/// Under the runtime's protocols a layer's cost is affine in its head count and feed-forward width
/// (softmax, score and context products, and the query/key/value MACs grow per head; activation
/// comparisons and the second feed-forward matrix per neuron; rounds and LayerNorm do not), so
/// `CostModel` gives, per layer, a fixed part, a price per head and a price per neuron group, in
/// seconds under the chosen network. The expected cost is then
/// `constant + Σ_l P(layer l open)·(fixed_l + head_l·Σ P(head open) + group_l·Σ P(group open))`,
/// averaged over the length buckets of the training texts, and the penalty is that divided by the
/// full model's cost (so `lambda` = 1 weighs "the whole model" like one nat of task loss).
public struct GateCostPenalty {
    /// Seconds that no gate removes (embedding, pooler, classifier), bucket-averaged.
    public let constant: Double
    /// Per layer: fixed seconds, seconds per head, seconds per neuron group (bucket-averaged).
    public let fixed: [Double], perHead: [Double], perGroup: [Double]
    /// Seconds per query of the ungated model.
    public let full: Double

    /// - Parameters:
    ///   - bucketWeights: fraction of the training texts in each length bucket (sums to 1).
    /// - Throws: `ConfigError`-style message when the variant has no secure implementation.
    ///   - publicEmbedding: the member's embedding is public (computed by the client, no MPC cost).
    public init(config c: BertConfig, groupSize: Int, bucketWeights: [Int: Double], network: NetworkProfile,
                publicEmbedding: Bool = false) throws {
        guard let softmax = SecureSoftmax(rawValue: c.softmax.rawValue), let activation = SecureActivation(rawValue: c.activation.rawValue) else {
            throw PenaltyError("the cost penalty needs a variant the secure runtime runs (softmax \(c.softmax.rawValue), activation \(c.activation.rawValue))")
        }
        var constant = 0.0, fixed = [Double](repeating: 0, count: c.layers), perHead = fixed, perGroup = fixed, full = 0.0
        for (seq, weight) in bucketWeights {
            func shape(heads: [Int], widths: [Int]) -> EncoderShape {
                EncoderShape(layers: heads.count, hidden: c.hidden, heads: c.heads, intermediate: c.intermediate, seq: seq,
                             classes: c.numLabels, softmax: softmax, activation: activation, layerHeads: heads, layerIntermediate: widths)
            }
            func seconds(_ sections: [String: Cost]) -> Double { CostModel.seconds(CostModel.total(sections), network: network) }
            let heads = c.headsPerLayer, widths = c.intermediatePerLayer
            let whole = shape(heads: heads, widths: widths)
            let total = seconds(CostModel.bertQuery(whole, vocab: c.vocabSize, publicEmbedding: publicEmbedding))
            var layerSum = 0.0
            for l in 0..<c.layers {
                func layer(_ a: Int, _ i: Int) -> Double {
                    seconds(CostModel.encoderLayer(shape(heads: [a], widths: [i]), layer: 0, secretMask: true, firstTokenOnly: l == c.layers - 1))
                }
                let base = layer(1, groupSize), head = layer(2, groupSize) - base, group = layer(1, 2 * groupSize) - base
                fixed[l] += weight * (base - head - group)
                perHead[l] += weight * head
                perGroup[l] += weight * group
                layerSum += layer(heads[l], widths[l])
            }
            constant += weight * (total - layerSum)
            full += weight * total
        }
        self.constant = constant
        self.fixed = fixed
        self.perHead = perHead
        self.perGroup = perGroup
        self.full = full
    }

    /// Expected seconds per query divided by the full model's, as a `[1]` tensor with gradients to the gates.
    public func relativeCost(_ gates: StructureGates, config c: BertConfig) -> Tensor {
        var total = Tensor.full([1], Float(constant))
        for l in 0..<c.layers {
            let heads = gates.heads[l].map { gates.openProbability($0).sum() } ?? Tensor.full([1], Float(c.heads(inLayer: l)))
            let groups = gates.ffn[l].map { gates.openProbability($0).sum() }
                ?? Tensor.full([1], Float(c.intermediate(inLayer: l) / gates.groupSize))
            let layer = heads * Float(perHead[l]) + groups * Float(perGroup[l]) + Float(fixed[l])
            total = total + (gates.layers[l].map { gates.openProbability($0) * layer } ?? layer)
        }
        return total * Float(1 / full)
    }
}

/// A cost penalty that cannot be set up (the message says why).
public struct PenaltyError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
