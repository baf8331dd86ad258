import Testing

/// Elementwise `|a - e| <= atol + rtol * |e|`; on failure reports the heads of
/// both arrays and the max difference, at the caller's source location.
public func expectClose(
    _ actual: [Float], _ expected: [Float], rtol: Float = 1e-5, atol: Float = 1e-6, _ what: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard actual.count == expected.count else {
        Issue.record("\(what): count \(actual.count) != expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var maxDiff: Float = 0, worst = 0, ok = true
    for i in actual.indices {
        let d = abs(actual[i] - expected[i])
        if d > maxDiff { maxDiff = d; worst = i }
        if !(d <= atol + rtol * abs(expected[i])) { ok = false }
    }
    if !ok {
        Issue.record(
            """
            \(what): max difference \(maxDiff) at index \(worst) (actual \(actual[worst]), expected \(expected[worst]))
              expected: \(expected.prefix(8))
              actual:   \(actual.prefix(8))
            """, sourceLocation: sourceLocation)
    }
}
