import Tensor

// Building blocks with HF parameter names: Linear, LayerNorm, self-attention
// block, feed-forward block, encoder layer and the layer stack.
//
// Shape legend: B batch, S sequence, H hidden, A heads, D head dim, I intermediate.

/// A named parameter, as in a PyTorch state_dict.
public typealias NamedParameter = (name: String, tensor: Tensor)

/// Fully connected layer (`nn.Linear`): weight `[Out, In]`, bias `[Out]`.
public final class Linear {
    public let weight: Tensor
    public let bias: Tensor

    /// HF BERT init: weight ~ N(0, 0.02), bias 0.
    public init(inFeatures: Int, outFeatures: Int, rng: SeededGenerator, std: Float = 0.02) {
        weight = Tensor.randn([outFeatures, inFeatures], std: std, rng: rng, requiresGrad: true)
        bias = Tensor.zeros([outFeatures], requiresGrad: true)
    }

    /// `x [..., In] -> [..., Out]`.
    public func callAsFunction(_ x: Tensor) -> Tensor { Tensor.linear(x, weight: weight, bias: bias) }

    public func namedParameters(prefix: String) -> [NamedParameter] {
        [(prefix + ".weight", weight), (prefix + ".bias", bias)]
    }
}

/// Layer normalisation over the last dim: weight (gamma) 1, bias (beta) 0, `[H]`.
public final class LayerNorm {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(size: Int, eps: Float) {
        weight = Tensor.ones([size], requiresGrad: true)
        bias = Tensor.zeros([size], requiresGrad: true)
        self.eps = eps
    }

    /// `x [..., H] -> [..., H]`.
    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(gamma: weight, beta: bias, eps: eps) }

    public func namedParameters(prefix: String) -> [NamedParameter] {
        [(prefix + ".weight", weight), (prefix + ".bias", bias)]
    }
}

/// One post-LN BERT encoder layer (HF `BertLayer`):
/// `h1 = LN(x + drop(Wo * attn(x)))`, `out = LN(h1 + drop(W2 * act(W1 * h1)))`.
public final class BertLayer {
    public let query: Linear, key: Linear, value: Linear
    public let attentionOutput: Linear
    public let attentionNorm: LayerNorm
    public let intermediate: Linear
    public let output: Linear
    public let outputNorm: LayerNorm
    public let config: BertConfig

    public init(config: BertConfig, rng: SeededGenerator) {
        let h = config.hidden, i = config.intermediate
        self.config = config
        query = Linear(inFeatures: h, outFeatures: h, rng: rng)
        key = Linear(inFeatures: h, outFeatures: h, rng: rng)
        value = Linear(inFeatures: h, outFeatures: h, rng: rng)
        attentionOutput = Linear(inFeatures: h, outFeatures: h, rng: rng)
        attentionNorm = LayerNorm(size: h, eps: config.layerNormEps)
        intermediate = Linear(inFeatures: h, outFeatures: i, rng: rng)
        output = Linear(inFeatures: i, outFeatures: h, rng: rng)
        outputNorm = LayerNorm(size: h, eps: config.layerNormEps)
    }

    /// - `x`: `[B,S,H]`; `mask`: additive `[B,S]` (0 keep, `BertConfig.maskValue` pad) or nil.
    /// - Returns: `[B,S,H]`.
    public func callAsFunction(_ x: Tensor, mask: Tensor?, training: Bool, rng: SeededGenerator) -> Tensor {
        let (b, s, h) = (x.shape[0], x.shape[1], x.shape[2])
        let a = config.heads, d = config.headDim
        // [B,S,H] -> [B,S,A,D] -> [B,A,S,D]
        func heads(_ t: Tensor) -> Tensor { t.reshaped([b, s, a, d]).permuted([0, 2, 1, 3]) }
        let q = heads(query(x)), k = heads(key(x)), v = heads(value(x))
        let scores = q.matmul(k, transposeOther: true, alpha: 1 / Float(d).squareRoot())  // [B,A,S,S]
        let probs = attentionProbabilities(scores, mask: mask)
            .dropout(p: config.attentionDropout, training: training, rng: rng)
        let context = probs.matmul(v).permuted([0, 2, 1, 3]).reshaped([b, s, h])  // [B,S,H]
        let attended = attentionOutput(context).dropout(p: config.hiddenDropout, training: training, rng: rng)
        let h1 = attentionNorm(attended + x)
        let inner = activation(intermediate(h1))  // [B,S,I]
        let out = output(inner).dropout(p: config.hiddenDropout, training: training, rng: rng)
        return outputNorm(out + h1)
    }

    private func attentionProbabilities(_ scores: Tensor, mask: Tensor?) -> Tensor {
        switch config.softmax {
        case .exact: return scores.softmax(mask: mask)
        case .twoQuad: return scores.polynomialSoftmax(.twoQuad(c: 5), mask: mask)
        case .reluNorm: return scores.polynomialSoftmax(.reluNorm(eps: 1e-6), mask: mask)
        }
    }

    private func activation(_ x: Tensor) -> Tensor {
        switch config.activation {
        case .gelu: return x.gelu()
        case .relu: return x.relu()
        case .quad: return (x.square() * 0.125 + x * 0.25) + 0.5
        }
    }

    /// Parameters with HF names under `prefix` (e.g. `bert.encoder.layer.0`).
    public func namedParameters(prefix p: String) -> [NamedParameter] {
        query.namedParameters(prefix: p + ".attention.self.query")
            + key.namedParameters(prefix: p + ".attention.self.key")
            + value.namedParameters(prefix: p + ".attention.self.value")
            + attentionOutput.namedParameters(prefix: p + ".attention.output.dense")
            + attentionNorm.namedParameters(prefix: p + ".attention.output.LayerNorm")
            + intermediate.namedParameters(prefix: p + ".intermediate.dense")
            + output.namedParameters(prefix: p + ".output.dense")
            + outputNorm.namedParameters(prefix: p + ".output.LayerNorm")
    }
}

/// The stack of encoder layers, usable on its own from hidden states
/// (e.g. to benchmark against PyTorch `nn.TransformerEncoder`).
public final class BertEncoder {
    public let layers: [BertLayer]

    public init(config: BertConfig, rng: SeededGenerator) {
        layers = (0..<config.layers).map { _ in BertLayer(config: config, rng: rng) }
    }

    /// - `hidden`: `[B,S,H]`; `mask`: additive `[B,S]` or nil (no padding).
    /// - Returns: `[B,S,H]`.
    public func callAsFunction(_ hidden: Tensor, mask: Tensor?, training: Bool, rng: SeededGenerator) -> Tensor {
        var x = hidden
        for layer in layers { x = layer(x, mask: mask, training: training, rng: rng) }
        return x
    }

    /// Additive mask `[B,S]` from a 0/1 attention mask (1 = real token).
    public static func additiveMask(_ attentionMask: [Float], batch: Int, seqLen: Int) -> Tensor {
        Tensor(shape: [batch, seqLen], data: attentionMask.map { (1 - $0) * BertConfig.maskValue })
    }

    /// Parameters with HF names under `prefix` (e.g. `bert.encoder`).
    public func namedParameters(prefix: String) -> [NamedParameter] {
        layers.enumerated().flatMap { $0.element.namedParameters(prefix: "\(prefix).layer.\($0.offset)") }
    }
}
