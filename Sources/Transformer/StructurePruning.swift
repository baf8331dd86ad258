import Tensor

/// What `StructurePruning.prune` kept, per layer of the gated model.
public struct PruningReport: Codable, Sendable, Equatable {
    /// Indices of the gated model's layers that were kept, in order.
    public var keptLayers: [Int]
    /// Heads and feed-forward width of every kept layer (the pruned config's `layer_heads`, `layer_intermediate`).
    public var layerHeads: [Int], layerIntermediate: [Int]
    /// Gates whose deterministic value was strictly between 0 and 1 and that could not be folded into
    /// weights (layer gates: a layer is kept whole when its gate is above 1/2, removed otherwise), so the
    /// pruned model differs slightly from the gated one. Head and group gates are always folded exactly.
    public var roundedLayerGates: Int

    enum CodingKeys: String, CodingKey {
        case keptLayers = "kept_layers", layerHeads = "layer_heads", layerIntermediate = "layer_intermediate"
        case roundedLayerGates = "rounded_layer_gates"
    }
}

/// Physically removes the structure a model's `StructureGates` have closed, so the exported model has
/// its real (smaller) shapes and the secure runtime pays only for what is left.
///
/// Head gates and feed-forward group gates are folded into the following weight (the attention output
/// and the second feed-forward matrix), so for them the pruned model computes exactly what the gated
/// model computes at evaluation. A layer is removed when its gate is at most 1/2 and kept whole
/// otherwise. Every kept layer keeps at least one head and one group (the most open one, with its gate
/// folded in, even if that gate is 0), and at least one layer is kept.
public enum StructurePruning {
    public static func prune(_ model: BertForSequenceClassification) -> (model: BertForSequenceClassification, report: PruningReport) {
        guard let gates = model.gates else { preconditionFailure("prune: the model has no gates") }
        let c = model.config, d = c.headDim
        let layerValues = (0..<c.layers).map { gates.deterministic(gates.layers[$0])?[0] ?? 1 }
        var kept = (0..<c.layers).filter { layerValues[$0] > 0.5 }
        if kept.isEmpty, let best = layerValues.indices.max(by: { layerValues[$0] < layerValues[$1] }) { kept = [best] }
        let rounded = kept.filter { layerValues[$0] < 1 }.count
            + (0..<c.layers).filter { !kept.contains($0) && layerValues[$0] > 0 }.count

        /// Indices with a non-zero value, or the largest one if none.
        func open(_ values: [Float]) -> [Int] {
            let on = values.indices.filter { values[$0] > 0 }
            return on.isEmpty ? [values.indices.max(by: { values[$0] < values[$1] })!] : on
        }
        var headLists: [[Int]] = [], headScales: [[Float]] = [], neuronLists: [[Int]] = [], neuronScales: [[Float]] = []
        for l in kept {
            let a = c.heads(inLayer: l), i = c.intermediate(inLayer: l)
            let hv = gates.deterministic(gates.heads[l]) ?? [Float](repeating: 1, count: a)
            let hk = open(hv)
            headLists.append(hk)
            headScales.append(hk.map { hv[$0] })
            let gv = gates.deterministic(gates.ffn[l]) ?? [Float](repeating: 1, count: i / gates.groupSize)
            let gk = open(gv)
            let g = i / gv.count
            neuronLists.append(gk.flatMap { grp in (grp * g)..<((grp + 1) * g) })
            neuronScales.append(gk.flatMap { grp in [Float](repeating: gv[grp], count: g) })
        }
        var config = c
        config.layers = kept.count
        config.layerHeads = headLists.map(\.count)
        config.layerIntermediate = neuronLists.map(\.count)
        if !config.isPruned { config.layerHeads = nil; config.layerIntermediate = nil }
        let pruned = BertForSequenceClassification(config: config, rng: SeededGenerator(seed: 0))
        pruned.quantization = model.quantization

        func copy(_ dst: Tensor, _ src: Tensor) { dst.data = src.data }
        for (p, q) in zip(pruned.embeddings.namedParameters(prefix: ""), model.embeddings.namedParameters(prefix: "")) {
            copy(p.tensor, q.tensor)
        }
        for (p, q) in zip(pruned.pooler.namedParameters(prefix: "") + pruned.classifier.namedParameters(prefix: ""),
                          model.pooler.namedParameters(prefix: "") + model.classifier.namedParameters(prefix: "")) {
            copy(p.tensor, q.tensor)
        }
        for (n, l) in kept.enumerated() {
            let src = model.encoder.layers[l], dst = pruned.encoder.layers[n]
            let rows = headLists[n].flatMap { h in (h * d)..<((h + 1) * d) }
            let rowScale = headScales[n].flatMap { [Float](repeating: $0, count: d) }
            for (s, t) in [(src.query, dst.query), (src.key, dst.key), (src.value, dst.value)] {
                t.weight.data = selectRows(s.weight, rows)
                t.bias.data = rows.map { s.bias.data[$0] }
            }
            dst.attentionOutput.weight.data = selectColumns(src.attentionOutput.weight, rows, scale: rowScale)
            copy(dst.attentionOutput.bias, src.attentionOutput.bias)
            dst.intermediate.weight.data = selectRows(src.intermediate.weight, neuronLists[n])
            dst.intermediate.bias.data = neuronLists[n].map { src.intermediate.bias.data[$0] }
            dst.output.weight.data = selectColumns(src.output.weight, neuronLists[n], scale: neuronScales[n])
            copy(dst.output.bias, src.output.bias)
            for (s, t) in [(src.attentionNorm, dst.attentionNorm), (src.outputNorm, dst.outputNorm)] {
                copy(t.weight, s.weight)
                copy(t.bias, s.bias)
            }
        }
        let report = PruningReport(keptLayers: kept, layerHeads: headLists.map(\.count),
                                   layerIntermediate: neuronLists.map(\.count), roundedLayerGates: rounded)
        return (pruned, report)
    }

    /// Rows `rows` of a `[R, C]` matrix.
    static func selectRows(_ w: Tensor, _ rows: [Int]) -> [Float] {
        let cols = w.shape[1]
        return rows.flatMap { r in w.data[(r * cols)..<((r + 1) * cols)] }
    }

    /// Columns `cols` of a `[R, C]` matrix, column j multiplied by `scale[j]`.
    static func selectColumns(_ w: Tensor, _ cols: [Int], scale: [Float]) -> [Float] {
        let (r, c) = (w.shape[0], w.shape[1])
        var out = [Float](repeating: 0, count: r * cols.count)
        for i in 0..<r { for (j, col) in cols.enumerated() { out[i * cols.count + j] = w.data[i * c + col] * scale[j] } }
        return out
    }
}
