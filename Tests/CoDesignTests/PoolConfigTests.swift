import CoDesign
import Foundation
import Testing
import Transformer

@Suite struct PoolConfigTests {
    let base = """
        task: mr
        training: {epochs: 2, lr: 1e-4}
        models:
          - name: a
            init: pretrained
            layers: 2
          - name: b
            init: random
            layers: 1
            hidden: 64
            heads: 2
            intermediate: 128
            softmax: 2quad
            activation: quad
            training: {batch_size: 8}
        """

    @Test func parsesDefaultsOverridesAndVariants() throws {
        let c = try PoolConfig.parse(yaml: base)
        #expect(c.task == "mr" && c.dataDir == "datasets" && c.models.count == 2)
        #expect(c.models[0].initialization == .pretrained(path: "checkpoints/pretrained/minilm-l6", layers: 2))
        #expect(c.models[0].training.epochs == 2 && c.models[0].training.learningRate == 1e-4)  // `1e-4` is a string in YAML 1.1
        #expect(c.models[0].softmax == .exact && c.models[0].activation == .gelu)
        #expect(c.models[1].softmax == .twoQuad && c.models[1].activation == .quad)
        #expect(c.models[1].training.batchSize == 8 && c.models[1].training.epochs == 2)
    }

    /// Every config shipped in configs/ parses, and the pool configs have at least four members, pruned
    /// and polynomial ones among them (issue 5).
    @Test func shippedConfigsParse() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = root.appendingPathComponent("configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 6)
        for f in files {
            let c = try PoolConfig.load(path: dir.appendingPathComponent(f).path)
            if f.hasPrefix("pool-") {
                #expect(c.models.count >= 4, "\(f)")
                #expect(c.models.contains { $0.prune != nil } && c.models.contains { $0.softmax == .twoQuad || $0.activation == .quad }, "\(f)")
            }
        }
        #expect(Set(files.filter { $0.hasPrefix("pool-") }) == ["pool-mr.yaml", "pool-imdb.yaml", "pool-r8.yaml", "pool-trec.yaml"])
    }

    @Test func pruneKeysAndErrors() throws {
        let ok = try PoolConfig.parse(yaml: "task: mr\nmodels: [{name: a, prune: {lambda: 2, net: wan, heads: false, ffn_group: 32, warmup: 0.5}}]\n")
        let p = try #require(ok.models[0].prune)
        #expect(p.lambda == 2 && p.network == "wan" && !p.heads && p.ffn && p.layers && p.ffnGroup == 32 && p.warmup == 0.5)
        for (yaml, fragment) in [
            ("task: mr\nmodels: [{name: a, prune: {net: lan}}]\n", "needs 'lambda'"),
            ("task: mr\nmodels: [{name: a, prune: {lambda: 1, net: dsl}}]\n", "must be none, lan or wan"),
            ("task: mr\nmodels: [{name: a, prune: {lambda: 1, heads: yes please}}]\n", "must be true or false"),
            ("task: mr\nmodels: [{name: a, prune: {lambda: 1, heads: false, ffn: false, layers: false}}]\n", "nothing to prune"),
            ("task: mr\nmodels: [{name: a, prune: {lambda: 1, gates: 3}}]\n", "unknown key 'models[0].prune.gates'"),
        ] {
            #expect(throws: (any Error).self) { try PoolConfig.parse(yaml: yaml, file: "c.yaml") }
            do { _ = try PoolConfig.parse(yaml: yaml, file: "c.yaml") } catch { #expect("\(error)".contains(fragment), "got '\(error)'") }
        }
    }

    @Test(arguments: [
        ("unknown top-level key", "task: mr\nmodel: []\n", "unknown key 'model'"),
        ("unknown nested key", "task: mr\ntraining: {epoch: 3}\nmodels: [{name: a}]\n", "unknown key 'training.epoch'"),
        ("bad variant", "task: mr\nmodels: [{name: a, softmax: sparsemax}]\n", "models[0].softmax must be one of"),
        ("random without shape", "task: mr\nmodels: [{name: a, init: random, layers: 2}]\n", "needs 'hidden'"),
        ("hidden not divisible", "task: mr\nmodels: [{name: a, init: random, layers: 1, hidden: 10, heads: 3, intermediate: 8}]\n", "multiple of heads"),
        ("duplicate names", "task: mr\nmodels: [{name: a}, {name: a}]\n", "duplicate model name"),
        ("negative lr", "task: mr\ntraining: {lr: -1}\nmodels: [{name: a}]\n", "'training.lr' must be in"),
        ("no models", "task: mr\nmodels: []\n", "non-empty list"),
        ("not yaml", "task: [mr\n", "not valid YAML"),
        ("public layers without a public model", "task: mr\nmodels: [{name: a, public_layers: 2}]\n", "public_layers needs init: pretrained and public_embedding"),
        ("public layers and pruning", "task: mr\nmodels: [{name: a, public_embedding: p, public_layers: 2, prune: {lambda: 1}}]\n",
         "public_layers and prune cannot be combined"),
        ("zero public layers", "task: mr\nmodels: [{name: a, public_embedding: p, public_layers: 0}]\n", "public_layers"),
    ])
    func rejectsWithAClearMessage(_ name: String, _ yaml: String, _ fragment: String) {
        do {
            _ = try PoolConfig.parse(yaml: yaml, file: "c.yaml")
            Issue.record("\(name): accepted")
        } catch {
            #expect("\(error)".contains(fragment), "\(name): got '\(error)'")
            #expect("\(error)".hasPrefix("c.yaml: "), "\(name): the message should name the file: '\(error)'")
        }
    }
}

/// `train-pool --crossfit`: a fold's members start from and distil from the fold's own members, never from
/// the pool's (which trained on the fold's held-out rows); a checkpoint of another pool is reported.
@Suite struct PoolCrossFitTests {
    @Test func foldConfigsRedirectPathsIntoThePool() throws {
        let yaml = """
            task: mr
            models:
              - name: big
                init: pretrained
                from: checkpoints/pretrained/minilm-l6
              - name: small
                init: pretrained
                from: runs/p/pool/big.h5
                layers: 1
                public_embedding: checkpoints/pretrained/minilm-l6
                distill: {teacher: ./runs/p/pool/big.h5}
              - name: other
                init: pretrained
                from: runs/elsewhere/pool/big.h5
                layers: 1
            """
        let config = try PoolConfig.parse(yaml: yaml)
        let fit = PoolCrossFit(config: config, outDir: URL(fileURLWithPath: "runs/p"), folds: 3)
        let (fold, foreign) = fit.foldConfig(1)
        let foldPool = URL(fileURLWithPath: "runs/p/crossfit/fold1/pool").path
        #expect(fold.models[0].initialization == .pretrained(path: "checkpoints/pretrained/minilm-l6", layers: nil))
        #expect(fold.models[1].initialization == .pretrained(path: foldPool + "/big.h5", layers: 1))
        #expect(fold.models[1].distill?.teacher == foldPool + "/big.h5")
        #expect(fold.models[1].publicEmbedding == "checkpoints/pretrained/minilm-l6")
        #expect(fold.models[2].initialization == .pretrained(path: "runs/elsewhere/pool/big.h5", layers: 1))
        #expect(foreign == ["runs/elsewhere/pool/big.h5"])
        // Interleaved folds: every row is held out by exactly one fold.
        #expect((0..<10).allSatisfy { i in (0..<3).filter { CrossFitLabels.heldOut(i, fold: $0, folds: 3) }.count == 1 })
    }
}
