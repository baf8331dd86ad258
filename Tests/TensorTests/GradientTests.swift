import Testing
import _TestSupport
import Tensor

/// A finite-difference check for every op with a backward rule.
@Suite struct GradientTests {
    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func matmul2D(transposeA: Bool, transposeB: Bool) {
        let a = param(transposeA ? [4, 3] : [3, 4], seed: 1)
        let b = param(transposeB ? [5, 4] : [4, 5], seed: 2)
        checkGradients([a, b]) { $0[0].matmul($0[1], transposeSelf: transposeA, transposeOther: transposeB, alpha: 0.7) }
    }

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func matmulBatched4D(transposeA: Bool, transposeB: Bool) {
        let a = param(transposeA ? [2, 2, 4, 3] : [2, 2, 3, 4], seed: 3)
        let b = param(transposeB ? [2, 2, 5, 4] : [2, 2, 4, 5], seed: 4)
        checkGradients([a, b]) { $0[0].matmul($0[1], transposeSelf: transposeA, transposeOther: transposeB) }
    }

    @Test(arguments: [false, true])
    func matmulShared2D(transposeB: Bool) {
        let a = param([2, 3, 4], seed: 5)
        let b = param(transposeB ? [5, 4] : [4, 5], seed: 6)
        checkGradients([a, b]) { $0[0].matmul($0[1], transposeOther: transposeB) }
    }

    @Test func linear() {
        let x = param([2, 3, 4], seed: 7), w = param([5, 4], seed: 8), b = param([5], seed: 9)
        checkGradients([x, w, b]) { Tensor.linear($0[0], weight: $0[1], bias: $0[2]) }
        checkGradients([x, w]) { Tensor.linear($0[0], weight: $0[1], bias: nil) }
    }

    @Test func broadcastingAddSubMul() {
        let a = param([2, 3, 4], seed: 10), same = param([2, 3, 4], seed: 11), bias = param([4], seed: 12)
        let mid = param([3, 1], seed: 13)
        checkGradients([a, same]) { $0[0] + $0[1] }
        checkGradients([a, same]) { $0[0] - $0[1] }
        checkGradients([a, same]) { $0[0] * $0[1] }
        checkGradients([a, bias]) { $0[0] + $0[1] }
        checkGradients([bias, a]) { $0[0] - $0[1] }
        checkGradients([a, bias]) { $0[0] * $0[1] }
        checkGradients([a, mid]) { $0[0] * $0[1] }
        // Attention-mask style [B,1,1,S] over [B,A,S,S].
        let scores = param([2, 3, 4, 4], seed: 14), mask = param([2, 1, 1, 4], seed: 15)
        checkGradients([scores, mask]) { $0[0] + $0[1] }
    }

    @Test func tensorUsedTwiceAccumulates() {
        let x = param([3, 4], seed: 16)
        checkGradients([x]) { $0[0] * $0[0] + $0[0] }
    }

    @Test func scalarAndActivations() {
        let x = param([3, 5], seed: 17)
        checkGradients([x]) { $0[0] * 1.5 + 0.25 }
        checkGradients([x]) { -$0[0] - 2 }
        checkGradients([x]) { $0[0].gelu() }
        checkGradients([x]) { $0[0].tanh() }
        checkGradients([x]) { $0[0].relu() }
        checkGradients([x]) { $0[0].square() }
    }

    @Test func dropout() {
        let x = param([4, 6], seed: 18)
        checkGradients([x]) { $0[0].dropout(p: 0.3, training: true, rng: SeededGenerator(seed: 99)) }
    }

    @Test func shapeOps() {
        let x = param([2, 3, 2, 4], seed: 19)
        checkGradients([x]) { $0[0].reshaped([6, -1]) }
        checkGradients([x]) { $0[0].permuted([0, 2, 1, 3]) }
        checkGradients([x]) { $0[0].permuted([3, 1, 0, 2]) }
        checkGradients([x]) { $0[0].transposed(1, 3) }
        let h = param([3, 4, 5], seed: 20)
        checkGradients([h]) { $0[0].selectToken(0) }
        checkGradients([h]) { $0[0].selectToken(2) }
    }

    @Test(arguments: [0, 1, 2])
    func reductions(dim: Int) {
        let x = param([2, 3, 4], seed: 21)
        checkGradients([x]) { $0[0].mean(dim: dim) }
        checkGradients([x]) { $0[0].sum(dim: dim, keepDim: true) }
        checkGradients([x]) { $0[0].sum() }
        checkGradients([x]) { $0[0].mean() }
    }

    @Test func embeddingScatterAdd() {
        let table = param([5, 3], seed: 22)
        checkGradients([table]) { Tensor.embedding($0[0], ids: [1, 4, 1, 0, 1, 2], shape: [2, 3]) }
    }

    @Test func layerNorm() {
        let x = param([3, 2, 6], seed: 23), g = param([6], seed: 24), b = param([6], seed: 25)
        checkGradients([x, g, b], h: 3e-3) { $0[0].layerNorm(gamma: $0[1], beta: $0[2], eps: 1e-5) }
    }

    @Test func softmax() {
        let x = param([2, 2, 3, 5], seed: 26)
        checkGradients([x]) { $0[0].softmax() }
        let mask = Tensor(shape: [2, 1, 1, 5], data: [0, 0, 0, -10_000, -10_000, 0, 0, 0, 0, -10_000])
        checkGradients([x]) { $0[0].softmax(mask: mask) }
    }

    @Test func losses() {
        let logits = param([4, 3], seed: 27), other = param([4, 3], seed: 28)
        checkGradients([logits]) { Tensor.crossEntropy(logits: $0[0], labels: [0, 2, 1, 2]) }
        checkGradients([logits, other]) { Tensor.mse($0[0], $0[1]) }
        let teacher = Tensor.randn([4, 3], rng: SeededGenerator(seed: 29))
        checkGradients([logits]) { Tensor.distillationLoss(student: $0[0], teacher: teacher, temperature: 2) }
        let weights = Tensor(shape: [4], data: [0.2, 0.9, 0.5, 0.1], requiresGrad: true)
        checkGradients([logits, weights]) { Tensor.weightedCrossEntropy(logits: $0[0], labels: [0, 2, 1, 2], weights: $0[1]) }
    }
}

@Suite struct PolynomialSoftmaxTests {
    @Test func gradients() {
        let x = param([2, 2, 3, 5], seed: 30)
        let mask = Tensor(shape: [2, 1, 1, 5], data: [0, 0, 0, -10_000, -10_000, 0, 0, 0, 0, -10_000])
        checkGradients([x]) { $0[0].polynomialSoftmax(.twoQuad(c: 5), mask: mask) }
        checkGradients([x]) { $0[0].polynomialSoftmax(.twoQuad(c: 5)) }
        // Shift away from the ReLU kink at 0 so central differences are valid.
        let y = Tensor(shape: [3, 4], data: [0.5, -0.7, 1.2, 0.9, -0.4, 0.8, 0.3, -1.1, 1.5, 0.6, -0.2, 0.7],
                       requiresGrad: true)
        checkGradients([y], h: 1e-3) { $0[0].polynomialSoftmax(.reluNorm(eps: 1e-6)) }
    }

    @Test func rowsSumToOneAndMaskedKeysAreZero() {
        let x = Tensor(shape: [1, 4], data: [1, -2, 3, 0.5])
        let mask = Tensor(shape: [1, 4], data: [0, 0, 0, -10_000])
        for kind in [PolynomialSoftmax.twoQuad(c: 5), .reluNorm(eps: 0)] {
            let y = x.polynomialSoftmax(kind, mask: mask)
            #expect(y.data[3] == 0)
            expectClose([y.data.reduce(0, +)], [1], rtol: 1e-6)
        }
    }
}
