import ArgumentParser
import Deployment
import Foundation
import MPC
import SecureInference
import Tensor

/// `party --role client|server|dealer`: one process of a multi-host deployment (DESIGN §2, docs/deploy.md).
struct PartyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "party",
        abstract: "Run one process of a deployment: the server (bundle owner), the dealer, or a client, on separate hosts.",
        discussion: """
            Every link is authenticated with pinned Ed25519 keys (keygen) and encrypted with AES-256-GCM; a \
            connection from a key that is not trusted is refused. Start the dealer, then the server, then clients:

              party --role dealer --listen 0.0.0.0:7001 --key dealer.key \\
                --trust server.pub --trust clients.pub
              party --role server --bundle bundle.h5 --listen 0.0.0.0:7000 \\
                --dealer DEALER:7001 --key server.key \\
                --trust dealer.pub --trust clients.pub
              party --role client --bundle bundle.public.json \\
                --connect SERVER:7000 --dealer DEALER:7001 --key alice.key \\
                --trust server.pub --trust dealer.pub --text-file queries.txt

            Server and dealer print `listening HOST:PORT` first and serve until killed (or --exit-after N \
            sessions); each client session runs on its own thread with its own dealer stream, at most \
            --max-sessions at once. The client needs only the bundle's public description (export writes \
            NAME.public.json; the .h5 works too, and only its public parts are read); the session starts only \
            if its protocol version, bundle hash, model names and ring parameters match the server's.

            The client prints one line per query and a summary (JSON with --json: {"session","queries":[{"index",\
            "prediction","gold","model","bucket","seconds","online_bytes","offline_bytes","rounds","router_seconds"}],\
            "summary":{"n","requested","accuracy","latency_mean","latency_p50","latency_p95","online_bytes_mean",\
            "offline_bytes_mean","rounds_mean","routing_histogram","router_seconds_mean","routing","bundle_hash"},"failure"}); \
            when the session fails midway, the finished queries are still reported and the exit status is non-zero.
            """)

    @Option(help: "client, server or dealer.") var role: String
    @Option(help: "Server: the bundle (.h5, from export). Client: the bundle's public description (.public.json) or the bundle.")
    var bundle: String?
    @Option(help: "Server and dealer: HOST:PORT to listen on (port 0: any free port; the bound address is printed first).")
    var listen: String?
    @Option(help: "Client: the server's HOST:PORT.") var connect: String?
    @Option(help: "Server and client: the dealer's HOST:PORT.") var dealer: String?
    @Option(help: "This process's private key (written by keygen).") var key: String
    @Option(help: "A file of trusted public keys (repeatable): the .pub files of the processes this one talks to.")
    var trust: [String] = []
    @OptionGroup var queries: QueryOptions
    @Option(help: "Client: reveal or oblivious (with a router; default reveal) or model:NAME.") var routing: String?
    @Option(help: "Server and dealer: sessions served at once.") var maxSessions: Int?
    @Option(help: "Seconds each receive may wait during a session (a silent peer is an error after it).") var timeout: Double = 60
    @Option(help: "Dealer: seconds a session may last before the dealer stops waiting for its parties.") var sessionTimeout: Double = 3600
    @Option(help: "Seconds a new connection has to finish its handshake and hello (strangers are dropped after it).")
    var handshakeTimeout: Double = 10
    @Option(help: "Emulated network on the client-server link (none on real networks; lan or wan for experiments).")
    var net = "none"
    @Option(help: "Server: exit after this many sessions (scripts and tests); default: serve until killed.") var exitAfter: Int?
    @Option(name: .customLong("insecure-test-seed"), help: .hidden) var insecureTestSeed: UInt64?
    @OptionGroup var json: JSONOutputOptions
    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard ["client", "server", "dealer"].contains(role) else { throw ValidationError("--role must be client, server or dealer, not '\(role)'") }
        guard !trust.isEmpty else { throw ValidationError("give --trust FILE with the public keys of the processes this \(role) talks to") }
        guard NetworkProfile(name: net) != nil else { throw ValidationError("--net must be none, lan or wan, not '\(net)'") }
        guard timeout > 0, handshakeTimeout > 0, sessionTimeout > 0 else {
            throw ValidationError("--timeout, --handshake-timeout and --session-timeout must be positive")
        }
        if let m = maxSessions, m < 1 { throw ValidationError("--max-sessions must be at least 1") }
        if let e = exitAfter, e < 1 { throw ValidationError("--exit-after must be at least 1") }
        switch role {
        case "dealer":
            guard listen != nil else { throw ValidationError("the dealer needs --listen HOST:PORT") }
        case "server":
            guard bundle != nil, listen != nil, dealer != nil else { throw ValidationError("the server needs --bundle, --listen and --dealer") }
        default:
            guard bundle != nil, connect != nil, dealer != nil else { throw ValidationError("the client needs --bundle, --connect and --dealer") }
            try queries.check()
        }
    }

    func run() throws {
        Runtime.configureForParty()
        var security = ChannelSecurity(identity: try IdentityKey.load(key), trusted: try TrustStore(files: trust))
        security.handshakeTimeout = .milliseconds(Int64(handshakeTimeout * 1000))
        let quiet = progress.quiet
        let log: @Sendable (String) -> Void = { line in if !quiet { printErr(line) } }
        let announce: (Endpoint) -> Void = { at in FileHandle.standardOutput.write(Data("listening \(at)\n".utf8)) }
        switch role {
        case "dealer":
            var c = DealerService.Configuration(listen: try Self.endpoint(listen!, "--listen"), security: security)
            if let m = maxSessions { c.maxSessions = m }
            if let s = insecureTestSeed { c.seeds = .insecureTest(s) }
            c.sessionTimeout = .milliseconds(Int64(sessionTimeout * 1000))
            try DealerService(c, log: log).serve(onListening: announce)
        case "server":
            guard FileManager.default.fileExists(atPath: bundle!) else { throw ValidationError("no such bundle: \(bundle!)") }
            var c = PartyServer.Configuration(bundle: bundle!, listen: try Self.endpoint(listen!, "--listen"),
                                              dealer: try Self.endpoint(dealer!, "--dealer"), security: security)
            if let m = maxSessions { c.maxSessions = m }
            c.receiveTimeout = .milliseconds(Int64(timeout * 1000))
            c.network = NetworkProfile(name: net)!
            c.stopAfter = exitAfter
            if let s = insecureTestSeed { c.seeds = .insecureTest(s) }
            try PartyServer(c, log: log).serve(onListening: announce)
        default:
            try runClient(security: security, log: log)
        }
    }

    static func endpoint(_ s: String, _ flag: String) throws -> Endpoint {
        do { return try Endpoint(parsing: s) } catch { throw ValidationError("\(flag) '\(s)' is not HOST:PORT (e.g. 10.0.0.2:7000)") }
    }

    private func runClient(security: ChannelSecurity, log: @escaping @Sendable (String) -> Void) throws {
        let manifest = try DeploymentManifest.load(bundle!)
        let routing = routing ?? (manifest.router != nil ? "reveal" : "")
        guard !routing.isEmpty else {
            throw ValidationError("the bundle has no router; choose a member with --routing model:NAME (\(manifest.models.joined(separator: ", ")))")
        }
        let classes = manifest.shapes[0].classes
        let (texts, gold) = try queries.load(outputs: classes, what: "the bundle's models have")
        let (encoded, buckets, truncated) = try manifest.encode(texts)
        if truncated > 0 { log("party client: warning: \(truncated) of \(texts.count) texts truncated to \(buckets.max()!) tokens") }
        var client = PartyClient(manifest: manifest, server: try Self.endpoint(connect!, "--connect"),
                                 dealer: try Self.endpoint(dealer!, "--dealer"), security: security, routing: routing)
        client.receiveTimeout = .milliseconds(Int64(timeout * 1000))
        client.network = NetworkProfile(name: net)!
        if let s = insecureTestSeed { client.seeds = .insecureTest(s) }
        log("party client: \(texts.count) queries, routing \(routing), server \(connect!), dealer \(dealer!)")
        let printLines = !json.usesStdout
        let result = try client.run(encoded, buckets: buckets) { o in
            if printLines {
                let g = gold.map { " gold \($0[o.index])" } ?? ""
                print("query \(o.index): label \(o.label.map(String.init) ?? "-")\(g) model \(o.model ?? "(secret)") "
                      + String(format: "%.3f s, %@, %d rounds", o.cost.seconds, formatBytes(o.cost.bytesSent + o.cost.bytesReceived), o.cost.rounds))
            }
        }
        let report = ClientReport(result: result, gold: gold, buckets: buckets, requested: texts.count, truncated: truncated,
                                  routing: routing, bundleHash: manifest.bundleHash)
        try finishReport(json, report.json, table: report.printSummary, failure: result.failure, done: result.outcomes.count,
                         requested: texts.count, run: "session")
    }
}

/// What a `party` client reports.
struct ClientReport {
    var result: PartyClient.Result
    var gold: [Int]?, buckets: [Int]
    var requested: Int, truncated: Int
    var routing: String, bundleHash: String

    var outcomes: [DeployedOutcome] { result.outcomes }
    func online(_ c: CostSample) -> Int { c.bytesSent + c.bytesReceived }
    func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }

    var accuracy: Double? {
        guard let gold, !outcomes.isEmpty else { return nil }
        return Double(outcomes.filter { $0.label == gold[$0.index] }.count) / Double(outcomes.count)
    }

    var json: [String: Any] {
        let queries: [[String: Any]] = outcomes.map { o in
            var q: [String: Any] = ["index": o.index, "prediction": o.label ?? -1, "model": o.model ?? NSNull(), "bucket": buckets[o.index],
                                    "seconds": o.cost.seconds, "online_bytes": online(o.cost), "offline_bytes": o.cost.offlineBytes,
                                    "rounds": o.cost.rounds]
            if let gold { q["gold"] = gold[o.index] }
            if let r = o.router { q["router_seconds"] = r.seconds }
            return q
        }
        let secs = outcomes.map(\.cost.seconds)
        var histogram = [String: Int]()
        for o in outcomes { histogram[o.model ?? "(secret)", default: 0] += 1 }
        var summary: [String: Any] = [
            "n": outcomes.count, "requested": requested, "truncated": truncated, "routing": routing, "bundle_hash": bundleHash,
            "latency_mean": mean(secs), "latency_p50": SecureEvalReport.percentile(secs, 0.5), "latency_p95": SecureEvalReport.percentile(secs, 0.95),
            "online_bytes_mean": mean(outcomes.map { Double(online($0.cost)) }), "offline_bytes_mean": mean(outcomes.map { Double($0.cost.offlineBytes) }),
            "rounds_mean": mean(outcomes.map { Double($0.cost.rounds) }), "routing_histogram": histogram,
        ]
        if let a = accuracy { summary["accuracy"] = a }
        let routed = outcomes.compactMap(\.router)
        if !routed.isEmpty { summary["router_seconds_mean"] = mean(routed.map(\.seconds)) }
        var object: [String: Any] = ["queries": queries, "summary": summary]
        if let s = result.session { object["session"] = s }
        if let f = result.failure { object["failure"] = f }
        return object
    }

    func printSummary() {
        let secs = outcomes.map(\.cost.seconds)
        print("party client: \(outcomes.count)/\(requested) queries, routing \(routing)"
              + (accuracy.map { String(format: ", accuracy %.2f%%", 100 * $0) } ?? ""))
        print(String(format: "  latency mean %.3f s (p50 %.3f, p95 %.3f); online %@ and %.0f rounds per query",
                     mean(secs), SecureEvalReport.percentile(secs, 0.5), SecureEvalReport.percentile(secs, 0.95),
                     formatBytes(Int(mean(outcomes.map { Double(online($0.cost)) }))), mean(outcomes.map { Double($0.cost.rounds) })))
        let routed = outcomes.compactMap(\.router)
        if !routed.isEmpty { print(String(format: "  router: %.3f s per query", mean(routed.map(\.seconds)))) }
        var histogram = [String: Int]()
        for o in outcomes { histogram[o.model ?? "(secret)", default: 0] += 1 }
        print("  models: " + histogram.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }
}
