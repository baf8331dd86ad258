import Foundation

/// Byte and frame counters of one connection, as seen by one endpoint.
public struct TrafficCounters: Sendable, Equatable {
    /// Payload bytes sent (excluding the 8-byte length prefixes).
    public var payloadBytesSent = 0
    /// Payload bytes received.
    public var payloadBytesReceived = 0
    /// Frames sent.
    public var framesSent = 0
    /// Frames received.
    public var framesReceived = 0
    /// Bytes on the wire sent, prefixes included.
    public var wireBytesSent: Int { payloadBytesSent + 8 * framesSent }
    public init() {}
}

/// Layer (c) of the transport: length-prefixed frames over a `ByteChannel`, with byte counters and
/// network emulation.
///
/// Wire format: an 8-byte little-endian payload length, then the payload. A length above
/// `maxFrameBytes` is rejected as garbage (`TransportError.badFrame`) before anything is allocated.
/// Confined to one thread (the party's protocol thread); not safe for concurrent use.
public final class FramedConnection: @unchecked Sendable {
    /// The underlying byte pipe.
    public let channel: ByteChannel
    /// Largest payload accepted from the peer.
    public let maxFrameBytes: Int
    /// Emulated link applied to our sends.
    public var network: NetworkProfile
    /// Time to wait for each receive.
    public var receiveTimeout: Duration
    /// Counters since creation (or the last `resetCounters`).
    public private(set) var counters = TrafficCounters()
    /// When non-nil, every received payload is appended here (test hook for checking a party's view).
    public var receivedLog: [[UInt8]]?
    /// Instant at which our emulated outgoing link is free again.
    private var linkFreeAt = ContinuousClock.now

    /// - Parameters:
    ///   - channel: the byte pipe to the peer.
    ///   - network: emulated link for our sends (`.none` by default).
    ///   - maxFrameBytes: largest acceptable frame (default 1 GiB).
    ///   - receiveTimeout: deadline for each receive (default 60 s).
    public init(channel: ByteChannel, network: NetworkProfile = .none, maxFrameBytes: Int = 1 << 30,
                receiveTimeout: Duration = .seconds(60)) {
        self.channel = channel
        self.network = network
        self.maxFrameBytes = maxFrameBytes
        self.receiveTimeout = receiveTimeout
    }

    /// Name of the peer, for errors.
    public var peerName: String { channel.peerName }

    public func resetCounters() { counters = TrafficCounters() }

    /// Sends one frame, after the emulated network delay.
    public func send(frame payload: UnsafeRawBufferPointer) throws {
        if payload.count >= Self.largeFrameBytes { return try sendLarge(count: payload.count) { try channel.send(payload) } }
        if !network.isNone { emulateDelay(bytes: payload.count + 8) }
        var header = UInt64(payload.count).littleEndian
        var framed = [UInt8](repeating: 0, count: 8 + payload.count)
        framed.withUnsafeMutableBytes { dst in
            withUnsafeBytes(of: &header) { dst.copyMemory(from: $0) }
            if payload.count > 0 { UnsafeMutableRawBufferPointer(rebasing: dst[8...]).copyMemory(from: payload) }
        }
        try framed.withUnsafeBytes { try channel.send($0) }
        counters.payloadBytesSent += payload.count
        counters.framesSent += 1
    }

    /// Sends one frame of bytes (a large one without copying the array: `ByteChannel.send(owned:)`).
    public func send(frame payload: [UInt8]) throws {
        if payload.count >= Self.largeFrameBytes { return try sendLarge(count: payload.count) { try channel.send(owned: payload) } }
        try payload.withUnsafeBytes { try send(frame: $0) }
    }

    /// Sends one frame made of `header` followed by the little-endian bytes of each of `words` (a dealer
    /// record and its payload): a large one without copying the words (`ByteChannel.send(owned:)`).
    public func send(frame header: [UInt8], words: [[UInt64]]) throws {
        let count = header.count + 8 * words.reduce(0) { $0 + $1.count }
        guard count >= Self.largeFrameBytes else {
            var frame = header
            frame.reserveCapacity(count)
            for w in words { WordCoding.append(w, to: &frame) }
            return try send(frame: frame)
        }
        try sendLarge(count: count) {
            try channel.send(owned: header)
            for w in words where !w.isEmpty { try channel.send(owned: w) }
        }
    }

    /// Frames at least this long (dealer records) go as two writes, header then payload, instead of a copy.
    static let largeFrameBytes = 1 << 20

    /// A large frame: the delay, the length prefix, then `payload()` sends the `count` bytes.
    private func sendLarge(count: Int, _ payload: () throws -> Void) throws {
        if !network.isNone { emulateDelay(bytes: count + 8) }
        var header = UInt64(count).littleEndian
        try withUnsafeBytes(of: &header) { try channel.send($0) }
        try payload()
        counters.payloadBytesSent += count
        counters.framesSent += 1
    }

    /// Receives the next frame before `now + receiveTimeout`.
    /// - Throws: `TransportError.badFrame` for a length above `maxFrameBytes`; `.timeout`, `.peerClosed`.
    public func receiveFrame() throws -> [UInt8] {
        let deadline = ContinuousClock.now.advanced(by: receiveTimeout)
        var header: UInt64 = 0
        try withUnsafeMutableBytes(of: &header) { try channel.receive(into: $0, deadline: deadline) }
        let length = UInt64(littleEndian: header)
        guard length <= UInt64(maxFrameBytes) else {
            throw TransportError.badFrame(peer: peerName, detail: "length prefix \(length) exceeds the limit \(maxFrameBytes) (garbage or desynchronised stream)")
        }
        var payload = [UInt8](repeating: 0, count: Int(length))
        try payload.withUnsafeMutableBytes { try channel.receive(into: $0, deadline: deadline) }
        counters.payloadBytesReceived += payload.count
        counters.framesReceived += 1
        receivedLog?.append(payload)
        return payload
    }

    private func emulateDelay(bytes: Int) {
        let now = ContinuousClock.now
        let start = max(now, linkFreeAt)
        let tx = Duration.seconds(network.transmitSeconds(bytes: bytes))
        linkFreeAt = start.advanced(by: tx)
        let due = linkFreeAt.advanced(by: .seconds(network.roundTripSeconds / 2))
        let wait = now.duration(to: due).seconds
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
    }

    /// Closes the channel.
    public func close() { channel.close() }
}
