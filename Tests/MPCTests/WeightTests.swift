import Foundation
import Testing
@testable import MPC

/// Server-owned weights masked once per session (`loadWeight` + `matmulWeight`).
@Suite struct WeightTests {
    let fp = FixedPoint()
    var ulp: Double { 1 / Double(1 << fp.fracBits) }

    @Test(arguments: [UInt64(41), 42])
    func maskedWeightMatmulMatchesPlaintextAndCostsOnlyTheActivations(seed: UInt64) throws {
        var rng = TestData(seed: seed)
        let (m, k, n) = (16, 48, 40)
        let xs = rng.doubles(2 * m * k, range: 4), ws = rng.doubles(k * n, range: 2)
        let x = fp.encode(xs, shape: [2, m, k]), w = fp.weights.encode(ws, shape: [k, n])
        let (r0, r1, offline) = try runTwoParties(seed: seed, deal: { d in
            let h = try d.maskWeight(k: k, n: n)
            try d.maskedWeightTriple(handle: h, m: 2 * m, k: k, n: n)  // query 1: [2, m, k]
            try d.bitProduct(count: 2 * m * n)
            try d.maskedWeightTriple(handle: h, m: m, k: k, n: n)      // query 2: [m, k]
            try d.bitProduct(count: m * n)
        }) { p in
            let weight = try p.loadWeight(p.id == .server ? w : nil, k: k, n: n)
            let setupLog = p.peer.connection.receivedLog!
            p.peer.resetCounters()
            p.peer.connection.receivedLog = []
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: x.shape)
            let z = try p.matmulWeight(sx, weight)
            let (rounds, sent) = (p.rounds, p.peer.bytesSent)
            let queryLog = p.peer.connection.receivedLog!
            let sx2 = p.share(p.id == .client ? x.reshaped([2 * m, k]).prefix(rows: m) : nil, owner: .client, shape: [m, k])
            let z2 = try p.matmulWeight(sx2, weight)
            return (try p.revealToBoth([z, z2]), rounds, sent, setupLog, queryLog)
        }
        // Against plaintext of the encoded inputs (W on the coarser weight grid): only the final truncation
        // (±1 ulp) and the decoding of the result differ.
        let (xd, wd) = (fp.decode(x), fp.weights.decode(w))
        var ref = [Double](repeating: 0, count: 2 * m * n)
        for i in 0..<(2 * m) { for p in 0..<k { for j in 0..<n { ref[i * n + j] += xd[i * k + p] * wd[p * n + j] } } }
        let got = fp.decode(r0.0[0])
        #expect(r0.0 == r1.0)
        #expect(r0.0[0].shape == [2, m, n] && r0.0[1].shape == [m, n])
        #expect(maxAbsDiff(got, ref) <= 2 * ulp, "error \(maxAbsDiff(got, ref)), seed \(seed)")
        #expect(maxAbsDiff(fp.decode(r0.0[1]), Array(got[0..<m * n])) <= 2 * ulp)
        // Cost of a query: the client's masked activations (one way), then the exact truncation's bits.
        let bits = 8 * ((2 * m * n + 63) / 64)
        #expect(r0.1 == 2 && r1.1 == 2)
        #expect(r0.2 == 8 * 2 * m * k + bits && r1.2 == bits)
        #expect(offline > 16 * (2 * m * n + m * n) && offline < 16 * (2 * m * n + m * n) + 1024)
        // Views: the client's W − B and the server's X_0 − A look uniform and hold no plaintext.
        expectUniformView(r0.3, plaintext: w.data, seed: seed)
        expectUniformView(r1.4, plaintext: x.data, seed: seed)
    }

    /// `lookupRows`: embedding rows at the client's private ids are exact, cost one client → server
    /// message of 8·S·V bytes, and the server's view (E = X − A) is uniform with no id or one-hot in it.
    @Test(arguments: [UInt64(43), 44])
    func tableLookupIsExactAndHidesTheIds(seed: UInt64) throws {
        var rng = TestData(seed: seed)
        let (v, h, s) = (97, 24, 40)
        let table = fp.encode(rng.doubles(v * h, range: 3), shape: [v, h])
        let ids = (0..<s).map { i in i < 3 ? [0, v - 1, 7][i] : Int(rng.next() % UInt64(v)) }
        let (r0, r1, offline) = try runTwoParties(seed: seed, deal: { d in
            let handle = try d.maskWeight(k: v, n: h)
            try d.maskedWeightGroupTriple(handles: [handle], m: s, k: v, n: h)
        }) { p in
            let w = try p.loadWeight(p.id == .server ? table : nil, k: v, n: h, keepMask: true)
            p.peer.resetCounters()
            p.peer.connection.receivedLog = []
            let rows = try p.lookupRows(p.id == .client ? ids : nil, count: s, table: w)
            let (rounds, sent, log) = (p.rounds, p.peer.bytesSent, p.peer.connection.receivedLog!)
            return (try p.revealToBoth(rows), rounds, sent, log)
        }
        let expected = ids.flatMap { Array(table.data[($0 * h)..<(($0 + 1) * h)]) }
        #expect(r0.0.data == expected && r1.0.data == expected, "rows must be exact")
        #expect(r0.1 == 1 && r1.1 == 1)
        #expect(r0.2 == 8 * s * v && r1.2 == 0)
        #expect(offline >= 8 * s * h && offline < 8 * s * h + 1024)
        // The one-hot X (as ring values) and the ids must not show on the wire; E looks uniform.
        let oneHot = ids.flatMap { id in (0..<v).map { UInt64($0 == id ? 1 : 0) } }
        expectUniformView(r1.3, plaintext: oneHot.filter { $0 != 0 } + ids.map(UInt64.init).filter { $0 > 1 }, seed: seed)
    }

    @Test func lookupOutsideTheTableIsAnError() throws {
        #expect(throws: ProtocolError.self) {
            _ = try runTwoParties(seed: 6, deal: { d in
                let handle = try d.maskWeight(k: 4, n: 3)
                try d.maskedWeightGroupTriple(handles: [handle], m: 1, k: 4, n: 3)
            }) { p in
                let w = try p.loadWeight(p.id == .server ? RingTensor(shape: [4, 3]) : nil, k: 4, n: 3, keepMask: true)
                return try p.lookupRows(p.id == .client ? [4] : nil, count: 1, table: w)
            }
        }
    }

    @Test func mismatchedActivationShapeIsAnError() throws {
        #expect(throws: ProtocolError.self) {
            _ = try runTwoParties(seed: 5, deal: { d in _ = try d.maskWeight(k: 4, n: 3) }) { p in
                let weight = try p.loadWeight(p.id == .server ? RingTensor(shape: [4, 3]) : nil, k: 4, n: 3)
                return try p.matmulWeight(ArithmeticShare(RingTensor(shape: [2, 5])), weight)
            }
        }
    }
}

extension RingTensor {
    /// The first `rows` rows of a 2-D tensor.
    fileprivate func prefix(rows: Int) -> RingTensor {
        RingTensor(shape: [rows, shape[1]], data: Array(data[0..<rows * shape[1]]))
    }
}

/// Select-then-compute (issue 6): a group of server weights of one shape at the online cost of one,
/// and the secret one-hot selection.
@Suite struct WeightGroupTests {
    let fp = FixedPoint()
    var ulp: Double { 1 / Double(1 << fp.fracBits) }

    @Test func groupProductsMatchPlaintextAndCostOneOpening() throws {
        var rng = TestData(seed: 51)
        let (m, k, n, g) = (16, 48, 20, 3)
        let x = fp.encode(rng.doubles(m * k, range: 4), shape: [m, k])
        let ws = (0..<g).map { _ in fp.weights.encode(rng.doubles(k * n, range: 2), shape: [k, n]) }
        let (r0, r1, _) = try runTwoParties(seed: 51, deal: { d in
            let hs = try (0..<g).map { _ in try d.maskWeight(k: k, n: n) }
            try d.maskedWeightGroupTriple(handles: hs, m: m, k: k, n: n)
            try d.bitProduct(count: g * m * n)
        }) { p in
            let weights = try ws.map { try p.loadWeight(p.id == .server ? $0 : nil, k: k, n: n) }
            p.peer.resetCounters()
            p.peer.connection.receivedLog = []
            let sx = p.share(p.id == .client ? x : nil, owner: .client, shape: x.shape)
            let z = try p.matmulWeightGroup(sx, weights)
            let (rounds, sent, log) = (p.rounds, p.peer.bytesSent, p.peer.connection.receivedLog!)
            return (try p.revealToBoth(z), rounds, sent, log)
        }
        #expect(r0.0.shape == [g, m, n] && r0.0 == r1.0)
        let xd = fp.decode(x), got = fp.decode(r0.0)
        for j in 0..<g {
            let wd = fp.weights.decode(ws[j])
            var ref = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for q in 0..<k { for c in 0..<n { ref[i * n + c] += xd[i * k + q] * wd[q * n + c] } } }
            #expect(maxAbsDiff(Array(got[(j * m * n)..<((j + 1) * m * n)]), ref) <= 2 * ulp, "member \(j)")
        }
        // The client's masked activations travel once for the whole group; then the truncation's bits.
        let bits = 8 * ((g * m * n + 63) / 64)
        #expect(r0.1 == 2 && r1.1 == 2 && r0.2 == 8 * m * k + bits && r1.2 == bits)
        expectUniformView([r1.3[0]], plaintext: x.data, seed: 51)
    }

    @Test func groupLookupIsExactForEveryTable() throws {
        var rng = TestData(seed: 52)
        let (v, h, s, g) = (31, 8, 10, 2)
        let tables = (0..<g).map { _ in fp.encode(rng.doubles(v * h, range: 3), shape: [v, h]) }
        let ids = (0..<s).map { _ in Int(rng.next() % UInt64(v)) }
        let (r0, _, _) = try runTwoParties(seed: 52, deal: { d in
            let hs = try (0..<g).map { _ in try d.maskWeight(k: v, n: h) }
            try d.maskedWeightGroupTriple(handles: hs, m: s, k: v, n: h)
        }) { p in
            let ws = try tables.map { try p.loadWeight(p.id == .server ? $0 : nil, k: v, n: h, keepMask: true) }
            p.peer.resetCounters()
            let rows = try p.lookupRowsGroup(p.id == .client ? ids : nil, count: s, tables: ws)
            let sent = p.peer.bytesSent
            return (try p.revealToBoth(rows), sent)
        }
        let expected = tables.flatMap { t in ids.flatMap { Array(t.data[($0 * h)..<(($0 + 1) * h)]) } }
        #expect(r0.0.data == expected && r0.1 == 8 * s * v)
    }

    /// `matmulRaw` of a secret integer one-hot `[g,1,1]` by stacked values `[g,1,n]`: exactly the chosen
    /// row (the selection of `SecureBackend.select`), at 8·g·(1 + n) bytes per party.
    @Test func oneHotSelectionIsExact() throws {
        var rng = TestData(seed: 53)
        let (g, n) = (4, 30)
        let values = fp.encode(rng.doubles(g * n, range: 5), shape: [g, 1, n])
        for chosen in [0, 3] {
            let hot = RingTensor(shape: [g, 1, 1], data: (0..<g).map { UInt64($0 == chosen ? 1 : 0) })
            let (r0, r1, _) = try runTwoParties(seed: 53, deal: { d in try d.matmulTriple(batch: g, m: 1, k: 1, n: n) }) { p in
                let c = p.share(p.id == .client ? hot : nil, owner: .client, shape: hot.shape)
                let x = p.share(p.id == .server ? values : nil, owner: .server, shape: values.shape)
                p.peer.resetCounters()
                let picked = try p.matmulRaw(c, x)
                let sent = p.peer.bytesSent
                return (try p.revealToBoth(picked), sent)
            }
            let rows = r0.0.data
            #expect(Array(rows[(chosen * n)..<((chosen + 1) * n)]) == Array(values.data[(chosen * n)..<((chosen + 1) * n)]))
            #expect(rows.enumerated().allSatisfy { $0.offset / n == chosen || $0.element == 0 })
            #expect(r0.1 == 8 * g * (1 + n) && r1.1 == 8 * g * (1 + n))
        }
    }
}
