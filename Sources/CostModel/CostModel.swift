import Foundation
import MPC

/// Analytic MPC cost of the secure transformer, layer type by layer type (the sections of the runtime's
/// profile), for given shapes, variant and sequence bucket: online bytes and rounds exactly as the
/// runtime counts them, and seconds from a calibrated compute model plus the network's latency and
/// bandwidth.
///
/// Bytes and rounds follow from the protocols' message sizes (`Ops`) and depend only on shapes, so they
/// are predicted exactly (`CostModelTests` compares them with sessions). Seconds are
/// `compute + rounds·RTT/2 + wire bytes/bandwidth`, with compute a linear function of the local work
/// (`Calibration`), fitted to measured runs on the machine at hand.
public enum CostModel {
    /// Section names, as in the runtime's profile (`EncoderProgram.Section`, `BertProgram.Section`).
    public static let sections = ["embedding", "attention linear", "softmax", "ffn", "activation", "norm", "head"]

    /// Encoder layer `layer` (its own head count and width when pruned) on `batch` sequences of the shape's
    /// length, with private-length masks (`secretMask`: 2Quad first multiplies the scores by the client's
    /// key flags, `Party.multiplyByClientKeys`). With `firstTokenOnly` the layer computes each sequence's
    /// first row alone after its keys and values (`EncoderProgram.encoderLayer(firstTokenOnly:)`).
    public static func encoderLayer(_ s: EncoderShape, layer l: Int = 0, batch b: Int = 1, secretMask: Bool = false,
                                    firstTokenOnly: Bool = false) -> [String: Cost] {
        let (n, h, a, d, i, aw) = (s.seq, s.hidden, s.heads(l), s.headDim, s.intermediate(l), s.attentionWidth(l))
        let m = firstTokenOnly ? 1 : n, rows = b * m, narrow = s.narrowLinear                  // m: query rows per sequence
        var out = [String: Cost]()
        out["attention linear"] = Ops.matmulWeight(m: b * n, k: h, n: 3 * aw, narrow: narrow) + Ops.matmul(batch: b * a, m: m, k: d, n: n, narrow: narrow)
            + Ops.matmulWeight(m: rows, k: aw, n: h, narrow: narrow)
        let context = Ops.matmul(batch: b * a, m: m, k: n, n: d, narrow: narrow)
        // 2Quad with private lengths first multiplies the scores by the client's key flags.
        let privateKeys = secretMask ? Ops.clientKeys(count: b * a * m * n, keys: b * n) : Cost()
        switch s.softmax {
        case .exact:
            out["softmax"] = Ops.softmax(rows: b * a * m, n: n)
            out["attention linear"]! += context
        case .twoQuad where EncoderProgram.fusesQuadAttention(seq: n, headDim: d, narrow: narrow):
            out["softmax"] = privateKeys + Ops.quadAttention(batch: b * a, m: m, n: secretMask ? n : s.validLength ?? n, d: d)
        case .twoQuad:
            out["softmax"] = privateKeys + Ops.quadSoftmax(rows: b * a * m, n: n)
            out["attention linear"]! += context
        }
        out["norm"] = 2 * Ops.layerNorm(rows: rows, h: h)
        out["ffn"] = Ops.matmulWeight(m: rows, k: h, n: i, narrow: narrow) + Ops.matmulWeight(m: rows, k: i, n: h, narrow: narrow)
        switch s.activation {
        case .gelu: out["activation"] = Ops.gelu(rows * i)
        case .quad: out["activation"] = Ops.quadGelu(rows * i, narrow: narrow)
        case .relu: out["activation"] = Ops.relu(rows * i)
        }
        return out
    }

    /// `bench secure`'s program (`EncoderProgram`): L layers from hidden states, classifier on the first
    /// token, argmax opened to the client (and the logits when `revealLogits`).
    public static func encoderProgram(_ s: EncoderShape, revealLogits: Bool) -> [String: Cost] {
        var out = layers(s)
        out["head"] = Ops.matmulWeight(m: 1, k: s.hidden, n: s.classes, narrow: s.narrowLinear) + (revealLogits ? Ops.reveal(s.classes) : Cost())
            + Ops.argmax(rows: 1, n: s.classes) + Ops.reveal(1)
        return out
    }

    /// Every encoder layer of `s`, summed section by section; with `lastFirstTokenOnly` the last layer
    /// computes the first token's row alone (a classifier's, `BertProgram`).
    static func layers(_ s: EncoderShape, batch b: Int = 1, secretMask: Bool = false, lastFirstTokenOnly: Bool = false) -> [String: Cost] {
        var out = [String: Cost]()
        for l in 0..<s.layers {
            let first = lastFirstTokenOnly && l == s.layers - 1
            for (k, v) in encoderLayer(s, layer: l, batch: b, secretMask: secretMask, firstTokenOnly: first) {
                out[k, default: Cost()] = out[k, default: Cost()] + v
            }
        }
        return out
    }

    /// One batch of `batch` queries of a BERT classifier (`BertProgram`) whose encoder is `s` with `s.seq` the
    /// length bucket and `vocab` rows of embeddings: embedding lookup and LayerNorm, the layers (the last one
    /// for the [CLS] row alone), pooler (tanh),
    /// classifier, argmax opened to the client. Costs of the whole batch. With `publicEmbedding` the client
    /// embeds its text in plaintext and shares it from the common PRG: the embedding costs nothing online.
    public static func bertQuery(_ s: EncoderShape, vocab: Int, publicEmbedding: Bool = false, batch b: Int = 1,
                                 revealLogits: Bool = false) -> [String: Cost] {
        let (hidden, classes, seq) = (s.hidden, s.classes, s.seq)
        var out = layers(s, batch: b, secretMask: true, lastFirstTokenOnly: true)
        out["embedding"] = publicEmbedding ? Cost() : Ops.lookupRows(m: b * seq, v: vocab, h: hidden) + Ops.layerNorm(rows: b * seq, h: hidden)
        out["head"] = Ops.matmulWeight(m: b, k: hidden, n: hidden, narrow: s.narrowLinear) + Ops.tanh(b * hidden)
            + Ops.matmulWeight(m: b, k: hidden, n: classes, narrow: s.narrowLinear)
            + (revealLogits ? Ops.reveal(b * classes) : Cost()) + Ops.argmax(rows: b, n: classes) + Ops.reveal(b)
        return out
    }

    /// The sum over sections.
    public static func total(_ sections: [String: Cost]) -> Cost { sections.values.reduce(Cost(), +) }

    /// Seconds of `cost` under `network`: calibrated compute plus one one-way latency per round plus the
    /// critical direction's bytes at the link bandwidth.
    public static func seconds(_ cost: Cost, network: NetworkProfile, calibration c: Calibration = .default) -> Double {
        let compute = c.perMAC * cost.macs + c.perDCFLevel * cost.dcfLevels + c.perWord * cost.words + c.perRound * Double(cost.rounds)
            + c.perTableMAC * cost.tableMACs + c.perClientMAC * cost.clientMACs
        let link = Double(cost.rounds) * network.roundTripSeconds / 2
            + (network.bitsPerSecond.isFinite ? Double(cost.wireBytes) * 8 / network.bitsPerSecond : 0)
        return compute + link
    }
}

/// Seconds per unit of local work, fitted to measured sections (`Calibration.fit`).
public struct Calibration: Codable, Sendable, Equatable {
    public var perMAC: Double, perDCFLevel: Double, perWord: Double, perRound: Double, perTableMAC: Double
    /// Seconds per plaintext multiply-add of the client's public layers (`Cost.clientMACs`); timed on its
    /// own (`cost --calibrate`), not part of the least-squares fit.
    public var perClientMAC: Double
    public var note: String

    public init(perMAC: Double, perDCFLevel: Double, perWord: Double, perRound: Double, perTableMAC: Double = 0,
                perClientMAC: Double = Calibration.builtInPerClientMAC, note: String = "") {
        self.perClientMAC = perClientMAC
        self.perMAC = perMAC
        self.perDCFLevel = perDCFLevel
        self.perWord = perWord
        self.perRound = perRound
        self.perTableMAC = perTableMAC
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case perMAC = "per_mac", perDCFLevel = "per_dcf_level", perWord = "per_word", perRound = "per_round"
        case perTableMAC = "per_table_mac", perClientMAC = "per_client_mac", note
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        perMAC = try c.decode(Double.self, forKey: .perMAC)
        perDCFLevel = try c.decode(Double.self, forKey: .perDCFLevel)
        perWord = try c.decode(Double.self, forKey: .perWord)
        perRound = try c.decode(Double.self, forKey: .perRound)
        perTableMAC = try c.decodeIfPresent(Double.self, forKey: .perTableMAC) ?? 0
        perClientMAC = try c.decodeIfPresent(Double.self, forKey: .perClientMAC) ?? Self.builtInPerClientMAC
        note = try c.decodeIfPresent(String.self, forKey: .note) ?? ""
    }

    /// Fitted by `securerouter cost --calibrate` (multi-query BERT sessions as `secure-eval` runs them, public
    /// and private embeddings, the dealer paced so that it never shares the cores with an online clock) on this
    /// project's 2-core CI machine kind, quiet, release build, 2026-11-30: the mean of three fits
    /// (docs/benchmarks.md, "Cost model").
    public static let `default` = Calibration(perMAC: 2.12e-10, perDCFLevel: 6.94e-9, perWord: 4.20e-9, perRound: 7.8e-5,
                                              perTableMAC: 1.65e-10, note: "built in: fitted on the project's 2-core machine, 2026-11-30, paced dealer")

    /// The client's plaintext public layers, timed on the project's 2-core machine (`cost --calibrate`,
    /// docs/benchmarks.md).
    public static let builtInPerClientMAC = 6.0e-11

    static func features(_ c: Cost) -> [Double] { [c.macs, c.dcfLevels, c.words, Double(c.rounds), c.tableMACs] }

    /// Non-negative least squares of measured seconds on the five work features (projected coordinate descent).
    public static func fit(_ samples: [(cost: Cost, seconds: Double)], note: String) -> Calibration {
        let rows = samples.map { features($0.cost) }, y = samples.map(\.seconds), p = 5
        // Scale columns to unit norm for conditioning.
        let scale = (0..<p).map { j in max(1e-30, rows.map { $0[j] * $0[j] }.reduce(0, +).squareRoot()) }
        let x = rows.map { r in (0..<p).map { r[$0] / scale[$0] } }
        var w = [Double](repeating: 0, count: p)
        var ata = [[Double]](repeating: [Double](repeating: 0, count: p), count: p), aty = [Double](repeating: 0, count: p)
        for (r, t) in zip(x, y) { for i in 0..<p { aty[i] += r[i] * t; for j in 0..<p { ata[i][j] += r[i] * r[j] } } }
        for _ in 0..<20_000 {
            for i in 0..<p where ata[i][i] > 0 {
                let g = (0..<p).reduce(-aty[i]) { $0 + ata[i][$1] * w[$1] }
                w[i] = max(0, w[i] - g / ata[i][i])
            }
        }
        let c = (0..<p).map { w[$0] / scale[$0] }
        return Calibration(perMAC: c[0], perDCFLevel: c[1], perWord: c[2], perRound: c[3], perTableMAC: c[4], note: note)
    }
}
