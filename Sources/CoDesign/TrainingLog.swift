import Foundation

/// Appends one JSON object per line to a training log next to a checkpoint.
///
/// Each record has an `event` (`step`, `epoch`, `resume`, `done`) and its fields;
/// the log survives a kill and a resumed run appends to it.
public final class TrainingLog {
    private let handle: FileHandle?
    public let path: String

    public init(path: String) {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            FileManager.default.createFile(atPath: path, contents: nil)
        }
        handle = FileHandle(forWritingAtPath: path)
        handle?.seekToEndOfFile()
    }

    deinit { try? handle?.close() }

    /// Writes one record; values must be JSON-serialisable (numbers, strings, arrays, dictionaries).
    public func write(_ event: String, _ fields: [String: Any]) {
        var record = fields
        record["event"] = event
        record["time"] = Date().timeIntervalSince1970
        guard let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else { return }
        handle?.write(data)
        handle?.write(Data([0x0A]))
    }
}

/// A progress snapshot of a training run, for the CLI's stderr progress line.
public struct TrainingProgress: Sendable {
    public var model: String
    public var epoch: Int
    public var epochs: Int
    public var step: Int
    public var totalSteps: Int
    public var loss: Float
    public var tokensPerSecond: Double
    public var etaSeconds: Double
    /// Set at the end of an epoch.
    public var devAccuracy: Double?
    /// Extra end-of-epoch detail (e.g. the pruned structure and its cost), shown after the accuracy.
    public var note: String?

    public init(model: String, epoch: Int, epochs: Int, step: Int, totalSteps: Int, loss: Float, tokensPerSecond: Double,
                etaSeconds: Double, devAccuracy: Double? = nil, note: String? = nil) {
        (self.model, self.epoch, self.epochs, self.step, self.totalSteps) = (model, epoch, epochs, step, totalSteps)
        (self.loss, self.tokensPerSecond, self.etaSeconds, self.devAccuracy, self.note) = (loss, tokensPerSecond, etaSeconds, devAccuracy, note)
    }
}
