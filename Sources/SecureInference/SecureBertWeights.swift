import Checkpoint
import Foundation
import MPC
import Tensor
import Transformer

/// Errors of secure inference set-up (model, queries), each one sentence for the user.
public struct SecureInferenceError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A checkpoint's weights in the form the secure runtime takes them (Double, linear weights `[in, out]`):
/// the server's private inputs of `BertProgram`.
public struct SecureBertWeights: Sendable {
    /// `[V, H]` word embeddings, `[P, H]` position embeddings, token type 0 `[H]`, embedding LayerNorm.
    public var word: [Double], position: [Double], tokenType0: [Double], embG: [Double], embB: [Double]
    /// Encoder layers and classifier (`EncoderWeights` layout).
    public var encoder: EncoderWeights
    /// Pooler `[H, H]` (`[in, out]`) and its bias.
    public var poolW: [Double], poolB: [Double]
    /// The public leading layers (`SecureBertShape.publicLayers`), which the client computes; `encoder`
    /// holds the private layers after them.
    public var publicLayers: [EncoderWeights.Layer] = []

    /// The secure shape of a checkpoint's model.
    /// - Throws: `SecureInferenceError` if the variant or ring has no secure implementation.
    public static func shape(of config: CheckpointConfig) throws -> SecureBertShape {
        let a = config.architecture
        guard let softmax = SecureSoftmax(rawValue: a.softmax.rawValue) else {
            throw SecureInferenceError("softmax variant '\(a.softmax.rawValue)' has no secure implementation (supported: \(SecureSoftmax.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let activation = SecureActivation(rawValue: a.activation.rawValue) else {
            throw SecureInferenceError("activation '\(a.activation.rawValue)' has no secure implementation (supported: \(SecureActivation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let ring = config.quantization.ringBits
        guard ring == 64 || ring == 32 else {
            throw SecureInferenceError("ring_bits \(ring): the secure runtime runs on Z_2^64, or with its linear layers on Z_2^32")
        }
        let ok = ring == 32 ? FixedPoint.supportedFracBits.lowerBound...FixedPoint.narrowFracBits : FixedPoint.supportedFracBits
        guard ok.contains(config.quantization.fracBits) else {
            throw SecureInferenceError("frac_bits \(config.quantization.fracBits) is outside the runtime's \(ok.lowerBound)...\(ok.upperBound)"
                                       + (ring == 32 ? " for ring_bits 32" : ""))
        }
        let k = a.publicLayerCount
        if k > 0 {
            guard config.hasPublicEmbedding, k < a.layers, !(0..<k).contains(where: { a.heads(inLayer: $0) != a.heads || a.intermediate(inLayer: $0) != a.intermediate }) else {
                throw SecureInferenceError("public_layers \(k) needs a public embedding, unpruned public layers and at least one private layer after them")
            }
        }
        var shape = SecureBertShape(layers: a.layers - k, hidden: a.hidden, heads: a.heads, intermediate: a.intermediate,
                                    classes: a.numLabels, vocab: a.vocabSize, maxPosition: a.maxPosition, softmax: softmax,
                                    activation: activation, layerNormEps: Double(a.layerNormEps), fracBits: config.quantization.fracBits)
        if config.hasPublicEmbedding { shape.embedding = CheckpointConfig.publicEmbedding }
        if ring == 32 { shape.ringBits = 32 }
        shape.maxLength = config.maxLength
        if k > 0 { shape.publicLayers = k }
        if a.isPruned {
            shape.layerHeads = Array(a.headsPerLayer[k...])
            shape.layerIntermediate = Array(a.intermediatePerLayer[k...])
        }
        return shape
    }

    /// The weights of a float model (its HF-named parameters).
    public init(model: BertForSequenceClassification) {
        let p = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.tensor) })
        let c = model.config, h = c.hidden
        func v(_ name: String) -> [Double] { p[name]!.data.map(Double.init) }
        /// A Linear weight `[out, in]` as `[in, out]`.
        func t(_ name: String) -> [Double] {
            let w = p[name]!, (o, i) = (w.shape[0], w.shape[1])
            var out = [Double](repeating: 0, count: o * i)
            for r in 0..<o { for col in 0..<i { out[col * o + r] = Double(w.data[r * i + col]) } }
            return out
        }
        word = v("bert.embeddings.word_embeddings.weight")
        position = v("bert.embeddings.position_embeddings.weight")
        tokenType0 = Array(v("bert.embeddings.token_type_embeddings.weight")[0..<h])
        embG = v("bert.embeddings.LayerNorm.weight")
        embB = v("bert.embeddings.LayerNorm.bias")
        let all = (0..<c.layers).map { l -> EncoderWeights.Layer in
            let pre = "bert.encoder.layer.\(l)"
            let (q, k, val) = (t(pre + ".attention.self.query.weight"), t(pre + ".attention.self.key.weight"), t(pre + ".attention.self.value.weight"))
            let aw = c.heads(inLayer: l) * c.headDim   // the layer's attention width
            var qkv = [Double](repeating: 0, count: h * 3 * aw)
            for i in 0..<h {
                for j in 0..<aw {
                    qkv[i * 3 * aw + j] = q[i * aw + j]
                    qkv[i * 3 * aw + aw + j] = k[i * aw + j]
                    qkv[i * 3 * aw + 2 * aw + j] = val[i * aw + j]
                }
            }
            return EncoderWeights.Layer(
                qkvW: qkv,
                qkvB: v(pre + ".attention.self.query.bias") + v(pre + ".attention.self.key.bias") + v(pre + ".attention.self.value.bias"),
                outW: t(pre + ".attention.output.dense.weight"), outB: v(pre + ".attention.output.dense.bias"),
                ln1G: v(pre + ".attention.output.LayerNorm.weight"), ln1B: v(pre + ".attention.output.LayerNorm.bias"),
                ffn1W: t(pre + ".intermediate.dense.weight"), ffn1B: v(pre + ".intermediate.dense.bias"),
                ffn2W: t(pre + ".output.dense.weight"), ffn2B: v(pre + ".output.dense.bias"),
                ln2G: v(pre + ".output.LayerNorm.weight"), ln2B: v(pre + ".output.LayerNorm.bias"))
        }
        let pruned = c.isPruned, k = c.publicLayerCount
        let shape = EncoderShape(layers: c.layers - k, hidden: h, heads: c.heads, intermediate: c.intermediate, seq: 1,
                                 classes: c.numLabels, layerNormEps: Double(c.layerNormEps),
                                 layerHeads: pruned ? Array(c.headsPerLayer[k...]) : nil,
                                 layerIntermediate: pruned ? Array(c.intermediatePerLayer[k...]) : nil)
        publicLayers = Array(all[..<k])
        encoder = EncoderWeights(shape: shape, layers: Array(all[k...]), clsW: t("classifier.weight"), clsB: v("classifier.bias"))
        poolW = t("bert.pooler.dense.weight")
        poolB = v("bert.pooler.dense.bias")
    }

    /// Loads `spec` (`PATH`, or `PATH::models/NAME` for a bundle member) and checks it is the model
    /// the session was set up for (sizes and variant; the fixed point is the session's).
    /// - Throws: `SecureInferenceError` or the checkpoint's own errors, naming the file.
    public init(checkpoint spec: String, expected: SecureBertShape) throws {
        let parts = spec.components(separatedBy: "::")
        let path = parts[0], group = parts.count > 1 ? parts[1] : nil
        guard FileManager.default.fileExists(atPath: path) else { throw SecureInferenceError("no such checkpoint: \(path)") }
        let ckpt = try ModelCheckpoint.read(from: path, group: group)
        let config = try CheckpointConfig.decode(ckpt.configJSON, path: path)
        var found = try Self.shape(of: config)
        // The session's fixed point may override the checkpoint's (secure-eval --frac-bits, --ring-bits).
        (found.fracBits, found.ringBits) = (expected.fracBits, expected.ringBits)
        guard found == expected else {
            throw SecureInferenceError("\(path) holds a model of shape \(found), but the session was set up for \(expected)")
        }
        self.init(model: try BertForSequenceClassification.load(checkpoint: ckpt, path: path))
    }

    /// Random weights at a trained model's scale (synthetic sessions and tests).
    static func random(_ m: SecureBertShape, generator g: inout SyntheticData) -> SecureBertWeights {
        let h = m.hidden
        let enc = EncoderWeights.random(m.encoder(seq: 1), generator: &g)
        var publicLayers: [EncoderWeights.Layer] = []
        if let k = m.publicLayers {
            var s = m.encoder(seq: 1)
            (s.layers, s.layerHeads, s.layerIntermediate) = (k, nil, nil)
            publicLayers = EncoderWeights.random(s, generator: &g).layers
        }
        var w = SecureBertWeights(
            word: g.doubles(m.vocab * h, range: 1.7), position: g.doubles(m.maxPosition * h, range: 0.2),
            tokenType0: g.doubles(h, range: 0.1), embG: g.doubles(h, range: 0.25).map { 1 + $0 }, embB: g.doubles(h, range: 0.2),
            encoder: enc, poolW: g.doubles(h * h, range: (3.0 / Double(h)).squareRoot()), poolB: g.doubles(h, range: 0.1))
        w.publicLayers = publicLayers
        return w
    }

    init(word: [Double], position: [Double], tokenType0: [Double], embG: [Double], embB: [Double], encoder: EncoderWeights,
         poolW: [Double], poolB: [Double]) {
        self.word = word; self.position = position; self.tokenType0 = tokenType0; self.embG = embG; self.embB = embB
        self.encoder = encoder; self.poolW = poolW; self.poolB = poolB
    }

    /// The server's private inputs of `BertProgram` (`rows`: position rows needed, the widest bucket).
    public func ringInputs(_ m: SecureBertShape, rows: Int) -> [String: RingTensor] {
        let fp = FixedPoint(fracBits: m.fracBits), h = m.hidden
        var out = encoder.ringInputs(fixedPoint: fp)
        out["emb.word"] = fp.encode(word, shape: [m.vocab, h])
        out["emb.pos"] = fp.encode((0..<rows * h).map { position[$0] + tokenType0[$0 % h] }, shape: [rows, h])
        out["emb.ln.g"] = fp.encode(embG, shape: [h])
        out["emb.ln.b"] = fp.encode(embB, shape: [h])
        out["pool.w"] = fp.weights.encode(poolW, shape: [h, h])
        out["pool.b"] = fp.encode(poolB, shape: [h])
        for (l, w) in publicLayers.enumerated() {
            let values = [w.qkvW, w.qkvB, w.outW, w.outB, w.ln1G, w.ln1B, w.ffn1W, w.ffn1B, w.ffn2W, w.ffn2B, w.ln2G, w.ln2B]
            for ((name, shape), x) in zip(Self.publicLayerTensors(m, layer: l), values) {
                out[name] = fp.encode(input: name, x, shape: shape)
            }
        }
        return out
    }

    /// The server inputs of public layer `l` (opened to the client) and their shapes, in `EncoderWeights.Layer`
    /// order: `pub.<l>.qkv.w [H, 3H]`, `.qkv.b`, `.out.w`, `.out.b`, `.ln1.g`, `.ln1.b`, `.ffn1.w [H, I]`, `.ffn1.b`,
    /// `.ffn2.w`, `.ffn2.b`, `.ln2.g`, `.ln2.b`.
    static func publicLayerTensors(_ m: SecureBertShape, layer l: Int) -> [(name: String, shape: [Int])] {
        let (h, i) = (m.hidden, m.intermediate)
        let shapes: [(String, [Int])] = [("qkv.w", [h, 3 * h]), ("qkv.b", [3 * h]), ("out.w", [h, h]), ("out.b", [h]), ("ln1.g", [h]),
                                         ("ln1.b", [h]), ("ffn1.w", [h, i]), ("ffn1.b", [i]), ("ffn2.w", [i, h]), ("ffn2.b", [h]),
                                         ("ln2.g", [h]), ("ln2.b", [h])]
        return shapes.map { ("pub.\(l).\($0.0)", $0.1) }
    }

    /// Public layer `l` of a model of shape `m`, decoded from its inputs by `value(name, shape)`, which is
    /// called for all twelve tensors in a fixed order (on every party: opening them is a protocol step);
    /// nil where `value` returns nil (a party that does not see them).
    static func publicLayer(_ l: Int, _ m: SecureBertShape, _ value: (String, [Int]) throws -> [Double]?) rethrows -> EncoderWeights.Layer? {
        let v = try publicLayerTensors(m, layer: l).map { try value($0.name, $0.shape) }
        guard v.allSatisfy({ $0 != nil }) else { return nil }
        let t = v.map { $0! }
        return EncoderWeights.Layer(qkvW: t[0], qkvB: t[1], outW: t[2], outB: t[3], ln1G: t[4], ln1B: t[5], ffn1W: t[6], ffn1B: t[7],
                                    ffn2W: t[8], ffn2B: t[9], ln2G: t[10], ln2B: t[11])
    }
}

/// The client's private queries of a `BertProgram` session: token ids padded to each query's bucket,
/// and the real lengths. Written by the launcher to a file only the client process reads.
public struct QueryFile: Codable, Sendable, Equatable {
    /// One row per query, padded with the pad id to its bucket.
    public var ids: [[Int]]
    /// Real tokens at the start of each row.
    public var lengths: [Int]

    public init(ids: [[Int]], lengths: [Int]) {
        self.ids = ids
        self.lengths = lengths
    }

    public static func read(_ path: String) throws -> QueryFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw SecureInferenceError("cannot read the query file \(path)") }
        do { return try JSONDecoder().decode(QueryFile.self, from: data) } catch {
            throw SecureInferenceError("\(path) is not a query file: \(error)")
        }
    }

    public func write(to path: String) throws {
        try JSONEncoder.sorted.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The client's ring inputs (`q{i}.ids`, `q{i}.mask`), checked against the session's buckets.
    public func ringInputs(buckets: [Int]) throws -> [String: RingTensor] {
        guard ids.count == buckets.count, lengths.count == buckets.count else {
            throw SecureInferenceError("the query file has \(ids.count) queries, the session \(buckets.count)")
        }
        var out = [String: RingTensor]()
        for (i, s) in buckets.enumerated() {
            guard ids[i].count == s, (1...s).contains(lengths[i]) else {
                throw SecureInferenceError("query \(i): \(ids[i].count) ids and length \(lengths[i]) do not fit bucket \(s)")
            }
            out["q\(i).ids"] = RingTensor(shape: [s], data: ids[i].map { UInt64(bitPattern: Int64($0)) })
            out["q\(i).mask"] = RingTensor(shape: [s], data: (0..<s).map { $0 < lengths[i] ? 1 : 0 })
        }
        return out
    }
}
