import Foundation

/// A safetensors file (https://github.com/huggingface/safetensors), read once (memory-mapped
/// where the platform allows) and validated up front.
///
/// Format: 8-byte little-endian u64 header length N; N bytes of JSON
/// `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {String: String}}`;
/// then the raw little-endian data, offsets relative to the end of the header.
/// Validation: N fits in the file; every entry has a known dtype, non-negative shape and
/// `end - begin == product(shape) * bytes(dtype)` with `begin <= end <= data size`.
public struct SafeTensorsFile: Sendable {
    /// Element types of the safetensors format.
    public enum DType: String, Sendable, CaseIterable {
        case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
        case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .f64, .i64: return 8
            case .f32, .i32: return 4
            case .f16, .bf16, .i16: return 2
            case .i8, .u8, .bool: return 1
            }
        }
    }

    /// One tensor's header entry; `byteRange` is absolute in the file.
    public struct Entry: Equatable, Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var byteRange: Range<Int>
    }

    public let path: String
    /// Entries by tensor name.
    public let entries: [String: Entry]
    /// The `__metadata__` object (e.g. `["format": "pt"]`), empty when absent.
    public let metadata: [String: String]
    private let bytes: Data

    /// Tensor names, sorted.
    public var names: [String] { entries.keys.sorted() }

    /// Opens and validates `path`.
    /// - Throws: `.noSuchFile`, `.io`, or `.malformedSafetensors` naming what is wrong.
    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CheckpointError(.noSuchFile, path: path, message: "no such file: \(path)")
        }
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw CheckpointError(.io, path: path, message: "cannot read: \(error.localizedDescription)")
        }
        try self.init(path: path, bytes: bytes)
    }

    /// Parses an in-memory safetensors image (`path` is used in errors only).
    public init(path: String, bytes: Data) throws {
        func malformed(_ message: String, _ object: String = "") -> CheckpointError {
            CheckpointError(.malformedSafetensors, path: path, object: object, message: message)
        }
        guard bytes.count >= 8 else {
            throw malformed("truncated safetensors file: \(bytes.count) bytes, need at least 8 for the header length")
        }
        let headerLength = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw malformed("truncated safetensors file: header length \(headerLength) exceeds the \(bytes.count - 8) "
                + "bytes after it")
        }
        let dataStart = 8 + Int(headerLength)
        let dataSize = bytes.count - dataStart
        let header: RawHeader
        do {
            header = try JSONDecoder().decode(RawHeader.self, from: bytes[8..<dataStart])
        } catch {
            throw malformed("malformed JSON header: \(error)")
        }
        var entries: [String: Entry] = [:]
        for (name, raw) in header.entries {
            guard let dtype = DType(rawValue: raw.dtype) else {
                throw malformed("unknown dtype \(raw.dtype)", name)
            }
            guard raw.shape.allSatisfy({ $0 >= 0 }), raw.data_offsets.count == 2 else {
                throw malformed("bad shape \(raw.shape) or data_offsets \(raw.data_offsets)", name)
            }
            let (begin, end) = (raw.data_offsets[0], raw.data_offsets[1])
            let (elements, overflow) = raw.shape.reduce((1, false)) { acc, d in
                let (p, o) = acc.0.multipliedReportingOverflow(by: d)
                return (p, acc.1 || o)
            }
            guard !overflow, begin >= 0, begin <= end, end <= dataSize else {
                throw malformed("data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data section "
                    + "(truncated file?)", name)
            }
            guard end - begin == elements * dtype.size else {
                throw malformed("data_offsets span \(end - begin) bytes but shape \(raw.shape) of \(dtype.rawValue) "
                    + "needs \(elements * dtype.size)", name)
            }
            entries[name] = Entry(name: name, dtype: dtype, shape: raw.shape,
                                  byteRange: (dataStart + begin)..<(dataStart + end))
        }
        self.path = path
        self.entries = entries
        self.metadata = header.metadata
        self.bytes = bytes
    }

    private func entry(_ name: String) throws -> Entry {
        guard let entry = entries[name] else {
            throw CheckpointError(.missingObject, path: path, object: name, message: "no tensor \(name) in this file")
        }
        return entry
    }

    /// Reads a floating-point tensor (F32, F16 or BF16; F64 is narrowed) as float32.
    /// - Throws: `.missingObject`, or `.wrongType` for integer dtypes.
    public func floats(_ name: String) throws -> StoredTensor {
        let entry = try entry(name)
        let count = entry.byteRange.count / entry.dtype.size
        let values: [Float] = try bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress! + entry.byteRange.lowerBound
            let source = UnsafeRawBufferPointer(start: base, count: entry.byteRange.count)
            switch entry.dtype {
            case .f32 where Int(littleEndian: 1) == 1:  // fast path: a little-endian host copies bytes
                return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
                    initialized = count
                }
            case .f32:
                return (0..<count).map { Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(
                    fromByteOffset: $0 * 4, as: UInt32.self))) }
            case .f16:
                return (0..<count).map { halfToFloat(UInt16(littleEndian: source.loadUnaligned(
                    fromByteOffset: $0 * 2, as: UInt16.self))) }
            case .bf16:
                return (0..<count).map { Float(bitPattern: UInt32(UInt16(littleEndian: source.loadUnaligned(
                    fromByteOffset: $0 * 2, as: UInt16.self))) << 16) }
            case .f64:
                return (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(
                    fromByteOffset: $0 * 8, as: UInt64.self)))) }
            default:
                throw CheckpointError(.wrongType, path: path, object: name,
                                      message: "expected a float tensor (F32, F16, BF16), found \(entry.dtype.rawValue)")
            }
        }
        return StoredTensor(shape: entry.shape, data: values)
    }

    /// Reads an integer tensor (I64, I32, I16, I8, U8, BOOL) widened to Int64.
    /// - Throws: `.missingObject`, or `.wrongType` for float dtypes.
    public func int64s(_ name: String) throws -> (shape: [Int], values: [Int64]) {
        let entry = try entry(name)
        let count = entry.byteRange.count / entry.dtype.size
        let values: [Int64] = try bytes.withUnsafeBytes { raw in
            let source = UnsafeRawBufferPointer(start: raw.baseAddress! + entry.byteRange.lowerBound,
                                                count: entry.byteRange.count)
            func load<T: FixedWidthInteger>(_: T.Type) -> [Int64] {
                (0..<count).map { Int64(T(littleEndian: source.loadUnaligned(fromByteOffset: $0 * T.bitWidth / 8,
                                                                              as: T.self))) }
            }
            switch entry.dtype {
            case .i64: return load(Int64.self)
            case .i32: return load(Int32.self)
            case .i16: return load(Int16.self)
            case .i8: return load(Int8.self)
            case .u8, .bool: return load(UInt8.self)
            default:
                throw CheckpointError(.wrongType, path: path, object: name,
                                      message: "expected an integer tensor, found \(entry.dtype.rawValue)")
            }
        }
        return (entry.shape, values)
    }
}

/// IEEE 754 binary16 -> binary32, exact (subnormals, infinities and NaN included).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exponent = Int((h >> 10) & 0x1F)
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
    if exponent == 0 {  // zero or subnormal: mantissa * 2^-24
        let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -magnitude : magnitude
    }
    return Float(bitPattern: sign | (UInt32(exponent - 15 + 127) << 23) | (mantissa << 13))
}

/// The JSON header: tensor entries plus the optional `__metadata__` string map.
private struct RawHeader: Decodable {
    struct RawEntry: Decodable {
        var dtype: String
        var shape: [Int]
        var data_offsets: [Int]
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    var entries: [String: RawEntry] = [:]
    var metadata: [String: String] = [:]

    init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                entries[key.stringValue] = try container.decode(RawEntry.self, forKey: key)
            }
        }
    }
}
