#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// AdamW (Loshchilov & Hutter 2019) with PyTorch `torch.optim.AdamW` semantics:
/// decoupled weight decay `p -= lr * wd * p`, then the Adam update with bias
/// correction, `p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
public final class AdamW {
    /// The parameters updated by `step`, in order.
    public let parameters: [Tensor]
    /// Learning rate used when `step` gets none.
    public var learningRate: Float
    public let beta1: Float
    public let beta2: Float
    public let eps: Float
    /// Weight decay per parameter (0 for biases and LayerNorm by convention).
    public let weightDecays: [Float]
    /// Number of steps taken so far.
    /// Number of steps taken so far (settable to restore a saved optimizer).
    public var stepCount = 0
    private var m: [[Float]]
    private var v: [[Float]]

    /// - Parameters:
    ///   - parameters: tensors to update (their `grad` is read by `step`).
    ///   - decay: per-parameter flags; false disables weight decay for that
    ///     parameter (biases, LayerNorm). Default: decay everything.
    public init(
        parameters: [Tensor], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
        eps: Float = 1e-8, weightDecay: Float = 0.01, decay: [Bool]? = nil
    ) {
        check(decay == nil || decay!.count == parameters.count, "AdamW: decay flags must match parameters")
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecays = parameters.indices.map { (decay?[$0] ?? true) ? weightDecay : 0 }
        m = parameters.map { [Float](repeating: 0, count: $0.count) }
        v = m
    }

    /// Applies one update to every parameter that has a gradient.
    /// - Parameter learningRate: overrides `self.learningRate` for this step (for schedules).
    public func step(learningRate lrOverride: Float? = nil) {
        stepCount += 1
        let lr = lrOverride ?? learningRate
        let t = Float(stepCount)
        let bc1 = 1 - powf(beta1, t), bc2 = 1 - powf(beta2, t)
        let stepSize = lr / bc1, rootBC2 = bc2.squareRoot()
        let (b1, b2, eps) = (beta1, beta2, eps)
        for (k, p) in parameters.enumerated() {
            guard let grad = p.grad else { continue }
            let decayFactor = 1 - lr * weightDecays[k]
            let n = p.count
            grad.withPointer { pg in
                m[k].withMutablePointer { pm in
                    v[k].withMutablePointer { pv in
                        p.data.withMutablePointer { pp in
                            // Memory-bound: split large parameters (embeddings) over the cores.
                            Parallel.rows(n, cost: 4) { range in for i in range {
                                let g = pg[i]
                                let mi = b1 * pm[i] + (1 - b1) * g
                                let vi = b2 * pv[i] + (1 - b2) * g * g
                                pm[i] = mi
                                pv[i] = vi
                                pp[i] = pp[i] * decayFactor - stepSize * mi / (vi.squareRoot() / rootBC2 + eps)
                            } }
                        }
                    }
                }
            }
        }
    }

    /// The first and second moment estimates of parameter `index` (for saving a resumable state).
    public func moments(index: Int) -> (m: [Float], v: [Float]) { (m[index], v[index]) }

    /// Restores the moment estimates of parameter `index`.
    public func setMoments(index: Int, m newM: [Float], v newV: [Float]) {
        check(newM.count == m[index].count && newV.count == v[index].count, "AdamW: moment sizes must match the parameter")
        m[index] = newM
        v[index] = newV
    }

    /// Clears the gradients of all parameters.
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

/// Scales the gradients of `parameters` in place so that their global L2 norm
/// is at most `maxNorm` (PyTorch `clip_grad_norm_`, coefficient
/// `maxNorm / (norm + 1e-6)` applied when below 1).
/// - Returns: the total norm before clipping.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Float) -> Float {
    var total: Double = 0
    for p in parameters {
        guard let g = p.grad else { continue }
        var s: Float = 0
        g.withPointer { pg in for i in 0..<g.count { s += pg[i] * pg[i] } }
        total += Double(s)
    }
    let norm = Float(total.squareRoot())
    let coef = maxNorm / (norm + 1e-6)
    if coef < 1 {
        for p in parameters where p.grad != nil {
            p.grad!.withMutablePointer { pg in for i in 0..<p.count { pg[i] *= coef } }
        }
    }
    return norm
}

/// Linear warm-up then linear decay to 0 (HF `get_linear_schedule_with_warmup`):
/// factor `step / warmup` for `step < warmup`, then
/// `max(0, (total - step) / (total - warmup))`, times `baseLR`.
public struct LinearWarmupDecay: Sendable, Equatable {
    public let totalSteps: Int
    public let warmupSteps: Int
    public let baseLR: Float

    public init(totalSteps: Int, warmupSteps: Int, baseLR: Float) {
        self.totalSteps = totalSteps
        self.warmupSteps = warmupSteps
        self.baseLR = baseLR
    }

    /// Learning rate for optimizer step `step` (0-based: the LR of the first
    /// `optimizer.step()` is `learningRate(at: 0)`, as with HF's scheduler).
    public func learningRate(at step: Int) -> Float {
        if step < warmupSteps { return baseLR * Float(step) / Float(max(1, warmupSteps)) }
        return baseLR * max(0, Float(totalSteps - step) / Float(max(1, totalSteps - warmupSteps)))
    }
}
