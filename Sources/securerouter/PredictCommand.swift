import MPC
import ArgumentParser
import CoDesign
import Foundation
import Router
import SecureInference
import TextData
import Tensor
import Transformer

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Plaintext inference: one prediction per line of text.",
        discussion: """
            Human-readable lines on stdout; with --json, {"predictions":[{"label":int,"logits":[float]}...]}.
            Inputs longer than the model's max length are truncated (a warning says how many).

            --bundle with a router and no --model routes each query as secure-eval --routing does: the router's \
            features (the [CLS] state after the first layers of its feature member), its MLP with the runtime's \
            tanh, utility minus lambda times the member's predicted cost at the query's length bucket, then the \
            chosen member on the padded query. Lines show the member that answered; JSON adds "model" and \
            "utilities" (one per member, in the router's order). With --fixed-point the router and the members are \
            emulated on the runtime's grid too (one fractional-bit count for the pool, as one secure session runs: \
            --frac-bits for a pool of mixed fixed points).

            --fixed-point emulates the secure runtime's arithmetic in plaintext (FixedPointEmulation): weights and every value the runtime truncates rounded to its fixed point (frac_bits of the checkpoint's quantization), its approximations (GeLU, exp and tanh splines; reciprocal and inverse square root by octave and Newton steps), its query pre-scaling and its padding to length buckets. It explains secure/plaintext disagreements: what the emulation also predicts is approximation, what it does not is a protocol failure.
            """)

    @Option(help: "A single-model checkpoint (.h5).")
    var checkpoint: String?

    @Option(help: "A bundle (.h5) written by export.")
    var bundle: String?

    @Option(help: "With --bundle: run this pool member for every query (default: route with the bundle's router; without one, the first member).")
    var model: String?

    @Option(help: "Text file, one query per line.")
    var textFile: String

    @Option(help: "Sequences per forward pass.")
    var batchSize: Int = 32

    @Flag(help: "Emulate the secure runtime's fixed-point ring arithmetic (see the discussion).")
    var fixedPoint = false

    /// With --fixed-point: as secure-eval's.
    @OptionGroup var overrides: FixedPointOverrides

    @OptionGroup var json: JSONOutputOptions

    func validate() throws {
        guard (checkpoint == nil) != (bundle == nil) else {
            throw ValidationError("give exactly one of --checkpoint FILE.h5 or --bundle FILE.h5")
        }
        if model != nil && bundle == nil { throw ValidationError("--model applies only with --bundle") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        if overrides.isSet {
            guard fixedPoint else { throw ValidationError("--frac-bits and --ring-bits apply only with --fixed-point") }
            try overrides.check()
        }
    }

    func run() throws {
        Runtime.configureForTraining()
        if let bundle, model == nil, PoolBundle.hasRouter(bundle) { return try runRouted(bundle) }
        let loaded = try loadModel(path: checkpoint ?? bundle!, bundleMember: model, isBundle: bundle != nil)
        let lines = try readQueryLines(textFile)
        let maxLength = loaded.config.maxLength ?? loaded.config.architecture.maxPosition
        let truncated = lines.filter { loaded.tokenizer.tokenIds($0).count + 2 > maxLength }.count
        if truncated > 0 { printErr("predict: warning: \(truncated) of \(lines.count) lines truncated to \(maxLength) tokens") }
        let data = Batcher(
            examples: lines.map { Example(text: $0, pair: nil, label: 0) }, tokenizer: loaded.tokenizer,
            maxLength: maxLength, batchSize: batchSize)
        let logits: [[Float]]
        if fixedPoint {
            var shape: SecureBertShape
            do { shape = try SecureBertWeights.shape(of: loaded.config) } catch { throw ValidationError("--fixed-point: \(error)") }
            try overrides.apply(to: &shape, model: checkpoint ?? model ?? bundle!)
            let emulation = FixedPointEmulation(weights: SecureBertWeights(model: loaded.model), model: shape)
            let (q, _, _) = LengthBuckets.encode(lines, tokenizer: loaded.tokenizer, maxPosition: min(maxLength, shape.maxPosition))
            logits = zip(q.ids, q.lengths).map { emulation.logits(ids: $0, length: $1).map(Float.init) }
        } else {
            logits = Evaluation.logits(model: loaded.model, data: data, batchSize: batchSize)
        }
        let labels = logits.map(Evaluation.argmax)
        if !json.usesStdout {
            for (i, (l, z)) in zip(labels, logits).enumerated() {
                let name = l < loaded.config.labels.count ? loaded.config.labels[l] : "\(l)"
                print("\(i + 1)\t\(l)\t\(name)\t" + z.map { String(format: "%.5f", $0) }.joined(separator: " "))
            }
        }
        try json.write(["predictions": zip(labels, logits).map { ["label": $0, "logits": $1.map(Double.init)] as [String: Any] }])
    }

    /// Plaintext routing with the bundle's router (`RoutedPipeline`).
    func runRouted(_ bundle: String) throws {
        let (pipe, shapesRead, source) = try PoolBundle.pipeline(bundle)
        var shapes = shapesRead
        if fixedPoint {
            for j in shapes.indices { try overrides.apply(to: &shapes[j], model: pipe.names[j]) }
            guard Set(shapes.map(\.fracBits)).count == 1 else {
                throw ValidationError("the pool members use different fractional bits (\(shapes.map(\.fracBits))); pass --frac-bits to emulate them as one session")
            }
        }
        let tokenizer = try WordPieceTokenizer(tokens: source.vocab, doLowerCase: source.doLowerCase)
        let lines = try readQueryLines(textFile)
        let (q, buckets, truncated) = LengthBuckets.encode(lines, tokenizer: tokenizer, maxPosition: LengthBuckets.inputLimit(shapes))
        if truncated > 0 { printErr("predict: warning: \(truncated) of \(lines.count) lines truncated to \(buckets.max()!) tokens") }
        let decisions = fixedPoint ? try pipe.decideFixedPoint(q, buckets: buckets, shapes: shapes) : try pipe.decide(q, buckets: buckets)
        let labels = pipe.models[0].config.numLabels
        if !json.usesStdout {
            for (i, d) in decisions.enumerated() {
                print("\(i + 1)\t\(d.label)\t\(pipe.names[d.member])\t" + d.logits.map { String(format: "%.5f", $0) }.joined(separator: " ")
                      + "\tutilities " + d.utilities.map { String(format: "%.3f", $0) }.joined(separator: " "))
            }
            let hist = pipe.names.indices.map { m in "\(pipe.names[m]) \(decisions.filter { $0.member == m }.count)" }
            printErr("predict: routed \(decisions.count) queries (\(labels) labels): " + hist.joined(separator: ", "))
        }
        try json.write(["predictions": decisions.map {
            ["label": $0.label, "logits": $0.logits.map(Double.init), "model": pipe.names[$0.member], "utilities": $0.utilities, "routing_margin": $0.margin] as [String: Any]
        }])
    }
}
