import Testing
import Tensor

/// Finite-difference gradient check: backpropagates a random projection
/// `L = sum(w * f(inputs))` and compares each input's gradient with central
/// differences of L, which is accumulated in Double. Float32 ops with step
/// `h = 1e-2` give truncation error ~h^2 and rounding ~1e-7 * |L| / h, hence
/// the default tolerances.
///
/// For a straight-through estimator the backward rule is, by design, not the
/// derivative of `f` but of a smooth `surrogate` (e.g. a clamp for rounding):
/// pass it and the numeric side differentiates the surrogate instead.
public func checkGradients(
    _ inputs: [Tensor], h: Float = 1e-2, rtol: Float = 2e-2, atol: Float = 2e-3, seed: UInt64 = 7,
    surrogate: (([Tensor]) -> Tensor)? = nil,
    sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) -> Tensor
) {
    for x in inputs { x.zeroGrad() }
    let out = f(inputs)
    let rng = SeededGenerator(seed: seed)
    let w = (0..<out.count).map { _ in rng.nextFloat() * 2 - 1 }
    out.backward(gradient: w)
    func projected() -> Double {
        let y = Tensor.withNoGrad { surrogate.map { $0(inputs) } ?? f(inputs) }
        var s = 0.0
        for i in 0..<y.count { s += Double(w[i]) * Double(y.data[i]) }
        return s
    }
    for (k, x) in inputs.enumerated() where x.requiresGrad {
        let analytic = x.grad ?? [Float](repeating: 0, count: x.count)
        var numeric = [Float](repeating: 0, count: x.count)
        for i in 0..<x.count {
            let saved = x.data[i]
            x.data[i] = saved + h
            let plus = projected()
            x.data[i] = saved - h
            let minus = projected()
            x.data[i] = saved
            numeric[i] = Float((plus - minus) / (2 * Double(h)))
        }
        expectClose(analytic, numeric, rtol: rtol, atol: atol, "gradient of input \(k)", sourceLocation: sourceLocation)
    }
}

/// A leaf tensor of normal samples that requires a gradient.
public func param(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
    Tensor.randn(shape, std: std, rng: SeededGenerator(seed: seed), requiresGrad: true)
}
