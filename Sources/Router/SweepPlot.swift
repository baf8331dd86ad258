import Foundation

/// Test accuracy against mean secure seconds per query, as an SVG written by the toolkit itself: each
/// pool member alone, the router's lambda sweep, the chosen lambda and the oracle router.
public enum SweepPlot {
    public static func svg(_ r: RouterReport, width: Double = 640, height: Double = 440) -> String {
        let pad = (left: 70.0, right: 20.0, top: 40.0, bottom: 55.0)
        var points = r.members.map { ($0.testSeconds, $0.testAccuracy) } + r.testSweep.map { ($0.seconds, $0.accuracy) }
        points.append((r.oracleSeconds, r.oracleAccuracy))
        let xs = points.map(\.0), ys = points.map(\.1)
        let (x0, x1) = (0.0, (xs.max() ?? 1) * 1.08)
        let (y0, y1) = (((ys.min() ?? 0) - 0.02) , min(1, (ys.max() ?? 1) + 0.02))
        func px(_ x: Double) -> Double { pad.left + (x - x0) / max(x1 - x0, 1e-9) * (width - pad.left - pad.right) }
        func py(_ y: Double) -> Double { height - pad.bottom - (y - y0) / max(y1 - y0, 1e-9) * (height - pad.top - pad.bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(f(width / 2))\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(r.task): test accuracy vs mean secure seconds per query (\(r.network), predicted)</text>\n"
        // Axes and ticks.
        s += "<line x1=\"\(f(pad.left))\" y1=\"\(f(py(y0)))\" x2=\"\(f(width - pad.right))\" y2=\"\(f(py(y0)))\" stroke=\"black\"/>\n"
        s += "<line x1=\"\(f(pad.left))\" y1=\"\(f(py(y0)))\" x2=\"\(f(pad.left))\" y2=\"\(f(pad.top))\" stroke=\"black\"/>\n"
        for k in 0...5 {
            let x = x0 + (x1 - x0) * Double(k) / 5, y = y0 + (y1 - y0) * Double(k) / 5
            s += "<text x=\"\(f(px(x)))\" y=\"\(f(height - pad.bottom + 18))\" text-anchor=\"middle\">\(String(format: "%.2f", x))</text>\n"
            s += "<text x=\"\(f(pad.left - 6))\" y=\"\(f(py(y) + 4))\" text-anchor=\"end\">\(String(format: "%.1f", y * 100))</text>\n"
        }
        s += "<text x=\"\(f((pad.left + width - pad.right) / 2))\" y=\"\(f(height - 12))\" text-anchor=\"middle\">seconds per query</text>\n"
        s += "<text x=\"16\" y=\"\(f((pad.top + height - pad.bottom) / 2))\" transform=\"rotate(-90 16 \(f((pad.top + height - pad.bottom) / 2)))\" text-anchor=\"middle\">test accuracy (%)</text>\n"
        // The sweep as a line, members as labelled squares, chosen and oracle as marked points.
        let sweep = r.testSweep.sorted { $0.seconds < $1.seconds }.map { "\(f(px($0.seconds))),\(f(py($0.accuracy)))" }.joined(separator: " ")
        s += "<polyline points=\"\(sweep)\" fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\"/>\n"
        for p in r.testSweep { s += "<circle cx=\"\(f(px(p.seconds)))\" cy=\"\(f(py(p.accuracy)))\" r=\"2.5\" fill=\"#1f77b4\"/>\n" }
        for m in r.members {
            s += "<rect x=\"\(f(px(m.testSeconds) - 5))\" y=\"\(f(py(m.testAccuracy) - 5))\" width=\"10\" height=\"10\" fill=\"#ff7f0e\"/>\n"
            s += "<text x=\"\(f(px(m.testSeconds) + 8))\" y=\"\(f(py(m.testAccuracy) - 8))\">\(m.name)</text>\n"
        }
        s += "<circle cx=\"\(f(px(r.chosen.seconds)))\" cy=\"\(f(py(r.chosen.accuracy)))\" r=\"7\" fill=\"none\" stroke=\"#d62728\" stroke-width=\"2.5\"/>\n"
        s += "<text x=\"\(f(px(r.chosen.seconds) + 10))\" y=\"\(f(py(r.chosen.accuracy) + 16))\" fill=\"#d62728\">chosen λ=\(String(format: "%.3g", r.lambda))</text>\n"
        s += "<path d=\"M \(f(px(r.oracleSeconds))) \(f(py(r.oracleAccuracy) - 7)) l 7 12 l -14 0 z\" fill=\"#2ca02c\"/>\n"
        s += "<text x=\"\(f(px(r.oracleSeconds) + 10))\" y=\"\(f(py(r.oracleAccuracy) + 4))\" fill=\"#2ca02c\">oracle router</text>\n"
        // Legend.
        s += "<text x=\"\(f(width - pad.right - 200))\" y=\"\(f(height - pad.bottom - 40))\" fill=\"#1f77b4\">● router, lambda sweep</text>\n"
        s += "<text x=\"\(f(width - pad.right - 200))\" y=\"\(f(height - pad.bottom - 24))\" fill=\"#ff7f0e\">■ pool member alone</text>\n"
        return s + "</svg>\n"
    }
}
