import Foundation
import MPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 7: `party` deployments. One exported tiny bundle and one set of keys serve every test; each
/// test starts its own dealer and server (`party --role dealer|server`, port 0) and clients.
@Suite(.serialized) struct DeploymentTests {
    /// The bundle, its public description, keys and queries, built once.
    final class Fixture: Sendable {
        let dir: URL
        let queries: [String]
        /// Labels of a routed `secure-eval` of `q.txt` with `--insecure-test-seed 5` (reveal).
        let reference: [Int]
        let referenceModels: [String]

        init() throws {
            let dir = try CLI.tempDir()
            self.dir = dir
            fixtureDirectory = dir.path
            atexit { if let d = fixtureDirectory { try? FileManager.default.removeItem(atPath: d) } }
            try FitRouterTests.trainPool(in: dir, epochs: 4)
            try "max_drop: 0.2\n".write(to: dir.appendingPathComponent("r.yaml"), atomically: true, encoding: .utf8)
            let f = try CLI.run(["fit-router", "--pool", "run", "--config", "r.yaml", "--quiet"], cwd: dir)
            guard f.status == 0 else { throw DeploymentFixtureError("fit-router: \(f.stderr)") }
            let e = try CLI.run(["export", "--pool", "run", "--out", "bundle.h5"], cwd: dir)
            guard e.status == 0, e.stdout.contains("bundle.public.json") else { throw DeploymentFixtureError("export: \(e.stderr)") }
            for name in ["dealer", "server", "alice", "bob", "carol", "dave", "mallory"] {
                let k = try CLI.run(["keygen", "--name", name], cwd: dir)
                guard k.status == 0 else { throw DeploymentFixtureError("keygen: \(k.stderr)") }
            }
            func pub(_ n: String) throws -> String { try String(contentsOf: dir.appendingPathComponent("\(n).pub"), encoding: .utf8) }
            let clients = try ["alice", "bob", "carol", "dave"].map(pub).joined()
            try (try pub("server") + clients).write(to: dir.appendingPathComponent("dealer-trusts.pub"), atomically: true, encoding: .utf8)
            try (try pub("dealer") + clients).write(to: dir.appendingPathComponent("server-trusts.pub"), atomically: true, encoding: .utf8)
            try (try pub("server") + pub("dealer")).write(to: dir.appendingPathComponent("client-trusts.pub"), atomically: true, encoding: .utf8)
            let test = try String(contentsOf: dir.appendingPathComponent("datasets/mr/test.tsv"), encoding: .utf8)
            let queries = test.split(separator: "\n").dropFirst().map { String($0.split(separator: "\t")[0]) }
            self.queries = queries
            try queries.joined(separator: "\n").write(to: dir.appendingPathComponent("q.txt"), atomically: true, encoding: .utf8)
            // 50 queries for the load test.
            try (0..<50).map { queries[$0 % queries.count] }.joined(separator: "\n")
                .write(to: dir.appendingPathComponent("q50.txt"), atomically: true, encoding: .utf8)
            let s = try CLI.run(["secure-eval", "--bundle", "bundle.h5", "--text-file", "q.txt", "--routing", "reveal",
                                 "--insecure-test-seed", "5", "--json", "ref.json", "--quiet"], cwd: dir)
            guard s.status == 0 else { throw DeploymentFixtureError("secure-eval: \(s.stderr)") }
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("ref.json"))) as! [String: Any]
            let q = report["queries"] as! [[String: Any]]
            reference = q.map { $0["prediction"] as! Int }
            referenceModels = q.map { $0["model"] as! String }
        }

        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    }

    static let shared = Result { try Fixture() }
    var fx: Fixture { get throws { try Self.shared.get() } }

    /// A running dealer and server on loopback (or in network namespaces, through `wrap`).
    struct Services {
        let dealer: WorkerProcess, server: WorkerProcess
        let dealerAt: String, serverAt: String
        func stop() { dealer.kill(); server.kill() }
    }

    /// `securerouter party ...` as a child process, optionally prefixed (e.g. `ip netns exec NS`).
    static func party(_ role: SessionRole, _ args: [String], wrap: [String] = []) throws -> WorkerProcess {
        let exe = wrap.isEmpty ? CLI.executable : URL(fileURLWithPath: wrap[0])
        let all = (wrap.isEmpty ? [] : Array(wrap.dropFirst()) + [CLI.executable.path]) + ["party", "--role", role.rawValue] + args
        return try WorkerProcess(role: role, executable: exe, arguments: all)
    }

    static func startServices(_ fx: Fixture, extraServer: [String] = [], handshakeTimeout: Int = 10,
                              listenHost: String = "127.0.0.1", dealerHostForServer: String? = nil,
                              wrapDealer: [String] = [], wrapServer: [String] = []) throws -> Services {
        let common = ["--handshake-timeout", String(handshakeTimeout), "--insecure-test-seed", "5"]
        let d = try party(.dealer, ["--listen", "\(listenHost):0", "--key", fx.path("dealer.key"), "--trust", fx.path("dealer-trusts.pub")] + common,
                          wrap: wrapDealer)
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        let dealerAt = try d.listeningAddress(deadline: deadline)
        let dealerForServer = dealerHostForServer.map { "\($0):\(dealerAt.split(separator: ":").last!)" } ?? dealerAt
        let s = try party(.server, ["--bundle", fx.path("bundle.h5"), "--listen", "\(listenHost):0", "--dealer", dealerForServer,
                                    "--key", fx.path("server.key"), "--trust", fx.path("server-trusts.pub")] + common + extraServer,
                          wrap: wrapServer)
        let serverAt: String
        do { serverAt = try s.listeningAddress(deadline: deadline) } catch { d.kill(); throw error }
        return Services(dealer: d, server: s, dealerAt: dealerAt, serverAt: serverAt)
    }

    static func clientArgs(_ fx: Fixture, _ svc: Services, key: String = "alice", queries: String = "q.txt", json: String,
                           server: String? = nil, dealer: String? = nil) -> [String] {
        ["--bundle", fx.path("bundle.public.json"), "--connect", server ?? svc.serverAt, "--dealer", dealer ?? svc.dealerAt,
         "--key", fx.path("\(key).key"), "--trust", fx.path("client-trusts.pub"), "--text-file", fx.path(queries),
         "--insecure-test-seed", "5", "--json", fx.path(json), "--quiet"]
    }

    static func labels(_ fx: Fixture, _ json: String) throws -> (labels: [Int], models: [String], summary: [String: Any]) {
        let r = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fx.path(json)))) as! [String: Any]
        let q = r["queries"] as! [[String: Any]]
        return (q.map { $0["prediction"] as! Int }, q.map { $0["model"] as! String }, r["summary"] as! [String: Any])
    }

    static func finish(_ p: WorkerProcess, within seconds: Int64 = 120) -> Int32? {
        let s = p.waitForExit(until: .now.advanced(by: .seconds(seconds)))
        if s == nil { p.kill() }
        return s
    }

    /// A client over loopback, from the public description only, gets exactly secure-eval's answers
    /// (same test seed: the same secure computation), routing decisions included.
    @Test(.timeLimit(.minutes(6))) func loopbackClientMatchesSecureEval() throws {
        let fx = try fx
        let svc = try Self.startServices(fx)
        defer { svc.stop() }
        let c = try Self.party(.client, Self.clientArgs(fx, svc, json: "loop.json"))
        #expect(Self.finish(c) == 0, "client: \(c.stderrText)")
        let (labels, models, summary) = try Self.labels(fx, "loop.json")
        #expect(labels == fx.reference && models == fx.referenceModels)
        #expect(summary["n"] as? Int == fx.queries.count && (summary["router_seconds_mean"] as? Double ?? 0) > 0)
        #expect(svc.server.stderrText.contains("finished: \(fx.queries.count) queries"), "\(svc.server.stderrText)")
        // What the client holds: inspect reads the public description.
        let i = try CLI.run(["inspect", fx.path("bundle.public.json")])
        #expect(i.status == 0 && i.stdout.contains("no weights") && i.stdout.contains("model tiny") && i.stdout.contains("router:"), "\(i.stdout)\n\(i.stderr)")
    }

    /// Acceptance 1: dealer, server and client in three network namespaces joined by veth pairs.
    @Test(.timeLimit(.minutes(6)), .enabled(if: NetworkNamespaces.available, "needs root and `ip netns` (skipped: \(NetworkNamespaces.reason))"))
    func threeNetworkNamespacesGiveTheLoopbackPredictions() throws {
        let fx = try fx
        let net = try NetworkNamespaces()
        defer { net.remove() }
        let svc = try Self.startServices(fx, listenHost: "0.0.0.0", dealerHostForServer: net.dealerFromServer,
                                         wrapDealer: net.exec(net.dealer), wrapServer: net.exec(net.server))
        defer { svc.stop() }
        let serverPort = svc.serverAt.split(separator: ":").last!, dealerPort = svc.dealerAt.split(separator: ":").last!
        let c = try Self.party(.client, Self.clientArgs(fx, svc, json: "netns.json", server: "\(net.serverFromClient):\(serverPort)",
                                                        dealer: "\(net.dealerFromClient):\(dealerPort)"),
                               wrap: net.exec(net.client))
        #expect(Self.finish(c) == 0, "client: \(c.stderrText)\nserver: \(svc.server.stderrText)")
        let (labels, models, _) = try Self.labels(fx, "netns.json")
        #expect(labels == fx.reference && models == fx.referenceModels)
        // The client really was outside the server's namespace: loopback there does not reach the server.
        let probe = try Self.party(.client, Self.clientArgs(fx, svc, json: "probe.json", server: "127.0.0.1:\(serverPort)",
                                                            dealer: "127.0.0.1:\(dealerPort)") + ["--handshake-timeout", "2"],
                                   wrap: net.exec(net.client))
        #expect(Self.finish(probe, within: 30) != 0)
    }

    /// Acceptance 2 and the handshake: a key the server does not trust is refused; a client whose bundle
    /// description differs (hash, names, ring) is refused with an error naming the difference.
    @Test(.timeLimit(.minutes(3))) func wrongKeyAndMismatchedBundleAreRefused() throws {
        let fx = try fx
        let svc = try Self.startServices(fx)
        defer { svc.stop() }
        let bad = try CLI.run(["party", "--role", "client"] + Self.clientArgs(fx, svc, key: "mallory", json: "m.json"))
        #expect(bad.status != 0 && bad.stderr.contains("refused the connection") && bad.stderr.contains("not trusted"), "\(bad.stderr)")
        // (The server may log the refusal a moment after the client has exited.)
        let refused = svc.server.waitForLines(containing: "which is not in the trusted keys; refused", count: 1, until: .now.advanced(by: .seconds(10)))
        #expect(refused.count == 1, "\(svc.server.stderrText)")

        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fx.path("bundle.public.json")))) as! [String: Any]
        let changes: [(String, Any, String)] = [("bundle_hash", String(repeating: "0", count: 64), "bundle hash mismatch"),
                                                ("models", ["tiny", "other"], "model names mismatch"),
                                                ("frac_bits", 12, "ring parameters mismatch"),
                                                ("protocol_version", 99, "protocol version mismatch")]
        for (key, value, message) in changes {
            var m = manifest
            m[key] = value
            let path = fx.path("changed-\(key).public.json")
            try JSONSerialization.data(withJSONObject: m).write(to: URL(fileURLWithPath: path))
            var args = Self.clientArgs(fx, svc, json: "x.json")
            args[1] = path
            let r = try CLI.run(["party", "--role", "client"] + args)
            #expect(r.status != 0 && r.stderr.contains(message), "\(key): \(r.stderr)")
        }
        #expect(svc.server.isRunning)
    }

    /// Acceptance 2: garbage, a truncated frame, a huge length prefix and a silent connection are each
    /// dropped within the handshake timeout, while a real client's session runs and finishes correctly.
    @Test(.timeLimit(.minutes(4))) func strangersAreDroppedWhileAClientIsServed() throws {
        let fx = try fx
        let svc = try Self.startServices(fx, handshakeTimeout: 3)
        defer { svc.stop() }
        let port = try Endpoint(parsing: svc.serverAt).port
        let silent = try RawTCP(port: port)
        let garbage = try RawTCP(port: port)
        var g = SystemRandomNumberGenerator()
        garbage.send((0..<4096).map { _ in UInt8.random(in: 0...255, using: &g) })
        let truncated = try RawTCP(port: port)
        truncated.send([72, 0, 0, 0, 1] + Array("SRCH".utf8) + [1, 0])   // 11 of 76 bytes, then nothing
        let huge = try RawTCP(port: port)
        huge.send([0xF0, 0xFF, 0xFF, 0xFF] + Array(repeating: 0, count: 16))
        let client = try Self.party(.client, Self.clientArgs(fx, svc, json: "amid.json"))
        let started = ContinuousClock.now
        #expect(Self.finish(client) == 0, "client: \(client.stderrText)")
        #expect(try Self.labels(fx, "amid.json").labels == fx.reference)
        // All four dropped, the slow ones at the 3 s handshake deadline.
        let log = svc.server.waitForLines(containing: "dropped a connection during the handshake", count: 4,
                                                 until: started.advanced(by: .seconds(20)))
        #expect(log.count == 4, "\(svc.server.stderrText)")
        #expect(log.filter { $0.contains("timed out") }.count == 2 && log.filter { $0.contains("length prefix") }.count >= 1, "\(log)")
        for c in [silent, garbage, truncated, huge] { c.close() }
        #expect(svc.server.isRunning)
    }

    /// Acceptance 2: a client killed mid-session costs only its session; a dealer killed mid-session
    /// gives both parties an error naming the dealer, and the server keeps serving (and says it cannot
    /// reach a dealer until one is back).
    @Test(.timeLimit(.minutes(5))) func killedClientAndKilledDealer() throws {
        let fx = try fx
        let svc = try Self.startServices(fx)
        defer { svc.stop() }
        let victim = try Self.party(.client, Self.clientArgs(fx, svc, queries: "q50.txt", json: "victim.json"))
        #expect(svc.server.waitForLines(containing: "query done", count: 2, until: .now.advanced(by: .seconds(60))).count >= 2)
        victim.kill()
        #expect(svc.server.waitForLines(containing: "failed", count: 1, until: .now.advanced(by: .seconds(30))).count == 1,
                "\(svc.server.stderrText)")
        let next = try Self.party(.client, Self.clientArgs(fx, svc, key: "bob", json: "next.json"))
        #expect(Self.finish(next) == 0, "client after a killed client: \(next.stderrText)")
        #expect(try Self.labels(fx, "next.json").labels == fx.reference)

        let during = try Self.party(.client, Self.clientArgs(fx, svc, key: "carol", queries: "q50.txt", json: "during.json"))
        let before = svc.server.stderrText.components(separatedBy: "query done").count
        _ = svc.server.waitForLines(containing: "query done", count: before + 1, until: .now.advanced(by: .seconds(60)))
        svc.dealer.kill()
        let status = Self.finish(during, within: 60)
        #expect(status != nil && status != 0 && during.lastErrorLine.contains("dealer"), "client: \(during.stderrText)")
        #expect(svc.server.waitForLines(containing: "failed", count: 2, until: .now.advanced(by: .seconds(30))).count == 2)
        #expect(svc.server.isRunning)
        let orphan = try CLI.run(["party", "--role", "client"] + Self.clientArgs(fx, svc, key: "dave", json: "orphan.json"))
        #expect(orphan.status != 0 && orphan.stderr.contains("cannot reach its dealer"), "\(orphan.stderr)")
    }

    /// Acceptance 3: four clients of fifty queries each at once on one server: every answer correct
    /// (identical to the reference computation), and the server's memory flat between the first and
    /// the last fifty queries.
    @Test(.timeLimit(.minutes(8))) func fourConcurrentClientsOfFiftyQueries() throws {
        let fx = try fx
        let svc = try Self.startServices(fx, extraServer: ["--max-sessions", "4"])
        defer { svc.stop() }
        let started = ContinuousClock.now
        let clients = try ["alice", "bob", "carol", "dave"].map {
            try Self.party(.client, Self.clientArgs(fx, svc, key: $0, queries: "q50.txt", json: "load-\($0).json"))
        }
        for c in clients { #expect(Self.finish(c, within: 400) == 0, "\(c.stderrText)") }
        let seconds = (ContinuousClock.now - started).seconds
        let expected = (0..<50).map { fx.reference[$0 % fx.reference.count] }
        for name in ["alice", "bob", "carol", "dave"] {
            #expect(try Self.labels(fx, "load-\(name).json").labels == expected, "\(name)")
        }
        // RSS after query 50 and after query 200, from the server's per-query log lines.
        let lines = svc.server.stderrText.split(separator: "\n").filter { $0.contains("query done") }
        func rss(_ n: Int) -> Double? {
            guard let l = lines.first(where: { $0.contains("(\(n) in total") }), let r = l.range(of: "RSS ") else { return nil }
            return Double(l[r.upperBound...].split(separator: " ")[0])
        }
        let (first, last) = (try #require(rss(50)), try #require(rss(200)))
        print("load: 4 clients x 50 queries in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", 200 / seconds)) queries/s); server RSS \(first) MB after 50, \(last) MB after 200")
        #expect(last <= first * 1.10, "server memory grew from \(first) MB to \(last) MB")
    }
}

/// The shared fixture's directory, removed when the test process exits.
nonisolated(unsafe) var fixtureDirectory: String?

struct DeploymentFixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

extension WorkerProcess {
    /// Still running.
    var isRunning: Bool { exitStatus == nil }

    /// Waits until stderr holds at least `count` lines containing `text`; returns those lines.
    func waitForLines(containing text: String, count: Int, until deadline: ContinuousClock.Instant) -> [String] {
        while true {
            let lines = stderrText.split(separator: "\n").map(String.init).filter { $0.contains(text) }
            if lines.count >= count || ContinuousClock.now >= deadline || exitStatus != nil { return lines }
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}

/// Three network namespaces (dealer, server, client) joined pairwise by veth links, removed afterwards.
final class NetworkNamespaces: Sendable {
    let dealer: String, server: String, client: String
    let serverFromClient = "10.231.1.2", dealerFromClient = "10.231.2.2", dealerFromServer = "10.231.3.2"
    static let ip: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Why the test cannot run here, or nil.
    static let problem: String? = {
        guard let ip else { return "the `ip` tool is not installed" }
        guard geteuid() == 0 else { return "not root" }
        let probe = "sr-probe-\(getpid())"
        guard run(ip, ["netns", "add", probe]) else { return "`ip netns add` is not permitted in this container" }
        _ = run(ip, ["netns", "del", probe])
        return nil
    }()
    static var available: Bool { problem == nil }
    static var reason: String { problem ?? "-" }

    init() throws {
        let tag = "\(getpid() % 100000)"
        (dealer, server, client) = ("sr-d-\(tag)", "sr-s-\(tag)", "sr-c-\(tag)")
        let ip = Self.ip!
        for ns in [dealer, server, client] {
            guard Self.run(ip, ["netns", "add", ns]), Self.run(ip, ["-n", ns, "link", "set", "lo", "up"]) else {
                remove(); throw DeploymentFixtureError("cannot create network namespace \(ns)")
            }
        }
        // One veth pair per link: client-server (10.231.1.0/24), client-dealer (.2), server-dealer (.3);
        // the second namespace of each pair holds .2.
        for (i, (a, b)) in [(client, server), (client, dealer), (server, dealer)].enumerated() {
            let (va, vb) = ("sr\(tag)a\(i)", "sr\(tag)b\(i)")
            let ok = Self.run(ip, ["link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b])
                && Self.run(ip, ["-n", a, "addr", "add", "10.231.\(i + 1).1/24", "dev", va])
                && Self.run(ip, ["-n", b, "addr", "add", "10.231.\(i + 1).2/24", "dev", vb])
                && Self.run(ip, ["-n", a, "link", "set", va, "up"]) && Self.run(ip, ["-n", b, "link", "set", vb, "up"])
            guard ok else { remove(); throw DeploymentFixtureError("cannot create the veth link \(a)-\(b)") }
        }
    }

    /// The command prefix that runs a program inside `ns`.
    func exec(_ ns: String) -> [String] { [Self.ip!, "netns", "exec", ns] }

    func remove() { for ns in [dealer, server, client] { _ = Self.run(Self.ip!, ["netns", "del", ns]) } }

    @discardableResult
    static func run(_ exe: String, _ args: [String]) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }
}
