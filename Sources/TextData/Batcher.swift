import Tensor

/// One padded batch. Shapes: B = `batch`, S = `seqLen`; row-major `B*S` buffers.
public struct Batch: Sendable, Equatable {
    /// Token ids (B*S), `[PAD]` after each sequence's end.
    public var inputIds: [Int32]
    /// Segment ids (B*S), 0 on padding.
    public var tokenTypeIds: [Int32]
    /// 1 on real tokens, 0 on padding (B*S).
    public var attentionMask: [Float]
    /// Label ids (B).
    public var labels: [Int]
    /// Indices of the examples in the dataset (B), in batch order.
    public var exampleIndices: [Int]
    public var batch: Int
    public var seqLen: Int
}

/// How `Batcher` pads a batch.
public enum Padding: Sendable, Equatable {
    /// Pad to the longest sequence of the batch.
    case longest
    /// Pad every batch to exactly `maxLength`.
    case fixed
}

/// Turns examples into padded batches. Examples are tokenized once, at `init`, so epochs only
/// shuffle and pad. Shuffling is deterministic: the order of an epoch depends only on
/// `(seed, epoch)` (SplitMix64-driven Fisher-Yates), never on global state.
public struct Batcher: Sendable {
    /// Cached encodings, one per example, truncated to `maxLength`.
    public let encodings: [Encoding]
    public let labels: [Int]
    public let maxLength: Int
    public let batchSize: Int
    public let padding: Padding
    public let padId: Int

    /// Tokenizes `examples` once.
    /// - Precondition: `batchSize > 0`, `maxLength >= 3`.
    public init(examples: [Example], tokenizer: WordPieceTokenizer, maxLength: Int, batchSize: Int,
                padding: Padding = .longest) {
        precondition(batchSize > 0 && maxLength >= 3, "batchSize must be > 0 and maxLength >= 3")
        self.encodings = examples.map { tokenizer.encode($0.text, pair: $0.pair, maxLength: maxLength) }
        self.labels = examples.map(\.label)
        self.maxLength = maxLength
        self.batchSize = batchSize
        self.padding = padding
        self.padId = tokenizer.padId
    }

    private init(encodings: [Encoding], labels: [Int], maxLength: Int, batchSize: Int, padding: Padding, padId: Int) {
        (self.encodings, self.labels, self.maxLength, self.batchSize, self.padding, self.padId) =
            (encodings, labels, maxLength, batchSize, padding, padId)
    }

    /// These examples followed by `other`'s (same batch size and padding as these).
    public func appending(_ other: Batcher) -> Batcher {
        Batcher(encodings: encodings + other.encodings, labels: labels + other.labels, maxLength: maxLength,
                batchSize: batchSize, padding: padding, padId: padId)
    }

    public var count: Int { encodings.count }

    /// Number of batches per epoch (the last one may be short).
    public var batchCount: Int { (count + batchSize - 1) / batchSize }

    /// Example order of `epoch`: identity when `shuffle` is false.
    public func order(epoch: Int, seed: UInt64, shuffle: Bool) -> [Int] {
        var order = Array(0..<count)
        guard shuffle else { return order }
        var rng = SplitMix64(seed: seed ^ (UInt64(truncatingIfNeeded: epoch) &* 0x9E37_79B9_7F4A_7C15))
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(rng.next(below: UInt64(i + 1)))
            order.swapAt(i, j)
        }
        return order
    }

    /// All batches of one epoch, in order.
    public func batches(epoch: Int, seed: UInt64, shuffle: Bool = true) -> [Batch] {
        let order = order(epoch: epoch, seed: seed, shuffle: shuffle)
        return stride(from: 0, to: order.count, by: batchSize).map {
            makeBatch(Array(order[$0..<min($0 + batchSize, order.count)]))
        }
    }

    /// Pads the examples at `indices` into one batch.
    public func makeBatch(_ indices: [Int]) -> Batch {
        let b = indices.count
        let s = padding == .fixed ? maxLength : indices.map { encodings[$0].count }.max() ?? 0
        var ids = [Int32](repeating: Int32(padId), count: b * s)
        var types = [Int32](repeating: 0, count: b * s)
        var mask = [Float](repeating: 0, count: b * s)
        for (row, index) in indices.enumerated() {
            let enc = encodings[index]
            for t in 0..<enc.count {
                ids[row * s + t] = Int32(enc.ids[t])
                types[row * s + t] = Int32(enc.tokenTypeIds[t])
                mask[row * s + t] = 1
            }
        }
        return Batch(inputIds: ids, tokenTypeIds: types, attentionMask: mask, labels: indices.map { labels[$0] },
            exampleIndices: indices, batch: b, seqLen: s)
    }
}
