import ArgumentParser
import Foundation
import MPC
import SecureInference
import Tensor

/// `securerouter mpc-worker`: one process of a secure session (dealer, server or client), started by
/// `SessionLauncher` (hidden: not part of the user-facing CLI).
///
/// stdout: `listening HOST:PORT` first (dealer and server, once bound), then one JSON line, the role's
/// `SessionReport`: `{"role","seconds","online_bytes_sent","online_bytes_received","rounds","offline_bytes","output"}`.
/// stderr: progress, and the error (one sentence naming the failed peer) on failure, with a non-zero exit.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mpc-worker",
        abstract: "Run one role (dealer, server or client) of a secure session over TCP.",
        shouldDisplay: false)

    @Option(help: "client, server or dealer.") var role: String
    @Option(help: "Registered program name (e.g. mlp).") var program: String
    @Option(help: "The program's parameters as a JSON object (the same for all three roles).") var params = "{}"
    @Option(help: "Dealer and server: HOST:PORT to listen on (port 0 = any; the bound address is printed first).")
    var listen: String?
    @Option(name: .customLong("connect-dealer"), help: "Client and server: the dealer's HOST:PORT.") var connectDealer: String?
    @Option(name: .customLong("connect-server"), help: "Client: the server's HOST:PORT.") var connectServer: String?
    @Option(help: "Emulated network between the parties: none, lan or wan.") var net = "none"
    @Option(name: .customLong("synthetic-input-seed"), help: "Seed of this party's synthetic private inputs (test data).")
    var inputSeed: UInt64 = 0
    @Option(name: .customLong("insecure-test-seed"),
            help: "INSECURE, tests only: derive the dealer and party PRG seeds from this value instead of the system CSPRNG.")
    var insecureTestSeed: UInt64?
    @Option(name: .customLong("input-file"), help: "This party's private inputs (server: a checkpoint, PATH or PATH::models/NAME; client: a query file).")
    var inputFile: String?
    @Option(help: "Seconds each receive may wait during the protocol.") var timeout: Double = 60
    @Option(help: "This process's private key (keygen); with --trust, every TCP link is authenticated and encrypted.")
    var key: String?
    @Option(help: "A file of trusted public keys (repeatable).") var trust: [String] = []
    @Flag(help: "Parties: receive the whole offline phase from the dealer before starting the online clock.")
    var preprocess = false
    @Flag(name: .customLong("paced-dealer"),
          help: "With --preprocess, all three roles: the dealer deals each query only after both parties finished the previous one.")
    var pacedDealer = false
    @OptionGroup var progress: ProgressOptions

    func validate() throws {
        guard SessionRole(rawValue: role) != nil else { throw ValidationError("--role must be client, server or dealer, not '\(role)'") }
        guard NetworkProfile(name: net) != nil else { throw ValidationError("--net must be none, lan or wan, not '\(net)'") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        Runtime.configureForParty()
        func endpoint(_ s: String?, _ flag: String) throws -> Endpoint? {
            guard let s else { return nil }
            do { return try Endpoint(parsing: s) } catch { throw ValidationError("\(flag) '\(s)' is not HOST:PORT (e.g. 127.0.0.1:9000)") }
        }
        var options = SessionOptions(network: NetworkProfile(name: net)!,
                                     seeds: insecureTestSeed.map { .insecureTest($0) } ?? .systemRandom)
        options.receiveTimeout = .milliseconds(Int64(timeout * 1000))
        options.preprocess = preprocess
        options.pacedDealer = pacedDealer
        if let key {
            guard !trust.isEmpty else { throw ValidationError("--key needs --trust FILE (the peers' public keys)") }
            options.security = ChannelSecurity(identity: try IdentityKey.load(key), trusted: try TrustStore(files: trust))
        }
        // Per-query results as they finish, so the launcher keeps them even if the session fails later.
        options.events = { line in FileHandle.standardOutput.write(Data("event \(line)\n".utf8)) }
        let config = WorkerConfiguration(
            role: SessionRole(rawValue: role)!, program: program, parameters: params, listen: try endpoint(listen, "--listen"),
            dealer: try endpoint(connectDealer, "--connect-dealer"), server: try endpoint(connectServer, "--connect-server"),
            options: options, inputSeed: inputSeed, inputFile: inputFile)
        let quiet = progress.quiet
        let report = try Worker.run(config, programs: SecurePrograms.all + [BertProgram.self, RoutedBertProgram.self], onListening: { at in
            FileHandle.standardOutput.write(Data("listening \(at)\n".utf8))
        }, log: { line in if !quiet { printErr(line) } })
        FileHandle.standardOutput.write(report + Data([0x0A]))
    }
}
