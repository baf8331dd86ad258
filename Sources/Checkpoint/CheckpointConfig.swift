import Foundation
import Transformer

/// The `config` attribute of a model checkpoint (DESIGN §4), as JSON.
///
/// Everything a reader needs to rebuild the model and interpret its outputs:
/// the architecture, the nonlinearity variant, the fixed-point quantization the
/// secure runtime will use, the task and its label names, and training results.
public struct CheckpointConfig: Codable, Equatable, Sendable {
    /// Bumped when the layout changes incompatibly; readers refuse newer versions.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    public var architecture: BertConfig
    public var variant: Variant
    public var quantization: Quantization
    public var task: String
    public var labels: [String]
    /// Model name inside a pool (file stem), when known.
    public var name: String?
    /// Accuracy on the task's dev split at the kept (best-dev) epoch.
    public var devAccuracy: Double?
    /// Accuracy on the task's test split of the kept weights.
    public var testAccuracy: Double?
    /// Maximum sequence length the model was trained with.
    public var maxLength: Int?
    /// `"public"` when the embedding group (`bert.embeddings.*`: word, position and token-type rows and
    /// their LayerNorm) was frozen at a public pretrained model's values: the secure runtime then lets
    /// the client compute the embedding of its own text in plaintext. nil: private (trained) embeddings.
    public var embedding: String?

    /// The value of `embedding` for a frozen, public embedding group.
    public static let publicEmbedding = "public"
    /// Whether the model's embedding group is public (see `embedding`).
    public var hasPublicEmbedding: Bool { embedding == Self.publicEmbedding }

    /// Softmax (`exact | 2quad | relu-norm`) and activation (`gelu | quad | relu`) kinds.
    public struct Variant: Codable, Equatable, Sendable {
        public var softmax: String
        public var activation: String
        public init(softmax: String = "exact", activation: String = "gelu") {
            self.softmax = softmax
            self.activation = activation
        }
    }

    /// Fixed-point parameters for the secure runtime's ring Z_2^ring_bits.
    public struct Quantization: Codable, Equatable, Sendable {
        public var ringBits: Int
        public var fracBits: Int
        /// Bits of weight quantization, if weights were fake-quantized in training.
        public var weightBits: Int?
        public init(ringBits: Int = 64, fracBits: Int = 16, weightBits: Int? = nil) {
            self.ringBits = ringBits
            self.fracBits = fracBits
            self.weightBits = weightBits
        }
        enum CodingKeys: String, CodingKey {
            case ringBits = "ring_bits", fracBits = "frac_bits", weightBits = "weight_bits"
        }
    }

    /// The variant is taken from the architecture's softmax and activation kinds.
    public init(
        architecture: BertConfig, quantization: Quantization = Quantization(),
        task: String, labels: [String], name: String? = nil
    ) {
        self.formatVersion = Self.currentFormatVersion
        self.architecture = architecture
        self.variant = Variant(softmax: architecture.softmax.rawValue, activation: architecture.activation.rawValue)
        self.quantization = quantization
        self.task = task
        self.labels = labels
        self.name = name
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", architecture, variant, quantization, task, labels, name
        case devAccuracy = "dev_accuracy", testAccuracy = "test_accuracy", maxLength = "max_length", embedding
    }

    /// Compact JSON with sorted keys (stable bytes for hashing).
    public func jsonString() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try! enc.encode(self), as: UTF8.self)
    }
}
