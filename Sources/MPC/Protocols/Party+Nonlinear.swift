import Foundation

// Elementwise nonlinear functions for transformers: GeLU, exp (x ≤ 0), reciprocal, inverse square root,
// and MPCFormer's "Quad" GeLU. Errors quoted are measured by `NonlinearTests` (plaintext on a dense grid,
// and under MPC with f = 16 fractional bits).

/// The public approximations used by the nonlinear gadgets (fitted once, in Double).
public enum Approximations {
    /// GeLU (erf form) `x·Φ(x)`: 0 below −4, `x` from 4, least-squares cubics on [−4, −1.5], [−1.5, 0],
    /// [0, 1.5], [1.5, 4] pinned at the breakpoints (`PiecewisePolynomial.fit`). Plaintext max error 9.5e-4.
    /// Segments are compared coarsely (`coarseComparisons`): adjacent pieces agree exactly at the
    /// breakpoints, so an input within 2^−6 of one may use either at a cost of ≤ 2^−6 × their slope difference.
    public static let gelu: PiecewisePolynomial = {
        var p = PiecewisePolynomial.fit(
            { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }, breakpoints: [-4, -1.5, 0, 1.5, 4], degree: 3,
            below: [0], above: [0, 1])
        p.coarseComparisons = true
        return p
    }()

    /// exp on (−∞, 0]: 0 below −14 (e^−14 = 8.3e-7), least-squares cubics on
    /// [−14, −7.75, −4.25, −2.5, −1, 0] (the last cubic is fitted on [−1, 0] and extrapolated above 0).
    /// Pinned at the breakpoints (and to 1 at 0). Plaintext max absolute error 4.6e-4 (five thresholds; seven gave
    /// 1.7e-4 for 40% more comparison work before pinning).
    public static let exp: PiecewisePolynomial = {
        let b: [Double] = [-14, -7.75, -4.25, -2.5, -1]
        let inner = PiecewisePolynomial.fit(Foundation.exp, breakpoints: b + [0], degree: 3, below: [0], above: [1])
        // Drop the artificial breakpoint at 0: the last fitted cubic also serves x ≥ 0.
        let rows = (0...b.count).map { taylorShift(inner.centered[$0], by: -inner.centers[$0]) }
        var p = PiecewisePolynomial(breakpoints: b, coefficients: rows)
        p.coarseComparisons = true  // adjacent cubics agree at the breakpoints
        return p
    }()

    /// tanh (BERT's pooler): −1 below −4 and 1 from 4 (1 − tanh 4 = 6.7e-4), least-squares cubics on
    /// [−4, −2.75, −1.5, −0.5, 0.5, 1.5, 2.75, 4], pinned at the breakpoints. Plaintext max error 6.7e-4. Segments
    /// are compared coarsely: adjacent cubics agree exactly at the breakpoints.
    public static let tanh: PiecewisePolynomial = {
        var p = PiecewisePolynomial.fit(
            Foundation.tanh, breakpoints: [-4, -2.75, -1.5, -0.5, 0.5, 1.5, 2.75, 4], degree: 3, below: [-1], above: [1])
        p.coarseComparisons = true
        return p
    }()

    /// `tanh` with exact 38-bit segment comparisons: the same cubics, for inputs up to 2^21 in magnitude
    /// (the coarse version wraps beyond 2^11). The router's scores use it: a confident predictor's logits
    /// can be large, and it runs on one value per member only.
    public static let tanhWide: PiecewisePolynomial = {
        var p = tanh
        p.coarseComparisons = false
        return p
    }()

    /// Octave range of `reciprocal` and `inverseSqrt`: inputs in [2^lo, 2^(hi+1)).
    public static let octaves = (lo: -10, hi: 12)
    /// Minimax linear start for 1/x on [1, 2]: 24/17 − 8/17·x, relative error ≤ 1/17.
    public static let reciprocalStart = (24.0 / 17, -8.0 / 17)
    /// Least-squares (relative) linear start for 1/√x on [1, 2]: relative error ≤ 0.034.
    public static let inverseSqrtStart = (1.24433297, -0.27751911)
}

extension Party {
    /// GeLU, erf form: `x·Φ(x)` elementwise, by `piecewisePolynomial` with `Approximations.gelu`.
    ///
    /// Input range: |x| < 2000 (coarse 18-bit segment comparisons: |x − b_j| < 2048). Max error: 9.5e-4 plaintext, 9.7e-4 measured under MPC (f = 16) over
    /// a dense grid on [−6, 6] and random/edge inputs (bound tested: 1e-2). Rounds: 5. Online bytes per
    /// element, each party: 18/8 + 64 + 3/8 ≈ 66.6. Offline 8·(3·17 + 4) + 32 + 24 = 496 bytes per element (one comparison
    /// key serves the five breakpoints). Compute: 5 DCF evaluations of 17 levels per element.
    /// Opened: masked values only (see `piecewisePolynomial`); nothing learned.
    public func gelu(_ x: ArithmeticShare) throws -> ArithmeticShare { try piecewisePolynomial(x, Approximations.gelu) }

    /// exp(x) for x ≤ 0 (softmax after max subtraction), by `piecewisePolynomial` with `Approximations.exp`.
    ///
    /// Input range: −2000 < x ≤ 0 (exactly 0 below −14; x > 0 extrapolates the last cubic, wrong beyond
    /// ≈ 0.2). Max absolute error 4.6e-4 plaintext, 4.7e-4 under MPC (bound tested: 1e-3). Rounds: 5.
    /// Online bytes per element, each party: 18/8 + 64 + 3/8 ≈ 66.6. Offline 496 bytes per element. Compute: 5 DCF
    /// evaluations of 17 levels per element.
    public func exp(_ x: ArithmeticShare) throws -> ArithmeticShare { try piecewisePolynomial(x, Approximations.exp) }

    /// tanh elementwise (BERT's pooler), by `piecewisePolynomial` with `Approximations.tanh`.
    ///
    /// Input range: |x| < 2000 (coarse segment comparisons). Max error 6.7e-4 plaintext (tested bound under
    /// MPC: 2e-3). Rounds: 5. Online bytes per element, each party: 18/8 + 64 + 3/8 ≈ 66.6. Offline: one
    /// comparison key for the eight breakpoints plus the selection and cubic records.
    /// Opened: masked values only; nothing learned.
    public func tanh(_ x: ArithmeticShare) throws -> ArithmeticShare { try piecewisePolynomial(x, Approximations.tanh) }

    /// MPCFormer "Quad" GeLU: `0.125x² + 0.25x + 0.5`. Exact up to ±2 ulp (it is the definition).
    ///
    /// Consumes one `squarePair(shape)`. Rounds: 1. Online 8 bytes per element from each party; offline 8.
    /// Range: |x| < 2^10 (truncation of x²). Opened: `x − a`, uniform.
    ///
    /// With `narrow` (a `ring_bits: 32` model, f ≤ 12) the square runs on Z_2^32: x loses `narrowRightShift`
    /// bits (4 at f = 12: it keeps 8), `e = x − a` is opened as 32-bit words (4 bytes per element each), and
    /// `x²/8` comes back to Z_2^64 at f bits by a 32-bit exact truncation (1 more round, 1/8 byte per element).
    /// Range: |x| < 2^7 (the square, at 2·8 fractional bits, must stay below 2^30). Error: x's rounding to
    /// 2^−8 (≈ 2^−10·|x| on 0.125x²) and ±1 ulp.
    public func quadGelu(_ x: ArithmeticShare, narrow: Bool = false) throws -> ArithmeticShare {
        let quarter = truncate(x, bits: 2)
        let eighth: ArithmeticShare
        if narrow {
            let shift = fixedPoint.narrowRightShift, kept = fixedPoint.fracBits - shift
            let p = try dealer.squarePair(shape: x.shape)
            let y = truncate(x, bits: shift).tensor.data
            // e = y − a on Z_2^32; the square's shares are right modulo 2^32, all the truncation reads.
            let mine = zip(y, p.a.data).map { ($0 &- $1) & 0xFFFF_FFFF }
            let opened = zip(mine, try exchangeNarrow(mine, width: 32)).map { $0 &+ $1 }
            let z = squareShares(opened: opened, a: p.a.data, aa: p.c.data)
            eighth = try truncateExact(ArithmeticShare(RingTensor(shape: x.shape, data: z)), bits: 2 * kept - fixedPoint.fracBits + 3, ringBits: 32)
        } else {
            eighth = truncate(try square(x), bits: 3)
        }
        return addPublic(add(eighth, quarter), RingTensor(shape: x.shape, repeating: fixedPoint.encode(0.5)))
    }

    /// Octave comparisons are exact on 32 bits: inputs below 2^15 (real, f = 16) cover the range.
    static let octaveWidth = 32

    /// Octave normalisation shared by `reciprocal` and `inverseSqrt`: one batched comparison round against
    /// 2^(lo+1)..2^hi gives the octave j (x ∈ [2^j, 2^(j+1))), then `x' = x·2^−j ∈ [1, 2)` (one mul round).
    /// Returns `x'` and the step bits (for further public tables).
    func octaveNormalise(_ x: [UInt64]) throws -> (xn: [UInt64], bits: [UInt64], k: Int) {
        let (lo, hi) = Approximations.octaves, fp = fixedPoint
        let js = Array(lo...hi)
        let bits = try stepBits(x, thresholds: js.dropFirst().map { fp.encode(pow(2, Double($0))) }, shift: 0, width: Party.octaveWidth)
        let s = lookup(bits, k: js.count - 1, table: js.map { fp.encode(pow(2, Double(-$0))) })
        return (try mulMany([(x, s)])[0], bits, js.count - 1)
    }

    /// Reciprocal `1/x` elementwise for positive `x`.
    ///
    /// Steps: one batched comparison round against 2^−9..2^12 (the octave j of x); `x' = x·2^−j ∈ [1, 2)`
    /// (1 round); start `y0 = 24/17 − 8/17·x'` (local, relative error ≤ 1/17); two Newton steps
    /// `y ← y·(2 − x'y)` (2 rounds each), the last one multiplying `y·2^−j` alongside `x'y` so that the
    /// scale is folded in without an extra round. Records: `Dealer.reciprocal`.
    /// Input range: [2^−10, 2^13) (the octave table covers it; inputs below 2^−10 get a start too far off,
    /// and results ≥ 1024 lose the range of `mul`). Error: relative 1.2e-5 from Newton plus fixed-point
    /// rounding; measured max |error| ≤ 3·2^−16 + 5e-5·(1/x) (so relative 5e-5 for x ≤ 16; for large x the
    /// result has few significant bits: 1/4096 is 16 ulps) over the range. Rounds: 6. Online bytes per
    /// element, each party: 4 + 16·6 = 100. Offline 8·(3·31 + 4) + 48 = 824 bytes per element (this is meant for
    /// per-row values: softmax denominators, LayerNorm variances). Opened: masked values only.
    public func reciprocal(_ x: ArithmeticShare) throws -> ArithmeticShare {
        let fp = fixedPoint, (lo, hi) = Approximations.octaves
        let (xn, bits, k) = try octaveNormalise(x.tensor.data)
        let s = lookup(bits, k: k, table: (lo...hi).map { fp.encode(pow(2, Double(-$0))) })
        let (a, b) = Approximations.reciprocalStart
        let two = fp.encode(2)
        var y = addConst(scaleData(xn, by: b), fp.encode(a))
        let p1 = try mulMany([(xn, y)])[0]
        y = try mulMany([(y, addConst(p1.map { 0 &- $0 }, two))])[0]
        let r = try mulMany([(xn, y), (y, s)])
        let out = try mulMany([(r[1], addConst(r[0].map { 0 &- $0 }, two))])[0]
        return ArithmeticShare(RingTensor(shape: x.shape, data: out))
    }

    /// Inverse square root `1/√x` elementwise for positive `x` (LayerNorm).
    ///
    /// Steps: as `reciprocal`: octave j by one batched comparison round, `x' = x·2^−j` (1 round), start
    /// `y0 = 1.2443 − 0.2775·x'` (local, relative error ≤ 0.034), two Newton steps
    /// `y ← 1.5y − 0.5·(x'y)·(y²)` (2 rounds each: `x'y` and `y²` together, then their product), the first
    /// also computing `x'·2^(−j/2)`, the last also `y·2^(−j/2)` and `(x'2^(−j/2))·y`, so the result
    /// `1.5·y·2^(−j/2) − 0.5·(x'2^(−j/2)y)·y²` comes out scaled with no extra round.
    /// Input range: [2^−10, 2^13). Error: relative ≈ 4e-6 from Newton plus fixed-point rounding; measured
    /// max |error| ≤ 4·2^−16 absolute plus a relative error of at most 4e-5 (measured 3.9e-5). Rounds: 6. Online bytes per element, each party: 8·22 + 16·9 = 320.
    /// Offline ≈ 22·3080 + 72 bytes per element (per-row values). Opened: masked values only.
    public func inverseSqrt(_ x: ArithmeticShare) throws -> ArithmeticShare {
        let fp = fixedPoint, (lo, hi) = Approximations.octaves
        let (xn, bits, k) = try octaveNormalise(x.tensor.data)
        let t = lookup(bits, k: k, table: (lo...hi).map { fp.encode(pow(2, -Double($0) / 2)) })
        let (a, b) = Approximations.inverseSqrtStart
        let y0 = addConst(scaleData(xn, by: b), fp.encode(a))
        let r1 = try mulMany([(xn, y0), (y0, y0), (xn, t)])
        let pq = try mulMany([(r1[0], r1[1])])[0]
        let y1 = zip(scaleData(y0, by: 1.5), scaleData(pq, by: 0.5)).map { $0 &- $1 }
        let r2 = try mulMany([(y1, y1), (y1, t), (r1[2], y1)])
        let pq2 = try mulMany([(r2[2], r2[0])])[0]
        let out = zip(scaleData(r2[1], by: 1.5), scaleData(pq2, by: 0.5)).map { $0 &- $1 }
        return ArithmeticShare(RingTensor(shape: x.shape, data: out))
    }

    /// Local multiply by a public real (as `scale(_:by:)`) on flat data.
    func scaleData(_ x: [UInt64], by s: Double) -> [UInt64] {
        scale(ArithmeticShare(RingTensor(shape: [x.count], data: x)), by: s).tensor.data
    }
}

extension Dealer {
    /// Deals the records of `Party.gelu`.
    public func gelu(shape: [Int]) throws { try piecewisePolynomial(shape: shape, Approximations.gelu) }
    /// Deals the records of `Party.exp`.
    public func exp(shape: [Int]) throws { try piecewisePolynomial(shape: shape, Approximations.exp) }
    /// Deals the records of `Party.tanh`.
    public func tanh(shape: [Int]) throws { try piecewisePolynomial(shape: shape, Approximations.tanh) }
    /// Deals the records of `Party.quadGelu`.
    public func quadGelu(shape: [Int], narrow: Bool = false) throws {
        try squarePair(shape: shape)
        if narrow { try bitProduct(count: RingTensor.count(of: shape)) }
    }

    func octaveNormalise(count n: Int) throws {
        try stepBits(count: n, width: Party.octaveWidth)
        try triple(shape: [n])
    }

    /// Deals the records of `Party.reciprocal`.
    public func reciprocal(shape: [Int]) throws {
        let n = RingTensor.count(of: shape)
        try octaveNormalise(count: n)
        try triple(shape: [n]); try triple(shape: [n]); try triple(shape: [2 * n]); try triple(shape: [n])
    }

    /// Deals the records of `Party.inverseSqrt`.
    public func inverseSqrt(shape: [Int]) throws {
        let n = RingTensor.count(of: shape)
        try octaveNormalise(count: n)
        try triple(shape: [3 * n]); try triple(shape: [n]); try triple(shape: [3 * n]); try triple(shape: [n])
    }
}
