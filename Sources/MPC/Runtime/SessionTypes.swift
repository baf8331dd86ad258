import Crypto
import Foundation

/// Failures of a session (setup, inputs, worker processes), with the role that failed.
public enum SessionError: Error, Equatable, CustomStringConvertible {
    /// A party lacks a private input the program asks for, or has it with the wrong shape.
    case missingInput(party: String, name: String, detail: String)
    /// A `host:port` string could not be parsed.
    case badAddress(String)
    /// Setup found a peer running another program, a duplicate role, or a malformed hello.
    case handshake(String)
    /// A role's run failed; `message` is its error.
    case roleFailed(role: String, message: String)
    /// No registered program has this name.
    case unknownProgram(name: String, known: [String])
    /// A worker process failed or misbehaved (launcher side).
    case worker(role: String, detail: String)

    public var description: String {
        switch self {
        case let .missingInput(p, n, d): return "\(p): private input '\(n)': \(d)"
        case let .badAddress(a): return "bad address '\(a)': expected HOST:PORT, e.g. 127.0.0.1:9000"
        case let .handshake(d): return "session handshake failed: \(d)"
        case let .roleFailed(r, m): return "\(r): \(m)"
        case let .unknownProgram(n, k): return "unknown program '\(n)'; known programs: \(k.joined(separator: ", "))"
        case let .worker(r, d): return "mpc-worker \(r): \(d)"
        }
    }
}

/// The three roles of a session.
public enum SessionRole: String, Sendable, CaseIterable, Codable {
    case client, server, dealer

    /// The computing party, nil for the dealer.
    public var party: PartyID? {
        switch self {
        case .client: return .client
        case .server: return .server
        case .dealer: return nil
        }
    }
    /// Name used in errors ("party 0 (client)", "dealer").
    public var displayName: String { party?.description ?? "dealer" }
}

/// A `host:port` address (IPv4 literal or host name; port 0 = any free port when listening).
public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public init(host: String, port: Int) { self.host = host; self.port = port }
    /// Parses `HOST:PORT`.
    /// - Throws: `SessionError.badAddress`.
    public init(parsing s: String) throws {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (0...65535).contains(port),
              colon > s.startIndex
        else { throw SessionError.badAddress(s) }
        self.init(host: String(s[..<colon]), port: port)
    }
    public var description: String { "\(host):\(port)" }
}

/// Where the session's PRG seeds come from.
public enum SessionSeeds: Sendable, Equatable {
    /// Fresh seeds from the system CSPRNG (`PRGSeed.random()`): the only production choice.
    case systemRandom
    /// Deterministic seeds derived from one value, for tests that compare runs bit for bit. INSECURE.
    case insecureTest(UInt64)

    /// The dealer's seeds shared with party 0 and party 1.
    func dealerSeeds() -> (PRGSeed, PRGSeed) {
        switch self {
        case .systemRandom: return (.random(), .random())
        case let .insecureTest(s): return (PRGSeed(testValue: s &* 3 &+ 1), PRGSeed(testValue: s &* 3 &+ 2))
        }
    }
    /// A party's private PRG seed (party 0 derives the parties' shared seed from it).
    func localSeed(_ p: PartyID) -> PRGSeed {
        switch self {
        case .systemRandom: return .random()
        case let .insecureTest(s): return PRGSeed(testValue: s &* 7 &+ UInt64(p.rawValue))
        }
    }
}

/// Settings every role of a session must agree on (except the seeds, which only matter to their holder).
public struct SessionOptions: Sendable {
    /// Emulated link between the parties (DESIGN §5); the dealer links are not emulated.
    public var network: NetworkProfile = .none
    /// Deadline of every receive during the protocol.
    public var receiveTimeout: Duration = .seconds(60)
    /// Deadline for connecting, accepting and the hellos.
    public var connectTimeout: Duration = .seconds(30)
    /// Deadline for the dealer's wait for both parties to finish.
    public var sessionTimeout: Duration = .seconds(3600)
    public var seeds: SessionSeeds = .systemRandom
    /// Read the dealer's whole offline phase before starting the online clock (the dealer runs ahead unless
    /// `pacedDealer`);
    /// otherwise records are read as the online phase needs them (less memory, dealer work overlaps).
    public var preprocess = false
    /// With `preprocess`: the dealer deals each unit (query) only when both parties have finished the
    /// previous one, so that offline work never runs during an online clock. For dealer and parties
    /// sharing one machine (loopback evaluation), where a dealer running ahead would take the parties'
    /// cores and memory bandwidth; a deployment with its own dealer host lets it run ahead instead.
    /// All three roles must agree.
    public var pacedDealer = false
    /// Whether pacing is in effect: `pacedDealer` applies only with `preprocess` (parties then ask for each
    /// unit before reading it).
    public var pacesDealer: Bool { preprocess && pacedDealer }
    /// Receives the lines a program `emit`s on this party (per-query results as they finish).
    public var events: (@Sendable (String) -> Void)?
    /// Authenticate and encrypt every TCP link (`SecureChannel`); nil: plain TCP (loopback runs).
    public var security: ChannelSecurity?
    public init(network: NetworkProfile = .none, seeds: SessionSeeds = .systemRandom) {
        self.network = network
        self.seeds = seeds
    }
}

/// What one role reports after a session (the worker's JSON result line).
///
/// JSON: `{"role", "seconds", "online_bytes_sent", "online_bytes_received", "rounds", "offline_bytes", "output"}`.
/// Parties: `seconds` = wall time of the online run, `offline_bytes` = bytes received from the dealer.
/// Dealer: `seconds` = time to deal, `offline_bytes` = bytes sent to both parties, online fields 0.
public struct SessionReport<Output: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var role: SessionRole
    public var seconds: Double
    public var onlineBytesSent: Int
    public var onlineBytesReceived: Int
    public var rounds: Int
    public var offlineBytes: Int
    /// The program's result on this role (nil on the dealer).
    public var output: Output?
    /// Parties: the per-session setup before the online phase (server weights), if the program has one.
    public var setup: CostSample?
    /// Parties with `preprocess`: seconds spent receiving the whole offline phase before going online.
    public var offlineSeconds: Double?
    /// Online cost (parties) or offline bytes (dealer) per program section.
    public var profile: [String: CostSample]?

    enum CodingKeys: String, CodingKey {
        case role, seconds, rounds, output, setup, profile
        case offlineSeconds = "offline_seconds"
        case onlineBytesSent = "online_bytes_sent", onlineBytesReceived = "online_bytes_received"
        case offlineBytes = "offline_bytes"
    }

    /// The counters only (everything but seconds), for exact comparisons between runs.
    public var counters: [Int] { [onlineBytesSent, onlineBytesReceived, rounds, offlineBytes] }
}

/// The reports of the three roles of one session.
public struct SessionResult<Output: Codable & Sendable & Equatable>: Sendable {
    public var client: SessionReport<Output>
    public var server: SessionReport<Output>
    public var dealer: SessionReport<Output>
}

/// Setup frames outside the counted traffic: "MPCR", kind (1 hello / 2 done), role, two zero bytes, then the
/// 32-byte SHA-256 of the program's name and JSON value (so processes running different programs
/// fail at setup, not mid-stream).
enum SessionHello {
    static let magic = Array("MPCR".utf8)
    static let maxFrame = 256

    static func digest<P: SecureProgram>(_ program: P) throws -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        let data = Data(P.name.utf8) + Data([0]) + (try enc.encode(program))
        return Array(SHA256.hash(data: data))
    }

    static func frame(kind: UInt8, role: SessionRole, digest: [UInt8]) -> [UInt8] {
        magic + [kind, UInt8(SessionRole.allCases.firstIndex(of: role)!), 0, 0] + digest
    }

    /// Frame kinds: a party's or the dealer's hello, a party's done, a party's request for the next unit
    /// (paced dealer).
    static let hello: UInt8 = 1, done: UInt8 = 2, nextUnit: UInt8 = 3

    /// Parses a setup frame of `kind` and returns the sender's role.
    static func parse(_ f: [UInt8], kind: UInt8, digest: [UInt8], from peer: String) throws -> SessionRole {
        try parse(f, kinds: [kind], digest: digest, from: peer).role
    }

    /// Parses a setup frame of one of `kinds` and returns its kind and the sender's role.
    static func parse(_ f: [UInt8], kinds: Set<UInt8>, digest: [UInt8], from peer: String) throws -> (kind: UInt8, role: SessionRole) {
        guard f.count == 8 + 32, Array(f[0..<4]) == magic, kinds.contains(f[4]), Int(f[5]) < SessionRole.allCases.count else {
            let name = kinds == [hello] ? "hello" : "done"
            throw SessionError.handshake("malformed \(name) frame (\(f.count) bytes) from \(peer); is it a SecureRouter MPC process of the same version?")
        }
        guard Array(f[8...]) == digest else {
            throw SessionError.handshake("\(peer) runs a different program or parameters; start all three roles with the same --program and --params")
        }
        return (f[4], SessionRole.allCases[Int(f[5])])
    }
}

/// A `ByteChannel` that forwards to `base` under another peer name (the dealer learns who connected
/// only from the hello), rewriting the name in transport errors.
final class RenamedChannel: ByteChannel, @unchecked Sendable {
    let base: ByteChannel
    let peerName: String
    init(_ base: ByteChannel, peerName: String) { self.base = base; self.peerName = peerName }

    func send(_ bytes: UnsafeRawBufferPointer) throws { try rename { try base.send(bytes) } }
    func send(owned bytes: [UInt8]) throws { try rename { try base.send(owned: bytes) } }
    func send(owned words: [UInt64]) throws { try rename { try base.send(owned: words) } }
    func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws {
        try rename { try base.receive(into: buffer, deadline: deadline) }
    }
    func close() { base.close() }

    private func rename(_ body: () throws -> Void) throws {
        do { try body() } catch let e as TransportError {
            switch e {
            case let .peerClosed(_, d): throw TransportError.peerClosed(peer: peerName, detail: d)
            case let .timeout(_, w): throw TransportError.timeout(peer: peerName, waitingFor: w)
            case let .connectionRefused(_, a): throw TransportError.connectionRefused(peer: peerName, address: a)
            case let .badFrame(_, d): throw TransportError.badFrame(peer: peerName, detail: d)
            case let .system(_, c, n): throw TransportError.system(peer: peerName, call: c, errno: n)
            }
        }
    }
}

extension SessionOptions {
    /// `channel` wrapped in an authenticated, encrypted `SecureChannel` when `security` is set.
    /// - Parameter initiator: true on the side that connected.
    public func protect(_ channel: ByteChannel, initiator: Bool) throws -> ByteChannel {
        guard let security else { return channel }
        return try SecureChannel.establish(over: channel, initiator: initiator, security: security)
    }
}
