// AVX-512 kernel of the 64-bit ring matrix product. Compiled for the baseline target; only the functions
// marked with the target attribute use AVX-512, and the Swift side calls them after the CPU check.
#include "ring_kernel.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

int sr_ring_avx512_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
}

#define SR_AVX512 __attribute__((target("avx512f,avx512dq")))

/// Columns of k per block: a 4-row panel of A (4 · 512 · 8 bytes) stays in L1/L2 while rows of T stream.
enum { SR_KBLOCK = 512 };

SR_AVX512 static inline __m512i sr_load(const uint64_t *p, int64_t q, __mmask8 m, int full) {
    return full ? _mm512_loadu_si512((const void *)(p + q)) : _mm512_maskz_loadu_epi64(m, p + q);
}

/// Dot products of `rows` rows of A (1 to 4) with `cols` rows of T (1 to 4) over kb entries, added to C.
SR_AVX512 static inline void sr_tile(uint64_t *C, const uint64_t *a, const uint64_t *t, int64_t k, int64_t n,
                                     int64_t kb, int rows, int cols) {
    __m512i acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int s = 0; s < 4; s++) acc[r][s] = _mm512_setzero_si512();
    const int64_t full = kb & ~(int64_t)7;
    const __mmask8 tail = (__mmask8)((1u << (kb & 7)) - 1u);
    for (int64_t q = 0; q < kb; q += 8) {
        const int whole = q < full;
        __m512i x[4], y[4];
        for (int s = 0; s < cols; s++) x[s] = sr_load(t + s * k, q, tail, whole);
        for (int r = 0; r < rows; r++) y[r] = sr_load(a + r * k, q, tail, whole);
        for (int r = 0; r < rows; r++)
            for (int s = 0; s < cols; s++) acc[r][s] = _mm512_add_epi64(acc[r][s], _mm512_mullo_epi64(y[r], x[s]));
    }
    for (int r = 0; r < rows; r++)
        for (int s = 0; s < cols; s++) C[r * n + s] += (uint64_t)_mm512_reduce_add_epi64(acc[r][s]);
}

/// The 4 x 4 tile with constant bounds, so that the compiler keeps its 16 accumulators in registers.
SR_AVX512 static void sr_tile44(uint64_t *C, const uint64_t *a, const uint64_t *t, int64_t k, int64_t n, int64_t kb) {
    sr_tile(C, a, t, k, n, kb, 4, 4);
}

SR_AVX512 void sr_ring_kernel_avx512(uint64_t *C, const uint64_t *A, const uint64_t *T, int64_t r0, int64_t r1, int64_t k, int64_t n) {
    for (int64_t p0 = 0; p0 < k; p0 += SR_KBLOCK) {
        const int64_t kb = k - p0 < SR_KBLOCK ? k - p0 : SR_KBLOCK;
        for (int64_t i = r0; i < r1; i += 4) {
            const int rows = r1 - i < 4 ? (int)(r1 - i) : 4;
            const uint64_t *a = A + i * k + p0;
            int64_t j = 0;
            if (rows == 4)
                for (; j + 4 <= n; j += 4) sr_tile44(C + i * n + j, a, T + j * k + p0, k, n, kb);
            for (; j < n; j += 4) {
                const int cols = n - j < 4 ? (int)(n - j) : 4;
                sr_tile(C + i * n + j, a, T + j * k + p0, k, n, kb, rows, cols);
            }
        }
    }
}

#else

int sr_ring_avx512_available(void) { return 0; }

void sr_ring_kernel_avx512(uint64_t *C, const uint64_t *A, const uint64_t *T, int64_t r0, int64_t r1, int64_t k, int64_t n) {
    (void)C; (void)A; (void)T; (void)r0; (void)r1; (void)k; (void)n;
    __builtin_trap();
}

#endif
