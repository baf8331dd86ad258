import Foundation
import Testing
import Tensor
import Transformer

/// Training-step timing (encoder from random hidden states + classifier on
/// the first token, CE, backward, clip, AdamW), the shapes of `bench train`.
/// Gated: `SECUREROUTER_BENCH=1 swift test -c release --filter TrainStepBenchmark`.
/// Reports time, asserts nothing (wall time depends on the machine).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["SECUREROUTER_BENCH"] != nil))
struct TrainStepBenchmark {
    @Test(arguments: [(2, 128, 2, 512), (6, 384, 12, 1536)])
    func encoderTrainStep(layers: Int, hidden: Int, heads: Int, intermediate: Int) {
        Runtime.configureForTraining()
        let (b, s, steps) = (32, 64, 5)
        let config = BertConfig(layers: layers, hidden: hidden, heads: heads, intermediate: intermediate)
        let rng = SeededGenerator(seed: 1)
        let encoder = BertEncoder(config: config, rng: rng)
        let head = Linear(inFeatures: hidden, outFeatures: 2, rng: rng)
        let params = encoder.namedParameters(prefix: "encoder").map(\.tensor) + [head.weight, head.bias]
        let opt = AdamW(parameters: params, learningRate: 1e-4)
        let x = Tensor.randn([b, s, hidden], rng: rng)
        let labels = (0..<b).map { Int32($0 % 2) }
        var start = DispatchTime.now()
        var lastLoss: Float = 0
        for step in 0..<(steps + 1) {
            if step == 1 { start = DispatchTime.now() }  // first step warms up allocations
            opt.zeroGrad()
            let loss = Tensor.crossEntropy(
                logits: head(encoder(x, mask: nil, training: true, rng: rng).selectToken(0)), labels: labels)
            loss.backward()
            clipGradNorm(params, maxNorm: 1)
            opt.step()
            lastLoss = loss.item
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        print("train step L=\(layers) H=\(hidden) A=\(heads) I=\(intermediate) S=\(s) B=\(b):",
              String(format: "%.1f ms/step, %.0f tokens/s (loss %.3f)", seconds / Double(steps) * 1000,
                     Double(b * s * steps) / seconds, lastLoss))
        #expect(lastLoss.isFinite)
    }
}
