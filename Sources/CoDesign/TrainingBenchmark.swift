import Foundation
import Tensor
import Transformer

/// Plaintext training speed of an encoder stack from hidden states (`bench train`).
///
/// The measured step is the same work as PyTorch's `nn.TransformerEncoder` + `Linear`
/// + AdamW (`scripts/bench/torch_train.py`): L post-LN layers with exact softmax and
/// erf GeLU, dropout 0.1, on random B x S x H inputs, a classifier on the first token,
/// cross-entropy, backward, gradient clipping at 1.0 and one AdamW step.
public enum TrainingBenchmark {
    public struct Result: Sendable {
        public var secondsPerStep: Double
        public var stepsPerSecond: Double { 1 / secondsPerStep }
        public var tokensPerSecond: Double
        public var finalLoss: Float
    }

    /// Runs 3 warm-up steps, then times `steps` steps.
    public static func run(layers: Int, hidden: Int, heads: Int, intermediate: Int, seq: Int, batch: Int, steps: Int) -> Result {
        let config = BertConfig(layers: layers, hidden: hidden, heads: heads, intermediate: intermediate, numLabels: 2)
        let rng = SeededGenerator(seed: 1)
        let encoder = BertEncoder(config: config, rng: rng)
        let head = Linear(inFeatures: hidden, outFeatures: 2, rng: rng)
        let params = encoder.namedParameters(prefix: "encoder.") + head.namedParameters(prefix: "classifier.")
        let optimizer = AdamW(parameters: params.map(\.tensor), learningRate: 1e-4, weightDecay: 0.01)
        let x = Tensor.randn([batch, seq, hidden], std: 1, rng: rng)
        let labels = (0..<batch).map { Int32($0 % 2) }
        var loss: Float = 0
        func step() {
            optimizer.zeroGrad()
            let h = encoder(x, mask: nil, training: true, rng: rng)
            let l = Tensor.crossEntropy(logits: head(h.selectToken(0)), labels: labels)
            l.backward()
            clipGradNorm(params.map(\.tensor), maxNorm: 1)
            optimizer.step()
            loss = l.item
        }
        for _ in 0..<3 { step() }
        let start = Date()
        for _ in 0..<steps { step() }
        let perStep = Date().timeIntervalSince(start) / Double(steps)
        return Result(secondsPerStep: perStep, tokensPerSecond: Double(batch * seq) / perStep, finalLoss: loss)
    }
}
