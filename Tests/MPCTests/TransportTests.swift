import Foundation
import Testing
@testable import MPC

/// A ByteChannel that delivers a fixed byte stream in chunks of a given size, then reports end of stream.
final class ChunkedStream: ByteChannel, @unchecked Sendable {
    let peerName = "chunked test stream"
    private let pipe = InMemoryPipe()
    init(_ bytes: [UInt8], chunk: Int) {
        var i = 0
        while i < bytes.count {
            let j = min(bytes.count, i + chunk)
            _ = bytes[i..<j].withUnsafeBytes { pipe.write($0) }
            i = j
        }
        pipe.close()
    }
    func send(_ bytes: UnsafeRawBufferPointer) throws {}
    func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws {
        switch pipe.read(into: buffer, deadline: deadline) {
        case nil: return
        case .timeout: throw TransportError.timeout(peer: peerName, waitingFor: "\(buffer.count) bytes")
        case .closed: throw TransportError.peerClosed(peer: peerName, detail: "end")
        }
    }
    func close() {}
}

func frame(_ payload: [UInt8]) -> [UInt8] {
    withUnsafeBytes(of: UInt64(payload.count).littleEndian) { Array($0) } + payload
}

@Suite(.timeLimit(.minutes(1))) struct TransportTests {
    let payloads: [[UInt8]] = [[], [1], Array(0..<200).map { UInt8($0) }, [UInt8](repeating: 9, count: 37)]

    @Test func framingSurvivesEveryChunkSize() throws {
        let stream = payloads.flatMap(frame)
        for chunk in 1...stream.count {
            let conn = FramedConnection(channel: ChunkedStream(stream, chunk: chunk), receiveTimeout: .seconds(5))
            for p in payloads { #expect(try conn.receiveFrame() == p, "chunk size \(chunk)") }
            #expect(throws: TransportError.self) { try conn.receiveFrame() }
        }
    }

    @Test func truncatedFrameIsAnError() throws {
        let full = frame(Array(repeating: 7, count: 100))
        for cut in [3, 8, 9, 50, 107] {
            let conn = FramedConnection(channel: ChunkedStream(Array(full[0..<cut]), chunk: 5), receiveTimeout: .seconds(5))
            #expect(throws: TransportError.self, "cut at \(cut)") { try conn.receiveFrame() }
        }
    }

    @Test func garbageLengthIsRejected() throws {
        let garbage: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]
        let conn = FramedConnection(channel: ChunkedStream(garbage, chunk: 4), maxFrameBytes: 1 << 20, receiveTimeout: .seconds(5))
        do {
            _ = try conn.receiveFrame()
            Issue.record("garbage accepted")
        } catch let TransportError.badFrame(peer, _) {
            #expect(peer == "chunked test stream")
        }
    }

    @Test func receiveTimesOut() throws {
        let (a, _) = InMemoryChannel.pair()
        let conn = FramedConnection(channel: a, receiveTimeout: .milliseconds(50))
        let start = ContinuousClock.now
        #expect(throws: TransportError.timeout(peer: "party 1 (server)", waitingFor: "8 bytes")) { try conn.receiveFrame() }
        #expect(start.duration(to: .now) < .seconds(2))
    }

    @Test func inMemoryPeerClosedIsAnError() throws {
        let (a, b) = InMemoryChannel.pair()
        try FramedConnection(channel: b).send(frame: [1, 2, 3])
        b.close()
        let conn = FramedConnection(channel: a, receiveTimeout: .seconds(5))
        #expect(try conn.receiveFrame() == [1, 2, 3])
        #expect(throws: TransportError.self) { try conn.receiveFrame() }
    }

    /// A sender far ahead of a reader that does not read (the dealer ahead of a busy party) waits once
    /// `TCPChannel.maxQueuedBytes` are queued instead of growing its memory; everything arrives once read.
    @Test func sendQueueIsBounded() throws {
        let listener = try TCPListener(host: "127.0.0.1", port: 0)
        let port = listener.port
        let chunk = [UInt8](repeating: 7, count: 1 << 20), total = 2 * (TCPChannel.maxQueuedBytes >> 20)
        let sent = ManagedCounter()
        let sender = Thread {
            guard let ch = try? listener.accept(peerName: "reader", deadline: .now + .seconds(10)) else { return }
            let conn = FramedConnection(channel: ch, receiveTimeout: .seconds(30))
            for _ in 0..<total { if (try? conn.send(frame: chunk)) == nil { return }; sent.increment() }
            _ = try? conn.receiveFrame()
        }
        sender.start()
        let ch = try TCPChannel.connect(host: "127.0.0.1", port: port, peerName: "sender", deadline: .now + .seconds(10))
        let conn = FramedConnection(channel: ch, receiveTimeout: .seconds(30))
        Thread.sleep(forTimeInterval: 1)  // the reader stalls; the sender fills its queue and the socket buffers
        let ahead = sent.value
        #expect(ahead < total && ahead <= (TCPChannel.maxQueuedBytes >> 20) + 16, "sender queued \(ahead) MB without a reader")
        for _ in 0..<total { #expect(try conn.receiveFrame().count == chunk.count) }
        #expect(sent.value == total)
        try conn.send(frame: [])
        ch.close()
    }

    @Test func tcpRoundTripOnEphemeralPort() throws {
        let listener = try TCPListener(host: "127.0.0.1", port: 0)
        #expect(listener.port > 0)
        let port = listener.port
        let big = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let server = Thread {
            guard let ch = try? listener.accept(peerName: "client", deadline: .now + .seconds(10)) else { return }
            let conn = FramedConnection(channel: ch, receiveTimeout: .seconds(10))
            // Echo two frames back, sending before reading to exercise simultaneous large sends.
            try? conn.send(frame: big)
            if let f = try? conn.receiveFrame() { try? conn.send(frame: f) }
            _ = try? conn.receiveFrame()
            ch.close()
        }
        server.start()
        let ch = try TCPChannel.connect(host: "127.0.0.1", port: port, peerName: "server", deadline: .now + .seconds(10))
        let conn = FramedConnection(channel: ch, receiveTimeout: .seconds(10))
        // A large frame is queued without a copy (`send(owned:)`); changing the array afterwards changes
        // only the sender's copy of it, not what goes out.
        var mine = big
        try conn.send(frame: mine)
        for i in mine.indices { mine[i] = ~mine[i] }
        #expect(try conn.receiveFrame() == big)
        #expect(try conn.receiveFrame() == big)
        try conn.send(frame: [])
        // Server closes: next receive reports the peer closed, with its name.
        do {
            _ = try conn.receiveFrame()
            Issue.record("expected peerClosed")
        } catch let TransportError.peerClosed(peer, _) {
            #expect(peer == "server")
        }
        ch.close()
    }

    /// A frame of a header and word arrays (how the dealer sends a record: the payload words are queued
    /// without a copy when the frame is large) arrives as the header's bytes, then each array's words
    /// little-endian, in order, small or large, over TCP and in memory.
    @Test func framesOfHeaderAndWords() throws {
        let header: [UInt8] = [1, 2, 3, 4, 5]
        let small: [[UInt64]] = [[0x0102_0304_0506_0708, 9], [], [UInt64.max]]
        let large: [[UInt64]] = [(0..<200_000).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }, [42]]
        func expected(_ words: [[UInt64]]) -> [UInt8] { header + words.flatMap { w in w.flatMap { v in (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } } } }
        let listener = try TCPListener(host: "127.0.0.1", port: 0)
        let port = listener.port
        let sender = Thread {
            guard let ch = try? listener.accept(peerName: "reader", deadline: .now + .seconds(10)) else { return }
            let conn = FramedConnection(channel: ch, receiveTimeout: .seconds(10))
            var mine = large
            try? conn.send(frame: header, words: small)
            try? conn.send(frame: header, words: mine)
            mine[0][0] = 7   // after the send: not what was queued
            _ = try? conn.receiveFrame()
        }
        sender.start()
        let ch = try TCPChannel.connect(host: "127.0.0.1", port: port, peerName: "sender", deadline: .now + .seconds(10))
        let conn = FramedConnection(channel: ch, receiveTimeout: .seconds(10))
        #expect(try conn.receiveFrame() == expected(small))
        #expect(try conn.receiveFrame() == expected(large))
        try conn.send(frame: [])
        ch.close()
        let (a, b) = InMemoryChannel.pair()
        try FramedConnection(channel: a).send(frame: header, words: large)
        #expect(try FramedConnection(channel: b, receiveTimeout: .seconds(5)).receiveFrame() == expected(large))
    }

    @Test func tcpConnectionRefusedAtDeadline() throws {
        let port: Int
        do { let l = try TCPListener(port: 0); port = l.port; l.close() }  // a port nobody listens on now
        do {
            _ = try TCPChannel.connect(host: "127.0.0.1", port: port, peerName: "server", deadline: .now + .milliseconds(200))
            Issue.record("connected to a closed port")
        } catch let TransportError.connectionRefused(peer, address) {
            #expect(peer == "server" && address == "127.0.0.1:\(port)")
        }
    }

    @Test func acceptTimesOut() throws {
        let l = try TCPListener(port: 0)
        #expect(throws: TransportError.self) { _ = try l.accept(peerName: "client", deadline: .now + .milliseconds(100)) }
    }

    @Test func networkEmulationDelaysMessages() throws {
        let (a, b) = InMemoryChannel.pair()
        let slow = NetworkProfile(bitsPerSecond: 80e6, roundTripSeconds: 0.02)  // 10 MB/s, 10 ms one way
        let sender = FramedConnection(channel: a, network: slow)
        let receiver = FramedConnection(channel: b)
        let start = ContinuousClock.now
        try sender.send(frame: [UInt8](repeating: 0, count: 100_000))  // 10 ms + 10 ms
        _ = try receiver.receiveFrame()
        let t = start.duration(to: .now).seconds
        #expect(t >= 0.019 && t < 0.5, "took \(t) s")
        #expect(sender.counters.payloadBytesSent == 100_000 && sender.counters.wireBytesSent == 100_008)
    }
}

/// A thread-safe counter for tests.
final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() { lock.lock(); n += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
}
