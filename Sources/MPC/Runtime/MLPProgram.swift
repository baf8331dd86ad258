/// A 2-layer MLP classifier, the end-to-end test program of the runtime until the secure transformer
/// exists. Shapes: B batch, D input features, H hidden, C classes.
///
/// Client-owned input `x [B, D]`; server-owned weights `w1 [D, H]`, `b1 [B, H]` (the bias row repeated
/// over the batch), `w2 [H, C]`. Per repeat: `h = relu(x·w1 + b1)` (matmul truncates), `g = scale(h, 0.5)`
/// (explicit local truncation), `logits = g·w2`, secret argmax, index revealed to the client only.
/// With `revealLogits` the client also learns the logits (for bit-for-bit comparisons in tests).
public struct MLPProgram: SecureProgram, Equatable {
    public static let name = "mlp"
    public var batch = 4
    public var features = 16
    public var hidden = 32
    public var classes = 10
    /// Times the forward pass is repeated (to make a session long enough to kill mid-protocol).
    public var repeats = 1
    public var revealLogits = false

    public init(batch: Int = 4, features: Int = 16, hidden: Int = 32, classes: Int = 10, repeats: Int = 1,
                revealLogits: Bool = false) {
        self.batch = batch
        self.features = features
        self.hidden = hidden
        self.classes = classes
        self.repeats = repeats
        self.revealLogits = revealLogits
    }

    enum CodingKeys: String, CodingKey { case batch, features, hidden, classes, repeats, revealLogits = "reveal_logits" }

    /// Decodes a JSON object; missing keys keep their defaults (so `--params '{"repeats":3}'` works).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        batch = try c.decodeIfPresent(Int.self, forKey: .batch) ?? batch
        features = try c.decodeIfPresent(Int.self, forKey: .features) ?? features
        hidden = try c.decodeIfPresent(Int.self, forKey: .hidden) ?? hidden
        classes = try c.decodeIfPresent(Int.self, forKey: .classes) ?? classes
        repeats = try c.decodeIfPresent(Int.self, forKey: .repeats) ?? repeats
        revealLogits = try c.decodeIfPresent(Bool.self, forKey: .revealLogits) ?? revealLogits
        guard [batch, features, hidden, classes, repeats].allSatisfy({ $0 >= 1 }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "mlp sizes and repeats must be at least 1"))
        }
    }

    /// The client's result: predicted class per row, and the logits as ring words if revealed.
    public struct Prediction: Codable, Sendable, Equatable {
        public var classes: [Int]
        public var logits: [UInt64]?
    }

    public func run(on b: some SecureBackend) throws -> Prediction? {
        let x = try b.input("x", owner: .client, shape: [batch, features])
        let w1 = try b.input("w1", owner: .server, shape: [features, hidden])
        let b1 = try b.input("b1", owner: .server, shape: [batch, hidden])
        let w2 = try b.input("w2", owner: .server, shape: [hidden, classes])
        var out: Prediction?
        for _ in 0..<repeats {
            let h = try b.relu(b.add(try b.matmul(x, w1), b1))
            let logits = try b.matmul(b.scale(h, by: 0.5), w2)
            let (_, oneHot) = try b.argmax(logits)
            let index = try b.revealIndex(oneHot, to: .client)
            let opened = revealLogits ? try b.reveal(logits, to: .client) : nil
            if let index { out = Prediction(classes: index, logits: opened?.data) }
        }
        return out
    }

    public func syntheticInputs(for party: PartyID, seed: UInt64) -> [String: RingTensor] {
        var g = SyntheticData(seed: seed)
        let fp = fixedPoint
        switch party {
        case .client:
            return ["x": fp.encode(g.doubles(batch * features, range: 1), shape: [batch, features])]
        case .server:
            let bias = g.doubles(hidden, range: 0.1)
            return [
                "w1": fp.encode(g.doubles(features * hidden, range: 0.5), shape: [features, hidden]),
                "b1": fp.encode((0..<batch).flatMap { _ in bias }, shape: [batch, hidden]),
                "w2": fp.encode(g.doubles(hidden * classes, range: 0.5), shape: [hidden, classes]),
            ]
        }
    }

    /// Plaintext float forward of the same inputs (reference): predicted class per row.
    public func plaintextPrediction(client: [String: RingTensor], server: [String: RingTensor]) -> [Int] {
        let fp = fixedPoint
        let x = fp.decode(client["x"]!), w1 = fp.decode(server["w1"]!), b1 = fp.decode(server["b1"]!), w2 = fp.decode(server["w2"]!)
        return (0..<batch).map { r in
            let h = (0..<hidden).map { j in
                Swift.max(0, (0..<features).reduce(b1[r * hidden + j]) { $0 + x[r * features + $1] * w1[$1 * hidden + j] }) * 0.5
            }
            let logits = (0..<classes).map { c in (0..<hidden).reduce(0.0) { $0 + h[$1] * w2[$1 * classes + c] } }
            return logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) }!
        }
    }
}

/// Seeded uniform test data (synthetic inputs of programs, test vectors): the AES-CTR `PRG` under a
/// test seed, on its own stream so it never coincides with a session's masks. Never shares or keys.
public struct SyntheticData {
    private var prg: PRG
    public init(seed: UInt64) { prg = PRG(seed: PRGSeed(testValue: seed), stream: 0x5359_4E54) }
    public mutating func next() -> UInt64 { prg.next(1)[0] }
    /// An integer uniform in `0..<n` (n > 0; modulo bias below 2^−40 for n < 2^24).
    public mutating func int(below n: Int) -> Int { Int(next() % UInt64(n)) }
    /// `n` doubles uniform in [-range, range).
    public mutating func doubles(_ n: Int, range: Double) -> [Double] {
        prg.next(n).map { (Double($0 >> 11) / Double(1 << 53) * 2 - 1) * range }
    }
}

/// The programs a worker process can run, by `SecureProgram.name`.
public enum SecurePrograms {
    /// Registered program types (add new programs here).
    public static let all: [any SecureProgram.Type] = [MLPProgram.self, EncoderProgram.self]

    /// The program type called `name`.
    /// - Throws: `SessionError.unknownProgram` naming the known programs.
    public static func named(_ name: String, in programs: [any SecureProgram.Type] = all) throws -> any SecureProgram.Type {
        guard let t = programs.first(where: { $0.name == name }) else {
            throw SessionError.unknownProgram(name: name, known: programs.map { $0.name })
        }
        return t
    }
}
