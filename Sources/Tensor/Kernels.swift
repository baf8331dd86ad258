import CBLAS
import Dispatch

/// The one checked layer over CBLAS: every matrix product of the module goes
/// through `gemm`, with shapes validated against the buffers.
enum BLAS {
    /// `C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C`, row-major.
    ///
    /// `op(X)` is `X` or `X^T` depending on the flag; `A` is stored `[m,k]`
    /// (or `[k,m]` when transposed) with leading dimension `lda`, likewise `B`.
    @inline(__always)
    static func gemm(
        _ c: UnsafeMutablePointer<Float>, ldc: Int,
        _ a: UnsafePointer<Float>, lda: Int, transA: Bool,
        _ b: UnsafePointer<Float>, ldb: Int, transB: Bool,
        m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        check(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m=\(m) n=\(n) k=\(k)")
        check(lda >= max(1, transA ? m : k), "gemm: lda \(lda) too small")
        check(ldb >= max(1, transB ? k : n), "gemm: ldb \(ldb) too small")
        check(ldc >= max(1, n), "gemm: ldc \(ldc) too small")
        if m == 0 || n == 0 { return }
        // With OpenBLAS single-threaded (see `Runtime.configureForTraining`),
        // split large products over the cores by rows of C ourselves: one
        // threading system instead of OpenBLAS's spinning workers competing
        // with the dispatch workers of the elementwise kernels.
        if m >= 2 && m * n * k >= 1 << 18 && openblas_get_num_threads() == 1 {
            Parallel.rows(m, cost: 1 << 15) { rows in
                let a0 = transA ? a + rows.lowerBound : a + rows.lowerBound * lda
                cblas_sgemm(
                    CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(rows.count), Int32(n), Int32(k), alpha, a0, Int32(lda), b, Int32(ldb), beta,
                    c + rows.lowerBound * ldc, Int32(ldc))
            }
            return
        }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Runs a loop of independent small products (batched attention), split
    /// over the cores when OpenBLAS is single-threaded and the work is large.
    @inline(__always)
    static func batched(_ count: Int, flops: Int, _ body: (Range<Int>) -> Void) {
        if openblas_get_num_threads() == 1 {
            Parallel.rows(count, cost: flops, body)
        } else {
            body(0..<count)
        }
    }

    /// Sets the number of threads OpenBLAS uses for one product.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(n)) }
}

/// Sets the number of threads OpenBLAS uses inside one matrix product.
public func setBLASThreads(_ n: Int) { BLAS.setThreads(n) }

/// Work splitting for row kernels: runs `body(range)` over `0..<n` in up to
/// `Parallel.workers` chunks when `n * costPerItem` is large enough that the
/// dispatch overhead (~10 us) is negligible, else inline.
enum Parallel {
    /// Number of chunks for large kernels (the machine has 2 cores).
    static let workers = 2
    /// Minimum total work (roughly, scalar operations) worth splitting.
    static let threshold = 1 << 15

    @inline(__always)
    static func rows(_ n: Int, cost: Int, _ body: (Range<Int>) -> Void) {
        if n < 2 || n * cost < threshold {
            body(0..<n)
            return
        }
        let chunks = min(workers, n)
        // The chunks write disjoint rows, so sharing `body` across threads is safe.
        withoutActuallyEscaping(body) { escapable in
            nonisolated(unsafe) let work = escapable
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                work(n * c / chunks..<n * (c + 1) / chunks)
            }
        }
    }
}

/// Unsafe pointer helpers that skip Array's copy-on-write checks inside kernels.
extension Array where Element == Float {
    @inline(__always)
    func withPointer<R>(_ body: (UnsafePointer<Float>) throws -> R) rethrows -> R {
        try withUnsafeBufferPointer { try body($0.baseAddress!) }
    }

    @inline(__always)
    mutating func withMutablePointer<R>(_ body: (UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    /// A buffer of `n` elements left uninitialised: callers overwrite every element.
    @inline(__always)
    static func uninitialized(_ n: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: n) { _, count in count = n }
    }
}

/// `exp(x)` in Float32 without a libm call, so loops that use it vectorise.
///
/// Cody-Waite reduction `x = k ln2 + r`, `|r| <= ln2 / 2`, then a degree-6
/// Taylor polynomial (truncation < 2e-8 relative) and `2^k` built from the
/// exponent bits; total relative error ~2 ulp. Inputs below -87.3 (where
/// the result would be subnormal) return exactly 0, which the attention mask
/// relies on; inputs above 88.7 saturate at ~`Float.greatestFiniteMagnitude`.
@inline(__always)
public func fastExp(_ x: Float) -> Float {
    let clamped = min(x, 88.7)
    let k = (clamped * 1.442_695_04).rounded(.toNearestOrEven)
    let r = (clamped - k * 0.693_145_75) - k * 1.428_606_8e-6
    let p = 1 + r * (1 + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_668 + r * (0.008_333_334
        + r * 0.001_388_889)))))
    let scale = Float(bitPattern: UInt32(bitPattern: (Int32(max(k, -126)) &+ 127) << 23))
    return x < -87.3 ? 0 : p * scale
}

/// A precondition that also holds in this module's `-Ounchecked` builds,
/// where `precondition` is assumed true and a violated shape contract would
/// corrupt memory instead of trapping. For programmer mistakes only (shapes,
/// index ranges); user-caused problems throw in the calling modules.
@inline(__always)
func check(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fatalError(message(), file: file, line: line) }
}

/// An unconditional `check` failure.
@inline(never)
func checkFailure(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError(message, file: file, line: line)
}

/// Storage offsets of every element of `shape`, in row-major order, for a view with `strides`
/// (a stride of 0 broadcasts that dimension). Shared by broadcasting and permutation.
func stridedOffsets(shape: [Int], strides: [Int]) -> [Int] {
    let r = shape.count
    let n = shape.reduce(1, *)
    var offsets = [Int](repeating: 0, count: n)
    var index = [Int](repeating: 0, count: r)
    var off = 0
    for e in 0..<n {
        offsets[e] = off
        var d = r - 1
        while d >= 0 {
            index[d] += 1
            off += strides[d]
            if index[d] < shape[d] { break }
            off -= strides[d] * index[d]
            index[d] = 0
            d -= 1
        }
    }
    return offsets
}
