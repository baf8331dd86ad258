import MPC

/// The embedding of a model whose embedding group is public (`CheckpointConfig.embedding == "public"`:
/// trained with the word, position and token-type rows and their LayerNorm frozen at a public pretrained
/// model's values). The client computes it from its own token ids in plaintext and secret-shares the
/// result, so the query pays no table lookup and no LayerNorm under MPC; the server gives the tables to
/// the client once per session (they are public by the model's declaration).
///
/// One definition serves the client (`SecureBert`) and the plaintext emulation (`FixedPointEmulation`),
/// so that both compute bit for bit the same embedding.
struct PublicEmbedding: Sendable {
    /// `[V, H]` word rows, `[P, H]` position rows with token type 0 added, LayerNorm gain and offset `[H]`,
    /// all as decoded from the server's fixed-point inputs (`SecureBertWeights.ringInputs`).
    let word: [Double], position: [Double], gain: [Double], offset: [Double]
    let hidden: Int, eps: Double
    let fixedPoint: FixedPoint

    /// The LayerNorm'd embedding rows of `ids` (token `i` at position `i mod period`), `[ids.count, H]`,
    /// rounded to the fixed-point grid. `period` is the bucket when `ids` stacks several padded queries.
    func rows(_ ids: [Int], period: Int) -> [Double] {
        let h = hidden, scale = fixedPoint.scale
        var out = [Double](repeating: 0, count: ids.count * h)
        for (i, t) in ids.enumerated() {
            let p = i % period
            let v = (0..<h).map { word[t * h + $0] + position[p * h + $0] }
            let mean = v.reduce(0, +) / Double(h)
            let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(h)
            let inv = 1 / (variance + eps).squareRoot()
            for j in 0..<h { out[i * h + j] = (((v[j] - mean) * inv * gain[j] + offset[j]) * scale).rounded() / scale }
        }
        return out
    }

    /// `rows` encoded in the ring, `[ids.count, H]`.
    func ring(_ ids: [Int], period: Int) -> RingTensor {
        fixedPoint.encode(rows(ids, period: period), shape: [ids.count, hidden])
    }

    /// The mean of the first `length` rows of one query, encoded, `[1, H]` (the router's pooled features).
    func ring(mean ids: [Int], length: Int, period: Int) -> RingTensor {
        let r = rows(Array(ids.prefix(length)), period: period), h = hidden
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
