// AES-NI kernels of the distributed comparison function (MPC/FSS/DCF.swift), chosen at run time.
#ifndef SECUREROUTER_FSS_KERNEL_H
#define SECUREROUTER_FSS_KERNEL_H

#include <stdint.h>

/// 1 when this CPU has AES-NI and SSE4.1, else 0 (the kernels also use 512-bit VAES where present).
int sr_aesni_available(void);

/// AES-128 of `count` 16-byte blocks under `key` (ECB, standard AES; the check against BoringSSL).
void sr_aes128_encrypt(const uint8_t key[16], const uint64_t *in, uint64_t *out, int64_t count);

/// DCF key generation (dealer), the same words as `DCF.generate` in Swift: correction words for
/// `f_{alpha_j, beta_j}` over `bits`-bit inputs for `n` elements, written to `cw`
/// (`(3·bits + 3)·n` words, zeroed by the caller); roots are 2 words per element and party.
void sr_dcf_generate(int32_t bits, int64_t n, const uint64_t *alpha, const uint64_t *beta, const uint64_t *roots0,
                     const uint64_t *roots1, const uint8_t key[16], uint64_t *cw);

/// DCF evaluation (one party), the same words as `DCFKeys.evaluate` in Swift: `n` keys, each evaluated at
/// `k` consecutive points of `x` (`n·k` words); `server` is 1 for party 1 (whose shares are negated).
void sr_dcf_evaluate(int32_t bits, int64_t n, int64_t k, const uint64_t *roots, const uint64_t *cw, const uint64_t *x,
                     int32_t server, const uint8_t key[16], uint64_t *out);

#endif
