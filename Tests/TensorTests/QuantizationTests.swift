import Testing
import _TestSupport
import Tensor

/// Fake quantization (QAT): forward values against hand-computed fixed point, and the
/// straight-through gradients against finite differences of their surrogates.
@Suite struct QuantizationTests {
    /// frac 2, ring 5: codes -16...15, reals -4...3.75 in steps of 0.25.
    @Test func roundsToTheGridAndClampsToTheRing() {
        let x = Tensor(shape: [11], data: [0.1, 0.125, 0.13, -0.125, 1.374, 3.8, 3.9, 100, -4.1, -4.2, -3.9],
                       requiresGrad: true)
        let y = x.fakeQuantize(fracBits: 2, ringBits: 5)
        // 0.125 * 4 = 0.5 rounds away from zero, as the runtime's `FixedPoint.encode` does.
        #expect(y.data == [0, 0.25, 0.25, -0.25, 1.25, 3.75, 3.75, 3.75, -4, -4, -4])
        y.backward(gradient: [Float](repeating: 1, count: 11))
        // Zero exactly where the rounded code left -16...15 (3.9 -> 16, 100, -4.2 -> -17).
        #expect(x.grad == [1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1])
    }

    /// The branch-free rounding of the kernel agrees with `Float.rounded()` (ties away from
    /// zero) everywhere, ties and the 2^22...2^24 boundary included.
    @Test func roundingMatchesTiesAwayFromZero() {
        let grid = FixedPointGrid(fracBits: 0, ringBits: 64)
        let rng = SeededGenerator(seed: 9)
        var xs: [Float] = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, -0.49999997, 3.4999998, 4_194_303.5,
                           -4_194_303.5, 8_388_607.5, -8_388_607.5, 8_388_609, 16_777_215, 0, -0.0, 1e30, -1e30]
        xs += (0..<20_000).map { _ in (rng.nextFloat() * 2 - 1) * 2e7 }
        xs += (0..<20_000).map { _ in Float(Int(rng.next() % 200_001) - 100_000) / 2 }  // halves: ties
        let y = Tensor(shape: [xs.count], data: xs).fakeQuantize(grid)
        let expected = xs.map { min(max($0.rounded(), grid.lowestCode), grid.highestCode) }
        let wrong = zip(y.data, expected).enumerated().filter { $0.element.0 != $0.element.1 }
        #expect(wrong.count == 0, "\(wrong.count) differ, first at x = \(wrong.first.map { xs[$0.offset] } ?? 0)")
    }

    @Test(arguments: [(2, 5, Float(-4), Float(3.75)),
                      (12, 32, Float(-524_288), Float(524_288) - 1.0 / 32),  // 2^19 - 2^-12 is not a Float
                      (16, 64, -Float(1 << 47), Float(1 << 47).nextDown),
                      (16, 24, Float(-128), Float(128) - 1.0 / 65_536)])
    func rangeIsTheLargestOnGridFloatInsideTheRing(frac: Int, ring: Int, lowest: Float, highest: Float) {
        let grid = FixedPointGrid(fracBits: frac, ringBits: ring)
        #expect(grid.lowest == lowest && grid.highest == highest)
        let y = Tensor(shape: [2], data: [1e30, -1e30]).fakeQuantize(grid)
        #expect(y.data == [highest, lowest])
        // Every code fits the ring's signed integers.
        let codes = y.data.map { Double($0) * Double(grid.scale) }
        let limit = Double(sign: .plus, exponent: ring - 1, significand: 1)
        #expect(codes[0] < limit && codes[1] >= -limit)
    }

    @Test func outputsAreOnTheGridAndIdempotent() {
        let x = Tensor.randn([200], std: 100, rng: SeededGenerator(seed: 1))
        let y = x.fakeQuantize(fracBits: 12, ringBits: 20)  // range ±128: some values clamp
        #expect(y.data.allSatisfy { ($0 * 4096).rounded() == $0 * 4096 && abs($0) <= 128 })
        #expect(y.data.contains(128 - 1.0 / 4096) && y.data.contains(-128))
        #expect(y.fakeQuantize(fracBits: 12, ringBits: 20).data == y.data)
        let inside = zip(x.data, y.data).filter { abs($0.0) < 127 }
        #expect(inside.allSatisfy { abs($0.0 - $0.1) <= 1.0 / 8192 })
    }

    /// STE: the backward rule is the derivative of the clamp `min(max(x, lo), hi)`.
    @Test func gradientIsTheClampsDerivative() {
        let rng = SeededGenerator(seed: 2)
        // Values in ±14 on a ±8 ring, kept 0.05 away from the range ends where the two
        // conventions (rounded code vs. real value) could differ inside one FD step.
        let data = (0..<40).map { _ -> Float in
            var v = (rng.nextFloat() * 2 - 1) * 14
            if abs(abs(v) - 8) < 0.05 { v += 0.1 }
            return v
        }
        let x = Tensor(shape: [4, 10], data: data, requiresGrad: true)
        #expect(data.contains { abs($0) > 8 } && data.contains { abs($0) < 8 })
        let grid = FixedPointGrid(fracBits: 12, ringBits: 16)
        let clamp: ([Tensor]) -> Tensor = { t in
            Tensor(shape: t[0].shape, data: t[0].data.map { min(max($0, grid.lowest), grid.highest) })
        }
        checkGradients([x], surrogate: clamp) { $0[0].fakeQuantize(grid) }
        // Composed with other ops, the gradient still flows through.
        let w = param([10], seed: 3)
        checkGradients([x, w], surrogate: { t in clamp([t[0]]) * t[1] }) { $0[0].fakeQuantize(grid) * $0[1] }
    }

    @Test func symmetricWeightQuantization() {
        let w = Tensor(shape: [5], data: [0.5, -1.0, 0.26, 0.1, 0], requiresGrad: true)
        let y = w.fakeQuantizeSymmetric(bits: 3)  // codes -3...3, scale 1/3
        expectClose(y.data, [2.0 / 3, -1, 1.0 / 3, 0, 0], rtol: 1e-6, atol: 1e-7)
        #expect(Tensor.zeros([3]).fakeQuantizeSymmetric(bits: 8).data == [0, 0, 0])

        let r = Tensor.randn([500], rng: SeededGenerator(seed: 4))
        let q = r.fakeQuantizeSymmetric(bits: 4).data
        #expect(Set(q).count <= 15)
        let amax = r.data.map(abs).max()!
        #expect(q.map(abs).max()! == amax || abs(q.map(abs).max()! - amax) < 1e-6)
        #expect(zip(r.data, q).allSatisfy { abs($0.0 - $0.1) <= amax / 7 / 2 * 1.0001 })
    }

    /// STE: the gradient passes unchanged (surrogate: the identity).
    @Test func symmetricWeightGradientIsStraightThrough() {
        let w = param([3, 4], seed: 5)
        checkGradients([w], surrogate: { $0[0] }) { $0[0].fakeQuantizeSymmetric(bits: 4) }
        checkGradients([w], surrogate: { $0[0] * 2 }) { $0[0].fakeQuantizeSymmetric(bits: 4) * 2 }
    }
}
