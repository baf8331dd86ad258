import Foundation

/// The decision rule: for each query, the member maximising `utility − lambda · cost`, where cost is
/// the member's predicted secure seconds at the query's public length bucket.
public enum DecisionRule {
    /// Index of the chosen member (the first on ties).
    public static func choose(utilities u: [Double], costs c: [Double], lambda: Double) -> Int {
        var best = 0, bestScore = -Double.infinity
        for m in u.indices {
            let s = u[m] - lambda * c[m]
            if s > bestScore { best = m; bestScore = s }
        }
        return best
    }
}

/// Routed accuracy and cost of one lambda on one split.
public struct SweepPoint: Codable, Sendable, Equatable {
    public var lambda: Double
    public var accuracy: Double
    /// Mean predicted seconds per query of the chosen members.
    public var seconds: Double
    /// How many queries went to each member (in pool order).
    public var histogram: [Int]
}

/// One split's routing problem: per query the members' correctness, costs and predicted utilities.
public struct RoutingData {
    public var correct: [[Bool]]
    public var costs: [[Double]]
    public var utilities: [[Double]]

    public init(correct: [[Bool]], costs: [[Double]], utilities: [[Double]]) {
        self.correct = correct
        self.costs = costs
        self.utilities = utilities
    }

    public var count: Int { correct.count }

    /// Routed accuracy, mean cost and histogram at `lambda`.
    public func evaluate(lambda: Double) -> SweepPoint {
        let members = correct.first?.count ?? 0
        var right = 0, seconds = 0.0, hist = [Int](repeating: 0, count: members)
        for i in 0..<count {
            let m = DecisionRule.choose(utilities: utilities[i], costs: costs[i], lambda: lambda)
            if correct[i][m] { right += 1 }
            seconds += costs[i][m]
            hist[m] += 1
        }
        let n = Double(max(count, 1))
        return SweepPoint(lambda: lambda, accuracy: Double(right) / n, seconds: seconds / n, histogram: hist)
    }

    /// Member `m` alone on every query.
    public func member(_ m: Int) -> (accuracy: Double, seconds: Double) {
        let n = Double(max(count, 1))
        return (Double(correct.filter { $0[m] }.count) / n, costs.map { $0[m] }.reduce(0, +) / n)
    }

    /// The mean of each column of `rows` (e.g. each member's mean seconds).
    public static func meanColumns(_ rows: [[Double]]) -> [Double] {
        guard let width = rows.first?.count else { return [] }
        return (0..<width).map { m in rows.map { $0[m] }.reduce(0, +) / Double(rows.count) }
    }

    /// The oracle router: the cheapest member that is right, or the cheapest member when none is.
    public func oracle() -> (accuracy: Double, seconds: Double) {
        var right = 0, seconds = 0.0
        for i in 0..<count {
            let order = costs[i].indices.sorted { costs[i][$0] < costs[i][$1] }
            if let m = order.first(where: { correct[i][$0] }) {
                right += 1
                seconds += costs[i][m]
            } else {
                seconds += costs[i][order[0]]
            }
        }
        let n = Double(max(count, 1))
        return (Double(right) / n, seconds / n)
    }
}

/// Chooses lambda on (cross-fitted) dev data: the least expected cost whose routed accuracy is within
/// `maxDrop` of the best single member's, or 0 (pure utility) when no lambda of the grid reaches it.
public enum LambdaChoice {
    /// The lambdas swept: 0 and 61 log-spaced values from 1e-3 to 1e3 per second.
    public static let grid: [Double] = [0] + (0...60).map { Foundation.pow(10, -3 + Double($0) / 10) }
    /// The same magnitudes with both signs: a negative lambda favours the costlier members, for routers
    /// whose scores already price the cost (co-training's gates learned a cost loss).
    public static let signedGrid: [Double] = grid.dropFirst().reversed().map { -$0 } + grid

    public static func choose(_ dev: RoutingData, maxDrop: Double, grid: [Double] = LambdaChoice.grid) -> (lambda: Double, sweep: [SweepPoint]) {
        let sweep = grid.map { dev.evaluate(lambda: $0) }
        let best = (0..<(dev.correct.first?.count ?? 0)).map { dev.member($0).accuracy }.max() ?? 0
        let ok = sweep.filter { $0.accuracy >= best - maxDrop - 1e-12 }
        let pick = ok.min { ($0.seconds, -$0.lambda) < ($1.seconds, -$1.lambda) }
        return (pick?.lambda ?? 0, sweep)
    }
}

/// K-fold cross-fitting: each fold's utilities come from a predictor trained on the other folds, so
/// the lambda chosen on them sees honest (out-of-sample) utilities.
public enum CrossFitting {
    /// Fold of row `i` (deterministic, interleaved).
    public static func fold(_ i: Int, folds: Int) -> Int { i % folds }

    /// Out-of-fold predictions: `fit(trainRows)` returns a predictor applied to the held-out rows.
    public static func outOfFold(count: Int, folds: Int, fit: ([Int]) -> ([Int]) -> [[Double]]) -> [[Double]] {
        var out = [[Double]](repeating: [], count: count)
        for k in 0..<folds {
            let held = (0..<count).filter { fold($0, folds: folds) == k }
            let train = (0..<count).filter { fold($0, folds: folds) != k }
            let predict = fit(train)
            for (i, u) in zip(held, predict(held)) { out[i] = u }
        }
        return out
    }
}

/// Platt scaling of one member's utilities: `P(right) = σ(a·z + b)` with `z` the predictor's logit, fitted
/// by Newton's method on out-of-fold predictions (cross-fitting keeps them honest). An over-confident
/// predictor (trained on few rows) gets `a < 1`, which makes utilities comparable across members.
public enum PlattScaling {
    /// Bounds of the fitted slope and offset.
    public static let maxSlope = 4.0, maxOffset = 8.0
    /// `(a, b)` minimising the logistic loss of `σ(a·z + b)` against `right`, with a small ridge on
    /// `(a − 1, b)` so that a member that is always right or always wrong stays finite.
    public static func fit(logits z: [Double], right: [Bool], iterations: Int = 100, ridge: Double = 1e-3) -> (a: Double, b: Double) {
        /// The penalised logistic loss at (a, b), computed stably.
        func loss(_ a: Double, _ b: Double) -> Double {
            zip(z, right).reduce(0.5 * ridge * ((a - 1) * (a - 1) + b * b)) { acc, xy in
                let t = (xy.1 ? -1.0 : 1.0) * (a * xy.0 + b)   // loss term log(1 + e^t)
                return acc + (t > 0 ? t + Foundation.log1p(Foundation.exp(-t)) : Foundation.log1p(Foundation.exp(t)))
            }
        }
        // Start from "no information": slope 0 and the base rate, where the Hessian is well conditioned
        // (from a = 1 on logits of |z| ≈ 25 every p is 0 or 1 and Newton's step is huge).
        let rate = (Double(right.filter { $0 }.count) + 0.5) / (Double(right.count) + 1)
        var a = 0.0, b = Foundation.log(rate / (1 - rate)), current = loss(a, b)
        for _ in 0..<iterations {
            var (ga, gb, haa, hab, hbb) = (ridge * (a - 1), ridge * b, ridge, 0.0, ridge)
            for (x, y) in zip(z, right) {
                let p = 1 / (1 + Foundation.exp(-(a * x + b)))
                let r = p - (y ? 1 : 0), w = p * (1 - p)
                ga += r * x; gb += r
                haa += w * x * x; hab += w * x; hbb += w
            }
            let det = haa * hbb - hab * hab
            guard det > 1e-12 else { break }
            let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det)
            // Damped Newton: halve the step until the loss decreases (pure Newton can overshoot and diverge).
            var t = 1.0, next = loss(a - da, b - db)
            while next > current && t > 1e-12 {
                t /= 2
                next = loss(a - t * da, b - t * db)
            }
            guard next <= current else { break }
            a -= t * da; b -= t * db
            let moved = t * (abs(da) + abs(db))
            current = next
            if moved < 1e-9 { break }
        }
        // Bounded: the secure router evaluates tanh on these logits, accurate for |z| up to ~2000; a member
        // right (or wrong) on every dev row would otherwise push a and b without limit.
        return (Swift.min(Swift.max(a, 0.01), maxSlope), Swift.min(Swift.max(b, -maxOffset), maxOffset))
    }

    /// The logit of a probability (clamped away from 0 and 1).
    public static func logit(_ u: Double) -> Double {
        let p = Swift.min(Swift.max(u, 1e-12), 1 - 1e-12)
        return Foundation.log(p / (1 - p))
    }
}
