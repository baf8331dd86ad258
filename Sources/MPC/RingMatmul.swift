import CRingKernel
import Dispatch
import Foundation

/// The 64-bit ring matrix product `C = A·B mod 2^64`, the hot path of every linear layer.
///
/// Shapes: A [m, k], B [k, n], C [m, n], row-major. Method: B is transposed (Bt [n, k], once per session
/// for a weight: `RightOperand`) so both operands are read along contiguous rows; the k dimension is cut
/// into blocks of `kBlock` so a 4-row panel of A stays in L1 while columns of Bt stream from L2; a 4×2 register tile of wrapping multiply-adds
/// (8 accumulators, 6 loads per 8 products) is the inner kernel. Rows of C are split into panels spread
/// over the cores with `DispatchQueue.concurrentPerform`. There is no 64-bit SIMD multiply on the
/// baseline x86-64 target, so the scalar multiplier bounds throughput at about one product per cycle per core;
/// on CPUs with AVX-512 DQ (checked at run time) a C kernel multiplies eight lanes at once (`Kernel.avx512`,
/// 4x4 tiles of dot products along k). Both give the same words: sums mod 2^64 do not depend on their order.
public enum RingMatmul {
    /// The inner kernel of a product.
    public enum Kernel: String, Sendable, CaseIterable {
        /// Portable Swift, 4x2 register tiles.
        case scalar
        /// AVX-512 F/DQ `vpmullq` (C, `Sources/CRingKernel`).
        case avx512
    }

    /// The kernels this CPU runs.
    public static let available: [Kernel] = sr_ring_avx512_available() != 0 ? [.scalar, .avx512] : [.scalar]

    /// The kernel products use: the fastest available, or the one named by the environment variable
    /// `SECUREROUTER_RING_KERNEL` (`scalar` or `avx512`, if available) for comparisons.
    public static let defaultKernel: Kernel = preferredKernel(environment: "SECUREROUTER_RING_KERNEL", available: available)

    /// Columns of the k dimension processed per block.
    static let kBlock = 256
    /// Below this many products the work runs on the calling thread.
    static let parallelThreshold = 1 << 18

    /// A right-hand operand `B [k, n]` stored transposed (`[n, k]`), the layout the kernel reads. A
    /// session weight is prepared once and multiplied by every query's activations, so the transpose
    /// (a memory-bound pass over the whole matrix: 94 MB for MiniLM's word-embedding mask) is not
    /// paid per product.
    public struct RightOperand: Sendable {
        public let k: Int, n: Int
        /// `B` transposed: element (p, j) of B at `j·k + p`.
        @usableFromInline let transposed: [UInt64]

        /// Prepares row-major `b [k, n]`.
        public init(_ b: [UInt64], k: Int, n: Int) {
            precondition(b.count == k * n, "ring matmul operand: \(b.count) values for [\(k), \(n)]")
            self.k = k
            self.n = n
            var bt = [UInt64](repeating: 0, count: n * k)
            b.withUnsafeBufferPointer { pb in
                bt.withUnsafeMutableBufferPointer { pt in
                    // Transpose in 32x32 tiles for locality.
                    for p0 in stride(from: 0, to: k, by: 32) {
                        for j0 in stride(from: 0, to: n, by: 32) {
                            for p in p0..<min(p0 + 32, k) {
                                for j in j0..<min(j0 + 32, n) { pt[j * k + p] = pb[p * n + j] }
                            }
                        }
                    }
                }
            }
            transposed = bt
        }

        /// Element (row p, column j) of B.
        @inlinable public subscript(p: Int, j: Int) -> UInt64 { transposed[j * k + p] }

        /// B in row-major order (a fresh copy).
        public func rowMajor() -> [UInt64] {
            var b = [UInt64](repeating: 0, count: k * n)
            for p in 0..<k { for j in 0..<n { b[p * n + j] = transposed[j * k + p] } }
            return b
        }
    }

    /// Returns `A·B mod 2^64` for A [m, k] and B [k, n] (row-major).
    public static func multiply(_ a: [UInt64], _ b: [UInt64], m: Int, k: Int, n: Int, kernel: Kernel = defaultKernel) -> [UInt64] {
        precondition(a.count == m * k && b.count == k * n, "ring matmul: operand sizes do not match [\(m),\(k)]x[\(k),\(n)]")
        if m == 0 || n == 0 || k == 0 { return [UInt64](repeating: 0, count: m * n) }
        return multiply(a, RightOperand(b, k: k, n: n), m: m, kernel: kernel)
    }

    /// Returns `A·B mod 2^64` for A [m, k] and a prepared B.
    public static func multiply(_ a: [UInt64], _ b: RightOperand, m: Int, kernel: Kernel = defaultKernel) -> [UInt64] {
        precondition(available.contains(kernel), "ring matmul: the \(kernel) kernel does not run on this CPU")
        let (k, n) = (b.k, b.n)
        precondition(a.count == m * k, "ring matmul: operand sizes do not match [\(m),\(a.count / max(m, 1))]x[\(k),\(n)]")
        var c = [UInt64](repeating: 0, count: m * n)
        if m == 0 || n == 0 || k == 0 { return c }
        let bt = b.transposed
        a.withUnsafeBufferPointer { pa in
            bt.withUnsafeBufferPointer { pt in
                c.withUnsafeMutableBufferPointer { pc in
                    let A = pa.baseAddress!, T = pt.baseAddress!, C = pc.baseAddress!
                    let panels = (m + 3) / 4
                    let work = m * n * k
                    let tasks = work < parallelThreshold ? 1 : min(panels, 8)
                    if tasks == 1 {
                        run(kernel, C, A, T, rows: 0..<m, k: k, n: n)
                    } else {
                        let per = (panels + tasks - 1) / tasks
                        // Pointers are shared read-only (A, Bt) or written in disjoint row ranges (C).
                        nonisolated(unsafe) let (sA, sT, sC) = (A, T, C)
                        DispatchQueue.concurrentPerform(iterations: tasks) { t in
                            let lo = min(m, t * per * 4), hi = min(m, (t + 1) * per * 4)
                            if lo < hi { run(kernel, sC, sA, sT, rows: lo..<hi, k: k, n: n) }
                        }
                    }
                }
            }
        }
        return c
    }

    /// C[rows, :] += A[rows, :]·Bt^T with `kernel`.
    static func run(_ kernel: Kernel, _ C: UnsafeMutablePointer<UInt64>, _ A: UnsafePointer<UInt64>, _ T: UnsafePointer<UInt64>,
                    rows: Range<Int>, k: Int, n: Int) {
        switch kernel {
        case .scalar: Self.kernel(C, A, T, rows: rows, k: k, n: n)
        case .avx512: sr_ring_kernel_avx512(C, A, T, Int64(rows.lowerBound), Int64(rows.upperBound), Int64(k), Int64(n))
        }
    }

    /// C[rows, :] += A[rows, :]·Bt^T, blocked over k (the portable kernel).
    @inline(__always)
    static func kernel(_ C: UnsafeMutablePointer<UInt64>, _ A: UnsafePointer<UInt64>, _ T: UnsafePointer<UInt64>,
                       rows: Range<Int>, k: Int, n: Int) {
        var p0 = 0
        while p0 < k {
            let kb = min(kBlock, k - p0)
            var i = rows.lowerBound
            while i + 4 <= rows.upperBound {
                let a0 = A + i * k + p0, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k
                var j = 0
                while j + 2 <= n {
                    let b0 = T + j * k + p0, b1 = b0 + k
                    var c00: UInt64 = 0, c01: UInt64 = 0, c10: UInt64 = 0, c11: UInt64 = 0
                    var c20: UInt64 = 0, c21: UInt64 = 0, c30: UInt64 = 0, c31: UInt64 = 0
                    for p in 0..<kb {
                        let x0 = b0[p], x1 = b1[p]
                        let y0 = a0[p], y1 = a1[p], y2 = a2[p], y3 = a3[p]
                        c00 = c00 &+ y0 &* x0; c01 = c01 &+ y0 &* x1
                        c10 = c10 &+ y1 &* x0; c11 = c11 &+ y1 &* x1
                        c20 = c20 &+ y2 &* x0; c21 = c21 &+ y2 &* x1
                        c30 = c30 &+ y3 &* x0; c31 = c31 &+ y3 &* x1
                    }
                    let r = C + i * n + j
                    r[0] &+= c00; r[1] &+= c01
                    r[n] &+= c10; r[n + 1] &+= c11
                    r[2 * n] &+= c20; r[2 * n + 1] &+= c21
                    r[3 * n] &+= c30; r[3 * n + 1] &+= c31
                    j += 2
                }
                if j < n {  // odd last column
                    let b0 = T + j * k + p0
                    for (r, ar) in [(0, a0), (1, a1), (2, a2), (3, a3)] {
                        var s: UInt64 = 0
                        for p in 0..<kb { s = s &+ ar[p] &* b0[p] }
                        C[(i + r) * n + j] &+= s
                    }
                }
                i += 4
            }
            while i < rows.upperBound {  // leftover rows
                let ar = A + i * k + p0
                for j in 0..<n {
                    let b0 = T + j * k + p0
                    var s: UInt64 = 0
                    for p in 0..<kb { s = s &+ ar[p] &* b0[p] }
                    C[i * n + j] &+= s
                }
                i += 1
            }
            p0 += kb
        }
    }
}

/// The kernel named by the environment variable `variable` when this CPU runs it, else the last (fastest) of
/// `available` (the ring product's and the DCF's kernel choice).
func preferredKernel<K: RawRepresentable & Equatable>(environment variable: String, available: [K]) -> K where K.RawValue == String {
    if let name = ProcessInfo.processInfo.environment[variable], let k = K(rawValue: name), available.contains(k) { return k }
    return available.last!
}
