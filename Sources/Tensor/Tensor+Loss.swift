#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Losses, each fused (softmax and loss in one pass) with its backward rule:
// cross-entropy with integer labels, MSE, and the distillation loss.
// Every loss returns a scalar shaped [1], averaged over the batch.

extension Tensor {
    /// Mean cross-entropy of `logits` against integer class labels
    /// (PyTorch `F.cross_entropy`, reduction "mean").
    ///
    /// - `logits`: `[N, C]`; `labels`: N labels in `0..<C`.
    /// - Returns: `[1]`.
    public static func crossEntropy(logits: Tensor, labels: [Int32]) -> Tensor {
        weightedCrossEntropy(logits: logits, labels: labels, weights: Tensor.ones([labels.count]))
    }

    /// Cross-entropy of each row weighted by `weights [N]`, averaged over the rows:
    /// `(1/N) Σ_r w_r · CE_r`. Differentiable in both the logits and the weights (a mixture of
    /// experts' task loss, where the weights are the router's gates).
    ///
    /// - `logits`: `[N, C]`; `labels`: N labels in `0..<C`; `weights`: N values.
    /// - Returns: `[1]`.
    public static func weightedCrossEntropy(logits: Tensor, labels: [Int32], weights: Tensor) -> Tensor {
        check(logits.rank == 2 && logits.shape[0] == labels.count && weights.count == labels.count,
              "weightedCrossEntropy: logits \(logits.shape), \(labels.count) labels, weights \(weights.shape)")
        let (n, c) = (logits.shape[0], logits.shape[1])
        var probs = [Float].uninitialized(n * c)
        var rowLoss = [Float](repeating: 0, count: n)
        var loss: Double = 0
        let w = weights.data
        probs.withMutablePointer { pp in
            logits.data.withPointer { pl in
                for r in 0..<n {
                    let label = Int(labels[r])
                    check(label >= 0 && label < c, "weightedCrossEntropy: label \(label) outside 0..<\(c)")
                    let lse = logSoftmaxRow(pl + r * c, into: pp + r * c, count: c, temperature: 1)
                    rowLoss[r] = lse - pl[r * c + label]
                    loss += Double(w[r]) * Double(rowLoss[r])
                }
            }
        }
        return result(shape: [1], data: [Float(loss / Double(n))], parents: [logits, weights]) { o in
            let g = o.grad![0] / Float(n)
            logits.accumulateGrad { gl in
                probs.withPointer { pp in
                    for r in 0..<n {
                        let s = g * w[r]
                        for j in 0..<c { gl[r * c + j] += s * pp[r * c + j] }
                        gl[r * c + Int(labels[r])] -= s
                    }
                }
            }
            weights.accumulateGrad { gw in for r in 0..<n { gw[r] += g * rowLoss[r] } }
        }
    }

    /// Writes `softmax(x / T)` of one row into `probs` and returns `logsumexp(x / T)`.
    @inline(__always)
    static func logSoftmaxRow(
        _ x: UnsafePointer<Float>, into probs: UnsafeMutablePointer<Float>, count c: Int, temperature t: Float
    ) -> Float {
        var mx = -Float.infinity
        for j in 0..<c { mx = max(mx, x[j] / t) }
        var total: Float = 0
        for j in 0..<c {
            let e = fastExp(x[j] / t - mx)
            probs[j] = e
            total += e
        }
        for j in 0..<c { probs[j] /= total }
        return mx + logf(total)
    }

    /// Mean squared error `mean((self - target)^2)` over all elements
    /// (PyTorch `F.mse_loss`). Gradients flow to both arguments.
    ///
    /// - `prediction`, `target`: same shape. Returns `[1]`.
    public static func mse(_ prediction: Tensor, _ target: Tensor) -> Tensor {
        check(prediction.shape == target.shape, "mse: shapes \(prediction.shape) and \(target.shape) differ")
        let n = prediction.count
        var total: Double = 0
        for i in 0..<n {
            let d = Double(prediction.data[i] - target.data[i])
            total += d * d
        }
        return result(shape: [1], data: [Float(total / Double(n))], parents: [prediction, target]) { o in
            let g = 2 * o.grad![0] / Float(n)
            prediction.accumulateGrad { gp in
                for i in 0..<n { gp[i] += g * (prediction.data[i] - target.data[i]) }
            }
            target.accumulateGrad { gt in
                for i in 0..<n { gt[i] -= g * (prediction.data[i] - target.data[i]) }
            }
        }
    }

    /// Knowledge-distillation loss (Hinton et al. 2015):
    /// `T^2 * mean_rows KL(softmax(teacher / T) || softmax(student / T))`,
    /// i.e. PyTorch `kl_div(log_softmax(s/T), softmax(t/T), reduction="batchmean") * T^2`.
    ///
    /// The teacher is a constant (no gradient). The gradient with respect to the
    /// student logits is `T * (softmax(s/T) - softmax(t/T)) / N`; it equals the
    /// soft cross-entropy's, which differs from KL only by the teacher entropy.
    ///
    /// - `student`, `teacher`: `[N, C]`. Returns `[1]`.
    public static func distillationLoss(student: Tensor, teacher: Tensor, temperature t: Float) -> Tensor {
        check(student.shape == teacher.shape && student.rank == 2,
                     "distillationLoss: student \(student.shape) and teacher \(teacher.shape) must be equal [N, C]")
        check(t > 0, "distillationLoss: temperature must be positive, got \(t)")
        let (n, c) = (student.shape[0], student.shape[1])
        var q = [Float].uninitialized(n * c)  // student probabilities at temperature T
        var p = [Float].uninitialized(n * c)  // teacher probabilities at temperature T
        var loss: Double = 0
        q.withMutablePointer { pq in
            p.withMutablePointer { pp in
                student.data.withPointer { ps in
                    teacher.data.withPointer { pt in
                        for r in 0..<n {
                            let lseS = logSoftmaxRow(ps + r * c, into: pq + r * c, count: c, temperature: t)
                            let lseT = logSoftmaxRow(pt + r * c, into: pp + r * c, count: c, temperature: t)
                            for j in 0..<c where pp[r * c + j] > 0 {
                                // p * (log p - log q) with log p = t/T - lseT, log q = s/T - lseS
                                let logP = pt[r * c + j] / t - lseT, logQ = ps[r * c + j] / t - lseS
                                loss += Double(pp[r * c + j]) * Double(logP - logQ)
                            }
                        }
                    }
                }
            }
        }
        let value = Float(loss / Double(n)) * t * t
        return result(shape: [1], data: [value], parents: [student]) { o in
            let g = o.grad![0] * t / Float(n)
            student.accumulateGrad { gs in
                for i in 0..<(n * c) { gs[i] += g * (q[i] - p[i]) }
            }
        }
    }
}
