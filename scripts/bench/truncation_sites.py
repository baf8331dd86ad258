#!/usr/bin/env python3
"""Per-site truncation failure probabilities from the two parties' traces.

    SECUREROUTER_TRACE_TRUNCATION=/tmp/trace securerouter secure-eval ... --limit 5
    python3 scripts/bench/truncation_sites.py /tmp/trace [--queries 5]

Pairs the records of /tmp/trace.party0 and .party1 (same order on both parties), reconstructs each
truncated value x = x0 + x1 (mod 2^64, signed) and sums |x| / 2^64 per site: the expected number of
failed local truncations (SecureML) per query at that site. Also counts the failures that actually
happened (the shares' shifted sum differs from x >> bits by more than 1).

    SECUREROUTER_TRACE_TRUNCATION=/tmp/trace SECUREROUTER_TRACE_TRUNCATION_BAND=56 securerouter secure-eval ...
    python3 scripts/bench/truncation_sites.py /tmp/trace --band

With the band the parties keep only shares near the ends of the signed range, where failures happen, so
a whole split can be traced: the script then lists every failed truncation (query, site, element, |x|).
"""
import struct, sys, collections
import numpy as np

def records(path, band=False):
    with open(path, 'rb') as f:
        while True:
            h = f.read(4)
            if not h: return
            n = struct.unpack('<I', h)[0]
            label = f.read(n).decode()
            bits, count = struct.unpack('<IQ', f.read(12))
            if not band:
                yield label, bits, np.frombuffer(f.read(8 * count), dtype='<u8')
                continue
            kept = struct.unpack('<Q', f.read(8))[0]
            idx = np.frombuffer(f.read(4 * kept), dtype='<u4')
            yield label, bits, count, idx, np.frombuffer(f.read(8 * kept), dtype='<u8')

def banded(prefix, first_section):
    """Lists the failed truncations of a banded trace; a query starts at each FIRST_SECTION#0 record."""
    query, failures, records_seen, kept = -1, [], 0, 0
    for (l0, b0, n0, i0, x0), (l1, b1, n1, i1, x1) in zip(records(prefix + '.party0', True), records(prefix + '.party1', True)):
        assert l0 == l1 and b0 == b1 and n0 == n1, (l0, l1)
        if l0 == first_section + '#0': query += 1
        records_seen += 1; kept += len(i0) + len(i1)
        common, a, b = np.intersect1d(i0, i1, return_indices=True)
        if len(common) == 0: continue
        s0, s1 = x0[a], x1[b]
        x = (s0 + s1).view('<i8')
        t0 = s0.view('<i8') >> b0
        t1 = -((-(s1.view('<i8'))) >> b0)
        bad = np.abs((t0 + t1) - (x >> b0)) > 1
        for k in np.nonzero(bad)[0]:
            failures.append((query, l0, int(common[k]), int(x[k])))
    print(f"{query + 1} queries, {records_seen} truncations, {kept} shares kept")
    for q, label, element, value in failures:
        print(f"query {q}: {label} element {element}: x = {value} (2^{np.log2(abs(value) + 1):.1f})")
    print(f"{len(failures)} failed truncations")

def main():
    prefix = sys.argv[1]
    if '--band' in sys.argv:
        first = sys.argv[sys.argv.index('--first-section') + 1] if '--first-section' in sys.argv else 'embedding'
        return banded(prefix, first)
    queries = int(sys.argv[sys.argv.index('--queries') + 1]) if '--queries' in sys.argv else 1
    expected, failed, elements, peak = collections.Counter(), collections.Counter(), collections.Counter(), {}
    for (l0, b0, x0), (l1, b1, x1) in zip(records(prefix + '.party0'), records(prefix + '.party1')):
        assert l0 == l1 and b0 == b1 and len(x0) == len(x1), (l0, l1)
        x = (x0 + x1).view('<i8').astype(np.float64)
        expected[l0] += float(np.abs(x).sum()) / 2.0**64
        elements[l0] += len(x)
        peak[l0] = max(peak.get(l0, 0.0), float(np.abs(x).max()) if len(x) else 0.0)
        t0 = (x0.view('<i8') >> b0).astype(np.int64)
        t1 = -((-(x1.view('<i8'))) >> b0).astype(np.int64)
        exact = (x0 + x1).view('<i8') >> b0
        got = (t0 + t1)
        failed[l0] += int((np.abs(got - exact) > 1).sum())
    total = sum(expected.values())
    print(f"{'site':28s} {'elements/q':>12s} {'expected fails/q':>17s} {'peak |x|':>10s} {'failed':>6s}")
    for k in sorted(expected, key=lambda k: -expected[k])[:25]:
        print(f"{k:28s} {elements[k] / queries:12.0f} {expected[k] / queries:17.2e} {'2^%.1f' % np.log2(max(peak[k], 1)):>10s} {failed[k]:6d}")
    print(f"total expected failures per query: {total / queries:.2e} (x853 = {853 * total / queries:.2f})")

if __name__ == '__main__':
    main()
