#if canImport(Glibc)
import Glibc
#endif
/// Failures of the byte transport: the network or the peer caused them.
public enum TransportError: Error, Equatable, CustomStringConvertible {
    /// The peer closed the connection (or died) while we were reading or writing.
    case peerClosed(peer: String, detail: String)
    /// No data arrived before the deadline.
    case timeout(peer: String, waitingFor: String)
    /// Nobody accepted our connection before the deadline.
    case connectionRefused(peer: String, address: String)
    /// A frame header announced an impossible length (garbage or a desynchronised stream).
    case badFrame(peer: String, detail: String)
    /// A socket call failed.
    case system(peer: String, call: String, errno: Int32)

    public var description: String {
        switch self {
        case let .peerClosed(p, d): return "transport: \(p) closed the connection (\(d)); the peer process probably exited, check its log"
        case let .timeout(p, w): return "transport: timed out waiting for \(w) from \(p); the peer is stuck, dead, or running a different program"
        case let .connectionRefused(p, a): return "transport: \(p) refused the connection at \(a) until the deadline; is it listening on that address?"
        case let .badFrame(p, d): return "transport: bad frame from \(p): \(d)"
        case let .system(p, c, e):
            if c.hasPrefix("bind("), e == EADDRINUSE {
                return "transport: cannot listen on \(c.dropFirst(5).dropLast()): the port is already in use (choose another, or 0 for any free port)"
            }
            let reason = String(cString: strerror(e))
            return "transport: \(c) failed for \(p): \(reason) (errno \(e))"
        }
    }
}

/// Failures of the correlated-randomness stream (dealer → party).
public enum DealerError: Error, Equatable, CustomStringConvertible {
    /// The consumer asked for one correlation and the stream holds another: the dealer and the
    /// parties are not running the same program in the same order.
    case unexpectedRecord(party: String, expected: String, found: String, index: Int)
    /// A record could not be decoded.
    case malformedRecord(String)

    public var description: String {
        switch self {
        case let .unexpectedRecord(p, e, f, i):
            return "dealer stream of \(p), record \(i): expected \(e), found \(f); dealer and parties ran different programs"
        case let .malformedRecord(d): return "dealer stream: malformed record: \(d)"
        }
    }
}

/// Failures of an MPC protocol step caused by the peer or inputs (not programmer mistakes).
public enum ProtocolError: Error, Equatable, CustomStringConvertible {
    /// The peer sent a message of the wrong size for this step.
    case unexpectedMessage(party: String, round: Int, expectedBytes: Int, foundBytes: Int)
    /// The setup handshake found a different protocol version or party role.
    case handshake(String)
    /// A caller passed operands whose shapes do not fit the protocol.
    case shapeMismatch(String)

    public var description: String {
        switch self {
        case let .shapeMismatch(d): return d
        case let .unexpectedMessage(p, r, e, f):
            return "\(p), round \(r): expected a \(e)-byte message, found \(f) bytes; parties are out of step"
        case let .handshake(d): return "handshake failed: \(d)"
        }
    }
}
