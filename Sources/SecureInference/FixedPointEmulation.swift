import CBLAS
import Foundation
import MPC

/// The secure runtime's arithmetic, emulated in plaintext for one model: the same fixed-point grid
/// (weight matrices rounded to 2^−`weightFracBits`, every other weight and every truncated value to 2^−f), the same approximations (GeLU, exp and tanh
/// splines; reciprocal and inverse square root by octave normalisation and two Newton steps from the
/// same linear starts), the same query pre-scaling and padding, so that a disagreement between the
/// secure and the plaintext prediction can be told apart from approximation error (`predict
/// --fixed-point`, `secure-eval`'s `agreement_fixed`).
///
/// What it cannot emulate: the secure truncations round to ±1 ulp at random and fail with a tiny
/// probability (docs/protocols.md); the emulation rounds to nearest.
public struct FixedPointEmulation: Sendable {
    public let model: SecureBertShape
    private let w: SecureBertWeights
    private let scale: Double

    /// Takes the weights exactly as the server encodes them for a session (`SecureBertWeights.ringInputs`:
    /// rounded to the grid, query pre-scaled, position and token-type rows summed), decoded back to reals.
    public init(weights: SecureBertWeights, model: SecureBertShape) {
        self.model = model
        scale = Double(1 << model.fracBits)
        let fp = FixedPoint(fracBits: model.fracBits), h = model.hidden
        let ring = weights.ringInputs(model, rows: min(weights.position.count / h, model.maxPosition))
        func v(_ name: String) -> [Double] { fp.decode(input: name, ring[name]!) }
        var r = weights
        (r.word, r.position, r.embG, r.embB, r.poolW, r.poolB) = (v("emb.word"), v("emb.pos"), v("emb.ln.g"), v("emb.ln.b"), v("pool.w"), v("pool.b"))
        (r.encoder.clsW, r.encoder.clsB) = (v("cls.w"), v("cls.b"))
        r.encoder.layers = (0..<model.layers).map { l in
            EncoderWeights.Layer(qkvW: v("\(l).qkv.w"), qkvB: v("\(l).qkv.b"), outW: v("\(l).out.w"), outB: v("\(l).out.b"),
                                 ln1G: v("\(l).ln1.g"), ln1B: v("\(l).ln1.b"), ffn1W: v("\(l).ffn1.w"), ffn1B: v("\(l).ffn1.b"),
                                 ffn2W: v("\(l).ffn2.w"), ffn2B: v("\(l).ffn2.b"), ln2G: v("\(l).ln2.g"), ln2B: v("\(l).ln2.b"))
        }
        r.publicLayers = (0..<(model.publicLayers ?? 0)).map { l in
            SecureBertWeights.publicLayer(l, model) { name, _ in v(name) }!
        }
        w = r
    }

    func q(_ x: Double) -> Double { (x * scale).rounded() / scale }
    func q(_ x: [Double]) -> [Double] { x.map(q) }
    /// `x` rounded to `bits` fewer fractional bits than the grid (an operand shifted before a product).
    func coarse(_ x: Double, bits: Int) -> Double { let s = scale / Double(1 << bits); return (x * s).rounded() / s }
    /// A key rounded to the grid the scores' product uses (`EncoderProgram.keyShift` bits coarser; on
    /// Z_2^32 the shift is `FixedPoint.narrowRightShift`, random rounding like `linear`'s, left out).
    func qKey(_ x: Double) -> Double { model.narrowLinear ? x : coarse(x, bits: EncoderProgram.keyShift) }
    /// A product as a linear layer on Z_2^32 returns it: reduced into [−1024, 3072) (`FixedPoint.narrowProductLimit`).
    /// Within ±1024 this is the product itself; beyond, the runtime's output is wrong and depends on the
    /// shares (`Party.truncateExact`): this is one of its outcomes, so disagreements show.
    func wrapNarrow(_ y: Double) -> Double {
        guard model.narrowLinear else { return y }
        let l = FixedPoint.narrowProductLimit
        return y >= -l && y < l ? y : (y + l) - 4 * l * ((y + l) / (4 * l)).rounded(.down) - l
    }

    /// `x [m, k] · W [k, n] + b`, rounded after the product as the runtime truncates it (on Z_2^32 the
    /// product reduced as `wrapNarrow`; x's local truncation by `FixedPoint.narrowInputShift` bits rounds
    /// at random, up or down in proportion, so it is left out: its expectation is x).
    func linear(_ x: [Double], m: Int, k: Int, _ wt: [Double], _ b: [Double], n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, x, Int32(k), wt, Int32(n), 0, &out, Int32(n))
        return (0..<(m * n)).map { q(wrapNarrow(out[$0])) + b[$0 % n] }
    }

    /// 1/x as `Party.reciprocal`: octave j, x' = x·2^−j, linear start, two Newton steps (scale folded in).
    func reciprocal(_ x: Double) -> Double {
        let (lo, hi) = Approximations.octaves, (a, b) = Approximations.reciprocalStart
        let j = min(hi, max(lo, Int(floor(log2(max(x, 1e-30))))))
        let s = pow(2, -Double(j)), xn = q(x * s)
        var y = q(a + b * xn)
        y = q(y * (2 - q(xn * y)))
        let r0 = q(xn * y), r1 = q(y * s)
        return q(r1 * (2 - r0))
    }

    /// 1/√x as `Party.inverseSqrt`.
    func inverseSqrt(_ x: Double) -> Double {
        let (lo, hi) = Approximations.octaves, (a, b) = Approximations.inverseSqrtStart
        let j = min(hi, max(lo, Int(floor(log2(max(x, 1e-30))))))
        let xn = q(x * pow(2, -Double(j))), t = q(pow(2, -Double(j) / 2))
        let y0 = q(a + b * xn)
        let (p, yy, xt) = (q(xn * y0), q(y0 * y0), q(xn * t))
        let y1 = q(1.5 * y0 - 0.5 * q(p * yy))
        let (y2, yt, xty) = (q(y1 * y1), q(y1 * t), q(xt * y1))
        return q(1.5 * yt - 0.5 * q(xty * y2))
    }

    /// LayerNorm as `Party.layerNorm` with `preShift` (`d/2^shift` normalised, eps/4^shift).
    func layerNorm(_ x: [Double], rows: Int, _ g: [Double], _ b: [Double], preShift: Int = 0) -> [Double] {
        let h = model.hidden, k = pow(2, Double(preShift))
        var out = x
        for r in 0..<rows {
            let row = Array(x[(r * h)..<((r + 1) * h)])
            // k < 1: 2^|preShift|·x exactly, then the mean rounded at that scale.
            let mean = k < 1 ? q(row.reduce(0, +) / (k * Double(h))) : q(row.reduce(0, +) / Double(h))
            let d = k < 1 ? row.map { $0 / k - mean } : row.map { q(($0 - mean) / k) }
            let v = q(d.reduce(0) { $0 + q($1 * $1) } / Double(h)) + q(model.layerNormEps / (k * k))
            let s = inverseSqrt(v)
            for j in 0..<h { out[r * h + j] = q(q(d[j] * g[j]) * s) + b[j] }
        }
        return out
    }

    /// Logits of one query: `ids` padded to its bucket, the first `length` real.
    public func logits(ids: [Int], length: Int) -> [Double] {
        let h = model.hidden
        let x = hiddenStates(ids: ids, length: length, upTo: model.layers)
        let pooled = linear(Array(x[0..<h]), m: 1, k: h, w.poolW, w.poolB, n: h).map { q(Approximations.tanh.evaluate($0)) }
        return linear(pooled, m: 1, k: h, w.encoder.clsW, w.encoder.clsB, n: model.classes)
    }

    /// The secure router's features of one query (`RoutedBertProgram`): the [CLS] row after the first
    /// `layers` layers of this model (public layers counted), or with `layers` 0 the mean of its public
    /// embedding rows over the real tokens, as the client shares it; with `features` `.logits`, its logits.
    public func routerFeatures(ids: [Int], length: Int, layers: Int, features: RouterFeatureSource = .cls) -> [Double] {
        if features == .logits { return logits(ids: ids, length: length) }
        guard layers > 0 else {
            let fp = FixedPoint(fracBits: model.fracBits)
            return fp.decode(publicEmbedding.ring(mean: ids, length: length, period: ids.count))
        }
        return Array(hiddenStates(ids: ids, length: length, upTo: layers - (model.publicLayers ?? 0)).prefix(model.hidden))
    }

    private var publicEmbedding: PublicEmbedding {
        PublicEmbedding(word: w.word, position: w.position, gain: w.embG, offset: w.embB, layers: w.publicLayers, model: model)
    }

    /// The `[n, H]` rows after the embedding (and public layers) and the first `end` private layers.
    func hiddenStates(ids: [Int], length: Int, upTo end: Int) -> [Double] {
        let (n, h, d) = (ids.count, model.hidden, model.hidden / model.heads)
        let shape = model.encoder(seq: n)
        var x = [Double](repeating: 0, count: n * h)
        if model.hasPublicEmbedding {
            x = publicEmbedding.rows(ids, period: n, lengths: [length])
        } else {
            for (i, t) in ids.enumerated() { for j in 0..<h { x[i * h + j] = w.word[t * h + j] + w.position[i * h + j] } }
            x = layerNorm(x, rows: n, w.embG, w.embB, preShift: BertProgram.embeddingNormShift)
        }
        let fused = model.softmax == .twoQuad && EncoderProgram.fusesQuadAttention(seq: n, headDim: d, narrow: shape.narrowLinear)
        let scoreShift = max(0, model.fracBits - Party.quadAttentionBits)
        for (l, L) in w.encoder.layers.prefix(end).enumerated() {
            let (a, aw, ff) = (shape.heads(l), shape.attentionWidth(l), shape.intermediate(l))
            let qkv = linear(x, m: n, k: h, L.qkvW, L.qkvB, n: 3 * aw)
            var ctx = [Double](repeating: 0, count: n * aw)
            for head in 0..<a {
                for i in 0..<n {
                    let sc = (0..<n).map { j in q(wrapNarrow((0..<d).reduce(0.0) { $0 + qkv[i * 3 * aw + head * d + $1] * qKey(qkv[j * 3 * aw + aw + head * d + $1]) })) }
                    var p: [Double]
                    switch model.softmax {
                    case .exact:
                        let m = sc.prefix(length).max()!
                        let e = (0..<n).map { $0 < length ? q(Approximations.exp.evaluate(sc[$0] - m)) : 0 }
                        let r = reciprocal(e.reduce(0, +))
                        p = e.map { q($0 * r) }
                    case .twoQuad where fused:
                        // Party.quadAttention: scores at min(f, 12) fractional bits, U = Σ y²·V, U·r/n.
                        let y = (0..<n).map { $0 < length ? coarse(sc[$0] + EncoderProgram.quadShift, bits: scoreShift) : 0 }
                        let r = reciprocal(q(y.reduce(0) { $0 + q($1 * $1) } / Double(n)))
                        for c in 0..<d {
                            let u = q((0..<n).reduce(0.0) { $0 + y[$1] * y[$1] * qkv[$1 * 3 * aw + 2 * aw + head * d + c] })
                            ctx[i * aw + head * d + c] = q(q(u * r) / Double(n))
                        }
                        continue
                    case .twoQuad:
                        let e = (0..<n).map { $0 < length ? q((sc[$0] + EncoderProgram.quadShift) * (sc[$0] + EncoderProgram.quadShift)) : 0 }
                        let r = reciprocal(q(e.reduce(0, +) / Double(n)))
                        p = e.map { q(q($0 * r) / Double(n)) }
                    }
                    for c in 0..<d { ctx[i * aw + head * d + c] = q(wrapNarrow((0..<n).reduce(0.0) { $0 + p[$1] * qkv[$1 * 3 * aw + 2 * aw + head * d + c] })) }
                }
            }
            let att = linear(ctx, m: n, k: aw, L.outW, L.outB, n: h)
            let x1 = layerNorm(zip(x, att).map { $0 + $1 }, rows: n, L.ln1G, L.ln1B, preShift: EncoderProgram.layerNormPreShift)
            let f1 = linear(x1, m: n, k: h, L.ffn1W, L.ffn1B, n: ff)
            let g = f1.map { v -> Double in
                switch model.activation {
                case .gelu: return q(Approximations.gelu.evaluate(v))
                case .quad: return q(0.125 * q(v * v) + 0.25 * v + 0.5)
                case .relu: return max(v, 0)
                }
            }
            let f2 = linear(g, m: n, k: ff, L.ffn2W, L.ffn2B, n: h)
            x = layerNorm(zip(x1, f2).map { $0 + $1 }, rows: n, L.ln2G, L.ln2B, preShift: EncoderProgram.layerNormPreShift)
        }
        return x
    }
}
