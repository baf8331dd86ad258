// Fake quantization for quantization-aware training (QAT): the forward pass
// rounds values the way the secure runtime's fixed-point encoding does, the
// backward pass uses the straight-through estimator (STE, Bengio et al. 2013;
// the clamp-aware form of Jacob et al. 2018 / PyTorch `fake_quantize`).

/// The grid and range of two's-complement fixed point with `fracBits`
/// fractional bits in the ring Z_2^ringBits, as Float32 values.
///
/// A real `x` is stored as the integer `q = round(x * 2^fracBits)` (ties away
/// from zero, like `FixedPoint.encode` in the MPC module), which must lie in
/// `[-2^(ringBits-1), 2^(ringBits-1) - 1]` to not wrap around. In reals the
/// range is `[-2^(ringBits-1-fracBits), 2^(ringBits-1-fracBits) - 2^-fracBits]`.
///
/// Float32 cannot hold every point of that range (e.g. `2^19 - 2^-12` for ring
/// 32, frac 12), so the upper bound is the largest Float32 on the grid that is
/// not above the real one: `2^19 - 2^-5` there. The lower bound is exact.
public struct FixedPointGrid: Sendable, Equatable {
    public let fracBits: Int
    public let ringBits: Int
    /// `2^fracBits`.
    public let scale: Float
    /// Smallest and largest integer codes `q` as Float32 (`lowest = -2^(ringBits-1)`).
    public let lowestCode: Float
    public let highestCode: Float

    /// - Precondition: `2 <= ringBits <= 64` and `0 <= fracBits <= ringBits - 2`
    ///   (the secure runtime's `FixedPoint` accepts the same).
    public init(fracBits: Int, ringBits: Int) {
        check(ringBits >= 2 && ringBits <= 64, "FixedPointGrid: ringBits must be in 2...64, got \(ringBits)")
        check(fracBits >= 0 && fracBits <= ringBits - 2, "FixedPointGrid: fracBits must be in 0...\(ringBits - 2), got \(fracBits)")
        self.fracBits = fracBits
        self.ringBits = ringBits
        scale = Float(sign: .plus, exponent: fracBits, significand: 1)
        lowestCode = -Float(sign: .plus, exponent: ringBits - 1, significand: 1)
        // 2^(r-1) - 1 is exact in Float32 up to r = 24; beyond, it would round up to
        // 2^(r-1), so take the largest Float32 below that (an integer, so on the grid).
        let limit = Float(sign: .plus, exponent: ringBits - 1, significand: 1)
        highestCode = ringBits <= 24 ? limit - 1 : limit.nextDown
    }

    /// Smallest and largest representable reals.
    public var lowest: Float { lowestCode / scale }
    public var highest: Float { highestCode / scale }
}

/// `v.rounded()` (to nearest, ties away from zero, like `FixedPoint.encode`) without
/// the libm call, so the loops that use it vectorise (~3.5x faster on the 2-core target).
///
/// For `|v| < 2^23`, `(v + 2^23) - 2^23` (sign-matched) rounds to nearest-even in
/// IEEE arithmetic; a tie that went toward zero (`v - r == ±0.5` with the sign of `v`)
/// is moved one away. `|v| >= 2^23` is already an integer; NaN and infinities pass through.
@inline(__always)
func roundHalfAwayFromZero(_ v: Float) -> Float {
    let magic: Float = v < 0 ? -8_388_608 : 8_388_608
    var r = (v + magic) - magic
    r = abs(v) < 8_388_608 ? r : v
    let d = v - r
    return (d == 0.5 && v > 0) ? r + 1 : ((d == -0.5 && v < 0) ? r - 1 : r)
}

extension Tensor {
    /// Fake-quantizes to the secure runtime's fixed point: rounds every element to
    /// the grid `2^-fracBits` and clamps it to the signed range of Z_2^ringBits
    /// (`±2^(ringBits-1-fracBits)`, see `FixedPointGrid`).
    ///
    /// Why: a model trained with this op in its forward pass learns weights whose
    /// accuracy survives the runtime's rounding and, on a small ring (32 bits),
    /// its limited range.
    ///
    /// Backward (straight-through estimator): the output gradient passes unchanged
    /// where the rounded code `round(x * 2^fracBits)` is inside the ring's range
    /// and is zero where it was clamped (PyTorch `fake_quantize_per_tensor_affine`).
    ///
    /// - Returns: same shape as `self`.
    public func fakeQuantize(fracBits: Int, ringBits: Int) -> Tensor {
        fakeQuantize(FixedPointGrid(fracBits: fracBits, ringBits: ringBits))
    }

    /// `fakeQuantize(fracBits:ringBits:)` with a precomputed grid.
    public func fakeQuantize(_ grid: FixedPointGrid) -> Tensor {
        let x = self, n = count
        let (scale, inv, lo, hi) = (grid.scale, 1 / grid.scale, grid.lowestCode, grid.highestCode)
        var out = [Float].uninitialized(n)
        out.withMutablePointer { po in
            x.data.withPointer { px in
                Parallel.rows(n, cost: 4) { r in
                    for i in r { po[i] = min(max(roundHalfAwayFromZero(px[i] * scale), lo), hi) * inv }
                }
            }
        }
        return Tensor.result(shape: shape, data: out, parents: [x]) { o in
            o.grad!.withPointer { pg in
                x.data.withPointer { px in
                    x.accumulateGrad { g in
                        let pgx = g.baseAddress!
                        Parallel.rows(n, cost: 4) { r in
                            for i in r {
                                let q = roundHalfAwayFromZero(px[i] * scale)
                                if q >= lo && q <= hi { pgx[i] += pg[i] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Fake-quantizes a weight tensor to `bits`-bit signed integers with one symmetric
    /// per-tensor scale: `s = max|w| / (2^(bits-1) - 1)`, `w' = s * round(w / s)`.
    ///
    /// Why: it lets a model be trained for low-precision weights (e.g. 8 bits) while its
    /// activations keep the ring's fixed point. The scale is recomputed from the current
    /// weights at every call; no code is clamped, since `|w / s| <= 2^(bits-1) - 1`.
    ///
    /// Backward (straight-through estimator): the gradient passes unchanged to every
    /// element; the scale is treated as a constant (no gradient through `max|w|`).
    ///
    /// - Parameter bits: 2...24 (24 keeps every code exact in Float32).
    /// - Returns: same shape as `self`; all zeros in, all zeros out.
    public func fakeQuantizeSymmetric(bits: Int) -> Tensor {
        check(bits >= 2 && bits <= 24, "fakeQuantizeSymmetric: bits must be in 2...24, got \(bits)")
        let x = self, n = count
        let levels = Float((1 << (bits - 1)) - 1)
        var amax: Float = 0
        x.data.withPointer { px in for i in 0..<n { amax = max(amax, abs(px[i])) } }
        var out = [Float].uninitialized(n)
        out.withMutablePointer { po in
            x.data.withPointer { px in
                if amax == 0 {
                    for i in 0..<n { po[i] = 0 }
                    return
                }
                let toCode = levels / amax, toReal = amax / levels
                Parallel.rows(n, cost: 4) { r in
                    for i in r { po[i] = min(max(roundHalfAwayFromZero(px[i] * toCode), -levels), levels) * toReal }
                }
            }
        }
        return Tensor.result(shape: shape, data: out, parents: [x]) { o in
            o.grad!.withPointer { pg in
                x.accumulateGrad { g in for i in 0..<n { g[i] += pg[i] } }
            }
        }
    }
}
