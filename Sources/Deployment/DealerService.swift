import Foundation
import MPC

/// The long-running dealer of a deployment: pairs the server's and the client's connection of each
/// session (by the session id the server issued) and deals that session's correlated randomness on
/// its own thread. It needs no bundle: the program's public shapes arrive in the joins, and it never
/// sees inputs, weights or outputs.
public final class DealerService: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var listen: Endpoint
        public var security: ChannelSecurity
        /// Sessions dealt at once; a pair beyond it is refused as busy.
        public var maxSessions = 16
        /// How long a join waits for the other party of its session.
        public var pairingTimeout: Duration = .seconds(30)
        /// Connections still in their handshake or waiting for a partner, at once.
        public var maxPending = 128
        /// PRG seeds of the sessions (`.insecureTest` only in tests).
        public var seeds: SessionSeeds = .systemRandom
        /// Longest a dealt session may run before the dealer gives up waiting for the parties' done.
        public var sessionTimeout: Duration = .seconds(3600)

        public init(listen: Endpoint, security: ChannelSecurity) {
            self.listen = listen
            self.security = security
        }
    }

    public let configuration: Configuration
    private let log: @Sendable (String) -> Void
    private let cond = NSCondition()
    private var waiting: [String: Waiting] = [:]
    private var active = 0

    /// A join waiting for its partner; the partner's thread claims it and runs the session.
    private final class Waiting: @unchecked Sendable {
        let join: DealerJoin
        let channel: SecureChannel
        let messages: FramedConnection
        var claimed = false
        init(join: DealerJoin, channel: SecureChannel, messages: FramedConnection) {
            (self.join, self.channel, self.messages) = (join, channel, messages)
        }
    }

    public init(_ configuration: Configuration, log: @escaping @Sendable (String) -> Void) {
        self.configuration = configuration
        self.log = log
    }

    /// Listens and deals until the process is killed.
    /// - Throws: `TransportError` when the address cannot be bound.
    public func serve(onListening: (Endpoint) -> Void) throws {
        let c = configuration
        try ConnectionLoop(limit: c.maxPending, label: "dealer").run(
            listen: c.listen, onListening: onListening, banner: { "dealer: listening on \(c.listen.host):\($0), at most \(c.maxSessions) sessions at once" },
            peerName: "a party", log: log, running: { true }
        ) { [self] channel, _ in
            handle(channel)
        }
    }

    private func handle(_ raw: TCPChannel) {
        let c = configuration
        let channel: SecureChannel
        do { channel = try SecureChannel.establish(over: raw, initiator: false, security: c.security) } catch {
            log("dealer: dropped a connection during the handshake: \(error)")
            return
        }
        let messages = DeploymentProtocol.connection(channel, timeout: c.security.handshakeTimeout)
        let join: DealerJoin
        do { join = try DeploymentProtocol.receive(DealerJoin.self, on: messages, what: "dealer join") } catch {
            log("dealer: dropped \(channel.peerIdentity) before its join: \(error)")
            channel.close()
            return
        }
        guard join.role == "server" || join.role == "client" else {
            refuse([(channel, messages)], "role must be server or client, not '\(join.role)'")
            return
        }
        cond.lock()
        guard let partner = waiting.removeValue(forKey: join.session) else {
            // First of the pair: wait to be claimed.
            let me = Waiting(join: join, channel: channel, messages: messages)
            waiting[join.session] = me
            let deadline = Date(timeIntervalSinceNow: c.pairingTimeout.seconds)
            while !me.claimed && cond.wait(until: deadline) {}
            let claimed = me.claimed
            if !claimed { waiting[join.session] = nil }
            cond.unlock()
            if !claimed {
                refuse([(channel, messages)], "the other party of session \(join.session.prefix(8)) did not join within \(c.pairingTimeout)")
            }
            return
        }
        partner.claimed = true
        cond.broadcast()
        cond.unlock()
        let (server, client) = join.role == "server" ? ((channel, messages, join), (partner.channel, partner.messages, partner.join))
                                                      : ((partner.channel, partner.messages, partner.join), (channel, messages, join))
        let both = [(server.0, server.1), (client.0, client.1)]
        guard server.2.role == "server", client.2.role == "client" else {
            return refuse(both, "both connections of session \(join.session.prefix(8)) claim the role \(join.role)")
        }
        guard server.2.program == client.2.program, server.2.parameters == client.2.parameters else {
            return refuse(both, "the server and the client describe different programs for session \(join.session.prefix(8))")
        }
        guard server.2.clientKey == client.0.peerIdentity.key.base64EncodedString() else {
            return refuse(both, "session \(join.session.prefix(8)) belongs to another client key than \(client.0.peerIdentity)")
        }
        let plan: SessionPlan
        do { plan = try SessionPlan.decode(name: server.2.program, parameters: server.2.parameters) } catch {
            return refuse(both, "\(error)")
        }
        cond.lock()
        let free = active < c.maxSessions
        if free { active += 1 }
        cond.unlock()
        guard free else { return refuse(both, "the dealer is busy (\(c.maxSessions) sessions)") }
        defer { cond.lock(); active -= 1; cond.unlock() }
        do {
            for (_, m) in both { try DeploymentProtocol.send(DealerReply(), on: m) }
            log("dealer: session \(join.session.prefix(8)): \(plan.queryCount) queries for client \(client.0.peerIdentity)")
            let started = ContinuousClock.now
            var options = SessionOptions(seeds: c.seeds)
            options.connectTimeout = c.pairingTimeout
            options.sessionTimeout = c.sessionTimeout
            try plan.deal(channels: [server.0, client.0], options: options)
            log("dealer: session \(join.session.prefix(8)) finished in \(String(format: "%.2f s", (ContinuousClock.now - started).seconds))")
        } catch {
            log("dealer: session \(join.session.prefix(8)) failed: \(error)")
            server.0.close(); client.0.close()
        }
    }

    private func refuse(_ links: [(SecureChannel, FramedConnection)], _ reason: String) {
        log("dealer: refused: \(reason)")
        for (ch, m) in links {
            try? DeploymentProtocol.send(DealerReply(error: reason), on: m)
            ch.close()
        }
    }
}
