import Foundation

/// Layer (a) of the transport: an ordered, reliable byte pipe to one peer.
///
/// Protocol code never names TCP; it talks to a `FramedConnection`, which sits on one of these.
/// Implementations: `InMemoryChannel` (tests, both ends in one process) and `TCPChannel` (processes/hosts).
/// A channel is used by one thread at a time for receiving; `send` may be called from that same thread.
public protocol ByteChannel: AnyObject, Sendable {
    /// Human-readable name of the peer, used in every error ("party 1 (server)", "dealer", "10.0.0.2:9000").
    var peerName: String { get }
    /// Queues all of `bytes` for delivery, in order. Does not wait for the peer to read them.
    /// - Throws: `TransportError.peerClosed` if the peer is gone.
    func send(_ bytes: UnsafeRawBufferPointer) throws
    /// Queues `bytes` as `send` does; a channel that queues its sends can keep the array itself instead of a
    /// copy (dealer records are tens of MB).
    func send(owned bytes: [UInt8]) throws
    /// Queues the little-endian bytes of `words`, as `send(owned:)` does with bytes.
    func send(owned words: [UInt64]) throws
    /// Fills all of `buffer` with the next bytes from the peer, waiting at most until `deadline`.
    /// - Throws: `TransportError.timeout` at the deadline; `.peerClosed` if the stream ends first.
    func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws
    /// Closes our end; the peer's pending and later receives fail with `.peerClosed` once data runs out.
    func close()
}

extension ByteChannel {
    /// Sends an array of bytes.
    public func send(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try send($0) } }

    /// Default: a copy, as `send`.
    public func send(owned bytes: [UInt8]) throws { try send(bytes) }

    /// Default: a copy of the words' little-endian bytes.
    public func send(owned words: [UInt64]) throws { try send(WordCoding.bytes(words)) }

    /// Receives exactly `count` bytes before `deadline`.
    public func receive(exactly count: Int, deadline: ContinuousClock.Instant) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try receive(into: $0, deadline: deadline) }
        return out
    }
}

extension ContinuousClock.Instant {
    /// Seconds from now until this instant (negative if past).
    var secondsFromNow: Double {
        let d = ContinuousClock.now.duration(to: self)
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}

extension Duration {
    /// This duration in seconds as a Double.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
