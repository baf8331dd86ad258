import Foundation

/// Everything one worker process (`securerouter mpc-worker`) needs to run its role.
public struct WorkerConfiguration: Sendable {
    public var role: SessionRole
    /// `SecureProgram.name` of a registered program (`SecurePrograms`).
    public var program: String
    /// The program value as JSON (the same string for all three roles).
    public var parameters: String
    /// Dealer and server: where to listen (port 0: any free port).
    public var listen: Endpoint?
    /// Client and server: the dealer's address.
    public var dealer: Endpoint?
    /// Client: the server's address.
    public var server: Endpoint?
    public var options: SessionOptions
    /// Seed of this party's synthetic private inputs (`SecureProgram.syntheticInputs`); test data only.
    public var inputSeed: UInt64
    /// This party's real private inputs (`SecureProgram.inputs(for:file:)`); overrides `inputSeed`.
    public var inputFile: String?

    public init(role: SessionRole, program: String, parameters: String, listen: Endpoint? = nil, dealer: Endpoint? = nil,
                server: Endpoint? = nil, options: SessionOptions = SessionOptions(), inputSeed: UInt64 = 0,
                inputFile: String? = nil) {
        self.role = role
        self.program = program
        self.parameters = parameters
        self.listen = listen
        self.dealer = dealer
        self.server = server
        self.options = options
        self.inputSeed = inputSeed
        self.inputFile = inputFile
    }
}

/// Runs one role of a session in this process (the body of `securerouter mpc-worker`).
public enum Worker {
    /// Runs `config.role` and returns its `SessionReport` encoded as one line of JSON (sorted keys).
    /// - Parameters:
    ///   - onListening: called with the bound address once the dealer or server listens (the command
    ///     prints it as its first stdout line, so a launcher can pass it on).
    ///   - log: progress lines (the command writes them to stderr).
    /// - Throws: `SessionError.roleFailed` wrapping the first error, naming this role.
    ///   - programs: the program types this binary knows (`SecurePrograms.all` plus those of higher modules).
    public static func run(_ config: WorkerConfiguration, programs: [any SecureProgram.Type] = SecurePrograms.all,
                           onListening: (Endpoint) -> Void, log: (String) -> Void = { _ in }) throws -> Data {
        do {
            let type = try SecurePrograms.named(config.program, in: programs)
            return try run(type, config, onListening: onListening, log: log)
        } catch {
            throw SessionError.roleFailed(role: config.role.displayName, message: "\(error)")
        }
    }

    private static func run<P: SecureProgram>(_ type: P.Type, _ config: WorkerConfiguration, onListening: (Endpoint) -> Void,
                                              log: (String) -> Void) throws -> Data {
        let program: P
        do { program = try JSONDecoder().decode(P.self, from: Data(config.parameters.utf8)) } catch {
            throw SessionError.worker(role: config.role.rawValue, detail: "cannot decode the parameters of program '\(P.name)': \(error)")
        }
        func need(_ e: Endpoint?, _ flag: String) throws -> Endpoint {
            guard let e else { throw SessionError.worker(role: config.role.rawValue, detail: "the \(config.role.rawValue) needs \(flag) HOST:PORT") }
            return e
        }
        func inputs(_ p: PartyID) throws -> [String: RingTensor] {
            if let f = config.inputFile { return try program.inputs(for: p, file: f) }
            return program.syntheticInputs(for: p, seed: config.inputSeed)
        }
        let report: SessionReport<P.Output>
        switch config.role {
        case .dealer:
            report = try Session.runDealer(program, listen: try need(config.listen, "--listen"), options: config.options,
                                           onListening: onListening, log: log)
        case .server:
            report = try Session.runServer(program, listen: try need(config.listen, "--listen"), dealer: try need(config.dealer, "--connect-dealer"),
                                           inputs: try inputs(.server), options: config.options,
                                           onListening: onListening, log: log)
        case .client:
            report = try Session.runClient(program, dealer: try need(config.dealer, "--connect-dealer"), server: try need(config.server, "--connect-server"),
                                           inputs: try inputs(.client), options: config.options, log: log)
        }
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        return try enc.encode(report)
    }
}
