import Foundation
import Testing
@testable import MPC

/// Thread-safe result slot for two party threads.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Result<T, Error>] = [:]
    func set(_ i: Int, _ r: Result<T, Error>) { lock.lock(); values[i] = r; lock.unlock() }
    func get(_ i: Int) -> Result<T, Error>? { lock.lock(); defer { lock.unlock() }; return values[i] }
}

/// Runs `body` on two threads as party 0 and party 1 over in-memory channels, after the dealer has run
/// `deal` (offline phase, ahead of time). Returns both results, or rethrows the first party's error.
func runTwoParties<T: Sendable>(
    seed: UInt64, network: NetworkProfile = .none, fracBits: Int = 16,
    receiveTimeout: Duration = .seconds(20),
    deal: (Dealer) throws -> Void,
    _ body: @escaping @Sendable (Party) throws -> T
) throws -> (T, T, dealerBytes: Int) {
    let link = InMemoryChannel.pair()
    let d0 = InMemoryChannel.pair("dealer", "party 0 (client)")
    let d1 = InMemoryChannel.pair("dealer", "party 1 (server)")
    let dealer = try Dealer(toClient: FramedConnection(channel: d0.a), toServer: FramedConnection(channel: d1.a),
                            seeds: (PRGSeed(testValue: seed &* 3 &+ 1), PRGSeed(testValue: seed &* 3 &+ 2)))
    try deal(dealer)
    let box = Box<T>()
    let done = DispatchGroup()
    let ends: [(ByteChannel, ByteChannel)] = [(link.a, d0.b), (link.b, d1.b)]
    for p in 0..<2 {
        done.enter()
        let (peerEnd, dealerEnd) = ends[p]
        let t = Thread {
            defer { done.leave() }
            do {
                let id = PartyID(rawValue: p)!
                let stream = try DealerStream(party: id, link: FramedConnection(channel: dealerEnd, receiveTimeout: receiveTimeout))
                let party = try Party(id: id, peer: FramedConnection(channel: peerEnd, network: network, receiveTimeout: receiveTimeout),
                                      dealer: stream, fixedPoint: FixedPoint(fracBits: fracBits),
                                      localSeed: PRGSeed(testValue: seed &* 7 &+ UInt64(p)))
                party.peer.connection.receivedLog = []
                box.set(p, .success(try body(party)))
            } catch {
                box.set(p, .failure(error))
                peerEnd.close()  // unblock the other party promptly
            }
        }
        t.start()
    }
    done.wait()
    return (try box.get(0)!.get(), try box.get(1)!.get(), dealer.offlineBytes)
}

/// Seeded test data (the runtime's PRG-based `SyntheticData`; never shares or keys).
typealias TestData = SyntheticData

/// Chi-square statistic of byte values against the uniform distribution (255 degrees of freedom).
func chiSquareBytes(_ bytes: [UInt8]) -> Double {
    var counts = [Int](repeating: 0, count: 256)
    for b in bytes { counts[Int(b)] += 1 }
    let expected = Double(bytes.count) / 256
    return counts.reduce(0) { $0 + (Double($1) - expected) * (Double($1) - expected) / expected }
}

/// Chi-square bound for 255 degrees of freedom: mean 255, sd ≈ 22.6; 400 is ≈ 6.4 sd.
let chiSquareLimit = 400.0

/// Checks a party's received messages: byte values look uniform and no plaintext word appears.
func expectUniformView(_ log: [[UInt8]], plaintext: [UInt64], seed: UInt64,
                       sourceLocation: SourceLocation = #_sourceLocation) {
    let bytes = log.flatMap { $0 }
    #expect(bytes.count >= 4096, "too few bytes received to test (\(bytes.count)), seed \(seed)", sourceLocation: sourceLocation)
    let chi = chiSquareBytes(bytes)
    #expect(chi < chiSquareLimit, "received bytes not uniform: chi2 = \(chi), seed \(seed)", sourceLocation: sourceLocation)
    let secret = Set(plaintext)
    let words = log.flatMap { WordCoding.words(Array($0.prefix($0.count / 8 * 8))) }
    let leaked = words.filter { secret.contains($0) }.count
    #expect(leaked == 0, "\(leaked) plaintext words appear in received messages, seed \(seed)", sourceLocation: sourceLocation)
}

/// Max |a - b| over two arrays.
func maxAbsDiff(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { abs($0 - $1) }.max() ?? 0 }
