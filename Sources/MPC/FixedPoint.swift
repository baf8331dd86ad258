/// Two's-complement fixed-point encoding of reals into a ring Z_2^w.
///
/// A real `x` is encoded as `round(x * 2^fracBits)` taken mod 2^w; decoding reads the word as a signed
/// integer and divides by `2^fracBits`. With w = 64 and the default `fracBits = 16` the representable range
/// is |x| < 2^47 with resolution 2^-16 ≈ 1.5e-5 (one "ulp"). Products of two encodings carry `2 * fracBits`
/// fractional bits and must be truncated (see `Party.truncate`).
public struct FixedPoint: Sendable, Equatable {
    /// Number of fractional bits `f`.
    public let fracBits: Int
    /// Width of the ring in bits (64 for Z_2^64).
    public let ringBits: Int
    /// Fractional bits of server-owned weight matrices (`Party.matmulWeight`), at most `fracBits`.
    ///
    /// A product `x·W` carries `fracBits + weightFracBits` fractional bits before its truncation, and a local
    /// truncation fails with probability ≈ |raw value| / 2^63 (`Party.truncate`). Weights need less
    /// resolution than activations (13 bits: 1.2e-4, against weights of ≈ 0.05), and every bit taken off
    /// halves the failure rate of all linear layers. Default: `min(fracBits, 13)`.
    public let weightFracBits: Int

    /// Fractional bits the secure transformer supports on Z_2^64: the products with the most fractional
    /// bits are LayerNorm's row scaling `(d·γ)·s` (3f, so |normalised·γ| < 2^(62−3f): 256 at f = 18, but only
    /// 4 at f = 20) and the fused 2Quad attention (2·12 + f); below 8 bits attention scores lose too much.
    public static let supportedFracBits = 8...18

    /// - Parameters:
    ///   - fracBits: fractional bits, `0 ... ringBits - 2`.
    ///   - ringBits: ring width; 64 (Z_2^64) or 32 (Z_2^32).
    ///   - weightFracBits: fractional bits of weight matrices; nil: `min(fracBits, 13)`.
    public init(fracBits: Int = 16, ringBits: Int = 64, weightFracBits: Int? = nil) {
        precondition(ringBits == 64 || ringBits == 32, "ring must be Z_2^64 or Z_2^32")
        precondition(fracBits >= 0 && fracBits <= ringBits - 2, "fracBits out of range")
        self.fracBits = fracBits
        self.ringBits = ringBits
        self.weightFracBits = weightFracBits ?? Swift.min(fracBits, FixedPoint.defaultWeightFracBits)
        precondition(self.weightFracBits >= 0 && self.weightFracBits <= fracBits, "weightFracBits out of range")
    }

    /// Fractional bits of a narrow product (a linear layer computed on Z_2^32, `Party.matmulWeight(_:_:narrow:)`,
    /// `Party.matmul(_:_:rightShift:narrow:)`): its operands are first shifted so that the product carries
    /// at most this many, and it must stay below 2^30 on the ring: |x·W| < 2^(30 − 20) = 1024.
    public static let narrowProductBits = 20

    /// Most fractional bits of a model whose linear layers run on Z_2^32: at 12, a narrow product's right
    /// operand (keys, values) keeps 8 (`narrowRightShift` = 4); more would leave it too coarse.
    public static let narrowFracBits = 12

    /// Largest magnitude of a narrow product: `2^(30 − narrowProductBits)`.
    public static var narrowProductLimit: Double { Double(1 << (30 - narrowProductBits)) }

    /// Bits the activations lose (local truncation) before a narrow weight product: `f + weightFracBits − 20`,
    /// at least 0 (f = 12: 4, activations keep 8 fractional bits).
    public var narrowInputShift: Int { Swift.max(0, fracBits + weightFracBits - FixedPoint.narrowProductBits) }

    /// `rightShift` of a narrow secret product (`2f − 20`, at least 0): the right operand keeps f minus this.
    public var narrowRightShift: Int { Swift.max(0, 2 * fracBits - FixedPoint.narrowProductBits) }

    /// Cap of the default `weightFracBits`.
    public static let defaultWeightFracBits = 13

    /// The weight grid: this encoding with `fracBits = weightFracBits`.
    public var weights: FixedPoint { FixedPoint(fracBits: weightFracBits, ringBits: ringBits, weightFracBits: weightFracBits) }

    /// Whether a named server input is a weight matrix multiplied by `matmulWeight`, hence encoded on the
    /// weight grid: by convention its name ends in `.w` (`0.qkv.w`, `pool.w`, `cls.w`).
    public static func isWeightMatrix(_ name: String) -> Bool { name.hasSuffix(".w") }

    /// Encodes a named server input on its grid (`weights` for weight matrices, this one otherwise).
    public func encode(input name: String, _ xs: [Double], shape: [Int]) -> RingTensor {
        (FixedPoint.isWeightMatrix(name) ? weights : self).encode(xs, shape: shape)
    }

    /// Decodes a named server input encoded by `encode(input:_:shape:)`.
    public func decode(input name: String, _ t: RingTensor) -> [Double] {
        (FixedPoint.isWeightMatrix(name) ? weights : self).decode(t)
    }

    /// The scale `2^fracBits`.
    @inlinable public var scale: Double { Double(sign: .plus, exponent: fracBits, significand: 1) }

    /// Largest magnitude that encodes without wrapping: `2^(ringBits - 1 - fracBits)`.
    @inlinable public var maxMagnitude: Double { Double(sign: .plus, exponent: ringBits - 1 - fracBits, significand: 1) }

    /// Encodes a real into the 64-bit ring. Rounds to nearest.
    /// - Precondition: `x` is finite and `|x| < maxMagnitude` (programmer's responsibility: scale inputs first).
    @inlinable public func encode(_ x: Double) -> UInt64 {
        let v = (x * scale).rounded()
        precondition(v.isFinite && abs(v) < 9.2e18, "fixed-point encode: \(x) is out of range")
        return UInt64(bitPattern: Int64(v))
    }

    /// Decodes a 64-bit ring element as a signed fixed-point real.
    @inlinable public func decode(_ w: UInt64) -> Double { Double(Int64(bitPattern: w)) / scale }

    /// Encodes a real into the 32-bit ring (wraps mod 2^32 after rounding).
    @inlinable public func encode32(_ x: Double) -> UInt32 {
        let v = (x * scale).rounded()
        precondition(v.isFinite && abs(v) < 2.1e9, "fixed-point encode: \(x) is out of range")
        return UInt32(bitPattern: Int32(v))
    }

    /// Decodes a 32-bit ring element as a signed fixed-point real.
    @inlinable public func decode32(_ w: UInt32) -> Double { Double(Int32(bitPattern: w)) / scale }

    /// Encodes a tensor of reals into the 64-bit ring.
    public func encode(_ xs: [Double], shape: [Int]) -> RingTensor {
        RingTensor(shape: shape, data: xs.map(encode))
    }

    /// Decodes a tensor of 64-bit ring elements.
    public func decode(_ t: RingTensor) -> [Double] { t.data.map(decode) }
}
