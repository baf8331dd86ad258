import Foundation
import Testing
@testable import MPC

/// A channel that records what it sends and can corrupt one byte of it (a tap / an attacker on the wire).
final class WireTap: ByteChannel, @unchecked Sendable {
    let inner: ByteChannel
    private let lock = NSLock()
    private(set) var sent: [UInt8] = []
    /// Flip the byte at this offset of the outgoing stream (counted from the first byte ever sent).
    var corruptAt: Int?
    init(_ inner: ByteChannel) { self.inner = inner }
    var peerName: String { inner.peerName }
    func send(_ bytes: UnsafeRawBufferPointer) throws {
        var b = Array(bytes)
        lock.lock()
        let start = sent.count
        if let c = corruptAt, c >= start, c < start + b.count { b[c - start] ^= 0x01 }
        sent += b
        lock.unlock()
        try inner.send(b)
    }
    func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws {
        try inner.receive(into: buffer, deadline: deadline)
    }
    func close() { inner.close() }
}

/// Issue 7: the authenticated, encrypted channel under every link of a deployment.
@Suite struct SecureChannelTests {
    let alice = IdentityKey(generatingNamed: "alice"), server = IdentityKey(generatingNamed: "server")

    /// Handshakes both ends concurrently over an in-memory pair (the initiator's end is tapped).
    func connect(responderTrusts: [PublicIdentity]? = nil) -> (Result<SecureChannel, Error>, Result<SecureChannel, Error>, WireTap) {
        let pair = InMemoryChannel.pair("alice", "server")
        return connectOver(pair: pair, tap: WireTap(pair.a), responderTrusts: responderTrusts)
    }

    @Test func authenticatesAndCarriesDataBothWays() throws {
        let (i, r, _) = connect()
        let (a, b) = (try i.get(), try r.get())
        #expect(a.peerIdentity == server.publicIdentity && b.peerIdentity.name == "alice")
        // 3 MiB + 5 bytes: several records, one partial.
        let big = (0..<(3 << 20) + 5).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try a.send(big)
        #expect(try b.receive(exactly: big.count, deadline: .now.advanced(by: .seconds(10))) == big)
        try b.send([1, 2, 3])
        #expect(try a.receive(exactly: 3, deadline: .now.advanced(by: .seconds(5))) == [1, 2, 3])
    }

    @Test func untrustedKeyIsRefusedOnBothSides() throws {
        let stranger = IdentityKey(generatingNamed: "stranger")
        let (i, r, _) = connect(responderTrusts: [stranger.publicIdentity])
        #expect(throws: IdentityError.self) { try r.get() }
        if case .failure(let e) = r { #expect("\(e)".contains("not in the trusted keys"), "\(e)") }
        guard case .failure(let e) = i else { Issue.record("the initiator was not told it was refused"); return }
        print("initiator: \(e)")
        #expect("\(e)".contains("refused the connection") && "\(e)".contains("not trusted"), "\(e)")
    }

    /// What a party sends looks random: no window of the plaintext appears on the wire, and the byte
    /// histogram of the ciphertext is flat (chi-square far below what structured data gives).
    @Test func wireCarriesNoPlaintext() throws {
        let (i, r, tap) = connect()
        let (a, b) = (try i.get(), try r.get())
        let handshakeBytes = tap.sent.count
        let plaintext = Array(repeating: Array("share 0000000042 of the query ".utf8), count: 4096).flatMap { $0 }
        try a.send(plaintext)
        _ = try b.receive(exactly: plaintext.count, deadline: .now.advanced(by: .seconds(10)))
        let wire = Array(tap.sent[handshakeBytes...])
        #expect(wire.count == plaintext.count + 4 + 16)
        let needle = Array(plaintext[0..<16])
        #expect(!(0...(wire.count - 16)).contains { Array(wire[$0..<($0 + 16)]) == needle })
        var counts = [Double](repeating: 0, count: 256)
        for byte in wire { counts[Int(byte)] += 1 }
        let expected = Double(wire.count) / 256
        let chi2 = counts.reduce(0) { $0 + ($1 - expected) * ($1 - expected) / expected }
        #expect(chi2 < 400, "chi-square \(chi2) over 255 degrees of freedom: the wire is not uniform")
    }

    @Test func tamperedRecordIsRejected() throws {
        let pair = InMemoryChannel.pair("alice", "server")
        let tap = WireTap(pair.a)
        let (i, r, _) = connectOver(pair: pair, tap: tap)
        let (a, b) = (try i.get(), try r.get())
        tap.corruptAt = tap.sent.count + 4 + 10   // a ciphertext byte of the next record
        try a.send(Array(repeating: 7, count: 100))
        #expect {
            _ = try b.receive(exactly: 100, deadline: .now.advanced(by: .seconds(5)))
        } throws: { e in "\(e)".contains("failed authentication") }
    }

    @Test func hugeRecordLengthIsRejectedBeforeAllocating() throws {
        let pair = InMemoryChannel.pair("alice", "server")
        let tap = WireTap(pair.a)
        let (i, r, _) = connectOver(pair: pair, tap: tap)
        _ = try i.get()
        let b = try r.get()
        try tap.inner.send([0xF0, 0xFF, 0xFF, 0xFF])
        #expect {
            _ = try b.receive(exactly: 1, deadline: .now.advanced(by: .seconds(5)))
        } throws: { e in "\(e)".contains("record length prefix") }
    }

    @Test func garbageAndSilenceBeforeTheHandshakeEndInBoundedErrors() throws {
        var security = ChannelSecurity(identity: server, trusted: TrustStore([alice.publicIdentity]))
        security.handshakeTimeout = .milliseconds(300)
        // Huge length prefix.
        let p1 = InMemoryChannel.pair()
        try p1.a.send([0xFF, 0xFF, 0xFF, 0x7F] + Array(repeating: 0, count: 64))
        #expect { try SecureChannel.establish(over: p1.b, initiator: false, security: security) } throws: { "\($0)".contains("handshake length prefix") }
        // An HTTP request.
        let p2 = InMemoryChannel.pair()
        try p2.a.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        #expect { try SecureChannel.establish(over: p2.b, initiator: false, security: security) } throws: { "\($0)".contains("handshake length prefix") }
        // A truncated hello, then silence: the deadline.
        let p3 = InMemoryChannel.pair()
        try p3.a.send([72, 0, 0, 0, 1] + Array("SRCH".utf8))
        let t = ContinuousClock.now
        #expect { try SecureChannel.establish(over: p3.b, initiator: false, security: security) } throws: { "\($0)".contains("timed out") }
        #expect(ContinuousClock.now - t < .seconds(2))
    }

    func connectOver(pair: (a: InMemoryChannel, b: InMemoryChannel), tap: WireTap,
                     responderTrusts: [PublicIdentity]? = nil) -> (Result<SecureChannel, Error>, Result<SecureChannel, Error>, WireTap) {
        var b = ChannelSecurity(identity: server, trusted: TrustStore(responderTrusts ?? [alice.publicIdentity]))
        b.handshakeTimeout = .seconds(5)
        nonisolated(unsafe) var responder: Result<SecureChannel, Error>!
        let done = DispatchSemaphore(value: 0)
        let (bSecurity, bChannel) = (b, pair.b)
        Thread.detachNewThread {
            responder = Result { try SecureChannel.establish(over: bChannel, initiator: false, security: bSecurity) }
            done.signal()
        }
        let a = ChannelSecurity(identity: alice, trusted: TrustStore([server.publicIdentity]))
        let initiator = Result { try SecureChannel.establish(over: tap, initiator: true, security: a) }
        done.wait()
        return (initiator, responder, tap)
    }

    @Test func keyFilesRoundTripAndAreNeverOverwritten() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("keys-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (k, p) = (dir.appendingPathComponent("a.key").path, dir.appendingPathComponent("a.pub").path)
        try alice.write(privateTo: k, publicTo: p)
        let mode = try FileManager.default.attributesOfItem(atPath: k)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try IdentityKey.load(k).publicIdentity == alice.publicIdentity)
        #expect(try TrustStore(files: [p]).match(alice.publicIdentity.key)?.name == "alice")
        #expect(throws: IdentityError.self) { try alice.write(privateTo: k, publicTo: p + "2") }
        #expect(throws: IdentityError.self) { try TrustStore(files: [k]) }   // a private key is not a trust file
        #expect(throws: IdentityError.self) { try IdentityKey.load(p) }      // nor a public key an identity
    }
}
