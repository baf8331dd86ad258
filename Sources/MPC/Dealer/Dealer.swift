import Foundation

/// The trusted dealer (offline phase): produces correlated randomness for both parties.
///
/// Seed compression: the dealer sends each party a fresh 16-byte PRG seed (first record of its stream)
/// and keeps a copy of both PRGs. For every correlation, everything that can be pseudo-random is drawn
/// from the parties' PRGs, and only the corrections that make the correlation hold travel, to party 1.
/// Party 0 receives a header-only record (kind and shape, no payload) so both streams are tag-checked.
///
/// "One model, two runs": the dealer must be called with the same sequence of correlations (kinds and
/// shapes) that the parties consume online. Who learns what: the dealer sees no inputs or outputs; each
/// party learns only its own shares, which are uniform on their own.
public final class Dealer: @unchecked Sendable {
    private var prgs: [PRG]
    private let links: [FramedConnection]
    /// Session masks B of server-owned weights, by handle (see `maskWeight`).
    var weightMasks: [RingMatmul.RightOperand] = []

    /// Starts dealing over `links` (to party 0, to party 1) with fresh seeds from the system CSPRNG.
    public convenience init(toClient: FramedConnection, toServer: FramedConnection) throws {
        try self.init(toClient: toClient, toServer: toServer, seeds: (.random(), .random()))
    }

    /// Starts dealing with given seeds (tests only: production seeds must be `PRGSeed.random()`).
    public init(toClient: FramedConnection, toServer: FramedConnection, seeds: (PRGSeed, PRGSeed)) throws {
        links = [toClient, toServer]
        prgs = [PRG(seed: seeds.0), PRG(seed: seeds.1)]
        for (p, seed) in [seeds.0, seeds.1].enumerated() {
            try emit(PartyID(rawValue: p)!, DealerRecord(kind: .seed, shape: [16], payload: WordCoding.words(seed.bytes)))
        }
    }

    /// Offline bytes: all payload bytes the dealer has sent to both parties (headers and seeds included).
    public var offlineBytes: Int { links.reduce(0) { $0 + $1.counters.payloadBytesSent } }

    /// Draws `count` words from the PRG shared with `party`, exactly as that party's stream will.
    func draw(_ party: PartyID, _ count: Int) -> [UInt64] { prgs[party.rawValue].next(count) }

    /// Sends one tagged record to `party`, its payload followed by `extra` words, without copying them.
    func emit(_ party: PartyID, _ record: DealerRecord, extra: [UInt64] = []) throws {
        try links[party.rawValue].send(frame: record.header, words: [record.payload, extra])
    }

    /// Closes the program's records: sends the `end` record to both parties.
    public func finish() throws {
        for p in [PartyID.client, .server] { try emit(p, DealerRecord(kind: .end, shape: [], payload: [])) }
    }

    /// Closes one unit of the program (e.g. a query): sends the `mark` record to both parties.
    public func mark() throws {
        for p in [PartyID.client, .server] { try emit(p, DealerRecord(kind: .mark, shape: [], payload: [])) }
    }

    /// PRGs of the enclosing branches (`beginBranch` pushes, `endBranch` pops).
    private var outerPRGs: [[PRG]] = []

    /// Opens one alternative of a branch whose choice the dealer must not learn (reveal routing: the
    /// parties open which pool member runs; the dealer deals every member, one alternative each).
    ///
    /// Sends a `branch` header to both parties and switches both PRGs to fresh ones seeded from the
    /// shared PRGs, so a party that skips the alternative (`DealerStream.skipBranch`) stays in step
    /// without expanding its randomness. Alternatives must not load weights (`maskWeight`): do that
    /// before. Offline bytes: every alternative's, whichever runs.
    public func beginBranch() throws {
        for p in [PartyID.client, .server] { try emit(p, DealerRecord(kind: .branch, shape: [], payload: [])) }
        let seeds = prgs.indices.map { PRGSeed(words: prgs[$0].next(2)) }   // advances the shared PRGs
        outerPRGs.append(prgs)
        prgs = seeds.map { PRG(seed: $0) }
    }

    /// Closes the alternative opened by `beginBranch` and returns to the enclosing PRGs.
    public func endBranch() throws {
        precondition(!outerPRGs.isEmpty, "endBranch without beginBranch")
        for p in [PartyID.client, .server] { try emit(p, DealerRecord(kind: .branchEnd, shape: [], payload: [])) }
        prgs = outerPRGs.removeLast()
    }

    /// Sends the header-only record to party 0 and the correction to party 1.
    func emitCorrection(_ kind: CorrelationKind, shape: [Int], correction: [UInt64]) throws {
        try emit(.client, DealerRecord(kind: kind, shape: shape, payload: []))
        try emit(.server, DealerRecord(kind: kind, shape: shape, payload: correction))
    }
}

/// One party's side of the dealer stream: the PRG shared with the dealer, plus the tagged records.
///
/// Records are consumed in order; asking for a kind or shape other than the next record's throws
/// `DealerError.unexpectedRecord` ("expected X, found Y").
public final class DealerStream: @unchecked Sendable {
    /// The party this stream belongs to.
    public let party: PartyID
    private var prg: PRG
    private let link: FramedConnection
    /// Records consumed so far (the seed record is number 0).
    public private(set) var recordIndex = 0
    /// Weight masks received so far: the next one gets this handle, as in the dealer's `maskWeight`.
    var weightMasksReceived = 0

    /// Opens the stream: receives the seed record from the dealer.
    /// - Throws: `TransportError` if the dealer is unreachable; `DealerError` if the first record is not a seed.
    public init(party: PartyID, link: FramedConnection) throws {
        self.party = party
        self.link = link
        let rec = try DealerRecord.decode(try link.receiveFrame())
        guard rec.kind == .seed, rec.shape == [16], rec.payload.count == 2 else {
            throw DealerError.unexpectedRecord(party: party.description, expected: "seed[16]", found: rec.tag, index: 0)
        }
        prg = PRG(seed: try PRGSeed(bytes: WordCoding.bytes(rec.payload)))
        recordIndex = 1
    }

    /// Offline bytes received by this party from the dealer.
    public var offlineBytesReceived: Int { link.counters.payloadBytesReceived }

    /// Draws `count` words from the PRG shared with the dealer.
    func draw(_ count: Int) -> [UInt64] { prg.next(count) }

    /// Records read ahead by `preload` (consumed before the link).
    private var queue: [DealerRecord] = []
    private var queueHead = 0

    /// Reads every remaining record up to the dealer's `end` (the whole offline phase) into memory, so
    /// the online phase never waits for the dealer. Memory: the offline bytes of the program.
    public func preload() throws { try preload(through: [.end]) }

    /// Reads records ahead into memory up to and including the next one of `kinds` (or `end`): one
    /// unit of a program that marks its units (`Dealer.mark`). Memory: that unit's offline bytes.
    public func preload(through kinds: Set<CorrelationKind>) throws {
        if queueHead < queue.count { return }  // a unit is already queued (preloads stop after a mark or end)
        while true {
            let rec = try DealerRecord.decode(try link.receiveFrame())
            queue.append(rec)
            if kinds.contains(rec.kind) || rec.kind == .end { return }
        }
    }

    /// Checks that the next record is a `mark` (the end of a unit).
    public func expectMark() throws {
        let rec = try nextRecord()
        defer { recordIndex += 1 }
        guard rec.kind == .mark else {
            throw DealerError.unexpectedRecord(party: party.description, expected: "mark", found: rec.tag, index: recordIndex)
        }
    }

    private var outerPRGs: [PRG] = []

    /// Enters the alternative of a branch that this party runs (`Dealer.beginBranch`).
    /// - Throws: `DealerError.unexpectedRecord` if the next record is not a `branch`.
    public func enterBranch() throws {
        try expectHeader(.branch)
        let seed = PRGSeed(words: prg.next(2))   // advances the shared PRG, as skipBranch does
        outerPRGs.append(prg)
        prg = PRG(seed: seed)
    }

    /// Leaves the alternative entered by `enterBranch` (its records must all have been consumed).
    public func exitBranch() throws {
        precondition(!outerPRGs.isEmpty, "exitBranch without enterBranch")
        try expectHeader(.branchEnd)
        prg = outerPRGs.removeLast()
    }

    /// Skips an alternative this party does not run: discards its records (nested branches included)
    /// and draws the branch seed from the shared PRG, as the dealer did, so later records stay in step.
    public func skipBranch() throws {
        try expectHeader(.branch)
        _ = prg.next(2)
        var depth = 1
        while depth > 0 {
            let rec = try nextRecord()
            recordIndex += 1
            switch rec.kind {
            case .branch: depth += 1
            case .branchEnd: depth -= 1
            case .mark, .end, .seed:
                throw DealerError.unexpectedRecord(party: party.description, expected: "branchEnd", found: rec.tag, index: recordIndex - 1)
            default: break
            }
        }
    }

    private func expectHeader(_ kind: CorrelationKind) throws {
        let rec = try nextRecord()
        defer { recordIndex += 1 }
        guard rec.kind == kind else {
            throw DealerError.unexpectedRecord(party: party.description, expected: "\(kind)", found: rec.tag, index: recordIndex)
        }
    }

    /// Checks that the next record is the dealer's `end`: the program consumed exactly what was dealt.
    public func expectEnd() throws {
        let rec = try nextRecord()
        guard rec.kind == .end else {
            throw DealerError.unexpectedRecord(party: party.description, expected: "end", found: rec.tag, index: recordIndex)
        }
    }

    private func nextRecord() throws -> DealerRecord {
        if queueHead < queue.count {
            defer {
                queueHead += 1
                if queueHead == queue.count { queue = []; queueHead = 0 }
            }
            let r = queue[queueHead]
            queue[queueHead].payload = []  // release the memory as soon as the record is consumed
            return r
        }
        return try DealerRecord.decode(try link.receiveFrame())
    }

    /// Reads the next record, checking its kind and shape, and returns its payload
    /// (which must hold `payloadCount` words).
    func next(_ kind: CorrelationKind, shape: [Int], payloadCount: Int) throws -> [UInt64] {
        let rec = try nextRecord()
        defer { recordIndex += 1 }
        guard rec.kind == kind, rec.shape == shape else {
            throw DealerError.unexpectedRecord(party: party.description, expected: "\(kind)\(shape)", found: rec.tag, index: recordIndex)
        }
        guard rec.payload.count == payloadCount else {
            throw DealerError.malformedRecord("\(rec.tag) at index \(recordIndex) for \(party): \(rec.payload.count) payload words, expected \(payloadCount)")
        }
        return rec.payload
    }
}
