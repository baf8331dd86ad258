import Testing
import Tensor
import Transformer

/// Quantization-aware training in the model: where fake quantization happens, and that
/// the float path is untouched.
@Suite struct QATTests {
    let batch = EncodedBatch(
        batch: 2, seqLen: 5, inputIds: [1, 5, 7, 2, 9, 3, 4, 8, 0, 0], tokenTypeIds: [0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
        attentionMask: [1, 1, 1, 1, 1, 1, 1, 1, 0, 0])

    func onGrid(_ t: Tensor, frac: Int) -> Bool {
        let scale = Float(1 << frac)
        return t.data.allSatisfy { ($0 * scale).rounded() == $0 * scale }
    }

    /// One encoder layer against a hand-written reference that quantizes at every point
    /// where the secure runtime truncates; missing or extra points change the output.
    @Test(arguments: [SoftmaxVariant.exact, .twoQuad], [ActivationVariant.gelu, .quad])
    func layerQuantizesAtEveryTruncationPoint(softmax: SoftmaxVariant, activation: ActivationVariant) {
        var config = tiny
        config.softmax = softmax
        config.activation = activation
        let layer = BertLayer(config: config, rng: SeededGenerator(seed: 1))
        // Weights well above the grid step, so that every rounding shows in the output.
        let noise = SeededGenerator(seed: 3)
        for (_, t) in layer.namedParameters(prefix: "") {
            t.data = t.data.map { $0 + 0.3 * noise.nextGaussian() }
        }
        let x = Tensor.randn([2, 5, 8], rng: SeededGenerator(seed: 2))
        let mask = BertEncoder.additiveMask(batch.attentionMask, batch: 2, seqLen: 5)
        let fq = FakeQuantization(fracBits: 7, ringBits: 24)
        let rng = SeededGenerator(seed: 0)
        let (out, scores) = Tensor.withNoGrad { layer.forward(x, mask: mask, training: false, rng: rng, quantization: fq) }

        let q = fq.activation
        func lin(_ l: Linear, _ t: Tensor) -> Tensor { q(Tensor.linear(t, weight: fq.weight(l.weight), bias: fq.parameter(l.bias))) }
        func ln(_ n: LayerNorm, _ t: Tensor) -> Tensor { q(t.layerNorm(gamma: fq.parameter(n.weight), beta: fq.parameter(n.bias), eps: n.eps)) }
        func heads(_ t: Tensor) -> Tensor { t.reshaped([2, 5, 2, 4]).permuted([0, 2, 1, 3]) }
        let expected: (Tensor, Tensor) = Tensor.withNoGrad {
            let s = q(heads(lin(layer.query, x)).matmul(heads(lin(layer.key, x)), transposeOther: true, alpha: 0.5))
            let p = q(softmax == .exact ? s.softmax(mask: mask) : s.polynomialSoftmax(.twoQuad(c: 5), mask: mask))
            let ctx = q(p.matmul(heads(lin(layer.value, x)))).permuted([0, 2, 1, 3]).reshaped([2, 5, 8])
            let h1 = ln(layer.attentionNorm, lin(layer.attentionOutput, ctx) + x)
            let pre = lin(layer.intermediate, h1)
            let act = q(activation == .gelu ? pre.gelu() : (pre.square() * 0.125 + pre * 0.25) + 0.5)
            return (ln(layer.outputNorm, lin(layer.output, act) + h1), s)
        }
        #expect(maxAbsDiff(out.data, expected.0.data) == 0, "outputs differ from the reference")
        #expect(maxAbsDiff(scores.data, expected.1.data) == 0, "scores differ from the reference")
        // And the quantization is not a no-op at this resolution.
        let float = Tensor.withNoGrad { layer(x, mask: mask, training: false, rng: rng) }
        #expect(zip(float.data, out.data).contains { abs($0 - $1) > 1e-3 })
    }

    /// Embeddings: the summed lookups are encoded (quantized), then LayerNorm, quantized again.
    @Test func embeddingsQuantizeTheSumAndTheLayerNorm() {
        let model = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 7))
        let e = model.embeddings
        for t in [e.word, e.position, e.tokenType] { t.data = t.data.map { $0 * 20 } }  // well above the grid step
        let fq = FakeQuantization(fracBits: 7, ringBits: 24)
        let out = Tensor.withNoGrad { e(batch, training: false, rng: SeededGenerator(seed: 0), quantization: fq) }
        let expected = Tensor.withNoGrad {
            let sum = Tensor.embedding(e.word, ids: batch.inputIds, shape: [2, 5])
                + Tensor.embedding(e.position, ids: (0..<10).map { Int32($0 % 5) }, shape: [2, 5])
                + Tensor.embedding(e.tokenType, ids: batch.tokenTypeIds, shape: [2, 5])
            return fq.activation(fq.activation(sum).layerNorm(
                gamma: fq.parameter(e.norm.weight), beta: fq.parameter(e.norm.bias), eps: e.norm.eps))
        }
        #expect(maxAbsDiff(out.data, expected.data) == 0)
    }

    @Test func modelOutputsAreOnTheGridAndGradientsReachEveryParameter() {
        let model = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 3))
        let float = Tensor.withNoGrad { model.forward(batch, training: false, rng: SeededGenerator(seed: 0)) }
        model.quantization = FakeQuantization(fracBits: 6, ringBits: 32, weightBits: 4)
        let trace = Tensor.withNoGrad { model.trace(batch) }
        for (i, h) in trace.hiddenStates.enumerated() { #expect(onGrid(h, frac: 6), "hidden state \(i)") }
        for (i, s) in trace.attentionScores.enumerated() { #expect(onGrid(s, frac: 6), "scores of layer \(i)") }
        let logits = Tensor.withNoGrad { model.forward(batch, training: false, rng: SeededGenerator(seed: 0)) }
        #expect(onGrid(logits, frac: 6))
        #expect(logits.data != float.data)
        // The stored weights are untouched by fake quantization.
        #expect(!onGrid(model.classifier.weight, frac: 6))

        let loss = Tensor.crossEntropy(logits: model.forward(batch, training: true, rng: SeededGenerator(seed: 5)), labels: [0, 2])
        loss.backward()
        for (name, t) in model.namedParameters() {
            let norm = t.grad.map { $0.map { $0 * $0 }.reduce(0, +) } ?? 0
            #expect(norm > 0, "no gradient reached \(name) through the straight-through estimator")
        }
    }

    @Test func smallRingClampsAndFineGridIsCloseToFloat() {
        let model = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 4))
        let float = Tensor.withNoGrad { model.trace(batch) }
        // Ring 10 with 8 fractional bits holds [-2, 2 - 2^-8]; LayerNorm outputs (up to
        // sqrt(H - 1) = 2.65 here) sometimes leave it and must be clamped.
        #expect(float.hiddenStates.contains { $0.data.contains { abs($0) > 2.01 } })
        model.quantization = FakeQuantization(fracBits: 8, ringBits: 10)
        let clamped = Tensor.withNoGrad { model.trace(batch) }
        #expect(clamped.hiddenStates.allSatisfy { $0.data.allSatisfy { $0 >= -2 && $0 <= 2 - 1.0 / 256 } })
        // 2^-30 resolution on the 64-bit ring: indistinguishable from float at 1e-5.
        model.quantization = FakeQuantization(fracBits: 30, ringBits: 64)
        let fine = Tensor.withNoGrad { model.trace(batch) }
        for (a, b) in zip(float.hiddenStates, fine.hiddenStates) { #expect(maxAbsDiff(a.data, b.data) < 1e-5) }
    }

    /// The default (no QAT) path: `trace` and `classify` reproduce `encode` and `forward` exactly.
    @Test func traceMatchesTheFloatForward() {
        let model = BertForSequenceClassification(config: tiny, rng: SeededGenerator(seed: 6))
        #expect(model.quantization == nil)
        let rng = SeededGenerator(seed: 0)
        let (hidden, trace, logits) = Tensor.withNoGrad {
            (model.encode(batch), model.trace(batch), model.forward(batch, training: false, rng: rng))
        }
        #expect(trace.hiddenStates.count == tiny.layers + 1 && trace.attentionScores.count == tiny.layers)
        #expect(trace.attentionScores[0].shape == [2, 2, 5, 5])
        #expect(trace.hiddenStates.last!.data == hidden.data)
        #expect(Tensor.withNoGrad { model.classify(hidden, training: false, rng: rng) }.data == logits.data)
    }

    /// On a 32-bit ring a linear layer's input is rounded `narrowInputShift` bits coarser and its product
    /// clamped to ±1024 (the runtime's narrow products), the bias added after; the gradient stops where
    /// the product clamps and passes elsewhere. On 64 bits neither happens.
    @Test func narrowRingRoundsInputsAndClampsLinearProducts() {
        let layer = Linear(inFeatures: 4, outFeatures: 3, rng: SeededGenerator(seed: 1))
        layer.weight.data = [100, 200, 300, 400, 0.5, 0.25, -0.125, 1, -300, -300, -300, -300]
        layer.bias.data = [1, 2, 3]
        let x = Tensor(shape: [1, 4], data: [1, 1.5, 0.5, 1 + 1.0 / 512], requiresGrad: true)
        let narrow = FakeQuantization(fracBits: 12, ringBits: 32)
        #expect(narrow.narrowLinear && narrow.narrowInputShift == 4 && narrow.narrowRightShift == 4)
        #expect(FakeQuantization(fracBits: 10, ringBits: 32).narrowRightShift == 0 && FakeQuantization(fracBits: 10, ringBits: 32).narrowInputShift == 0)
        let y = layer(x, quantization: narrow)
        // x rounds to 2^-8 (1 + 2^-9 → 1 + 2^-8), then: 100 + 300 + 150 + 400·(1 + 2^-8) = 951.5625 fits;
        // 0.5 + 0.375 − 0.0625 + 1.00390625 = 1.81640625; −300·4.00390625 clamps to −1024.
        let expected: [Float] = [952.5625, 3.81640625, -1021]
        #expect(y.data == expected)
        y.sum().backward()
        let g = x.grad!
        // Only the first two rows pass gradient (the third clamped): d/dx = w0 + w1.
        let passed: [Float] = [100.5, 200.25, 299.875, 401]
        #expect(g == passed)
        let wide = layer(x, quantization: FakeQuantization(fracBits: 12, ringBits: 64))
        #expect(wide.data[2] < -1100 && FakeQuantization(fracBits: 12, ringBits: 64).narrowLinear == false)
    }

    /// The Quad activation's square operand on Z_2^32: rounded to 2^−8 and clamped to ±128 (the narrow
    /// square's range), gradient straight through inside the range and 0 where clamped; unchanged on Z_2^64.
    @Test func narrowRingRoundsAndClampsTheQuadOperand() {
        let input: [Float] = [1 + 1.0 / 512 + 1.0 / 4096, -3.25, 200, -129]
        let x = Tensor(shape: [4], data: input, requiresGrad: true)
        let y = FakeQuantization(fracBits: 12, ringBits: 32).quadOperand(x)
        let expected: [Float] = [1 + 1.0 / 256, -3.25, 128 - 1.0 / 256, -128]
        #expect(y.data == expected)
        y.sum().backward()
        let passed: [Float] = [1, 1, 0, 0]
        #expect(x.grad! == passed)
        #expect(FakeQuantization(fracBits: 16, ringBits: 64).quadOperand(x).data == x.data)
    }
}
