import Foundation
import Testing
import _TestSupport
import Tensor

@Suite struct ForwardValueTests {
    /// With `drawsInitialValues` off (a model about to be loaded), `randn` and `uniform` give zeros of the
    /// right shape and leave the generator alone; on, they draw.
    @Test func initialValuesCanBeSkipped() {
        let rng = SeededGenerator(seed: 3)
        let (n, u) = Tensor.$drawsInitialValues.withValue(false) {
            (Tensor.randn([3, 4], std: 2, rng: rng), Tensor.uniform([5], low: 1, high: 2, rng: rng))
        }
        #expect(n.shape == [3, 4] && n.data.allSatisfy { $0 == 0 } && u.shape == [5] && u.data.allSatisfy { $0 == 0 })
        let drawn = Tensor.randn([3, 4], std: 2, rng: rng), fresh = Tensor.randn([3, 4], std: 2, rng: SeededGenerator(seed: 3))
        #expect(drawn.data == fresh.data && drawn.data.contains { $0 != 0 })
    }

    @Test func matmulValues() {
        let a = Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3, 2], data: [7, 8, 9, 10, 11, 12])
        expectClose(a.matmul(b).data, [58, 64, 139, 154])
        expectClose(a.matmul(a, transposeOther: true).data, [14, 32, 32, 77])
    }

    @Test func softmaxMaskGivesExactZeros() {
        let x = Tensor(shape: [1, 4], data: [30, -2, 5, 40])
        let y = x.softmax(mask: Tensor(shape: [1, 4], data: [0, 0, -10_000, -10_000]))
        #expect(y.data[2] == 0 && y.data[3] == 0)
        expectClose([y.data[0] + y.data[1]], [1])
    }

    @Test func crossEntropyValue() {
        let logits = Tensor(shape: [2, 3], data: [1, 2, 3, 0, 0, 0])
        let loss = Tensor.crossEntropy(logits: logits, labels: [2, 1])
        let l0 = -(3 - log(exp(1.0) + exp(2.0) + exp(3.0))), l1 = log(3.0)
        expectClose([loss.item], [Float((l0 + l1) / 2)])
    }

    @Test func distillationValue() {
        let s = Tensor(shape: [1, 2], data: [0, 1]), t = Tensor(shape: [1, 2], data: [1, 0])
        let temperature: Float = 2
        func soft(_ a: Double, _ b: Double) -> (Double, Double) {
            let ea = exp(a / 2), eb = exp(b / 2)
            return (ea / (ea + eb), eb / (ea + eb))
        }
        let (p0, p1) = soft(1, 0), (q0, q1) = soft(0, 1)
        let kl = p0 * log(p0 / q0) + p1 * log(p1 / q1)
        expectClose([Tensor.distillationLoss(student: s, teacher: t, temperature: temperature).item], [Float(kl * 4)])
    }

    @Test func layerNormNormalises() {
        let x = Tensor(shape: [1, 4], data: [1, 2, 3, 4])
        let y = x.layerNorm(gamma: .ones([4]), beta: .zeros([4]), eps: 0)
        let s = Float(1.25).squareRoot()
        expectClose(y.data, [-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s])
    }

    @Test func noGradRecordsNothing() {
        let w = Tensor.ones([2, 2], requiresGrad: true)
        let y = Tensor.withNoGrad { (w * w).sum() }
        #expect(!y.requiresGrad)
        let z = (w * w).sum()
        #expect(z.requiresGrad)
    }

    @Test func gradientsAccumulateAcrossBackwardCalls() {
        let w = Tensor(shape: [2], data: [1, 2], requiresGrad: true)
        (w * 3).sum().backward()
        (w * 3).sum().backward()
        expectClose(w.grad!, [6, 6])
        w.zeroGrad()
        #expect(w.grad == nil)
    }

    @Test func seededGeneratorIsDeterministic() {
        let a = Tensor.randn([100], rng: SeededGenerator(seed: 42))
        let b = Tensor.randn([100], rng: SeededGenerator(seed: 42))
        #expect(a.data == b.data)
        let mean = a.data.reduce(0, +) / 100
        #expect(abs(mean) < 0.3)
    }
}

@Suite struct OptimizerTests {
    /// Constant gradient g: m_hat = g and v_hat = g^2 every step, so PyTorch's
    /// AdamW gives p <- p * (1 - lr * wd) - lr * g / (|g| + eps), by hand:
    /// 1 -> 0.899 -> 0.798101 -> 0.697302899 (lr 0.1, wd 0.01, g 0.5).
    @Test func adamWConstantGradientByHand() {
        let p = Tensor(shape: [1], data: [1], requiresGrad: true)
        let opt = AdamW(parameters: [p], learningRate: 0.1, weightDecay: 0.01)
        var values: [Float] = []
        for _ in 0..<3 {
            p.grad = [0.5]
            opt.step()
            values.append(p.data[0])
        }
        expectClose(values, [0.899, 0.798101, 0.697302899], rtol: 1e-6)
    }

    /// Varying gradients against the PyTorch algorithm written out in Double.
    @Test func adamWMatchesReference() {
        let p = Tensor(shape: [2], data: [0.5, -1], requiresGrad: true)
        let q = Tensor(shape: [1], data: [2], requiresGrad: true)
        let opt = AdamW(parameters: [p, q], learningRate: 0.01, weightDecay: 0.1, decay: [true, false])
        let grads: [[Double]] = [[0.1, -0.2, 0.3], [-0.4, 0.05, 0.3], [0.2, 0.2, -1]]
        var ref: [Double] = [0.5, -1, 2], m = [Double](repeating: 0, count: 3), v = m
        let wd: [Double] = [0.1, 0.1, 0]
        for (t, g) in grads.enumerated() {
            p.grad = [Float(g[0]), Float(g[1])]
            q.grad = [Float(g[2])]
            opt.step()
            let step = Double(t + 1)
            for i in 0..<3 {
                ref[i] *= 1 - 0.01 * wd[i]
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                let mHat = m[i] / (1 - pow(0.9, step)), vHat = v[i] / (1 - pow(0.999, step))
                ref[i] -= 0.01 * mHat / (vHat.squareRoot() + 1e-8)
            }
        }
        expectClose(p.data + q.data, ref.map { Float($0) }, rtol: 1e-5)
    }

    @Test func linearWarmupDecayMatchesHF() {
        let s = LinearWarmupDecay(totalSteps: 10, warmupSteps: 2, baseLR: 1e-3)
        let lrs = [0, 1, 2, 6, 9, 10, 12].map { s.learningRate(at: $0) }
        expectClose(lrs, [0, 5e-4, 1e-3, 5e-4, 1.25e-4, 0, 0])
    }

    @Test func clipGradNormScalesToMax() {
        let a = Tensor(shape: [1], data: [0], requiresGrad: true), b = Tensor(shape: [1], data: [0], requiresGrad: true)
        a.grad = [3]
        b.grad = [4]
        let norm = clipGradNorm([a, b], maxNorm: 1)
        expectClose([norm], [5])
        expectClose(a.grad! + b.grad!, [0.6, 0.8], rtol: 1e-5)
        let small = clipGradNorm([a, b], maxNorm: 10)
        expectClose([small], [1], rtol: 1e-5)
        expectClose(a.grad! + b.grad!, [0.6, 0.8], rtol: 1e-5)
    }
}

@Suite struct KernelTests {
    @Test func fastExpMatchesLibm() {
        var worst: Double = 0
        for i in 0...20000 {
            let x = Float(i) / 20000 * 170 - 85
            let rel = abs(Double(fastExp(x)) - exp(Double(x))) / exp(Double(x))
            worst = max(worst, rel)
        }
        #expect(worst < 1e-6, "max relative error \(worst)")
        #expect(fastExp(-10_000) == 0 && fastExp(-88) == 0)
        #expect(fastExp(0) == 1)
    }

    @Test func trainingRuntimeSplitsProductsCorrectly() {
        Runtime.configureForTraining(blasThreads: 1)
        defer { setBLASThreads(2) }
        let a = Tensor.randn([300, 70], rng: SeededGenerator(seed: 1))
        let b = Tensor.randn([90, 70], rng: SeededGenerator(seed: 2))
        let split = a.matmul(b, transposeOther: true).data
        setBLASThreads(2)
        let whole = a.matmul(b, transposeOther: true).data
        expectClose(split, whole, rtol: 1e-5, atol: 1e-5)
    }
}
