#if canImport(Glibc)
import Glibc
#endif
import CBLAS

/// Process-wide tuning for training and benchmarks. Call once at start-up
/// from the executable (the library never calls it by itself).
public enum Runtime {
    /// Sets OpenBLAS's thread count and, on glibc, keeps freed large blocks
    /// in the heap instead of returning them to the kernel.
    ///
    /// With `blasThreads == 1` (the default) the module splits large matrix
    /// products and batched attention products over the cores itself, through
    /// the same dispatch workers as the row kernels; on the 2-core target this
    /// was 10-15% faster per training step than OpenBLAS's own threads, whose
    /// idle workers spin in `sched_yield` while the row kernels run.
    ///
    /// Why: a training step allocates and frees the same multi-megabyte
    /// activation buffers every step; glibc serves them with mmap/munmap by
    /// default, so every step pays page faults and page clearing (measured
    /// ~10-40% of a small-model step). Raising `M_MMAP_THRESHOLD` and
    /// `M_TRIM_THRESHOLD` to 1 GiB makes them reusable heap memory.
    public static func configureForTraining(blasThreads: Int = 1) {
        openblas_set_num_threads(Int32(blasThreads))
        #if canImport(Glibc)
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
            let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
            _ = mallopt(-3, 1 << 30)  // M_MMAP_THRESHOLD
            _ = mallopt(-1, 1 << 30)  // M_TRIM_THRESHOLD
        }
        #endif
    }

    /// Runs OpenBLAS on the calling thread only: for an MPC party process, whose one use of it is the client's
    /// plaintext public layers. The parties share the machine's cores with each other and with the
    /// protocols' own threads, and OpenBLAS's workers spin for a while after each call: with them, the secure
    /// layers after the public ones ran up to 20 % slower than the cost model's calibration (a 2-layer member
    /// on `mr` at `--net none`: 0.206 s per query with OpenBLAS's threads, 0.181 s without).
    public static func configureForParty() {
        openblas_set_num_threads(1)
    }
}
