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
///
/// On `ringBits: 32` the runtime computes the linear layers on Z_2^32 (`Party.matmulWeight(_:_:narrow:)`):
/// each product's left operand loses `narrowInputShift` fractional bits (the keys and values of the
/// attention products `narrowRightShift`), and the product must stay within ±1024. The model then
/// rounds those operands the same way and clamps those products to that range (`linear`, `keyOperand`,
/// `narrowProduct`), so that it learns to keep its linear outputs inside it. The Quad activation's square
/// also runs there: its operand is rounded and clamped likewise (`quadOperand`).
public struct FakeQuantization: Sendable, Equatable {
    /// Fixed-point grid and ring range of activations and parameters.
    public let grid: FixedPointGrid
    /// Bits of symmetric per-tensor weight quantization, or nil for fixed point only.
    public let weightBits: Int?

    public var fracBits: Int { grid.fracBits }
    public var ringBits: Int { grid.ringBits }

    /// Whether the runtime's linear layers run on Z_2^32 (`ringBits == 32`).
    public var narrowLinear: Bool { ringBits == 32 }
    /// Fractional bits of a narrow product (the runtime's `FixedPoint.narrowProductBits`).
    static let narrowProductBits = 20
    /// Bits a linear layer's input loses before a narrow product: `f + min(f, 13) − 20` (`FixedPoint.narrowInputShift`).
    public var narrowInputShift: Int { max(0, fracBits + min(fracBits, 13) - Self.narrowProductBits) }
    /// Bits the values lose before their narrow product `P·V`: `2f − 20`, at least 0 (`FixedPoint.narrowRightShift`).
    public var narrowRightShift: Int { max(0, 2 * fracBits - Self.narrowProductBits) }
    /// Bits the keys lose before their narrow product `Q·Kᵀ`: at least `EncoderProgram.keyShift` (2).
    var narrowKeyShift: Int { max(2, narrowRightShift) }

    /// The grid of a narrow product: `fracBits`, within ±1024.
    private var productGrid: FixedPointGrid { FixedPointGrid(fracBits: fracBits, ringBits: fracBits + 11) }

    /// A product as a narrow linear layer returns it: rounded and clamped to ±1024 on Z_2^32, else as `activation`.
    public func narrowProduct(_ x: Tensor) -> Tensor { narrowLinear ? x.fakeQuantize(productGrid) : activation(x) }

    /// The left operand of a linear layer's product (`narrowInputShift` bits coarser on Z_2^32).
    public func linearInput(_ x: Tensor) -> Tensor { coarser(x, by: narrowInputShift) }

    /// A key before `Q·Kᵀ` (`narrowKeyShift` bits coarser on Z_2^32).
    public func keyOperand(_ x: Tensor) -> Tensor { coarser(x, by: narrowKeyShift) }

    /// A value before `P·V` (`narrowRightShift` bits coarser on Z_2^32).
    public func valueOperand(_ x: Tensor) -> Tensor { coarser(x, by: narrowRightShift) }

    /// The operand of the Quad activation's square (`Party.quadGelu(_:narrow:)`): on Z_2^32 rounded
    /// `narrowRightShift` bits coarser and clamped to ±128, so that its square stays within the narrow ring.
    public func quadOperand(_ x: Tensor) -> Tensor {
        guard narrowLinear else { return x }
        let kept = fracBits - narrowRightShift
        return x.fakeQuantize(FixedPointGrid(fracBits: kept, ringBits: kept + 8))
    }

    /// `x` rounded `bits` coarser than the grid on a 32-bit ring, else `x`.
    private func coarser(_ x: Tensor, by bits: Int) -> Tensor {
        narrowLinear && bits > 0 ? x.fakeQuantize(FixedPointGrid(fracBits: fracBits - bits, ringBits: ringBits)) : x
    }

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
    /// `step(q)(x)` when quantization is on, else `x` itself (no copy, no graph node).
    @inline(__always) func applied(_ x: Tensor, _ step: (FakeQuantization) -> (Tensor) -> Tensor) -> Tensor {
        guard let q = self else { return x }
        return step(q)(x)
    }

    /// `activation(x)` when quantization is on, else `x`.
    @inline(__always) func activation(_ x: Tensor) -> Tensor { applied(x, FakeQuantization.activation) }
    /// `narrowProduct(x)` when quantization is on, else `x`.
    @inline(__always) func narrowProduct(_ x: Tensor) -> Tensor { applied(x, FakeQuantization.narrowProduct) }
    /// `keyOperand(x)` when quantization is on, else `x`.
    @inline(__always) func keyOperand(_ x: Tensor) -> Tensor { applied(x, FakeQuantization.keyOperand) }
    /// `valueOperand(x)` when quantization is on, else `x`.
    @inline(__always) func valueOperand(_ x: Tensor) -> Tensor { applied(x, FakeQuantization.valueOperand) }
}
