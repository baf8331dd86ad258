import ArgumentParser
import MPC
import SecureInference
import TextData
import Foundation

/// `--json PATH` for report commands: `-` writes to stdout.
struct JSONOutputOptions: ParsableArguments {
    @Option(name: .customLong("json"), help: "Also write the report as one JSON object to PATH (`-` = stdout).")
    var path: String?

    /// Writes `object` (JSON-serialisable) to the requested destination.
    func write(_ object: Any) throws {
        guard let path else { return }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        if path == "-" {
            FileHandle.standardOutput.write(data)
            FileHandle.standardOutput.write(Data([0x0A]))
        } else {
            do { try (data + Data([0x0A])).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
                throw ValidationError("cannot write the JSON report to \(path): \(error.localizedDescription)")
            }
        }
    }

    /// True when the JSON goes to stdout, so human-readable output must go elsewhere or be skipped.
    var usesStdout: Bool { path == "-" }
}

/// `--quiet` for long-running commands.
struct ProgressOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Do not print progress on stderr.")
    var quiet = false
}

/// The end of a report command: the human-readable table (unless the JSON goes to stdout), the JSON,
/// then a non-zero exit naming the failure when the run stopped before all `requested` queries.
func finishReport(_ json: JSONOutputOptions, _ object: Any, table: () -> Void, failure: String?, done: Int, requested: Int,
                  run: String = "secure run") throws {
    if !json.usesStdout { table() }
    try json.write(object)
    if let failure { throw CommandFailure("the \(run) stopped after \(done) of \(requested) queries: \(failure)") }
}

/// Writes a line to stderr.
func printErr(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}

/// An in-place progress line on stderr (carriage return when stderr is a terminal, new lines otherwise
/// but at most one every few seconds, so logs stay readable).
final class ProgressLine {
    private let enabled: Bool
    private let isTTY = isatty(2) != 0
    private var lastPrint = Date.distantPast

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ s: String, force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        if isTTY {
            guard force || now.timeIntervalSince(lastPrint) > 0.2 else { return }
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + s).utf8))
        } else {
            guard force || now.timeIntervalSince(lastPrint) > 5 else { return }
            FileHandle.standardError.write(Data((s + "\n").utf8))
        }
        lastPrint = now
    }

    func finish(_ s: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data(((isTTY ? "\r\u{1B}[K" : "") + s + "\n").utf8))
        lastPrint = Date()
    }
}

/// Formats seconds as 1h02m, 3m05s or 12s.
func formatDuration(_ s: Double) -> String {
    guard s.isFinite, s >= 0 else { return "?" }
    let t = Int(s.rounded())
    if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
    if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
    return "\(t)s"
}

/// Reads a text file with one query per line; empty lines are an error naming the line.
func readQueryLines(_ path: String) throws -> [String] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw ValidationError("cannot read text file \(path) (missing, unreadable or not UTF-8)")
    }
    var lines = text.components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    for (i, l) in lines.enumerated() where l.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
        throw ValidationError("\(path):\(i + 1): empty text; every line must hold one query")
    }
    guard !lines.isEmpty else { throw ValidationError("\(path) holds no text; put one query per line") }
    return lines.map { $0.hasSuffix("\r") ? String($0.dropLast()) : $0 }
}

/// A failure while a command runs (not a usage mistake): ArgumentParser prints `Error: <message>` and
/// exits non-zero, without the usage text it adds to `ValidationError`s.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Where the queries of `secure-eval` and `party --role client` come from: a task's split (with gold
/// labels) or a text file.
struct QueryOptions: ParsableArguments {
    @Option(help: "Task whose split to evaluate (mr, imdb, r8, trec); reads DATA_DIR/TASK/SPLIT.tsv.") var task: String?
    @Option(help: "Split of --task: train, dev or test.") var split = "test"
    @Option(help: "Text file, one query per line (no gold labels).") var textFile: String?
    @Option(help: "Directory of the fetched datasets.") var dataDir = "datasets"
    @Option(help: "Evaluate only the first N queries.") var limit: Int?

    func check() throws {
        guard (task == nil) != (textFile == nil) else { throw ValidationError("give exactly one of --task T (with --split) or --text-file F") }
        guard ["train", "dev", "test"].contains(split) else { throw ValidationError("--split must be train, dev or test, not '\(split)'") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    /// The queries: `--task`'s split (with gold labels, checked against `outputs` classes) or `--text-file`,
    /// cut to `--limit`.
    func load(outputs: Int, what: String) throws -> (texts: [String], gold: [Int]?) {
        var texts: [String], gold: [Int]?
        if let task {
            let info = try TaskInfo.named(task)
            guard info.numLabels == outputs else {
                throw ValidationError("task \(task) has \(info.numLabels) labels but \(what) \(outputs) outputs")
            }
            let url = URL(fileURLWithPath: dataDir).appendingPathComponent(task).appendingPathComponent("\(split).tsv")
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw ValidationError("\(url.path) not found; run `securerouter data fetch --task \(task)` or pass --data-dir")
            }
            let examples = try DatasetReader(task: info).read(url)
            (texts, gold) = (examples.map(\.text), examples.map(\.label))
        } else {
            texts = try readQueryLines(textFile!)
        }
        if let limit, limit < texts.count { texts = Array(texts.prefix(limit)); gold = gold.map { Array($0.prefix(limit)) } }
        return (texts, gold)
    }
}

/// `--frac-bits` and `--ring-bits` of `secure-eval` and `predict --fixed-point`: run a model with another
/// fixed point than its checkpoint's quantization (e.g. a model trained without QAT on Z_2^32).
struct FixedPointOverrides: ParsableArguments {
    @Option(help: "Fractional bits of the fixed point, overriding the checkpoint's quantization.frac_bits (8...18; at most 12 with ring 32). Fewer bits: coarser values, but each truncation fails 4x less often per bit (docs/protocols.md).")
    var fracBits: Int?
    @Option(help: "32: run the linear layers on Z_2^32 (half their bytes; docs/protocols.md, \"Linear layers on Z_2^32\"), 64: on Z_2^64, overriding the checkpoint's quantization.ring_bits.")
    var ringBits: Int?

    func check() throws {
        let ok = FixedPoint.supportedFracBits
        if let f = fracBits, !ok.contains(f) { throw ValidationError("--frac-bits must be in \(ok.lowerBound)...\(ok.upperBound), not \(f)") }
        if let r = ringBits, r != 32 && r != 64 { throw ValidationError("--ring-bits must be 32 or 64, not \(r)") }
    }

    var isSet: Bool { fracBits != nil || ringBits != nil }

    /// Applies the overrides to a model's secure shape.
    /// - Throws: `ValidationError` if the result puts more than 12 fractional bits on Z_2^32.
    func apply(to shape: inout SecureBertShape, model: String) throws {
        if let f = fracBits { shape.fracBits = f }
        if let r = ringBits { shape.ringBits = r == 32 ? 32 : nil }
        if shape.narrowLinear && shape.fracBits > FixedPoint.narrowFracBits {
            throw ValidationError("\(model) would run its linear layers on Z_2^32 with \(shape.fracBits) fractional bits; at most \(FixedPoint.narrowFracBits) fit there: add --frac-bits \(FixedPoint.narrowFracBits)")
        }
    }
}
