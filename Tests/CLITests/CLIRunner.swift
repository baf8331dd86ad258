import Foundation
import Testing

/// Runs the built `securerouter` executable and captures its output.
struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLI {
    /// The package root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `securerouter` binary next to the test bundle (same build configuration).
    static var executable: URL {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [here, here.deletingLastPathComponent(), root.appendingPathComponent(".build/debug")] {
            let c = dir.appendingPathComponent("securerouter")
            if FileManager.default.isExecutableFile(atPath: c.path) { return c }
        }
        return root.appendingPathComponent(".build/debug/securerouter")
    }

    /// Runs the CLI with `args` in `cwd`; kills it after `timeout` seconds (a hang is a failure).
    @discardableResult
    static func run(_ args: [String], cwd: URL? = nil, timeout: TimeInterval = 120) throws -> CLIResult {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        if let cwd { p.currentDirectoryURL = cwd }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        // Drain pipes while waiting so a chatty child cannot block on a full pipe.
        let outData = DataCollector(out.fileHandleForReading), errData = DataCollector(err.fileHandleForReading)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning {
            p.terminate()
            p.waitUntilExit()
            Issue.record("securerouter \(args.joined(separator: " ")) did not finish within \(timeout) s")
        }
        p.waitUntilExit()
        return CLIResult(status: p.terminationStatus, stdout: outData.string(), stderr: errData.string())
    }

    /// A fresh temporary directory, removed by the caller when done.
    static func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("sr-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }
}

/// Reads a pipe to the end on a background thread.
final class DataCollector: @unchecked Sendable {
    private var data = Data()
    private let lock = NSLock()
    private let done = DispatchSemaphore(value: 0)

    init(_ handle: FileHandle) {
        Thread.detachNewThread { [self] in
            let d = handle.readDataToEndOfFile()
            lock.lock(); data = d; lock.unlock()
            done.signal()
        }
    }

    func string() -> String {
        done.wait()
        lock.lock(); defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Writes a small synthetic text-classification task and a tiny vocabulary for fast CLI tests.
enum TinyTask {
    static let words = ["good", "great", "fine", "nice", "bad", "awful", "poor", "sad", "movie", "the", "plot", "was", "a", "very"]

    static func vocab() -> [String] {
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + [".", ","]
    }

    /// Writes `dir/datasets/mr/{train,dev,test}.tsv` (the `mr` task's layout, synthetic sentences) and `dir/vocab.txt`.
    static func write(to dir: URL, trainRows: Int = 96) throws {
        let data = dir.appendingPathComponent("datasets/mr")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try vocab().joined(separator: "\n").appending("\n").write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        func rows(_ n: Int, seed: Int) -> String {
            var s = "sentence\tlabel\n"
            for i in 0..<n {
                let positive = (i + seed) % 2 == 0
                let adj = positive ? ["good", "great", "fine", "nice"][i % 4] : ["bad", "awful", "poor", "sad"][i % 4]
                s += "the movie was \(i % 3 == 0 ? "very " : "")\(adj) .\t\(positive ? 1 : 0)\n"
            }
            return s
        }
        try rows(trainRows, seed: 0).write(to: data.appendingPathComponent("train.tsv"), atomically: true, encoding: .utf8)
        try rows(16, seed: 1).write(to: data.appendingPathComponent("dev.tsv"), atomically: true, encoding: .utf8)
        try rows(16, seed: 0).write(to: data.appendingPathComponent("test.tsv"), atomically: true, encoding: .utf8)
    }

    static func config(epochs: Int = 2, saveEvery: Int = 100, extra: String = "") -> String {
        """
        task: mr
        data_dir: datasets
        training:
          epochs: \(epochs)
          batch_size: 8
          lr: 1.0e-3
          max_length: 16
          save_every: \(saveEvery)
        \(extra)
        models:
          - name: tiny
            init: random
            vocab: vocab.txt
            layers: 2
            hidden: 32
            heads: 2
            intermediate: 64
        """
    }
}
