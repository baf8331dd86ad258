import Tensor
import Transformer

/// Stage-1 (layer-wise) distillation loss of TinyBERT (Jiao et al. 2020, eqs. 7-9), as
/// MPCFormer (Li et al. 2023, §3.3) uses it to teach MPC-friendly students:
///
///     L = hidden_weight    * mean_i MSE(W_h * h_s[i], h_t[m(i)])
///       + attention_weight * mean_i MSE(a_s[i],       a_t[m(i)])
///
/// - `h[i]` `[B,S,H]` is the output of layer i, `a[i]` `[B,A,S,S]` its attention scores
///   `Q K^T / sqrt(D)` before mask and softmax (`EncoderTrace`);
/// - the uniform layer map `m(i) = (i + 1) * Lt / Ls - 1` (integer division) pairs student
///   layer i with the teacher layer at the same relative depth (the last with the last);
/// - `W_h` `[Ht, Hs]` is a learned linear projection, present only when the hidden widths
///   differ (it is trained in stage 1 and not saved in the checkpoint);
/// - when the head counts differ, the scores are averaged over heads before the MSE;
/// - padding is excluded: hidden states of padded tokens and scores whose query or key is
///   padding do not count, and the means run over real tokens (token pairs) only.
///
/// Why: matching the teacher's intermediate representations transfers far more signal per
/// example than its logits alone, which matters most for students whose nonlinearities
/// (2Quad, quadratic GeLU) differ from the teacher's.
public final class LayerDistillation {
    /// Teacher layer of each student layer (0-based).
    public let layerMap: [Int]
    /// `W_h`: student width -> teacher width, or nil when the widths are equal.
    public let projection: Linear?
    public let hiddenWeight: Float
    public let attentionWeight: Float

    /// - Parameters:
    ///   - student, teacher: the two architectures; the student may not be deeper than the teacher.
    ///   - rng: initialises the projection (N(0, 0.02), zero bias, as HF linear layers).
    /// - Throws: `ConfigError` when the student has more layers than the teacher or no layers.
    public init(student: BertConfig, teacher: BertConfig, hiddenWeight: Float = 1, attentionWeight: Float = 1,
                rng: SeededGenerator) throws {
        let (ls, lt) = (student.layers, teacher.layers)
        guard ls >= 1, ls <= lt else {
            throw ConfigError("layer distillation maps student layers onto teacher layers: the student has \(ls) layers, "
                              + "the teacher \(lt); use a student with 1...\(lt) layers")
        }
        layerMap = (0..<ls).map { ($0 + 1) * lt / ls - 1 }
        projection = student.hidden == teacher.hidden
            ? nil : Linear(inFeatures: student.hidden, outFeatures: teacher.hidden, rng: rng)
        self.hiddenWeight = hiddenWeight
        self.attentionWeight = attentionWeight
    }

    /// Trainable parameters (the projection's), with names for the resumable state.
    public func namedParameters() -> [NamedParameter] {
        projection?.namedParameters(prefix: "distill.projection") ?? []
    }

    /// The stage-1 loss and its two parts.
    ///
    /// - Parameters:
    ///   - student: trace of the student (with gradients).
    ///   - teacher: trace of the teacher on the same batch (constants: compute it under `withNoGrad`).
    ///   - attentionMask: `[B*S]`, 1 for real tokens and 0 for padding (`EncodedBatch.attentionMask`).
    /// - Returns: `total [1]` (backpropagate this) and the unweighted `hidden` and `attention` MSEs.
    public func loss(student: EncoderTrace, teacher: EncoderTrace, attentionMask: [Float])
        -> (total: Tensor, hidden: Float, attention: Float)
    {
        let first = student.hiddenStates[0]
        let (b, s) = (first.shape[0], first.shape[1])
        precondition(attentionMask.count == b * s, "LayerDistillation: mask has \(attentionMask.count) entries for \(b)x\(s)")
        precondition(student.attentionScores.count == layerMap.count, "LayerDistillation: the student trace has the wrong depth")
        let tokens = Tensor(shape: [b, s, 1], data: attentionMask)
        var pairs = [Float](repeating: 0, count: b * s * s)
        for r in 0..<b { for i in 0..<s { for j in 0..<s {
            pairs[(r * s + i) * s + j] = attentionMask[r * s + i] * attentionMask[r * s + j]
        } } }
        let pairMask = Tensor(shape: [b, 1, s, s], data: pairs)
        let realTokens = max(attentionMask.reduce(0, +), 1), realPairs = max(pairs.reduce(0, +), 1)

        var hiddenTerms: [Tensor] = [], attentionTerms: [Tensor] = []
        for (i, t) in layerMap.enumerated() {
            if hiddenWeight > 0 {
                let h = student.layerOutput(i)
                let hs = projection.map { $0(h) } ?? h
                let ht = teacher.layerOutput(t)
                precondition(hs.shape == ht.shape, "LayerDistillation: hidden \(hs.shape) vs teacher \(ht.shape)")
                let d = (hs - ht) * tokens
                hiddenTerms.append(d.square().sum() * (1 / (realTokens * Float(ht.shape[2]))))
            }
            if attentionWeight > 0 {
                var as_ = student.attentionScores[i], at = teacher.attentionScores[t]
                if as_.shape[1] != at.shape[1] {
                    as_ = as_.mean(dim: 1, keepDim: true)
                    at = at.mean(dim: 1, keepDim: true)
                }
                let d = (as_ - at) * pairMask
                attentionTerms.append(d.square().sum() * (1 / (realPairs * Float(as_.shape[1]))))
            }
        }
        let layers = Float(layerMap.count)
        func mean(_ terms: [Tensor]) -> Tensor? {
            guard var acc = terms.first else { return nil }
            for t in terms.dropFirst() { acc = acc + t }
            return acc * (1 / layers)
        }
        let hidden = mean(hiddenTerms), attention = mean(attentionTerms)
        var total: Tensor
        switch (hidden, attention) {
        case let (h?, a?): total = h * hiddenWeight + a * attentionWeight
        case let (h?, nil): total = h * hiddenWeight
        case let (nil, a?): total = a * attentionWeight
        case (nil, nil): total = Tensor.zeros([1])
        }
        return (total, hidden?.item ?? 0, attention?.item ?? 0)
    }
}
