import Crypto
import Foundation

/// The keys and limits a process authenticates its connections with.
public struct ChannelSecurity: Sendable {
    /// This process's identity.
    public var identity: IdentityKey
    /// Whom it accepts.
    public var trusted: TrustStore
    /// Deadline of the whole handshake (a silent or slow stranger is dropped after it).
    public var handshakeTimeout: Duration = .seconds(10)

    public init(identity: IdentityKey, trusted: TrustStore) {
        self.identity = identity
        self.trusted = trusted
    }
}

/// An authenticated, encrypted `ByteChannel` over another one (TCP).
///
/// Handshake (both sides send without waiting, so neither order nor role can deadlock):
/// 1. `hello` = magic `SRCH`, version, role (initiator/responder), an ephemeral X25519 key and the
///    static Ed25519 key. A peer whose static key is not pinned in `TrustStore` gets a refusal frame
///    naming the reason, and the connection is closed.
/// 2. `auth` = Ed25519 signature, by the static key, of a role label and SHA-256 of both hellos
///    (initiator's first). It binds the ephemeral keys to the identities (a SIGMA-style exchange
///    without identity hiding); a replayed or forged hello fails here.
/// 3. Keys: HKDF-SHA256 over the X25519 shared secret, salted with the transcript hash, one AES-256-GCM
///    key per direction.
///
/// Records: a 4-byte little-endian ciphertext length (authenticated as associated data), then the
/// AES-GCM ciphertext and 16-byte tag; the nonce is a per-direction counter, so reordered, replayed or
/// dropped records fail authentication. Records hold at most `maxRecordBytes` of plaintext; a longer
/// length prefix is refused before anything is allocated.
///
/// Before authentication every frame is at most `maxHandshakeFrame` bytes, so a stranger's garbage,
/// huge length prefixes and silence cost a bounded buffer and at most `handshakeTimeout`.
public final class SecureChannel: ByteChannel, @unchecked Sendable {
    public static let version: UInt16 = 1
    static let magic = Array("SRCH".utf8)
    /// Largest plaintext in one record.
    public static let maxRecordBytes = 1 << 20
    static let maxHandshakeFrame = 1024

    private let inner: ByteChannel
    /// The authenticated peer, with the name from our trust store.
    public let peerIdentity: PublicIdentity
    public var peerName: String { inner.peerName }

    private let sendLock = NSLock()
    private let sendKey: SymmetricKey
    private var sendCounter: UInt64 = 0
    private let receiveKey: SymmetricKey
    private var receiveCounter: UInt64 = 0
    private var plain: [UInt8] = []
    private var plainOffset = 0

    private init(inner: ByteChannel, peer: PublicIdentity, sendKey: SymmetricKey, receiveKey: SymmetricKey) {
        self.inner = inner
        self.peerIdentity = peer
        self.sendKey = sendKey
        self.receiveKey = receiveKey
    }

    /// Runs the handshake over `inner` and returns the protected channel.
    /// - Parameters:
    ///   - initiator: true on the side that connected (roles only order the transcript).
    /// - Throws: `IdentityError` when the peer is not trusted, refuses us, or fails to prove its key;
    ///   `TransportError` (`.timeout` after `security.handshakeTimeout`, `.badFrame`, `.peerClosed`).
    ///   `inner` is closed on failure.
    public static func establish(over inner: ByteChannel, initiator: Bool, security: ChannelSecurity) throws -> SecureChannel {
        do {
            return try handshake(inner, initiator: initiator, security: security)
        } catch {
            inner.close()
            throw error
        }
    }

    private static func handshake(_ inner: ByteChannel, initiator: Bool, security: ChannelSecurity) throws -> SecureChannel {
        let deadline = ContinuousClock.now.advanced(by: security.handshakeTimeout)
        let ephemeral = Curve25519.KeyAgreement.PrivateKey()
        let ours = magic + withUnsafeBytes(of: version.littleEndian, Array.init) + [initiator ? 0 : 1]
            + Array(ephemeral.publicKey.rawRepresentation) + Array(security.identity.privateKey.publicKey.rawRepresentation)
        try sendHandshake(inner, kind: .hello, ours)

        let theirs = try receiveHandshake(inner, deadline: deadline, expecting: .hello)
        guard theirs.count == ours.count, Array(theirs.prefix(4)) == magic else {
            throw TransportError.badFrame(peer: inner.peerName, detail: "not a SecureRouter peer (unexpected handshake bytes)")
        }
        let theirVersion = UInt16(theirs[4]) | UInt16(theirs[5]) << 8
        guard theirVersion == version else {
            let reason = "channel protocol version \(version) required, the peer speaks \(theirVersion)"
            try? sendHandshake(inner, kind: .refusal, Array(reason.utf8))
            throw IdentityError("\(inner.peerName): \(reason)")
        }
        guard theirs[6] == (initiator ? 1 : 0) else {
            throw IdentityError("\(inner.peerName): both ends claim the same connection role; is a listener connecting to a listener?")
        }
        let theirEphemeral = Data(theirs[7..<39]), theirStatic = Data(theirs[39..<71])
        guard let peer = security.trusted.match(theirStatic) else {
            let fp = PublicIdentity(key: theirStatic, name: "?").fingerprint
            try? sendHandshake(inner, kind: .refusal, Array("your key \(fp) is not trusted here".utf8))
            throw IdentityError("\(inner.peerName) presented the key \(fp), which is not in the trusted keys; refused")
        }

        var h = SHA256()
        h.update(data: Array("securerouter-channel-v1".utf8))
        h.update(data: initiator ? ours : theirs)
        h.update(data: initiator ? theirs : ours)
        let transcript = Data(h.finalize())
        func signed(_ initiatorSide: Bool) -> Data { Data((initiatorSide ? "initiator" : "responder").utf8) + transcript }
        // A peer that refuses us may close before our auth arrives: its refusal, read next, is the reason.
        var sendFailure: Error?
        do { try sendHandshake(inner, kind: .auth, Array(try security.identity.signature(for: signed(initiator)))) } catch { sendFailure = error }
        let signature = try receiveHandshake(inner, deadline: deadline, expecting: .auth)
        if let sendFailure { throw sendFailure }
        guard peer.verifies(Data(signature), for: signed(!initiator)) else {
            throw IdentityError("\(inner.peerName) claimed the trusted key \(peer) but could not prove it holds it; refused")
        }

        let peerKey: Curve25519.KeyAgreement.PublicKey
        do { peerKey = try .init(rawRepresentation: theirEphemeral) } catch {
            throw TransportError.badFrame(peer: inner.peerName, detail: "invalid ephemeral key")
        }
        let shared = try ephemeral.sharedSecretFromKeyAgreement(with: peerKey)
        func key(_ label: String) -> SymmetricKey {
            shared.hkdfDerivedSymmetricKey(using: SHA256.self, salt: transcript, sharedInfo: Data(label.utf8), outputByteCount: 32)
        }
        let (i2r, r2i) = (key("initiator->responder"), key("responder->initiator"))
        return SecureChannel(inner: inner, peer: peer, sendKey: initiator ? i2r : r2i, receiveKey: initiator ? r2i : i2r)
    }

    enum HandshakeKind: UInt8 { case hello = 1, auth = 2, refusal = 0xFF }

    private static func sendHandshake(_ inner: ByteChannel, kind: HandshakeKind, _ body: [UInt8]) throws {
        let n = UInt32(body.count + 1)
        try inner.send(withUnsafeBytes(of: n.littleEndian, Array.init) + [kind.rawValue] + body)
    }

    private static func receiveHandshake(_ inner: ByteChannel, deadline: ContinuousClock.Instant, expecting: HandshakeKind) throws -> [UInt8] {
        let header = try inner.receive(exactly: 4, deadline: deadline)
        let n = Int(UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24)
        guard n >= 1, n <= maxHandshakeFrame else {
            throw TransportError.badFrame(peer: inner.peerName, detail: "handshake length prefix \(n) is outside 1...\(maxHandshakeFrame) (not a SecureRouter peer)")
        }
        let frame = try inner.receive(exactly: n, deadline: deadline)
        if frame[0] == HandshakeKind.refusal.rawValue {
            throw IdentityError("\(inner.peerName) refused the connection: \(String(decoding: frame.dropFirst().prefix(200), as: UTF8.self))")
        }
        guard frame[0] == expecting.rawValue else {
            throw TransportError.badFrame(peer: inner.peerName, detail: "unexpected handshake message \(frame[0]) (not a SecureRouter peer)")
        }
        return Array(frame.dropFirst())
    }

    // MARK: ByteChannel

    public func send(_ bytes: UnsafeRawBufferPointer) throws {
        sendLock.lock(); defer { sendLock.unlock() }
        var off = 0
        repeat {
            let n = min(Self.maxRecordBytes, bytes.count - off)
            let length = UInt32(n + 16).littleEndian
            let aad = withUnsafeBytes(of: length, Array.init)
            let box = try AES.GCM.seal(UnsafeRawBufferPointer(rebasing: bytes[off..<(off + n)]), using: sendKey,
                                       nonce: Self.nonce(sendCounter), authenticating: aad)
            sendCounter += 1
            var record = aad
            record.reserveCapacity(4 + n + 16)
            record.append(contentsOf: box.ciphertext)
            record.append(contentsOf: box.tag)
            try inner.send(record)
            off += n
        } while off < bytes.count
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws {
        var got = 0
        while got < buffer.count {
            if plainOffset == plain.count { try readRecord(deadline: deadline) }
            let n = min(buffer.count - got, plain.count - plainOffset)
            plain.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(rebasing: buffer[got..<(got + n)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: src[plainOffset..<(plainOffset + n)]))
            }
            got += n
            plainOffset += n
        }
    }

    private func readRecord(deadline: ContinuousClock.Instant) throws {
        let header = try inner.receive(exactly: 4, deadline: deadline)
        let n = Int(UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24)
        guard n >= 16, n <= Self.maxRecordBytes + 16 else {
            throw TransportError.badFrame(peer: peerName, detail: "record length prefix \(n) is outside 16...\(Self.maxRecordBytes + 16)")
        }
        let body = try inner.receive(exactly: n, deadline: deadline)
        do {
            let box = try AES.GCM.SealedBox(nonce: Self.nonce(receiveCounter), ciphertext: body[..<(n - 16)], tag: body[(n - 16)...])
            plain = Array(try AES.GCM.open(box, using: receiveKey, authenticating: header))
        } catch {
            throw TransportError.badFrame(peer: peerName, detail: "record \(receiveCounter) failed authentication (tampered, replayed or reordered)")
        }
        receiveCounter += 1
        plainOffset = 0
    }

    private static func nonce(_ counter: UInt64) -> AES.GCM.Nonce {
        try! AES.GCM.Nonce(data: [0, 0, 0, 0] + withUnsafeBytes(of: counter.littleEndian, Array.init))
    }

    public func close() { inner.close() }
}
