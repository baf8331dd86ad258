import Foundation
import MPC
import Router
import SecureInference
import TextData

/// The public description of a bundle: everything a client needs and may know (member names and
/// shapes, the router's public shape, ring parameters, the vocabulary, the bundle's content hash), and
/// nothing secret (no weight). `export` writes it next to the bundle as `NAME.public.json`; a `party`
/// client reads that file (or the bundle itself, loading only these parts).
///
/// Both sides build the session's program from it, so the handshake can compare what each expects.
public struct DeploymentManifest: Codable, Sendable, Equatable {
    /// Version of the deployment protocol (handshake messages and session flow).
    public static let currentProtocol = 1

    public var protocolVersion: Int
    /// SHA-256 content hash of the bundle (`export`'s `content_hash`).
    public var bundleHash: String
    public var models: [String]
    public var shapes: [SecureBertShape]
    public var router: SecureRouterShape?
    public var ringBits: Int
    public var fracBits: Int
    public var bestMember: String?
    public var vocab: [String]
    public var doLowerCase: Bool

    enum CodingKeys: String, CodingKey {
        case models, shapes, router, vocab
        case protocolVersion = "protocol_version", bundleHash = "bundle_hash", ringBits = "ring_bits", fracBits = "frac_bits"
        case bestMember = "best_member", doLowerCase = "do_lower_case"
    }

    /// The public part of the bundle at `path` (no weight is read).
    /// - Throws: `DeploymentError` when it is not an exported bundle (no content hash).
    public init(bundle path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw DeploymentError("no such bundle: \(path)") }
        let part = try PoolBundle.publicPart(path)
        guard let hash = part.contentHash else {
            throw DeploymentError("\(path) has no content hash; deployments need a bundle written by export")
        }
        guard Set(part.shapes.map(\.fracBits)).count == 1 else {
            throw DeploymentError("\(path): the members use different fractional bits (\(part.shapes.map(\.fracBits))); one session needs one fixed point")
        }
        protocolVersion = Self.currentProtocol
        bundleHash = hash
        models = part.names
        shapes = part.shapes
        router = part.router
        ringBits = 64
        fracBits = part.shapes[0].fracBits
        bestMember = part.bestMember
        vocab = part.vocab
        doLowerCase = part.doLowerCase
    }

    /// Reads a manifest file (`.json`) or derives it from a bundle (`.h5`).
    public static func load(_ path: String) throws -> DeploymentManifest {
        guard path.hasSuffix(".json") else { return try DeploymentManifest(bundle: path) }
        guard let data = FileManager.default.contents(atPath: path) else { throw DeploymentError("cannot read \(path)") }
        do { return try JSONDecoder().decode(DeploymentManifest.self, from: data) } catch {
            throw DeploymentError("\(path) is not a bundle's public description (write one with export): \(error)")
        }
    }

    /// Writes the manifest as JSON.
    public func write(to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        try enc.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The client's tokenizer.
    public func tokenizer() throws -> WordPieceTokenizer { try WordPieceTokenizer(tokens: vocab, doLowerCase: doLowerCase) }

    /// Token ids padded to public buckets, truncated to the pool's training length (`LengthBuckets.inputLimit`).
    public func encode(_ texts: [String]) throws -> (queries: QueryFile, buckets: [Int], truncated: Int) {
        LengthBuckets.encode(texts, tokenizer: try tokenizer(), maxPosition: LengthBuckets.inputLimit(shapes))
    }

    /// The routing modes this bundle supports: `reveal`/`oblivious` with a router, `model:NAME` always.
    /// - Returns: the session plan for `routing` and the queries' public buckets.
    /// - Throws: `DeploymentError` for an unknown mode or member.
    public func plan(routing: String, buckets: [Int]) throws -> SessionPlan {
        if routing.hasPrefix("model:") {
            let name = String(routing.dropFirst(6))
            guard let j = models.firstIndex(of: name) else {
                throw DeploymentError("the bundle has no model '\(name)'; it holds \(models.joined(separator: ", "))")
            }
            return .single(BertProgram(model: shapes[j], buckets: buckets), member: name)
        }
        guard let mode = RoutingMode(rawValue: routing) else {
            throw DeploymentError("routing must be reveal, oblivious or model:NAME, not '\(routing)'")
        }
        guard let router else { throw DeploymentError("the bundle has no router; use routing model:NAME") }
        let program = RoutedBertProgram(names: models, members: shapes, router: router, mode: mode, buckets: buckets)
        if let p = program.problem { throw DeploymentError("the bundle cannot route: \(p)") }
        return .routed(program)
    }
}

/// What one deployed session runs: one member for every query, or the routed pool.
public enum SessionPlan: Sendable {
    case single(BertProgram, member: String)
    case routed(RoutedBertProgram)

    /// The registered program name and its parameters as sorted-key JSON (what the dealer needs).
    public var program: (name: String, parameters: String) {
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        switch self {
        case .single(let p, _): return (BertProgram.name, String(decoding: try! enc.encode(p), as: UTF8.self))
        case .routed(let p): return (RoutedBertProgram.name, String(decoding: try! enc.encode(p), as: UTF8.self))
        }
    }

    /// Number of queries.
    public var queryCount: Int {
        switch self {
        case .single(let p, _): return p.buckets.count
        case .routed(let p): return p.buckets.count
        }
    }

    /// The plan a dealer reconstructs from a program name and parameters.
    /// - Throws: `DeploymentError` for an unknown program or unreadable parameters.
    public static func decode(name: String, parameters: String) throws -> SessionPlan {
        let data = Data(parameters.utf8)
        do {
            switch name {
            case BertProgram.name: return .single(try JSONDecoder().decode(BertProgram.self, from: data), member: "")
            case RoutedBertProgram.name: return .routed(try JSONDecoder().decode(RoutedBertProgram.self, from: data))
            default: throw DeploymentError("unknown program '\(name)'")
            }
        } catch let e as DeploymentError { throw e } catch {
            throw DeploymentError("unreadable parameters of program '\(name)': \(error)")
        }
    }
}

/// A deployment problem a user can fix, or a peer's refusal; one sentence.
public struct DeploymentError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
