import ArgumentParser
import CoDesign
import Foundation
import MPC
import Tensor

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (release builds give meaningful numbers).", subcommands: [Train.self, Secure.self, Ring.self, DCFKeys.self])

    struct Ring: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Throughput of the 64-bit ring matrix product (every secure linear layer and the dealer's triples), per kernel.",
            discussion: """
                Times RingMatmul.multiply with a prepared right operand (as a session weight is) on random words,
                for each kernel this CPU runs (scalar, and avx512 where the CPU has AVX-512 DQ), checks that
                the kernels give the same words, and prints multiply-adds per second. Default shapes: MiniLM's
                linear layers on 32 and 64 tokens, one [CLS] row, and an attention product.
                """)

        @Option(help: "Shapes m x k x n, comma-separated (e.g. 32x384x1536,1x384x384).")
        var shapes = "32x384x1152,32x384x1536,32x1536x384,64x384x1536,1x384x1536,32x32x32"
        @Option(help: "Seconds to spend per shape and kernel (at least one product).") var seconds = 1.0
        @OptionGroup var json: JSONOutputOptions

        func parsed() throws -> [(m: Int, k: Int, n: Int)] {
            try shapes.split(separator: ",").map { part in
                let d = part.split(separator: "x").compactMap { Int($0) }
                guard d.count == 3, d.allSatisfy({ $0 >= 1 }) else {
                    throw ValidationError("--shapes: '\(part)' is not m x k x n with positive integers (e.g. 32x384x1536)")
                }
                return (d[0], d[1], d[2])
            }
        }

        func validate() throws {
            _ = try parsed()
            guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        }

        func run() throws {
            var rows = [[String: Any]]()
            var g = SyntheticData(seed: 1)
            for (m, k, n) in try parsed() {
                let a = (0..<(m * k)).map { _ in g.next() }, b = RingMatmul.RightOperand((0..<(k * n)).map { _ in g.next() }, k: k, n: n)
                var results = [RingMatmul.Kernel: [UInt64]]()
                var row: [String: Any] = ["m": m, "k": k, "n": n]
                var line = String(format: "%5d x %5d x %5d", m, k, n)
                for kernel in RingMatmul.available {
                    results[kernel] = RingMatmul.multiply(a, b, m: m, kernel: kernel)
                    let calls = callsPerSecond(seconds: seconds) { _ = RingMatmul.multiply(a, b, m: m, kernel: kernel) }
                    let rate = Double(m * k * n) * calls
                    row[kernel.rawValue + "_macs_per_second"] = rate
                    line += String(format: "   %@ %6.2f G/s (%.3f ms)", kernel.rawValue, rate / 1e9, 1e3 / calls)
                }
                let same = results.values.allSatisfy { $0 == results[.scalar] }
                guard same else { throw ValidationError("the ring matmul kernels disagree on \(m)x\(k)x\(n)") }
                if let s = row["scalar_macs_per_second"] as? Double, let v = row["avx512_macs_per_second"] as? Double {
                    line += String(format: "   %.2fx", v / s)
                }
                rows.append(row)
                if !json.usesStdout { print(line) }
            }
            try json.write(["kernels": RingMatmul.available.map(\.rawValue), "default": RingMatmul.defaultKernel.rawValue, "shapes": rows])
        }
    }

    struct DCFKeys: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dcf",
            abstract: "Throughput of DCF key generation (the dealer) and evaluation (each party), per kernel.",
            discussion: """
                Every comparison (GeLU, exp and tanh splines, the octaves of reciprocal and inverse square root,
                ReLU, max, argmax) evaluates distributed comparison functions: each party walks one AES tree
                path per point, and the dealer generates both parties' trees. Times both for each kernel this
                CPU runs (swift, and aesni where the CPU has AES-NI), checks that the kernels agree, and prints
                keys and evaluations per second. Default widths: 17 bits (the splines' coarse comparisons, 5
                points per key), 31 (octaves, 22 points per key) and 63 (ReLU, 1 point).
                """)

        @Option(help: "Cases bits:pointsPerKey, comma-separated.") var cases = "17:5,31:22,63:1"
        @Option(help: "Keys per batch.") var count = 4096
        @Option(help: "Seconds per measurement (at least one batch).") var seconds = 1.0
        @OptionGroup var json: JSONOutputOptions

        func parsed() throws -> [(bits: Int, points: Int)] {
            try cases.split(separator: ",").map { part in
                let d = part.split(separator: ":").compactMap { Int($0) }
                guard d.count == 2, (1...64).contains(d[0]), d[1] >= 1 else {
                    throw ValidationError("--cases: '\(part)' is not bits:points with 1 <= bits <= 64 and points >= 1 (e.g. 17:5)")
                }
                return (d[0], d[1])
            }
        }

        func validate() throws {
            _ = try parsed()
            guard count >= 1 else { throw ValidationError("--count must be at least 1") }
            guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
        }

        func run() throws {
            var rows = [[String: Any]]()
            for (bits, points) in try parsed() {
                var row: [String: Any] = ["bits": bits, "points_per_key": points, "count": count]
                var line = String(format: "%2d bits, %2d points/key", bits, points)
                var outputs = [DCF.Kernel: [UInt64]]()
                for kernel in DCF.available {
                    let t = DCF.benchmark(bits: bits, count: count, pointsPerKey: points, kernel: kernel, seconds: seconds)
                    outputs[kernel] = t.outputs
                    row[kernel.rawValue + "_keys_per_second"] = t.keysPerSecond
                    row[kernel.rawValue + "_evaluations_per_second"] = t.evaluationsPerSecond
                    line += String(format: "   %@: keygen %6.3f M/s, eval %6.3f M/s", kernel.rawValue, t.keysPerSecond / 1e6, t.evaluationsPerSecond / 1e6)
                }
                guard outputs.values.allSatisfy({ $0 == outputs[.swift] }) else {
                    throw ValidationError("the DCF kernels disagree on \(bits)-bit keys")
                }
                if let s = row["swift_evaluations_per_second"] as? Double, let a = row["aesni_evaluations_per_second"] as? Double,
                   let sk = row["swift_keys_per_second"] as? Double, let ak = row["aesni_keys_per_second"] as? Double {
                    line += String(format: "   (%.2fx keygen, %.2fx eval)", ak / sk, a / s)
                }
                rows.append(row)
                if !json.usesStdout { print(line) }
            }
            try json.write(["kernels": DCF.available.map(\.rawValue), "default": DCF.defaultKernel.rawValue, "cases": rows])
        }
    }

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
