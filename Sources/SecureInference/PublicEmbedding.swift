import CBLAS
import Foundation
import MPC

/// The embedding of a model whose embedding group is public (`CheckpointConfig.embedding == "public"`:
/// trained with the word, position and token-type rows and their LayerNorm frozen at a public pretrained
/// model's values), followed by its public leading layers if it has any (`BertConfig.publicLayers`:
/// encoder layers frozen at the same public model's values, exact softmax and GeLU). The client computes
/// all of it from its own token ids in plaintext and secret-shares the result, so the query pays no table
/// lookup, no LayerNorm and no public layer under MPC; the server gives the tables and the public layers'
/// weights to the client once per session (they are public by the model's declaration).
///
/// One definition serves the client (`SecureBert`) and the plaintext emulation (`FixedPointEmulation`),
/// so that both compute bit for bit the same rows.
struct PublicEmbedding: Sendable {
    /// `[V, H]` word rows, `[P, H]` position rows with token type 0 added, LayerNorm gain and offset `[H]`,
    /// all as decoded from the server's fixed-point inputs (`SecureBertWeights.ringInputs`).
    let word: [Double], position: [Double], gain: [Double], offset: [Double]
    let hidden: Int, eps: Double
    let fixedPoint: FixedPoint
    /// The public leading layers (`[in, out]` layout, query not scaled), decoded like the tables; empty: none.
    let layers: [EncoderWeights.Layer]
    /// The same layers in single precision (`prefix`).
    let floatLayers: [FloatLayer]
    /// Attention heads of the public layers (unpruned: the model's `heads`).
    let heads: Int

    /// The tables and public layers of model `m` (`layers` empty without public layers).
    init(word: [Double], position: [Double], gain: [Double], offset: [Double], layers: [EncoderWeights.Layer], model m: SecureBertShape) {
        (self.word, self.position, self.gain, self.offset, self.layers) = (word, position, gain, offset, layers)
        floatLayers = layers.map(FloatLayer.init)
        (hidden, eps, heads, fixedPoint) = (m.hidden, m.layerNormEps, m.heads, FixedPoint(fracBits: m.fracBits))
    }

    /// The rows of `ids` after the embedding and the public layers, `[ids.count, H]`, rounded to the
    /// fixed-point grid. `ids` stacks queries of `period` tokens each (the last may be shorter: one
    /// unpadded query); `lengths[q]` is query q's real length (its keys beyond are padding in the public
    /// layers' attention), nil: every token is real. `throughLayers` false: the embedding rows alone.
    func rows(_ ids: [Int], period: Int, lengths: [Int]? = nil, throughLayers: Bool = true) -> [Double] {
        let h = hidden, scale = fixedPoint.scale
        var out = [Double](repeating: 0, count: ids.count * h)
        for (i, t) in ids.enumerated() {
            let p = i % period
            for j in 0..<h { out[i * h + j] = word[t * h + j] + position[p * h + j] }
        }
        out = plainLayerNorm(out, width: h, gain: gain, beta: offset, eps: eps)
        if throughLayers && !layers.isEmpty {
            for (q, start) in stride(from: 0, to: ids.count, by: period).enumerated() {
                let n = min(period, ids.count - start)
                let chunk = Array(out[(start * h)..<((start + n) * h)])
                out.replaceSubrange((start * h)..<((start + n) * h), with: prefix(chunk, seq: n, length: lengths?[q] ?? n))
            }
        }
        return out.map { ($0 * scale).rounded() / scale }
    }

    /// Plaintext multiply-adds of the public layers on one query of `seq` tokens (the cost model's client work).
    static func macs(layers: Int, seq n: Int, hidden h: Int, intermediate i: Int) -> Double {
        let perToken: Int = 4 * h * h + 2 * n * h + 2 * h * i
        return Double(layers) * Double(n) * Double(perToken)
    }

    /// A public layer's weights in single precision (what `prefix` multiplies with).
    struct FloatLayer: Sendable {
        let qkvW: [Float], qkvB: [Float], outW: [Float], outB: [Float], ffn1W: [Float], ffn1B: [Float], ffn2W: [Float], ffn2B: [Float]
        let ln1G: [Double], ln1B: [Double], ln2G: [Double], ln2B: [Double]

        init(_ l: EncoderWeights.Layer) {
            func f(_ x: [Double]) -> [Float] { x.map { Float($0) } }
            (qkvW, qkvB, outW, outB) = (f(l.qkvW), f(l.qkvB), f(l.outW), f(l.outB))
            (ffn1W, ffn1B, ffn2W, ffn2B) = (f(l.ffn1W), f(l.ffn1B), f(l.ffn2W), f(l.ffn2B))
            (ln1G, ln1B, ln2G, ln2B) = (l.ln1G, l.ln1B, l.ln2G, l.ln2B)
        }
    }

    /// The public layers on one query's `[n, H]` embedding rows, keys from `length` on masked. The client's
    /// plaintext work, in single precision like the float model it reproduces (the result is then rounded
    /// to the fixed-point grid, 2^−f, far coarser than Float's rounding); LayerNorms in Double.
    private func prefix(_ x0: [Double], seq n: Int, length: Int) -> [Double] {
        let h = hidden, a = heads, d = h / a
        func linear(_ x: [Float], k: Int, _ w: [Float], _ b: [Float], out m: Int) -> [Float] {
            var y = [Float](repeating: 0, count: n * m)
            for r in 0..<n { y.withUnsafeMutableBufferPointer { p in for c in 0..<m { p[r * m + c] = b[c] } } }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(m), Int32(k), 1, x, Int32(k), w, Int32(m), 1, &y, Int32(m))
            return y
        }
        func layerNorm(_ x: [Float], _ g: [Double], _ b: [Double]) -> [Double] {
            plainLayerNorm(x.map { Double($0) }, width: h, gain: g, beta: b, eps: eps)
        }
        var x = x0.map { Float($0) }
        let scoreScale = 1 / Float(d).squareRoot()
        var p = [Float](repeating: 0, count: n * length)
        for layer in floatLayers {
            let qkv = linear(x, k: h, layer.qkvW, layer.qkvB, out: 3 * h)
            var context = [Float](repeating: 0, count: n * h)
            qkv.withUnsafeBufferPointer { q in
                for head in 0..<a {
                    // Scores Q_h·K_hᵀ/√d over the real keys, [n, length], then a row softmax and the context P·V_h.
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(length), Int32(d), scoreScale,
                                q.baseAddress! + head * d, Int32(3 * h), q.baseAddress! + h + head * d, Int32(3 * h),
                                0, &p, Int32(length))
                    for i in 0..<n {
                        var top = -Float.infinity
                        for j in 0..<length { top = max(top, p[i * length + j]) }
                        var sum: Float = 0
                        for j in 0..<length { p[i * length + j] = expf(p[i * length + j] - top); sum += p[i * length + j] }
                        for j in 0..<length { p[i * length + j] /= sum }
                    }
                    context.withUnsafeMutableBufferPointer { c in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(d), Int32(length), 1,
                                    p, Int32(length), q.baseAddress! + 2 * h + head * d, Int32(3 * h), 0, c.baseAddress! + head * d, Int32(h))
                    }
                }
            }
            let attended = linear(context, k: h, layer.outW, layer.outB, out: h)
            let x1 = layerNorm(zip(x, attended).map { $0 + $1 }, layer.ln1G, layer.ln1B).map { Float($0) }
            let inner = linear(x1, k: h, layer.ffn1W, layer.ffn1B, out: layer.ffn1B.count)
                .map { 0.5 * $0 * (1 + erff($0 * Float(0.5).squareRoot())) }
            let out = linear(inner, k: layer.ffn1B.count, layer.ffn2W, layer.ffn2B, out: h)
            x = layerNorm(zip(x1, out).map { $0 + $1 }, layer.ln2G, layer.ln2B).map { Float($0) }
        }
        return x.map { Double($0) }
    }

    /// `rows` encoded in the ring, `[ids.count, H]`.
    func ring(_ ids: [Int], period: Int, lengths: [Int]? = nil) -> RingTensor {
        fixedPoint.encode(rows(ids, period: period, lengths: lengths), shape: [ids.count, hidden])
    }

    /// The mean of the first `length` embedding rows of one query (before any public layer), encoded, `[1, H]`
    /// (the router's pooled features).
    func ring(mean ids: [Int], length: Int, period: Int) -> RingTensor {
        let r = rows(Array(ids.prefix(length)), period: period, throughLayers: false), h = hidden
        return fixedPoint.encode((0..<h).map { j in (0..<length).reduce(0) { $0 + r[$1 * h + j] } / Double(length) }, shape: [1, h])
    }

    /// `ids`, checked to lie in the vocabulary.
    /// - Throws: `SecureInferenceError` naming the first id outside it.
    func checked(_ ids: [Int]) throws -> [Int] {
        let v = word.count / hidden
        if let bad = ids.first(where: { !(0..<v).contains($0) }) {
            throw SecureInferenceError("token id \(bad) is outside the model's vocabulary of \(v)")
        }
        return ids
    }
}
