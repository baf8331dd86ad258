import Foundation
import MPC
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 3, acceptance 2 and 3: dealer, server and client as three `securerouter mpc-worker` processes
/// over loopback TCP.
@Suite struct MPCSessionTests {
    func launcher(seed: UInt64? = 11, network: NetworkProfile = .none) -> SessionLauncher {
        SessionLauncher(executable: CLI.executable, network: network, insecureTestSeed: seed, clientInputSeed: 1, serverInputSeed: 2)
    }

    /// Acceptance 2: the client's output and every counter agree bit for bit with the in-memory run.
    @Test(.timeLimit(.minutes(2))) func threeProcessesMatchInMemoryBitForBit() throws {
        let program = MLPProgram(batch: 4, repeats: 2, revealLogits: true)
        let tcp = try launcher().run(program, timeout: .seconds(100))
        let mem = try Session.runInMemory(
            program, clientInputs: program.syntheticInputs(for: .client, seed: 1),
            serverInputs: program.syntheticInputs(for: .server, seed: 2), options: SessionOptions(seeds: .insecureTest(11)))
        #expect(tcp.client.output == mem.client.output)
        #expect(tcp.client.output??.logits != nil)
        #expect((tcp.server.output ?? nil) == nil)
        for (a, b) in [(tcp.client, mem.client), (tcp.server, mem.server), (tcp.dealer, mem.dealer)] {
            #expect(a.counters == b.counters, "\(a.role): tcp \(a.counters) vs in-memory \(b.counters)")
        }
    }

    /// Without the insecure seed (system CSPRNG seeds), the prediction still equals the plaintext one.
    @Test(.timeLimit(.minutes(2))) func systemSeedsGiveThePlaintextPrediction() throws {
        let program = MLPProgram(batch: 8)
        let r = try launcher(seed: nil).run(program, timeout: .seconds(100))
        let expected = program.plaintextPrediction(client: program.syntheticInputs(for: .client, seed: 1),
                                                   server: program.syntheticInputs(for: .server, seed: 2))
        #expect(r.client.output??.classes == expected)
        #expect(r.dealer.offlineBytes == r.client.offlineBytes + r.server.offlineBytes)
    }

    /// Acceptance 3: SIGKILL the server mid-protocol; client and dealer exit non-zero within 10 s,
    /// naming the server.
    @Test(.timeLimit(.minutes(2))) func killingTheServerStopsTheOthers() throws {
        // ~14 rounds per repeat at 4 ms RTT: many seconds of protocol left when the kill lands.
        let session = try launcher(network: .wan).start(MLPProgram(repeats: 400))
        defer { session.killAll() }
        try expectKillStops(session, victim: .server, named: "party 1 (server)")
    }

    /// Acceptance 3: SIGKILL the client mid-protocol; server and dealer exit non-zero within 10 s, naming it.
    @Test(.timeLimit(.minutes(2))) func killingTheClientStopsTheOthers() throws {
        let session = try launcher(network: .wan).start(MLPProgram(repeats: 400))
        defer { session.killAll() }
        try expectKillStops(session, victim: .client, named: "party 0 (client)")
    }

    /// Acceptance 3: SIGKILL the dealer while it still deals (a program with ~100 MB of correlations,
    /// consumed slowly over the emulated WAN); both parties exit non-zero within 10 s, naming the dealer.
    @Test(.timeLimit(.minutes(2))) func killingTheDealerStopsTheParties() throws {
        let program = EncoderProgram(shape: EncoderShape(layers: 2, hidden: 128, heads: 2, intermediate: 512, seq: 64))
        let session = try launcher(network: .wan).start(program)
        defer { session.killAll() }
        try expectKillStops(session, victim: .dealer, named: "dealer")
    }

    /// Waits until both parties are online, kills `victim`, and expects every other process to exit
    /// non-zero within 10 s with an error line naming `named`. When a party is the victim, the dealer
    /// may see the surviving party hang up first (it exits as soon as it notices), so the dealer's
    /// line may name either party; both are true and clear.
    func expectKillStops(_ session: LaunchedSession, victim: SessionRole, named: String) throws {
        let client = session.processes[.client]!, server = session.processes[.server]!
        #expect(server.waitForStderr(containing: "online phase started", until: .now.advanced(by: .seconds(60))))
        #expect(client.waitForStderr(containing: "online phase started", until: .now.advanced(by: .seconds(60))))
        let v = session.processes[victim]!
        #expect(v.exitStatus == nil, "\(victim) finished before the kill: \(v.stderrText)")
        let killedAt = ContinuousClock.now
        v.kill()
        for p in session.processes.values where p.role != victim {
            let status = p.waitForExit(until: killedAt.advanced(by: .seconds(10)))
            let seconds = (ContinuousClock.now - killedAt).seconds
            print("\(p.role.rawValue) exited \(status.map(String.init) ?? "-") \(String(format: "%.3f", seconds)) s after killing the \(victim): \(p.lastErrorLine)")
            #expect(status != nil && status != 0, "\(p.role) did not exit non-zero within 10 s: \(p.stderrText)")
            #expect(seconds < 10)
            // The dealer may see the surviving party hang up first; likewise, when the dealer dies, one party
            // may exit on its dealer error before the other notices the dealer, and the other then reports
            // its peer. Both errors are true and clear.
            let peer = p.role == .client ? "party 1 (server)" : "party 0 (client)"
            let names = p.role == .dealer && victim != .dealer ? ["party 0 (client)", "party 1 (server)"]
                : victim == .dealer ? [named, peer] : [named]
            #expect(names.contains { p.lastErrorLine.contains($0) }, "\(p.role): \(p.lastErrorLine)")
        }
    }

    /// Acceptance 3: a garbage frame and a truncated frame sent to the listening server are rejected
    /// with an error (non-zero exit, one line), never a crash or a hang.
    @Test(.timeLimit(.minutes(2)), arguments: ["garbage", "truncated"])
    func badFramesToTheServerAreRejected(kind: String) throws {
        let session = try launcher().start(MLPProgram(), roles: [.dealer, .server])
        defer { session.killAll() }
        let server = session.processes[.server]!
        let at = String(server.stdoutLines[0].dropFirst("listening ".count))
        let endpoint = try Endpoint(parsing: at)
        let raw = try RawTCP(port: endpoint.port)
        if kind == "garbage" {
            raw.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))  // length prefix = "GET / HT" ≈ 6e18
        } else {
            var header = UInt64(40).littleEndian
            raw.send(withUnsafeBytes(of: &header) { Array($0) } + Array("MPCR".utf8) + [1, 0])  // 6 of 40 bytes
            raw.close()
        }
        let status = server.waitForExit(until: .now.advanced(by: .seconds(10)))
        print("server after \(kind) frame: status \(status.map(String.init) ?? "-"): \(server.lastErrorLine)")
        #expect(status != nil && status != 0, "server did not reject the \(kind) frame within 10 s")
        #expect(status.map { $0 < 128 } ?? false, "server crashed (signal): \(server.stderrText)")
        let expected = kind == "garbage" ? "bad frame" : "end of stream after 6 of 40 bytes"
        #expect(server.lastErrorLine.contains(expected), "\(server.lastErrorLine)")
        // The dealer notices the server is gone and exits with an error too.
        let d = session.processes[.dealer]!
        #expect((d.waitForExit(until: .now.advanced(by: .seconds(10))) ?? 0) != 0, "dealer: \(d.stderrText)")
        raw.close()
    }
}

/// A bare TCP client for feeding malformed bytes to a listener.
final class RawTCP {
    private let fd: Int32
    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { Glibc.close(fd); throw TransportError.system(peer: "server", call: "connect", errno: errno) }
    }
    func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
    func close() { shutdown(fd, Int32(SHUT_RDWR)) }
    deinit { Glibc.close(fd) }
}
