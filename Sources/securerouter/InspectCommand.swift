import ArgumentParser
import Checkpoint
import Deployment
import Foundation
import Router

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what a checkpoint or bundle holds: models, shapes, variant, ring, accuracy; a bundle's router, cost table and hash.",
        discussion: "Also reads a bundle's public description (NAME.public.json, what a party client holds): models, shapes, router, ring and hash.")

    @Argument(help: "A checkpoint or bundle (.h5), or a bundle's public description (.public.json).")
    var file: String

    @Flag(help: "List every weight tensor with its shape.")
    var tensors = false

    @OptionGroup var json: JSONOutputOptions

    func run() throws {
        if file.hasSuffix(".json") { return try inspectPublic() }
        let members = try ModelCheckpoint.listModels(inBundle: file)
        let groups: [(String?, String?)] = members.isEmpty ? [(nil, nil)] : members.map { ($0, $0) }
        var models: [[String: Any]] = []
        for (name, group) in groups {
            let ckpt = try ModelCheckpoint.read(from: file, group: group)
            let config = try CheckpointConfig.decode(ckpt.configJSON, path: file)
            let a = config.architecture
            let params = ckpt.weights.values.reduce(0) { $0 + $1.data.count }
            var entry: [String: Any] = [
                "name": name ?? config.name ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent,
                "task": config.task, "labels": config.labels, "params": params,
                "architecture": ["layers": a.layers, "hidden": a.hidden, "heads": a.heads, "intermediate": a.intermediate,
                                 "vocab_size": a.vocabSize, "max_position": a.maxPosition, "num_labels": a.numLabels],
                "variant": ["softmax": config.variant.softmax, "activation": config.variant.activation],
                "quantization": ["ring_bits": config.quantization.ringBits, "frac_bits": config.quantization.fracBits],
                "vocab_size": ckpt.vocab.count,
            ]
            if a.isPruned, var arch = entry["architecture"] as? [String: Any] {
                arch["layer_heads"] = a.headsPerLayer
                arch["layer_intermediate"] = a.intermediatePerLayer
                entry["architecture"] = arch
            }
            if let d = config.devAccuracy { entry["dev_accuracy"] = d }
            if let t = config.testAccuracy { entry["test_accuracy"] = t }
            if let m = config.maxLength { entry["max_length"] = m }
            if a.publicLayerCount > 0 { entry["public_layers"] = a.publicLayerCount }
            if config.hasPublicEmbedding { entry["embedding"] = CheckpointConfig.publicEmbedding }
            if tensors {
                entry["tensors"] = Dictionary(uniqueKeysWithValues: ckpt.weights.map { ($0.key, $0.value.shape) })
            }
            models.append(entry)
            if !json.usesStdout {
                print("model \(entry["name"]!): task \(config.task) (\(config.labels.count) labels), \(a.layers) layers, hidden \(a.hidden), "
                      + (a.isPruned ? "pruned: heads per layer \(a.headsPerLayer), "
                            + "widths \(a.intermediatePerLayer) (head width \(a.headDim))"
                            : "heads \(a.heads), intermediate \(a.intermediate)") + ", \(params) parameters")
                print("  variant softmax=\(config.variant.softmax) activation=\(config.variant.activation)"
                      + (a.publicLayerCount > 0 ? " after \(a.publicLayerCount) public exact layers" : "")
                      + (config.hasPublicEmbedding ? ", public embedding" : "") + "; "
                      + "ring Z_2^\(config.quantization.ringBits), \(config.quantization.fracBits) fractional bits")
                let acc = [config.devAccuracy.map { String(format: "dev %.2f%%", $0 * 100) },
                           config.testAccuracy.map { String(format: "test %.2f%%", $0 * 100) }].compactMap { $0 }
                if !acc.isEmpty { print("  accuracy: " + acc.joined(separator: ", ")) }
                if tensors {
                    for (k, v) in ckpt.weights.sorted(by: { $0.key < $1.key }) { print("  \(k) \(v.shape)") }
                }
            }
        }
        var out: [String: Any] = ["file": file, "models": models]
        if !members.isEmpty {
            let info = try PoolBundle.info(file)
            if let h = info.contentHash { out["content_hash"] = h }
            if let b = info.bestMember { out["best_member"] = b }
            if let r = info.router {
                out["router"] = ["models": r.models, "feature_member": r.featureMember, "feature_layers": r.featureLayers,
                                 "features": r.featureSource.rawValue,
                                 "hidden": r.hidden, "lambda": r.lambda, "network": r.network,
                                 "test_accuracy": r.report.chosen.accuracy, "test_seconds": r.report.chosen.seconds] as [String: Any]
            }
            if !info.costBuckets.isEmpty { out["cost"] = ["buckets": info.costBuckets, "models": info.costs] as [String: Any] }
            if !json.usesStdout {
                if let b = info.bestMember { print("best member: \(b)") }
                if let r = info.router {
                    print("router: \(r.models.count) members (\(r.models.joined(separator: ", "))); features = "
                          + RouterFeatures.describe(layers: r.featureLayers, member: r.featureMember, features: r.featureSource) + "; MLP hidden \(r.hidden); lambda \(r.lambda) on predicted \(r.network) seconds; "
                          + String(format: "fitted test point %.2f%% at %.3f s/query", r.report.chosen.accuracy * 100, r.report.chosen.seconds))
                } else {
                    print("router: none (routing modes need one: fit-router, then export)")
                }
                if !info.costBuckets.isEmpty {
                    print("cost table (predicted, per query): bucket " + info.costBuckets.map(String.init).joined(separator: " / "))
                    for (name, row) in info.costs.sorted(by: { $0.key < $1.key }) {
                        let lan = (row["seconds_lan"] ?? []).map { String(format: "%.3f", $0) }.joined(separator: " / ")
                        let mb = (row["online_bytes"] ?? []).map { String(format: "%.1f", $0 / 1e6) }.joined(separator: " / ")
                        print("  \(name): LAN s \(lan); online MB \(mb)")
                    }
                }
                if let h = info.contentHash { print("content hash: \(h)") }
            }
        }
        try json.write(out)
    }

    /// A bundle's public description: what a `party` client knows about the bundle.
    func inspectPublic() throws {
        let m = try DeploymentManifest.load(file)
        let models: [[String: Any]] = zip(m.models, m.shapes).map { name, s in
            ["name": name, "layers": s.layers, "hidden": s.hidden, "heads": s.heads, "intermediate": s.intermediate,
             "vocab_size": s.vocab, "max_position": s.maxPosition, "classes": s.classes,
             "variant": ["softmax": s.softmax.rawValue, "activation": s.activation.rawValue]]
        }
        var object: [String: Any] = ["kind": "public description", "bundle_hash": m.bundleHash, "protocol_version": m.protocolVersion,
                                     "ring_bits": m.ringBits, "frac_bits": m.fracBits, "vocab_size": m.vocab.count, "models": models]
        if let b = m.bestMember { object["best_member"] = b }
        if let r = m.router {
            object["router"] = ["feature_member": m.models[r.featureMember], "feature_layers": r.featureLayers, "features": r.features.rawValue,
                                "hidden": r.hidden, "lambda": r.lambda]
        }
        if !json.usesStdout {
            print("public description of bundle \(m.bundleHash) (protocol \(m.protocolVersion)): no weights")
            for (name, s) in zip(m.models, m.shapes) {
                print("model \(name): \(s.layers) layers, hidden \(s.hidden), \(s.classes) classes, softmax \(s.softmax.rawValue), activation \(s.activation.rawValue)")
            }
            print("ring Z_2^\(m.ringBits), \(m.fracBits) fractional bits; vocabulary \(m.vocab.count) pieces" + (m.bestMember.map { "; best member \($0)" } ?? ""))
            if let r = m.router {
                print("router: features = " + RouterFeatures.describe(layers: r.featureLayers, member: m.models[r.featureMember], features: r.features)
                      + "; MLP hidden \(r.hidden); lambda \(r.lambda)")
            }
        }
        try json.write(object)
    }
}
