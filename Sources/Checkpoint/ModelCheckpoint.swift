import Foundation

/// A float32 tensor as stored in a checkpoint: row-major `data` with `shape` (Linear weights are `[out, in]`).
public struct StoredTensor: Equatable, Sendable {
    public var shape: [Int]
    public var data: [Float]

    /// - Precondition: `data.count` equals the product of `shape` (`[]` is a scalar).
    public init(shape: [Int], data: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 } && shape.reduce(1, *) == data.count,
                     "StoredTensor: shape \(shape) does not match \(data.count) values")
        self.shape = shape
        self.data = data
    }
}

/// One model checkpoint in the HDF5 schema of DESIGN §4.
///
/// Layout of a single-model file (or of the group `/models/<name>/` of a bundle):
/// - attribute `config`: JSON object string (architecture, variant, quantization, task, labels, format_version);
/// - `weights/<name>`: float32 datasets named like Hugging Face `BertForSequenceClassification` state_dict keys
///   (names contain dots; they are plain HDF5 link names);
/// - `tokenizer/vocab`: 1-D variable-length UTF-8 strings in id order, with a scalar **uint8** attribute
///   `do_lower_case` (1 = lower-case, 0 = keep case) on that dataset. h5py reads it as `numpy.uint8`; use `bool(...)`.
/// - any other scalar attributes of the root/model group (`attributes`).
///
/// In a bundle, a model group without its own `tokenizer` uses the bundle's `/tokenizer/vocab`.
public struct ModelCheckpoint: Equatable, Sendable {
    /// The `config` attribute: a JSON object string.
    public var configJSON: String
    /// Float32 weights by Hugging Face state_dict name.
    public var weights: [String: StoredTensor]
    /// WordPiece vocabulary in id order (may be empty, e.g. for a bundle model without its own tokenizer).
    public var vocab: [String]
    /// Whether the tokenizer lower-cases its input (BERT uncased).
    public var doLowerCase: Bool
    /// Extra scalar attributes of the root / model group (everything except `config`).
    public var attributes: [String: H5AttributeValue]

    public init(
        configJSON: String, weights: [String: StoredTensor], vocab: [String] = [], doLowerCase: Bool = true,
        attributes: [String: H5AttributeValue] = [:]
    ) {
        self.configJSON = configJSON
        self.weights = weights
        self.vocab = vocab
        self.doLowerCase = doLowerCase
        self.attributes = attributes
    }

    // MARK: Writing

    /// Writes a single-model file atomically (temporary file in the same directory, then rename).
    /// - Throws: `.invalidArgument` when `configJSON` is not a JSON object; `.hdf5` / `.io` on write failures.
    public func write(to path: String) throws {
        try H5File.writeAtomically(to: path) { file in try write(into: file.root()) }
    }

    /// Writes this model into `group` (the root of a file, or `/models/<name>` of a bundle).
    /// Call it inside `H5File.withLibraryLock` (or `writeAtomically`) when other threads may use HDF5.
    public func write(into group: H5Group) throws {
        guard Self.isJSONObject(configJSON) else {
            throw CheckpointError(.invalidArgument, path: group.file.path, object: group.objectPath("@config"),
                                  message: "config must be a JSON object string, got: \(configJSON.prefix(80))")
        }
        try group.writeAttribute("config", .string(configJSON))
        for (name, value) in attributes.sorted(by: { $0.key < $1.key }) where name != "config" {
            try group.writeAttribute(name, value)
        }
        let weightGroup = try group.createGroup("weights")
        for name in weights.keys.sorted() {
            let tensor = weights[name]!
            try weightGroup.writeFloat32(name, shape: tensor.shape, values: tensor.data)
        }
        if !vocab.isEmpty {
            try group.writeStrings("tokenizer/vocab", vocab)
            try group.writeAttribute("do_lower_case", uint8: doLowerCase ? 1 : 0, on: "tokenizer/vocab")
        }
    }

    /// Writes a bundle atomically: each model under `/models/<name>/`, then `extra` may add
    /// more (router, cost table, shared `/tokenizer`) before the file is renamed into place.
    public static func writeBundle(
        to path: String, models: [(name: String, checkpoint: ModelCheckpoint)],
        extra: (H5File) throws -> Void = { _ in }
    ) throws {
        try H5File.writeAtomically(to: path) { file in
            let root = try file.root()
            for (name, checkpoint) in models {
                guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                    throw CheckpointError(.invalidArgument, path: path, object: name,
                                          message: "model name must be a non-empty name without '/'")
                }
                try checkpoint.write(into: root.createGroup("models/" + name))
            }
            try extra(file)
        }
    }

    // MARK: Reading

    /// Reads a single-model file (`group == nil`) or the model `group` of a bundle: either a
    /// model name (read from `/models/<name>`) or a group path from the root such as `/models/tiny` or
    /// `models/tiny` (the `PATH::models/NAME` spelling of the CLI).
    /// - Throws: `.noSuchFile`, `.notHDF5`, `.corrupt`, `.missingObject` (no such model),
    ///   `.missingConfig`, `.missingWeights`, `.wrongType` (a weight that is not float32).
    /// - Parameter includeWeights: false reads only the config, attributes and vocabulary (the public
    ///   description a client may hold); `weights` is then empty.
    public static func read(from path: String, group: String? = nil, includeWeights: Bool = true) throws -> ModelCheckpoint {
        try H5File.withLibraryLock { try readLocked(from: path, group: group, includeWeights: includeWeights) }
    }

    private static func readLocked(from path: String, group: String?, includeWeights: Bool) throws -> ModelCheckpoint {
        let file = try H5File.open(path: path)
        let root = try file.root()
        guard let group else { return try read(from: root, includeWeights: includeWeights) }
        let groupPath = group.contains("/") ? group : "models/" + group
        guard root.isGroup(groupPath) else {
            let available = (try? listModels(in: file)) ?? []
            throw CheckpointError(.missingObject, path: path, object: root.objectPath(groupPath),
                                  message: "no model group \(root.objectPath(groupPath)); models in this file: "
                                      + (available.isEmpty ? "none" : available.joined(separator: ", ")))
        }
        return try read(from: root.openGroup(groupPath), includeWeights: includeWeights)
    }

    /// Reads the model stored in `group` (see the type's documentation for the layout).
    /// Call it inside `H5File.withLibraryLock` when other threads may use HDF5.
    public static func read(from group: H5Group, includeWeights: Bool = true) throws -> ModelCheckpoint {
        let path = group.file.path
        guard group.hasAttribute("config") else {
            throw CheckpointError(.missingConfig, path: path, object: group.objectPath("@config"),
                                  message: "missing attribute config on \(group.name) (not a model checkpoint?)")
        }
        let configJSON = try group.readStringAttribute("config")
        guard isJSONObject(configJSON) else {
            throw CheckpointError(.missingConfig, path: path, object: group.objectPath("@config"),
                                  message: "attribute config is not a JSON object string")
        }
        var attributes: [String: H5AttributeValue] = [:]
        for name in try group.attributeNames() where name != "config" {
            attributes[name] = try group.readAttribute(name)
        }
        guard group.isGroup("weights") else {
            throw CheckpointError(.missingWeights, path: path, object: group.objectPath("weights"),
                                  message: "missing group weights in \(group.name)")
        }
        let weightGroup = try group.openGroup("weights")
        var weights: [String: StoredTensor] = [:]
        for name in try weightGroup.memberNames() where includeWeights {
            let (shape, values) = try weightGroup.readFloat32(name)
            weights[name] = StoredTensor(shape: shape, data: values)
        }
        let root = try group.file.root()
        let owner = group.isDataset("tokenizer/vocab") ? group : (root.isDataset("tokenizer/vocab") ? root : nil)
        var vocab: [String] = []
        var doLowerCase = true
        if let owner {
            vocab = try owner.readStrings("tokenizer/vocab")
            for target in ["tokenizer/vocab", "tokenizer"] where owner.hasAttribute("do_lower_case", on: target) {
                if case .integer(let flag) = try owner.readAttribute("do_lower_case", on: target) {
                    doLowerCase = flag != 0
                }
                break
            }
        }
        return ModelCheckpoint(configJSON: configJSON, weights: weights, vocab: vocab, doLowerCase: doLowerCase,
                               attributes: attributes)
    }

    /// The model names of a bundle (members of `/models`), sorted; empty when there is no `/models` group.
    public static func listModels(inBundle path: String) throws -> [String] {
        try H5File.withLibraryLock { try listModels(in: H5File.open(path: path)) }
    }

    static func listModels(in file: H5File) throws -> [String] {
        let root = try file.root()
        guard root.isGroup("models") else { return [] }
        let models = try root.openGroup("models")
        return try models.memberNames().filter { models.isGroup($0) }
    }

    // MARK: Validation

    /// Checks the weights against the parameters a model expects (name -> shape).
    /// - Throws: `.schemaMismatch` listing the missing tensors (first one named first), the
    ///   shape mismatches (expected vs found) and the unexpected extra tensors. `path` names the
    ///   file in the error (pass the checkpoint's path when known).
    public func validate(expected: [(name: String, shape: [Int])], path: String = "") throws {
        var problems: [String] = []
        let missing = expected.filter { weights[$0.name] == nil }.map(\.name)
        if let first = missing.first {
            problems.append("missing tensor \(first)"
                + (missing.count > 1 ? " (and \(missing.count - 1) more: \(Self.list(missing.dropFirst())))" : ""))
        }
        for (name, shape) in expected {
            if let found = weights[name], found.shape != shape {
                problems.append("shape of \(name): expected \(shape), found \(found.shape)")
            }
        }
        let expectedNames = Set(expected.map(\.name))
        let extras = weights.keys.filter { !expectedNames.contains($0) }.sorted()
        if !extras.isEmpty { problems.append("unexpected tensors: \(Self.list(extras[...]))") }
        if !problems.isEmpty {
            throw CheckpointError(.schemaMismatch, path: path, object: "weights",
                                  message: "weights do not match the model: " + problems.joined(separator: "; "))
        }
    }

    private static func list(_ names: ArraySlice<String>) -> String {
        names.prefix(10).joined(separator: ", ") + (names.count > 10 ? ", ..." : "")
    }

    static func isJSONObject(_ text: String) -> Bool {
        guard let data = text.data(using: .utf8),
            let object = try? JSONSerialization.jsonObject(with: data)
        else { return false }
        return object is [String: Any]
    }
}
