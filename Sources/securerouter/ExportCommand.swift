import ArgumentParser
import Foundation
import Deployment
import Router

/// `export`: one HDF5 bundle with the pool, the router and the cost table (DESIGN §2, §4).
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write one bundle (.h5) with every pool member, the router and the predicted cost table.",
        discussion: """
            Reads <pool>/pool_summary.json and the members' checkpoints, and the router written by fit-router \
            (its config names the members, in its output order). Writes, atomically: /models/<name>/ per \
            member (config, weights, tokenizer, as a single-model checkpoint), /router (config and weights), \
            /cost (online bytes, rounds, LAN and WAN seconds per length bucket, from the cost model) and the \
            root attributes kind, format_version, best_member and content_hash (SHA-256 of every config and \
            weight). `securerouter inspect BUNDLE` shows it; h5py reads it (docs/checkpoint-format.md). \
            secure-eval --bundle BUNDLE --routing reveal|oblivious|model:NAME runs it under MPC, and \
            predict --bundle BUNDLE routes in plaintext.

            Also writes the bundle's public description, <out without .h5>.public.json (member names and \
            shapes, router shape and costs, vocabulary, content hash; no weight), for the clients of a \
            `party` deployment (docs/deploy.md); not when the members use different fractional bits (a \
            deployment runs one fixed point; secure-eval runs such a bundle with --frac-bits).
            """)

    @Option(help: "A train-pool output directory (with pool_summary.json).") var pool: String
    @Option(help: "The router file written by fit-router (default <pool>/router.h5).") var router: String?
    @Option(help: "Output bundle (.h5).") var out: String
    @OptionGroup var json: JSONOutputOptions

    func run() throws {
        let routerPath = router ?? URL(fileURLWithPath: pool).appendingPathComponent("router.h5").path
        let s = try PoolBundle.export(poolDir: URL(fileURLWithPath: pool), routerFile: routerPath, to: out)
        // A party deployment runs one fixed point; a pool whose members differ (e.g. a 32-bit member at 12
        // fractional bits) still routes under secure-eval --frac-bits, so the bundle is kept and only its
        // public description is left out.
        let fracBits = try PoolBundle.publicPart(out).shapes.map(\.fracBits)
        let publicPath: String? = Set(fracBits).count == 1 ? Self.publicPath(of: out) : nil
        if let publicPath { try DeploymentManifest(bundle: out).write(to: publicPath) }
        if !json.usesStdout {
            print("wrote \(out): \(s.members.count) models (\(s.members.joined(separator: ", "))), router, cost table; "
                  + "best member \(s.bestMember); \(String(format: "%.1f", Double(s.bytes) / 1e6)) MB; content hash \(s.contentHash)")
            if let publicPath { print("wrote \(publicPath): the public description for party clients (no weights)") }
        }
        if publicPath == nil {
            printErr("export: warning: no public description written: the members use different fractional bits (\(fracBits)) "
                     + "and a party deployment runs one fixed point; secure-eval runs this bundle with --frac-bits \(fracBits.min()!)")
        }
        try json.write(["file": out, "public": publicPath ?? NSNull(), "models": s.members, "best_member": s.bestMember,
                        "content_hash": s.contentHash, "bytes": s.bytes])
    }

    /// `bundle.h5` → `bundle.public.json`.
    static func publicPath(of bundle: String) -> String {
        (bundle.hasSuffix(".h5") ? String(bundle.dropLast(3)) : bundle) + ".public.json"
    }
}
