import CHDF5
import Foundation

private final class NameCollector {
    var names: [String] = []
}

// Scalar attributes on a group or on one of its members (`on:` a relative path): strings (read variable- or fixed-length, written as
// variable-length UTF-8 like h5py), integers (any width, h5py bool enums) and doubles.
extension H5Group {
    /// Whether the object `target` (this group by default, or a member path) has an attribute `name`.
    public func hasAttribute(_ name: String, on target: String = ".") -> Bool {
        if target != "." && !exists(target) { return false }
        let found = H5Aexists_by_name(id, target, name, shim_H5P_DEFAULT())
        if found < 0 { _ = H5Eclear2(shim_H5E_DEFAULT()) }
        return found > 0
    }

    /// The names of the attributes of `target` (this group by default), in name order.
    public func attributeNames(on target: String = ".") throws -> [String] {
        let collector = NameCollector()
        try withExtendedLifetime(collector) {
            let context = Unmanaged.passUnretained(collector).toOpaque()
            try check(H5Aiterate_by_name(id, target, H5_INDEX_NAME, H5_ITER_INC, nil, { _, name, _, context in
                guard let name, let context else { return 0 }
                Unmanaged<NameCollector>.fromOpaque(context).takeUnretainedValue().names.append(String(cString: name))
                return 0
            }, context, shim_H5P_DEFAULT()), "listing attributes", target)
        }
        return collector.names
    }

    /// Reads the scalar (or one-element) attribute `name` of `target` (this group by default).
    /// - Throws: `.missingObject` when absent; `.wrongType` when it is not a single string/number.
    public func readAttribute(_ name: String, on target: String = ".") throws -> H5AttributeValue {
        let object = attributePath(name, target)
        guard hasAttribute(name, on: target) else {
            throw failure(.missingObject, object, "no attribute \(name) on \(objectPath(target))", stack: false)
        }
        let attr = try check(H5Aopen_by_name(id, target, name, shim_H5P_DEFAULT(), shim_H5P_DEFAULT()),
                             "opening attribute", object)
        defer { _ = H5Aclose(attr) }
        let ftype = try check(H5Aget_type(attr), "reading the attribute type", object)
        defer { _ = H5Tclose(ftype) }
        let space = try check(H5Aget_space(attr), "reading the attribute dataspace", object)
        defer { _ = H5Sclose(space) }
        let count = try check(H5Sget_simple_extent_npoints(space), "counting elements", object)
        let found = H5ElementType(typeID: ftype)
        guard count == 1 else {
            throw failure(.wrongType, object, "expected a scalar attribute, found \(count) elements of \(found)",
                          stack: false)
        }
        switch found {
        case .string:
            let strings = try readStringValues(fileType: ftype, space: space, object) { H5Aread(attr, $0, $1) }
            return .string(strings[0])
        case .integer:
            var value: Int64 = 0
            try check(H5Aread(attr, shim_H5T_NATIVE_INT64(), &value), "reading attribute", object)
            return .integer(value)
        case .float:
            var value: Double = 0
            try check(H5Aread(attr, shim_H5T_NATIVE_DOUBLE(), &value), "reading attribute", object)
            return .double(value)
        case .enumeration:
            return .integer(try readEnumAttribute(attr, ftype, object))
        case .other:
            throw failure(.wrongType, object, "expected a string or number attribute, found \(found)", stack: false)
        }
    }

    /// `object@name` for messages (`@name` for an attribute of this group).
    func attributePath(_ name: String, _ target: String) -> String {
        (target == "." ? "" : target) + "@" + name
    }

    /// Reads an enum attribute (h5py stores Python bools as an int8 enum FALSE=0, TRUE=1) as its integer value.
    private func readEnumAttribute(_ attr: hid_t, _ ftype: hid_t, _ object: String) throws -> Int64 {
        let native = try check(H5Tget_native_type(ftype, H5T_DIR_ASCEND), "reading the native enum type", object)
        defer { _ = H5Tclose(native) }
        let base = try check(H5Tget_super(ftype), "reading the enum base type", object)
        defer { _ = H5Tclose(base) }
        var bytes = [UInt8](repeating: 0, count: 8)
        _ = try bytes.withUnsafeMutableBytes { try check(H5Aread(attr, native, $0.baseAddress), "reading attribute", object) }
        let size = H5Tget_size(native)
        let signed = H5Tget_sign(base) == H5T_SGN_2
        return bytes.withUnsafeBytes { raw -> Int64 in
            switch (size, signed) {
            case (1, true): return Int64(raw.load(as: Int8.self))
            case (1, false): return Int64(raw.load(as: UInt8.self))
            case (2, true): return Int64(raw.load(as: Int16.self))
            case (2, false): return Int64(raw.load(as: UInt16.self))
            case (4, true): return Int64(raw.load(as: Int32.self))
            case (4, false): return Int64(raw.load(as: UInt32.self))
            default: return raw.load(as: Int64.self)
            }
        }
    }

    /// Reads the string attribute `name` (variable- or fixed-length).
    /// - Throws: `.missingObject` when absent, `.wrongType` when it is not a string.
    public func readStringAttribute(_ name: String, on target: String = ".") throws -> String {
        guard case .string(let text) = try readAttribute(name, on: target) else {
            throw failure(.wrongType, attributePath(name, target), "attribute \(name) is not a string", stack: false)
        }
        return text
    }

    /// Writes (or replaces) a scalar attribute: strings as variable-length UTF-8, integers as
    /// int64, doubles as float64.
    public func writeAttribute(_ name: String, _ value: H5AttributeValue, on target: String = ".") throws {
        switch value {
        case .string(let text):
            try withVariableStrings([text], attributePath(name, target)) { type, buffer in
                try writeScalarAttribute(name, target, fileType: type, memType: type, buffer)
            }
        case .integer(var number):
            try writeScalarAttribute(name, target, fileType: shim_H5T_STD_I64LE(), memType: shim_H5T_NATIVE_INT64(),
                                     &number)
        case .double(var number):
            try writeScalarAttribute(name, target, fileType: shim_H5T_IEEE_F64LE(), memType: shim_H5T_NATIVE_DOUBLE(),
                                     &number)
        }
    }

    /// Writes (or replaces) a scalar uint8 attribute (used for flags such as `do_lower_case`).
    public func writeAttribute(_ name: String, uint8 value: UInt8, on target: String = ".") throws {
        var number = value
        try writeScalarAttribute(name, target, fileType: shim_H5T_STD_U8LE(), memType: shim_H5T_NATIVE_UINT8(), &number)
    }

    private func writeScalarAttribute(
        _ name: String, _ target: String, fileType: hid_t, memType: hid_t, _ buffer: UnsafeRawPointer?
    ) throws {
        let object = attributePath(name, target)
        guard target == "." || exists(target) else {
            throw failure(.missingObject, object, "no object \(objectPath(target)) to attach attribute \(name) to",
                          stack: false)
        }
        if hasAttribute(name, on: target) {
            try check(H5Adelete_by_name(id, target, name, shim_H5P_DEFAULT()), "replacing attribute", object)
        }
        let space = try makeSpace([], object)
        defer { _ = H5Sclose(space) }
        let attr = try check(
            H5Acreate_by_name(id, target, name, fileType, space, shim_H5P_DEFAULT(), shim_H5P_DEFAULT(),
                              shim_H5P_DEFAULT()), "creating attribute", object)
        defer { _ = H5Aclose(attr) }
        try check(H5Awrite(attr, memType, buffer), "writing attribute", object)
    }
}
