// Ring arithmetic for additive secret sharing.
//
// All shares live in Z_2^64: plain `UInt64` with wrapping operators (`&+`, `&-`, `&*`), so reduction
// mod 2^64 is free. The word type is named through `RingWord` so that a Z_2^32 ring can be added by
// conforming `UInt32` and specialising the few kernels that name `UInt64` (RingTensor, PRG.fill,
// ring matmul); the protocol layer only uses the operators below.

/// An unsigned machine word used as a ring Z_2^bits with wrapping arithmetic.
public protocol RingWord: FixedWidthInteger & UnsignedInteger & Sendable {
    /// The signed integer of the same width (two's-complement view of a ring element).
    associatedtype Signed: FixedWidthInteger & SignedInteger & Sendable
    /// Reinterprets the bits as a signed value.
    var signed: Signed { get }
    /// Reinterprets a signed value's bits as a ring element.
    init(signedBits: Signed)
}

extension UInt64: RingWord {
    public typealias Signed = Int64
    @inlinable public var signed: Int64 { Int64(bitPattern: self) }
    @inlinable public init(signedBits: Int64) { self.init(bitPattern: signedBits) }
}

extension UInt32: RingWord {
    public typealias Signed = Int32
    @inlinable public var signed: Int32 { Int32(bitPattern: self) }
    @inlinable public init(signedBits: Int32) { self.init(bitPattern: signedBits) }
}

/// The two computing parties. Party 0 is the client (owns the text), party 1 the server (owns the weights).
public enum PartyID: Int, Sendable, CustomStringConvertible, CaseIterable {
    case client = 0
    case server = 1

    /// The other computing party.
    @inlinable public var peer: PartyID { self == .client ? .server : .client }

    public var description: String { self == .client ? "party 0 (client)" : "party 1 (server)" }
}
