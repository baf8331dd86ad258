import Foundation
import MPC

/// The accept loop of a long-running `party` process: each connection is handled on its own thread,
/// and at most `limit` connections may be in their first phase at once (until `handle` calls its
/// `release`): a flood of strangers costs bounded threads and memory; others are closed at once.
final class ConnectionLoop: @unchecked Sendable {
    private let cond = NSCondition()
    private var pending = 0
    let limit: Int
    let label: String

    init(limit: Int, label: String) {
        self.limit = limit
        self.label = label
    }

    /// Listens on `endpoint` (port 0: any), reports the bound address to `onListening` and logs
    /// `banner(port)`, then accepts while `running()`; `handle(channel, release)` runs on a new thread.
    /// - Throws: `TransportError` when the address cannot be bound, or the listener's error other than
    ///   the periodic accept timeout.
    func run(listen endpoint: Endpoint, onListening: (Endpoint) -> Void, banner: (Int) -> String, peerName: String,
             log: @Sendable (String) -> Void, running: () -> Bool,
             handle: @escaping @Sendable (TCPChannel, _ release: @escaping @Sendable () -> Void) -> Void) throws {
        let listener = try TCPListener(host: endpoint.host, port: endpoint.port)
        defer { listener.close() }
        onListening(Endpoint(host: endpoint.host, port: listener.port))
        log(banner(listener.port))
        while running() {
            let channel: TCPChannel
            do { channel = try listener.accept(peerName: peerName, deadline: .now.advanced(by: .seconds(1))) } catch {
                if case .timeout? = error as? TransportError { continue }
                throw error
            }
            cond.lock()
            let admit = pending < limit
            if admit { pending += 1 }
            cond.unlock()
            guard admit else {
                log("\(label): dropped a connection: \(limit) connections already pending")
                channel.close()
                continue
            }
            let released = Released()
            Thread.detachNewThread { [self] in
                let release: @Sendable () -> Void = { [self] in
                    if released.once() { cond.lock(); pending -= 1; cond.unlock() }
                }
                handle(channel, release)
                release()
            }
        }
    }

    /// A flag that flips once.
    private final class Released: @unchecked Sendable {
        private let lock = NSLock()
        private var done = false
        func once() -> Bool { lock.lock(); defer { lock.unlock() }; if done { return false }; done = true; return true }
    }
}
