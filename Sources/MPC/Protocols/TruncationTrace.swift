import Foundation

/// Diagnostics: every share a party truncates, written to a file so that the two parties' files can be
/// paired offline and each truncation site's failure probability computed from the actual values
/// (`scripts/bench/truncation_sites.py`). Off unless the environment variable
/// `SECUREROUTER_TRACE_TRUNCATION` names a path prefix; each party then writes `PREFIX.party0` /
/// `PREFIX.party1`. The files hold secret shares: use only on test data.
///
/// Record: label length (UInt32 LE), label (UTF-8: the profile section and the site's index within it),
/// shift bits (UInt32), element count (UInt64), the shares (UInt64 LE each).
///
/// With `SECUREROUTER_TRACE_TRUNCATION_BAND=B` a party writes only the elements whose own signed share
/// (party 0: `x0`, party 1: `-x1`) lies within `2^B` of the signed range's ends: a local truncation can
/// fail only there (both shares must be that close when `|x| <= 2^B`), so whole test splits can be traced
/// at about `2^(B-63)` of the size. Record: as above, then the number kept (UInt64), their indices
/// (UInt32 LE each) and their shares.
enum TruncationTrace {
    nonisolated(unsafe) static var prefix: String? = ProcessInfo.processInfo.environment["SECUREROUTER_TRACE_TRUNCATION"]
    nonisolated(unsafe) static var band: Int? = ProcessInfo.processInfo.environment["SECUREROUTER_TRACE_TRUNCATION_BAND"].flatMap { Int($0) }
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
        if let band {
            // Offset to unsigned: the signed ends -2^63 and 2^63 - 1 become 0 and 2^64 - 1.
            let top = UInt64.max >> UInt64(band)
            var indices: [UInt32] = [], kept: [UInt64] = []
            for (i, v) in data.enumerated() {
                let high = ((party == .client ? v : 0 &- v) &+ (UInt64(1) << 63)) >> UInt64(band)
                if high == 0 || high == top { indices.append(UInt32(i)); kept.append(v) }
            }
            withUnsafeBytes(of: UInt64(kept.count).littleEndian) { out.append(contentsOf: $0) }
            indices.withUnsafeBytes { out.append(contentsOf: $0) }
            kept.withUnsafeBytes { out.append(contentsOf: $0) }
        } else {
            data.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        handle?.write(out)
    }
}
