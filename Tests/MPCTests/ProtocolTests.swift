import Foundation
import Testing
@testable import MPC

@Suite(.timeLimit(.minutes(1))) struct ProtocolTests {
    let fp = FixedPoint(fracBits: 16)
    var ulp: Double { 1 / fp.scale }

    @Test(arguments: [UInt64(1), 2, 3])
    func shareAndReveal(seed: UInt64) throws {
        var rng = TestData(seed: seed)
        let xs = rng.doubles(1000, range: 1000), ys = rng.doubles(1000, range: 1000)
        let (x, y) = (fp.encode(xs, shape: [10, 100]), fp.encode(ys, shape: [10, 100]))
        let boundary = RingTensor(shape: [6], data: [0, 1, UInt64.max, 1 << 63, (1 << 63) - 1, 12345])
        let (r0, r1, _) = try runTwoParties(seed: seed, deal: { _ in }) { p in
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: x.shape)
            let sy = try p.shareBySending(p.id == .server ? y : nil, owner: .server, shape: y.shape)
            let sb = p.share(p.id == .server ? boundary : nil, owner: .server, shape: [6])
            let sum = p.add(sx, sy), diff = p.sub(sx, sy)
            let shifted = p.addPublic(sx, fp.encode(Array(repeating: 1.5, count: 1000), shape: [10, 100]))
            let opened = try p.revealToBoth([sum, diff, shifted, sb])
            let toClient = try p.reveal(p.mulPublic(sx, 3), to: .client)
            return (opened, toClient, p.rounds, p.peer.bytesSent, p.peer.connection.receivedLog!)
        }
        #expect(r0.0 == r1.0)
        #expect(r1.1 == nil)
        let opened = r0.0
        #expect(opened[0] == x + y && opened[1] == x - y && opened[3] == boundary)
        #expect(maxAbsDiff(fp.decode(opened[2]), xs.map { $0 + 1.5 }) <= ulp)
        #expect(r0.1 == x * 3)
        #expect(r0.2 == 3 && r1.2 == 3, "rounds")
        #expect(r0.3 == 8 * 3006 && r1.3 == 8 * (1000 + 3006 + 1000), "bytes sent")
        // Party 0's view while y was shared: uniform, no plaintext.
        expectUniformView([r0.4[0]], plaintext: y.data, seed: seed)
    }

    @Test(arguments: [UInt64(11), 12])
    func beaverMultiplyAndSquare(seed: UInt64) throws {
        var rng = TestData(seed: seed)
        let n = 4096
        let xs = rng.doubles(n, range: 100), ys = rng.doubles(n, range: 100)
        let (x, y) = (fp.encode(xs, shape: [n]), fp.encode(ys, shape: [n]))
        let (r0, r1, offline) = try runTwoParties(seed: seed, deal: { d in
            try d.triple(shape: [n]); try d.squarePair(shape: [n])
        }) { p in
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: [n])
            let sy = p.share(p.id == .server ? y : nil, owner: .server, shape: [n])
            let z = try p.mul(sx, sy), s = try p.square(sx)
            return (try p.revealToBoth([z, s]), p.rounds, p.peer.bytesSent, p.peer.connection.receivedLog!)
        }
        #expect(r0.0 == r1.0)
        let prod = fp.decode(r0.0[0]), sq = fp.decode(r0.0[1])
        let errProd = maxAbsDiff(prod, zip(xs, ys).map { $0 * $1 })
        let errSq = maxAbsDiff(sq, xs.map { $0 * $0 })
        // Inputs carry ±0.5 ulp rounding each; product error ≤ (|x|+|y|)·0.5 ulp + 1 ulp truncation.
        #expect(errProd <= 101 * ulp && errSq <= 101 * ulp, "mul err \(errProd), square err \(errSq), seed \(seed)")
        #expect(r0.1 == 3 && r1.1 == 3)
        #expect(r0.2 == 8 * (2 * n + n + 2 * n) && r1.2 == r0.2)
        #expect(offline == 8 * n * 2 + 4 * 16 + 4 * 8 + 2 * (8 + 8))  // corrections + seed records + headers
        // Online views (excluding the final opening): masked e, f and square mask.
        expectUniformView(Array(r0.3.prefix(2)), plaintext: x.data + y.data, seed: seed)
        expectUniformView(Array(r1.3.prefix(2)), plaintext: x.data + y.data, seed: seed)
    }

    /// `squareAndProducts`: x² and x·y_j exactly in the ring (untruncated), in one round, x opened once: each
    /// party sends 8·(1 + J) bytes per element, and what it receives is uniform.
    @Test(arguments: [UInt64(13), 14])
    func squareAndFanProducts(seed: UInt64) throws {
        var rng = TestData(seed: seed)
        let n = 4096
        let x = (0..<n).map { _ in rng.next() }, y1 = (0..<n).map { _ in rng.next() }, y2 = (0..<n).map { _ in rng.next() }
        let (r0, r1, _) = try runTwoParties(seed: seed, deal: { d in try d.squareFan(count: n, partners: 2) }) { p in
            func shared(_ v: [UInt64], _ owner: PartyID) -> ArithmeticShare {
                p.share(p.id == owner ? RingTensor(shape: [n], data: v) : nil, owner: owner, shape: [n])
            }
            let (sx, s1, s2) = (shared(x, .client), shared(y1, .server), shared(y2, .client))
            let before = p.peer.bytesSent
            let (sq, fan) = try p.squareAndProducts(sx.tensor.data, [s1.tensor.data, s2.tensor.data])
            let sent = p.peer.bytesSent - before, rounds = p.rounds
            let views = p.peer.connection.receivedLog!
            let opened = try p.revealToBoth([sq, fan[0], fan[1]].map { ArithmeticShare(RingTensor(shape: [n], data: $0)) })
            return (opened, sent, rounds, views)
        }
        #expect(r0.0 == r1.0)
        #expect(r0.0[0].data == x.map { $0 &* $0 } && r0.0[1].data == zip(x, y1).map { $0 &* $1 } && r0.0[2].data == zip(x, y2).map { $0 &* $1 })
        #expect(r0.1 == 8 * 3 * n && r1.1 == 8 * 3 * n && r0.2 == 1 && r1.2 == 1)
        expectUniformView(Array(r0.3.prefix(1)), plaintext: x + y1 + y2, seed: seed)
        expectUniformView(Array(r1.3.prefix(1)), plaintext: x + y1 + y2, seed: seed)
    }

    @Test(arguments: [UInt64(21), 22])
    func matmulBatchedAndPlain(seed: UInt64) throws {
        var rng = TestData(seed: seed)
        let (b, m, k, n) = (3, 8, 24, 16)
        let xs = rng.doubles(b * m * k, range: 4), ws = rng.doubles(b * k * n, range: 4)
        let x = fp.encode(xs, shape: [b, m, k]), w = fp.encode(ws, shape: [b, k, n])
        let x2 = fp.encode(Array(xs[0..<m * k]), shape: [m, k]), w2 = fp.encode(Array(ws[0..<k * n]), shape: [k, n])
        let (r0, r1, _) = try runTwoParties(seed: seed, deal: { d in
            try d.matmulTriple(batch: b, m: m, k: k, n: n); try d.bitProduct(count: b * m * n)
            try d.matmulTriple(m: m, k: k, n: n); try d.bitProduct(count: m * n)
        }) { p in
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: x.shape)
            let sw = p.share(p.id == .server ? w : nil, owner: .server, shape: w.shape)
            let sx2 = p.share(p.id == .client ? x2 : nil, owner: .client, shape: x2.shape)
            let sw2 = p.share(p.id == .server ? w2 : nil, owner: .server, shape: w2.shape)
            let z = try p.matmul(sx, sw), z2 = try p.matmul(sx2, sw2)
            return (try p.revealToBoth([z, z2]), p.rounds, p.peer.bytesSent, p.peer.connection.receivedLog!)
        }
        // Two products of 2 rounds each (Beaver opening, exact truncation's bits), then the opening.
        let bits = 8 * ((b * m * n + 63) / 64 + (m * n + 63) / 64)
        #expect(r0.0 == r1.0 && r0.1 == 5 && r0.2 == 8 * (b * (m * k + k * n) + m * k + k * n + b * m * n + m * n) + bits)
        let got = fp.decode(r0.0[0])
        var ref = [Double](repeating: 0, count: b * m * n)
        for t in 0..<b { for i in 0..<m { for p in 0..<k { for j in 0..<n {
            ref[(t * m + i) * n + j] += xs[(t * m + i) * k + p] * ws[(t * k + p) * n + j]
        } } } }
        // Each product term has ≤ (4+4)·0.5 ulp input rounding; k terms; plus 1 ulp truncation.
        let err = maxAbsDiff(got, ref)
        #expect(err <= Double(k) * 4 * ulp + ulp, "matmul err \(err), seed \(seed)")
        #expect(maxAbsDiff(fp.decode(r0.0[1]), Array(got[0..<m * n])) <= 2 * ulp)  // truncation is ±1 ulp per run
        expectUniformView([r0.3[0]], plaintext: x.data + w.data, seed: seed)
        expectUniformView([r1.3[0]], plaintext: x.data + w.data, seed: seed)
    }

    /// `rightShift`: y keeps f − r bits, same bytes and rounds, result within the coarser grid's rounding.
    @Test func matmulWithRightShift() throws {
        var rng = TestData(seed: 23)
        let (b, m, k, n, r) = (2, 6, 32, 6, 2)
        let xs = rng.doubles(b * m * k, range: 2), ys = rng.doubles(b * k * n, range: 3)
        let x = fp.encode(xs, shape: [b, m, k]), y = fp.encode(ys, shape: [b, k, n])
        let (r0, _, _) = try runTwoParties(seed: 23, deal: { try $0.matmulTriple(batch: b, m: m, k: k, n: n); try $0.bitProduct(count: b * m * n) }) { p in
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: x.shape)
            let sy = p.share(p.id == .server ? y : nil, owner: .server, shape: y.shape)
            let z = try p.matmul(sx, sy, rightShift: r)
            return (try p.revealToBoth(z), p.rounds, p.peer.bytesSent)
        }
        #expect(r0.1 == 3 && r0.2 == 8 * (b * (m * k + k * n) + b * m * n + (b * m * n + 63) / 64))
        let (xd, yd) = (fp.decode(x), fp.decode(y))
        var ref = [Double](repeating: 0, count: b * m * n)
        for t in 0..<b { for i in 0..<m { for p in 0..<k { for j in 0..<n {
            ref[(t * m + i) * n + j] += xd[(t * m + i) * k + p] * yd[(t * k + p) * n + j]
        } } } }
        // y on a grid of 2^r ulp (truncated: off by < 2^r + 1 ulp), |x| ≤ 2, k terms; plus 2^r ulp truncation.
        let bound = Double(k) * 2 * Double((1 << r) + 1) * ulp + Double(1 << r) * ulp
        let err = maxAbsDiff(fp.decode(r0.0), ref)
        #expect(err <= bound && err > 0, "matmul rightShift err \(err), bound \(bound)")
    }

    /// SecureML truncation with |x| < 2^20 in fixed point after the shift: error ≤ 1 ulp on every sample.
    @Test func truncationNeverFailsOnRealisticRanges() throws {
        let seed: UInt64 = 31
        var rng = TestData(seed: seed)
        let n = 200_000
        // Raw 2f-scale products of magnitude < 2^36 (real < 16): encode at 32 fractional bits.
        let vs = rng.doubles(n, range: 15.999)
        let raw = RingTensor(shape: [n], data: vs.map { UInt64(bitPattern: Int64(($0 * 4294967296).rounded())) })
        let (r0, _, _) = try runTwoParties(seed: seed, deal: { _ in }) { p in
            let s = p.share(p.id == .client ? raw : nil, owner: .client, shape: [n])
            return try p.revealToBoth(p.truncate(s, bits: 16))
        }
        let exact = raw.data.map { Double(Int64(bitPattern: $0) >> 16) }
        let got = r0.data.map { Double(Int64(bitPattern: $0)) }
        let err = maxAbsDiff(got, exact)
        #expect(err <= 1, "truncation error \(err) ring units, seed \(seed)")
    }

    /// `truncateExact` on shares chosen to wrap: local truncation fails on a third of them, the exact one
    /// never (result floor(x/2^16) or one more), for values up to 2^61 in magnitude, and 0 stays exactly 0;
    /// the bits on the wire look uniform.
    @Test func exactTruncationNeverFailsEvenWhenSharesWrap() throws {
        let seed: UInt64 = 37
        var rng = TestData(seed: seed)
        let n = 60_000
        // Magnitudes from 2^20 to 2^61, both signs.
        let mags = rng.doubles(n, range: 1).map { 20 + 41 * abs($0) }
        let signs = rng.doubles(n, range: 1)
        let xs: [UInt64] = (0..<n).map { i in
            if i % 5 == 1 { return 0 }
            let v = Int64(pow(2, mags[i])) * (signs[i] < 0 ? -1 : 1)
            return UInt64(bitPattern: v)
        }
        // Party 0's share: uniform, or (every third element) placed so that the shares straddle ±2^63.
        let uniform = rng.doubles(n, range: 1)
        let x0: [UInt64] = (0..<n).map { i in
            let x = Int64(bitPattern: xs[i])
            if i % 3 == 0 {
                let gap = UInt64(abs(x) / 2)  // within |x| of the boundary, on the side that wraps
                return x > 0 ? (UInt64(1) << 63) &+ gap : (UInt64(1) << 63) &- 1 &- gap
            }
            return UInt64(bitPattern: Int64(uniform[i] * 9.2e18))
        }
        let x1 = zip(xs, x0).map { $0 &- $1 }
        let (r0, r1, offline) = try runTwoParties(seed: seed, deal: { d in try d.bitProduct(count: n) }) { p in
            let mine = ArithmeticShare(RingTensor(shape: [n], data: p.id == .client ? x0 : x1))
            let local = try p.revealToBoth(p.truncate(mine, bits: 16))
            p.peer.connection.receivedLog = []
            let exact = try p.truncateExact(mine, bits: 16)
            let log = p.peer.connection.receivedLog!
            return (try p.revealToBoth(exact), local, log, p.peer.bytesSent)
        }
        #expect(r0.0 == r1.0)
        let floors = xs.map { Int64(bitPattern: $0) >> 16 }
        let exactErrors = (0..<n).filter { i in
            let d = Int64(bitPattern: r0.0.data[i]) &- floors[i]
            return d != 0 && (d != 1 || xs[i] == 0)
        }
        #expect(exactErrors.isEmpty, "exact truncation off by more than 1 ulp at \(exactErrors.count) of \(n), seed \(seed)")
        let localFailures = (0..<n).filter { abs(Int64(bitPattern: r0.1.data[$0]) &- floors[$0]) > 1 }.count
        #expect(localFailures >= n / 3 - n / 15 - 10, "the test's shares should make local truncation fail (\(localFailures))")
        #expect(offline >= 8 * n && offline < 8 * n + 200, "offline \(offline): 8 bytes per element to party 1")
        // One bit per element each way (between the two full openings); both views uniform.
        #expect(r0.3 == 8 * ((n + 63) / 64) + 16 * n && r1.3 == r0.3, "bytes sent \(r0.3)")
        expectUniformView(r1.2, plaintext: xs, seed: seed)
        expectUniformView(r0.2, plaintext: xs, seed: seed)
    }

    @Test func wrongCorrelationThrowsExpectedFound() throws {
        #expect {
            _ = try runTwoParties(seed: 41, deal: { d in try d.triple(shape: [4]) }) { p in
                let s = p.share(p.id == .client ? RingTensor(shape: [5]) : nil, owner: .client, shape: [5])
                return try p.square(s)
            }
        } throws: { error in
            guard case let DealerError.unexpectedRecord(_, expected, found, index) = error else { return false }
            return expected == "squarePair[5]" && found == "triple[4]" && index == 1
        }
    }

    @Test func partyOverTCP() throws {
        let listener = try TCPListener(port: 0)
        let port = listener.port
        let n = 1000
        var rng = TestData(seed: 51)
        let xs = rng.doubles(n, range: 10), ys = rng.doubles(n, range: 10)
        let (x, y) = (fp.encode(xs, shape: [n]), fp.encode(ys, shape: [n]))
        let d0 = InMemoryChannel.pair(), d1 = InMemoryChannel.pair()
        let dealer = try Dealer(toClient: FramedConnection(channel: d0.a), toServer: FramedConnection(channel: d1.a))
        try dealer.triple(shape: [n])
        let box = Box<RingTensor>()
        let done = DispatchGroup()
        for p in 0..<2 {
            done.enter()
            let dEnd: ByteChannel = p == 0 ? d0.b : d1.b
            Thread {
                defer { done.leave() }
                do {
                    let id = PartyID(rawValue: p)!
                    let ch: ByteChannel = id == .server
                        ? try listener.accept(peerName: "client", deadline: .now + .seconds(10))
                        : try TCPChannel.connect(host: "127.0.0.1", port: port, peerName: "server", deadline: .now + .seconds(10))
                    defer { ch.close() }
                    let party = try Party(id: id, peer: FramedConnection(channel: ch, network: .lan, receiveTimeout: .seconds(10)),
                                          dealer: DealerStream(party: id, link: FramedConnection(channel: dEnd)))
                    let sx = party.share(id == .client ? x : nil, owner: .client, shape: [n])
                    let sy = party.share(id == .server ? y : nil, owner: .server, shape: [n])
                    box.set(p, .success(try party.revealToBoth(try party.mul(sx, sy))))
                } catch { box.set(p, .failure(error)) }
            }.start()
        }
        done.wait()
        let z0 = try box.get(0)!.get(), z1 = try box.get(1)!.get()
        #expect(z0 == z1)
        #expect(maxAbsDiff(fp.decode(z0), zip(xs, ys).map { $0 * $1 }) <= 11 * ulp)
    }
}
