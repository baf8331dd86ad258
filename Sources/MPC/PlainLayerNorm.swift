/// LayerNorm of each `width`-wide row of `x` in Double: the exact math the secure LayerNorm approximates.
/// The float reference of the secure encoder and the client's plaintext public layers use it, so that both
/// normalise exactly as a float model does (biased variance, `eps` inside the square root).
public func plainLayerNorm(_ x: [Double], width h: Int, gain: [Double], beta: [Double], eps: Double) -> [Double] {
    var y = x
    for r in 0..<(x.count / h) {
        let row = x[(r * h)..<((r + 1) * h)]
        let mean = row.reduce(0, +) / Double(h)
        let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(h)
        let inv = 1 / (variance + eps).squareRoot()
        for j in 0..<h { y[r * h + j] = (x[r * h + j] - mean) * inv * gain[j] + beta[j] }
    }
    return y
}
