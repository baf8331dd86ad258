// Shape and indexing ops: reshape, permute/transpose, token selection,
// reductions over one dimension, embedding gather. Backward rules here.

extension Tensor {
    /// The same elements with a new shape (one dimension may be -1, inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var dims = newShape
        if let k = dims.firstIndex(of: -1) {
            let known = dims.enumerated().filter { $0.offset != k }.map(\.element).reduce(1, *)
            dims[k] = count / max(known, 1)
        }
        check(dims.reduce(1, *) == count, "reshape: \(shape) cannot become \(newShape)")
        let x = self
        return Tensor.result(shape: dims, data: data, parents: [x]) { o in
            o.grad!.withPointer { pg in x.accumulateGrad { g in for i in 0..<g.count { g[i] += pg[i] } } }
        }
    }

    /// Reorders dimensions: `result.shape[i] == shape[order[i]]`.
    ///
    /// Attention uses `[B,S,A,D] -> [B,A,S,D]` (order `[0,2,1,3]`) and back; when
    /// the last dimension stays last, rows of it are copied as blocks.
    public func permuted(_ order: [Int]) -> Tensor {
        check(order.sorted() == Array(0..<rank), "permute: \(order) is not a permutation of 0..<\(rank)")
        let x = self
        let outShape = order.map { shape[$0] }
        let map = Tensor.permutationOffsets(shape: shape, order: order)
        let block = map.block
        var out = [Float].uninitialized(count)
        out.withMutablePointer { po in
            x.data.withPointer { px in
                for (j, src) in map.offsets.enumerated() { (po + j * block).update(from: px + src, count: block) }
            }
        }
        return Tensor.result(shape: outShape, data: out, parents: [x]) { o in
            o.grad!.withPointer { pg in
                x.accumulateGrad { g in
                    let gx = g.baseAddress!
                    for (j, src) in map.offsets.enumerated() {
                        let d = gx + src, s = pg + j * block
                        for e in 0..<block { d[e] += s[e] }
                    }
                }
            }
        }
    }

    /// Swaps two dimensions (a `permuted` shorthand).
    public func transposed(_ d0: Int, _ d1: Int) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(d0, d1)
        return permuted(order)
    }

    /// For a permutation, the source offset of each contiguous output block
    /// (block = product of the trailing dims that stay in place).
    static func permutationOffsets(shape: [Int], order: [Int]) -> (offsets: [Int], block: Int) {
        let r = shape.count
        var kept = 0
        while kept < r && order[r - 1 - kept] == r - 1 - kept { kept += 1 }
        let block = shape.suffix(kept).reduce(1, *)
        let outer = r - kept
        var inStrides = [Int](repeating: 1, count: r)
        for i in stride(from: r - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * shape[i + 1] }
        let outShape = order.prefix(outer).map { shape[$0] }
        let strides = order.prefix(outer).map { inStrides[$0] }
        let offsets = stridedOffsets(shape: outShape, strides: strides)
        return (offsets, block)
    }

    /// Selects one position along dimension 1: `[B,S,H] -> [B,H]` (e.g. `[CLS]` at index 0).
    public func selectToken(_ index: Int = 0) -> Tensor {
        check(rank == 3 && index >= 0 && index < shape[1], "selectToken(\(index)): needs [B,S,H], got \(shape)")
        let x = self
        let (b, s, h) = (shape[0], shape[1], shape[2])
        var out = [Float].uninitialized(b * h)
        out.withMutablePointer { po in
            x.data.withPointer { px in
                for i in 0..<b { (po + i * h).update(from: px + (i * s + index) * h, count: h) }
            }
        }
        return Tensor.result(shape: [b, h], data: out, parents: [x]) { o in
            o.grad!.withPointer { pg in
                x.accumulateGrad { g in
                    for i in 0..<b {
                        let base = (i * s + index) * h
                        for j in 0..<h { g[base + j] += pg[i * h + j] }
                    }
                }
            }
        }
    }

    /// Sum over dimension `dim` (removed from the shape unless `keepDim`).
    public func sum(dim: Int, keepDim: Bool = false) -> Tensor { reduce(dim: dim, keepDim: keepDim, scale: 1) }

    /// Mean over dimension `dim` (removed from the shape unless `keepDim`).
    public func mean(dim: Int, keepDim: Bool = false) -> Tensor {
        let d = dim < 0 ? dim + rank : dim
        return reduce(dim: d, keepDim: keepDim, scale: 1 / Float(shape[d]))
    }

    private func reduce(dim: Int, keepDim: Bool, scale: Float) -> Tensor {
        let d = dim < 0 ? dim + rank : dim
        check(d >= 0 && d < rank, "reduce: dim \(dim) out of range for \(shape)")
        let x = self
        let outer = shape.prefix(d).reduce(1, *), len = shape[d], inner = shape.suffix(from: d + 1).reduce(1, *)
        var out = [Float](repeating: 0, count: outer * inner)
        out.withMutablePointer { po in
            x.data.withPointer { px in
                for o in 0..<outer {
                    for l in 0..<len {
                        let src = px + (o * len + l) * inner, dst = po + o * inner
                        for i in 0..<inner { dst[i] += src[i] }
                    }
                    for i in 0..<inner { po[o * inner + i] *= scale }
                }
            }
        }
        var outShape = shape
        if keepDim { outShape[d] = 1 } else { outShape.remove(at: d) }
        return Tensor.result(shape: outShape, data: out, parents: [x]) { o in
            o.grad!.withPointer { pg in
                x.accumulateGrad { g in
                    for oi in 0..<outer {
                        for l in 0..<len {
                            let base = (oi * len + l) * inner
                            for i in 0..<inner { g[base + i] += scale * pg[oi * inner + i] }
                        }
                    }
                }
            }
        }
    }

    /// Sum of all elements, as a scalar shaped `[1]`.
    public func sum() -> Tensor { reshaped([count]).sum(dim: 0, keepDim: true) }

    /// Mean of all elements, as a scalar shaped `[1]`.
    public func mean() -> Tensor { reshaped([count]).mean(dim: 0, keepDim: true) }

    /// Embedding lookup: rows of `table` by id.
    ///
    /// - `table`: `[V, H]`; `ids`: any count N of ids in `0..<V`.
    /// - `shape`: leading dims of the result (product N), e.g. `[B, S]`; default `[N]`.
    /// - Returns: `shape + [H]`. Backward scatter-adds into the rows of `table`.
    public static func embedding(_ table: Tensor, ids: [Int32], shape leading: [Int]? = nil) -> Tensor {
        check(table.rank == 2, "embedding: table must be [V, H], got \(table.shape)")
        let (v, h) = (table.shape[0], table.shape[1])
        let dims = leading ?? [ids.count]
        check(dims.reduce(1, *) == ids.count, "embedding: shape \(dims) does not hold \(ids.count) ids")
        for id in ids { check(id >= 0 && Int(id) < v, "embedding: id \(id) outside vocabulary 0..<\(v)") }
        var out = [Float].uninitialized(ids.count * h)
        out.withMutablePointer { po in
            table.data.withPointer { pt in
                for (i, id) in ids.enumerated() { (po + i * h).update(from: pt + Int(id) * h, count: h) }
            }
        }
        return result(shape: dims + [h], data: out, parents: [table]) { o in
            o.grad!.withPointer { pg in
                table.accumulateGrad { g in
                    for (i, id) in ids.enumerated() {
                        let dst = g.baseAddress! + Int(id) * h, src = pg + i * h
                        for j in 0..<h { dst[j] += src[j] }
                    }
                }
            }
        }
    }
}
