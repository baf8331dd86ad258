import Foundation
import MPC
import SecureInference

/// The model owner's long-running server (party 1): serves client sessions over authenticated
/// channels, each on its own thread with its own dealer stream and its own copy of the weights, up to
/// `maxSessions` at once. A client that misbehaves (garbage, silence, a wrong key, a mismatched
/// bundle, dying mid-query) costs only its own connection.
public final class PartyServer: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// The bundle (`export`); read once for its public part, and per session for the weights.
        public var bundle: String
        public var listen: Endpoint
        public var dealer: Endpoint
        public var security: ChannelSecurity
        /// Sessions computing at once; a client beyond it is told the server is busy.
        public var maxSessions = 4
        /// Connections still in their handshake at once (bounds what strangers can hold).
        public var maxPendingHandshakes = 64
        /// Deadline of each receive during the computation.
        public var receiveTimeout: Duration = .seconds(60)
        /// Emulated link to the clients (`--net`; none on real networks).
        public var network: NetworkProfile = .none
        /// Stop after this many sessions (finished or failed); nil: serve until killed.
        public var stopAfter: Int?
        /// PRG seeds of the sessions (`.insecureTest` only in tests).
        public var seeds: SessionSeeds = .systemRandom

        public init(bundle: String, listen: Endpoint, dealer: Endpoint, security: ChannelSecurity) {
            (self.bundle, self.listen, self.dealer, self.security) = (bundle, listen, dealer, security)
        }
    }

    public let configuration: Configuration
    public let manifest: DeploymentManifest
    private let log: @Sendable (String) -> Void
    private let cond = NSCondition()
    private var active = 0, ended = 0, queriesDone = 0

    /// Reads the bundle's public part (the weights are read per session).
    /// - Throws: `DeploymentError` when the bundle is not deployable.
    public init(_ configuration: Configuration, log: @escaping @Sendable (String) -> Void) throws {
        self.configuration = configuration
        self.manifest = try DeploymentManifest(bundle: configuration.bundle)
        self.log = log
    }

    /// Listens and serves until `stopAfter` sessions ended (or forever).
    /// - Parameter onListening: called with the bound address (port 0 picks a free one).
    /// - Throws: `TransportError` when the address cannot be bound.
    public func serve(onListening: (Endpoint) -> Void) throws {
        let c = configuration
        try ConnectionLoop(limit: c.maxPendingHandshakes, label: "server").run(
            listen: c.listen, onListening: onListening,
            banner: { "server: serving \(self.manifest.models.joined(separator: ", ")) (bundle \(self.manifest.bundleHash.prefix(12))…) on \(c.listen.host):\($0), "
                      + "dealer \(c.dealer), at most \(c.maxSessions) sessions at once" },
            peerName: "a client", log: log, running: { !finished }
        ) { [self] channel, release in
            handle(channel, afterHandshake: release)
        }
        // Let sessions still running finish.
        cond.lock(); while active > 0 { cond.wait() }; cond.unlock()
    }

    private var finished: Bool {
        cond.lock(); defer { cond.unlock() }
        return configuration.stopAfter.map { ended >= $0 } ?? false
    }

    /// One connection, from handshake to the end of its session; never throws: every failure is logged.
    private func handle(_ raw: TCPChannel, afterHandshake release: () -> Void) {
        let c = configuration
        var countedActive = false
        var reachedSession = false
        defer {
            cond.lock()
            if countedActive { active -= 1 }
            if reachedSession { ended += 1 }
            cond.broadcast()
            cond.unlock()
        }
        let channel: SecureChannel
        do {
            defer { release() }
            channel = try SecureChannel.establish(over: raw, initiator: false, security: c.security)
        } catch {
            log("server: dropped a connection during the handshake: \(error)")
            return
        }
        let who = "client \(channel.peerIdentity)"
        let messages = DeploymentProtocol.connection(channel, timeout: c.security.handshakeTimeout)
        func refuse(_ reason: String) {
            log("server: refused \(who): \(reason)")
            try? DeploymentProtocol.send(ServerReply(error: reason), on: messages)
            channel.close()
        }
        let hello: ClientHello
        do { hello = try DeploymentProtocol.receive(ClientHello.self, on: messages, what: "hello") } catch {
            log("server: dropped \(who) before its hello: \(error)")
            channel.close()
            return
        }
        if let m = hello.mismatch(with: manifest) { return refuse(m) }
        guard (1...DeploymentProtocol.maxQueries).contains(hello.buckets.count) else {
            return refuse("a session holds 1...\(DeploymentProtocol.maxQueries) queries, not \(hello.buckets.count)")
        }
        let usable = LengthBuckets.usable(maxPosition: LengthBuckets.inputLimit(manifest.shapes))
        if let bad = hello.buckets.first(where: { !usable.contains($0) }) {
            return refuse("bucket \(bad) is not one of this bundle's buckets \(usable)")
        }
        let plan: SessionPlan
        do { plan = try manifest.plan(routing: hello.routing, buckets: hello.buckets) } catch { return refuse("\(error)") }
        cond.lock()
        let free = active < c.maxSessions
        if free { active += 1 }
        cond.unlock()
        guard free else { return refuse("the server is busy (\(c.maxSessions) sessions running); try again later") }
        countedActive = true
        reachedSession = true

        let session = Self.sessionID()
        let started = ContinuousClock.now
        var replied = false
        var dealerLink: ByteChannel?
        do {
            // Join the dealer first, so a dealer that cannot be reached is the client's clear error too.
            let dealer: ByteChannel
            do {
                let tcp = try TCPChannel.connect(host: c.dealer.host, port: c.dealer.port, peerName: "dealer",
                                                 deadline: .now.advanced(by: c.security.handshakeTimeout))
                dealer = try SecureChannel.establish(over: tcp, initiator: true, security: c.security)
                dealerLink = dealer
            } catch {
                throw DeploymentError("the server cannot reach its dealer at \(c.dealer): \(error)")
            }
            let toDealer = DeploymentProtocol.connection(dealer, timeout: .seconds(60))
            let (name, parameters) = plan.program
            try DeploymentProtocol.send(DealerJoin(session: session, role: "server", program: name, parameters: parameters,
                                                   clientKey: channel.peerIdentity.key.base64EncodedString()), on: toDealer)
            try DeploymentProtocol.send(ServerReply(session: session, program: name, parameters: parameters), on: messages)
            replied = true
            let paired = try DeploymentProtocol.receive(DealerReply.self, on: toDealer, what: "dealer reply")
            if let e = paired.error { throw DeploymentError("the dealer refused session \(session.prefix(8)): \(e)") }
            log("server: session \(session.prefix(8)) with \(who): \(plan.queryCount) queries, routing \(hello.routing)")
            let inputs = try plan.serverInputs(bundle: c.bundle)
            var options = SessionOptions(network: c.network, seeds: c.seeds)
            options.receiveTimeout = c.receiveTimeout
            options.preprocess = true
            let outcomes = try plan.compute(as: .server, peer: channel, dealer: dealer, inputs: inputs, options: options) { [self] _ in
                cond.lock(); queriesDone += 1; let n = queriesDone; let a = active; cond.unlock()
                log("server: query done (\(n) in total, \(a) sessions running, RSS \(residentMegabytes().map { String(format: "%.1f MB", $0) } ?? "?"))")
            }
            log("server: session \(session.prefix(8)) finished: \(outcomes.count) queries in "
                + String(format: "%.2f s", (ContinuousClock.now - started).seconds))
        } catch {
            // Before the reply the client waits for one; after it, closing the channel tells it.
            if !replied { try? DeploymentProtocol.send(ServerReply(error: "\(error)"), on: messages) }
            channel.close()
            dealerLink?.close()
            log("server: session \(session.prefix(8)) with \(who) failed: \(error)")
        }
    }

    static func sessionID() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }
}
