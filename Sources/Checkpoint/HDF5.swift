import CHDF5
import Foundation

// The one checked layer over libhdf5 (STYLE: "wrap each C library in one checked layer").
//
// - Every handle is closed deterministically: `H5File` and `H5Group` close their ids in
//   `deinit`; every transient id (dataspace, datatype, dataset, attribute, property list)
//   is closed by a `defer` right after it is opened.
// - HDF5's automatic error printing is switched off once per process; when a call fails,
//   its error stack is walked with `H5Ewalk2` and put into the thrown `CheckpointError`.
// - Threads: Debian's libhdf5 1.10 "serial" package happens to be built thread-safe
//   (`H5_HAVE_THREADSAFE`: one global lock inside the library, per-thread error stacks), but
//   other builds are not, and an `H5File`'s ids must not be used from two threads at once.
//   So `H5File` and `H5Group` are not `Sendable`, and all our file-level entry points
//   (`ModelCheckpoint.read/write/writeBundle/listModels`, `H5File.writeAtomically`) run
//   under one process-wide recursive lock; wrap other direct use in
//   `H5File.withLibraryLock { ... }` when other threads may touch HDF5. The error stack
//   is read on the failing thread right after the failing call.
// - A group keeps its file object alive, so a file is closed when its last group is gone.

/// Serialises all use of libhdf5 in this process (see the threading note above).
private let hdf5Lock = NSRecursiveLock()

/// Initialises libhdf5 (runs once, lazily).
private let hdf5Initialized: Bool = { H5open() >= 0 }()

/// Initialises libhdf5 and silences its automatic error printing for the calling thread.
/// Debian's build has `H5_HAVE_THREADSAFE`, where the error-printing setting (like the error
/// stack) is per thread, so this runs at every entry point; it is a cheap call.
func prepareHDF5Thread() {
    _ = hdf5Initialized
    _ = H5Eset_auto2(shim_H5E_DEFAULT(), nil, nil)
}

private final class LineCollector {
    var lines: [String] = []
}

/// Reads and clears HDF5's current error stack: one line per entry, outermost (API) first.
func hdf5ErrorStack() -> [String] {
    let collector = LineCollector()
    withExtendedLifetime(collector) {
        let context = Unmanaged.passUnretained(collector).toOpaque()
        _ = H5Ewalk2(shim_H5E_DEFAULT(), H5E_WALK_DOWNWARD, { n, entry, context in
            guard let entry, let context else { return 0 }
            let collector = Unmanaged<LineCollector>.fromOpaque(context).takeUnretainedValue()
            let e = entry.pointee
            let function = e.func_name.map { String(cString: $0) } ?? "?"
            let desc = e.desc.map { String(cString: $0) } ?? ""
            var minor = [CChar](repeating: 0, count: 256)
            _ = H5Eget_msg(e.min_num, nil, &minor, minor.count)
            let minorText = stringFromCChars(minor)
            collector.lines.append("#\(n) \(function)(): \(desc) [\(minorText)]")
            return 0
        }, context)
    }
    _ = H5Eclear2(shim_H5E_DEFAULT())
    return collector.lines
}

/// The element type of a dataset or attribute, as far as the checkpoint code cares.
public enum H5ElementType: Equatable, Sendable, CustomStringConvertible {
    case float(bits: Int)
    case integer(bits: Int, signed: Bool)
    case enumeration(bits: Int)
    case string(variableLength: Bool)
    case other(String)

    public var description: String {
        switch self {
        case .float(let bits): return "float\(bits)"
        case .integer(let bits, let signed): return (signed ? "int" : "uint") + "\(bits)"
        case .enumeration(let bits): return "enum\(bits)"
        case .string(let variable): return variable ? "variable-length string" : "fixed-length string"
        case .other(let name): return name
        }
    }

    init(typeID t: hid_t) {
        let bits = Int(H5Tget_size(t)) * 8
        let cls = H5Tget_class(t)
        if cls == H5T_FLOAT {
            self = .float(bits: bits)
        } else if cls == H5T_INTEGER {
            self = .integer(bits: bits, signed: H5Tget_sign(t) != H5T_SGN_NONE)
        } else if cls == H5T_ENUM {
            self = .enumeration(bits: bits)
        } else if cls == H5T_STRING {
            self = .string(variableLength: H5Tis_variable_str(t) > 0)
        } else {
            self = .other("HDF5 type class \(cls.rawValue)")
        }
    }
}

/// The value of a scalar attribute. Integers of any width (and h5py's bool enums) read as
/// `.integer`; `.integer` is written as int64, `.double` as float64, `.string` as a
/// variable-length UTF-8 string (as h5py writes a Python `str`).
public enum H5AttributeValue: Equatable, Sendable {
    case string(String)
    case integer(Int64)
    case double(Double)
}

/// An open HDF5 file. Closed when the last reference (including its groups) goes away.
public final class H5File {
    /// The path the file was opened or created with (used in every error message).
    public let path: String
    let id: hid_t

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    deinit { H5File.withLibraryLock { _ = H5Fclose(id) } }

    /// Runs `body` holding the process-wide libhdf5 lock (recursive: nested calls are fine).
    /// Every `H5File`/`H5Group` created inside should also be released inside.
    public static func withLibraryLock<T>(_ body: () throws -> T) rethrows -> T {
        hdf5Lock.lock()
        defer { hdf5Lock.unlock() }
        prepareHDF5Thread()
        return try body()
    }

    /// Creates (or truncates) the file at `path` for writing.
    /// - Throws: `CheckpointError` (`.hdf5`) with HDF5's error stack when creation fails.
    public static func create(path: String) throws -> H5File {
        prepareHDF5Thread()
        let id = H5Fcreate(path, shim_H5F_ACC_TRUNC(), shim_H5P_DEFAULT(), shim_H5P_DEFAULT())
        if id < 0 {
            throw CheckpointError(
                .hdf5, path: path, message: "cannot create HDF5 file (check the directory exists and is writable)",
                hdf5Stack: hdf5ErrorStack())
        }
        return H5File(path: path, id: id)
    }

    /// Opens an existing file, read-only unless `writable`.
    /// - Throws: `.noSuchFile` ("no such file: PATH"), `.notHDF5` (no HDF5 signature),
    ///   `.corrupt` (signature present but the file cannot be opened, e.g. truncated).
    public static func open(path: String, writable: Bool = false) throws -> H5File {
        prepareHDF5Thread()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue
        else {
            throw CheckpointError(.noSuchFile, path: path, message: "no such file: \(path)")
        }
        let signature = H5Fis_hdf5(path)
        if signature == 0 {
            _ = hdf5ErrorStack()
            throw CheckpointError(
                .notHDF5, path: path, message: "not an HDF5 file (no HDF5 signature; is it a checkpoint?)")
        }
        let flags = writable ? shim_H5F_ACC_RDWR() : shim_H5F_ACC_RDONLY()
        let id = signature > 0 ? H5Fopen(path, flags, shim_H5P_DEFAULT()) : -1
        if id < 0 {
            throw CheckpointError(
                .corrupt, path: path,
                message: "corrupt or truncated HDF5 file (re-create it; a partial copy?)",
                hdf5Stack: hdf5ErrorStack())
        }
        return H5File(path: path, id: id)
    }

    /// The root group `/`.
    public func root() throws -> H5Group {
        prepareHDF5Thread()
        let gid = H5Gopen2(id, "/", shim_H5P_DEFAULT())
        if gid < 0 {
            throw CheckpointError(.hdf5, path: path, object: "/", message: "cannot open the root group",
                                  hdf5Stack: hdf5ErrorStack())
        }
        return H5Group(file: self, id: gid, name: "/")
    }

    /// Writes all buffered data of this file to disk (HDF5's `H5Fflush`, global scope).
    public func flush() throws {
        if H5Fflush(id, H5F_SCOPE_GLOBAL) < 0 {
            throw CheckpointError(.hdf5, path: path, message: "cannot flush the file", hdf5Stack: hdf5ErrorStack())
        }
    }

    /// Creates a file under a temporary name in the directory of `path`, lets `body` fill it,
    /// flushes, fsyncs, and renames it to `path` atomically. On any error the temporary file
    /// is removed and `path` is left untouched, so a crash never leaves a half checkpoint.
    public static func writeAtomically(to path: String, _ body: (H5File) throws -> Void) throws {
        try withLibraryLock { try writeAtomicallyLocked(to: path, body) }
    }

    private static func writeAtomicallyLocked(to path: String, _ body: (H5File) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-" + UUID().uuidString
        do {
            do {
                let file = try H5File.create(path: temporary)
                try body(file)
                try file.flush()
            }  // the file object is released here (closed unless `body` kept a reference)
            try fsyncFile(temporary)
            if rename(temporary, path) != 0 {
                let reason = String(cString: strerror(errno))
                throw CheckpointError(.io, path: path, message: "cannot rename \(temporary) to \(path): \(reason)")
            }
        } catch let error as CheckpointError {
            try? FileManager.default.removeItem(atPath: temporary)
            if error.path == temporary {  // report the destination, mention the temporary
                var e = error
                e.path = path
                e.message += " (while writing temporary file \(temporary))"
                throw e
            }
            throw error
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
    }
}

private func fsyncFile(_ path: String) throws {
    let fd = Foundation.open(path, O_RDONLY)
    if fd < 0 {
        throw CheckpointError(.io, path: path, message: "cannot open for fsync: \(String(cString: strerror(errno)))")
    }
    defer { _ = close(fd) }
    if fsync(fd) != 0 {
        throw CheckpointError(.io, path: path, message: "fsync failed: \(String(cString: strerror(errno)))")
    }
}

/// An open group. All names are paths relative to this group (`"weights/bert.x.weight"`);
/// link names may contain dots. Closed when the last reference goes away.
public final class H5Group {
    /// The file this group belongs to (kept alive by the group).
    public let file: H5File
    /// The absolute path of the group inside the file (for messages).
    public let name: String
    let id: hid_t

    init(file: H5File, id: hid_t, name: String) {
        self.file = file
        self.id = id
        self.name = name
    }

    deinit { H5File.withLibraryLock { _ = H5Gclose(id) } }

    /// The absolute object path of `relative` (for error messages).
    func objectPath(_ relative: String) -> String {
        relative.hasPrefix("/") ? relative : (name == "/" ? "/" : name + "/") + relative
    }

    func failure(_ kind: CheckpointError.Kind, _ object: String, _ message: String, stack: Bool = true)
        -> CheckpointError
    {
        CheckpointError(kind, path: file.path, object: objectPath(object), message: message,
                        hdf5Stack: stack ? hdf5ErrorStack() : [])
    }

    /// Throws `.hdf5` (with the error stack) when `status` is negative; returns it otherwise.
    @discardableResult
    func check<T: BinaryInteger>(_ status: T, _ what: String, _ object: String) throws -> T {
        if status < 0 { throw failure(.hdf5, object, "\(what) failed") }
        return status
    }

    // MARK: Links and groups

    /// Whether a link `path` (relative, may contain `/`) exists; intermediate groups are checked one by one.
    public func exists(_ path: String) -> Bool {
        var prefix = ""
        for component in path.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + component
            if H5Lexists(id, prefix, shim_H5P_DEFAULT()) <= 0 {
                _ = H5Eclear2(shim_H5E_DEFAULT())
                return false
            }
        }
        return !prefix.isEmpty
    }

    private func objectType(_ path: String) -> H5I_type_t? {
        guard exists(path) else { return nil }
        let oid = H5Oopen(id, path, shim_H5P_DEFAULT())
        if oid < 0 {
            _ = H5Eclear2(shim_H5E_DEFAULT())
            return nil
        }
        defer { _ = H5Oclose(oid) }
        return H5Iget_type(oid)
    }

    /// Whether `path` exists and is a group.
    public func isGroup(_ path: String) -> Bool { objectType(path) == H5I_GROUP }

    /// Whether `path` exists and is a dataset.
    public func isDataset(_ path: String) -> Bool { objectType(path) == H5I_DATASET }

    /// Opens the existing group `path`.
    /// - Throws: `.missingObject` when it does not exist or is not a group.
    public func openGroup(_ path: String) throws -> H5Group {
        guard isGroup(path) else {
            throw failure(.missingObject, path, "no group \(objectPath(path)) in this file", stack: false)
        }
        let gid = try check(H5Gopen2(id, path, shim_H5P_DEFAULT()), "opening group", path)
        return H5Group(file: file, id: gid, name: objectPath(path))
    }

    /// Creates group `path`, creating missing intermediate groups; opens it if it already exists.
    public func createGroup(_ path: String) throws -> H5Group {
        if isGroup(path) { return try openGroup(path) }
        let lcpl = try linkCreationList()
        defer { _ = H5Pclose(lcpl) }
        let gid = try check(H5Gcreate2(id, path, lcpl, shim_H5P_DEFAULT(), shim_H5P_DEFAULT()), "creating group", path)
        return H5Group(file: file, id: gid, name: objectPath(path))
    }

    /// A link-creation property list that creates missing intermediate groups (caller closes it).
    func linkCreationList() throws -> hid_t {
        let lcpl = try check(H5Pcreate(shim_H5P_LINK_CREATE()), "creating a link property list", "")
        if H5Pset_create_intermediate_group(lcpl, 1) < 0 {
            _ = H5Pclose(lcpl)
            throw failure(.hdf5, "", "setting create_intermediate_group failed")
        }
        return lcpl
    }

    /// The names of the direct members (links) of this group, in name order.
    public func memberNames() throws -> [String] {
        var info = H5G_info_t()
        try check(H5Gget_info(id, &info), "reading group info", "")
        var names: [String] = []
        names.reserveCapacity(Int(info.nlinks))
        for index in 0..<info.nlinks {
            let length = try check(
                H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, nil, 0, shim_H5P_DEFAULT()),
                "reading a link name", "")
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            try check(
                H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, index, &buffer, buffer.count,
                                   shim_H5P_DEFAULT()), "reading a link name", "")
            names.append(stringFromCChars(buffer))
        }
        return names
    }
}

/// Decodes a NUL-terminated C character buffer as UTF-8.
func stringFromCChars(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
