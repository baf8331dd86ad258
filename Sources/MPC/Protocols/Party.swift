import Foundation

/// One party's additive share of a secret tensor over Z_2^64: `x = x0 + x1 (mod 2^64)`.
///
/// A share on its own is uniformly random and says nothing about `x`. Values are in fixed point with the
/// owning `Party`'s `fixedPoint.fracBits` unless a protocol says otherwise (raw products carry 2f bits).
public struct ArithmeticShare: Sendable, Equatable {
    /// This party's share.
    public var tensor: RingTensor
    public init(_ tensor: RingTensor) { self.tensor = tensor }
    /// Shape of the secret.
    public var shape: [Int] { tensor.shape }
}

/// A computing party (client = 0 or server = 1) in the two-party online phase.
///
/// Holds the link to the other party (`Communicator`: rounds and bytes), the dealer stream
/// (correlated randomness), a PRG shared with the peer (zero-communication input sharing) and a
/// private PRG. Every protocol method must be called by both parties in the same order with the same
/// shapes. Not thread-safe: one party, one thread.
public final class Party: @unchecked Sendable {
    /// Protocol version checked in the handshake.
    public static let protocolVersion: UInt8 = 1
    public let id: PartyID
    public let fixedPoint: FixedPoint
    /// Link to the peer; its counters are the online cost.
    public let peer: Communicator
    /// Correlated randomness from the dealer.
    public let dealer: DealerStream
    /// PRG whose seed both parties know (set in the handshake).
    var shared: PRG
    /// PRG only this party knows.
    var local: PRG

    /// Creates a party and runs the setup handshake with the peer (one message each way, not counted
    /// in the online rounds or bytes): both check version, roles and fixed point; party 0 sends the seed
    /// of the PRG shared by the two parties. Counters are reset afterwards.
    ///
    /// - Parameters:
    ///   - id: our role.
    ///   - peer: framed link to the other party (in-memory or TCP).
    ///   - dealer: our opened dealer stream.
    ///   - fixedPoint: encoding; both parties must agree.
    ///   - localSeed: seed of the private PRG (tests only; default: system CSPRNG).
    /// - Throws: `ProtocolError.handshake` on a version/role/encoding mismatch; `TransportError`.
    public init(id: PartyID, peer: FramedConnection, dealer: DealerStream, fixedPoint: FixedPoint = FixedPoint(),
                localSeed: PRGSeed = .random()) throws {
        precondition(dealer.party == id, "dealer stream of \(dealer.party) given to \(id)")
        self.id = id
        self.fixedPoint = fixedPoint
        self.peer = Communicator(party: id, connection: peer)
        self.dealer = dealer
        var local = PRG(seed: localSeed)
        let pairSeed = local.nextSeed()
        let hello: [UInt8] = Array("MPCH".utf8) + [Party.protocolVersion, UInt8(id.rawValue), UInt8(fixedPoint.fracBits),
                                                   UInt8(fixedPoint.ringBits)] + (id == .client ? pairSeed.bytes : [])
        try self.peer.sendSetup(hello)
        let theirs = try self.peer.receiveSetup()
        let expectedCount = 8 + (id == .client ? 0 : 16)
        guard theirs.count == expectedCount, Array(theirs[0..<4]) == Array("MPCH".utf8) else {
            throw ProtocolError.handshake("\(id): malformed hello from \(peer.peerName) (\(theirs.count) bytes)")
        }
        guard theirs[4] == Party.protocolVersion else {
            throw ProtocolError.handshake("\(id): peer speaks protocol version \(theirs[4]), we speak \(Party.protocolVersion)")
        }
        guard theirs[5] == UInt8(id.peer.rawValue) else {
            throw ProtocolError.handshake("\(id): peer claims role \(theirs[5]); both sides configured as the same party?")
        }
        guard theirs[6] == UInt8(fixedPoint.fracBits), theirs[7] == UInt8(fixedPoint.ringBits) else {
            throw ProtocolError.handshake("\(id): peer uses fracBits \(theirs[6]) on Z_2^\(theirs[7]), we use \(fixedPoint.fracBits) on Z_2^\(fixedPoint.ringBits)")
        }
        self.shared = PRG(seed: id == .client ? pairSeed : try PRGSeed(bytes: Array(theirs[8...])), stream: 1)
        self.local = local
        self.peer.resetCounters()
    }

    /// Online rounds so far.
    public var rounds: Int { peer.rounds }
}
