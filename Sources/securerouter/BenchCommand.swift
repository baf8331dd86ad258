import ArgumentParser
import CoDesign
import Foundation
import MPC
import Tensor

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (release builds give meaningful numbers).", subcommands: [Train.self, Secure.self])

    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Plaintext training speed of a BERT encoder from random hidden states.",
            discussion: """
                Runs L encoder layers (post-LN, exact softmax and GeLU) on random S x H hidden states, a
                classifier on the first token, cross-entropy, backward and an AdamW step: the same work as
                PyTorch nn.TransformerEncoder + Linear + AdamW (scripts/bench/torch_train.py).
                """)

        @Option(help: "Encoder layers.") var layers: Int = 2
        @Option(help: "Hidden size.") var hidden: Int = 128
        @Option(help: "Attention heads.") var heads: Int = 2
        @Option(help: "Intermediate (FFN) size.") var inter: Int = 512
        @Option(help: "Sequence length.") var seq: Int = 64
        @Option(help: "Batch size.") var batch: Int = 32
        @Option(help: "Timed steps (after 3 warm-up steps).") var steps: Int = 20
        @OptionGroup var json: JSONOutputOptions

        func validate() throws {
            for (n, v) in [("layers", layers), ("hidden", hidden), ("heads", heads), ("inter", inter), ("seq", seq), ("batch", batch), ("steps", steps)] where v < 1 {
                throw ValidationError("--\(n) must be at least 1")
            }
            guard hidden % heads == 0 else { throw ValidationError("--hidden (\(hidden)) must be a multiple of --heads (\(heads))") }
        }

        func run() throws {
            Runtime.configureForTraining()
            let r = TrainingBenchmark.run(
                layers: layers, hidden: hidden, heads: heads, intermediate: inter, seq: seq, batch: batch, steps: steps)
            if !json.usesStdout {
                print(String(format: "bench train L=%d H=%d A=%d I=%d S=%d B=%d: %.3f s/step, %.2f steps/s, %.0f tokens/s (loss %.4f)",
                             layers, hidden, heads, inter, seq, batch, r.secondsPerStep, r.stepsPerSecond, r.tokensPerSecond, r.finalLoss))
            }
            try json.write([
                "layers": layers, "hidden": hidden, "heads": heads, "inter": inter, "seq": seq, "batch": batch, "steps": steps,
                "seconds_per_step": r.secondsPerStep, "steps_per_second": r.stepsPerSecond, "tokens_per_second": r.tokensPerSecond,
            ])
        }
    }
}
