import CHDF5
import Foundation
import Testing

@testable import Checkpoint

/// Low-level tests call libhdf5 directly, so each holds the library lock (other suites may run in parallel).
@Suite struct HDF5Tests {
    @Test func datasetsOfEveryKindRoundTrip() throws {
        try H5File.withLibraryLock {
            let dir = try ScratchDirectory()
            defer { dir.cleanup() }
            let path = dir.file("kinds.h5")
            do {
                let root = try H5File.create(path: path).root()
                try root.writeFloat32("f/scalar", shape: [], values: [3.5])
                try root.writeFloat32("f/cube", shape: [2, 3, 4], values: (0..<24).map { Float($0) * 0.25 - 1 })
                try root.writeFloat32("f/empty", shape: [0, 5], values: [])
                try root.writeInt64("i/ids", shape: [2, 2], values: [Int64.min, -1, 0, Int64.max])
                try root.writeUInt8("u/bytes", shape: [3], values: [0, 127, 255])
                try root.writeStrings("s/words", ["hello", "", "naïve ☕", "##ing"])
                try root.writeStrings("s/none", [])
            }
            let root = try H5File.open(path: path).root()
            #expect(try root.readFloat32("f/scalar") == ([], [3.5]))
            let cube = try root.readFloat32("f/cube")
            #expect(cube.shape == [2, 3, 4] && cube.values == (0..<24).map { Float($0) * 0.25 - 1 })
            #expect(try root.readFloat32("f/empty").shape == [0, 5])
            #expect(try root.readInt64("i/ids").values == [Int64.min, -1, 0, Int64.max])
            #expect(try root.readUInt8("u/bytes") == ([3], [0, 127, 255]))
            #expect(try root.readStrings("s/words") == ["hello", "", "naïve ☕", "##ing"])
            #expect(try root.readStrings("s/none") == [])
            #expect(try root.memberNames() == ["f", "i", "s", "u"])
            #expect(try root.openGroup("f").memberNames() == ["cube", "empty", "scalar"])
            #expect(root.exists("f/cube") && !root.exists("f/nope") && !root.exists("nope/deeper"))
            #expect(root.isGroup("f") && !root.isGroup("f/cube") && root.isDataset("f/cube"))
            #expect(try root.datasetInfo("i/ids") == H5DatasetInfo(shape: [2, 2], elementType: .integer(bits: 64, signed: true)))
            #expect(try root.datasetInfo("s/words").elementType == .string(variableLength: true))
        }
    }

    @Test func attributesRoundTrip() throws {
        try H5File.withLibraryLock {
            let dir = try ScratchDirectory()
            defer { dir.cleanup() }
            let path = dir.file("attrs.h5")
            do {
                let root = try H5File.create(path: path).root()
                try root.writeAttribute("text", .string("{\"a\": \"ü\"}"))
                try root.writeAttribute("count", .integer(-42))
                try root.writeAttribute("ratio", .double(0.125))
                try root.writeAttribute("flag", uint8: 1)
                try root.writeAttribute("text", .string("replaced"))
                try root.writeInt64("data", shape: [1], values: [7])
                try root.writeAttribute("unit", .string("tokens"), on: "data")
            }
            let root = try H5File.open(path: path).root()
            #expect(try root.attributeNames() == ["count", "flag", "ratio", "text"])
            #expect(try root.readStringAttribute("text") == "replaced")
            #expect(try root.readAttribute("count") == .integer(-42))
            #expect(try root.readAttribute("ratio") == .double(0.125))
            #expect(try root.readAttribute("flag") == .integer(1))
            #expect(try root.readStringAttribute("unit", on: "data") == "tokens")
            #expect(try root.attributeNames(on: "data") == ["unit"])
            #expect(!root.hasAttribute("nope") && !root.hasAttribute("unit", on: "missing"))
            expectError(.missingObject, mentioning: path) { _ = try root.readAttribute("nope") }
            expectError(.wrongType, mentioning: path) { _ = try root.readStringAttribute("count") }
        }
    }

    /// Fixed-length strings (as written by other tools) are read too; written here with the C API.
    @Test func fixedLengthStringsAreRead() throws {
        try H5File.withLibraryLock {
            let dir = try ScratchDirectory()
            defer { dir.cleanup() }
            let path = dir.file("fixed.h5")
            do {
                let root = try H5File.create(path: path).root()
                let type = H5Tcopy(shim_H5T_C_S1())
                defer { _ = H5Tclose(type) }
                _ = H5Tset_size(type, 6)
                var dims: [hsize_t] = [2]
                let space = H5Screate_simple(1, &dims, nil)
                defer { _ = H5Sclose(space) }
                let dset = H5Dcreate2(root.id, "fixed", type, space, shim_H5P_DEFAULT(), shim_H5P_DEFAULT(), shim_H5P_DEFAULT())
                let bytes: [UInt8] = Array("abc\0\0\0xyzuvw".utf8)
                _ = bytes.withUnsafeBytes { H5Dwrite(dset, type, shim_H5S_ALL(), shim_H5S_ALL(), shim_H5P_DEFAULT(), $0.baseAddress) }
                _ = H5Dclose(dset)
                let scalar = H5Screate(H5S_SCALAR)
                defer { _ = H5Sclose(scalar) }
                let attr = H5Acreate2(root.id, "name", type, scalar, shim_H5P_DEFAULT(), shim_H5P_DEFAULT())
                _ = Array("tiny\0\0".utf8).withUnsafeBytes { H5Awrite(attr, type, $0.baseAddress) }
                _ = H5Aclose(attr)
            }
            let root = try H5File.open(path: path).root()
            #expect(try root.readStrings("fixed") == ["abc", "xyzuvw"])
            #expect(try root.readStringAttribute("name") == "tiny")
        }
    }

    @Test func readErrorsNameTheFileAndObject() throws {
        try H5File.withLibraryLock {
            let dir = try ScratchDirectory()
            defer { dir.cleanup() }
            let path = dir.file("errors.h5")
            do {
                let root = try H5File.create(path: path).root()
                try root.writeInt64("ints", shape: [2], values: [1, 2])
                try root.writeFloat32("floats", shape: [1], values: [1])
            }
            let root = try H5File.open(path: path).root()
            expectError(.wrongType, mentioning: path) { _ = try root.readFloat32("ints") }
            expectError(.wrongType, mentioning: "/ints") { _ = try root.readFloat32("ints") }
            expectError(.wrongType, mentioning: path) { _ = try root.readStrings("floats") }
            expectError(.missingObject, mentioning: "/nothing") { _ = try root.readFloat32("nothing") }
            expectError(.missingObject, mentioning: path) { _ = try root.openGroup("ints") }
            expectError(.invalidArgument, mentioning: path) { try root.writeFloat32("x", shape: [2, 2], values: [1]) }
        }
    }

    @Test func writingOverAnExistingNameFails() throws {
        try H5File.withLibraryLock {
            let dir = try ScratchDirectory()
            defer { dir.cleanup() }
            let root = try H5File.create(path: dir.file("dup.h5")).root()
            try root.writeFloat32("a", shape: [1], values: [1])
            expectError(.invalidArgument, mentioning: "/a") { try root.writeFloat32("a", shape: [1], values: [2]) }
        }
    }

    @Test func openErrors() throws {
        try H5File.withLibraryLock {
            let dir = try ScratchDirectory()
            defer { dir.cleanup() }
            let missing = dir.file("missing.h5")
            expectError(.noSuchFile, mentioning: "no such file: \(missing)") { _ = try H5File.open(path: missing) }
            let text = dir.file("notes.h5")
            try "not hdf5 at all".write(toFile: text, atomically: false, encoding: .utf8)
            expectError(.notHDF5, mentioning: text) { _ = try H5File.open(path: text) }
            let truncated = dir.file("truncated.h5")
            try randomCheckpoint().write(to: truncated)
            let full = try Data(contentsOf: URL(fileURLWithPath: truncated))
            try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: truncated))
            expectError(.corrupt, mentioning: truncated) { _ = try H5File.open(path: truncated) }
            do {  // (a do/catch: `#expect(throws:)` inside this closure crashes the 6.3.1 compiler)
                _ = try H5File.open(path: truncated)
            } catch let error as CheckpointError {
                #expect(!error.hdf5Stack.isEmpty, "HDF5's error stack should be captured")
                #expect(error.detailedDescription.contains("HDF5 error stack:"))
            }
            expectError(.hdf5, mentioning: dir.file("no/such/dir.h5")) { _ = try H5File.create(path: dir.file("no/such/dir.h5")) }
        }
    }
}
