import Foundation
import Transformer
import Yams

/// Hyper-parameters of one fine-tuning run; every key has a default.
///
/// YAML keys (snake case): `epochs`, `batch_size`, `lr`, `warmup` (fraction of
/// all steps), `weight_decay`, `max_grad_norm`, `max_length`, `dropout`,
/// `seed`, `eval_batch_size`, `save_every` (steps between resumable states).
public struct TrainingOptions: Equatable, Sendable {
    public var epochs = 3
    public var batchSize = 32
    public var learningRate: Float = 1e-4
    public var warmupFraction: Float = 0.1
    public var weightDecay: Float = 0.01
    public var maxGradNorm: Float = 1.0
    /// Maximum tokens per sequence, [CLS] and [SEP] included; nil: the task's default.
    public var maxLength: Int?
    /// Hidden and attention dropout; nil keeps the initial checkpoint's (0.1 for random init).
    public var dropout: Float?
    public var seed: UInt64 = 42
    public var evalBatchSize = 64
    /// A resumable training state is saved every this many optimizer steps (and at each epoch end).
    public var saveEvery = 100

    public init() {}

    static let keys: Set<String> = [
        "epochs", "batch_size", "lr", "warmup", "weight_decay", "max_grad_norm",
        "max_length", "dropout", "seed", "eval_batch_size", "save_every",
    ]

    /// Overrides the fields present in `node`.
    mutating func apply(_ node: [String: Any], at path: String, file: String) throws {
        let r = YAMLReader(file: file, path: path, node: node)
        try r.checkKeys(Self.keys)
        if let v = try r.int("epochs", min: 1) { epochs = v }
        if let v = try r.int("batch_size", min: 1) { batchSize = v }
        if let v = try r.float("lr", min: 0) { learningRate = v }
        if let v = try r.float("warmup", min: 0, max: 1) { warmupFraction = v }
        if let v = try r.float("weight_decay", min: 0) { weightDecay = v }
        if let v = try r.float("max_grad_norm", min: 0) { maxGradNorm = v }
        if let v = try r.int("max_length", min: 3) { maxLength = v }
        if let v = try r.float("dropout", min: 0, max: 0.99) { dropout = v }
        if let v = try r.int("seed", min: 0) { seed = UInt64(v) }
        if let v = try r.int("eval_batch_size", min: 1) { evalBatchSize = v }
        if let v = try r.int("save_every", min: 1) { saveEvery = v }
    }
}

/// Where a pool member's initial weights come from.
public enum ModelInit: Equatable, Sendable {
    /// A Hugging Face BERT directory or one of our checkpoints, keeping the first `layers` layers
    /// (nil: all of them).
    case pretrained(path: String, layers: Int?)
    /// Random (HF-style) initialisation of the given shape, with the vocabulary of `vocab` (a vocab.txt).
    case random(layers: Int, hidden: Int, heads: Int, intermediate: Int, vocab: String)
}

/// Knowledge distillation from a fine-tuned teacher, in two stages (TinyBERT, Jiao et al.
/// 2020; MPCFormer, Li et al. 2023):
/// - stage 1 (`stage1Epochs` epochs, none by default): layer-wise distillation only,
///   `hidden_weight * MSE(hidden states) + attention_weight * MSE(attention scores)`
///   with the uniform layer map of `LayerDistillation`;
/// - stage 2 (the `training.epochs` epochs): the task on the logits,
///   loss = (1 - alpha) * CE(student, gold) + alpha * T^2 * KL(teacher_T || student_T)
///   (Hinton et al. 2015).
///
/// YAML: `distill: {teacher: runs/mr/pool/minilm-l6.h5, alpha: 0.5, temperature: 2.0,
/// stage1_epochs: 2, hidden_weight: 1.0, attention_weight: 1.0}`.
/// The teacher must use the same vocabulary and labels as the student.
public struct DistillationConfig: Equatable, Sendable {
    public var teacher: String
    public var alpha: Float = 0.5
    public var temperature: Float = 2.0
    /// Epochs of stage 1 (hidden-state and attention-score MSE) before the task epochs.
    public var stage1Epochs = 0
    /// Weight of the hidden-state MSE in stage 1.
    public var hiddenWeight: Float = 1
    /// Weight of the attention-score MSE in stage 1.
    public var attentionWeight: Float = 1
    /// A transfer set (`TransferSet`): a TSV whose `sentence` column holds unlabelled in-domain text
    /// (e.g. another task's train split), split into sentences that the teacher labels and that join
    /// the training set of both stages. nil: the task's train split only.
    public var transfer: String?
    /// Sentences drawn from `transfer` (seeded).
    public var transferSentences = 20_000

    public init(
        teacher: String, alpha: Float = 0.5, temperature: Float = 2.0, stage1Epochs: Int = 0,
        hiddenWeight: Float = 1, attentionWeight: Float = 1
    ) {
        self.teacher = teacher
        self.alpha = alpha
        self.temperature = temperature
        self.stage1Epochs = stage1Epochs
        self.hiddenWeight = hiddenWeight
        self.attentionWeight = attentionWeight
    }
}

/// Quantization-aware training for the secure runtime's fixed point (ring Z_2^ring_bits,
/// `frac_bits` fractional bits), see `FakeQuantization`. The values are recorded in the
/// checkpoint's `quantization` block; without `qat` that block says 64/16 (the defaults).
///
/// YAML: `qat: {ring_bits: 32, frac_bits: 12, weight_bits: null}`; `ring_bits` 64 (default)
/// or 32; `frac_bits` defaults to 16 on the 64-bit ring and 12 on the 32-bit one;
/// `weight_bits` (2...24) adds symmetric per-tensor weight quantization.
public struct QATConfig: Equatable, Sendable {
    public var ringBits: Int
    public var fracBits: Int
    public var weightBits: Int?

    public init(ringBits: Int = 64, fracBits: Int? = nil, weightBits: Int? = nil) {
        self.ringBits = ringBits
        self.fracBits = fracBits ?? (ringBits == 32 ? 12 : 16)
        self.weightBits = weightBits
    }

    /// The model-side setting.
    public var fakeQuantization: FakeQuantization {
        FakeQuantization(fracBits: fracBits, ringBits: ringBits, weightBits: weightBits)
    }
}

/// MPC-cost-penalized training with structure gates (`StructureGates`), then physical pruning
/// (`StructurePruning`). The loss becomes `task loss + lambda · E[cost] / cost of the full model`,
/// where E[cost] is the model's expected secure seconds per query under `net`, from the calibrated
/// `CostModel`, averaged over the length buckets of the training texts, with every gate weighted by
/// its probability of being open: a head costs what its share of attention costs under MPC.
///
/// YAML: `prune: {lambda: 1.0, net: lan, heads: true, ffn: true, layers: true, ffn_group: 64,
/// gate_lr_scale: 100, init_log_alpha: 3, warmup: 0.3}`; `lambda` is required; `ffn_group` must divide
/// the feed-forward width; `warmup` is the fraction of the task steps over which the penalty's weight
/// ramps up from 0 to `lambda` (a model that has not learned the task yet would otherwise give up
/// structure it needs before its gradient can say so). With `prune`, each epoch's checkpoint is the pruned model and the last
/// epoch's is kept (the penalty keeps lowering the cost, so earlier epochs are not comparable).
public struct PruneConfig: Equatable, Sendable {
    public var lambda: Float
    public var network: String = "lan"
    public var heads = true, ffn = true, layers = true
    public var ffnGroup = 64
    public var gateLRScale: Float = 100
    public var initialLogAlpha: Float = 3
    public var warmup: Float = 0.3

    public init(lambda: Float) { self.lambda = lambda }
}

/// One member of a model pool.
public struct PoolMemberConfig: Equatable, Sendable {
    /// Cost-penalized gates and pruning, when set.
    public var prune: PruneConfig?
    /// Distillation from a teacher checkpoint, when set.
    public var distill: DistillationConfig?
    /// File-name-safe identifier; the checkpoint is `<out>/pool/<name>.h5`.
    public var name: String
    public var initialization: ModelInit
    /// Attention normalisation: `exact` softmax or an MPC-friendly replacement (`2quad`, `relu-norm`).
    public var softmax: SoftmaxVariant = .exact
    /// FFN activation: `gelu` (erf form) or an MPC-friendly replacement (`quad`, `relu`).
    public var activation: ActivationVariant = .gelu
    /// Quantization-aware training, when set.
    public var qat: QATConfig?
    /// Post-training quantization, when set: the member trains in float, is evaluated (dev and test)
    /// with the runtime's fake quantization, and its checkpoint records this ring and fixed point, so
    /// that the secure runtime runs it there. For a model whose values already fit the ring (docs/codesign.md,
    /// ablation (a)), this keeps the float training's accuracy. Exclusive with `qat`.
    public var ptq: QATConfig?
    /// A public pretrained model (Hugging Face directory or checkpoint) whose embedding group
    /// (`bert.embeddings.*`) the member takes and keeps frozen, so that the secure runtime can let the
    /// client embed its own text in plaintext (no table lookup under MPC); nil: trained, private embeddings.
    public var publicEmbedding: String?
    /// How many leading encoder layers the member takes from the `public_embedding` model and keeps
    /// frozen (exact softmax and GeLU), so that the client computes them in plaintext and only the layers
    /// after them run under MPC; nil: none.
    public var publicLayers: Int?
    public var training: TrainingOptions
}

/// A `train-pool` configuration: one task and the models to train on it.
///
/// ```yaml
/// task: mr                      # mr | imdb | r8 | trec | sst2 | mrpc | qnli | rte
/// data_dir: datasets            # optional; holds <task>/{train,dev,test}.tsv
/// training: {epochs: 3, lr: 1.0e-4}   # optional defaults for every model
/// models:
///   - name: minilm-l6
///     init: pretrained          # pretrained | random
///     from: checkpoints/pretrained/minilm-l6   # HF directory or .h5 (pretrained only)
///     layers: 6                 # keep the first N layers (pretrained) or depth (random)
///   - name: tiny
///     init: random
///     layers: 2
///     hidden: 128
///     heads: 2
///     intermediate: 512
///     softmax: 2quad            # exact | 2quad | relu-norm (default exact)
///     activation: quad          # gelu | quad | relu (default gelu)
///     distill: {teacher: runs/mr/pool/minilm-l6.h5, alpha: 0.5, temperature: 2.0,
///               stage1_epochs: 2, hidden_weight: 1.0, attention_weight: 1.0}   # optional
///     qat: {ring_bits: 32, frac_bits: 12, weight_bits: null}                     # optional
///     ptq: {ring_bits: 32, frac_bits: 12}   # optional, instead of qat: float training, quantized afterwards
///     prune: {lambda: 1.0, net: lan, heads: true, ffn: true, layers: true, ffn_group: 64}   # optional
///     vocab: checkpoints/pretrained/minilm-l6/vocab.txt   # default (random only)
///     public_embedding: checkpoints/pretrained/minilm-l6   # optional: frozen public embeddings
///     public_layers: 4          # optional (needs public_embedding): the first 4 layers are the public model's, frozen
///     training: {lr: 5.0e-4}    # per-model overrides
/// ```
/// Unknown keys are errors, so a typo never silently falls back to a default.
public struct PoolConfig: Equatable, Sendable {
    public var task: String
    public var dataDir: String
    public var models: [PoolMemberConfig]

    /// Reads and validates a YAML pool config.
    /// - Throws: `ConfigError` naming the file and the offending key or value.
    public static func load(path: String) throws -> PoolConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(path: path, "cannot read the config file (does it exist?)")
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses YAML text; `file` only labels error messages.
    public static func parse(yaml text: String, file: String = "<config>") throws -> PoolConfig {
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch {
            throw ConfigError(path: file, "is not valid YAML: \(error)")
        }
        guard let top = root as? [String: Any] else {
            throw ConfigError(path: file, "the top level must be a mapping with keys task and models")
        }
        let r = YAMLReader(file: file, path: "", node: top)
        try r.checkKeys(["task", "data_dir", "training", "models"])
        guard let task = try r.string("task") else {
            throw ConfigError(path: file, "missing key 'task' (e.g. task: mr)")
        }
        var defaults = TrainingOptions()
        if let t = try r.mapping("training") { try defaults.apply(t, at: "training", file: file) }
        guard let list = top["models"] as? [Any], !list.isEmpty else {
            throw ConfigError(path: file, "'models' must be a non-empty list of model entries")
        }
        var members: [PoolMemberConfig] = []
        for (i, item) in list.enumerated() {
            guard let m = item as? [String: Any] else {
                throw ConfigError(path: file, "models[\(i)] must be a mapping")
            }
            let member = try parseMember(m, index: i, defaults: defaults, file: file)
            if members.contains(where: { $0.name == member.name }) {
                throw ConfigError(path: file, "models[\(i)]: duplicate model name '\(member.name)'")
            }
            members.append(member)
        }
        return PoolConfig(task: task, dataDir: try r.string("data_dir") ?? "datasets", models: members)
    }

    private static func parseMember(
        _ m: [String: Any], index i: Int, defaults: TrainingOptions, file: String
    ) throws -> PoolMemberConfig {
        let at = "models[\(i)]"
        let r = YAMLReader(file: file, path: at, node: m)
        try r.checkKeys([
            "name", "init", "from", "vocab", "layers", "hidden", "heads", "intermediate", "softmax", "activation", "distill",
            "qat", "ptq", "prune", "training", "public_embedding", "public_layers",
        ])
        guard let name = try r.string("name") else { throw ConfigError(path: file, "\(at): missing key 'name'") }
        guard name.range(of: "^[A-Za-z0-9._-]+$", options: .regularExpression) != nil else {
            throw ConfigError(path: file, "\(at).name '\(name)' may only use letters, digits, '.', '_' and '-'")
        }
        var training = defaults
        if let t = try r.mapping("training") { try training.apply(t, at: "\(at).training", file: file) }
        let initialization: ModelInit
        switch try r.string("init") ?? "pretrained" {
        case "pretrained":
            for k in ["hidden", "heads", "intermediate", "vocab"] where m[k] != nil {
                throw ConfigError(path: file, "\(at).\(k) applies only to init: random (a pretrained model keeps its width)")
            }
            initialization = .pretrained(
                path: try r.string("from") ?? "checkpoints/pretrained/minilm-l6",
                layers: try r.int("layers", min: 1))
        case "random":
            if m["from"] != nil { throw ConfigError(path: file, "\(at).from applies only to init: pretrained") }
            func req(_ k: String) throws -> Int {
                guard let v = try r.int(k, min: 1) else {
                    throw ConfigError(path: file, "\(at): init: random needs '\(k)'")
                }
                return v
            }
            let hidden = try req("hidden"), heads = try req("heads")
            guard hidden % heads == 0 else {
                throw ConfigError(path: file, "\(at): hidden (\(hidden)) must be a multiple of heads (\(heads))")
            }
            initialization = .random(
                layers: try req("layers"), hidden: hidden, heads: heads, intermediate: try req("intermediate"),
                vocab: try r.string("vocab") ?? "checkpoints/pretrained/minilm-l6/vocab.txt")
        case let other:
            throw ConfigError(path: file, "\(at).init must be 'pretrained' or 'random', not '\(other)'")
        }
        var member = PoolMemberConfig(name: name, initialization: initialization, training: training)
        member.publicEmbedding = try r.string("public_embedding")
        member.publicLayers = try r.int("public_layers", min: 1)
        if member.publicLayers != nil {
            guard member.publicEmbedding != nil, case .pretrained = initialization else {
                throw ConfigError(path: file, "\(at).public_layers needs init: pretrained and public_embedding (the public model whose layers it takes)")
            }
            guard m["prune"] == nil else {
                throw ConfigError(path: file, "\(at): public_layers and prune cannot be combined (public layers are frozen; gate the layers after them by a separate member)")
            }
        }
        if let d = try r.mapping("distill") { member.distill = try parseDistill(d, at: "\(at).distill", file: file) }
        if m["qat"] != nil {
            guard let q = try r.mapping("qat") else { throw ConfigError(path: file, "'\(at).qat' must be a mapping") }
            member.qat = try parseQAT(q, at: "\(at).qat", file: file)
        }
        if m["ptq"] != nil {
            guard let q = try r.mapping("ptq") else { throw ConfigError(path: file, "'\(at).ptq' must be a mapping") }
            guard member.qat == nil else {
                throw ConfigError(path: file, "\(at): qat and ptq cannot be combined (ptq trains in float and quantizes afterwards)")
            }
            member.ptq = try parseQAT(q, at: "\(at).ptq", file: file)
        }
        if m["prune"] != nil {
            guard let p = try r.mapping("prune") else { throw ConfigError(path: file, "'\(at).prune' must be a mapping") }
            member.prune = try parsePrune(p, at: "\(at).prune", file: file)
        }
        if let s = try r.string("softmax") {
            guard let v = SoftmaxVariant(rawValue: s) else {
                throw ConfigError(path: file, "\(at).softmax must be one of \(SoftmaxVariant.allCases.map(\.rawValue).joined(separator: ", ")), not '\(s)'")
            }
            member.softmax = v
        }
        if let s = try r.string("activation") {
            guard let v = ActivationVariant(rawValue: s) else {
                throw ConfigError(path: file, "\(at).activation must be one of \(ActivationVariant.allCases.map(\.rawValue).joined(separator: ", ")), not '\(s)'")
            }
            member.activation = v
        }
        return member
    }

    private static func parseDistill(_ d: [String: Any], at: String, file: String) throws -> DistillationConfig {
        let dr = YAMLReader(file: file, path: at, node: d)
        try dr.checkKeys(["teacher", "alpha", "temperature", "stage1_epochs", "hidden_weight", "attention_weight", "transfer", "transfer_sentences"])
        guard let teacher = try dr.string("teacher") else {
            throw ConfigError(path: file, "\(at) needs 'teacher' (a fine-tuned checkpoint .h5)")
        }
        var dc = DistillationConfig(teacher: teacher)
        if let a = try dr.float("alpha", min: 0, max: 1) { dc.alpha = a }
        if let t = try dr.float("temperature", min: 0.01) { dc.temperature = t }
        if let e = try dr.int("stage1_epochs", min: 0) { dc.stage1Epochs = e }
        if let w = try dr.float("hidden_weight", min: 0) { dc.hiddenWeight = w }
        if let w = try dr.float("attention_weight", min: 0) { dc.attentionWeight = w }
        dc.transfer = try dr.string("transfer")
        if let n = try dr.int("transfer_sentences", min: 1) {
            guard dc.transfer != nil else { throw ConfigError(path: file, "\(at).transfer_sentences needs 'transfer' (a TSV of unlabelled text)") }
            dc.transferSentences = n
        }
        if dc.stage1Epochs > 0 && dc.hiddenWeight == 0 && dc.attentionWeight == 0 {
            throw ConfigError(path: file, "\(at): stage1_epochs > 0 needs hidden_weight or attention_weight above 0")
        }
        return dc
    }

    private static func parsePrune(_ p: [String: Any], at: String, file: String) throws -> PruneConfig {
        let pr = YAMLReader(file: file, path: at, node: p)
        try pr.checkKeys(["lambda", "net", "heads", "ffn", "layers", "ffn_group", "gate_lr_scale", "init_log_alpha", "warmup"])
        guard let lambda = try pr.float("lambda", min: 0) else {
            throw ConfigError(path: file, "\(at) needs 'lambda' (weight of the expected MPC cost, e.g. 1.0)")
        }
        var c = PruneConfig(lambda: lambda)
        if let n = try pr.string("net") {
            guard ["none", "lan", "wan"].contains(n) else {
                throw ConfigError(path: file, "'\(at).net' must be none, lan or wan, not '\(n)'")
            }
            c.network = n
        }
        if let v = try pr.bool("heads") { c.heads = v }
        if let v = try pr.bool("ffn") { c.ffn = v }
        if let v = try pr.bool("layers") { c.layers = v }
        if let v = try pr.int("ffn_group", min: 1) { c.ffnGroup = v }
        if let v = try pr.float("gate_lr_scale", min: 1) { c.gateLRScale = v }
        if let v = try pr.float("init_log_alpha", min: -10, max: 10) { c.initialLogAlpha = v }
        if let v = try pr.float("warmup", min: 0, max: 1) { c.warmup = v }
        if !c.heads && !c.ffn && !c.layers { throw ConfigError(path: file, "\(at): heads, ffn and layers are all false: nothing to prune") }
        return c
    }

    private static func parseQAT(_ q: [String: Any], at: String, file: String) throws -> QATConfig {
        // `weight_bits: null` (or `~`) means "no weight quantization", like leaving it out.
        let node = q.filter { !($0.value is NSNull) }
        let qr = YAMLReader(file: file, path: at, node: node)
        try qr.checkKeys(["ring_bits", "frac_bits", "weight_bits"])
        let ring = try qr.int("ring_bits", min: 0) ?? 64
        guard ring == 64 || ring == 32 else {
            throw ConfigError(path: file, "'\(at).ring_bits' must be 64 or 32 (the rings of the secure runtime), not \(ring)")
        }
        let frac = try qr.int("frac_bits", min: 1)
        if let frac, frac > ring - 2 {
            throw ConfigError(path: file, "'\(at).frac_bits' must be at most \(ring - 2) on a \(ring)-bit ring, not \(frac)")
        }
        // The secure runtime runs a 32-bit model's linear layers on Z_2^32 with at most 12 fractional bits.
        if let frac, ring == 32, frac > 12 {
            throw ConfigError(path: file, "'\(at).frac_bits' must be at most 12 with ring_bits 32 (the secure runtime's narrow products), not \(frac)")
        }
        let weightBits = try qr.int("weight_bits", min: 2)
        if let w = weightBits, w > 24 {
            throw ConfigError(path: file, "'\(at).weight_bits' must be in 2...24 (or null for none), not \(w)")
        }
        return QATConfig(ringBits: ring, fracBits: frac, weightBits: weightBits)
    }
}

/// Typed access to one YAML mapping, with errors that name the file and key path.
struct YAMLReader {
    let file: String
    let path: String
    let node: [String: Any]

    private func key(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

    func checkKeys(_ allowed: Set<String>) throws {
        for k in node.keys.sorted() where !allowed.contains(k) {
            throw ConfigError(path: file, "unknown key '\(key(k))' (allowed here: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    func string(_ k: String) throws -> String? {
        guard let v = node[k] else { return nil }
        if let s = v as? String { return s }
        if let n = v as? Int { return String(n) }
        throw ConfigError(path: file, "'\(key(k))' must be a string")
    }

    func int(_ k: String, min: Int) throws -> Int? {
        guard let v = node[k] else { return nil }
        guard let n = v as? Int else { throw ConfigError(path: file, "'\(key(k))' must be an integer") }
        guard n >= min else { throw ConfigError(path: file, "'\(key(k))' must be at least \(min), not \(n)") }
        return n
    }

    func float(_ k: String, min: Float, max: Float = .infinity) throws -> Float? {
        guard let v = node[k] else { return nil }
        let x: Double
        if let d = v as? Double { x = d } else if let n = v as? Int { x = Double(n) } else if let s = v as? String, let d = Double(s) {
            x = d  // YAML 1.1 reads `1e-4` (no dot) as a string
        } else {
            throw ConfigError(path: file, "'\(key(k))' must be a number")
        }
        guard Float(x) >= min, Float(x) <= max else {
            throw ConfigError(path: file, "'\(key(k))' must be in [\(min), \(max)], not \(x)")
        }
        return Float(x)
    }

    func bool(_ k: String) throws -> Bool? {
        guard let v = node[k] else { return nil }
        guard let b = v as? Bool else { throw ConfigError(path: file, "'\(key(k))' must be true or false") }
        return b
    }

    func mapping(_ k: String) throws -> [String: Any]? {
        guard let v = node[k] else { return nil }
        guard let m = v as? [String: Any] else { throw ConfigError(path: file, "'\(key(k))' must be a mapping") }
        return m
    }
}
