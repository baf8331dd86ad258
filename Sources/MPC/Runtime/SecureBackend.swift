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
}

extension SecureProgram {
    public var fixedPoint: FixedPoint { FixedPoint() }
}

/// The dealer's run of a program: every op emits its correlations; nothing is computed.
public final class DealerBackend: SecureBackend {
    public let dealer: Dealer
    public let fixedPoint: FixedPoint
    public init(dealer: Dealer, fixedPoint: FixedPoint = FixedPoint()) {
        self.dealer = dealer
        self.fixedPoint = fixedPoint
    }
    public var partyID: PartyID? { nil }
    public func step<T>(deal: (Dealer) throws -> Void, compute: (Party) throws -> T) throws -> T? {
        try deal(dealer)
        return nil
    }
    public func ownedInput(_ name: String, shape: [Int]) throws -> RingTensor {
        throw SessionError.missingInput(party: "dealer", name: name, detail: "the dealer owns no inputs")
    }
}

/// One computing party's run of a program: every op runs the online protocol on `party`.
public final class PartyBackend: SecureBackend {
    public let party: Party
    private let inputs: [String: RingTensor]

    /// - Parameters:
    ///   - party: the party after its handshake.
    ///   - inputs: this party's private inputs by name (only those it owns).
    public init(party: Party, inputs: [String: RingTensor] = [:]) {
        self.party = party
        self.inputs = inputs
    }
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
