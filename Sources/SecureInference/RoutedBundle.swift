import Checkpoint
import Foundation
import MPC

/// The server's private inputs of a `RoutedBertProgram`, read from a bundle (DESIGN §4): each pool
/// member from `/models/<name>`, the router from `/router`.
public struct RoutedBundle: Sendable {
    public var members: [SecureBertWeights]
    public var shapes: [SecureBertShape]
    public var router: SecureRouterWeights

    /// Reads the members `expected.names` and the router of `path`, checking each against the session's
    /// public description.
    /// - Throws: `SecureInferenceError` (or the checkpoint's own errors) naming the file and the mismatch.
    public static func read(_ path: String, expected p: RoutedBertProgram) throws -> RoutedBundle {
        guard FileManager.default.fileExists(atPath: path) else { throw SecureInferenceError("no such bundle: \(path)") }
        let members = try zip(p.names, p.members).map { name, shape in
            try SecureBertWeights(checkpoint: "\(path)::models/\(name)", expected: shape)
        }
        let stored = try ModelCheckpoint.read(from: path, group: "/router")
        let router = try SecureRouterWeights(stored: stored.weights.mapValues { ($0.shape, $0.data) }, members: p.members.count)
        let features = p.router.featureCount(p.members[p.router.featureMember])
        guard router.features == features, router.hidden == p.router.hidden else {
            throw SecureInferenceError("\(path): the router takes \(router.features) features through \(router.hidden) hidden units, "
                                       + "the session expects \(features) and \(p.router.hidden)")
        }
        return RoutedBundle(members: members, shapes: p.members, router: router)
    }

    /// `m{j}.`-prefixed member inputs (`SecureBertWeights.ringInputs`) and the router's.
    public func ringInputs(rows: Int, fixedPoint: FixedPoint) -> [String: RingTensor] {
        var out = router.ringInputs(fixedPoint: fixedPoint)
        for (j, (w, shape)) in zip(members, shapes).enumerated() {
            for (k, v) in w.ringInputs(shape, rows: rows) { out["m\(j).\(k)"] = v }
        }
        return out
    }
}
