import Foundation
import MPC
import SecureInference

/// The messages of a deployed session, each one JSON frame on an authenticated channel, before the
/// secure computation starts (`Session.compute`/`Session.deal` take over the same channels).
///
/// Flow: client → server `ClientHello`; the server checks it against its bundle, joins the dealer
/// (`DealerJoin`, with the client's public key), and answers `ServerReply` with a fresh session id; the
/// client joins the dealer with that id; the dealer pairs the two joins, checks they describe the same
/// program and that the client is the one the server announced, answers `DealerReply` to both, and deals.
enum DeploymentProtocol {
    /// Largest message frame before the computation (a hello with thousands of buckets fits).
    static let maxMessage = 4 << 20
    /// Most queries one session may ask for (bounds what a client can make the server allocate).
    static let maxQueries = 100_000

    static func send<T: Encodable>(_ value: T, on c: FramedConnection) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        try c.send(frame: Array(try enc.encode(value)))
    }

    static func receive<T: Decodable>(_ type: T.Type, on c: FramedConnection, what: String) throws -> T {
        let frame = try c.receiveFrame()
        do { return try JSONDecoder().decode(T.self, from: Data(frame)) } catch {
            throw DeploymentError("\(c.peerName) sent an unreadable \(what) (\(frame.count) bytes); is it a SecureRouter process of the same version?")
        }
    }

    static func connection(_ ch: ByteChannel, timeout: Duration) -> FramedConnection {
        FramedConnection(channel: ch, maxFrameBytes: maxMessage, receiveTimeout: timeout)
    }
}

/// Client → server: what the client expects and what it asks for.
struct ClientHello: Codable, Sendable {
    var protocolVersion: Int
    var bundleHash: String
    var models: [String]
    var ringBits: Int
    var fracBits: Int
    /// `reveal`, `oblivious` or `model:NAME`.
    var routing: String
    /// The public length bucket of each query (all the server learns about the texts).
    var buckets: [Int]

    init(manifest m: DeploymentManifest, routing: String, buckets: [Int]) {
        (protocolVersion, bundleHash, models, ringBits, fracBits) = (m.protocolVersion, m.bundleHash, m.models, m.ringBits, m.fracBits)
        self.routing = routing
        self.buckets = buckets
    }

    enum CodingKeys: String, CodingKey {
        case models, routing, buckets
        case protocolVersion = "protocol_version", bundleHash = "bundle_hash", ringBits = "ring_bits", fracBits = "frac_bits"
    }

    /// The first difference from the server's manifest, as one sentence naming it; nil when they match.
    func mismatch(with m: DeploymentManifest) -> String? {
        if protocolVersion != m.protocolVersion {
            return "protocol version mismatch: the client speaks \(protocolVersion), the server \(m.protocolVersion)"
        }
        if bundleHash != m.bundleHash {
            return "bundle hash mismatch: the client expects \(bundleHash.prefix(16))…, the server serves \(m.bundleHash.prefix(16))…"
        }
        if models != m.models {
            return "model names mismatch: the client expects [\(models.joined(separator: ", "))], the server has [\(m.models.joined(separator: ", "))]"
        }
        if ringBits != m.ringBits || fracBits != m.fracBits {
            return "ring parameters mismatch: the client expects Z_2^\(ringBits) with \(fracBits) fractional bits, the server uses Z_2^\(m.ringBits) with \(m.fracBits)"
        }
        return nil
    }
}

/// Server → client: the session id and the program both will run, or the reason for refusing.
struct ServerReply: Codable, Sendable {
    var error: String?
    var session: String?
    var program: String?
    var parameters: String?
}

/// Party → dealer: which session this connection belongs to.
struct DealerJoin: Codable, Sendable {
    var session: String
    /// `server` or `client`.
    var role: String
    var program: String
    var parameters: String
    /// Server only: the public key (base64) of the client it admitted; the dealer admits only that key.
    var clientKey: String?

    enum CodingKeys: String, CodingKey {
        case session, role, program, parameters
        case clientKey = "client_key"
    }
}

/// Dealer → party: paired (nil error), or why not.
struct DealerReply: Codable, Sendable {
    var error: String?
}

/// One finished query of a deployed session, as the client reports it.
public struct DeployedOutcome: Codable, Sendable, Equatable {
    public var index: Int
    /// The label opened to the client (nil on the server).
    public var label: Int?
    /// The member that ran, when this party knows it (model:NAME, or reveal routing).
    public var model: String?
    /// This party's online cost of the query (router included).
    public var cost: CostSample
    /// The router's share of `cost` (routed plans).
    public var router: CostSample?
}

extension SessionPlan {
    /// This party's role of the session over established channels (closed at the end).
    /// - Parameter events: each finished query, as soon as it finishes (so a later failure keeps it).
    func compute(as id: PartyID, peer: ByteChannel, dealer: ByteChannel, inputs: [String: RingTensor],
                 options base: SessionOptions, events: @escaping @Sendable (DeployedOutcome) -> Void) throws -> [DeployedOutcome] {
        var options = base
        switch self {
        case .single(let p, let member):
            options.events = { line in
                if let o = try? JSONDecoder().decode(QueryOutcome.self, from: Data(line.utf8)) { events(Self.outcome(o, member: member)) }
            }
            let r = try Session.compute(p, as: id, peer: peer, dealer: dealer, inputs: inputs, options: options)
            return (r.output ?? []).map { Self.outcome($0, member: member) }
        case .routed(let p):
            options.events = { line in
                if let o = try? JSONDecoder().decode(RoutedOutcome.self, from: Data(line.utf8)) { events(Self.outcome(o, names: p.names)) }
            }
            let r = try Session.compute(p, as: id, peer: peer, dealer: dealer, inputs: inputs, options: options)
            return (r.output ?? []).map { Self.outcome($0, names: p.names) }
        }
    }

    /// The dealer's role over the two parties' channels.
    func deal(channels: [ByteChannel], options: SessionOptions) throws {
        switch self {
        case .single(let p, _): _ = try Session.deal(p, channels: channels, options: options)
        case .routed(let p): _ = try Session.deal(p, channels: channels, options: options)
        }
    }

    /// The server's private inputs, read from the bundle.
    func serverInputs(bundle: String) throws -> [String: RingTensor] {
        switch self {
        case .single(let p, let member): return try p.inputs(for: .server, file: "\(bundle)::models/\(member)")
        case .routed(let p): return try p.inputs(for: .server, file: bundle)
        }
    }

    /// The client's private inputs.
    func clientInputs(_ queries: QueryFile) throws -> [String: RingTensor] {
        switch self {
        case .single(let p, _): return try queries.ringInputs(buckets: p.buckets)
        case .routed(let p): return try queries.ringInputs(buckets: p.buckets)
        }
    }

    static func outcome(_ o: QueryOutcome, member: String) -> DeployedOutcome {
        DeployedOutcome(index: o.index, label: o.label, model: member, cost: o.cost, router: nil)
    }

    static func outcome(_ o: RoutedOutcome, names: [String]) -> DeployedOutcome {
        DeployedOutcome(index: o.query.index, label: o.query.label, model: o.model.map { names[$0] }, cost: o.query.cost, router: o.router)
    }
}

/// Resident memory of this process, from `/proc/self/status` (nil where unavailable).
public func residentMegabytes() -> Double? {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
    return kb / 1024
}
