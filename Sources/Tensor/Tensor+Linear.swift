// Matrix products: `matmul` (2-D and batched, with transpose flags) and the
// fused `linear` layer. All products go through `BLAS.gemm`; transposes are
// passed as flags, never materialised.

extension Tensor {
    /// Matrix product `alpha * op(self) * op(other)`, batched over leading dims.
    ///
    /// - `self`: `[..., M, K]` (or `[..., K, M]` when `transposeSelf`)
    /// - `other`: `[..., K, N]` (or `[..., N, K]` when `transposeOther`), with the
    ///   same leading (batch) dims as `self`, or 2-D (shared by every batch).
    /// - Returns: `[..., M, N]`.
    ///
    /// Attention uses it as `scores[B,A,S,S] = Q[B,A,S,D] * K[B,A,S,D]^T` and
    /// `ctx[B,A,S,D] = P[B,A,S,S] * V[B,A,S,D]`.
    public func matmul(
        _ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false, alpha: Float = 1
    ) -> Tensor {
        check(rank >= 2 && other.rank >= 2, "matmul: needs rank >= 2, got \(shape) and \(other.shape)")
        let tA = transposeSelf, tB = transposeOther
        let m = tA ? shape[rank - 1] : shape[rank - 2]
        let k = tA ? shape[rank - 2] : shape[rank - 1]
        let kB = tB ? other.shape[other.rank - 1] : other.shape[other.rank - 2]
        let n = tB ? other.shape[other.rank - 2] : other.shape[other.rank - 1]
        check(k == kB, "matmul: inner dims differ, \(shape) x \(other.shape) (transposes \(tA), \(tB))")
        let batchDims = Array(shape.dropLast(2))
        let batch = batchDims.reduce(1, *)
        let sharedOther = other.rank == 2 && rank > 2
        check(
            sharedOther || Array(other.shape.dropLast(2)) == batchDims,
            "matmul: batch dims differ, \(shape) x \(other.shape)")
        let a = self, b = other
        let (lda, ldb) = (tA ? m : k, tB ? k : n)
        let (strideA, strideB, strideC) = (m * k, sharedOther ? 0 : k * n, m * n)
        var out = [Float].uninitialized(batch * m * n)
        a.data.withPointer { pa in
            b.data.withPointer { pb in
                out.withMutablePointer { pc in
                    if sharedOther && !tA {
                        // One big product: [batch*M, K] x op(B).
                        BLAS.gemm(pc, ldc: n, pa, lda: k, transA: false, pb, ldb: ldb, transB: tB,
                                  m: batch * m, n: n, k: k, alpha: alpha)
                        return
                    }
                    BLAS.batched(batch, flops: m * n * k) { range in for i in range {
                        BLAS.gemm(pc + i * strideC, ldc: n, pa + i * strideA, lda: lda, transA: tA,
                                  pb + i * strideB, ldb: ldb, transB: tB, m: m, n: n, k: k, alpha: alpha)
                    } }
                }
            }
        }
        return Tensor.result(shape: batchDims + [m, n], data: out, parents: [a, b]) { c in
            let gc = c.grad!
            gc.withPointer { pg in
                // dA = alpha * dC * op(B)^T   (or its transpose when A was transposed)
                a.accumulateGrad { ga in
                    b.data.withPointer { pb in
                        BLAS.batched(batch, flops: m * n * k) { range in for i in range {
                            let dA = ga.baseAddress! + i * strideA
                            let gi = pg + i * strideC, bi = pb + i * strideB
                            if !tA {  // dA[M,K] = dC[M,N] * op(B)^T
                                BLAS.gemm(dA, ldc: k, gi, lda: n, transA: false, bi, ldb: ldb, transB: !tB,
                                          m: m, n: k, k: n, alpha: alpha, beta: 1)
                            } else {  // dA[K,M] = op(B)[K,N] * dC^T
                                BLAS.gemm(dA, ldc: m, bi, lda: ldb, transA: tB, gi, ldb: n, transB: true,
                                          m: k, n: m, k: n, alpha: alpha, beta: 1)
                            }
                        } }
                    }
                }
                // dB = alpha * op(A)^T * dC   (or its transpose when B was transposed)
                b.accumulateGrad { gb in
                    a.data.withPointer { pa in
                        if sharedOther && !tA {
                            let rows = batch * m
                            if !tB {  // dB[K,N] = A^T[K,rows] * dC[rows,N]
                                BLAS.gemm(gb.baseAddress!, ldc: n, pa, lda: k, transA: true, pg, ldb: n,
                                          transB: false, m: k, n: n, k: rows, alpha: alpha, beta: 1)
                            } else {  // dB[N,K] = dC^T[N,rows] * A[rows,K]
                                BLAS.gemm(gb.baseAddress!, ldc: k, pg, lda: n, transA: true, pa, ldb: k,
                                          transB: false, m: n, n: k, k: rows, alpha: alpha, beta: 1)
                            }
                            return
                        }
                        BLAS.batched(batch, flops: m * n * k) { range in for i in range {
                            let dB = gb.baseAddress! + i * strideB
                            let gi = pg + i * strideC, ai = pa + i * strideA
                            if !tB {  // dB[K,N] = op(A)^T[K,M] * dC[M,N]
                                BLAS.gemm(dB, ldc: n, ai, lda: lda, transA: !tA, gi, ldb: n, transB: false,
                                          m: k, n: n, k: m, alpha: alpha, beta: 1)
                            } else {  // dB[N,K] = dC^T[N,M] * op(A)[M,K]
                                BLAS.gemm(dB, ldc: k, gi, lda: n, transA: true, ai, ldb: lda, transB: tA,
                                          m: n, n: k, k: m, alpha: alpha, beta: 1)
                            }
                        } }
                    }
                }
            }
        }
    }

    /// Fully connected layer `y = x * weight^T + bias` (PyTorch `nn.Linear`).
    ///
    /// - `x`: `[..., In]`; `weight`: `[Out, In]`; `bias`: `[Out]` or nil.
    /// - Returns: `[..., Out]`.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        check(weight.rank == 2, "linear: weight must be [Out, In], got \(weight.shape)")
        let nIn = weight.shape[1], nOut = weight.shape[0]
        check(x.shape.last == nIn, "linear: x \(x.shape) does not end in In = \(nIn)")
        if let bias { check(bias.shape == [nOut], "linear: bias \(bias.shape) is not [\(nOut)]") }
        let rows = x.count / nIn
        var out = [Float].uninitialized(rows * nOut)
        out.withMutablePointer { py in
            if let bias {
                bias.data.withPointer { pb in
                    for r in 0..<rows { (py + r * nOut).update(from: pb, count: nOut) }
                }
            }
            x.data.withPointer { px in
                weight.data.withPointer { pw in
                    BLAS.gemm(py, ldc: nOut, px, lda: nIn, transA: false, pw, ldb: nIn, transB: true,
                              m: rows, n: nOut, k: nIn, beta: bias == nil ? 0 : 1)
                }
            }
        }
        let parents = bias.map { [x, weight, $0] } ?? [x, weight]
        return Tensor.result(shape: Array(x.shape.dropLast()) + [nOut], data: out, parents: parents) { y in
            y.grad!.withPointer { pg in
                // dx[rows,In] += dy[rows,Out] * W[Out,In]
                x.accumulateGrad { gx in
                    weight.data.withPointer { pw in
                        BLAS.gemm(gx.baseAddress!, ldc: nIn, pg, lda: nOut, transA: false, pw, ldb: nIn,
                                  transB: false, m: rows, n: nIn, k: nOut, beta: 1)
                    }
                }
                // dW[Out,In] += dy^T[Out,rows] * x[rows,In]
                weight.accumulateGrad { gw in
                    x.data.withPointer { px in
                        BLAS.gemm(gw.baseAddress!, ldc: nIn, pg, lda: nOut, transA: true, px, ldb: nIn,
                                  transB: false, m: nOut, n: nIn, k: rows, beta: 1)
                    }
                }
                // db[Out] += column sums of dy
                bias?.accumulateGrad { gb in
                    for r in 0..<rows {
                        let row = pg + r * nOut
                        for j in 0..<nOut { gb[j] += row[j] }
                    }
                }
            }
        }
    }
}
