import CoDesign
import Testing
import Transformer

/// The `qat`, `ptq` and extended `distill` keys of a pool member.
@Suite struct QATAndDistillConfigTests {
    func member(_ extra: String) throws -> PoolMemberConfig {
        try PoolConfig.parse(yaml: "task: mr\nmodels:\n  - name: a\n" + extra, file: "c.yaml").models[0]
    }

    @Test func qatKeysAndDefaults() throws {
        #expect(try member("").qat == nil)
        let q32 = try #require(try member("    qat: {ring_bits: 32, frac_bits: 10, weight_bits: 8}\n").qat)
        #expect(q32 == QATConfig(ringBits: 32, fracBits: 10, weightBits: 8))
        #expect(q32.fakeQuantization == FakeQuantization(fracBits: 10, ringBits: 32, weightBits: 8))
        // frac_bits defaults to the ring's usual precision; `null` weight bits mean none.
        #expect(try member("    qat: {ring_bits: 32, weight_bits: null}\n").qat == QATConfig(ringBits: 32, fracBits: 12))
        #expect(try member("    qat: {}\n").qat == QATConfig(ringBits: 64, fracBits: 16, weightBits: nil))
        let ptq = try member("    ptq: {ring_bits: 32}\n")
        #expect(ptq.ptq == QATConfig(ringBits: 32, fracBits: 12) && ptq.qat == nil)
    }

    @Test func distillStageOneKeys() throws {
        let d = try #require(try member(
            "    distill: {teacher: t.h5, stage1_epochs: 3, hidden_weight: 2.0, attention_weight: 0.5, alpha: 0.2}\n").distill)
        #expect(d == DistillationConfig(teacher: "t.h5", alpha: 0.2, stage1Epochs: 3, hiddenWeight: 2, attentionWeight: 0.5))
        let transfer = try #require(try member("    distill: {teacher: t.h5, transfer: u.tsv, transfer_sentences: 500}\n").distill)
        #expect(transfer.transfer == "u.tsv" && transfer.transferSentences == 500)
        let plain = try #require(try member("    distill: {teacher: t.h5}\n").distill)
        #expect(plain.stage1Epochs == 0 && plain.hiddenWeight == 1 && plain.attentionWeight == 1)
    }

    @Test(arguments: [
        ("unknown qat key", "    qat: {ring: 32}\n", "unknown key 'models[0].qat.ring'"),
        ("ring not 32/64", "    qat: {ring_bits: 48}\n", "'models[0].qat.ring_bits' must be 64 or 32"),
        ("frac too large", "    qat: {ring_bits: 32, frac_bits: 31}\n", "'models[0].qat.frac_bits' must be at most 30"),
        ("frac too large for narrow products", "    qat: {ring_bits: 32, frac_bits: 14}\n", "'models[0].qat.frac_bits' must be at most 12 with ring_bits 32"),
        ("weight bits too large", "    qat: {weight_bits: 32}\n", "'models[0].qat.weight_bits' must be in 2...24"),
        ("qat not a mapping", "    qat: true\n", "'models[0].qat' must be a mapping"),
        ("ptq not a mapping", "    ptq: 32\n", "'models[0].ptq' must be a mapping"),
        ("ptq ring not 32/64", "    ptq: {ring_bits: 16}\n", "'models[0].ptq.ring_bits' must be 64 or 32"),
        ("qat and ptq", "    qat: {ring_bits: 32}\n    ptq: {ring_bits: 32}\n", "qat and ptq cannot be combined"),
        ("unknown distill key", "    distill: {teacher: t.h5, stage_1: 2}\n", "unknown key 'models[0].distill.stage_1'"),
        ("negative stage1", "    distill: {teacher: t.h5, stage1_epochs: -1}\n", "'models[0].distill.stage1_epochs' must be at least 0"),
        ("transfer count without a file", "    distill: {teacher: t.h5, transfer_sentences: 100}\n", "transfer_sentences needs 'transfer'"),
        ("stage1 without weights", "    distill: {teacher: t.h5, stage1_epochs: 1, hidden_weight: 0, attention_weight: 0}\n",
         "needs hidden_weight or attention_weight"),
    ])
    func rejectsWithAClearMessage(_ name: String, _ extra: String, _ fragment: String) {
        do {
            _ = try member(extra)
            Issue.record("\(name): accepted")
        } catch {
            #expect("\(error)".contains(fragment), "\(name): got '\(error)'")
            #expect("\(error)".hasPrefix("c.yaml: "), "\(name): the message should name the file: '\(error)'")
        }
    }
}
