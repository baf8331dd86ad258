import Foundation

/// Runs one role of a session: the dealer, or one computing party, over any `ByteChannel`s (TCP between
/// processes, in-memory in one process). The in-memory and TCP runs share every line below the
/// channel, so their outputs and counters agree bit for bit under the same seeds.
///
/// Topology: the dealer listens; both parties connect to it. The server listens; the client connects
/// to it. Setup frames (hello, done; `SessionHello`) are outside the counted traffic.
public enum Session {
    // MARK: Role cores (any channel)

    /// The dealer: reads both hellos, deals the program's correlations, then waits until both parties
    /// report done (so it notices a party that dies mid-protocol).
    /// - Parameter channels: the two accepted links, in any order (roles come from the hellos).
    /// - Throws: `SessionError.handshake`, `TransportError` naming the party, `DealerError`.
    public static func deal<P: SecureProgram>(_ program: P, channels: [ByteChannel], options: SessionOptions,
                                              log: (String) -> Void = { _ in }) throws -> SessionReport<P.Output> {
        precondition(channels.count == 2)
        let setup = try DealerSetup(program, options: options)
        for ch in channels { try setup.admit(ch) }
        return try setup.deal(program, log: log)
    }

    /// One computing party: hellos to the dealer and the peer, the `Party` handshake, the online run,
    /// then "done" to the dealer.
    /// - Parameters:
    ///   - id: our role.
    ///   - peer: link to the other party; `dealer`: link to the dealer.
    ///   - inputs: our private inputs by name (only the ones we own).
    /// - Throws: `TransportError` naming the peer or dealer; `SessionError`, `ProtocolError`, `DealerError`.
    public static func compute<P: SecureProgram>(_ program: P, as id: PartyID, peer: ByteChannel, dealer: ByteChannel,
                                                 inputs: [String: RingTensor], options: SessionOptions,
                                                 log: (String) -> Void = { _ in }) throws -> SessionReport<P.Output> {
        let digest = try SessionHello.digest(program)
        let role: SessionRole = id == .client ? .client : .server
        let dealerSetup = FramedConnection(channel: dealer, maxFrameBytes: SessionHello.maxFrame, receiveTimeout: options.connectTimeout)
        try dealerSetup.send(frame: SessionHello.frame(kind: SessionHello.hello, role: role, digest: digest))
        let peerSetup = FramedConnection(channel: peer, maxFrameBytes: SessionHello.maxFrame, receiveTimeout: options.connectTimeout)
        try peerSetup.send(frame: SessionHello.frame(kind: SessionHello.hello, role: role, digest: digest))
        let theirs = try SessionHello.parse(try peerSetup.receiveFrame(), kind: SessionHello.hello, digest: digest, from: peer.peerName)
        guard theirs.party == id.peer else {
            throw SessionError.handshake("\(id): the peer at \(peer.peerName) claims the role \(theirs.displayName); both configured as the same party?")
        }
        let stream = try DealerStream(party: id, link: FramedConnection(channel: dealer, receiveTimeout: options.receiveTimeout))
        let party = try Party(id: id, peer: FramedConnection(channel: peer, network: options.network, receiveTimeout: options.receiveTimeout),
                              dealer: stream, fixedPoint: program.fixedPoint, localSeed: options.seeds.localSeed(id))
        var offlineSeconds: Double?
        if options.preprocess {
            let t = ContinuousClock.now
            try stream.preload(through: [.mark])  // the whole program, or its first unit if it marks units
            offlineSeconds = (ContinuousClock.now - t).seconds
            log("\(id): offline phase received in \(String(format: "%.3f", offlineSeconds!)) s (\(stream.offlineBytesReceived) bytes)")
        }
        log("\(id): online phase started")
        let pace: (() throws -> Void)? = options.pacesDealer
            ? { try dealerSetup.send(frame: SessionHello.frame(kind: SessionHello.nextUnit, role: role, digest: digest)) } : nil
        let backend = PartyBackend(party: party, inputs: inputs, preloadUnits: options.preprocess, events: options.events,
                                   finishedUnit: pace)
        let output = try program.run(on: backend)
        let seconds = (ContinuousClock.now - backend.onlineStart).seconds
        let profile = backend.profile()
        try stream.expectEnd()
        try dealerSetup.send(frame: SessionHello.frame(kind: SessionHello.done, role: role, digest: digest))
        log("\(id): done in \(String(format: "%.3f", seconds)) s, \(party.rounds) rounds")
        var report = SessionReport(role: role, seconds: seconds, onlineBytesSent: party.peer.bytesSent,
                                   onlineBytesReceived: party.peer.bytesReceived, rounds: party.rounds,
                                   offlineBytes: stream.offlineBytesReceived, output: output)
        report.setup = backend.setup
        report.offlineSeconds = offlineSeconds
        report.profile = profile
        peer.close()
        dealer.close()
        return report
    }

    // MARK: One process (tests, reference runs)

    /// Runs dealer, client and server on three threads of this process over in-memory channels: the
    /// same code as the TCP session, so results and counters match it bit for bit under the same seeds.
    /// - Throws: the first role's error (the others are unblocked by closing their channels).
    public static func runInMemory<P: SecureProgram>(_ program: P, clientInputs: [String: RingTensor],
                                                     serverInputs: [String: RingTensor],
                                                     options: SessionOptions) throws -> SessionResult<P.Output> {
        let link = InMemoryChannel.pair()
        let d0 = InMemoryChannel.pair("dealer", "party 0 (client)")
        let d1 = InMemoryChannel.pair("dealer", "party 1 (server)")
        let all: [ByteChannel] = [link.a, link.b, d0.a, d0.b, d1.a, d1.b]
        let reports = ReportBox<P.Output>()
        let jobs: [@Sendable () throws -> SessionReport<P.Output>] = [
            { try deal(program, channels: [d1.a, d0.a], options: options) },
            { try compute(program, as: .client, peer: link.a, dealer: d0.b, inputs: clientInputs, options: options) },
            { try compute(program, as: .server, peer: link.b, dealer: d1.b, inputs: serverInputs, options: options) },
        ]
        let group = DispatchGroup()
        for (i, job) in jobs.enumerated() {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do { reports.set(i, .success(try job())) } catch {
                    reports.set(i, .failure(error))
                    for c in all { c.close() }
                }
            }
        }
        group.wait()
        return try reports.result()
    }

    // MARK: Processes over TCP

    /// The dealer process: listens on `listen` (port 0: any), calls `onListening` with the bound
    /// address, accepts both parties, deals, and waits for them to finish.
    public static func runDealer<P: SecureProgram>(_ program: P, listen: Endpoint, options: SessionOptions,
                                                   onListening: (Endpoint) -> Void,
                                                   log: (String) -> Void = { _ in }) throws -> SessionReport<P.Output> {
        let listener = try TCPListener(host: listen.host, port: listen.port)
        defer { listener.close() }
        onListening(Endpoint(host: listen.host, port: listener.port))
        let deadline = ContinuousClock.now.advanced(by: options.connectTimeout)
        // A party that dies while the dealer still waits for the other one closes the listener, so the
        // dealer fails at once, naming that party, instead of at the accept deadline.
        let setup = try DealerSetup(program, options: options, onPartyFailure: { listener.close() })
        // Each connection's handshake and hello run on their own thread: with authenticated links the
        // second party's handshake must not wait behind the first party's hello.
        let admitted = DispatchGroup()
        let admission = FirstError()
        for _ in 0..<2 {
            let channel: TCPChannel
            do { channel = try listener.accept(peerName: "a party connecting to the dealer", deadline: deadline) } catch {
                admitted.wait()
                throw setup.firstFailure ?? admission.error ?? error
            }
            admitted.enter()
            Thread.detachNewThread {
                defer { admitted.leave() }
                do { try setup.admit(try options.protect(channel, initiator: false)) } catch {
                    admission.record(error)
                    listener.close()
                }
            }
        }
        admitted.wait()
        if let e = setup.firstFailure ?? admission.error { throw e }
        return try setup.deal(program, log: log)
    }

    /// The server process (party 1): listens on `listen` for the client, calls `onListening`, connects
    /// to the dealer at `dealer`, accepts the client, and computes.
    public static func runServer<P: SecureProgram>(_ program: P, listen: Endpoint, dealer: Endpoint,
                                                   inputs: [String: RingTensor], options: SessionOptions,
                                                   onListening: (Endpoint) -> Void,
                                                   log: (String) -> Void = { _ in }) throws -> SessionReport<P.Output> {
        let listener = try TCPListener(host: listen.host, port: listen.port)
        defer { listener.close() }
        onListening(Endpoint(host: listen.host, port: listener.port))
        let deadline = ContinuousClock.now.advanced(by: options.connectTimeout)
        let d = try options.protect(TCPChannel.connect(host: dealer.host, port: dealer.port, peerName: "dealer", deadline: deadline), initiator: true)
        let c = try options.protect(listener.accept(peerName: PartyID.client.description, deadline: deadline), initiator: false)
        return try compute(program, as: .server, peer: c, dealer: d, inputs: inputs, options: options, log: log)
    }

    /// The client process (party 0): connects to the dealer and to the server, and computes.
    public static func runClient<P: SecureProgram>(_ program: P, dealer: Endpoint, server: Endpoint,
                                                   inputs: [String: RingTensor], options: SessionOptions,
                                                   log: (String) -> Void = { _ in }) throws -> SessionReport<P.Output> {
        let deadline = ContinuousClock.now.advanced(by: options.connectTimeout)
        let d = try options.protect(TCPChannel.connect(host: dealer.host, port: dealer.port, peerName: "dealer", deadline: deadline), initiator: true)
        let s = try options.protect(TCPChannel.connect(host: server.host, port: server.port, peerName: PartyID.server.description, deadline: deadline), initiator: true)
        return try compute(program, as: .client, peer: s, dealer: d, inputs: inputs, options: options, log: log)
    }
}

/// The dealer's side of setup: admits the two parties by their hellos and, from then on, watches each
/// link for the party's done frame on its own thread, so a party that dies at any point (while the
/// dealer accepts the other, deals, or waits) is reported at once, by name.
private final class DealerSetup: @unchecked Sendable {
    private let cond = NSCondition()
    private var links: [PartyID: ByteChannel] = [:]
    private var finished = 0
    /// Units each party has finished (its next-unit frames; paced dealer).
    private var unitsDone: [PartyID: Int] = [:]
    private var failure: Error?
    private let digest: [UInt8]
    private let options: SessionOptions
    private let onPartyFailure: @Sendable () -> Void

    init<P: SecureProgram>(_ program: P, options: SessionOptions, onPartyFailure: @escaping @Sendable () -> Void = {}) throws {
        self.digest = try SessionHello.digest(program)
        self.options = options
        self.onPartyFailure = onPartyFailure
    }

    /// The first failure of a watched party, if any.
    var firstFailure: Error? { cond.lock(); defer { cond.unlock() }; return failure }

    /// Reads the hello on `channel`, names the link by the role it claims, and starts watching it.
    func admit(_ channel: ByteChannel) throws {
        let hello = FramedConnection(channel: channel, maxFrameBytes: SessionHello.maxFrame, receiveTimeout: options.connectTimeout)
        let role = try SessionHello.parse(try hello.receiveFrame(), kind: SessionHello.hello, digest: digest, from: channel.peerName)
        cond.lock()
        guard let id = role.party, links[id] == nil else {
            cond.unlock()
            throw SessionError.handshake("two connections to the dealer claim the role \(role.displayName)")
        }
        let link = RenamedChannel(channel, peerName: id.description)
        links[id] = link
        cond.unlock()
        Thread.detachNewThread { [self] in
            do {
                let c = FramedConnection(channel: link, maxFrameBytes: SessionHello.maxFrame, receiveTimeout: options.sessionTimeout)
                while try SessionHello.parse(try c.receiveFrame(), kinds: [SessionHello.done, SessionHello.nextUnit], digest: digest,
                                             from: link.peerName).kind == SessionHello.nextUnit {
                    cond.lock(); unitsDone[id, default: 0] += 1; cond.broadcast(); cond.unlock()
                }
                cond.lock(); finished += 1; cond.broadcast(); cond.unlock()
            } catch {
                cond.lock(); if failure == nil { failure = error }; finished += 1; cond.broadcast(); cond.unlock()
                onPartyFailure()
            }
        }
    }

    /// Paced dealer: waits until both parties have finished `n` units (or one has failed).
    private func awaitUnits(_ n: Int) throws {
        cond.lock()
        defer { cond.unlock() }
        while failure == nil && finished < 2 && PartyID.allCases.contains(where: { unitsDone[$0, default: 0] < n }) { cond.wait() }
        if let failure { throw failure }
    }

    /// Deals the program to both admitted parties, then waits for both done frames.
    func deal<P: SecureProgram>(_ program: P, log: (String) -> Void) throws -> SessionReport<P.Output> {
        let (c, s) = (links[.client]!, links[.server]!)
        let t0 = ContinuousClock.now
        let dealer: Dealer
        var profile: [String: CostSample] = [:]
        do {
            dealer = try Dealer(toClient: FramedConnection(channel: c), toServer: FramedConnection(channel: s),
                                seeds: options.seeds.dealerSeeds())
            let backend = DealerBackend(dealer: dealer, fixedPoint: program.fixedPoint,
                                        afterUnit: options.pacesDealer ? { try self.awaitUnits($0) } : nil)
            _ = try program.run(on: backend)
            try dealer.finish()
            profile = backend.profile()
        } catch {
            throw firstFailure ?? error
        }
        let seconds = (ContinuousClock.now - t0).seconds
        log("dealer: dealt \(dealer.offlineBytes) bytes in \(String(format: "%.3f", seconds)) s; waiting for both parties")
        cond.lock()
        while finished < 2 && failure == nil { cond.wait() }
        let f = failure
        cond.unlock()
        if let f { throw f }
        c.close(); s.close()
        var report = SessionReport<P.Output>(role: .dealer, seconds: seconds, onlineBytesSent: 0, onlineBytesReceived: 0, rounds: 0,
                                             offlineBytes: dealer.offlineBytes, output: nil)
        report.profile = profile
        return report
    }
}

/// The first error recorded by any thread.
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var first: Error?
    func record(_ e: Error) { lock.lock(); if first == nil { first = e }; lock.unlock() }
    var error: Error? { lock.lock(); defer { lock.unlock() }; return first }
}

/// Thread-safe slots for the three role reports of an in-memory run.
private final class ReportBox<Output: Codable & Sendable & Equatable>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Int: Result<SessionReport<Output>, Error>] = [:]
    func set(_ i: Int, _ r: Result<SessionReport<Output>, Error>) { lock.lock(); slots[i] = r; lock.unlock() }
    /// The reports, or the first error by role order of failure (a root cause beats the "peer closed"
    /// errors it triggers in the others).
    func result() throws -> SessionResult<Output> {
        lock.lock(); defer { lock.unlock() }
        let errors = (0..<3).compactMap { i -> Error? in if case let .failure(e)? = slots[i] { return e }; return nil }
        if let root = errors.first(where: { !Self.isPeerClosed($0) }) ?? errors.first { throw root }
        return SessionResult(client: try slots[1]!.get(), server: try slots[2]!.get(), dealer: try slots[0]!.get())
    }
    private static func isPeerClosed(_ e: Error) -> Bool {
        if case .peerClosed? = e as? TransportError { return true }
        return false
    }
}
