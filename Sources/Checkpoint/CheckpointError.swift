// Module Checkpoint: HDF5 checkpoints (DESIGN §4), safetensors and Hugging Face import.

/// An error reading or writing a checkpoint, a safetensors file or a Hugging Face model folder.
///
/// Every error carries the file `path` and the `object` (dataset, group, attribute or tensor
/// name; empty when the error concerns the whole file). Errors raised by libhdf5 also carry
/// HDF5's error stack (`hdf5Stack`, outermost API call first), which is appended to `description`.
public struct CheckpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, for callers that branch on it.
    public enum Kind: String, Sendable, Equatable {
        /// The file does not exist.
        case noSuchFile
        /// The file exists but is not an HDF5 file (no HDF5 signature).
        case notHDF5
        /// The file has an HDF5 signature but cannot be opened (truncated or corrupt).
        case corrupt
        /// The `config` attribute is missing or is not a JSON object string.
        case missingConfig
        /// The `weights` group is missing.
        case missingWeights
        /// A dataset, group or attribute that the schema requires is missing.
        case missingObject
        /// A dataset or tensor has a different element type than expected (e.g. not float32).
        case wrongType
        /// Tensor names or shapes differ from what a model expects (see `validate(expected:)`).
        case schemaMismatch
        /// A safetensors file is truncated or its header is malformed.
        case malformedSafetensors
        /// A Hugging Face model folder is inconsistent (config, layer count, vocabulary).
        case invalidModel
        /// A caller passed an invalid argument (e.g. a data count that does not match a shape).
        case invalidArgument
        /// An operating-system file operation failed (open, read, rename, fsync).
        case io
        /// Any other libhdf5 failure; see `hdf5Stack`.
        case hdf5
    }

    public var kind: Kind
    /// The file the error concerns.
    public var path: String
    /// The object inside the file (dataset/group/attribute/tensor name), or "" for the file.
    public var object: String
    /// One sentence: what failed and, where possible, how to fix it.
    public var message: String
    /// HDF5's error stack at the time of the failure, one line per entry (may be empty).
    public var hdf5Stack: [String]

    public init(
        _ kind: Kind, path: String, object: String = "", message: String, hdf5Stack: [String] = []
    ) {
        self.kind = kind
        self.path = path
        self.object = object
        self.message = message
        self.hdf5Stack = hdf5Stack
    }

    /// One line: the path, the object and the message (what a CLI user sees).
    public var description: String {
        var text = "\(path)"
        if !object.isEmpty { text += " [\(object)]" }
        return text + ": \(message)"
    }

    /// `description` followed by HDF5's error stack, for logs and bug reports.
    public var detailedDescription: String {
        var text = description
        if !hdf5Stack.isEmpty {
            text += "\nHDF5 error stack:\n" + hdf5Stack.map { "  " + $0 }.joined(separator: "\n")
        }
        return text
    }
}
