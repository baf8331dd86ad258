import Foundation
import MPC
import Testing

/// `bench secure` (DESIGN §2): three processes, the JSON keys of the contract, and the secure encoder's
/// agreement with its float forward; plus the encoder over TCP vs in memory, bit for bit.
@Suite struct BenchSecureTests {
    @Test(.timeLimit(.minutes(2)), arguments: ["exact", "mpcformer"])
    func reportsTheContractKeys(variant: String) throws {
        let r = try CLI.run(["bench", "secure", "--layers", "2", "--hidden", "16", "--heads", "2", "--inter", "32", "--seq", "8",
                             "--variant", variant, "--json", "-", "--quiet"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "stdout: \(r.stdout)")
        for key in ["seconds", "online_bytes", "offline_bytes", "rounds", "max_abs_logit_error"] {
            #expect(json[key] != nil, "missing \(key) in \(json.keys.sorted())")
        }
        let error = try #require(json["max_abs_logit_error"] as? Double)
        #expect(error < 1e-2, "logit error \(error)")
        #expect((json["online_bytes"] as? Int ?? 0) > 0 && (json["rounds"] as? Int ?? 0) > 0)
        let profile = try #require(json["profile"] as? [String: Any])
        #expect(profile["softmax"] != nil && profile["activation"] != nil && profile["norm"] != nil)
    }

    /// `bench ring` and `bench dcf` time every kernel this CPU runs (they fail if the kernels disagree) and
    /// refuse a malformed case in one sentence.
    @Test func kernelBenchmarksReportEveryKernel() throws {
        let ring = try CLI.run(["bench", "ring", "--shapes", "3x17x5", "--seconds", "0.01", "--json", "-"])
        #expect(ring.status == 0, "stderr: \(ring.stderr)")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(ring.stdout.utf8)) as? [String: Any])
        let ringRow = try #require((r["shapes"] as? [[String: Any]])?.first)
        for k in RingMatmul.available { #expect((ringRow[k.rawValue + "_macs_per_second"] as? Double ?? 0) > 0) }
        let dcf = try CLI.run(["bench", "dcf", "--cases", "9:3", "--count", "37", "--seconds", "0.01", "--json", "-"])
        #expect(dcf.status == 0, "stderr: \(dcf.stderr)")
        let d = try #require(try JSONSerialization.jsonObject(with: Data(dcf.stdout.utf8)) as? [String: Any])
        let dcfRow = try #require((d["cases"] as? [[String: Any]])?.first)
        for k in DCF.available {
            #expect((dcfRow[k.rawValue + "_keys_per_second"] as? Double ?? 0) > 0 && (dcfRow[k.rawValue + "_evaluations_per_second"] as? Double ?? 0) > 0)
        }
        let bad = try CLI.run(["bench", "dcf", "--cases", "70:1"])
        #expect(bad.status != 0 && bad.stderr.contains("is not bits:points"), "stderr: \(bad.stderr)")
    }

    @Test func badShapeIsOneClearError() throws {
        let r = try CLI.run(["bench", "secure", "--hidden", "10", "--heads", "3"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("multiple of --heads"), "stderr: \(r.stderr)")
    }

    /// Issue 3 acceptance 2 for the encoder: the three processes agree bit for bit with the in-memory run.
    @Test(.timeLimit(.minutes(2))) func encoderOverTCPMatchesInMemory() throws {
        let program = EncoderProgram(shape: EncoderShape(layers: 1, hidden: 16, heads: 2, intermediate: 32, seq: 8, validLength: 6),
                                     revealLogits: true)
        var launcher = SessionLauncher(executable: CLI.executable, insecureTestSeed: 5, clientInputSeed: 1, serverInputSeed: 2)
        launcher.preprocess = true
        let tcp = try launcher.run(program, timeout: .seconds(100))
        let mem = try Session.runInMemory(program, clientInputs: program.syntheticInputs(for: .client, seed: 1),
                                          serverInputs: program.syntheticInputs(for: .server, seed: 2),
                                          options: SessionOptions(seeds: .insecureTest(5)))
        #expect(tcp.client.output == mem.client.output)
        for (a, b) in [(tcp.client, mem.client), (tcp.server, mem.server), (tcp.dealer, mem.dealer)] {
            #expect(a.counters == b.counters, "\(a.role): tcp \(a.counters) vs in-memory \(b.counters)")
        }
    }
}
