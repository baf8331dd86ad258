import Foundation

/// The protocol-layer view of the link to the other computing party: sends and receives whole
/// vectors of ring elements and counts rounds.
///
/// A *round* is one sequential communication step: `exchange` (both send, then both receive) counts one;
/// a one-way step counts one on both sides (`sendStep` on the sender, `receiveStep` on the receiver), so
/// both parties always agree on the count. Words travel as little-endian `UInt64`.
public final class Communicator: @unchecked Sendable {
    /// Framed link to the peer.
    public let connection: FramedConnection
    /// Who we are (for errors).
    public let party: PartyID
    /// Rounds since creation or `resetCounters`.
    public private(set) var rounds = 0

    public init(party: PartyID, connection: FramedConnection) {
        self.party = party
        self.connection = connection
    }

    /// Online payload bytes sent by this party.
    public var bytesSent: Int { connection.counters.payloadBytesSent }
    /// Online payload bytes received by this party.
    public var bytesReceived: Int { connection.counters.payloadBytesReceived }

    /// Zeroes rounds and byte counters (e.g. after setup, before the online phase).
    public func resetCounters() { rounds = 0; connection.resetCounters() }

    /// One round: send `words` to the peer and receive the peer's `words.count` words.
    public func exchange(_ words: [UInt64]) throws -> [UInt64] { try exchange(words, receiving: words.count) }

    /// One round in which the two directions carry different numbers of words: send `words`, receive
    /// exactly `count`.
    public func exchange(_ words: [UInt64], receiving count: Int) throws -> [UInt64] {
        rounds += 1
        try sendWords(words)
        return try receiveWords(count: count)
    }

    /// One round, sending side of a one-way step.
    public func sendStep(_ words: [UInt64]) throws {
        rounds += 1
        try sendWords(words)
    }

    /// One round, receiving side of a one-way step; the message must hold exactly `count` words.
    public func receiveStep(count: Int) throws -> [UInt64] {
        rounds += 1
        return try receiveWords(count: count)
    }

    /// Sends raw bytes outside the round count (setup only).
    func sendSetup(_ bytes: [UInt8]) throws { try connection.send(frame: bytes) }
    /// Receives raw bytes outside the round count (setup only).
    func receiveSetup() throws -> [UInt8] { try connection.receiveFrame() }

    private func sendWords(_ words: [UInt64]) throws {
        try words.withUnsafeBytes { try connection.send(frame: $0) }
    }

    private func receiveWords(count: Int) throws -> [UInt64] {
        let bytes = try connection.receiveFrame()
        guard bytes.count == count * 8 else {
            throw ProtocolError.unexpectedMessage(party: party.description, round: rounds, expectedBytes: count * 8, foundBytes: bytes.count)
        }
        return WordCoding.words(bytes)
    }
}

/// Little-endian packing of `UInt64` words (the wire format of every ring message).
enum WordCoding {
    static func words(_ bytes: [UInt8]) -> [UInt64] {
        precondition(bytes.count % 8 == 0)
        var out = [UInt64](repeating: 0, count: bytes.count / 8)
        out.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
        #if _endian(big)
        for i in out.indices { out[i] = UInt64(littleEndian: out[i]) }
        #endif
        return out
    }

    static func bytes(_ words: [UInt64]) -> [UInt8] {
        var out = [UInt8]()
        append(words, to: &out)
        return out
    }

    /// Appends the little-endian bytes of `words` to `out` (one copy).
    static func append(_ words: [UInt64], to out: inout [UInt8]) {
        #if _endian(big)
        let words = words.map { $0.littleEndian }
        #endif
        words.withUnsafeBytes { out.append(contentsOf: $0) }
    }
}
