import Foundation
import Testing
@testable import MPC

/// Every op of the backend catalogue, once, on small tensors: run by the dealer and both parties, it
/// checks that each op's dealer generator mirrors its evaluator (a mismatch throws "expected X, found Y").
struct AllOpsProgram: SecureProgram, Equatable {
    static let name = "all-ops-test"
    var n = 6

    struct Opened: Codable, Sendable, Equatable { var values: [[UInt64]]; var index: [Int] }

    func run(on b: some SecureBackend) throws -> Opened? {
        let x = try b.input("x", owner: .client, shape: [2, n])
        let y = try b.input("y", owner: .server, shape: [2, n])
        let w = try b.input("w", owner: .server, shape: [n, 3])
        let s = b.sub(b.add(x, y), b.scale(y, by: 0.5))
        let p = try b.mul(x, y), q = try b.square(x), r = b.truncate(try b.mulRaw(x, y), bits: 16)
        let m = try b.matmul(x, w)
        let bit = try b.lessThan(x, y), bit2 = try b.lessThan(x, constant: 0.25)
        let sel = try b.select(bit, x, y)
        let rows = try b.selectRows(try b.drelu(b.max(x)), x, y)
        let rl = try b.relu(b.negate(s)), nb = b.not(bit2)
        let (mx, oh) = try b.argmax(b.addPublic(m, RingTensor(shape: [2, 3], repeating: 1)))
        let idx = try b.revealIndex(oh, to: .client)
        let both = try b.revealToBoth(mx)
        let shares = [s, p, q, r, m, bit, bit2, sel, rows, rl, nb, b.mulPublic(x, 3)]
        var opened: [[UInt64]] = []
        for t in shares { if let v = try b.reveal(t, to: .client) { opened.append(v.data) } }
        guard b.partyID == .client, let idx, let both else { return nil }
        return Opened(values: opened + [both.data], index: idx)
    }

    func syntheticInputs(for party: PartyID, seed: UInt64) -> [String: RingTensor] {
        var g = SyntheticData(seed: seed)
        let fp = fixedPoint
        if party == .client { return ["x": fp.encode(g.doubles(2 * n, range: 2), shape: [2, n])] }
        return ["y": fp.encode(g.doubles(2 * n, range: 2), shape: [2, n]), "w": fp.encode(g.doubles(3 * n, range: 1), shape: [n, 3])]
    }
}

@Suite struct RuntimeTests {
    func inputs<P: SecureProgram>(_ p: P) -> ([String: RingTensor], [String: RingTensor]) {
        (p.syntheticInputs(for: .client, seed: 1), p.syntheticInputs(for: .server, seed: 2))
    }

    @Test func allOpsRunInOrderAndMatchPlaintext() throws {
        let p = AllOpsProgram()
        let (ci, si) = inputs(p)
        let r = try Session.runInMemory(p, clientInputs: ci, serverInputs: si, options: SessionOptions(seeds: .insecureTest(3)))
        let out = try #require(r.client.output ?? nil)
        #expect(r.server.output == .some(nil))
        let fp = FixedPoint()
        let x = fp.decode(ci["x"]!), y = fp.decode(si["y"]!)
        let lt = out.values[5].map { Int64(bitPattern: $0) }
        #expect(lt == zip(x, y).map { $0 < $1 ? 1 : 0 })
        let sel = fp.decode(RingTensor(shape: [12], data: out.values[7]))
        #expect(maxAbsDiff(sel, zip(x, y).map { $0 < $1 ? $0 : $1 }) == 0)
        let prod = fp.decode(RingTensor(shape: [12], data: out.values[1]))
        #expect(maxAbsDiff(prod, zip(x, y).map { $0 * $1 }) < 1e-3)
        #expect(r.client.rounds == r.server.rounds && r.client.onlineBytesSent == r.server.onlineBytesReceived)
        #expect(r.dealer.offlineBytes == r.client.offlineBytes + r.server.offlineBytes)
    }

    @Test func mlpMatchesPlaintextWithSystemSeeds() throws {
        let p = MLPProgram(batch: 8, repeats: 1)
        let (ci, si) = inputs(p)
        let r = try Session.runInMemory(p, clientInputs: ci, serverInputs: si, options: SessionOptions())
        #expect(r.client.output??.classes == p.plaintextPrediction(client: ci, server: si))
        #expect(r.server.output == .some(nil))
    }

    /// The three roles over loopback TCP on threads of this process agree bit for bit with in-memory.
    @Test(.timeLimit(.minutes(1))) func tcpInProcessMatchesInMemory() throws {
        let p = MLPProgram(repeats: 2, revealLogits: true)
        let (ci, si) = inputs(p)
        let options = SessionOptions(seeds: .insecureTest(9))
        let mem = try Session.runInMemory(p, clientInputs: ci, serverInputs: si, options: options)
        let dealerL = try TCPListener(), serverL = try TCPListener()
        let dealerAt = Endpoint(host: "127.0.0.1", port: dealerL.port), serverAt = Endpoint(host: "127.0.0.1", port: serverL.port)
        dealerL.close(); serverL.close()
        // Ports were free a moment ago; rebinding with SO_REUSEADDR is fine for a test.
        let box = ReportSlots<MLPProgram.Prediction?>()
        let g = DispatchGroup()
        let jobs: [@Sendable () throws -> SessionReport<MLPProgram.Prediction?>] = [
            { try Session.runDealer(p, listen: dealerAt, options: options, onListening: { _ in }) },
            { try Session.runServer(p, listen: serverAt, dealer: dealerAt, inputs: si, options: options, onListening: { _ in }) },
            { try Session.runClient(p, dealer: dealerAt, server: serverAt, inputs: ci, options: options) },
        ]
        for (i, j) in jobs.enumerated() {
            g.enter()
            Thread.detachNewThread { defer { g.leave() }; box.set(i, Result { try j() }) }
        }
        g.wait()
        let dealer = try box.get(0), server = try box.get(1), client = try box.get(2)
        #expect(client.output == mem.client.output)
        #expect(client.counters == mem.client.counters && server.counters == mem.server.counters && dealer.counters == mem.dealer.counters)
    }

    /// Processes started with different parameters disagree on the hello digest.
    @Test func programDigestCoversParameters() throws {
        #expect(try SessionHello.digest(MLPProgram(repeats: 1)) != SessionHello.digest(MLPProgram(repeats: 2)))
        #expect(try SessionHello.digest(MLPProgram()) == SessionHello.digest(MLPProgram()))
    }

    @Test func endpointParsing() throws {
        #expect(try Endpoint(parsing: "127.0.0.1:0") == Endpoint(host: "127.0.0.1", port: 0))
        #expect(throws: SessionError.self) { try Endpoint(parsing: "localhost") }
        #expect(throws: SessionError.self) { try Endpoint(parsing: ":80") }
    }
}

final class ReportSlots<O: Codable & Sendable & Equatable>: @unchecked Sendable {
    private let lock = NSLock()
    private var slots: [Int: Result<SessionReport<O>, Error>] = [:]
    func set(_ i: Int, _ r: Result<SessionReport<O>, Error>) { lock.lock(); slots[i] = r; lock.unlock() }
    func get(_ i: Int) throws -> SessionReport<O> { lock.lock(); defer { lock.unlock() }; return try slots[i]!.get() }
}
