/// Network emulation applied inside the transport (DESIGN §5): each message is delayed by half the
/// round-trip time plus its serialisation time at the link bandwidth, by actually sleeping before it is
/// written, so measured seconds include the network. Messages from one sender are paced back to back.
public struct NetworkProfile: Sendable, Equatable, CustomStringConvertible {
    /// Link bandwidth in bits per second, each way (`.infinity` for none).
    public var bitsPerSecond: Double
    /// Round-trip time in seconds.
    public var roundTripSeconds: Double

    public init(bitsPerSecond: Double, roundTripSeconds: Double) {
        precondition(bitsPerSecond > 0 && roundTripSeconds >= 0)
        self.bitsPerSecond = bitsPerSecond
        self.roundTripSeconds = roundTripSeconds
    }

    /// No emulation: messages go out as fast as the channel takes them.
    public static let none = NetworkProfile(bitsPerSecond: .infinity, roundTripSeconds: 0)
    /// 1 Gbit/s each way, 0.5 ms round trip.
    public static let lan = NetworkProfile(bitsPerSecond: 1e9, roundTripSeconds: 0.5e-3)
    /// 400 Mbit/s each way, 4 ms round trip.
    public static let wan = NetworkProfile(bitsPerSecond: 400e6, roundTripSeconds: 4e-3)

    /// Parses `none`, `lan` or `wan`.
    public init?(name: String) {
        switch name {
        case "none": self = .none
        case "lan": self = .lan
        case "wan": self = .wan
        default: return nil
        }
    }

    public var isNone: Bool { bitsPerSecond == .infinity && roundTripSeconds == 0 }

    /// Seconds to put `bytes` on the wire.
    public func transmitSeconds(bytes: Int) -> Double { Double(bytes) * 8 / bitsPerSecond }

    public var description: String {
        if self == .none { return "none" }
        if self == .lan { return "lan" }
        if self == .wan { return "wan" }
        return "\(bitsPerSecond / 1e6) Mbit/s, \(roundTripSeconds * 1e3) ms RTT"
    }
}
