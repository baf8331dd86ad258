import ArgumentParser
import Foundation
import MPC

/// `keygen`: a long-term identity for one `party` process.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Create an Ed25519 identity key pair for a party process (NAME.key, private; NAME.pub, to share).",
        discussion: """
            Each process of a deployment (client, server, dealer) has its own key. Give each process its .key \
            with --key and the .pub files of the processes it talks to with --trust (a file may hold several \
            .pub lines, e.g. all clients' keys). Connections from keys that are not trusted are refused. The \
            private key is written with mode 0600 and never overwritten. See docs/deploy.md.
            """)

    @Option(help: "Name of the key (used in the file names, logs and errors), e.g. server, dealer, alice.") var name: String
    @Option(help: "Directory to write NAME.key and NAME.pub into.") var outDir = "."

    func validate() throws {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw ValidationError("--name must be letters, digits, '-', '_' or '.', not '\(name)'")
        }
    }

    func run() throws {
        let dir = URL(fileURLWithPath: outDir)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw ValidationError("--out-dir \(outDir) is not a directory")
        }
        let key = IdentityKey(generatingNamed: name)
        let keyPath = dir.appendingPathComponent("\(name).key").path, pubPath = dir.appendingPathComponent("\(name).pub").path
        try key.write(privateTo: keyPath, publicTo: pubPath)
        print("wrote \(keyPath) (private, keep it on this host) and \(pubPath) (public); fingerprint \(key.publicIdentity.fingerprint)")
    }
}
