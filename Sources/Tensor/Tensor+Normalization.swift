#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Row-wise fused kernels over the last dimension: layer norm and softmax
// (with an optional additive mask). Rows are split over the cores when large.

extension Tensor {
    /// Layer normalisation over the last dimension (PyTorch `nn.LayerNorm`):
    /// `y = (x - mean) / sqrt(var + eps) * gamma + beta`, biased variance.
    ///
    /// - `self`: `[N..., H]`; `gamma`, `beta`: `[H]`.
    /// - Returns: same shape as `self`.
    ///
    /// Statistics are accumulated in Float over H <= a few thousand, with the
    /// mean subtracted before squaring (two-pass), so cancellation is benign.
    public func layerNorm(gamma: Tensor, beta: Tensor, eps: Float = 1e-12) -> Tensor {
        let h = shape[rank - 1], rows = count / h
        check(gamma.shape == [h] && beta.shape == [h], "layerNorm: gamma/beta must be [\(h)]")
        let x = self
        var out = [Float].uninitialized(count)
        // Saved for backward: normalised input xhat [N, H] and 1/std per row [N].
        var xhat = [Float].uninitialized(count)
        var rstd = [Float].uninitialized(rows)
        out.withMutablePointer { po in
            xhat.withMutablePointer { pxh in
                rstd.withMutablePointer { prs in
                    x.data.withPointer { px in
                        gamma.data.withPointer { pgm in
                            beta.data.withPointer { pbt in
                                Parallel.rows(rows, cost: 4 * h) { range in
                                    for r in range {
                                        let xr = px + r * h, yr = po + r * h, hr = pxh + r * h
                                        var mean: Float = 0
                                        for j in 0..<h { mean += xr[j] }
                                        mean /= Float(h)
                                        var variance: Float = 0
                                        for j in 0..<h {
                                            let d = xr[j] - mean
                                            variance += d * d
                                        }
                                        let rs = 1 / (variance / Float(h) + eps).squareRoot()
                                        prs[r] = rs
                                        for j in 0..<h {
                                            let n = (xr[j] - mean) * rs
                                            hr[j] = n
                                            yr[j] = n * pgm[j] + pbt[j]
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return Tensor.result(shape: shape, data: out, parents: [x, gamma, beta]) { o in
            // dxhat = dy * gamma;  dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
            // dgamma = sum_rows dy * xhat;  dbeta = sum_rows dy
            o.grad!.withPointer { pg in
                xhat.withPointer { pxh in
                    rstd.withPointer { prs in
                        gamma.data.withPointer { pgm in
                            if x.requiresGrad {
                                x.accumulateGrad { gx in
                                    let pgx = gx.baseAddress!
                                    Parallel.rows(rows, cost: 6 * h) { range in
                                        for r in range {
                                            let gr = pg + r * h, hr = pxh + r * h, dr = pgx + r * h
                                            var m1: Float = 0, m2: Float = 0
                                            for j in 0..<h {
                                                let d = gr[j] * pgm[j]
                                                m1 += d
                                                m2 += d * hr[j]
                                            }
                                            m1 /= Float(h)
                                            m2 /= Float(h)
                                            let rs = prs[r]
                                            for j in 0..<h { dr[j] += rs * (gr[j] * pgm[j] - m1 - hr[j] * m2) }
                                        }
                                    }
                                }
                            }
                            gamma.accumulateGrad { gg in
                                for r in 0..<rows {
                                    let gr = pg + r * h, hr = pxh + r * h
                                    for j in 0..<h { gg[j] += gr[j] * hr[j] }
                                }
                            }
                            beta.accumulateGrad { gb in
                                for r in 0..<rows {
                                    let gr = pg + r * h
                                    for j in 0..<h { gb[j] += gr[j] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Softmax over the last dimension, numerically stable (max subtracted),
    /// with an optional additive mask broadcast over the rows.
    ///
    /// - `self`: `[N..., L]`, e.g. attention scores `[B,A,S,S]`.
    /// - `mask`: additive values `[B, L]` (any shape with B*L elements, such as
    ///   `[B,1,1,S]`), where B divides the number of rows: row r uses mask row
    ///   `r / (rows / B)`. Use 0 for kept keys and a large negative value
    ///   (e.g. -1e4) for padding: exp underflows to exactly 0. Not differentiated.
    /// - Returns: same shape as `self`.
    public func softmax(mask: Tensor? = nil) -> Tensor {
        let l = shape[rank - 1], rows = count / l
        let x = self
        var maskRows = 1
        if let mask {
            check(mask.count % l == 0, "softmax: mask \(mask.shape) does not end in \(l)")
            maskRows = mask.count / l
            check(rows % maskRows == 0, "softmax: \(maskRows) mask rows do not divide \(rows) rows")
        }
        let perMask = rows / maskRows
        var out = [Float].uninitialized(count)
        out.withMutablePointer { po in
            x.data.withPointer { px in
                (mask?.data ?? [0]).withPointer { pm in
                    Parallel.rows(rows, cost: 8 * l) { range in
                        for r in range {
                            let xr = px + r * l, yr = po + r * l
                            var mx = -Float.infinity
                            if mask != nil {
                                let mr = pm + (r / perMask) * l
                                for j in 0..<l {
                                    let v = xr[j] + mr[j]
                                    yr[j] = v
                                    mx = max(mx, v)
                                }
                            } else {
                                for j in 0..<l {
                                    yr[j] = xr[j]
                                    mx = max(mx, xr[j])
                                }
                            }
                            var total: Float = 0
                            for j in 0..<l {
                                let e = fastExp(yr[j] - mx)
                                yr[j] = e
                                total += e
                            }
                            let inv = 1 / total
                            for j in 0..<l { yr[j] *= inv }
                        }
                    }
                }
            }
        }
        return Tensor.result(shape: shape, data: out, parents: [x]) { o in
            // dx = y * (dy - sum(dy * y))
            o.grad!.withPointer { pg in
                o.data.withPointer { py in
                    x.accumulateGrad { gx in
                        let pgx = gx.baseAddress!
                        Parallel.rows(rows, cost: 4 * l) { range in
                            for r in range {
                                let gr = pg + r * l, yr = py + r * l, dr = pgx + r * l
                                var dot: Float = 0
                                for j in 0..<l { dot += gr[j] * yr[j] }
                                for j in 0..<l { dr[j] += yr[j] * (gr[j] - dot) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Softmax stand-ins that avoid `exp`, for MPC-friendly models.
public enum PolynomialSoftmax: Sendable, Equatable {
    /// `(x_i + c)^2 / sum_j (x_j + c)^2` (MPCFormer "2Quad", c = 5 in the paper).
    case twoQuad(c: Float)
    /// `relu(x_i) / (sum_j relu(x_j) + eps)`.
    case reluNorm(eps: Float)
}

extension Tensor {
    /// Row normalisation over the last dimension with a polynomial kernel
    /// instead of `exp` (see `PolynomialSoftmax`).
    ///
    /// - `self`: `[N..., L]`; `mask`: additive `[B, L]` as in `softmax(mask:)`;
    ///   keys whose mask value is below -1 get exactly zero weight.
    /// - Returns: same shape as `self`; rows that are entirely zero stay zero.
    public func polynomialSoftmax(_ kind: PolynomialSoftmax, mask: Tensor? = nil) -> Tensor {
        let l = shape[rank - 1], rows = count / l
        let x = self
        let maskRows = mask.map { $0.count / l } ?? 1
        check(mask == nil || (mask!.count % l == 0 && rows % maskRows == 0),
              "polynomialSoftmax: mask \(mask?.shape ?? []) does not fit \(shape)")
        let perMask = rows / maskRows
        // Kernel value e(x) and derivative e'(x) for one element.
        @inline(__always) func kernel(_ v: Float) -> (Float, Float) {
            switch kind {
            case .twoQuad(let c): return ((v + c) * (v + c), 2 * (v + c))
            case .reluNorm: return v > 0 ? (v, 1) : (0, 0)
            }
        }
        let eps: Float = { if case .reluNorm(let e) = kind { return e } else { return 0 } }()
        var out = [Float].uninitialized(count)
        var slope = [Float].uninitialized(count)  // e'(x) / Z, saved for backward
        out.withMutablePointer { po in
            slope.withMutablePointer { ps in
                x.data.withPointer { px in
                    (mask?.data ?? [0]).withPointer { pm in
                        for r in 0..<rows {
                            let xr = px + r * l, yr = po + r * l, sr = ps + r * l
                            let mr = pm + (r / perMask) * l
                            var total: Float = 0
                            for j in 0..<l {
                                let kept = mask == nil || mr[j] > -1
                                let (e, de) = kept ? kernel(xr[j]) : (0, 0)
                                yr[j] = e
                                sr[j] = de
                                total += e
                            }
                            let inv = total + eps > 0 ? 1 / (total + eps) : 0
                            for j in 0..<l {
                                yr[j] *= inv
                                sr[j] *= inv
                            }
                        }
                    }
                }
            }
        }
        return Tensor.result(shape: shape, data: out, parents: [x]) { o in
            // y = e / Z  =>  dx_j = e'(x_j) / Z * (dy_j - sum_k dy_k y_k)
            o.grad!.withPointer { pg in
                o.data.withPointer { py in
                    slope.withPointer { ps in
                        x.accumulateGrad { gx in
                            for r in 0..<rows {
                                let gr = pg + r * l, yr = py + r * l, sr = ps + r * l
                                var dot: Float = 0
                                for j in 0..<l { dot += gr[j] * yr[j] }
                                for j in 0..<l { gx[r * l + j] += sr[j] * (gr[j] - dot) }
                            }
                        }
                    }
                }
            }
        }
    }
}
