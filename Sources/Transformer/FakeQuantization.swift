import Tensor

/// Quantization-aware training (QAT) settings of a model: where the secure runtime
/// works in fixed point on the ring Z_2^ringBits, the plaintext model rounds and
/// clamps the same way, so that training sees (and learns around) the runtime's errors.
///
/// Set `BertForSequenceClassification.quantization` to turn it on; nil (the default)
/// leaves the float forward pass untouched. With it on, the model fake-quantizes:
/// - activations (`activation(_:)`) after every linear layer (Q, K, V, attention
///   output, FFN1, FFN2, pooler, classifier), the attention scores, the attention
///   context `P * V`, the softmax (or its replacement) output, the FFN activation and
///   the pooler's tanh output, every LayerNorm output and the embedding output:
///   exactly the places where the runtime truncates a product back to `fracBits`
///   or encodes a fresh value;
/// - weights (`weight(_:)`) of linear layers: to `weightBits` (symmetric per-tensor)
///   when set, then to the fixed-point grid, as the server encodes them;
/// - biases and LayerNorm gamma/beta (`parameter(_:)`): to the fixed-point grid.
///
/// Gradients use the straight-through estimator (`Tensor.fakeQuantize`).
public struct FakeQuantization: Sendable, Equatable {
    /// Fixed-point grid and ring range of activations and parameters.
    public let grid: FixedPointGrid
    /// Bits of symmetric per-tensor weight quantization, or nil for fixed point only.
    public let weightBits: Int?

    public var fracBits: Int { grid.fracBits }
    public var ringBits: Int { grid.ringBits }

    /// - Precondition: `ringBits` in 2...64, `fracBits` in 0...ringBits-2,
    ///   `weightBits` nil or in 2...24 (user configs are validated before this).
    public init(fracBits: Int, ringBits: Int, weightBits: Int? = nil) {
        precondition(weightBits.map { (2...24).contains($0) } ?? true, "FakeQuantization: weightBits must be in 2...24")
        grid = FixedPointGrid(fracBits: fracBits, ringBits: ringBits)
        self.weightBits = weightBits
    }

    /// Rounds and clamps an activation to the runtime's fixed point (STE gradient).
    public func activation(_ x: Tensor) -> Tensor { x.fakeQuantize(grid) }

    /// A linear layer's weight as the runtime sees it (STE gradient).
    public func weight(_ w: Tensor) -> Tensor {
        (weightBits.map { w.fakeQuantizeSymmetric(bits: $0) } ?? w).fakeQuantize(grid)
    }

    /// A bias or LayerNorm parameter as the runtime encodes it (STE gradient).
    public func parameter(_ p: Tensor) -> Tensor { p.fakeQuantize(grid) }
}

extension Optional where Wrapped == FakeQuantization {
    /// `activation(x)` when quantization is on, else `x` itself (no copy, no graph node).
    @inline(__always) func activation(_ x: Tensor) -> Tensor {
        guard let q = self else { return x }
        return q.activation(x)
    }
}
