// Vector kernel of the 64-bit ring matrix product (RingMatmul), chosen at run time.
#ifndef SECUREROUTER_RING_KERNEL_H
#define SECUREROUTER_RING_KERNEL_H

#include <stdint.h>

/// 1 when this CPU has AVX-512 F and DQ (64-bit lane multiplies), else 0.
int sr_ring_avx512_available(void);

/// C[r0..<r1, :] += A[r0..<r1, :] · T^T mod 2^64, where A is [m, k] and T is B transposed ([n, k]), all
/// row-major. Needs sr_ring_avx512_available(); bit-identical to the scalar kernel (wrapping sums).
void sr_ring_kernel_avx512(uint64_t *C, const uint64_t *A, const uint64_t *T, int64_t r0, int64_t r1, int64_t k, int64_t n);

#endif
