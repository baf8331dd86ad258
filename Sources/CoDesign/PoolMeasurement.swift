import Foundation
import Checkpoint
import CostModel
import MPC
import SecureInference
import TextData

/// Mean secure cost per query over a set of queries: `measured` (from `secure-eval` sessions) or
/// `predicted_mean` (the cost model on the same queries' length buckets) of a pool summary row.
public struct MeanCost: Codable, Sendable, Equatable {
    /// Queries averaged (the first N test sentences).
    public var queries: Int
    public var onlineBytes: Double
    public var rounds: Double
    public var secondsNone: Double
    public var secondsLan: Double

    enum CodingKeys: String, CodingKey {
        case queries, rounds, onlineBytes = "online_bytes", secondsNone = "seconds_none", secondsLan = "seconds_lan"
    }
}

/// Measures pool members under MPC: each member's first `count` test sentences in two `secure-eval`
/// sessions (three processes on loopback, `--net none` and `--net lan`), next to the cost model's
/// prediction for exactly those queries (issue 5, acceptance 1).
public struct PoolMeasurement {
    /// The `securerouter` binary that runs the parties.
    public var executable: URL
    public var count: Int
    /// The compute model the predictions use: the built-in one, or one `cost --calibrate` fitted on this machine.
    public var calibration: Calibration = .default
    public var progress: ((String) -> Void)?

    public init(executable: URL, count: Int) {
        self.executable = executable
        self.count = count
    }

    /// (predicted, measured) for the checkpoint at `path`, or nil when its variant has no secure runtime.
    public func measure(checkpoint path: String, texts: [String]) throws -> (predicted: MeanCost, measured: MeanCost)? {
        let ckpt = try ModelCheckpoint.read(from: path)
        let config = try CheckpointConfig.decode(ckpt.configJSON, path: path)
        guard let shape = try? SecureBertWeights.shape(of: config) else { return nil }
        let tokenizer = try WordPieceTokenizer(tokens: ckpt.vocab, doLowerCase: ckpt.doLowerCase)
        let (queries, buckets, _) = LengthBuckets.encode(Array(texts.prefix(count)), tokenizer: tokenizer, maxPosition: shape.inputLimit)
        let n = Double(buckets.count)
        var p = MeanCost(queries: buckets.count, onlineBytes: 0, rounds: 0, secondsNone: 0, secondsLan: 0)
        for b in buckets {
            let c = CostModel.total(shape.predictedCost(seq: b))
            p.onlineBytes += Double(c.bytes) / n
            p.rounds += Double(c.rounds) / n
            p.secondsNone += CostModel.seconds(c, network: .none, calibration: calibration) / n
            p.secondsLan += CostModel.seconds(c, network: .lan, calibration: calibration) / n
        }
        var m = MeanCost(queries: buckets.count, onlineBytes: 0, rounds: 0, secondsNone: 0, secondsLan: 0)
        for (name, network) in [("none", NetworkProfile.none), ("lan", .lan)] {
            let runner = SecureEvaluation(executable: executable, network: network)
            let r = try runner.run(BertProgram(model: shape, buckets: buckets), checkpoint: path, queries: queries) { done in
                progress?("\(URL(fileURLWithPath: path).lastPathComponent) --net \(name): \(done)/\(buckets.count) queries")
            }
            if let f = r.failure { throw PenaltyError("measuring \(path) --net \(name) failed after \(r.client.count) queries: \(f)") }
            let seconds = r.client.map(\.cost.seconds).reduce(0, +) / n
            if name == "none" {
                m.secondsNone = seconds
                m.onlineBytes = r.client.map { Double($0.cost.bytesSent + $0.cost.bytesReceived) }.reduce(0, +) / n
                m.rounds = r.client.map { Double($0.cost.rounds) }.reduce(0, +) / n
            } else {
                m.secondsLan = seconds
            }
        }
        return (p, m)
    }
}
