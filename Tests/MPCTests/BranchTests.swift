import Foundation
import Testing
@testable import MPC

/// A branch on an opened value: the server's secret choice is opened to both parties, the dealer deals
/// all three alternatives without knowing it, the parties run one and skip the others, and the ops
/// after the branch still find their records.
struct BranchProgram: SecureProgram, Equatable {
    static let name = "branch-test"
    var n = 6

    func run(on b: some SecureBackend) throws -> [UInt64]? {
        let x = try b.input("x", owner: .client, shape: [n])
        let choice = try b.input("choice", owner: .server, shape: [1])
        let opened = try b.revealToBoth(choice).map { Int($0.data[0]) }
        let y = try b.branches(3, chosen: opened) { j -> SecureTensor in
            switch j {
            case 0: return try b.mul(x, x)
            case 1: return try b.relu(b.square(x))
            default: return try b.tanh(x)
            }
        }
        // Dealer: y is nil; deal the op after the branch on a placeholder of the same shape.
        let after = try b.mul(y ?? x, x)
        return try b.reveal(after, to: .client)?.data
    }

    func syntheticInputs(for party: PartyID, seed: UInt64) -> [String: RingTensor] { [:] }
}

@Suite struct BranchTests {
    let fp = FixedPoint()

    @Test(arguments: [0, 1, 2])
    func chosenAlternativeRunsAndStreamsStayInStep(choice: Int) throws {
        let xs = [-1.5, -0.25, 0, 0.5, 1.25, 2]
        let p = BranchProgram()
        let r = try Session.runInMemory(p, clientInputs: ["x": fp.encode(xs, shape: [6])],
                                        serverInputs: ["choice": RingTensor(shape: [1], data: [UInt64(choice)])],
                                        options: SessionOptions(seeds: .insecureTest(9)))
        let got = fp.decode(RingTensor(shape: [6], data: try #require(r.client.output ?? nil)))
        let ref = xs.map { x -> Double in
            let y = [x * x, Swift.max(0, x * x), Foundation.tanh(x)][choice]
            return y * x
        }
        #expect(maxAbsDiff(got, ref) < 5e-3, "choice \(choice): \(got) vs \(ref)")
        // Offline: the dealer dealt every alternative, so both runs receive the same offline bytes
        // whatever the choice (the dealer's view and the offline traffic do not depend on it).
        let other = try Session.runInMemory(p, clientInputs: ["x": fp.encode(xs, shape: [6])],
                                            serverInputs: ["choice": RingTensor(shape: [1], data: [UInt64((choice + 1) % 3)])],
                                            options: SessionOptions(seeds: .insecureTest(9)))
        #expect(r.server.offlineBytes == other.server.offlineBytes && r.client.offlineBytes == other.client.offlineBytes)
    }

    @Test func anOpenedChoiceOutsideTheAlternativesIsAnError() throws {
        #expect(throws: (any Error).self) {
            _ = try Session.runInMemory(BranchProgram(), clientInputs: ["x": fp.encode([Double](repeating: 0, count: 6), shape: [6])],
                                        serverInputs: ["choice": RingTensor(shape: [1], data: [7])],
                                        options: SessionOptions(seeds: .insecureTest(9)))
        }
    }
}
