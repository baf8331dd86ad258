import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A `ByteChannel` over a connected TCP socket (TCP_NODELAY set).
///
/// Sends are handed to a writer thread so that two parties that both send large messages at once never
/// deadlock on full kernel buffers; a write error is reported by the next `send` or `receive`. The queue
/// is bounded (`maxQueuedBytes`): a sender that runs far ahead of its reader (the dealer, which can deal a
/// whole session of queries long before the parties consume it) waits instead of filling the memory.
/// A message larger than the bound is still accepted when the queue is empty, so the parties' exchanges
/// (each sends one message of a step, then receives) can never wait on each other.
/// Receives use `poll` with the remaining time to the deadline.
public final class TCPChannel: ByteChannel, @unchecked Sendable {
    public let peerName: String
    private let fd: Int32
    private let cond = NSCondition()
    private var queue: [Chunk] = []
    private var queuedBytes = 0
    /// Bytes the writer may hold before `send` waits (the socket's own buffers come on top).
    public static let maxQueuedBytes = 64 << 20
    private var writeError: TransportError?
    private var closing = false
    private var writerDone = false

    init(fd: Int32, peerName: String) {
        self.fd = fd
        self.peerName = peerName
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let t = Thread { [self] in writerLoop() }
        t.name = "tcp-writer \(peerName)"
        t.start()
    }

    deinit { Glibc.close(fd) }

    /// Connects to `host:port`, retrying refused connections until `deadline` (the peer may start later).
    /// - Throws: `TransportError.connectionRefused` at the deadline; `.system` for other socket failures.
    public static func connect(host: String, port: Int, peerName: String,
                               deadline: ContinuousClock.Instant) throws -> TCPChannel {
        let address = "\(host):\(port)"
        while true {
            var hints = addrinfo()
            hints.ai_family = AF_UNSPEC
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var res: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &res)
            guard rc == 0, let ai = res else { throw TransportError.system(peer: peerName, call: "getaddrinfo(\(address))", errno: rc) }
            defer { freeaddrinfo(res) }
            let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
            if fd < 0 { throw TransportError.system(peer: peerName, call: "socket", errno: errno) }
            if Glibc.connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 {
                return TCPChannel(fd: fd, peerName: peerName)
            }
            let err = errno
            Glibc.close(fd)
            guard err == ECONNREFUSED || err == ENOENT || err == ETIMEDOUT || err == EAGAIN else {
                throw TransportError.system(peer: peerName, call: "connect(\(address))", errno: err)
            }
            if deadline.secondsFromNow <= 0 { throw TransportError.connectionRefused(peer: peerName, address: address) }
            // Retry back-off while the peer starts up (not a wait for test synchronisation).
            Thread.sleep(forTimeInterval: min(0.02, max(0, deadline.secondsFromNow)))
        }
    }

    public func send(_ bytes: UnsafeRawBufferPointer) throws { try enqueue(count: bytes.count) { .bytes(Array(bytes)) } }

    /// Queues the array itself (no copy; arrays are values, so the caller cannot change what is queued).
    public func send(owned bytes: [UInt8]) throws { try enqueue(count: bytes.count) { .bytes(bytes) } }

    /// Queues the words themselves, written as they lie in memory (little-endian hosts; a copy otherwise).
    public func send(owned words: [UInt64]) throws {
        #if _endian(big)
        try send(owned: WordCoding.bytes(words))
        #else
        try enqueue(count: 8 * words.count) { .words(words) }
        #endif
    }

    /// What the writer thread sends next: bytes, or words as they lie in memory.
    private enum Chunk {
        case bytes([UInt8]), words([UInt64])
        func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
            switch self {
            case let .bytes(b): return try b.withUnsafeBytes(body)
            case let .words(w): return try w.withUnsafeBytes(body)
            }
        }
    }

    /// Waits for room in the queue, then appends `chunk()` for the writer thread.
    private func enqueue(count: Int, _ chunk: () -> Chunk) throws {
        cond.lock(); defer { cond.unlock() }
        if let e = writeError { throw e }
        if closing { throw TransportError.peerClosed(peer: peerName, detail: "send after close") }
        while queuedBytes > 0 && queuedBytes + count > Self.maxQueuedBytes && writeError == nil && !closing { cond.wait() }
        if let e = writeError { throw e }
        queue.append(chunk())
        queuedBytes += count
        cond.broadcast()
    }

    private func writerLoop() {
        while true {
            cond.lock()
            while queue.isEmpty && !closing { cond.wait() }
            if queue.isEmpty { writerDone = true; cond.broadcast(); cond.unlock(); return }
            let chunk = queue.removeFirst()
            cond.unlock()
            var off = 0
            var failure: TransportError?
            let length = chunk.withUnsafeBytes { p -> Int in
                while off < p.count {
                    let n = Glibc.send(fd, p.baseAddress! + off, p.count - off, Int32(MSG_NOSIGNAL))
                    if n > 0 { off += n; continue }
                    if n < 0 && errno == EINTR { continue }
                    failure = .peerClosed(peer: peerName, detail: "write failed, errno \(errno)")
                    break
                }
                return p.count
            }
            if let f = failure {
                cond.lock(); writeError = f; queue.removeAll(); queuedBytes = 0; writerDone = true; cond.broadcast(); cond.unlock()
                return
            }
            cond.lock(); queuedBytes -= length; cond.broadcast(); cond.unlock()
        }
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer, deadline: ContinuousClock.Instant) throws {
        var got = 0
        while got < buffer.count {
            cond.lock(); let we = writeError; cond.unlock()
            if let we { throw we }
            let left = deadline.secondsFromNow
            if left <= 0 { throw TransportError.timeout(peer: peerName, waitingFor: "\(buffer.count - got) of \(buffer.count) bytes") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let pr = poll(&pfd, 1, Int32(min(left * 1000 + 1, 1_000_000)))
            if pr < 0 {
                if errno == EINTR { continue }
                throw TransportError.system(peer: peerName, call: "poll", errno: errno)
            }
            if pr == 0 { continue }
            let n = recv(fd, buffer.baseAddress! + got, buffer.count - got, 0)
            if n > 0 { got += n; continue }
            if n < 0 && (errno == EINTR || errno == EAGAIN) { continue }
            throw TransportError.peerClosed(peer: peerName, detail: n == 0 ? "end of stream after \(got) of \(buffer.count) bytes" : "recv errno \(errno)")
        }
    }

    /// Flushes queued sends (up to 10 s), then shuts the socket down.
    public func close() {
        cond.lock()
        closing = true
        cond.broadcast()
        let limit = Date(timeIntervalSinceNow: 10)
        while !writerDone && cond.wait(until: limit) {}
        cond.unlock()
        shutdown(fd, Int32(SHUT_RDWR))
    }
}

/// A listening TCP socket. Bind port 0 to let the OS pick a free port, then read `port`.
public final class TCPListener: @unchecked Sendable {
    private let fd: Int32
    /// The bound port (the OS-chosen one when created with port 0).
    public let port: Int
    public let host: String

    /// Binds and listens on `host:port` (IPv4 dotted address, e.g. "127.0.0.1" or "0.0.0.0").
    public init(host: String = "127.0.0.1", port: Int = 0) throws {
        self.host = host
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if fd < 0 { throw TransportError.system(peer: "listener", call: "socket", errno: errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            Glibc.close(fd); throw TransportError.system(peer: "listener", call: "inet_pton(\(host))", errno: EINVAL)
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if rc != 0 { let e = errno; Glibc.close(fd); throw TransportError.system(peer: "listener", call: "bind(\(host):\(port))", errno: e) }
        if listen(fd, 16) != 0 { let e = errno; Glibc.close(fd); throw TransportError.system(peer: "listener", call: "listen", errno: e) }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: bound.sin_port))
    }

    deinit { Glibc.close(fd) }

    /// Accepts one connection before `deadline`.
    /// - Throws: `TransportError.timeout` if nobody connects in time.
    public func accept(peerName: String, deadline: ContinuousClock.Instant) throws -> TCPChannel {
        while true {
            let left = deadline.secondsFromNow
            if left <= 0 { throw TransportError.timeout(peer: peerName, waitingFor: "a connection on \(host):\(port)") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let pr = poll(&pfd, 1, Int32(min(left * 1000 + 1, 1_000_000)))
            if pr < 0 && errno != EINTR { throw TransportError.system(peer: peerName, call: "poll", errno: errno) }
            if pr <= 0 { continue }
            let c = Glibc.accept(fd, nil, nil)
            if c >= 0 { return TCPChannel(fd: c, peerName: peerName) }
            if errno != EINTR && errno != EAGAIN && errno != ECONNABORTED {
                throw TransportError.system(peer: peerName, call: "accept", errno: errno)
            }
        }
    }

    /// Stops listening.
    public func close() { shutdown(fd, Int32(SHUT_RDWR)) }
}
