import CHDF5
import Foundation

/// The shape and element type of a dataset.
public struct H5DatasetInfo: Equatable, Sendable {
    /// Dimensions, outermost first; `[]` for a scalar dataset.
    public var shape: [Int]
    public var elementType: H5ElementType
}

// Datasets: float32 / int64 / uint8 of any rank (shape `[]` is a scalar), and 1-D
// variable-length UTF-8 string datasets. Writing refuses to overwrite an existing link.
extension H5Group {
    /// Shape and element type of dataset `path`.
    /// - Throws: `.missingObject` when there is no such dataset.
    public func datasetInfo(_ path: String) throws -> H5DatasetInfo {
        try withDataset(path) { _, ftype, space in
            H5DatasetInfo(shape: try shape(of: space, path), elementType: H5ElementType(typeID: ftype))
        }
    }

    /// Writes a float32 dataset. `values.count` must equal the product of `shape` (row-major).
    public func writeFloat32(_ path: String, shape: [Int], values: [Float]) throws {
        try writeNumeric(path, shape: shape, values: values,
                         fileType: shim_H5T_IEEE_F32LE(), memType: shim_H5T_NATIVE_FLOAT())
    }

    /// Writes an int64 dataset. `values.count` must equal the product of `shape` (row-major).
    public func writeInt64(_ path: String, shape: [Int], values: [Int64]) throws {
        try writeNumeric(path, shape: shape, values: values,
                         fileType: shim_H5T_STD_I64LE(), memType: shim_H5T_NATIVE_INT64())
    }

    /// Writes a uint8 dataset. `values.count` must equal the product of `shape` (row-major).
    public func writeUInt8(_ path: String, shape: [Int], values: [UInt8]) throws {
        try writeNumeric(path, shape: shape, values: values,
                         fileType: shim_H5T_STD_U8LE(), memType: shim_H5T_NATIVE_UINT8())
    }

    /// Reads a float32 dataset (row-major values).
    /// - Throws: `.missingObject`, or `.wrongType` when the dataset is not float32.
    public func readFloat32(_ path: String) throws -> (shape: [Int], values: [Float]) {
        try readNumeric(path, memType: shim_H5T_NATIVE_FLOAT(), zero: Float(0), expected: "float32") {
            $0 == .float(bits: 32)
        }
    }

    /// Reads an integer dataset of any width and signedness, converted to Int64 by HDF5.
    /// - Throws: `.missingObject`, or `.wrongType` when the dataset is not an integer dataset.
    public func readInt64(_ path: String) throws -> (shape: [Int], values: [Int64]) {
        try readNumeric(path, memType: shim_H5T_NATIVE_INT64(), zero: Int64(0), expected: "integer") {
            if case .integer = $0 { return true } else { return false }
        }
    }

    /// Reads a uint8 dataset.
    /// - Throws: `.missingObject`, or `.wrongType` when the dataset is not uint8.
    public func readUInt8(_ path: String) throws -> (shape: [Int], values: [UInt8]) {
        try readNumeric(path, memType: shim_H5T_NATIVE_UINT8(), zero: UInt8(0), expected: "uint8") {
            $0 == .integer(bits: 8, signed: false)
        }
    }

    /// Writes a 1-D dataset of variable-length UTF-8 strings (what h5py writes for a list of `str`).
    /// Strings must not contain NUL characters (C strings).
    public func writeStrings(_ path: String, _ strings: [String]) throws {
        guard !exists(path) else {
            throw failure(.invalidArgument, path, "\(objectPath(path)) already exists", stack: false)
        }
        let space = try makeSpace([strings.count], path)
        defer { _ = H5Sclose(space) }
        let lcpl = try linkCreationList()
        defer { _ = H5Pclose(lcpl) }
        try withVariableStrings(strings, path) { type, buffer in
            let dset = try check(
                H5Dcreate2(id, path, type, space, lcpl, shim_H5P_DEFAULT(), shim_H5P_DEFAULT()),
                "creating string dataset", path)
            defer { _ = H5Dclose(dset) }
            if !strings.isEmpty {
                try check(H5Dwrite(dset, type, shim_H5S_ALL(), shim_H5S_ALL(), shim_H5P_DEFAULT(), buffer),
                          "writing string dataset", path)
            }
        }
    }

    /// Reads a string dataset (variable- or fixed-length, any rank, flattened in row-major order).
    /// Fixed-length strings are cut at the first NUL (and trailing spaces for space-padded types).
    /// - Throws: `.missingObject`, or `.wrongType` when the dataset does not hold strings.
    public func readStrings(_ path: String) throws -> [String] {
        try withDataset(path) { dset, ftype, space in
            try readStringValues(fileType: ftype, space: space, path) { memType, buffer in
                H5Dread(dset, memType, shim_H5S_ALL(), shim_H5S_ALL(), shim_H5P_DEFAULT(), buffer)
            }
        }
    }

    // MARK: Helpers shared with attributes

    func openDataset(_ path: String) throws -> hid_t {
        guard isDataset(path) else {
            throw failure(.missingObject, path, "no dataset \(objectPath(path)) in this file", stack: false)
        }
        return try check(H5Dopen2(id, path, shim_H5P_DEFAULT()), "opening dataset", path)
    }

    /// Opens dataset `path` with its file datatype and dataspace for `body`, and closes all three after.
    func withDataset<T>(_ path: String, _ body: (_ dset: hid_t, _ fileType: hid_t, _ space: hid_t) throws -> T) throws -> T {
        let dset = try openDataset(path)
        defer { _ = H5Dclose(dset) }
        let ftype = try check(H5Dget_type(dset), "reading the datatype", path)
        defer { _ = H5Tclose(ftype) }
        let space = try check(H5Dget_space(dset), "reading the dataspace", path)
        defer { _ = H5Sclose(space) }
        return try body(dset, ftype, space)
    }

    func makeSpace(_ shape: [Int], _ object: String) throws -> hid_t {
        if shape.isEmpty { return try check(H5Screate(H5S_SCALAR), "creating a dataspace", object) }
        var dims = shape.map { hsize_t($0) }
        return try check(H5Screate_simple(Int32(dims.count), &dims, nil), "creating a dataspace", object)
    }

    func shape(of space: hid_t, _ object: String) throws -> [Int] {
        let rank = try check(H5Sget_simple_extent_ndims(space), "reading the rank", object)
        var dims = [hsize_t](repeating: 0, count: Int(rank))
        if rank > 0 { try check(H5Sget_simple_extent_dims(space, &dims, nil), "reading the dimensions", object) }
        return dims.map { Int($0) }
    }

    private func writeNumeric<T>(_ path: String, shape: [Int], values: [T], fileType: hid_t, memType: hid_t) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw failure(.invalidArgument, path,
                          "shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)", stack: false)
        }
        guard !exists(path) else {
            throw failure(.invalidArgument, path, "\(objectPath(path)) already exists", stack: false)
        }
        let space = try makeSpace(shape, path)
        defer { _ = H5Sclose(space) }
        let lcpl = try linkCreationList()
        defer { _ = H5Pclose(lcpl) }
        let dset = try check(H5Dcreate2(id, path, fileType, space, lcpl, shim_H5P_DEFAULT(), shim_H5P_DEFAULT()),
                             "creating dataset", path)
        defer { _ = H5Dclose(dset) }
        if values.isEmpty { return }
        _ = try values.withUnsafeBytes { raw in
            try check(H5Dwrite(dset, memType, shim_H5S_ALL(), shim_H5S_ALL(), shim_H5P_DEFAULT(), raw.baseAddress),
                      "writing dataset", path)
        }
    }

    private func readNumeric<T>(
        _ path: String, memType: hid_t, zero: T, expected: String, accept: (H5ElementType) -> Bool
    ) throws -> (shape: [Int], values: [T]) {
        try withDataset(path) { dset, ftype, space in
            let found = H5ElementType(typeID: ftype)
            guard accept(found) else {
                throw failure(.wrongType, path, "expected a \(expected) dataset, found \(found)", stack: false)
            }
            let shape = try shape(of: space, path)
            var values = [T](repeating: zero, count: shape.reduce(1, *))
            if !values.isEmpty {
                _ = try values.withUnsafeMutableBytes { raw in
                    try check(H5Dread(dset, memType, shim_H5S_ALL(), shim_H5S_ALL(), shim_H5P_DEFAULT(), raw.baseAddress),
                              "reading dataset", path)
                }
            }
            return (shape, values)
        }
    }

    /// Calls `body` with a variable-length UTF-8 string type and a buffer of C-string pointers.
    func withVariableStrings(
        _ strings: [String], _ object: String, _ body: (hid_t, UnsafeRawPointer?) throws -> Void
    ) throws {
        let type = try check(H5Tcopy(shim_H5T_C_S1()), "copying the string type", object)
        defer { _ = H5Tclose(type) }
        try check(H5Tset_size(type, shim_H5T_VARIABLE()), "making a variable-length string type", object)
        try check(H5Tset_cset(type, H5T_CSET_UTF8), "setting UTF-8", object)
        let pointers = strings.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        try pointers.withUnsafeBytes { try body(type, $0.baseAddress) }
    }

    /// Reads all strings of a dataset or attribute whose file type is `fileType` over `space`.
    func readStringValues(
        fileType: hid_t, space: hid_t, _ object: String, read: (hid_t, UnsafeMutableRawPointer?) -> herr_t
    ) throws -> [String] {
        let found = H5ElementType(typeID: fileType)
        guard case .string(let variable) = found else {
            throw failure(.wrongType, object, "expected strings, found \(found)", stack: false)
        }
        let count = Int(try check(H5Sget_simple_extent_npoints(space), "counting elements", object))
        if count == 0 { return [] }
        if variable {
            let memType = try check(H5Tcopy(shim_H5T_C_S1()), "copying the string type", object)
            defer { _ = H5Tclose(memType) }
            try check(H5Tset_size(memType, shim_H5T_VARIABLE()), "making a variable-length string type", object)
            try check(H5Tset_cset(memType, H5Tget_cset(fileType)), "setting the character set", object)
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            _ = try pointers.withUnsafeMutableBytes { try check(read(memType, $0.baseAddress), "reading strings", object) }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            _ = pointers.withUnsafeMutableBytes { H5Dvlen_reclaim(memType, space, shim_H5P_DEFAULT(), $0.baseAddress) }
            return strings
        }
        let size = H5Tget_size(fileType)
        let memType = try check(H5Tcopy(fileType), "copying the string type", object)
        defer { _ = H5Tclose(memType) }
        var bytes = [UInt8](repeating: 0, count: count * size)
        _ = try bytes.withUnsafeMutableBytes { try check(read(memType, $0.baseAddress), "reading strings", object) }
        let spacePadded = H5Tget_strpad(fileType) == H5T_STR_SPACEPAD
        return (0..<count).map { index in
            var chunk = bytes[(index * size)..<((index + 1) * size)]
            if let nul = chunk.firstIndex(of: 0) { chunk = chunk[..<nul] }
            if spacePadded { while chunk.last == 0x20 { chunk = chunk.dropLast() } }
            return String(decoding: chunk, as: UTF8.self)
        }
    }
}
