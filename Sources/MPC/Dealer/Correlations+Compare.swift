// The comparison correlation (DReLU key): its type, the dealer's generator and the decoder. The online
// evaluator is `Party.drelu` (Protocols/Party+Compare.swift).

/// One party's DReLU key for a tensor of elements: everything needed to turn `x + r` (opened) into an
/// arithmetic share of the bit `x ≥ 0` (signed) with no further communication.
///
/// The dealer samples the mask `r` uniformly and gives each party: an additive share of `r`, an additive
/// share of `msb(r)`, and a key of the 63-bit DCF `f(y) = β · 1{y < r mod 2^63}` with `β = 1 − 2·msb(r)`
/// (so `msb(r) + f(y) = msb(r) ⊕ 1{y < r mod 2^63}`). Each part alone is uniform or pseudorandom.
public struct DReLUKey: Sendable {
    /// This party's additive share of the mask `r` (uniform on its own).
    public var mask: RingTensor
    /// This party's additive share of `msb(r)` ∈ {0, 1} (uniform on its own).
    public var maskMSB: RingTensor
    /// This party's DCF keys (63-bit inputs, payload in Z_2^64).
    var dcf: DCFKeys
}

extension Dealer {
    /// Deals a DReLU key of `shape` (consumed by `Party.drelu`, and by everything built on it).
    ///
    /// Each party's mask share and DCF root seeds come from the PRG it shares with the dealer (free);
    /// party 0's share of `msb(r)` too. Offline cost per element: the 63-level DCF corrections,
    /// 3·63 + 3 = 192 words = 1536 bytes, to each party, plus 8 bytes (party 1's share of `msb(r)`)
    /// to party 1: 3080 bytes in all. Dealer work: 6 fixed-key AES blocks per level per element.
    public func dreluKey(shape: [Int]) throws {
        try signKey(kind: .dreluKey, shape: shape, count: RingTensor.count(of: shape), width: 64)
    }

    /// The records of `dreluKey` and `comparisonKey`: masks `r ∈ Z_2^w` (both parties' shares from their
    /// PRGs), shares of bit w−1 of `r` (party 1's is the only extra payload), and (w−1)-bit DCF keys for
    /// `α = r mod 2^(w−1)`, `β = 1 − 2·msb_w(r)`.
    func signKey(kind: CorrelationKind, shape: [Int], count n: Int, width w: Int) throws {
        precondition(w >= 2 && w <= 64)
        let low = w == 64 ? UInt64.max : (UInt64(1) << UInt64(w)) - 1
        let r0 = draw(.client, n), roots0 = draw(.client, 2 * n), msb0 = draw(.client, n)
        let r1 = draw(.server, n), roots1 = draw(.server, 2 * n)
        var alpha = [UInt64](repeating: 0, count: n), beta = alpha, msb1 = alpha
        for i in 0..<n {
            let r = (r0[i] &+ r1[i]) & low
            let top = r >> UInt64(w - 1)
            alpha[i] = r & (low >> 1)
            beta[i] = 1 &- 2 &* top
            msb1[i] = top &- msb0[i]
        }
        let record = DealerRecord(kind: kind, shape: shape,
                                  payload: DCF.generate(bits: w - 1, alpha: alpha, beta: beta, roots0: roots0, roots1: roots1))
        try emit(.client, record)
        try emit(.server, record, extra: msb1)
    }
}

/// One party's key for narrow comparisons of N elements (`Party.stepBits`): the input is first truncated
/// to `w` bits, then compared against any number of public thresholds with the same mask.
public struct ComparisonKey: Sendable {
    /// Comparison width w in bits (2 ... 64).
    public var width: Int
    /// This party's share of the mask `r ∈ Z_2^w`, one per element (low `w` bits used).
    public var mask: [UInt64]
    /// This party's additive share (in Z_2^64) of bit w−1 of `r`.
    public var maskMSB: [UInt64]
    /// DCF keys over the low w−1 bits, `α = r mod 2^(w−1)`, `β = 1 − 2·msb_w(r)`.
    var dcf: DCFKeys
}

extension Dealer {
    /// Deals a narrow comparison key for `count` elements of width `width` (consumed by `Party.stepBits`).
    ///
    /// As `dreluKey`, with the mask in Z_2^w and a (w−1)-level DCF: offline per element
    /// 8·(3(w−1) + 3) bytes to each party plus 8 to party 1 (768 + 776 bytes for w = 32).
    public func comparisonKey(count n: Int, width w: Int) throws {
        try signKey(kind: .comparisonKey, shape: [n, w], count: n, width: w)
    }
}

extension DealerStream {
    /// Next record must be `comparisonKey([count, width])`.
    public func comparisonKey(count n: Int, width w: Int) throws -> ComparisonKey {
        let k = try signKey(kind: .comparisonKey, shape: [n, w], count: n, width: w)
        return ComparisonKey(width: w, mask: k.mask, maskMSB: k.msb, dcf: k.dcf)
    }

    /// Next record must be `dreluKey(shape)`.
    public func dreluKey(shape: [Int]) throws -> DReLUKey {
        let k = try signKey(kind: .dreluKey, shape: shape, count: RingTensor.count(of: shape), width: 64)
        return DReLUKey(mask: RingTensor(shape: shape, data: k.mask), maskMSB: RingTensor(shape: shape, data: k.msb), dcf: k.dcf)
    }

    /// This party's side of `Dealer.signKey`.
    private func signKey(kind: CorrelationKind, shape: [Int], count n: Int, width w: Int) throws -> (mask: [UInt64], msb: [UInt64], dcf: DCFKeys) {
        let keyWords = DCF.correctionWords(bits: w - 1) * n
        var payload = try next(kind, shape: shape, payloadCount: keyWords + (party == .client ? 0 : n))
        let mask = draw(n), roots = draw(2 * n)
        let msb: [UInt64]
        if party == .client {
            msb = draw(n)
        } else {
            msb = Array(payload[keyWords...])
            payload.removeLast(n)
        }
        return (mask, msb, DCFKeys(bits: w - 1, count: n, roots: roots, corrections: payload))
    }
}
