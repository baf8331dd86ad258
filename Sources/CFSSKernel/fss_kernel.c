// AES-NI kernels of the DCF (Boyle et al., Eurocrypt 2021, Fig. 3) with the layout and PRG of
// MPC/FSS/DCF.swift: G(s) = H(s) ‖ H(s ⊕ 1) ‖ H(s ⊕ 2), H(y) = AES_k(y) ⊕ y under a fixed public key.
// The Swift file documents the key layout; these functions compute exactly the same words, advancing a
// chunk of tree paths one level at a time, with the AES of a level batched (512-bit VAES where the CPU
// has it, else 128-bit AES-NI, eight blocks interleaved). Compiled for
// the baseline target; only functions marked with the target attribute use AES-NI, and the Swift side
// calls them after the CPU check.
#include "fss_kernel.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

int sr_aesni_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

#define SR_AES __attribute__((target("aes,sse4.1")))

SR_AES static inline __m128i sr_expand(__m128i key, __m128i gen) {
    gen = _mm_shuffle_epi32(gen, 0xff);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, gen);
}

SR_AES static void sr_schedule(const uint8_t *k, __m128i rk[11]) {
    rk[0] = _mm_loadu_si128((const __m128i *)k);
    rk[1] = sr_expand(rk[0], _mm_aeskeygenassist_si128(rk[0], 0x01));
    rk[2] = sr_expand(rk[1], _mm_aeskeygenassist_si128(rk[1], 0x02));
    rk[3] = sr_expand(rk[2], _mm_aeskeygenassist_si128(rk[2], 0x04));
    rk[4] = sr_expand(rk[3], _mm_aeskeygenassist_si128(rk[3], 0x08));
    rk[5] = sr_expand(rk[4], _mm_aeskeygenassist_si128(rk[4], 0x10));
    rk[6] = sr_expand(rk[5], _mm_aeskeygenassist_si128(rk[5], 0x20));
    rk[7] = sr_expand(rk[6], _mm_aeskeygenassist_si128(rk[6], 0x40));
    rk[8] = sr_expand(rk[7], _mm_aeskeygenassist_si128(rk[7], 0x80));
    rk[9] = sr_expand(rk[8], _mm_aeskeygenassist_si128(rk[8], 0x1b));
    rk[10] = sr_expand(rk[9], _mm_aeskeygenassist_si128(rk[9], 0x36));
}

/// AES of n blocks in place (n a compile-time constant at each call site, so the rounds interleave).
SR_AES static inline void sr_aes(const __m128i rk[11], __m128i *b, int n) {
    for (int i = 0; i < n; i++) b[i] = _mm_xor_si128(b[i], rk[0]);
    for (int r = 1; r < 10; r++)
        for (int i = 0; i < n; i++) b[i] = _mm_aesenc_si128(b[i], rk[r]);
    for (int i = 0; i < n; i++) b[i] = _mm_aesenclast_si128(b[i], rk[10]);
}

SR_AES static inline uint64_t sr_lo(__m128i x) { return (uint64_t)_mm_cvtsi128_si64(x); }
SR_AES static inline uint64_t sr_hi(__m128i x) { return (uint64_t)_mm_extract_epi64(x, 1); }

SR_AES void sr_aes128_encrypt(const uint8_t key[16], const uint64_t *in, uint64_t *out, int64_t count) {
    __m128i rk[11];
    sr_schedule(key, rk);
    for (int64_t i = 0; i < count; i++) {
        __m128i b = _mm_loadu_si128((const __m128i *)(in + 2 * i));
        sr_aes(rk, &b, 1);
        _mm_storeu_si128((__m128i *)(out + 2 * i), b);
    }
}

/// The MMO hash `AES(x) ⊕ x` of `count` blocks (2 words each), 8 blocks per step with AES-NI.
SR_AES static void sr_mmo_ni(const __m128i rk[11], const uint64_t *in, uint64_t *out, int64_t count) {
    int64_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m128i x[8], b[8];
        for (int q = 0; q < 8; q++) b[q] = x[q] = _mm_loadu_si128((const __m128i *)(in + 2 * (i + q)));
        sr_aes(rk, b, 8);
        for (int q = 0; q < 8; q++) _mm_storeu_si128((__m128i *)(out + 2 * (i + q)), _mm_xor_si128(b[q], x[q]));
    }
    for (; i < count; i++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(in + 2 * i)), b = x;
        sr_aes(rk, &b, 1);
        _mm_storeu_si128((__m128i *)(out + 2 * i), _mm_xor_si128(b, x));
    }
}

#define SR_VAES __attribute__((target("aes,sse4.1,avx512f,vaes")))

/// As `sr_mmo_ni` with 512-bit VAES: four blocks per instruction, sixteen per step.
SR_VAES static void sr_mmo_vaes(const __m128i rk[11], const uint64_t *in, uint64_t *out, int64_t count) {
    __m512i k[11];
    for (int r = 0; r < 11; r++) k[r] = _mm512_broadcast_i32x4(rk[r]);
    int64_t i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512i x[4], b[4];
        for (int q = 0; q < 4; q++) x[q] = _mm512_loadu_si512((const void *)(in + 2 * i + 8 * q));
        for (int q = 0; q < 4; q++) b[q] = _mm512_xor_si512(x[q], k[0]);
        for (int r = 1; r < 10; r++)
            for (int q = 0; q < 4; q++) b[q] = _mm512_aesenc_epi128(b[q], k[r]);
        for (int q = 0; q < 4; q++) b[q] = _mm512_aesenclast_epi128(b[q], k[10]);
        for (int q = 0; q < 4; q++) _mm512_storeu_si512((void *)(out + 2 * i + 8 * q), _mm512_xor_si512(b[q], x[q]));
    }
    if (i < count) sr_mmo_ni(rk, in + 2 * i, out + 2 * i, count - i);
}

static int sr_vaes(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vaes");
    }
    return cached;
}

SR_AES static void sr_mmo(const __m128i rk[11], const uint64_t *in, uint64_t *out, int64_t count) {
    if (sr_vaes()) sr_mmo_vaes(rk, in, out, count); else sr_mmo_ni(rk, in, out, count);
}

/// Tree paths advanced together, one level at a time (their state and blocks stay in L1; the correction
/// words of a level are read in order).
enum { SR_CHUNK = 256 };

SR_AES void sr_dcf_evaluate(int32_t bits, int64_t n, int64_t k, const uint64_t *roots, const uint64_t *cw, const uint64_t *x,
                            int32_t server, const uint8_t key[16], uint64_t *out) {
    __m128i rk[11];
    sr_schedule(key, rk);
    const uint64_t inputMask = bits == 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
    const int64_t points = n * k, tBase = 3 * (int64_t)bits * n, outBase = 3 * (int64_t)bits * n + 2 * n;
    uint64_t s0[SR_CHUNK], s1[SR_CHUNK], t[SR_CHUNK], v[SR_CHUNK], xs[SR_CHUNK];
    int64_t key_of[SR_CHUNK];
    uint64_t in[4 * SR_CHUNK], h[4 * SR_CHUNK];
    for (int64_t start = 0; start < points; start += SR_CHUNK) {
        const int m = (int)(points - start < SR_CHUNK ? points - start : SR_CHUNK);
        for (int j = 0; j < m; j++) {
            const int64_t p = start + j;
            key_of[j] = k == 1 ? p : p / k;
            s0[j] = roots[2 * key_of[j]] & ~(uint64_t)1;
            s1[j] = roots[2 * key_of[j] + 1];
            t[j] = server ? 1 : 0;
            v[j] = 0;
            xs[j] = x[p] & inputMask;
        }
        for (int level = 0; level < bits; level++) {
            const int shift = bits - 1 - level;
            const int64_t sBase = 2 * (int64_t)level * n, vBase = 2 * (int64_t)bits * n + (int64_t)level * n;
            // Blocks of path j: s ⊕ dir (the child taken) and s ⊕ 2 (the payload words).
            for (int j = 0; j < m; j++) {
                const uint64_t dir = (xs[j] >> shift) & 1;
                in[4 * j] = s0[j] ^ dir; in[4 * j + 1] = s1[j];
                in[4 * j + 2] = s0[j] ^ 2; in[4 * j + 3] = s1[j];
            }
            sr_mmo(rk, in, h, 2 * (int64_t)m);
            for (int j = 0; j < m; j++) {
                const int64_t key_j = key_of[j];
                const uint64_t dir = (xs[j] >> shift) & 1;
                const uint64_t mask = (uint64_t)0 - t[j];
                const uint64_t w = h[4 * j + 2 + dir] + (cw[vBase + key_j] & mask);
                v[j] = server ? v[j] - w : v[j] + w;
                const uint64_t tCW = (cw[tBase + (int64_t)dir * n + key_j] >> level) & 1;
                const uint64_t lo = h[4 * j], hi = h[4 * j + 1];
                s0[j] = (lo & ~(uint64_t)1) ^ (cw[sBase + 2 * key_j] & mask);
                s1[j] = hi ^ (cw[sBase + 2 * key_j + 1] & mask);
                t[j] = (lo & 1) ^ (t[j] & tCW);
            }
        }
        for (int j = 0; j < m; j++) {
            const uint64_t w = s1[j] + (cw[outBase + key_of[j]] & ((uint64_t)0 - t[j]));
            out[start + j] = server ? v[j] - w : v[j] + w;
        }
    }
}

SR_AES void sr_dcf_generate(int32_t bits, int64_t n, const uint64_t *alpha, const uint64_t *beta, const uint64_t *roots0,
                            const uint64_t *roots1, const uint8_t key[16], uint64_t *cw) {
    __m128i rk[11];
    sr_schedule(key, rk);
    const int64_t tLBase = 3 * (int64_t)bits * n, tRBase = tLBase + n, outBase = tLBase + 2 * n;
    // Seeds and control bits of party b for element j at [b·SR_CHUNK + j]; va: the on-path payload difference.
    uint64_t slo[2 * SR_CHUNK], shi[2 * SR_CHUNK], t[2 * SR_CHUNK], va[SR_CHUNK];
    uint64_t in[12 * SR_CHUNK], h[12 * SR_CHUNK];
    for (int64_t start = 0; start < n; start += SR_CHUNK) {
        const int m = (int)(n - start < SR_CHUNK ? n - start : SR_CHUNK);
        for (int j = 0; j < m; j++) {
            const int64_t e = start + j;
            slo[j] = roots0[2 * e] & ~(uint64_t)1; shi[j] = roots0[2 * e + 1];
            slo[SR_CHUNK + j] = roots1[2 * e] & ~(uint64_t)1; shi[SR_CHUNK + j] = roots1[2 * e + 1];
            t[j] = 0; t[SR_CHUNK + j] = 1; va[j] = 0;
        }
        for (int level = 0; level < bits; level++) {
            const int shift = bits - 1 - level;
            const int64_t sBase = 2 * (int64_t)level * n, vBase = 2 * (int64_t)bits * n + (int64_t)level * n;
            // Words of party b, element j: 12j + 6b + {0, 1: H(s), 2, 3: H(s ⊕ 1), 4, 5: H(s ⊕ 2)}.
            for (int j = 0; j < m; j++)
                for (int b = 0; b < 2; b++) {
                    const uint64_t lo = slo[b * SR_CHUNK + j], hi = shi[b * SR_CHUNK + j];
                    uint64_t *o = in + 12 * j + 6 * b;
                    o[0] = lo; o[1] = hi; o[2] = lo ^ 1; o[3] = hi; o[4] = lo ^ 2; o[5] = hi;
                }
            sr_mmo(rk, in, h, 6 * (int64_t)m);
            for (int j = 0; j < m; j++) {
                const int64_t e = start + j;
                const uint64_t *h0 = h + 12 * j, *h1 = h0 + 6;
                const uint64_t a = (alpha[e] >> shift) & 1;
                // Lose side: the branch the path to alpha leaves by (right if alpha_i = 0, left if 1).
                const int lose = a == 0 ? 2 : 0, keep = 2 - lose;
                const uint64_t sCWlo = (h0[lose] ^ h1[lose]) & ~(uint64_t)1, sCWhi = h0[lose + 1] ^ h1[lose + 1];
                const uint64_t vLose0 = a == 0 ? h0[5] : h0[4], vLose1 = a == 0 ? h1[5] : h1[4];
                const uint64_t vKeep0 = a == 0 ? h0[4] : h0[5], vKeep1 = a == 0 ? h1[4] : h1[5];
                const int t1Neg = t[SR_CHUNK + j] == 1;
                uint64_t vcw = vLose1 - vLose0 - va[j];
                if (a == 1) vcw += beta[e];  // x goes left of alpha here: x < alpha
                if (t1Neg) vcw = (uint64_t)0 - vcw;
                va[j] = va[j] - vKeep1 + vKeep0 + (t1Neg ? (uint64_t)0 - vcw : vcw);
                const uint64_t tCWL = (h0[0] & 1) ^ (h1[0] & 1) ^ a ^ 1, tCWR = (h0[2] & 1) ^ (h1[2] & 1) ^ a;
                cw[sBase + 2 * e] = sCWlo;
                cw[sBase + 2 * e + 1] = sCWhi;
                cw[vBase + e] = vcw;
                cw[tLBase + e] |= tCWL << level;
                cw[tRBase + e] |= tCWR << level;
                const uint64_t tKeepCW = a == 0 ? tCWL : tCWR;
                for (int b = 0; b < 2; b++) {
                    const uint64_t *hb = b == 0 ? h0 : h1;
                    const uint64_t mask = (uint64_t)0 - t[b * SR_CHUNK + j];
                    slo[b * SR_CHUNK + j] = (hb[keep] & ~(uint64_t)1) ^ (sCWlo & mask);
                    shi[b * SR_CHUNK + j] = hb[keep + 1] ^ (sCWhi & mask);
                    t[b * SR_CHUNK + j] = (hb[keep] & 1) ^ (t[b * SR_CHUNK + j] & tKeepCW);
                }
            }
        }
        for (int j = 0; j < m; j++) {
            const uint64_t d = shi[SR_CHUNK + j] - shi[j] - va[j];
            cw[outBase + start + j] = t[SR_CHUNK + j] == 1 ? (uint64_t)0 - d : d;
        }
    }
}

#else

int sr_aesni_available(void) { return 0; }
void sr_aes128_encrypt(const uint8_t key[16], const uint64_t *in, uint64_t *out, int64_t count) {
    (void)key; (void)in; (void)out; (void)count;
    __builtin_trap();
}
void sr_dcf_generate(int32_t bits, int64_t n, const uint64_t *alpha, const uint64_t *beta, const uint64_t *roots0,
                     const uint64_t *roots1, const uint8_t key[16], uint64_t *cw) {
    (void)bits; (void)n; (void)alpha; (void)beta; (void)roots0; (void)roots1; (void)key; (void)cw;
    __builtin_trap();
}
void sr_dcf_evaluate(int32_t bits, int64_t n, int64_t k, const uint64_t *roots, const uint64_t *cw, const uint64_t *x,
                     int32_t server, const uint8_t key[16], uint64_t *out) {
    (void)bits; (void)n; (void)k; (void)roots; (void)cw; (void)x; (void)server; (void)key; (void)out;
    __builtin_trap();
}

#endif
