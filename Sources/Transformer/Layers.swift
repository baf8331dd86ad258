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

    /// `x [..., In] -> [..., Out]`; with QAT the weight, bias and output are fake-quantized
    /// as the secure runtime encodes and truncates them. nil: exactly `self(x)`.
    /// On a 32-bit ring the input is rounded coarser and the product clamped first (`FakeQuantization.narrowProduct`).
    public func callAsFunction(_ x: Tensor, quantization q: FakeQuantization?) -> Tensor {
        guard let q else { return self(x) }
        guard q.narrowLinear else { return q.activation(Tensor.linear(x, weight: q.weight(weight), bias: q.parameter(bias))) }
        return q.activation(q.narrowProduct(Tensor.linear(q.linearInput(x), weight: q.weight(weight), bias: nil)) + q.parameter(bias))
    }

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

    /// `x [..., H] -> [..., H]`; with QAT gamma, beta and the output are fake-quantized.
    /// nil: exactly `self(x)`.
    public func callAsFunction(_ x: Tensor, quantization q: FakeQuantization?) -> Tensor {
        guard let q else { return self(x) }
        return q.activation(x.layerNorm(gamma: q.parameter(weight), beta: q.parameter(bias), eps: eps))
    }

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
    /// This layer's head count and feed-forward width (smaller than the config's after pruning).
    public let heads: Int, intermediateSize: Int
    /// This layer's attention normalisation and activation (exact in a public layer).
    public let softmax: SoftmaxVariant, activation: ActivationVariant

    /// Layer `index` of `config` (its own head count and width when the config is pruned).
    public init(config: BertConfig, index: Int = 0, rng: SeededGenerator) {
        let h = config.hidden, i = config.intermediate(inLayer: index)
        let width = config.heads(inLayer: index) * config.headDim  // attention width A_l·D
        self.config = config
        heads = config.heads(inLayer: index)
        intermediateSize = i
        softmax = config.softmax(inLayer: index)
        activation = config.activation(inLayer: index)
        query = Linear(inFeatures: h, outFeatures: width, rng: rng)
        key = Linear(inFeatures: h, outFeatures: width, rng: rng)
        value = Linear(inFeatures: h, outFeatures: width, rng: rng)
        attentionOutput = Linear(inFeatures: width, outFeatures: h, rng: rng)
        attentionNorm = LayerNorm(size: h, eps: config.layerNormEps)
        intermediate = Linear(inFeatures: h, outFeatures: i, rng: rng)
        output = Linear(inFeatures: i, outFeatures: h, rng: rng)
        outputNorm = LayerNorm(size: h, eps: config.layerNormEps)
    }

    /// - `x`: `[B,S,H]`; `mask`: additive `[B,S]` (0 keep, `BertConfig.maskValue` pad) or nil;
    ///   `quantization`: QAT fake quantization, or nil for the float layer; `gates`: structure gates
    ///   of cost-penalized training, or nil.
    /// - Returns: `[B,S,H]`.
    public func callAsFunction(
        _ x: Tensor, mask: Tensor?, training: Bool, rng: SeededGenerator, quantization: FakeQuantization? = nil,
        gates: LayerGateValues? = nil
    ) -> Tensor {
        forward(x, mask: mask, training: training, rng: rng, quantization: quantization, gates: gates).output
    }

    /// The layer's output and its attention scores (for distillation).
    /// - Returns: `output [B,S,H]` and `scores [B,A,S,S]`, the scaled `Q K^T / sqrt(D)`
    ///   before the padding mask and the softmax (fake-quantized under QAT).
    /// With `gates`, each head's context, each feed-forward group's activations and the whole layer's
    /// update (`x + z·(layer(x) − x)`) are multiplied by their gate values.
    public func forward(
        _ x: Tensor, mask: Tensor?, training: Bool, rng: SeededGenerator, quantization fq: FakeQuantization? = nil,
        gates: LayerGateValues? = nil
    ) -> (output: Tensor, scores: Tensor) {
        let (b, s) = (x.shape[0], x.shape[1])
        let a = self.heads, d = config.headDim, width = a * d
        // [B,S,H] -> [B,S,A,D] -> [B,A,S,D]
        func heads(_ t: Tensor) -> Tensor { t.reshaped([b, s, a, d]).permuted([0, 2, 1, 3]) }
        let q = heads(query(x, quantization: fq)), k = heads(key(x, quantization: fq))
        let v = heads(value(x, quantization: fq))
        // On a 32-bit ring (QAT) K and V are rounded coarser and both products clamped, as the runtime's narrow products.
        let scores = fq.narrowProduct(q.matmul(fq.keyOperand(k), transposeOther: true, alpha: 1 / Float(d).squareRoot()))  // [B,A,S,S]
        let probs = fq.activation(attentionProbabilities(scores, mask: mask))
            .dropout(p: config.attentionDropout, training: training, rng: rng)
        var perHead = fq.narrowProduct(probs.matmul(fq.valueOperand(v)))  // [B,A,S,D]
        if let g = gates?.heads { perHead = perHead * g }  // g [A,1,1]
        let context = perHead.permuted([0, 2, 1, 3]).reshaped([b, s, width])  // [B,S,A·D]
        let attended = attentionOutput(context, quantization: fq)
            .dropout(p: config.hiddenDropout, training: training, rng: rng)
        let h1 = attentionNorm(attended + x, quantization: fq)
        var inner = fq.activation(activate(intermediate(h1, quantization: fq), quantization: fq))  // [B,S,I]
        if let g = gates?.ffn {  // g [G_count, 1]: one gate per group of I / G_count neurons
            inner = (inner.reshaped([b, s, g.shape[0], intermediateSize / g.shape[0]]) * g).reshaped([b, s, intermediateSize])
        }
        let out = output(inner, quantization: fq).dropout(p: config.hiddenDropout, training: training, rng: rng)
        let y = outputNorm(out + h1, quantization: fq)
        guard let z = gates?.layer else { return (y, scores) }
        return (x + (y - x) * z, scores)
    }

    private func attentionProbabilities(_ scores: Tensor, mask: Tensor?) -> Tensor {
        switch softmax {
        case .exact: return scores.softmax(mask: mask)
        case .twoQuad: return scores.polynomialSoftmax(.twoQuad(c: 5), mask: mask)
        case .reluNorm: return scores.polynomialSoftmax(.reluNorm(eps: 1e-6), mask: mask)
        }
    }

    private func activate(_ x: Tensor, quantization fq: FakeQuantization?) -> Tensor {
        switch activation {
        case .gelu: return x.gelu()
        case .relu: return x.relu()
        case .quad: return (fq.applied(x, FakeQuantization.quadOperand).square() * 0.125 + x * 0.25) + 0.5
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
        layers = (0..<config.layers).map { BertLayer(config: config, index: $0, rng: rng) }
    }

    /// - `hidden`: `[B,S,H]`; `mask`: additive `[B,S]` or nil (no padding);
    ///   `quantization`: QAT fake quantization, or nil for the float encoder.
    /// - Returns: `[B,S,H]`.
    public func callAsFunction(
        _ hidden: Tensor, mask: Tensor?, training: Bool, rng: SeededGenerator, quantization: FakeQuantization? = nil,
        gates: [LayerGateValues]? = nil
    ) -> Tensor {
        trace(hidden, mask: mask, training: training, rng: rng, quantization: quantization, gates: gates).hiddenStates.last!
    }

    /// Runs the stack and keeps every layer's output and attention scores (same
    /// values as `callAsFunction`, for layer-wise distillation). Public leading layers
    /// (`BertConfig.publicLayers`) run frozen, without dropout, gates or fake quantization; only
    /// their last output is fake-quantized, as the client encodes it.
    public func trace(
        _ hidden: Tensor, mask: Tensor?, training: Bool, rng: SeededGenerator, quantization: FakeQuantization? = nil,
        gates: [LayerGateValues]? = nil
    ) -> EncoderTrace {
        trace(hidden, from: 0, mask: mask, training: training, rng: rng, quantization: quantization, gates: gates)
    }

    /// `trace` from layer `start` on, `hidden` being that layer's input (e.g. the output of the public
    /// layers computed once and kept, `start` = their count); the trace then holds layers `start...` only.
    public func trace(
        _ hidden: Tensor, from start: Int, mask: Tensor?, training: Bool, rng: SeededGenerator, quantization: FakeQuantization? = nil,
        gates: [LayerGateValues]? = nil
    ) -> EncoderTrace {
        let publicCount = layers.first?.config.publicLayerCount ?? 0
        var states = [start > 0 && start == publicCount ? quantization.activation(hidden) : hidden], scores: [Tensor] = []
        for (l, layer) in layers.enumerated() where l >= start {
            var (out, s): (Tensor, Tensor)
            if l < publicCount {
                // A public layer is the client's plaintext computation: frozen, no dropout, no gates, exact floats.
                (out, s) = Tensor.withNoGrad { layer.forward(states.last!, mask: mask, training: false, rng: rng) }
                if l == publicCount - 1 { out = quantization.activation(out) }  // what the client encodes and shares
            } else {
                (out, s) = layer.forward(states.last!, mask: mask, training: training, rng: rng, quantization: quantization,
                                         gates: gates?[l])
            }
            states.append(out)
            scores.append(s)
        }
        return EncoderTrace(hiddenStates: states, attentionScores: scores)
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

/// Intermediate values of an encoder pass, for layer-wise (TinyBERT-style) distillation.
public struct EncoderTrace {
    /// `[B,S,H]` each: the encoder's input (the embedding output) first, then the
    /// output of every layer; `hiddenStates.last` is the encoder's output.
    public var hiddenStates: [Tensor]
    /// `[B,A,S,S]` per layer: the scaled scores `Q K^T / sqrt(D)` before mask and softmax.
    public var attentionScores: [Tensor]

    /// Output of layer `i` (0-based).
    public func layerOutput(_ i: Int) -> Tensor { hiddenStates[i + 1] }
}
