import Checkpoint
import CostModel
import Foundation
import MPC

/// Public description of a BERT classifier run under MPC: sizes and variant. Everything here is known
/// to all three roles; the weights are the server's private input, the token ids the client's.
public struct SecureBertShape: Codable, Sendable, Equatable {
    public var layers: Int, hidden: Int, heads: Int, intermediate: Int, classes: Int
    /// Pruned models: each layer's heads and feed-forward width (nil: uniform `heads`, `intermediate`).
    public var layerHeads: [Int]?, layerIntermediate: [Int]?
    /// Rows of the word-embedding table.
    public var vocab: Int
    /// Rows of the position-embedding table (the largest bucket must fit).
    public var maxPosition: Int
    public var softmax: SecureSoftmax
    public var activation: SecureActivation
    public var layerNormEps: Double
    /// Fractional bits of the fixed-point encoding (ring Z_2^64).
    public var fracBits: Int
    /// `"public"`: the embedding group is public (`PublicEmbedding`) and the client embeds its text in
    /// plaintext; nil: private tables, looked up under MPC.
    public var embedding: String?
    /// Ring of the linear layers: 32 for a model trained for Z_2^32 (`EncoderShape.ringBits`), nil or 64.
    public var ringBits: Int?
    /// The length the model was trained at (the checkpoint's `max_length`): queries are truncated to the
    /// smallest bucket that holds it (`inputLimit`), so the secure run reads what the model was trained on
    /// and what `predict` reads; nil: the largest bucket the position table allows.
    public var maxLength: Int?
    /// Leading layers of the checkpoint that are public (`BertConfig.publicLayers`): the client computes
    /// them after its public embedding, in plaintext, and `layers` counts the private layers after them
    /// (nil: none). Needs a public embedding.
    public var publicLayers: Int?
    /// Whether the linear layers run on Z_2^32.
    public var narrowLinear: Bool { ringBits == 32 }
    /// Whether the client embeds its text itself (`embedding == "public"`).
    public var hasPublicEmbedding: Bool { embedding == CheckpointConfig.publicEmbedding }

    public init(layers: Int, hidden: Int, heads: Int, intermediate: Int, classes: Int, vocab: Int, maxPosition: Int,
                softmax: SecureSoftmax = .exact, activation: SecureActivation = .gelu, layerNormEps: Double = 1e-12,
                fracBits: Int = 16, layerHeads: [Int]? = nil, layerIntermediate: [Int]? = nil) {
        self.layerHeads = layerHeads
        self.layerIntermediate = layerIntermediate
        self.layers = layers
        self.hidden = hidden
        self.heads = heads
        self.intermediate = intermediate
        self.classes = classes
        self.vocab = vocab
        self.maxPosition = maxPosition
        self.softmax = softmax
        self.activation = activation
        self.layerNormEps = layerNormEps
        self.fracBits = fracBits
    }

    enum CodingKeys: String, CodingKey {
        case layers, hidden, heads, intermediate, classes, vocab, softmax, activation
        case layerHeads = "layer_heads", layerIntermediate = "layer_intermediate"
        case maxPosition = "max_position", layerNormEps = "layer_norm_eps", fracBits = "frac_bits", embedding
        case ringBits = "ring_bits", maxLength = "max_length", publicLayers = "public_layers"
    }

    /// The widest bucket this model's queries use: the smallest usable bucket holding `maxLength`.
    public var inputLimit: Int {
        let usable = LengthBuckets.usable(maxPosition: maxPosition)
        return maxLength.flatMap { m in usable.first { $0 >= m } } ?? usable.last!
    }

    /// The encoder part for one sequence bucket.
    public func encoder(seq: Int) -> EncoderShape {
        EncoderShape(layers: layers, hidden: hidden, heads: heads, intermediate: intermediate, seq: seq, classes: classes,
                     softmax: softmax, activation: activation, layerNormEps: layerNormEps, layerHeads: layerHeads,
                     layerIntermediate: layerIntermediate, ringBits: ringBits)
    }
}

/// The cost and outcome of one query of a `BertProgram` session, as one party saw it.
public struct QueryOutcome: Codable, Sendable, Equatable {
    /// Position of the query in the session.
    public var index: Int
    /// The predicted class (client only; nil on the server).
    public var label: Int?
    /// The logits, when the program opens them to the client (`BertProgram.revealLogits`: tests and
    /// error measurements only).
    public var logits: [Double]?
    /// This party's counters over the query: seconds (online, after the query's offline records were
    /// received when preprocessing), bytes sent and received, rounds, offline bytes received.
    public var cost: CostSample
    /// The same per layer type (`BertProgram.Section`).
    public var sections: [String: CostSample]
    /// Queries computed together with this one (stacked, same bucket): seconds and rounds are the
    /// batch's, bytes are the batch's divided by this count.
    public var batch: Int = 1
}

extension CostSample {
    /// Per-section cost between two profiles of a party (`SecureBackend.profile`), each divided among
    /// `n` stacked queries; unchanged sections and the offline preload are left out.
    static func sections(from before: [String: CostSample], to after: [String: CostSample], share n: Int = 1) -> [String: CostSample] {
        after.reduce(into: [String: CostSample]()) { out, kv in
            let d = kv.value - (before[kv.key] ?? CostSample())
            if d != CostSample() && kv.key != PartyBackend.preloadSection { out[kv.key] = d.share(of: n) }
        }
    }

    /// One query's part of a batch of `n`: the same seconds and rounds, 1/n of the bytes.
    func share(of n: Int) -> CostSample {
        CostSample(seconds: seconds, bytesSent: bytesSent / n, bytesReceived: bytesReceived / n, rounds: rounds, offlineBytes: offlineBytes / n)
    }
}

/// Encrypted inference of a BERT sequence classifier (HF `BertForSequenceClassification`) over a list
/// of queries in one session: the server's weights are masked once (setup), then each query runs
/// embedding, encoder, pooler, classifier and argmax under MPC, and only the label is opened, to the client.
///
/// Public: the shape and variant, and each query's length bucket (`buckets`, in order). Private to the
/// client: the token ids (`q{i}.ids [S]`, integers) and padding mask (`q{i}.mask [S]`, 0/1 integers),
/// so the server learns the bucket and nothing else about the text. Private to the server: `emb.word
/// [V, H]`, `emb.pos [P, H]` (position rows plus the token-type-0 row), `emb.ln.g/.b`, the encoder
/// weights named as in `EncoderProgram`, `pool.w [H, H]`, `pool.b`, `cls.w [H, C]`, `cls.b`.
///
/// Embedding: `lookupRows` (the client's one-hot times the masked table: 1 round, 8·S·V bytes), the
/// server adds its position rows to its share (free), LayerNorm. Padding: keys beyond the real length
/// are hidden in attention by the client alone (exact softmax: it offsets its share of their scores) or
/// by a product with the shared keep vector (2Quad). Each query ends at a unit boundary, so the parties
/// can read that query's dealer records before its clock starts and report its cost apart.
public struct BertProgram: SecureProgram, Equatable {
    /// `preShift` of the embedding's LayerNorm (`Party.layerNorm`): its rows have variances down to 0.003, so
    /// it normalises 8·d, whose mean and variance round 8x and 64x more finely (|8d| stays small there).
    public static let embeddingNormShift = -3
    public static let name = "bert"
    public var model: SecureBertShape
    /// The public length bucket of each query, in order.
    public var buckets: [Int]
    /// Also open each query's logits to the client (tests and error measurements; real queries do not).
    public var revealLogits: Bool
    /// Consecutive queries of the same bucket computed together, at most this many (1: one at a time).
    /// A batch costs the same bytes as its queries one by one but its rounds once.
    public var batch: Int

    public init(model: SecureBertShape, buckets: [Int], revealLogits: Bool = false, batch: Int = 1) {
        self.model = model
        self.buckets = buckets
        self.revealLogits = revealLogits
        self.batch = batch
    }

    /// Query indices grouped into batches: consecutive queries with the same bucket, at most `batch` each.
    public var groups: [[Int]] {
        var out = [[Int]]()
        for (i, s) in buckets.enumerated() {
            if let last = out.last, buckets[last[0]] == s, last.count < Swift.max(batch, 1) { out[out.count - 1].append(i) } else { out.append([i]) }
        }
        return out
    }

    public var fixedPoint: FixedPoint { FixedPoint(fracBits: model.fracBits) }

    /// Why this program cannot run, or nil.
    public var problem: String? {
        if let p = model.encoder(seq: 1).problem { return p }
        if model.vocab < 1 { return "the vocabulary is empty" }
        if batch < 1 { return "batch must be at least 1" }
        if let b = buckets.first(where: { $0 < 1 || $0 > model.maxPosition }) {
            return "bucket \(b) outside 1...\(model.maxPosition) (the position table)"
        }
        return nil
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decode(SecureBertShape.self, forKey: .model)
        buckets = try c.decode([Int].self, forKey: .buckets)
        revealLogits = try c.decodeIfPresent(Bool.self, forKey: .revealLogits) ?? false
        batch = try c.decodeIfPresent(Int.self, forKey: .batch) ?? 1
        if let p = problem { throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: p)) }
    }
    enum CodingKeys: String, CodingKey { case model, buckets, batch, revealLogits = "reveal_logits" }

    /// Profile sections: the encoder's (`EncoderProgram.Section`) plus the embedding.
    public enum Section {
        public static let embedding = "embedding"
    }

    public func run(on b: some SecureBackend) throws -> [QueryOutcome] {
        let m = model
        b.enterSection(EncoderProgram.Section.setup)
        let bert = try SecureBert(m, widest: buckets.max() ?? 1, on: b)
        b.beginOnline()
        _ = try b.boundary()
        var outcomes = [QueryOutcome]()
        var before = b.profile()
        for group in groups {
            let (s, g) = (buckets[group[0]], group.count)
            let state = try bert.encode(bert.embed(group, seq: s, on: b), upTo: m.layers, on: b)
            let logits = try bert.logits(state, on: b)                                                 // [g, C]
            let (labels, opened) = try b.section(EncoderProgram.Section.head) { () throws -> ([Int]?, [Double]?) in
                let opened = revealLogits ? try b.reveal(logits, to: .client).map { fixedPoint.decode($0) } : nil
                let (_, oneHot) = try b.argmax(logits)
                return (try b.revealIndex(oneHot, to: .client), opened)
            }
            let sections = CostSample.sections(from: before, to: b.profile(), share: g)
            let cost = try b.boundary().share(of: g)
            before = b.profile()
            for (k, i) in group.enumerated() {
                let c = m.classes
                let outcome = QueryOutcome(index: i, label: labels?[k], logits: opened.map { Array($0[(k * c)..<((k + 1) * c)]) },
                                           cost: cost, sections: sections, batch: g)
                if b.partyID != nil, let line = try? String(decoding: JSONEncoder.sorted.encode(outcome), as: UTF8.self) {
                    b.emit(line)
                }
                outcomes.append(outcome)
            }
        }
        return outcomes
    }

    public func syntheticInputs(for party: PartyID, seed: UInt64) -> [String: RingTensor] {
        var g = SyntheticData(seed: seed)
        switch party {
        case .client:
            var out = [String: RingTensor]()
            for (i, s) in buckets.enumerated() {
                let valid = 1 + g.int(below: s)
                let ids = (0..<s).map { $0 < valid ? UInt64(g.int(below: model.vocab)) : 0 }
                out["q\(i).ids"] = RingTensor(shape: [s], data: ids)
                out["q\(i).mask"] = RingTensor(shape: [s], data: (0..<s).map { $0 < valid ? 1 : 0 })
            }
            return out
        case .server:
            return SecureBertWeights.random(model, generator: &g).ringInputs(model, rows: buckets.max() ?? 1)
        }
    }

    /// Server: `file` is a checkpoint (`PATH`, or `PATH::models/NAME` for a bundle member). Client: a JSON
    /// file `{"ids": [[Int]], "lengths": [Int]}` with one padded id row per bucket (`QueryFile`).
    public func inputs(for party: PartyID, file: String) throws -> [String: RingTensor] {
        switch party {
        case .server:
            let weights = try SecureBertWeights(checkpoint: file, expected: model)
            return weights.ringInputs(model, rows: buckets.max() ?? 1)
        case .client:
            return try QueryFile.read(file).ringInputs(buckets: buckets)
        }
    }
}

extension JSONEncoder {
    /// Compact JSON with sorted keys.
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }
}

extension SecureBertShape {
    /// The cost model's prediction for `batch` stacked queries of bucket `seq` (`CostModel.bertQuery`,
    /// with this model's vocabulary and embedding kind), per section.
    public func predictedCost(seq: Int, batch: Int = 1, revealLogits: Bool = false) -> [String: Cost] {
        var out = CostModel.bertQuery(encoder(seq: seq), vocab: vocab, publicEmbedding: hasPublicEmbedding, batch: batch, revealLogits: revealLogits)
        if let k = publicLayers, k > 0 {
            out["embedding", default: Cost()].clientMACs += Double(batch) * PublicEmbedding.macs(layers: k, seq: seq, hidden: hidden, intermediate: intermediate)
        }
        return out
    }
}
