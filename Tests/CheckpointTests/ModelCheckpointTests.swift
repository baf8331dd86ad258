import Foundation
import Testing

@testable import Checkpoint

@Suite struct ModelCheckpointTests {
    @Test func singleModelRoundTrip() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let path = dir.file("model.h5")
        var model = try randomCheckpoint()
        model.vocab[7] = "café"
        model.doLowerCase = false
        model.attributes = ["note": .string("trained on sst2"), "step": .integer(1200), "lr": .double(3e-4)]
        try model.write(to: path)
        let loaded = try ModelCheckpoint.read(from: path)
        #expect(loaded == model)
        #expect(loaded.weights["bert.encoder.layer.1.attention.self.query.weight"]?.shape == [8, 8])
        #expect(try dir.contents() == ["model.h5"], "no temporary file may be left behind")
        try loaded.validate(expected: tinyArchitecture.expectedParameters())
    }

    @Test func overwritingReplacesTheFileAtomically() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let path = dir.file("model.h5")
        try randomCheckpoint(seed: 1).write(to: path)
        let second = try randomCheckpoint(seed: 2)
        try second.write(to: path)
        #expect(try ModelCheckpoint.read(from: path) == second)
        // A failing write leaves the old file intact and no temporary file behind.
        var broken = second
        broken.configJSON = "[1, 2]"
        expectError(.invalidArgument, mentioning: path) { try broken.write(to: path) }
        #expect(try ModelCheckpoint.read(from: path) == second)
        #expect(try dir.contents() == ["model.h5"])
        // A failure inside a bundle's extra writer leaves nothing at all.
        let bundle = dir.file("bundle.h5")
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try ModelCheckpoint.writeBundle(to: bundle, models: [("a", second)]) { _ in throw Boom() }
        }
        #expect(try dir.contents() == ["model.h5"])
    }

    @Test func bundleGroups() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let path = dir.file("bundle.h5")
        var small = try randomCheckpoint(seed: 3)
        var large = try randomCheckpoint(seed: 4)
        let sharedVocab = small.vocab
        small.vocab = []
        large.vocab = []
        try ModelCheckpoint.writeBundle(to: path, models: [("small", small), ("large", large)]) { file in
            let root = try file.root()
            try root.writeStrings("tokenizer/vocab", sharedVocab)
            try root.writeAttribute("do_lower_case", uint8: 0, on: "tokenizer/vocab")
            try root.createGroup("router/weights").writeFloat32("w", shape: [2], values: [1, 2])
        }
        #expect(try ModelCheckpoint.listModels(inBundle: path) == ["large", "small"])
        let readSmall = try ModelCheckpoint.read(from: path, group: "small")
        #expect(readSmall.weights == small.weights && readSmall.configJSON == small.configJSON)
        #expect(readSmall.vocab == sharedVocab, "a model without a tokenizer uses the bundle's")
        #expect(readSmall.doLowerCase == false)
        #expect(try ModelCheckpoint.read(from: path, group: "/models/large").weights == large.weights)
        expectError(.missingObject, mentioning: path) { _ = try ModelCheckpoint.read(from: path, group: "medium") }
        let error = #expect(throws: CheckpointError.self) { _ = try ModelCheckpoint.read(from: path, group: "medium") }
        #expect(error?.message.contains("large, small") == true)
        // A single-model file is not a bundle.
        let single = dir.file("single.h5")
        try small.write(to: single)
        #expect(try ModelCheckpoint.listModels(inBundle: single) == [])
    }

    @Test func schemaErrors() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let noConfig = dir.file("noconfig.h5")
        try H5File.writeAtomically(to: noConfig) { file in
            try file.root().writeFloat32("weights/a", shape: [1], values: [1])
        }
        expectError(.missingConfig, mentioning: noConfig) { _ = try ModelCheckpoint.read(from: noConfig) }
        let badConfig = dir.file("badconfig.h5")
        try H5File.writeAtomically(to: badConfig) { file in
            try file.root().writeAttribute("config", .string("not json"))
        }
        expectError(.missingConfig, mentioning: badConfig) { _ = try ModelCheckpoint.read(from: badConfig) }
        let noWeights = dir.file("noweights.h5")
        try H5File.writeAtomically(to: noWeights) { file in
            try file.root().writeAttribute("config", .string("{}"))
        }
        expectError(.missingWeights, mentioning: noWeights) { _ = try ModelCheckpoint.read(from: noWeights) }
        let intWeights = dir.file("intweights.h5")
        try H5File.writeAtomically(to: intWeights) { file in
            let root = try file.root()
            try root.writeAttribute("config", .string("{}"))
            try root.writeInt64("weights/bert.embeddings.position_ids", shape: [1, 4], values: [0, 1, 2, 3])
        }
        expectError(.wrongType, mentioning: "weights/bert.embeddings.position_ids") {
            _ = try ModelCheckpoint.read(from: intWeights)
        }
        expectError(.wrongType, mentioning: intWeights) { _ = try ModelCheckpoint.read(from: intWeights) }
    }

    @Test func fileErrors() throws {
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let missing = dir.file("missing.h5")
        expectError(.noSuchFile, mentioning: "no such file: \(missing)") { _ = try ModelCheckpoint.read(from: missing) }
        expectError(.noSuchFile, mentioning: missing) { _ = try ModelCheckpoint.listModels(inBundle: missing) }
        let text = dir.file("config.json")
        try "{\"not\": \"hdf5\"}".write(toFile: text, atomically: false, encoding: .utf8)
        expectError(.notHDF5, mentioning: text) { _ = try ModelCheckpoint.read(from: text) }
        let truncated = dir.file("truncated.h5")
        try randomCheckpoint().write(to: truncated)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: truncated))
        try bytes.prefix(bytes.count - 512).write(to: URL(fileURLWithPath: truncated))
        expectError(.corrupt, mentioning: truncated) { _ = try ModelCheckpoint.read(from: truncated) }
        let tiny = dir.file("tiny.h5")
        try bytes.prefix(4).write(to: URL(fileURLWithPath: tiny))
        expectError(.notHDF5, mentioning: tiny) { _ = try ModelCheckpoint.read(from: tiny) }
        expectError(.hdf5, mentioning: dir.file("nodir/model.h5")) {
            try randomCheckpoint().write(to: dir.file("nodir/model.h5"))
        }
        #expect(try dir.contents() == ["config.json", "tiny.h5", "truncated.h5"])
    }

    @Test func validation() throws {
        var model = try randomCheckpoint()
        let expected = tinyArchitecture.expectedParameters()
        try model.validate(expected: expected)
        model.weights["bert.pooler.dense.bias"] = nil
        model.weights["bert.embeddings.LayerNorm.weight"] = nil
        model.weights["classifier.weight"] = StoredTensor(shape: [2, 8], data: [Float](repeating: 0, count: 16))
        model.weights["cls.predictions.bias"] = StoredTensor(shape: [1], data: [0])
        let error = #expect(throws: CheckpointError.self) { try model.validate(expected: expected, path: "m.h5") }
        #expect(error?.kind == .schemaMismatch)
        let message = error?.message ?? ""
        #expect(message.contains("missing tensor bert.embeddings.LayerNorm.weight (and 1 more: bert.pooler.dense.bias)"),
                "\(message)")
        #expect(message.contains("shape of classifier.weight: expected [3, 8], found [2, 8]"), "\(message)")
        #expect(message.contains("unexpected tensors: cls.predictions.bias"), "\(message)")
        #expect(error?.description.hasPrefix("m.h5") == true)
    }
}
