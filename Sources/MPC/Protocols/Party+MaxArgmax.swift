// Max and argmax over the last dimension by a tournament tree.
//
// Shapes: x is [R..., n] (R = product of the leading dimensions, "rows"); max gives [R...], the one-hot
// [R..., n]. Level l (l = 0, 1, ...) holds cnt_l candidates per row; candidate j covers the indices
// [j·2^l, (j+1)·2^l). Candidates 2k and 2k+1 play each other (all rows and pairs batched in one
// DReLU and one select); an odd last candidate passes to the next level unchanged.
// Levels: L = ceil(log2 n). Ties go to the lower index (the first maximum, as in NumPy).

/// The per-level plan of the tree (shared by the parties and the dealer so both walk the same shapes).
struct TournamentPlan {
    /// Candidates per row at each level, until one remains.
    let counts: [Int]

    init(length n: Int) {
        precondition(n >= 1, "max/argmax over an empty dimension")
        var c = [n]
        while c.last! > 1 { c.append((c.last! + 1) / 2) }
        counts = c
    }

    /// Number of levels with comparisons: ceil(log2 n).
    var levels: Int { counts.count - 1 }
}

extension Party {
    /// Narrow max comparisons: resolution 2^−6 (shift f − 6) on 20 bits, exact for differences below 2^13.
    static func maxShift(_ fp: FixedPoint) -> Int { Swift.max(0, fp.fracBits - 6) }
    static let maxWidth = 20

    /// Maximum over the last dimension: `[R..., n] → [R...]`.
    ///
    /// Consumes, per level l with `p_l = floor(cnt_l / 2)` pairs: `dreluKey([R, p_l])`, `triple([R, p_l])`
    /// (`Dealer.max`). Each level: DReLU of `a − b`, then `select`. Range: exact while differences of
    /// entries do not wrap as signed 64-bit integers (|x| < 2^62 as signed ring values).
    /// Rounds: 2·ceil(log2 n). Bytes sent by each party: 24 per pair, about 24·R·(n − 1) in all.
    /// Opened: only DReLU-masked differences and Beaver-masked values, all uniform; nothing is learned,
    /// not even which entry wins.
    ///
    /// With `narrow`, each level compares with a 20-bit comparison key at a resolution of 2^−6 instead
    /// of the 63-bit DReLU (`stepBits`; records `comparisonKey([R·p_l, 20])`): 2.5 instead of 8 bytes per
    /// pair and less than a third of the DCF work; entries within 2^−6 of each other may be ordered either
    /// way (the max is then off by at most 2^−6), and differences must stay below 2^13 (real). Softmax
    /// uses it: a max that is off by 2^−6 changes nothing after normalisation (exp is accurate to x ≤ 0.2).
    public func max(_ x: ArithmeticShare, narrow: Bool = false) throws -> ArithmeticShare {
        precondition(!x.shape.isEmpty, "max needs at least one dimension")
        let n = x.shape.last!, lead = Array(x.shape.dropLast()), rows = RingTensor.count(of: lead)
        let plan = TournamentPlan(length: n)
        var cur = x.tensor.data  // [rows, cnt]
        for level in 0..<plan.levels {
            let cnt = plan.counts[level], pairs = cnt / 2, next = plan.counts[level + 1]
            var a = [UInt64](repeating: 0, count: rows * pairs), b = a
            for r in 0..<rows {
                for k in 0..<pairs { a[r * pairs + k] = cur[r * cnt + 2 * k]; b[r * pairs + k] = cur[r * cnt + 2 * k + 1] }
            }
            let sa = ArithmeticShare(RingTensor(shape: [rows, pairs], data: a))
            let sb = ArithmeticShare(RingTensor(shape: [rows, pairs], data: b))
            let d = sub(sa, sb)
            let bit = narrow
                ? ArithmeticShare(RingTensor(shape: d.shape, data: try stepBits(d.tensor.data, thresholds: [0], shift: Party.maxShift(fixedPoint), width: Party.maxWidth)))
                : try drelu(d)
            let winner = try select(bit, sa, sb).tensor.data
            var nxt = [UInt64](repeating: 0, count: rows * next)
            for r in 0..<rows {
                for k in 0..<pairs { nxt[r * next + k] = winner[r * pairs + k] }
                if cnt % 2 == 1 { nxt[r * next + pairs] = cur[r * cnt + cnt - 1] }
            }
            cur = nxt
        }
        return ArithmeticShare(RingTensor(shape: lead, data: cur))
    }

    /// Maximum and secret one-hot argmax over the last dimension: `[R..., n] → ([R...], [R..., n])`.
    ///
    /// Each candidate carries a one-hot over its range (width 2^l at level l, zero beyond n); a level
    /// opens the DReLU of `a − b` and then selects, with one row-select per pair, the row
    /// `[a, d·ohA, ohB − d·ohB]` computed as `[b, 0, ohB] + d·[a − b, ohA, −ohB]`.
    /// Consumes per level l: `dreluKey([R, p_l])`, `matmulTriple([R·p_l, 1, 1, 1 + 2^(l+1)])`
    /// (`Dealer.argmax`). The one-hot holds shares of the integers 0/1; ties go to the lowest index.
    /// Rounds: 2·ceil(log2 n). Bytes sent by each party per level: 8·R·p_l·(3 + 2^(l+1)), at most about
    /// 8·R·(n + 3p_l) per level. Range as `max`. Opened: masked values only, uniform; nothing is learned.
    public func argmax(_ x: ArithmeticShare) throws -> (max: ArithmeticShare, oneHot: ArithmeticShare) {
        precondition(!x.shape.isEmpty, "argmax needs at least one dimension")
        let n = x.shape.last!, lead = Array(x.shape.dropLast()), rows = RingTensor.count(of: lead)
        let plan = TournamentPlan(length: n)
        var cur = x.tensor.data  // values [rows, cnt]
        // One-hots [rows, cnt, width]: at level 0 the public unit vectors, held by party 0.
        var oh = [UInt64](repeating: 0, count: rows * n)
        if id == .client { for i in 0..<(rows * n) { oh[i] = 1 } }
        var width = 1
        for level in 0..<plan.levels {
            let cnt = plan.counts[level], pairs = cnt / 2, next = plan.counts[level + 1], w2 = 2 * width
            var a = [UInt64](repeating: 0, count: rows * pairs), b = a
            var base = [UInt64](repeating: 0, count: rows * pairs * (1 + w2)), delta = base
            for r in 0..<rows {
                for k in 0..<pairs {
                    let (ia, ib, q) = (r * cnt + 2 * k, r * cnt + 2 * k + 1, (r * pairs + k) * (1 + w2))
                    a[r * pairs + k] = cur[ia]; b[r * pairs + k] = cur[ib]
                    base[q] = cur[ib]; delta[q] = cur[ia] &- cur[ib]
                    for j in 0..<width {
                        delta[q + 1 + j] = oh[ia * width + j]
                        base[q + 1 + width + j] = oh[ib * width + j]
                        delta[q + 1 + width + j] = 0 &- oh[ib * width + j]
                    }
                }
            }
            let d = try drelu(ArithmeticShare(RingTensor(shape: [rows, pairs], data: zip(a, b).map { $0 &- $1 })))
            let sel = try rowSelect(d.tensor.data, base: base, delta: delta, width: 1 + w2)
            var nextVals = [UInt64](repeating: 0, count: rows * next), nextOh = [UInt64](repeating: 0, count: rows * next * w2)
            for r in 0..<rows {
                for k in 0..<pairs {
                    let q = (r * pairs + k) * (1 + w2)
                    nextVals[r * next + k] = sel[q]
                    for j in 0..<w2 { nextOh[(r * next + k) * w2 + j] = sel[q + 1 + j] }
                }
                if cnt % 2 == 1 {
                    nextVals[r * next + pairs] = cur[r * cnt + cnt - 1]
                    for j in 0..<width { nextOh[(r * next + pairs) * w2 + j] = oh[(r * cnt + cnt - 1) * width + j] }
                }
            }
            (cur, oh, width) = (nextVals, nextOh, w2)
        }
        var oneHot = [UInt64](repeating: 0, count: rows * n)
        for r in 0..<rows { for i in 0..<n { oneHot[r * n + i] = oh[r * width + i] } }
        return (ArithmeticShare(RingTensor(shape: lead, data: cur)), ArithmeticShare(RingTensor(shape: x.shape, data: oneHot)))
    }

    /// Opens the index of a secret one-hot (from `argmax`) to one party: `Σ_i i·oneHot[..., i]` locally,
    /// then `reveal(to:)`.
    ///
    /// Rounds: 1. Bytes: 8 per row from the party that does not learn. Opened: the index, to `recipient`
    /// only; the other party learns nothing. Returns the indices `[R]` (row-major over the leading
    /// dimensions) on the recipient, nil on the other party.
    public func revealIndex(_ oneHot: ArithmeticShare, to recipient: PartyID) throws -> [Int]? {
        let n = oneHot.shape.last!, rows = oneHot.tensor.count / Swift.max(n, 1)
        var idx = [UInt64](repeating: 0, count: rows)
        for r in 0..<rows { for i in 0..<n { idx[r] = idx[r] &+ UInt64(i) &* oneHot.tensor.data[r * n + i] } }
        let opened = try reveal(ArithmeticShare(RingTensor(shape: [rows], data: idx)), to: recipient)
        return opened.map { $0.data.map { Int(Int64(bitPattern: $0)) } }
    }
}

extension Dealer {
    /// Deals the records of `Party.max` over the last dimension of `shape`, level by level.
    public func max(shape: [Int], narrow: Bool = false) throws {
        let n = shape.last!, rows = RingTensor.count(of: Array(shape.dropLast()))
        let plan = TournamentPlan(length: n)
        for level in 0..<plan.levels {
            let pairs = plan.counts[level] / 2
            if narrow { try stepBits(count: rows * pairs, width: Party.maxWidth) } else { try dreluKey(shape: [rows, pairs]) }
            try triple(shape: [rows, pairs])
        }
    }

    /// Deals the records of `Party.argmax` over the last dimension of `shape`, level by level.
    public func argmax(shape: [Int]) throws {
        let n = shape.last!, rows = RingTensor.count(of: Array(shape.dropLast()))
        let plan = TournamentPlan(length: n)
        for level in 0..<plan.levels {
            let pairs = plan.counts[level] / 2
            try dreluKey(shape: [rows, pairs])
            try selectRows(bitShape: [rows * pairs], width: 1 + 2 << level)
        }
    }
}
