import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts dealer, server and client as three child processes of the `securerouter` binary
/// (`securerouter mpc-worker`) on loopback and collects their JSON reports.
///
/// Start-up without sleeps: the dealer and the server listen on port 0 and print the bound address as
/// their first stdout line; the launcher reads it and passes it to the next process. Each process
/// prints its `SessionReport` JSON as its last stdout line and logs to stderr.
public struct SessionLauncher: Sendable {
    /// The `securerouter` executable.
    public var executable: URL
    /// `none`, `lan` or `wan` (a preset `NetworkProfile`).
    public var network: NetworkProfile
    /// Deterministic seeds for the dealer and parties (tests only: passed as `--insecure-test-seed`).
    public var insecureTestSeed: UInt64?
    /// Seeds of the synthetic private inputs, given only to their owner's process.
    public var clientInputSeed: UInt64
    public var serverInputSeed: UInt64
    /// Host to bind and connect on.
    public var host = "127.0.0.1"
    /// Parties read the whole offline phase before the online clock starts (`SessionOptions.preprocess`).
    public var preprocess = false
    /// With `preprocess`: the dealer deals each unit only after both parties finished the previous one
    /// (`SessionOptions.pacedDealer`), so that its work never shares the machine with an online clock.
    public var pacedDealer = false
    /// Seconds each receive may wait during the protocol (the workers' `--timeout`).
    public var receiveTimeout: Double = 60
    /// Real private inputs (`SecureProgram.inputs(for:file:)`), each passed to its owner's process only;
    /// nil: synthetic inputs from the seeds.
    public var clientInputFile: String?
    public var serverInputFile: String?
    /// Authenticated, encrypted links (`SecureChannel`): the launcher makes a fresh key per role in a
    /// private temporary directory, and each worker trusts the other two.
    public var authenticate = false

    public init(executable: URL, network: NetworkProfile = .none, insecureTestSeed: UInt64? = nil,
                clientInputSeed: UInt64 = 1, serverInputSeed: UInt64 = 2) {
        precondition(NetworkProfile(name: network.description) != nil, "only the none/lan/wan presets can be passed to workers")
        self.executable = executable
        self.network = network
        self.insecureTestSeed = insecureTestSeed
        self.clientInputSeed = clientInputSeed
        self.serverInputSeed = serverInputSeed
    }

    /// Starts the three processes (dealer, then server, then client) and returns them running.
    /// - Parameter roles: which roles to start (tests start dealer and server only to poke the server).
    /// - Throws: `SessionError.worker` if a listener does not report its address within `startTimeout`
    ///   (the processes already started are killed).
    public func start<P: SecureProgram>(_ program: P, roles: Set<SessionRole> = Set(SessionRole.allCases),
                                        startTimeout: Duration = .seconds(30)) throws -> LaunchedSession {
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        let params = String(decoding: try enc.encode(program), as: UTF8.self)
        var common = ["mpc-worker", "--program", P.name, "--params", params, "--net", network.description]
        if let s = insecureTestSeed { common += ["--insecure-test-seed", String(s)] }
        if preprocess { common.append("--preprocess") }
        if pacedDealer { common.append("--paced-dealer") }
        common += ["--timeout", String(receiveTimeout)]
        let session = LaunchedSession()
        var keyArgs: [SessionRole: [String]] = [:]
        if authenticate {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("securerouter-keys-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            session.keyDirectory = dir
            let keys = SessionRole.allCases.map { IdentityKey(generatingNamed: $0.rawValue) }
            for (role, key) in zip(SessionRole.allCases, keys) {
                let path = dir.appendingPathComponent(role.rawValue).path
                try key.write(privateTo: path + ".key", publicTo: path + ".pub")
            }
            let all = keys.map(\.publicIdentity.line).joined(separator: "\n")
            try all.write(to: dir.appendingPathComponent("trusted.pub"), atomically: true, encoding: .utf8)
            for role in SessionRole.allCases {
                keyArgs[role] = ["--key", dir.appendingPathComponent("\(role.rawValue).key").path,
                                 "--trust", dir.appendingPathComponent("trusted.pub").path]
            }
        }
        let deadline = ContinuousClock.now.advanced(by: startTimeout)
        do {
            let d = try WorkerProcess(role: .dealer, executable: executable, arguments: common + ["--role", "dealer", "--listen", "\(host):0"] + (keyArgs[.dealer] ?? []))
            session.processes[.dealer] = d
            let dealerAt = try d.listeningAddress(deadline: deadline)
            guard roles.contains(.server) else { return session }
            let s = try WorkerProcess(role: .server, executable: executable, arguments: common + [
                "--role", "server", "--listen", "\(host):0", "--connect-dealer", dealerAt] + (keyArgs[.server] ?? [])
                + (serverInputFile.map { ["--input-file", $0] } ?? ["--synthetic-input-seed", String(serverInputSeed)]))
            session.processes[.server] = s
            let serverAt = try s.listeningAddress(deadline: deadline)
            guard roles.contains(.client) else { return session }
            session.processes[.client] = try WorkerProcess(role: .client, executable: executable, arguments: common + [
                "--role", "client", "--connect-dealer", dealerAt, "--connect-server", serverAt] + (keyArgs[.client] ?? [])
                + (clientInputFile.map { ["--input-file", $0] } ?? ["--synthetic-input-seed", String(clientInputSeed)]))
        } catch {
            session.killAll()
            throw error
        }
        return session
    }

    /// Runs a whole session: starts the three processes, waits for them, and decodes their reports.
    /// If one process fails, the others get `grace` to exit on their own (they should: their peer is
    /// gone) and are then killed.
    /// - Throws: `SessionError.worker` with the role that failed first and its last stderr line.
    public func run<P: SecureProgram>(_ program: P, timeout: Duration = .seconds(600),
                                      grace: Duration = .seconds(10)) throws -> SessionResult<P.Output> {
        let session = try start(program)
        try session.waitAll(timeout: timeout, grace: grace)
        func report(_ r: SessionRole) throws -> SessionReport<P.Output> {
            let p = session.processes[r]!
            guard let line = p.stdoutLines.last(where: { $0.hasPrefix("{") }) else {
                throw SessionError.worker(role: r.rawValue, detail: "printed no JSON report; stderr: \(p.lastErrorLine)")
            }
            do { return try JSONDecoder().decode(SessionReport<P.Output>.self, from: Data(line.utf8)) } catch {
                throw SessionError.worker(role: r.rawValue, detail: "unreadable JSON report (\(error)): \(line)")
            }
        }
        return SessionResult(client: try report(.client), server: try report(.server), dealer: try report(.dealer))
    }
}

/// The running worker processes of one session.
public final class LaunchedSession: @unchecked Sendable {
    public internal(set) var processes: [SessionRole: WorkerProcess] = [:]
    /// Temporary keys of an authenticated session (removed on deinit).
    var keyDirectory: URL?

    deinit { if let d = keyDirectory { try? FileManager.default.removeItem(at: d) } }

    /// Kills every process still running (SIGKILL).
    public func killAll() { for p in processes.values { p.kill() } }

    /// Waits until all processes exit. When one exits non-zero, the rest get `grace` and are then killed.
    /// - Throws: `SessionError.worker` naming the first role that failed (or timed out) and its error.
    /// `tick` is called about twice a second while waiting (progress reports).
    public func waitAll(timeout: Duration, grace: Duration, tick: () -> Void = {}) throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var firstFailure: WorkerProcess?
        var graceDeadline: ContinuousClock.Instant?
        while true {
            let running = processes.values.filter { $0.exitStatus == nil }
            if firstFailure == nil {
                firstFailure = processes.values.filter { ($0.exitStatus ?? 0) != 0 }.min { $0.exitedAt! < $1.exitedAt! }
                if firstFailure != nil { graceDeadline = ContinuousClock.now.advanced(by: grace) }
            }
            if running.isEmpty { break }
            let limit = Swift.min(deadline, graceDeadline ?? deadline)
            if ContinuousClock.now >= limit {
                killAll()
                if firstFailure == nil {
                    throw SessionError.worker(role: running.map { $0.role.rawValue }.sorted().joined(separator: ", "),
                                              detail: "still running after \(timeout); killed")
                }
                break
            }
            running[0].waitForExit(until: Swift.min(limit, ContinuousClock.now.advanced(by: .milliseconds(500))))
            tick()
        }
        if let f = firstFailure {
            if f.killedBySignal {
                throw SessionError.worker(role: f.role.rawValue, detail: "was killed by signal \(f.exitStatus!) (it did not fail on its own)")
            }
            throw SessionError.worker(role: f.role.rawValue, detail: "exited with status \(f.exitStatus!): \(f.lastErrorLine)")
        }
    }
}

/// One worker child process with its stdout and stderr collected line by line.
public final class WorkerProcess: @unchecked Sendable {
    public let role: SessionRole
    private let process = Process()
    private let cond = NSCondition()
    private var out = Data(), err = Data()
    private var status: Int32?
    /// Pipes that reached end of file (2: both; the report is complete).
    private var eofs = 0
    private var exitInstant: ContinuousClock.Instant?

    /// Starts `executable arguments` with stdout and stderr collected; `role` names it in errors.
    public init(role: SessionRole, executable: URL, arguments: [String]) throws {
        self.role = role
        process.executableURL = executable
        process.arguments = arguments
        let o = Pipe(), e = Pipe()
        process.standardOutput = o
        process.standardError = e
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [weak self] p in self?.exited(p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal) }
        do { try process.run() } catch {
            throw SessionError.worker(role: role.rawValue, detail: "cannot start \(executable.path): \(error.localizedDescription)")
        }
        collect(o.fileHandleForReading, stdout: true)
        collect(e.fileHandleForReading, stdout: false)
    }

    /// The OS process id.
    public var pid: Int32 { process.processIdentifier }
    /// Exit status (nil while running; 128 + signal is not distinguished: a killed process is non-zero).
    public var exitStatus: Int32? { cond.lock(); defer { cond.unlock() }; return finished ? status : nil }
    /// Exited and both pipes drained.
    private var finished: Bool { status != nil && eofs == 2 }
    /// When the process exited.
    public var exitedAt: ContinuousClock.Instant? { cond.lock(); defer { cond.unlock() }; return exitInstant }
    /// Complete stdout lines so far.
    public var stdoutLines: [String] { cond.lock(); defer { cond.unlock() }; return Self.lines(out) }
    /// Everything written to stderr so far.
    public var stderrText: String { cond.lock(); defer { cond.unlock() }; return String(decoding: err, as: UTF8.self) }
    /// The last non-empty stderr line (the error of a failed worker).
    public var lastErrorLine: String {
        stderrText.split(separator: "\n").last.map(String.init) ?? "(no output on stderr)"
    }

    /// Sends SIGKILL if still running.
    public func kill() { if exitStatus == nil { _ = Glibc.kill(pid, SIGKILL) } }

    /// Waits for the process to exit or the deadline; returns the exit status or nil.
    @discardableResult
    public func waitForExit(until deadline: ContinuousClock.Instant) -> Int32? {
        waitFor(deadline) { self.finished }
        return exitStatus
    }

    /// Waits until stderr contains `text` (or the process exits, or the deadline passes); true if found.
    public func waitForStderr(containing text: String, until deadline: ContinuousClock.Instant) -> Bool {
        waitFor(deadline) { String(decoding: self.err, as: UTF8.self).contains(text) || self.finished }
        return stderrText.contains(text)
    }

    /// The `listening HOST:PORT` first stdout line of a dealer or server.
    public func listeningAddress(deadline: ContinuousClock.Instant) throws -> String {
        waitFor(deadline) { !Self.lines(self.out).isEmpty || self.finished }
        guard let first = stdoutLines.first, first.hasPrefix("listening ") else {
            kill()
            throw SessionError.worker(role: role.rawValue, detail: "did not report its listening address: \(lastErrorLine)")
        }
        return String(first.dropFirst("listening ".count))
    }

    private func waitFor(_ deadline: ContinuousClock.Instant, _ done: () -> Bool) {
        cond.lock(); defer { cond.unlock() }
        while !done() {
            let left = (deadline - ContinuousClock.now).seconds
            if left <= 0 { return }
            _ = cond.wait(until: Date(timeIntervalSinceNow: left))
        }
    }

    private func exited(_ s: Int32, signaled: Bool) {
        cond.lock(); status = s; self.signaled = signaled; exitInstant = .now; cond.broadcast(); cond.unlock()
    }

    /// The process ended by a signal (e.g. SIGKILL) rather than exiting with an error of its own.
    public var killedBySignal: Bool { cond.lock(); defer { cond.unlock() }; return signaled }
    private var signaled = false

    private func collect(_ h: FileHandle, stdout: Bool) {
        Thread.detachNewThread { [self] in
            while true {
                let d = h.availableData
                if d.isEmpty { cond.lock(); eofs += 1; cond.broadcast(); cond.unlock(); return }
                cond.lock()
                if stdout { out.append(d) } else { err.append(d) }
                cond.broadcast()
                cond.unlock()
            }
        }
    }

    private static func lines(_ d: Data) -> [String] {
        var s = String(decoding: d, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        s.removeLast()  // the incomplete tail (empty when the data ends with a newline)
        return s
    }
}
