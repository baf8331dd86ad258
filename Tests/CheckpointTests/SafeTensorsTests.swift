import Foundation
import Testing

@testable import Checkpoint

/// A safetensors image: 8-byte little-endian header length, JSON header, data.
func safetensorsImage(_ tensors: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])],
                      metadata: String = "{\"format\": \"pt\"}") -> Data {
    var entries: [String] = ["\"__metadata__\": \(metadata)"]
    var data: [UInt8] = []
    for t in tensors {
        entries.append("\"\(t.name)\": {\"dtype\": \"\(t.dtype)\", \"shape\": \(t.shape), "
            + "\"data_offsets\": [\(data.count), \(data.count + t.bytes.count)]}")
        data += t.bytes
    }
    return rawImage(header: "{" + entries.joined(separator: ", ") + "}", data: data)
}

func rawImage(header: String, data: [UInt8], claimedLength: UInt64? = nil) -> Data {
    let json = Array(header.utf8)
    var bytes = withUnsafeBytes(of: (claimedLength ?? UInt64(json.count)).littleEndian) { Array($0) }
    bytes += json + data
    return Data(bytes)
}

func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}

@Suite struct SafeTensorsTests {
    @Test func readsEveryDType() throws {
        let floats: [Float] = [1, -2.5, 0, 3.25e-3, .infinity, -1e30]
        let f16: [UInt16] = [0x3C00, 0xC000, 0x3800, 0x0001, 0x7C00, 0x8000, 0x7BFF]
        let bf16: [Float] = [1, -3.5, 0.15625, 65536]
        let ints: [Int64] = [0, 1, -1, .max, .min, 511]
        let image = safetensorsImage([
            ("a.weight", "F32", [2, 3], littleEndianBytes(floats.map(\.bitPattern))),
            ("half", "F16", [7], littleEndianBytes(f16)),
            ("brain", "BF16", [2, 2], littleEndianBytes(bf16.map { UInt16($0.bitPattern >> 16) })),
            ("embeddings.position_ids", "I64", [1, 6], littleEndianBytes(ints)),
            ("scalar", "F32", [], littleEndianBytes([Float(7).bitPattern])),
        ])
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let path = dir.file("model.safetensors")
        try image.write(to: URL(fileURLWithPath: path))
        let file = try SafeTensorsFile(path: path)
        #expect(file.names == ["a.weight", "brain", "embeddings.position_ids", "half", "scalar"])
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.floats("a.weight") == StoredTensor(shape: [2, 3], data: floats))
        let half = try file.floats("half").data
        #expect(half.prefix(4) == [1, -2, 0.5, 5.9604645e-8])
        #expect(half[4] == .infinity && half[5] == 0 && half[5].sign == .minus && half[6] == 65504)
        #expect(try file.floats("brain") == StoredTensor(shape: [2, 2], data: bf16))
        #expect(try file.int64s("embeddings.position_ids") == ([1, 6], ints))
        #expect(try file.floats("scalar") == StoredTensor(shape: [], data: [7]))
        expectError(.wrongType, mentioning: path) { _ = try file.floats("embeddings.position_ids") }
        expectError(.wrongType, mentioning: path) { _ = try file.int64s("half") }
        expectError(.missingObject, mentioning: "nope") { _ = try file.floats("nope") }
    }

    static let malformedCases: [(String, Data)] = [
        ("shorter than the length field", Data([1, 2, 3])),
        ("header longer than the file", rawImage(header: "{}", data: [], claimedLength: 1000)),
        ("JSON is not an object", rawImage(header: "[1, 2]", data: [])),
        ("JSON is cut off", rawImage(header: "{\"a\": {\"dtype\": \"F32\"", data: [])),
        ("unknown dtype", safetensorsImage([("a", "F8", [1], [0])])),
        ("data section truncated", rawImage(
            header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", data: [0, 0, 0, 0])),
        ("span does not match the shape", rawImage(
            header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", data: [0, 0, 0, 0])),
        ("end before begin", rawImage(
            header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 0]}}", data: [0, 0, 0, 0])),
        ("negative dimension", rawImage(
            header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", data: [0, 0, 0, 0])),
        ("missing data_offsets", rawImage(header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", data: [0, 0, 0, 0])),
    ]

    @Test(arguments: malformedCases.map(\.0))
    func malformedFilesThrow(_ name: String) throws {
        let image = Self.malformedCases.first { $0.0 == name }!.1
        let dir = try ScratchDirectory()
        defer { dir.cleanup() }
        let path = dir.file("bad.safetensors")
        try image.write(to: URL(fileURLWithPath: path))
        expectError(.malformedSafetensors, mentioning: path) { _ = try SafeTensorsFile(path: path) }
    }

    @Test func missingFile() {
        expectError(.noSuchFile, mentioning: "no such file: /nonexistent/model.safetensors") {
            _ = try SafeTensorsFile(path: "/nonexistent/model.safetensors")
        }
    }

    @Test func halfPrecisionConversionIsExact() {
        #expect(halfToFloat(0x0000) == 0)
        #expect(halfToFloat(0x3555) == 0.33325195)
        #expect(halfToFloat(0x0400) == 6.1035156e-5)  // smallest normal
        #expect(halfToFloat(0x03FF) == 6.0975552e-5)  // largest subnormal
        #expect(halfToFloat(0xFC00) == -.infinity)
        #expect(halfToFloat(0x7E00).isNaN)
    }

    @Test func stateDictNames() {
        #expect(stateDictName("embeddings.word_embeddings.weight", keepLayers: 6) == "bert.embeddings.word_embeddings.weight")
        #expect(stateDictName("bert.pooler.dense.bias", keepLayers: 6) == "bert.pooler.dense.bias")
        #expect(stateDictName("embeddings.position_ids", keepLayers: 6) == nil)
        #expect(stateDictName("bert.embeddings.position_ids", keepLayers: 6) == nil)
        #expect(stateDictName("encoder.layer.1.output.dense.weight", keepLayers: 2) == "bert.encoder.layer.1.output.dense.weight")
        #expect(stateDictName("encoder.layer.2.output.dense.weight", keepLayers: 2) == nil)
        #expect(stateDictName("encoder.layer.10.output.dense.weight", keepLayers: 2) == nil)
        #expect(stateDictName("bert.encoder.layer.0.output.LayerNorm.gamma", keepLayers: 2)
            == "bert.encoder.layer.0.output.LayerNorm.weight")
        #expect(stateDictName("embeddings.LayerNorm.beta", keepLayers: 2) == "bert.embeddings.LayerNorm.bias")
        #expect(stateDictName("cls.predictions.bias", keepLayers: 2) == nil)
    }
}
