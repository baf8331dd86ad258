import ArgumentParser
import Foundation
import Router
import SecureInference
import Yams

struct FitRouterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit-router",
        abstract: "Fit the router of a trained pool: per-query utility and cost of every member, and lambda.",
        discussion: """
            Reads <pool>/pool_summary.json and the members' checkpoints, labels every dev sentence with
            which members answer it correctly (the members never trained on dev), and trains a 2-layer
            MLP from router features (the [CLS] state after the first layer(s) of the cheapest member, or with
            feature_layers: 0 the mean public embedding, which costs nothing under MPC, or with features: logits
            that member's logits: its whole forward, whose answer is then free when the router picks it)
            to each member's probability of being right. Each query then goes to the member with the
            largest utility − lambda · predicted secure seconds (at its length bucket, cost model).
            Lambda is chosen on 5-fold cross-fitted dev utilities: the least expected cost whose routed
            dev accuracy is within --max-drop of the best member's. When the pool was trained with
            `train-pool --crossfit K`, its <pool>/crossfit.json adds every training example, labelled by the
            fold that did not train on it, to dev's rows (for the predictor and for lambda;
            train_labels: false to ignore it; their features come from the fold's copy of the feature member,
            which never saw the row, or with train_features: final from the pool's own). Writes the router (DESIGN §4) to
            --out (default <pool>/router.h5) with the whole lambda sweep on dev and test, the members
            alone and the oracle router in its config, and prints a table. See docs/router.md.
            --lambda (or the config key lambda) fixes lambda instead: e.g. a point read off the sweep of an
            earlier fit; the dev rule's choice is still reported.
            Config keys (YAML, all optional): hidden, epochs, lr, weight_decay, feature_noise, folds, max_drop, lambda, net,
            features (cls or logits), feature_layers, feature_member, seed, train_labels, train_features (fold or final), members (route over these pool members only; \
            default all: e.g. the members that share one fixed point, since a routed session runs one).
            """)

    @Option(help: "A train-pool output directory (with pool_summary.json).")
    var pool: String

    @Option(help: "Router settings, YAML (keys in the discussion above).")
    var config: String?

    @Option(help: "Output router file (default <pool>/router.h5).")
    var out: String?

    @Option(help: "Directory holding <task>/{dev,test}.tsv.")
    var dataDir = "datasets"

    @Option(help: "Network whose predicted seconds price the members: none, lan or wan (overrides the config).")
    var net: String?

    @Option(help: "Largest routed dev accuracy loss accepted, as a fraction (0.005 = 0.5 points; overrides the config).")
    var maxDrop: Double?

    @Option(help: "Use this lambda (per second, >= 0) instead of choosing one on dev (overrides the config).")
    var lambda: Double?

    @Option(help: "Also write the accuracy/latency plot as SVG to this path.")
    var plot: String?

    @OptionGroup var progressOptions: ProgressOptions
    @OptionGroup var json: JSONOutputOptions

    func run() throws {
        var options = try config.map(Self.loadOptions) ?? RouterFitOptions()
        if let net {
            guard ["none", "lan", "wan"].contains(net) else { throw ValidationError("--net must be none, lan or wan, not '\(net)'") }
            options.network = net
        }
        if let maxDrop {
            guard (0...1).contains(maxDrop) else { throw ValidationError("--max-drop must be a fraction in [0, 1], got \(maxDrop)") }
            options.maxDrop = maxDrop
        }
        if let lambda {
            guard lambda.isFinite, lambda >= 0 else { throw ValidationError("--lambda must be a number >= 0 (per second), got \(lambda)") }
            options.lambda = lambda
        }
        let fitter = RouterFitter(poolDir: URL(fileURLWithPath: pool), dataDir: dataDir, options: options)
        fitter.note = { if !progressOptions.quiet { printErr("fit-router: " + $0) } }
        let (network, cfg) = try fitter.run()
        let outPath = out ?? URL(fileURLWithPath: pool).appendingPathComponent("router.h5").path
        try RouterFitter.checkpoint(network, config: cfg).write(to: outPath)
        let r = cfg.report
        if let plot { try SweepPlot.svg(r).write(toFile: plot, atomically: true, encoding: .utf8) }
        if !json.usesStdout {
            Self.printReport(r)
            print("wrote \(outPath)" + (plot.map { " and \($0)" } ?? ""))
        }
        let data = try JSONEncoder().encode(r)
        try json.write(try JSONSerialization.jsonObject(with: data))
    }

    /// The router's table: members, the chosen lambda's test point against the best member, the oracle.
    static func printReport(_ r: RouterReport) {
        print("router for \(r.task): features = \(RouterFeatures.describe(layers: r.featureLayers, member: r.featureMember, features: r.features ?? .cls)); "
              + "costs = predicted \(r.network) seconds" + (r.features == .logits ? " (routed: every query pays \(r.featureMember) first)" : ""))
        print("member".padding(toLength: 18, withPad: " ", startingAt: 0) + "   dev%   test%   s/query (test)")
        for m in r.members {
            print(m.name.padding(toLength: 18, withPad: " ", startingAt: 0)
                  + String(format: " %6.2f  %6.2f   %.3f", m.devAccuracy * 100, m.testAccuracy * 100, m.testSeconds))
        }
        let best = r.members.first { $0.name == r.bestMember }!
        print(String(format: "routed (lambda %.4g%@)    test %.2f%%, %.3f s/query: %.2fx cheaper than %@ (test %.2f%%, %.3f s)",
                     r.lambda, r.lambdaSet == true ? ", set" : "", r.chosen.accuracy * 100, r.chosen.seconds, best.testSeconds / max(r.chosen.seconds, 1e-12),
                     best.name, best.testAccuracy * 100, best.testSeconds))
        print("  routing histogram (test): " + zip(r.members, r.chosen.histogram).map { "\($0.name) \($1)" }.joined(separator: ", "))
        if let n = r.trainRows, n > 0 {
            print("  fitted on dev and \(n) cross-fitted training examples (features: \(r.trainFeatures ?? "final"))")
        }
        print(String(format: "oracle router          test %.2f%%, %.3f s/query", r.oracleAccuracy * 100, r.oracleSeconds))
    }

    /// Reads the YAML router settings; an unknown key or a bad value is an error naming the file.
    static func loadOptions(_ path: String) throws -> RouterFitOptions {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("cannot read \(path)") }
        let node: Any?
        do { node = try Yams.load(yaml: text) } catch { throw ValidationError("\(path): not valid YAML (\(error))") }
        guard let m = node as? [String: Any] else { throw ValidationError("\(path): expected a mapping of router settings") }
        let known: Set<String> = ["hidden", "epochs", "lr", "weight_decay", "feature_noise", "folds", "max_drop", "lambda", "net", "features", "feature_layers", "feature_member", "seed", "train_labels", "train_features", "members"]
        if let bad = m.keys.sorted().first(where: { !known.contains($0) }) {
            throw ValidationError("\(path): unknown key '\(bad)' (known: \(known.sorted().joined(separator: ", ")))")
        }
        func number(_ k: String) throws -> Double? {
            guard let v = m[k] else { return nil }
            if let d = v as? Double { return d }
            if let i = v as? Int { return Double(i) }
            if let s = v as? String, let d = Double(s) { return d }
            throw ValidationError("\(path): '\(k)' must be a number")
        }
        func int(_ k: String, min: Int) throws -> Int? {
            guard let v = try number(k) else { return nil }
            guard v == v.rounded(), Int(v) >= min else { throw ValidationError("\(path): '\(k)' must be an integer >= \(min)") }
            return Int(v)
        }
        var o = RouterFitOptions()
        if let v = try int("hidden", min: 1) { o.hidden = v }
        if let v = try int("epochs", min: 1) { o.epochs = v }
        if let v = try number("lr") { o.learningRate = Float(v) }
        if let v = try number("weight_decay") { o.weightDecay = Float(v) }
        if let v = try number("feature_noise") {
            guard v >= 0 else { throw ValidationError("\(path): 'feature_noise' must be >= 0") }
            o.featureNoise = Float(v)
        }
        if let v = try int("folds", min: 2) { o.folds = v }
        if let v = try number("max_drop") { o.maxDrop = v }
        if let v = try number("lambda") {
            guard v.isFinite, v >= 0 else { throw ValidationError("\(path): 'lambda' must be a number >= 0 (per second)") }
            o.lambda = v
        }
        if let v = m["net"] {
            guard let s = v as? String, ["none", "lan", "wan"].contains(s) else { throw ValidationError("\(path): 'net' must be none, lan or wan") }
            o.network = s
        }
        if let v = m["features"] {
            guard let s = v as? String, let f = RouterFeatureSource(rawValue: s) else { throw ValidationError("\(path): 'features' must be cls or logits") }
            o.features = f
        }
        if let v = try int("feature_layers", min: 0) { o.featureLayers = v }
        if let v = m["feature_member"] { o.featureMember = "\(v)" }
        if let v = try int("seed", min: 0) { o.seed = UInt64(v) }
        if let v = m["train_labels"] {
            guard let b = v as? Bool else { throw ValidationError("\(path): 'train_labels' must be true or false") }
            o.trainLabels = b
        }
        if let v = m["train_features"] {
            guard let s = v as? String, let f = RouterFitOptions.TrainFeatures(rawValue: s) else {
                throw ValidationError("\(path): 'train_features' must be fold or final")
            }
            o.trainFeatures = f
        }
        if let v = m["members"] {
            guard let list = v as? [Any], !list.isEmpty else { throw ValidationError("\(path): 'members' must be a list of pool member names") }
            o.members = list.map { "\($0)" }
        }
        return o
    }
}
