import Crypto
import Foundation

/// A process's long-term identity: an Ed25519 signing key (swift-crypto). The matching public key is
/// what the other hosts pin (`TrustStore`); the authenticated channel (`SecureChannel`) proves
/// possession of the private key on every connection.
///
/// Files (`securerouter keygen`): `NAME.key` holds `securerouter-ed25519-private <base64> <name>` and is
/// created with mode 0600; `NAME.pub` holds `securerouter-ed25519 <base64> <name>`, one line, safe to copy.
public struct IdentityKey: Sendable {
    public let privateKey: Curve25519.Signing.PrivateKey
    /// Human-readable name carried in the public file (`alice`, `server`); used in logs and errors.
    public let name: String

    /// A fresh key from the system CSPRNG.
    public init(generatingNamed name: String) {
        self.privateKey = Curve25519.Signing.PrivateKey()
        self.name = name
    }

    /// The public half.
    public var publicIdentity: PublicIdentity {
        PublicIdentity(key: privateKey.publicKey.rawRepresentation, name: name)
    }

    static let privateTag = "securerouter-ed25519-private"

    /// Reads a private key file written by `write(privateTo:publicTo:)`.
    /// - Throws: `IdentityError` naming the file when it is missing, unreadable, or not a private key.
    public static func load(_ path: String) throws -> IdentityKey {
        let (tag, bytes, name) = try IdentityFile.parseLine(path: path)
        guard tag == privateTag else {
            throw IdentityError("\(path) is not a private key (it starts with '\(tag)'; pass the .key file written by keygen)")
        }
        do { return IdentityKey(privateKey: try Curve25519.Signing.PrivateKey(rawRepresentation: bytes), name: name) } catch {
            throw IdentityError("\(path): the private key is damaged (\(bytes.count) bytes, expected 32)")
        }
    }

    init(privateKey: Curve25519.Signing.PrivateKey, name: String) {
        self.privateKey = privateKey
        self.name = name
    }

    /// Writes the private key (mode 0600, refusing to overwrite) and the public key.
    /// - Throws: `IdentityError` if a file exists or cannot be written.
    public func write(privateTo keyPath: String, publicTo pubPath: String) throws {
        for p in [keyPath, pubPath] where FileManager.default.fileExists(atPath: p) {
            throw IdentityError("\(p) already exists; remove it or choose another name (keys are never overwritten)")
        }
        let line = "\(Self.privateTag) \(privateKey.rawRepresentation.base64EncodedString()) \(name)\n"
        guard FileManager.default.createFile(atPath: keyPath, contents: Data(line.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw IdentityError("cannot write \(keyPath)")
        }
        do { try (publicIdentity.line + "\n").write(toFile: pubPath, atomically: true, encoding: .utf8) } catch {
            throw IdentityError("cannot write \(pubPath): \(error.localizedDescription)")
        }
    }

    /// Signs `message` (Ed25519).
    func signature(for message: some DataProtocol) throws -> Data { try privateKey.signature(for: message) }
}

/// A pinned public key with its name.
public struct PublicIdentity: Sendable, Hashable, CustomStringConvertible {
    /// The 32-byte Ed25519 public key.
    public let key: Data
    public let name: String

    public init(key: Data, name: String) {
        self.key = key
        self.name = name
    }

    static let tag = "securerouter-ed25519"

    /// The one-line public file format.
    public var line: String { "\(Self.tag) \(key.base64EncodedString()) \(name)" }

    /// First 16 hex digits of SHA-256 of the key: short enough for logs, long enough to tell keys apart.
    public var fingerprint: String { SHA256.hash(data: key).prefix(8).map { String(format: "%02x", $0) }.joined() }

    public var description: String { "'\(name)' (\(fingerprint))" }

    /// Verifies an Ed25519 signature of `message` by this key.
    func verifies(_ signature: Data, for message: some DataProtocol) -> Bool {
        guard let k = try? Curve25519.Signing.PublicKey(rawRepresentation: key) else { return false }
        return k.isValidSignature(signature, for: message)
    }

    // Equality and hashing by key only: the name is a label, not part of the identity.
    public static func == (a: PublicIdentity, b: PublicIdentity) -> Bool { a.key == b.key }
    public func hash(into h: inout Hasher) { h.combine(key) }
}

/// The public keys a process accepts as peers (`--trust FILE`, repeatable; a file may hold several
/// `.pub` lines, e.g. every client's key concatenated).
public struct TrustStore: Sendable {
    public private(set) var identities: [PublicIdentity] = []

    public init(_ identities: [PublicIdentity] = []) { self.identities = identities }

    /// Reads every non-empty, non-`#` line of each file as a public key.
    /// - Throws: `IdentityError` naming the file and line.
    public init(files: [String]) throws {
        for f in files {
            let text: String
            do { text = try String(contentsOfFile: f, encoding: .utf8) } catch { throw IdentityError("cannot read the trusted key file \(f)") }
            for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line.hasPrefix("#") { continue }
                let (tag, bytes, name) = try IdentityFile.parse(line, where: "\(f) line \(i + 1)")
                guard tag == PublicIdentity.tag, bytes.count == 32 else {
                    throw IdentityError("\(f) line \(i + 1) is not a public key (expected '\(PublicIdentity.tag) <base64> <name>'; never pass a .key file here)")
                }
                identities.append(PublicIdentity(key: bytes, name: name))
            }
        }
    }

    /// The trusted identity with this key (with its name from the trust file), if any.
    public func match(_ key: Data) -> PublicIdentity? { identities.first { $0.key == key } }

    public var isEmpty: Bool { identities.isEmpty }
}

/// An identity problem the user can fix (bad file, untrusted key); one sentence.
public struct IdentityError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

enum IdentityFile {
    static func parseLine(path: String) throws -> (tag: String, bytes: Data, name: String) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw IdentityError("cannot read the key file \(path)") }
        guard let line = text.split(separator: "\n").first.map(String.init) else { throw IdentityError("\(path) is empty") }
        return try parse(line, where: path)
    }

    static func parse(_ line: String, where place: String) throws -> (tag: String, bytes: Data, name: String) {
        let parts = line.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count >= 2, let bytes = Data(base64Encoded: parts[1]) else {
            throw IdentityError("\(place) is not a securerouter key (expected '<tag> <base64> <name>')")
        }
        return (parts[0], bytes, parts.count > 2 ? parts[2] : "unnamed")
    }
}
