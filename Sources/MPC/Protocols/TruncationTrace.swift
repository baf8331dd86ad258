import Foundation

/// Diagnostics: every share a party truncates, written to a file so that the two parties' files can be
/// paired offline and each truncation site's failure probability computed from the actual values
/// (`scripts/bench/truncation_sites.py`). Off unless the environment variable
/// `SECUREROUTER_TRACE_TRUNCATION` names a path prefix; each party then writes `PREFIX.party0` /
/// `PREFIX.party1`. The files hold secret shares: use only on test data.
///
/// Record: label length (UInt32 LE), label (UTF-8: the profile section and the site's index within it),
/// shift bits (UInt32), element count (UInt64), the shares (UInt64 LE each).
enum TruncationTrace {
    nonisolated(unsafe) static var prefix: String? = ProcessInfo.processInfo.environment["SECUREROUTER_TRACE_TRUNCATION"]
    nonisolated(unsafe) static var handle: FileHandle?
    nonisolated(unsafe) static var section = ""
    nonisolated(unsafe) static var site = 0

    /// Called by `PartyBackend.enterSection`.
    static func enter(_ name: String) {
        guard prefix != nil else { return }
        section = name
        site = 0
    }

    static func record(_ party: PartyID, bits: Int, _ data: [UInt64]) {
        guard let prefix else { return }
        if handle == nil {
            let path = "\(prefix).party\(party.rawValue)"
            FileManager.default.createFile(atPath: path, contents: nil)
            handle = FileHandle(forWritingAtPath: path)
        }
        let label = Array("\(section)#\(site)".utf8)
        site += 1
        var out = Data()
        withUnsafeBytes(of: UInt32(label.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: label)
        withUnsafeBytes(of: UInt32(bits).littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt64(data.count).littleEndian) { out.append(contentsOf: $0) }
        data.withUnsafeBytes { out.append(contentsOf: $0) }
        handle?.write(out)
    }
}
