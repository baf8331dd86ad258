import Foundation
import MPC
import TextData

/// Public length buckets: a query is padded to the smallest bucket that holds it, and the bucket is all
/// the server learns about the text.
public enum LengthBuckets {
    public static let standard = [16, 32, 64, 128, 256]

    /// The smallest standard bucket holding `length` tokens (the largest when none does).
    public static func bucket(for length: Int) -> Int { standard.first { $0 >= length } ?? standard.last! }

    /// The widest bucket of a pool's queries, which all members read padded to one bucket: the largest
    /// member's `inputLimit`, within every member's position table.
    public static func inputLimit(_ shapes: [SecureBertShape]) -> Int {
        min(shapes.map(\.inputLimit).max()!, usable(maxPosition: shapes.map(\.maxPosition).min()!).last!)
    }

    /// The buckets a model can use (those within its position table; at least the smallest).
    public static func usable(maxPosition: Int) -> [Int] {
        let b = standard.filter { $0 <= maxPosition }
        return b.isEmpty ? [maxPosition] : b
    }

    /// Tokenizes `texts` (`[CLS] text [SEP]`), truncating to the largest usable bucket, and pads each to
    /// its bucket with the tokenizer's pad id.
    /// - Returns: the client's query file, each query's bucket, and how many texts were truncated.
    public static func encode(_ texts: [String], tokenizer: WordPieceTokenizer, maxPosition: Int)
        -> (queries: QueryFile, buckets: [Int], truncated: Int) {
        let usable = usable(maxPosition: maxPosition), widest = usable.last!
        var ids = [[Int]](), lengths = [Int](), buckets = [Int](), truncated = 0
        for t in texts {
            if tokenizer.tokenIds(t).count + 2 > widest { truncated += 1 }
            let e = tokenizer.encode(t, maxLength: widest)
            let bucket = usable.first { $0 >= e.count } ?? widest
            ids.append(e.ids + [Int](repeating: tokenizer.padId, count: bucket - e.count))
            lengths.append(e.count)
            buckets.append(bucket)
        }
        return (QueryFile(ids: ids, lengths: lengths), buckets, truncated)
    }
}

/// Runs a `BertProgram` session as three processes (dealer, server with the checkpoint, client with the
/// queries) and collects each query's outcome as it finishes, so a failure keeps what was done.
public struct SecureEvaluation {
    /// The `securerouter` binary (workers are `securerouter mpc-worker`).
    public var executable: URL
    public var network: NetworkProfile = .none
    /// Seconds each receive may wait before a silent peer is an error.
    public var receiveTimeout: Double = 120
    /// Parties read each query's dealer records before its clock starts.
    public var preprocess = true
    /// The dealer deals each query only after both parties finished the previous one: the three processes
    /// share this machine, and a dealer running ahead would slow the online phase it does not belong to
    /// (`SessionOptions.pacedDealer`). False: it runs ahead, as on its own host.
    public var pacedDealer = true
    /// INSECURE, tests only: deterministic PRG seeds.
    public var insecureTestSeed: UInt64?

    public init(executable: URL, network: NetworkProfile = .none) {
        self.executable = executable
        self.network = network
    }

    /// What a session produced: per-query outcomes of both parties (in order, possibly fewer than asked
    /// when the session failed), the setup cost, and the failure if any.
    public struct Outcomes<Outcome: Codable & Sendable>: Sendable {
        public var client: [Outcome]
        public var server: [Outcome]
        /// The client's and server's setup (weight masking), when they got that far.
        public var setup: CostSample?
        /// One sentence: which role failed and why; nil when every query finished.
        public var failure: String?
    }
    /// Outcomes of a `BertProgram` session.
    public typealias Result = Outcomes<QueryOutcome>

    /// Runs the session. `checkpoint` is given to the server process only, `queries` (written to a
    /// private temporary file) to the client only. `progress` is called with the finished count.
    public func run(_ program: BertProgram, checkpoint: String, queries: QueryFile,
                    progress: (Int) -> Void = { _ in }) throws -> Result {
        try run(program, queryCount: program.buckets.count, serverFile: checkpoint, queries: queries, progress: progress)
    }

    /// Runs a routed session: `bundle` (pool and router) to the server only, `queries` to the client only.
    public func run(_ program: RoutedBertProgram, bundle: String, queries: QueryFile,
                    progress: (Int) -> Void = { _ in }) throws -> Outcomes<RoutedOutcome> {
        try run(program, queryCount: program.buckets.count, serverFile: bundle, queries: queries, progress: progress)
    }

    func run<P: SecureProgram, O>(_ program: P, queryCount: Int, serverFile: String, queries: QueryFile,
                                  progress: (Int) -> Void) throws -> Outcomes<O> where P.Output == [O] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("securerouter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: dir) }
        let queryPath = dir.appendingPathComponent("queries.json").path
        try queries.write(to: queryPath)
        var launcher = SessionLauncher(executable: executable, network: network, insecureTestSeed: insecureTestSeed)
        launcher.preprocess = preprocess
        launcher.pacedDealer = pacedDealer
        launcher.receiveTimeout = receiveTimeout
        launcher.clientInputFile = queryPath
        launcher.serverInputFile = serverFile
        let session = try launcher.start(program)
        defer { session.killAll() }
        var failure: String?
        do {
            try session.waitAll(timeout: .seconds(Int64(max(600, 60 * queryCount))), grace: .seconds(10)) {
                progress((Self.events(session.processes[.client]) as [O]).count)
            }
        } catch {
            failure = "\(error)"
        }
        let client: [O] = Self.events(session.processes[.client]), server: [O] = Self.events(session.processes[.server])
        var setup: CostSample?
        if failure == nil, let line = session.processes[.client]?.stdoutLines.last(where: { $0.hasPrefix("{") }),
           let report = try? JSONDecoder().decode(SessionReport<[O]>.self, from: Data(line.utf8)) {
            setup = report.setup
        }
        return Outcomes(client: client, server: Array(server.prefix(client.count)), setup: setup, failure: failure)
    }

    /// The `event` lines (finished queries) a worker printed.
    static func events<O: Decodable>(_ p: WorkerProcess?) -> [O] {
        (p?.stdoutLines ?? []).compactMap { line in
            guard line.hasPrefix("event ") else { return nil }
            return try? JSONDecoder().decode(O.self, from: Data(line.dropFirst(6).utf8))
        }
    }
}
