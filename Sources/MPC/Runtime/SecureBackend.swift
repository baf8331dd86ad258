// "One model, two runs" (Sigma): a secure computation is written once as a `SecureProgram` against a
// `SecureBackend`. Run on a `DealerBackend` it produces the correlated randomness in order; run on a
// `PartyBackend` (one per computing party) it consumes it in the same order and computes. Every op names
// its dealer generator and its online evaluator side by side (SecureBackend+Ops.swift), so the three
// runs cannot drift apart; the tagged dealer records catch any mismatch anyway ("expected X, found Y").

/// A secret tensor inside a program: its shape always, and this party's share when run by a party
/// (nil in the dealer, which sees shapes only).
public struct SecureTensor: Sendable {
    /// Shape of the secret.
    public let shape: [Int]
    /// This party's additive share; nil in the dealer run.
    public let share: ArithmeticShare?

    public init(shape: [Int], share: ArithmeticShare?) {
        precondition(share == nil || share!.shape == shape, "share shape \(share!.shape) vs declared \(shape)")
        self.shape = shape
        self.share = share
    }

    /// The share; only valid inside a party's `compute` closure.
    var mine: ArithmeticShare {
        guard let share else { preconditionFailure("secret of shape \(shape) has no share: used outside a party's compute") }
        return share
    }
}

/// What a `SecureProgram` runs on: the dealer (generates correlations) or one computing party.
///
/// Implementations need only `step` (and `ownedInput` on parties); every op is an extension method built
/// on `step` (SecureBackend+Ops.swift). To add an op: one extension method that calls
/// `step(deal: { dealer in ...generator... }) { party in ...evaluator... }`.
public protocol SecureBackend: AnyObject {
    /// The party this backend computes for; nil for the dealer.
    var partyID: PartyID? { get }
    /// Fixed-point encoding of the program.
    var fixedPoint: FixedPoint { get }
    /// Runs one op: the dealer runs `deal` (emitting the op's records) and returns nil; a party runs
    /// `compute` (consuming them) and returns its result.
    func step<T>(deal: (Dealer) throws -> Void, compute: (Party) throws -> T) throws -> T?
    /// The plaintext private input `name` of this backend's party (called only on the input's owner).
    /// - Throws: `SessionError.missingInput` if this party was not given it, or it has another shape.
    func ownedInput(_ name: String, shape: [Int]) throws -> RingTensor
    /// Marks the end of the per-session setup (e.g. loading server weights) and the start of the online
    /// phase: a party files the traffic, rounds and time so far as setup cost and restarts its counters.
    func beginOnline()
    /// Attributes the cost of the following ops to `name` (profiling; see `CostLedger`).
    func enterSection(_ name: String)
    /// Closes one unit of the program (a query): the dealer marks its stream; a party checks the mark
    /// and, with `SessionOptions.preprocess`, reads the next unit's records before returning (so each
    /// unit's clock runs with its offline phase already received). Returns the unit's cost: online
    /// counters and seconds since the previous boundary (preloading excluded), offline bytes of the unit.
    func boundary() throws -> CostSample
    /// Online cost per section since `beginOnline` (dealer: offline bytes per section).
    func profile() -> [String: CostSample]
    /// Passes one line (e.g. a finished query's result as JSON) to whoever runs this role, as it
    /// happens, so results survive a later failure. Nothing goes on the wire.
    func emit(_ event: String)
    /// Runs one of `count` alternatives, chosen by a value both parties know (opened earlier, e.g. the
    /// routed pool member) and the dealer does not: the dealer deals every alternative
    /// (`Dealer.beginBranch`), each party runs `body(chosen)` and skips the others' records.
    /// Returns the chosen body's result on a party, nil on the dealer.
    /// - Throws: `ProtocolError.shapeMismatch` on a party whose `chosen` is not in `0..<count`. The bodies must load no weights.
    func branches<T>(_ count: Int, chosen: Int?, _ body: (Int) throws -> T) throws -> T?
}

extension SecureBackend {
    /// Runs `body` with its cost attributed to the section `name`, then returns to the enclosing section.
    public func section<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        enterSection(name)
        defer { enterSection("other") }
        return try body()
    }
}

/// A secure computation written once, run by the dealer and by both parties (each in its own process,
/// or all in one process for tests). Its value (Codable) is public: all three runs see the same value.
/// Private inputs are not part of it; they are named and come from `ownedInput` on the owner only.
public protocol SecureProgram: Codable, Sendable {
    /// What the program returns (e.g. the revealed label on the client, nil elsewhere).
    associatedtype Output: Codable & Sendable & Equatable
    /// Registry name (`mpc-worker --program NAME`).
    static var name: String { get }
    /// Fixed-point encoding (both parties check it in the handshake).
    var fixedPoint: FixedPoint { get }
    /// Issues the program's ops on `backend`, in the same order on every backend.
    func run(on backend: some SecureBackend) throws -> Output
    /// Synthetic private inputs of `party` (random data for tests and benchmarks), from `seed`.
    /// Called only in the owning party's process.
    func syntheticInputs(for party: PartyID, seed: UInt64) -> [String: RingTensor]
    /// Private inputs of `party` from `file` (see the default in the extension).
    func inputs(for party: PartyID, file: String) throws -> [String: RingTensor]
}

extension SecureProgram {
    public var fixedPoint: FixedPoint { FixedPoint() }

    /// Private inputs of `party` read from `file`, a path given to that party's process only (real data:
    /// a checkpoint for the server, token ids for the client). Programs that only run on synthetic data
    /// keep this default, which refuses.
    public func inputs(for party: PartyID, file: String) throws -> [String: RingTensor] {
        throw SessionError.missingInput(party: party.description, name: file, detail: "program '\(Self.name)' takes no input file")
    }
}

/// The dealer's run of a program: every op emits its correlations; nothing is computed.
public final class DealerBackend: SecureBackend {
    public let dealer: Dealer
    public let fixedPoint: FixedPoint
    /// Called after each unit's mark with the number of units dealt so far; a paced dealer waits there
    /// until both parties have finished that many units (`SessionOptions.pacedDealer`).
    private let afterUnit: ((Int) throws -> Void)?
    private var units = 0

    public init(dealer: Dealer, fixedPoint: FixedPoint = FixedPoint(), afterUnit: ((Int) throws -> Void)? = nil) {
        self.dealer = dealer
        self.fixedPoint = fixedPoint
        self.afterUnit = afterUnit
    }
    public var partyID: PartyID? { nil }
    public func step<T>(deal: (Dealer) throws -> Void, compute: (Party) throws -> T) throws -> T? {
        try deal(dealer)
        return nil
    }
    public func ownedInput(_ name: String, shape: [Int]) throws -> RingTensor {
        throw SessionError.missingInput(party: "dealer", name: name, detail: "the dealer owns no inputs")
    }
    /// Offline bytes per section (what the dealer sent while the program was in it).
    public private(set) var ledger = CostLedger()
    public func beginOnline() { enterSection("other") }
    public func enterSection(_ name: String) {
        ledger.switchTo(name, now: CostSample(offlineBytes: dealer.offlineBytes))
    }

    /// Offline bytes per section so far.
    public func profile() -> [String: CostSample] { ledger.closed(at: CostSample(offlineBytes: dealer.offlineBytes)) }

    private var unitStart = 0
    public func boundary() throws -> CostSample {
        try dealer.mark()
        units += 1
        try afterUnit?(units)
        defer { unitStart = dealer.offlineBytes }
        return CostSample(offlineBytes: dealer.offlineBytes - unitStart)
    }
    public func emit(_ event: String) {}
    public func branches<T>(_ count: Int, chosen: Int?, _ body: (Int) throws -> T) throws -> T? {
        for j in 0..<count {
            try dealer.beginBranch()
            _ = try body(j)
            try dealer.endBranch()
        }
        return nil
    }
}

/// One computing party's run of a program: every op runs the online protocol on `party`.
public final class PartyBackend: SecureBackend {
    public let party: Party
    private let inputs: [String: RingTensor]

    /// - Parameters:
    ///   - party: the party after its handshake.
    ///   - inputs: this party's private inputs by name (only those it owns).
    ///   - preloadUnits: at each `boundary`, read the next unit's dealer records before returning.
    ///   - events: receives `emit`ted lines.
    ///   - finishedUnit: with `preloadUnits`, called at each `boundary` before preloading (a paced dealer's
    ///     go-ahead for the next unit).
    public init(party: Party, inputs: [String: RingTensor] = [:], preloadUnits: Bool = false,
                events: (@Sendable (String) -> Void)? = nil, finishedUnit: (() throws -> Void)? = nil) {
        self.finishedUnit = finishedUnit
        self.party = party
        self.inputs = inputs
        self.onlineStart = .now
        self.preloadUnits = preloadUnits
        self.events = events
    }

    private let preloadUnits: Bool
    /// Ledger section of the time spent reading a unit's offline records at a boundary.
    public static let preloadSection = "offline preload"
    private let finishedUnit: (() throws -> Void)?
    private let events: (@Sendable (String) -> Void)?
    /// Counters when the current unit started (after its preload), and offline bytes at the last mark.
    private var unitStart: CostSample?
    private var unitOffline = 0

    public func boundary() throws -> CostSample {
        let now = sample()
        try party.dealer.expectMark()
        let offline = party.dealer.offlineBytesReceived
        var unit = now - (unitStart ?? CostSample())
        unit.offlineBytes = offline - unitOffline
        unitOffline = offline
        if preloadUnits {
            // Waiting for the next unit's offline records is not online work: its own ledger section.
            ledger.switchTo(PartyBackend.preloadSection, now: sample())
            try finishedUnit?()
            try party.dealer.preload(through: [.mark])
            ledger.switchTo("other", now: sample())
        }
        unitStart = sample()
        return unit
    }

    public func emit(_ event: String) { events?(event) }

    public func branches<T>(_ count: Int, chosen: Int?, _ body: (Int) throws -> T) throws -> T? {
        guard let chosen, (0..<count).contains(chosen) else {
            throw ProtocolError.shapeMismatch("branches: the opened choice \(chosen.map(String.init) ?? "nil") is not one of the \(count) alternatives")
        }
        var out: T?
        for j in 0..<count {
            if j == chosen {
                try party.dealer.enterBranch()
                out = try body(j)
                try party.dealer.exitBranch()
            } else {
                try party.dealer.skipBranch()
            }
        }
        return out
    }

    /// Cost per section of the online phase.
    public private(set) var ledger = CostLedger()
    /// Setup cost (everything before `beginOnline`), nil if the program has no setup.
    public private(set) var setup: CostSample?
    /// When the online phase started (creation time if the program never calls `beginOnline`).
    public private(set) var onlineStart: ContinuousClock.Instant

    private func sample() -> CostSample {
        CostSample(seconds: (ContinuousClock.now - onlineStart).seconds, bytesSent: party.peer.bytesSent,
                   bytesReceived: party.peer.bytesReceived, rounds: party.rounds,
                   offlineBytes: party.dealer.offlineBytesReceived)
    }

    public func beginOnline() {
        var s = sample()
        s.offlineBytes = 0
        setup = s
        party.peer.resetCounters()
        onlineStart = .now
        ledger = CostLedger()
        ledger.switchTo("other", now: sample())
        unitStart = nil
        unitOffline = party.dealer.offlineBytesReceived
    }

    public func enterSection(_ name: String) {
        ledger.switchTo(name, now: sample())
        TruncationTrace.enter(name)
    }

    /// Online cost per section so far.
    public func profile() -> [String: CostSample] { ledger.closed(at: sample()) }
    public var partyID: PartyID? { party.id }
    public var fixedPoint: FixedPoint { party.fixedPoint }
    public func step<T>(deal: (Dealer) throws -> Void, compute: (Party) throws -> T) throws -> T? {
        try compute(party)
    }
    public func ownedInput(_ name: String, shape: [Int]) throws -> RingTensor {
        guard let t = inputs[name] else {
            throw SessionError.missingInput(party: party.id.description, name: name, detail: "not provided")
        }
        guard t.shape == shape else {
            throw SessionError.missingInput(party: party.id.description, name: name, detail: "shape \(t.shape), program expects \(shape)")
        }
        return t
    }
}

/// Counters at one instant (or their difference over a stretch of a run).
public struct CostSample: Codable, Sendable, Equatable {
    public var seconds = 0.0
    public var bytesSent = 0
    public var bytesReceived = 0
    public var rounds = 0
    public var offlineBytes = 0

    public init(seconds: Double = 0, bytesSent: Int = 0, bytesReceived: Int = 0, rounds: Int = 0, offlineBytes: Int = 0) {
        self.seconds = seconds
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
        self.rounds = rounds
        self.offlineBytes = offlineBytes
    }

    enum CodingKeys: String, CodingKey {
        case seconds, rounds
        case bytesSent = "bytes_sent", bytesReceived = "bytes_received", offlineBytes = "offline_bytes"
    }

    public static func - (a: CostSample, b: CostSample) -> CostSample {
        CostSample(seconds: a.seconds - b.seconds, bytesSent: a.bytesSent - b.bytesSent, bytesReceived: a.bytesReceived - b.bytesReceived,
                   rounds: a.rounds - b.rounds, offlineBytes: a.offlineBytes - b.offlineBytes)
    }
    public static func + (a: CostSample, b: CostSample) -> CostSample {
        CostSample(seconds: a.seconds + b.seconds, bytesSent: a.bytesSent + b.bytesSent, bytesReceived: a.bytesReceived + b.bytesReceived,
                   rounds: a.rounds + b.rounds, offlineBytes: a.offlineBytes + b.offlineBytes)
    }
}

/// Cost of a run split by named sections (`SecureBackend.section`): each section accumulates the
/// counter differences over the stretches the program spent in it. Sections are a profiling aid and
/// change nothing on the wire.
public struct CostLedger: Codable, Sendable, Equatable {
    /// Accumulated cost per section name.
    public private(set) var sections: [String: CostSample] = [:]
    private var current = "other"
    private var since = CostSample()

    public init() {}

    mutating func switchTo(_ name: String, now: CostSample) {
        sections[current, default: CostSample()] = sections[current, default: CostSample()] + (now - since)
        current = name
        since = now
    }

    /// Closes the current stretch at `now` and returns the sections with a non-zero cost.
    func closed(at now: CostSample) -> [String: CostSample] {
        var copy = self
        copy.switchTo(current, now: now)
        return copy.sections.filter { $0.value != CostSample() }
    }
}
