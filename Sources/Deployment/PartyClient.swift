import Foundation
import MPC
import SecureInference

/// The data owner's side (party 0): tokenizes its texts locally, asks the server for a session, and
/// runs it with the dealer. Only public length buckets leave this process in the clear; the texts are
/// secret-shared, and only the labels are opened, to this process.
public struct PartyClient: Sendable {
    public var manifest: DeploymentManifest
    public var server: Endpoint
    public var dealer: Endpoint
    public var security: ChannelSecurity
    /// `reveal`, `oblivious` or `model:NAME`.
    public var routing: String
    public var receiveTimeout: Duration = .seconds(60)
    public var network: NetworkProfile = .none
    /// PRG seeds (`.insecureTest` only in tests).
    public var seeds: SessionSeeds = .systemRandom

    public init(manifest: DeploymentManifest, server: Endpoint, dealer: Endpoint, security: ChannelSecurity, routing: String) {
        (self.manifest, self.server, self.dealer, self.security, self.routing) = (manifest, server, dealer, security, routing)
    }

    /// What a session returned: the finished queries (all, or those before a failure) and the failure.
    public struct Result: Sendable {
        public var outcomes: [DeployedOutcome]
        public var failure: String?
        public var session: String?
    }

    /// Runs one session of `queries` (padded to `buckets`).
    /// - Parameter progress: each finished query as it finishes.
    /// - Throws: `DeploymentError` or `TransportError`/`IdentityError` when no session could start (the
    ///   server or dealer refused, a key is not trusted, a peer is unreachable); failures after the
    ///   start are returned in `Result.failure` with the queries finished so far.
    public func run(_ queries: QueryFile, buckets: [Int], progress: @escaping @Sendable (DeployedOutcome) -> Void = { _ in }) throws -> Result {
        let plan = try manifest.plan(routing: routing, buckets: buckets)
        let inputs = try plan.clientInputs(queries)
        let deadline = ContinuousClock.now.advanced(by: security.handshakeTimeout)
        let serverLink = try SecureChannel.establish(
            over: try TCPChannel.connect(host: server.host, port: server.port, peerName: "server \(server)", deadline: deadline),
            initiator: true, security: security)
        let toServer = DeploymentProtocol.connection(serverLink, timeout: receiveTimeout)
        try DeploymentProtocol.send(ClientHello(manifest: manifest, routing: routing, buckets: buckets), on: toServer)
        let reply = try DeploymentProtocol.receive(ServerReply.self, on: toServer, what: "server reply")
        if let e = reply.error { serverLink.close(); throw DeploymentError("the server refused the session: \(e)") }
        let (name, parameters) = plan.program
        guard let session = reply.session, reply.program == name, reply.parameters == parameters else {
            serverLink.close()
            throw DeploymentError("the server proposed another program than the one this client builds from its bundle description; are both on the same version?")
        }
        let dealerLink: SecureChannel
        do {
            dealerLink = try SecureChannel.establish(
                over: try TCPChannel.connect(host: dealer.host, port: dealer.port, peerName: "dealer \(dealer)",
                                             deadline: .now.advanced(by: security.handshakeTimeout)),
                initiator: true, security: security)
        } catch {
            serverLink.close()
            throw error
        }
        let toDealer = DeploymentProtocol.connection(dealerLink, timeout: receiveTimeout)
        do {
            try DeploymentProtocol.send(DealerJoin(session: session, role: "client", program: name, parameters: parameters), on: toDealer)
            let paired = try DeploymentProtocol.receive(DealerReply.self, on: toDealer, what: "dealer reply")
            if let e = paired.error { throw DeploymentError("the dealer refused the session: \(e)") }
        } catch {
            serverLink.close(); dealerLink.close()
            throw error
        }
        var options = SessionOptions(network: network, seeds: seeds)
        options.receiveTimeout = receiveTimeout
        options.preprocess = true
        let collected = Collected()
        do {
            let outcomes = try plan.compute(as: .client, peer: serverLink, dealer: dealerLink, inputs: inputs, options: options) { o in
                collected.append(o)
                progress(o)
            }
            return Result(outcomes: outcomes, failure: nil, session: session)
        } catch {
            let failure = Self.rootCause(of: error, dealer: dealerLink)
            serverLink.close(); dealerLink.close()
            return Result(outcomes: collected.all, failure: failure, session: session)
        }
    }
}

extension PartyClient {
    /// When the server hung up, the reason may be a dead dealer (the server stops its side when it loses
    /// the dealer): say so when our own dealer link has ended too.
    static func rootCause(of error: Error, dealer: ByteChannel) -> String {
        guard case .peerClosed(let peer, _)? = error as? TransportError, !peer.hasPrefix("dealer") else { return "\(error)" }
        // Drain what the dealer sent ahead (up to 2 s): its link ends in end-of-stream if it is dead.
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        let deadline = ContinuousClock.now.advanced(by: .seconds(2))
        while ContinuousClock.now < deadline {
            do {
                try chunk.withUnsafeMutableBytes { try dealer.receive(into: $0, deadline: deadline) }
            } catch TransportError.peerClosed(_, _) {
                return "the dealer closed the connection mid-session, and the server stopped its side (\(error))"
            } catch {
                break
            }
        }
        return "\(error)"
    }
}

/// Outcomes gathered from the protocol thread's events.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [DeployedOutcome] = []
    func append(_ o: DeployedOutcome) { lock.lock(); items.append(o); lock.unlock() }
    var all: [DeployedOutcome] { lock.lock(); defer { lock.unlock() }; return items }
}
