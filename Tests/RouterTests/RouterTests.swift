import Foundation
import Testing
import Tensor
@testable import Router

/// Issue 6: the router's decision rule, lambda choice, cross-fitting and utility predictor.
struct RouterTests {
    /// Two members: a cheap one right on "easy" queries only, an expensive one always right.
    static func problem(n: Int) -> (features: [[Float]], correct: [[Bool]], costs: [[Double]]) {
        let g = SeededGenerator(seed: 3)
        var f = [[Float]](), c = [[Bool]](), k = [[Double]]()
        for i in 0..<n {
            let easy = i % 3 != 0
            f.append([easy ? 1 : -1, g.nextGaussian() * 0.3, g.nextGaussian()])
            c.append([easy, true])
            k.append([0.1, 1.0])
        }
        return (f, c, k)
    }

    @Test func decisionRuleTradesUtilityForCost() {
        #expect(DecisionRule.choose(utilities: [0.7, 0.9], costs: [0.1, 1.0], lambda: 0) == 1)
        #expect(DecisionRule.choose(utilities: [0.7, 0.9], costs: [0.1, 1.0], lambda: 1) == 0)   // 0.6 > -0.1
        #expect(DecisionRule.choose(utilities: [0.7, 0.9], costs: [0.1, 1.0], lambda: 0.2) == 1) // 0.68 < 0.7
    }

    @Test func evaluationOracleAndLambdaChoice() {
        let (_, correct, costs) = Self.problem(n: 30)
        // Perfect utilities: the router can match the expensive member's accuracy at a third of its cost.
        let perfect = correct.map { $0.map { $0 ? 0.99 : 0.01 } }
        let data = RoutingData(correct: correct, costs: costs, utilities: perfect)
        #expect(data.member(0).accuracy == 20.0 / 30 && data.member(1).accuracy == 1)
        let oracle = data.oracle()
        #expect(oracle.accuracy == 1 && abs(oracle.seconds - (20 * 0.1 + 10 * 1.0) / 30) < 1e-12)
        let (lambda, sweep) = LambdaChoice.choose(data, maxDrop: 0.005)
        let chosen = data.evaluate(lambda: lambda)
        #expect(chosen.accuracy == 1 && abs(chosen.seconds - oracle.seconds) < 1e-12, "lambda \(lambda): \(chosen)")
        #expect(chosen.histogram == [20, 10] && sweep.count == LambdaChoice.grid.count)
        // A huge lambda sends everything to the cheap member.
        #expect(data.evaluate(lambda: 1000).histogram == [30, 0])
    }

    @Test func crossFittingNeverPredictsARowFromItself() {
        var seen = [Int: [Int]]()
        let out = CrossFitting.outOfFold(count: 10, folds: 3) { train in
            { held in held.map { i in seen[i] = train; return [Double(i)] } }
        }
        #expect(out.map { $0[0] } == (0..<10).map(Double.init))
        for (i, train) in seen { #expect(!train.contains(i) && train.count >= 6) }
    }

    @Test func utilityNetworkLearnsWhoIsRightAndFoldsItsScaling() {
        let (features, correct, costs) = Self.problem(n: 300)
        let net = UtilityNetwork(features: 3, hidden: 16, members: 2, seed: 1)
        net.train(features: features, correct: correct, epochs: 300, learningRate: 1e-2, weightDecay: 0)
        let u = net.utilities(features)
        for (ui, ci) in zip(u, correct) {
            #expect(ci[0] ? ui[0] > 0.8 : ui[0] < 0.2, "cheap member utility \(ui[0]) when right = \(ci[0])")
            #expect(ui[1] > 0.8)
        }
        let folded = net.folded()
        let v = folded.utilities(features)
        let diff = zip(u, v).map { zip($0, $1).map { abs($0 - $1) }.max()! }.max()!
        #expect(diff < 1e-4, "folding changed utilities by \(diff)")
        // With these utilities the routed pipeline matches the expensive member at a fraction of its cost.
        let routed = RoutingData(correct: correct, costs: costs, utilities: v).evaluate(lambda: 0.3)
        #expect(routed.accuracy == 1 && routed.seconds < 0.5)
    }

    @Test func plotHasEveryElement() {
        let point = SweepPoint(lambda: 0.1, accuracy: 0.8, seconds: 0.3, histogram: [1, 1])
        let r = RouterReport(task: "mr", members: [.init(name: "a", devAccuracy: 0.7, testAccuracy: 0.7, testSeconds: 0.1, seconds: [:]),
                                                   .init(name: "b", devAccuracy: 0.85, testAccuracy: 0.84, testSeconds: 1, seconds: [:])],
                             featureMember: "a", featureLayers: 1, network: "lan", lambda: 0.1, maxDrop: 0.005, folds: 5,
                             devSweep: [point], testSweep: [point], chosen: point, oracleAccuracy: 0.9, oracleSeconds: 0.2, bestMember: "b")
        let svg = SweepPlot.svg(r)
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        for needle in [">a<", ">b<", "chosen λ=0.1", "oracle router", "<polyline"] { #expect(svg.contains(needle), "\(needle)") }
    }

    /// Platt scaling recovers the slope and offset of over-confident logits, and `calibrate` applies them
    /// to the stored network's outputs.
    @Test func plattScalingRecoversAndCalibrates() {
        let g = SeededGenerator(seed: 12)
        var z = [Double](), right = [Bool]()
        for _ in 0..<4000 {
            let x = Double(g.nextGaussian()) * 4
            z.append(x)
            right.append(Double(g.nextFloat()) < 1 / (1 + Foundation.exp(-(0.5 * x - 0.3))))
        }
        let (a, b) = PlattScaling.fit(logits: z, right: right)
        #expect(abs(a - 0.5) < 0.08 && abs(b + 0.3) < 0.15, "a \(a), b \(b)")
        // A very over-confident predictor (|logits| near 25, as an MLP fitted on few rows gives) that carries
        // little information: 85 % right whatever it says. The fit must shrink the slope towards 0 and find
        // the base rate (b ≈ logit 0.85 = 1.7), not run off to its bounds.
        var z2 = [Double](), right2 = [Bool]()
        for i in 0..<850 {
            let x = (i % 3 == 0 ? -1.0 : 1.0) * (20 + Double(g.nextFloat()) * 8)
            z2.append(x)
            right2.append(Double(g.nextFloat()) < (x > 0 ? 0.88 : 0.79))
        }
        let (a2, b2) = PlattScaling.fit(logits: z2, right: right2)
        let rate = Double(right2.filter { $0 }.count) / 850
        let mean = z2.indices.map { 1 / (1 + Foundation.exp(-(a2 * z2[$0] + b2))) }.reduce(0, +) / 850
        #expect(a2 < 0.1 && abs(mean - rate) < 0.01, "a \(a2), b \(b2): mean calibrated utility \(mean) vs rate \(rate)")
        let net = UtilityNetwork(features: 3, hidden: 4, members: 2, seed: 1)
        let x: [[Float]] = [[0.5, -1, 2], [1, 1, -0.3]]
        let before = net.utilities(x)
        net.calibrate([(a: 0.5, b: -0.3), (a: 2, b: 0.1)])
        let after = net.utilities(x)
        for (u0, u1) in zip(before, after) {
            let z0 = u0.map(PlattScaling.logit), z1 = u1.map(PlattScaling.logit)
            #expect(abs(z1[0] - (0.5 * z0[0] - 0.3)) < 1e-4 && abs(z1[1] - (2 * z0[1] + 0.1)) < 1e-4, "\(z0) -> \(z1)")
        }
    }
}
