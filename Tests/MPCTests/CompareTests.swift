import Foundation
import Testing
@testable import MPC

/// Comparison family: DReLU, lessThan, select, ReLU, max, argmax.
@Suite(.timeLimit(.minutes(1))) struct CompareTests {
    let fp = FixedPoint(fracBits: 16)

    /// Ring values that stress the sign test: 0, ±1, ±2^20 as raw ring values (±16.0 in fixed point) and
    /// as fixed point (±2^36 raw), the signed extremes
    /// and their neighbours, and values around 2^62 and 2^63 (the wrap-around).
    static let boundary: [UInt64] = [
        0, 1, UInt64.max, 2, UInt64.max - 1, 1 << 20, 0 &- (1 << 20), (1 << 20) - 1, 0 &- ((1 << 20) + 1),
        1 << 63, (1 << 63) - 1, (1 << 63) + 1, (1 << 63) - 2, 1 << 62, 0 &- (1 << 62), (1 << 62) + 12345,
        UInt64(bitPattern: -1_000_000_000_000), 1_000_000_000_000,
        1 << 36, 0 &- (1 << 36), (1 << 36) + 1, 0 &- ((1 << 36) - 1),  // ±2^20 as fixed point (f = 16)
    ]

    /// Bytes of the seed records (2 × (8 header + 8 dim + 16 seed)) and of one rank-r record header.
    static let seedRecordBytes = 64
    static func headerBytes(rank: Int) -> Int { 8 + 8 * rank }

    func inputs(_ n: Int, seed: UInt64) -> [UInt64] {
        var rng = TestData(seed: seed)
        var xs = rng.doubles(n, range: 1000).map(fp.encode)
        for (i, b) in Self.boundary.enumerated() { xs[i] = b }
        for i in Self.boundary.count..<(n / 4) { xs[i] = rng.next() }  // a quarter uniform over the ring
        return xs
    }

    @Test(arguments: [UInt64(101), 102])
    func dreluMatchesSignOnRandomAndBoundary(seed: UInt64) throws {
        let n = 4096
        let x = RingTensor(shape: [n], data: inputs(n, seed: seed))
        let (r0, r1, offline) = try runTwoParties(seed: seed, deal: { d in try d.dreluKey(shape: [n]) }) { p in
            let sx = p.share(p.id == .server ? x : nil, owner: .server, shape: [n])
            let bit = try p.drelu(sx)
            let (rounds, sent) = (p.rounds, p.peer.bytesSent)
            return (try p.revealToBoth(bit), rounds, sent, p.peer.connection.receivedLog!)
        }
        #expect(r0.0 == r1.0)
        let expected = x.data.map { Int64(bitPattern: $0) >= 0 ? UInt64(1) : 0 }
        let wrong = (0..<n).filter { r0.0.data[$0] != expected[$0] }
        #expect(wrong.isEmpty, "\(wrong.count) wrong, first x = \(wrong.first.map { Int64(bitPattern: x.data[$0]) } ?? 0), seed \(seed)")
        #expect(r0.1 == 1 && r1.1 == 1, "rounds \(r0.1), \(r1.1)")
        #expect(r0.2 == 8 * n && r1.2 == 8 * n, "bytes \(r0.2), \(r1.2)")
        #expect(offline == Self.seedRecordBytes + 2 * Self.headerBytes(rank: 1) + 2 * 1536 * n + 8 * n, "offline \(offline)")
        // Each party's view of the opening x + r: uniform, no plaintext word.
        expectUniformView([r0.3[0]], plaintext: x.data, seed: seed)
        expectUniformView([r1.3[0]], plaintext: x.data, seed: seed)
    }

    @Test(arguments: [UInt64(111)])
    func lessThanAndConstants(seed: UInt64) throws {
        var rng = TestData(seed: seed)
        let n = 1024
        var xs = rng.doubles(n, range: 50), ys = rng.doubles(n, range: 50)
        for i in 0..<64 { ys[i] = xs[i] }  // equal
        for i in 64..<128 { ys[i] = xs[i] + 1 / fp.scale }  // x = y − 1 ulp
        for i in 128..<192 { ys[i] = xs[i] - 1 / fp.scale }  // x = y + 1 ulp
        let (x, y) = (fp.encode(xs, shape: [n]), fp.encode(ys, shape: [n]))
        let c = 3.25
        let (r0, r1, _) = try runTwoParties(seed: seed, deal: { d in
            try d.lessThan(shape: [n]); try d.lessThan(shape: [n]); try d.lessThan(shape: [n])
        }) { p in
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: [n])
            let sy = p.share(p.id == .server ? y : nil, owner: .server, shape: [n])
            let lt = try p.lessThan(sx, sy), ltc = try p.lessThan(sx, constant: c), gtc = try p.greaterThan(sx, constant: c)
            let rounds = p.rounds
            return (try p.revealToBoth([lt, ltc, gtc]), rounds)
        }
        #expect(r0.0 == r1.0 && r0.1 == 3 && r1.1 == 3)
        let xr = x.data.map { Int64(bitPattern: $0) }, yr = y.data.map { Int64(bitPattern: $0) }, cr = Int64(bitPattern: fp.encode(c))
        #expect(r0.0[0].data == (0..<n).map { xr[$0] < yr[$0] ? 1 : 0 }, "x < y, seed \(seed)")
        #expect(r0.0[1].data == (0..<n).map { xr[$0] < cr ? 1 : 0 }, "x < c, seed \(seed)")
        #expect(r0.0[2].data == (0..<n).map { xr[$0] > cr ? 1 : 0 }, "x > c, seed \(seed)")
    }

    @Test(arguments: [UInt64(121), 122])
    func selectAndRelu(seed: UInt64) throws {
        let n = 2048
        var rng = TestData(seed: seed)
        let x = RingTensor(shape: [n], data: inputs(n, seed: seed))
        let a = fp.encode(rng.doubles(n, range: 100), shape: [n]), b = fp.encode(rng.doubles(n, range: 100), shape: [n])
        let bits = RingTensor(shape: [n], data: (0..<n).map { _ in rng.next() & 1 })
        let rowsA = fp.encode(rng.doubles(n * 3, range: 100), shape: [n, 3]), rowsB = fp.encode(rng.doubles(n * 3, range: 100), shape: [n, 3])
        let (r0, r1, offline) = try runTwoParties(seed: seed, deal: { d in
            try d.select(shape: [n]); try d.selectRows(bitShape: [n], width: 3); try d.relu(shape: [n])
        }) { p in
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: [n])
            let sa = p.share(p.id == .server ? a : nil, owner: .server, shape: [n])
            let sb = p.share(p.id == .server ? b : nil, owner: .server, shape: [n])
            let sbit = p.share(p.id == .client ? bits : nil, owner: .client, shape: [n])
            let sra = p.share(p.id == .server ? rowsA : nil, owner: .server, shape: [n, 3])
            let srb = p.share(p.id == .server ? rowsB : nil, owner: .server, shape: [n, 3])
            let sel = try p.select(sbit, sa, sb)
            let rowSel = try p.selectRows(sbit, sra, srb)
            let c0 = (p.rounds, p.peer.bytesSent)
            let r = try p.relu(sx)
            let c1 = (p.rounds, p.peer.bytesSent)
            return (try p.revealToBoth([sel, rowSel, r]), c0, c1)
        }
        #expect(r0.0 == r1.0)
        #expect(r0.0[0].data == (0..<n).map { bits.data[$0] == 1 ? a.data[$0] : b.data[$0] }, "select, seed \(seed)")
        #expect(r0.0[1].data == (0..<(3 * n)).map { bits.data[$0 / 3] == 1 ? rowsA.data[$0] : rowsB.data[$0] }, "selectRows, seed \(seed)")
        #expect(r0.0[2].data == x.data.map { Int64(bitPattern: $0) >= 0 ? $0 : 0 }, "relu, seed \(seed)")
        #expect(r0.1 == (2, 8 * (2 * n + n + 3 * n)) && r1.1 == r0.1, "select costs \(r0.1)")
        #expect(r0.2.0 == 4 && r0.2.1 - r0.1.1 == 24 * n && r1.2 == r0.2, "relu costs \(r0.2)")
        let headers = Self.headerBytes(rank: 1) + Self.headerBytes(rank: 4) + 2 * Self.headerBytes(rank: 1)
        #expect(offline == Self.seedRecordBytes + 2 * headers + 8 * n + 8 * 3 * n + (2 * 1536 + 8 + 8) * n, "offline \(offline)")
    }

    /// Plaintext max and first-argmax of each row.
    func reference(_ x: RingTensor) -> (max: [UInt64], index: [Int]) {
        let n = x.shape.last!, rows = x.count / n
        var mx: [UInt64] = [], idx: [Int] = []
        for r in 0..<rows {
            let row = (0..<n).map { Int64(bitPattern: x.data[r * n + $0]) }
            let m = row.max()!
            mx.append(UInt64(bitPattern: m)); idx.append(row.firstIndex(of: m)!)
        }
        return (mx, idx)
    }

    @Test(arguments: [([3, 13], 131), ([2, 2, 16], 132), ([5, 1], 133), ([4, 2], 134), ([1, 100], 135)] as [([Int], UInt64)])
    func maxAndArgmax(shape: [Int], seed: UInt64) throws {
        var rng = TestData(seed: seed)
        let count = RingTensor.count(of: shape), n = shape.last!, rows = count / n
        // Quantised values so ties happen; a few boundary magnitudes (|x| < 2^62).
        var data = rng.doubles(count, range: 8).map { fp.encode(($0).rounded()) }
        if count > 4 { data[0] = (1 << 62) - 1; data[1] = 0 &- (1 << 62) + 1; data[2] = 0; data[3] = UInt64.max }
        let x = RingTensor(shape: shape, data: data)
        let levels = TournamentPlan(length: n).levels
        let (r0, r1, _) = try runTwoParties(seed: seed, deal: { d in try d.max(shape: shape); try d.argmax(shape: shape) }) { p in
            let sx = p.share(p.id == .server ? x : nil, owner: .server, shape: shape)
            let m = try p.max(sx)
            let c0 = (p.rounds, p.peer.bytesSent)
            let (m2, oh) = try p.argmax(sx)
            let c1 = (p.rounds, p.peer.bytesSent)
            let idx = try p.revealIndex(oh, to: .client)
            return (try p.revealToBoth([m, m2, oh]), idx, c0, c1)
        }
        let ref = reference(x)
        #expect(r0.0 == r1.0)
        #expect(r0.0[0].data == ref.max && r0.0[1].data == ref.max, "max, seed \(seed)")
        let oneHot = (0..<count).map { UInt64($0 % n == ref.index[$0 / n] ? 1 : 0) }
        #expect(r0.0[2].data == oneHot, "one-hot, seed \(seed)")
        #expect(r0.1 == ref.index && r1.1 == nil, "revealed index, seed \(seed)")
        // Costs: 2 rounds per level; bytes per level as documented.
        let plan = TournamentPlan(length: n)
        let maxBytes = (0..<levels).reduce(0) { $0 + 24 * rows * (plan.counts[$1] / 2) }
        let argBytes = (0..<levels).reduce(0) { $0 + 8 * rows * (plan.counts[$1] / 2) * (3 + 2 << $1) }
        #expect(r0.2 == (2 * levels, maxBytes) && r1.2 == r0.2, "max costs \(r0.2), seed \(seed)")
        #expect(r0.3 == (4 * levels, maxBytes + argBytes) && r1.3 == r0.3, "argmax costs \(r0.3), seed \(seed)")
    }

    @Test func argmaxViewIsUniform() throws {
        let seed: UInt64 = 141
        var rng = TestData(seed: seed)
        let shape = [64, 32]
        let x = fp.encode(rng.doubles(64 * 32, range: 100), shape: shape)
        let (r0, r1, _) = try runTwoParties(seed: seed, deal: { d in try d.argmax(shape: shape) }) { p in
            let sx = p.share(p.id == .server ? x : nil, owner: .server, shape: shape)
            _ = try p.argmax(sx)
            return p.peer.connection.receivedLog!
        }
        expectUniformView(r0, plaintext: x.data, seed: seed)
        expectUniformView(r1, plaintext: x.data, seed: seed)
    }

    @Test func wrongRecordThrowsExpectedFound() throws {
        #expect {
            _ = try runTwoParties(seed: 151, deal: { d in try d.triple(shape: [5]) }) { p in
                try p.drelu(p.share(p.id == .client ? RingTensor(shape: [5]) : nil, owner: .client, shape: [5]))
            }
        } throws: { error in
            guard case let DealerError.unexpectedRecord(_, expected, found, index) = error else { return false }
            return expected == "dreluKey[5]" && found == "triple[5]" && index == 1
        }
        #expect {
            _ = try runTwoParties(seed: 152, deal: { d in try d.dreluKey(shape: [4]) }) { p in
                try p.relu(p.share(p.id == .client ? RingTensor(shape: [5]) : nil, owner: .client, shape: [5]))
            }
        } throws: { error in
            guard case let DealerError.unexpectedRecord(_, expected, found, _) = error else { return false }
            return expected == "dreluKey[5]" && found == "dreluKey[4]"
        }
        // max dealt, argmax consumed: the second record is a triple, not a row-select triple.
        #expect {
            _ = try runTwoParties(seed: 153, deal: { d in try d.max(shape: [2, 4]) }) { p in
                try p.argmax(p.share(p.id == .client ? RingTensor(shape: [2, 4]) : nil, owner: .client, shape: [2, 4])).max
            }
        } throws: { error in
            guard case let DealerError.unexpectedRecord(_, expected, found, _) = error else { return false }
            return expected == "matmulTriple[4, 1, 1, 3]" && found == "triple[2, 2]"
        }
    }
}
