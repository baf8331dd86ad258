import Foundation
import Testing
@testable import MPC

/// The secure encoder (`EncoderProgram`, the program of `bench secure`) against its float forward.
@Suite struct EncoderTests {
    func run(_ shape: EncoderShape, seed: UInt64 = 3) throws -> (secure: [Double], plain: [Double], result: SessionResult<EncoderProgram.Prediction?>) {
        let p = EncoderProgram(shape: shape, revealLogits: true)
        let ci = p.syntheticInputs(for: .client, seed: seed), si = p.syntheticInputs(for: .server, seed: seed + 1)
        let r = try Session.runInMemory(p, clientInputs: ci, serverInputs: si, options: SessionOptions(seeds: .insecureTest(seed)))
        let pred = try #require(r.client.output ?? nil)
        let logits = FixedPoint().decode(RingTensor(shape: [shape.classes], data: try #require(pred.logits)))
        let plain = p.plaintextLogits(client: ci, server: si)
        let argmax = logits.indices.max { logits[$0] < logits[$1] }!
        #expect(pred.label == argmax, "revealed label \(pred.label) vs argmax of revealed logits \(logits)")
        return (logits, plain, r)
    }

    @Test(arguments: [(SecureSoftmax.exact, SecureActivation.gelu), (.twoQuad, .quad)])
    func logitsMatchTheFloatForward(_ softmax: SecureSoftmax, _ activation: SecureActivation) throws {
        let shape = EncoderShape(layers: 2, hidden: 16, heads: 2, intermediate: 32, seq: 8, classes: 3,
                                 softmax: softmax, activation: activation)
        let (secure, plain, r) = try run(shape)
        let err = maxAbsDiff(secure, plain)
        #expect(err < 1e-2, "max |logit error| \(err): secure \(secure) vs float \(plain)")
        // The server's weights are set up before the online phase, and that traffic is not online.
        let setup = try #require(r.client.setup)
        #expect(setup.bytesReceived == 8 * 2 * (16 * 48 + 16 * 16 + 16 * 32 + 32 * 16 + 2 * 16) + 8 * 16 * 3)  // + the LayerNorm gains
        #expect(r.client.onlineBytesSent + r.server.onlineBytesSent > 0)
        #expect(r.client.rounds == r.server.rounds)
        let profile = try #require(r.client.profile)
        for name in [EncoderProgram.Section.softmax, EncoderProgram.Section.norm, EncoderProgram.Section.head] {
            #expect((profile[name]?.rounds ?? 0) > 0, "section \(name) has no rounds: \(profile)")
        }
    }

    /// A pruned encoder (layer 0 keeps 1 of 4 heads and 12 of 32 neurons, layer 1 keeps 3 heads) matches its float forward.
    @Test func prunedLayersMatchTheFloatForward() throws {
        let shape = EncoderShape(layers: 2, hidden: 16, heads: 4, intermediate: 32, seq: 8, classes: 3,
                                 layerHeads: [1, 3], layerIntermediate: [12, 32])
        let (secure, plain, r) = try run(shape)
        #expect(maxAbsDiff(secure, plain) < 1e-2, "secure \(secure) vs float \(plain)")
        // Setup masks exactly the pruned matrices: qkv [16, 3·A_l·4], out [A_l·4, 16], ffn [16, I_l] and [I_l, 16], cls,
        // and the four LayerNorm gains [16].
        let matrices = (16 * 12 + 4 * 16 + 16 * 12 + 12 * 16) + (16 * 36 + 12 * 16 + 16 * 32 + 32 * 16) + 16 * 3 + 4 * 16
        #expect(try #require(r.client.setup).bytesReceived == 8 * matrices)
    }

    /// Padding keys are masked; with 2Quad (head width 4 < 8 keys) attention runs fused (`quadAttention`).
    @Test(arguments: [SecureSoftmax.exact, .twoQuad]) func paddingIsMaskedLikeTheFloatForward(softmax: SecureSoftmax) throws {
        let shape = EncoderShape(layers: 1, hidden: 8, heads: 2, intermediate: 16, seq: 8, softmax: softmax, validLength: 5)
        let (secure, plain, _) = try run(shape, seed: 9)
        #expect(maxAbsDiff(secure, plain) < 1e-2)
    }

    @Test func badShapesAreRejectedWhenDecoded() {
        let json = #"{"shape":{"layers":1,"hidden":10,"heads":3,"intermediate":4,"seq":4,"classes":2,"softmax":"exact","activation":"gelu","layer_norm_eps":1e-12}}"#
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(EncoderProgram.self, from: Data(json.utf8)) }
    }
}
