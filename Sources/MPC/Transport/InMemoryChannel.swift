import Foundation

/// One direction of an in-memory pipe: an unbounded byte queue with a blocking, deadline-bounded read.
final class InMemoryPipe: @unchecked Sendable {
    private let cond = NSCondition()
    private var buffer: [UInt8] = []
    private var readOffset = 0
    private var closed = false

    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        cond.lock(); defer { cond.unlock() }
        if closed { return false }
        buffer.append(contentsOf: bytes)
        cond.broadcast()
        return true
    }

    func close() {
        cond.lock(); closed = true; cond.broadcast(); cond.unlock()
    }

    /// Returns nil on success, or the error kind.
    func read(into out: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) -> ReadFailure? {
        cond.lock(); defer { cond.unlock() }
        while buffer.count - readOffset < out.count {
            if closed { return .closed(available: buffer.count - readOffset) }
            let left = deadline.secondsFromNow
            if left <= 0 { return .timeout }
            _ = cond.wait(until: Date(timeIntervalSinceNow: left))
        }
        buffer.withUnsafeBytes { src in
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[readOffset..<(readOffset + out.count)]))
        }
        readOffset += out.count
        if readOffset == buffer.count {
            buffer.removeAll(keepingCapacity: true); readOffset = 0
        } else if readOffset > (1 << 20) && readOffset * 2 > buffer.count {
            buffer.removeFirst(readOffset); readOffset = 0
        }
        return nil
    }

    enum ReadFailure { case timeout, closed(available: Int) }
}

/// An in-process `ByteChannel`: `InMemoryChannel.pair()` returns two connected ends.
///
/// Thread-safe; `send` never blocks (unbounded buffer), `receive` blocks until the bytes arrive, the
/// peer closes, or the deadline passes. For unit tests and for running both parties in one process.
public final class InMemoryChannel: ByteChannel, @unchecked Sendable {
    public let peerName: String
    private let incoming: InMemoryPipe
    private let outgoing: InMemoryPipe

    init(peerName: String, incoming: InMemoryPipe, outgoing: InMemoryPipe) {
        self.peerName = peerName
        self.incoming = incoming
        self.outgoing = outgoing
    }

    /// Two connected ends. `a` talks to `b`; `a.peerName == nameB`.
    public static func pair(_ nameA: String = "party 0 (client)", _ nameB: String = "party 1 (server)")
        -> (a: InMemoryChannel, b: InMemoryChannel)
    {
        let ab = InMemoryPipe(), ba = InMemoryPipe()
        return (InMemoryChannel(peerName: nameB, incoming: ba, outgoing: ab),
                InMemoryChannel(peerName: nameA, incoming: ab, outgoing: ba))
    }

    public func send(_ bytes: UnsafeRawBufferPointer) throws {
        guard outgoing.write(bytes) else { throw TransportError.peerClosed(peer: peerName, detail: "send on a closed channel") }
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws {
        switch incoming.read(into: buffer, deadline: deadline) {
        case nil: return
        case .timeout: throw TransportError.timeout(peer: peerName, waitingFor: "\(buffer.count) bytes")
        case let .closed(avail):
            throw TransportError.peerClosed(peer: peerName, detail: "stream ended with \(avail) of \(buffer.count) bytes")
        }
    }

    /// Closes both directions: the peer's receives fail once drained, and our own pending receive wakes up.
    public func close() { outgoing.close(); incoming.close() }
}
