/*
 * quant.h — ggml's block-quantized weight types (formats tier, quant.c):
 * block geometry, exact dequantization, reference quantizers, and the mapping
 * between steer_dtype and ggml type numbers. Builds on base.h only.
 *
 * The layouts are ggml's (llama.cpp ggml-common.h), little-endian, packed;
 * "f16" is an IEEE half. Every block type stores its elements in blocks of 32
 * (the "legacy" types) or 256 ("K" types, super-blocks of 8 or 16 groups):
 *
 *   Q8_0  34 B / 32:   f16 d | int8 qs[32]                          x = qs[j]·d
 *   Q4_0  18 B / 32:   f16 d | u8 qs[16]     element j (< 16) is qs[j] & 15,
 *                      element j + 16 is qs[j] >> 4                 x = (q − 8)·d
 *   Q4_1  20 B / 32:   f16 d, f16 m | u8 qs[16] (as Q4_0)           x = q·d + m
 *   Q5_0  22 B / 32:   f16 d | u8 qh[4] | u8 qs[16]; the 5th bit of element j is
 *                      bit j of the little-endian u32 qh            x = (q − 16)·d
 *   Q5_1  24 B / 32:   f16 d, f16 m | qh[4] | qs[16]                x = q·d + m
 *   Q2_K  84 B / 256:  u8 scales[16] | u8 qs[64] | f16 d, f16 dmin; group g of 16
 *                      has scale (scales[g] & 15)·d and min (scales[g] >> 4)·dmin;
 *                      2-bit q                                      x = sc·q − mn
 *   Q3_K 110 B / 256:  u8 hmask[32] | u8 qs[64] | u8 scales[12] | f16 d; 16 6-bit
 *                      signed scales (minus 32), q = 2 low bits + 1 high bit, minus 4
 *                      when the high bit is clear                   x = d·(s − 32)·q
 *   Q4_K 144 B / 256:  f16 d, f16 dmin | u8 scales[12] (8 × 6-bit scale + 8 ×
 *                      6-bit min) | u8 qs[128]; groups of 32        x = d·s·q − dmin·m
 *   Q5_K 176 B / 256:  f16 d, f16 dmin | scales[12] | u8 qh[32] | u8 qs[128]
 *   Q6_K 210 B / 256:  u8 ql[128] | u8 qh[64] | int8 scales[16] | f16 d; 6-bit q
 *                      minus 32, groups of 16                       x = d·s·q
 *
 * Which element sits in which nibble/bit plane is spelled out in quant.c at
 * each decoder. The float operations are done in ggml's order and with ggml's
 * rounding (no fused multiply-add: quant.c is compiled with
 * -ffp-contract=off), so q_dequant_row gives ggml's to_float bits exactly.
 */
#ifndef STEER_QUANT_H
#define STEER_QUANT_H

#include "base.h"

#include <stddef.h>
#include <stdint.h>

/* Private ABI (used by libsteer-train and libsteer-exp, which may read
 * quantized weights): exported as steer_q_* (base.h, "private ABI"). */
#define q_dequant_row steer_q_dequant_row
#define q_quantize_row steer_q_quantize_row
#define q_block steer_q_block

#define Q_BLOCK_LEGACY 32 /* elements per block of Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 */
#define Q_BLOCK_K 256     /* elements per super-block of Q2_K … Q6_K          */

/* Elements and bytes per block of t (F32/F16/BF16/F64/I32/I64/U8/I8: 1 and
 * the element size). Returns 0, or -1 for an invalid dtype (outputs untouched).
 * Either pointer may be NULL. */
STEER_PRIVATE int q_block(steer_dtype t, size_t *block_elems, size_t *block_bytes);
/* 1 for Q8_0 … Q6_K, else 0. */
int q_is_quantized(steer_dtype t);
/* Bytes of n elements of t; 0 if n is not a multiple of t's block or t is
 * invalid (or the size overflows size_t). */
size_t q_row_bytes(steer_dtype t, size_t n);

/* dst[0..n) = src dequantized, bit-exact with ggml's to_float. t is a block
 * type or F32, F16, BF16 (widened exactly). n must be a multiple of t's
 * block (q_block); only whole blocks are read: src must hold
 * q_row_bytes(t, n) bytes, and exactly those bytes are read (n rounded down
 * to a whole block if it is not a multiple, the tail of dst left
 * untouched). For any other dtype dst is filled with NaN. No alignment is
 * needed (src is read byte by byte). */
STEER_PRIVATE void q_dequant_row(steer_dtype t, const void *src, float *dst, size_t n);

/* Quantizes src[0..n) into dst (q_row_bytes(t, n) bytes), t a block type.
 * Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: byte-identical to ggml's reference
 * quantizers (quantize_row_q*_ref, what llama-quantize writes for these
 * types without an importance matrix). Q2_K … Q6_K: ggml's reference K-quant
 * search without an importance matrix (quantize_row_q*_K_ref: per-group
 * scale/min search, then the group scales quantized to 4, 6 or 8 bits and the
 * elements re-quantized with the stored scales). The row need not be one
 * tensor row: blocks are independent. As in ggml, a block whose scale does
 * not fit an f16 (|x| beyond ~65504 × the level range) gets an infinite
 * scale; degenerate blocks (all |x| below ~1e-36) never hit undefined
 * behaviour here (ggml's casts do). Returns STEER_OK; STEER_EARG if t is not
 * a block type, n is not a multiple of the block, or src holds a NaN or an
 * infinity (message names the element). */
STEER_PRIVATE int q_quantize_row(steer_dtype t, const float *src, void *dst, size_t n);

/* ggml type number (ggml.h: F32 0, F16 1, Q4_0 2, Q4_1 3, Q5_0 6, Q5_1 7,
 * Q8_0 8, Q2_K 10, … Q6_K 14, BF16 30) <-> steer_dtype, for the types steer
 * reads (F32, F16, BF16 and the 10 block types). q_from_ggml_type returns 0,
 * or -1 for any other number (*out untouched); q_to_ggml_type returns
 * UINT32_MAX for a dtype that has no ggml type here. */
int q_from_ggml_type(uint32_t ggml_type, steer_dtype *out);
uint32_t q_to_ggml_type(steer_dtype t);

/* IEEE half <-> float, as ggml converts them: widening is exact; narrowing
 * rounds to nearest, ties to even (overflow to ±Inf, underflow through
 * subnormals to ±0; NaN stays a quiet NaN). The same values as
 * steer_f16_to_f32 / steer_f32_to_f16 (model tier), kept here so the formats
 * tier needs nothing above it. */
float q_f16_to_f32(uint16_t h);
uint16_t q_f32_to_f16(float f);

#endif /* STEER_QUANT_H */
