#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Elementwise ops: broadcasting add/sub/mul, scalar affine, activations
// (GeLU, tanh, ReLU) and dropout, each with its backward rule here.

/// Binary elementwise operators with NumPy broadcasting.
enum BinaryOp { case add, sub, mul }

extension Tensor {
    /// `self + other` with NumPy broadcasting (e.g. `[N,H] + [H]`, `[B,A,S,S] + [B,1,1,S]`).
    public static func + (a: Tensor, b: Tensor) -> Tensor { binary(.add, a, b) }
    /// `self - other` with NumPy broadcasting.
    public static func - (a: Tensor, b: Tensor) -> Tensor { binary(.sub, a, b) }
    /// `self * other` (elementwise) with NumPy broadcasting.
    public static func * (a: Tensor, b: Tensor) -> Tensor { binary(.mul, a, b) }
    /// `self * s`.
    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(scale: s, shift: 0) }
    /// `s * self`.
    public static func * (s: Float, a: Tensor) -> Tensor { a.affine(scale: s, shift: 0) }
    /// `self + s`.
    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: s) }
    /// `self - s`.
    public static func - (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: -s) }
    /// `-self`.
    public static prefix func - (a: Tensor) -> Tensor { a.affine(scale: -1, shift: 0) }

    /// The broadcast shape of two shapes (NumPy rules), or nil when incompatible.
    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            guard da == db || da == 1 || db == 1 else { return nil }
            out[i] = max(da, db)
        }
        return out
    }

    /// For each element of `outShape`, the offset of the element of a tensor of
    /// `inShape` broadcast to it.
    static func broadcastOffsets(_ outShape: [Int], _ inShape: [Int]) -> [Int] {
        let r = outShape.count
        let padded = [Int](repeating: 1, count: r - inShape.count) + inShape
        var strides = [Int](repeating: 0, count: r)
        var s = 1
        for i in stride(from: r - 1, through: 0, by: -1) {
            strides[i] = padded[i] == 1 ? 0 : s
            s *= padded[i]
        }
        let offsets = stridedOffsets(shape: outShape, strides: strides)
        return offsets
    }

    /// How `small` repeats inside `big` when `small`'s shape (minus leading
    /// 1s) is a suffix of `big`'s: the period, else nil.
    static func suffixPeriod(big: [Int], small: [Int]) -> Int? {
        let trimmed = Array(small.drop(while: { $0 == 1 }))
        guard trimmed.count <= big.count, Array(big.suffix(trimmed.count)) == trimmed else { return nil }
        return trimmed.reduce(1, *)
    }

    static func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor) -> Tensor {
        guard let shape = broadcastShape(a.shape, b.shape) else {
            checkFailure("\(op): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let n = shape.reduce(1, *)
        // Index maps: nil means "same layout as the output".
        let mapA: [Int]? = a.count == n ? nil : periodic(n, big: shape, small: a.shape)
        let mapB: [Int]? = b.count == n ? nil : periodic(n, big: shape, small: b.shape)
        var out = [Float].uninitialized(n)
        out.withMutablePointer { po in
            a.data.withPointer { pa in
                b.data.withPointer { pb in
                    for i in 0..<n {
                        let x = pa[mapA?[i] ?? i], y = pb[mapB?[i] ?? i]
                        switch op {
                        case .add: po[i] = x + y
                        case .sub: po[i] = x - y
                        case .mul: po[i] = x * y
                        }
                    }
                }
            }
        }
        return result(shape: shape, data: out, parents: [a, b]) { o in
            o.grad!.withPointer { pg in
                a.accumulateGrad { ga in
                    b.data.withPointer { pb in
                        for i in 0..<n {
                            let j = mapA?[i] ?? i
                            switch op {
                            case .add, .sub: ga[j] += pg[i]
                            case .mul: ga[j] += pg[i] * pb[mapB?[i] ?? i]
                            }
                        }
                    }
                }
                b.accumulateGrad { gb in
                    a.data.withPointer { pa in
                        for i in 0..<n {
                            let j = mapB?[i] ?? i
                            switch op {
                            case .add: gb[j] += pg[i]
                            case .sub: gb[j] -= pg[i]
                            case .mul: gb[j] += pg[i] * pa[mapA?[i] ?? i]
                            }
                        }
                    }
                }
            }
        }
    }

    /// Offsets of a broadcast input, using the cheap periodic map when the input is a suffix.
    private static func periodic(_ n: Int, big: [Int], small: [Int]) -> [Int] {
        if let period = suffixPeriod(big: big, small: small) {
            return (0..<n).map { $0 % period }
        }
        return broadcastOffsets(big, small)
    }

    /// `scale * self + shift`, elementwise.
    public func affine(scale: Float, shift: Float) -> Tensor {
        let x = self
        var out = [Float].uninitialized(count)
        out.withMutablePointer { po in
            x.data.withPointer { px in for i in 0..<x.count { po[i] = scale * px[i] + shift } }
        }
        return Tensor.result(shape: shape, data: out, parents: [x]) { o in
            o.grad!.withPointer { pg in x.accumulateGrad { g in for i in 0..<g.count { g[i] += scale * pg[i] } } }
        }
    }

    /// Applies `forward` elementwise; the backward rule multiplies the output
    /// gradient by `derivative(x, y)` (input and output values).
    @inline(__always)
    private func unary(
        cost: Int, _ forward: (Float) -> Float, derivative: @escaping (Float, Float) -> Float
    ) -> Tensor {
        let x = self, n = count
        var out = [Float].uninitialized(n)
        out.withMutablePointer { po in
            x.data.withPointer { px in
                Parallel.rows(n, cost: cost) { r in for i in r { po[i] = forward(px[i]) } }
            }
        }
        return Tensor.result(shape: shape, data: out, parents: [x]) { o in
            o.grad!.withPointer { pg in
                o.data.withPointer { py in
                    x.data.withPointer { px in
                        x.accumulateGrad { g in
                            let pgx = g.baseAddress!
                            Parallel.rows(n, cost: cost) { r in
                                for i in r { pgx[i] += pg[i] * derivative(px[i], py[i]) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// GeLU, erf form (HF "gelu"): `0.5 * x * (1 + erf(x / sqrt 2))`.
    ///
    /// erf comes from Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7,
    /// below Float32 resolution near 1), whose `exp(-x^2/2)` factor is also the
    /// normal density needed by the derivative `Phi(x) + x * phi(x)`; the
    /// forward pass stores that derivative so the backward pass is one multiply.
    public func gelu() -> Tensor {
        let x = self, n = count
        var out = [Float].uninitialized(n)
        var derivative = [Float].uninitialized(n)
        out.withMutablePointer { po in
            derivative.withMutablePointer { pd in
                x.data.withPointer { px in
                    Parallel.rows(n, cost: 24) { r in
                        for i in r {
                            let v = px[i]
                            let z = abs(v) * 0.707_106_781
                            let t = 1 / (1 + 0.327_591_1 * z)
                            let e = fastExp(-0.5 * v * v)
                            let poly = t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741
                                + t * (-1.453_152_027 + t * 1.061_405_429))))
                            let erfAbs = 1 - poly * e
                            let cdf = 0.5 * (1 + (v < 0 ? -erfAbs : erfAbs))
                            po[i] = v * cdf
                            pd[i] = cdf + v * e * 0.398_942_28
                        }
                    }
                }
            }
        }
        return Tensor.result(shape: shape, data: out, parents: [x]) { o in
            o.grad!.withPointer { pg in
                derivative.withPointer { pd in
                    x.accumulateGrad { g in
                        let pgx = g.baseAddress!
                        Parallel.rows(n, cost: 2) { r in for i in r { pgx[i] += pg[i] * pd[i] } }
                    }
                }
            }
        }
    }

    /// Hyperbolic tangent.
    public func tanh() -> Tensor {
        unary(cost: 16, { tanhf($0) }) { _, y in 1 - y * y }
    }

    /// Rectified linear unit `max(x, 0)` (gradient 0 at 0).
    public func relu() -> Tensor {
        unary(cost: 1, { max($0, 0) }) { x, _ in x > 0 ? 1 : 0 }
    }

    /// `x * x`, elementwise.
    public func square() -> Tensor {
        unary(cost: 1, { $0 * $0 }) { x, _ in 2 * x }
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales
    /// the rest by `1 / (1 - p)`. Identity when `p == 0` or not `training`.
    public func dropout(p: Float, training: Bool, rng: SeededGenerator) -> Tensor {
        check(p >= 0 && p < 1, "dropout: p must be in [0, 1), got \(p)")
        guard training && p > 0 else { return self }
        let x = self, n = count
        let keep = 1 / (1 - p)
        // Threshold on 32-bit uniforms: drop when u < p * 2^32.
        let threshold = UInt64(Double(p) * 4_294_967_296.0)
        var mask = [Float].uninitialized(n)
        mask.withMutablePointer { pm in
            var i = 0
            while i < n {
                let bits = rng.next()
                pm[i] = (bits & 0xFFFF_FFFF) < threshold ? 0 : keep
                if i + 1 < n { pm[i + 1] = (bits >> 32) < threshold ? 0 : keep }
                i += 2
            }
        }
        var out = [Float].uninitialized(n)
        out.withMutablePointer { po in
            x.data.withPointer { px in mask.withPointer { pm in for i in 0..<n { po[i] = px[i] * pm[i] } } }
        }
        return Tensor.result(shape: shape, data: out, parents: [x]) { o in
            o.grad!.withPointer { pg in
                mask.withPointer { pm in x.accumulateGrad { g in for i in 0..<n { g[i] += pg[i] * pm[i] } } }
            }
        }
    }
}
