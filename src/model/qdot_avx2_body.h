/*
 * qdot_avx2_body.h — the x86 quantized-activation dot products (qdot.h),
 * written once with AVX2 intrinsics and included by each implementation's
 * translation unit: qdot_avx2.c (AVX2 + FMA + F16C), qdot_avxvnni.c (the
 * same plus AVX-VNNI) and qdot_avx512vnni.c (plus AVX512_VNNI/VL), compiled
 * with those flags (CMakeLists.txt) and called only when the CPU has them.
 * Not a header for anyone else.
 *
 * The including file defines QDOT_TABLE, QDOT_NAME, QDOT_NEEDS (the
 * qdot_impl object, its name and CPU features) and, for VNNI,
 * QDOT_DPBUSD(u, s): the 8 int32 sums of 4 products u8(u)·s8(s) (what
 * VPDPBUSD adds to a zero accumulator), and QDOT_DPWSSD(acc, a, b): acc +
 * the 8 int32 sums of 2 int16 products (VPDPWSSD). Without them those sums
 * are formed as ggml's AVX2 kernels do (vpmaddubsw, then vpmaddwd by 1; or
 * vpmaddwd by the group scales, then vpaddd). Both give the
 * same integers: the pairs vpmaddubsw adds never leave int16 here (|w| <=
 * 128, |y| <= 127 for signed levels; unsigned levels <= 31), so the VNNI
 * path's bits equal the avx2 path's (test_qdot).
 *
 * Integer dot products inside blocks as ggml's AVX2 kernels do them:
 * vpmaddubsw (unsigned 8-bit × signed 8-bit → pairs summed to 16 bits; a
 * signed weight is made unsigned by vpsignb: |w|·sign(y, w) = w·y), vpmaddwd
 * (× the group scale, or × 1, → 32-bit lanes), then per block one
 * vcvtdq2ps and one FMA with the product of the two block scales per lane:
 * exactly qdot.h's lane contract, so the same bits as qdot_scalar.c. With
 * VNNI the legacy types' block sums (× 1) take one VPDPBUSD instead of the
 * two multiplies, as llama.cpp does on such CPUs, and the K types' products
 * by their group scales are added to the block sum by VPDPWSSD (one
 * instruction instead of vpmaddwd and vpaddd).
 *
 * Each kernel is a tile of MR weight rows × NR activation rows (compile-time
 * constants in each instantiation): each weight block is loaded and decoded
 * once for the NR activation rows, each activation block loaded once for the
 * MR weight rows. Per output element the operations are the same in every
 * instantiation (batch invariance).
 */
#include "qdot.h"
#include "quant.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

AI float f16s(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

AI float f16_round(float f) { return _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

/* kern.h's fixed tree: (0+4, 1+5, 2+6, 3+7), (0+2, 1+3), 0+1. */
AI float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
    return _mm_cvtss_f32(s);
}

/* The 8 int32 sums of 4 products u8(u[4j..4j+3])·s8(s[4j..4j+3]). */
AI __m256i dot_us8(__m256i u, __m256i s)
{
#ifdef QDOT_DPBUSD
    return QDOT_DPBUSD(u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* acc + the 8 int32 sums of 2 products a·b (int16 lanes): VPDPWSSD where
 * the path has it (QDOT_DPWSSD), else vpmaddwd and vpaddd. The same
 * integers either way (no sum here leaves int32). */
AI __m256i madd_acc(__m256i acc, __m256i a, __m256i b)
{
#ifdef QDOT_DPWSSD
    return QDOT_DPWSSD(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

AI int hsum_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

AI float hmax8(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 0x55));
    return _mm_cvtss_f32(s);
}

/* 32 int32 (four vectors, elements in order) → 32 int8 in order (values in range). */
AI __m256i pack_i8(__m256i a, __m256i b, __m256i c, __m256i d)
{
    __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    __m256i r = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Generation (one activation row) streams the weights from memory once:
 * software prefetch QD_PREFETCH bytes ahead of each row's current block
 * (measured, one and two threads, 70 MB of Q8_0: +25% over the hardware
 * prefetcher alone, the same at 2048 and 4096). A block of bb bytes
 * advances the stream by bb: one prefetch per 64 bytes. */
#define QD_PREFETCH 2048
/* _mm_insert_epi16 with a lane known only at run time at -O0 (the ASan
 * build): its lane must be a constant; unrolled loops make r one, and the
 * switch folds away. */
AI __m128i insert_u16(__m128i v, uint16_t h, int r)
{
    switch (r & 7) {
    case 0: return _mm_insert_epi16(v, h, 0);
    case 1: return _mm_insert_epi16(v, h, 1);
    case 2: return _mm_insert_epi16(v, h, 2);
    case 3: return _mm_insert_epi16(v, h, 3);
    case 4: return _mm_insert_epi16(v, h, 4);
    case 5: return _mm_insert_epi16(v, h, 5);
    case 6: return _mm_insert_epi16(v, h, 6);
    default: return _mm_insert_epi16(v, h, 7);
    }
}

AI void prefetch_rows(const int MR, const uint8_t *w, size_t ldw, size_t bb)
{
    for (int r = 0; r < MR; r++)
        for (size_t o = 0; o < bb; o += 64)
            _mm_prefetch((const char *)(w + (size_t)r * ldw + QD_PREFETCH + o), _MM_HINT_T0);
}

/* ---------------------------------------------------------------- activation quantizers
 * Bit for bit qdot_scalar.c's (ggml's references). */

/* roundf (ties away from zero) of values |v| < 2^23: truncate, then add ±1
 * where the (exact) remainder is at least one half. */
AI __m256 round_away(__m256 v)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one));
}

static void quant_q8_legacy(const float *x, void *dst, int K, int with_s)
{
    const int nb = K / 32;
    int8_t *qs = dst;
    float *d = (float *)(qs + K), *s = d + nb;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < nb; b++) {
        const float *xb = x + 32 * b;
        __m256 v0 = _mm256_loadu_ps(xb), v1 = _mm256_loadu_ps(xb + 8), v2 = _mm256_loadu_ps(xb + 16),
               v3 = _mm256_loadu_ps(xb + 24);
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                 _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        const float amax = hmax8(m);
        const float db = amax / 127;
        const float id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = f16_round(db);
        const __m256 idv = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v0, idv)));
        __m256i i1 = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v1, idv)));
        __m256i i2 = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v2, idv)));
        __m256i i3 = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v3, idv)));
        _mm256_storeu_si256((__m256i *)(qs + 32 * b), pack_i8(i0, i1, i2, i3));
        if (with_s) {
            int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3)));
            s[b] = f16_round((float)sum * db);
        }
    }
}

static void quant_q8_0(const float *x, void *dst, int K) { quant_q8_legacy(x, dst, K, 0); }
static void quant_q8_1(const float *x, void *dst, int K) { quant_q8_legacy(x, dst, K, 1); }

static void quant_q8_k(const float *x, void *dst, int K)
{
    qdot_q8k *y = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int b = 0; b < K / 256; b++, x += 256, y++) {
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < 256; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        const float amax = hmax8(m);
        memset(y, 0, sizeof *y);
        if (amax == 0.0f) continue;
        float max = 0.0f; /* the first element of largest |x|, as the sequential search finds it */
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        const __m256i lim = _mm256_set1_epi32(127);
        for (int j = 0; j < 256; j += 32) {
            __m256i q[4];
            for (int u = 0; u < 4; u++)
                q[u] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8 * u))), lim);
            _mm256_storeu_si256((__m256i *)(y->qs + j), pack_i8(q[0], q[1], q[2], q[3]));
        }
        /* group sums: 16 of 16 (bsums) and 8 of 32 */
        const __m256i ones8 = _mm256_set1_epi8(1);
        for (int j = 0; j < 256; j += 32) {
            const __m256i s = dot_us8(ones8, _mm256_load_si256((const __m256i *)(y->qs + j))); /* 8 sums of 4 */
            int32_t s4[8];
            _mm256_storeu_si256((__m256i *)s4, s);
            const int g0 = s4[0] + s4[1] + s4[2] + s4[3], g1 = s4[4] + s4[5] + s4[6] + s4[7];
            y->bsums[j / 16] = (int16_t)g0;
            y->bsums[j / 16 + 1] = (int16_t)g1;
            y->s32[j / 32] = g0 + g1;
        }
        y->d = 1 / iscale;
    }
}

/* ---------------------------------------------------------------- legacy types (blocks of 32) */

/* 32 nibbles of 16 bytes: low nibbles (elements 0..15) then high (16..31). */
AI __m256i nibbles32(const uint8_t *p)
{
    const __m128i t = _mm_loadu_si128((const __m128i *)p);
    const __m256i b = _mm256_inserti128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(b, _mm256_set1_epi8(15));
}

/* 0xFF in byte j where bit j of the little-endian u32 at p is set. */
AI __m256i bits32(const uint8_t *p)
{
    uint32_t x32;
    memcpy(&x32, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x32), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

/* The 32 levels of one legacy block in element order: signed for Q8_0, Q4_0,
 * Q5_0; unsigned for Q4_1, Q5_1. */
AI __m256i dec_legacy(const steer_dtype T, const uint8_t *b)
{
    switch (T) {
    case STEER_DTYPE_Q8_0: return _mm256_loadu_si256((const __m256i *)(b + 2));
    case STEER_DTYPE_Q4_0: return _mm256_sub_epi8(nibbles32(b + 2), _mm256_set1_epi8(8));
    case STEER_DTYPE_Q4_1: return nibbles32(b + 4);
    case STEER_DTYPE_Q5_0: /* nibble | 0xF0 where the 5th bit is clear: q − 16 as int8 */
        return _mm256_or_si256(nibbles32(b + 6), _mm256_andnot_si256(bits32(b + 2), _mm256_set1_epi8((char)0xF0)));
    default: /* Q5_1 */
        return _mm256_or_si256(nibbles32(b + 8), _mm256_and_si256(bits32(b + 4), _mm256_set1_epi8(0x10)));
    }
}

AI size_t legacy_bytes(const steer_dtype T)
{
    return T == STEER_DTYPE_Q8_0 ? 34 : T == STEER_DTYPE_Q4_0 ? 18 : T == STEER_DTYPE_Q4_1 ? 20 : T == STEER_DTYPE_Q5_0 ? 22 : 24;
}

AI void tile_legacy(const steer_dtype T, const int MR, const int NR, int K, const uint8_t *w, size_t ldw,
                    const uint8_t *x, size_t ldx, float *out, size_t ldo)
{
    const int nb = K / 32, has_min = T == STEER_DTYPE_Q4_1 || T == STEER_DTYPE_Q5_1;
    const size_t bb = legacy_bytes(T);
    __m256 acc[QDOT_MR][QDOT_NR];
    float accs[QDOT_MR][QDOT_NR];
    #pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 8
        for (int i = 0; i < NR; i++) {
            acc[r][i] = _mm256_setzero_ps();
            accs[r][i] = 0.0f;
        }
    for (int b = 0; b < nb; b++) {
        if (NR == 1) prefetch_rows(MR, w + (size_t)b * bb, ldw, bb);
        __m256i wv[QDOT_MR], wa[QDOT_MR];
        float mw[QDOT_MR];
        /* the block scale products D = dw·dx, MR at a time, read back broadcast */
        float D[QDOT_NR][4] __attribute__((aligned(16)));
        __m128i dwh = _mm_setzero_si128(); /* the MR f16 scales, widened together */
        #pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bb;
            wv[r] = dec_legacy(T, blk);
            if (!has_min) wa[r] = _mm256_sign_epi8(wv[r], wv[r]);
            uint16_t h;
            memcpy(&h, blk, 2);
            dwh = insert_u16(dwh, h, r);
            if (has_min) mw[r] = f16s(blk + 2);
        }
        const __m128 dwv = _mm_cvtph_ps(dwh);
        #pragma GCC unroll 8
        for (int i = 0; i < NR; i++)
            _mm_store_ps(D[i], _mm_mul_ps(dwv, _mm_set1_ps(((const float *)(x + (size_t)i * ldx + K))[b])));
        #pragma GCC unroll 8
        for (int i = 0; i < NR; i++) {
            const uint8_t *xi = x + (size_t)i * ldx;
            const __m256i yv = _mm256_load_si256((const __m256i *)(xi + 32 * (size_t)b));
            #pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                const __m256 f = _mm256_cvtepi32_ps(has_min ? dot_us8(wv[r], yv)
                                                            : dot_us8(wa[r], _mm256_sign_epi8(yv, wv[r])));
                acc[r][i] = _mm256_fmadd_ps(_mm256_broadcast_ss(&D[i][r]), f, acc[r][i]);
                if (has_min) accs[r][i] = fmaf(mw[r], ((const float *)(xi + K))[nb + b], accs[r][i]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int i = 0; i < NR; i++)
        #pragma GCC unroll 8
        for (int r = 0; r < MR; r++) out[(size_t)i * ldo + r] = hsum8(acc[r][i]) + accs[r][i];
}

/* ---------------------------------------------------------------- Q4_K, Q5_K (8 groups of 32) */

/* Byte k then a zero byte, everywhere: int16 lanes = scale k (of k4_scales_v). */
#define SHUF_K4B(k) _mm256_set1_epi16((short)((k) | (0x80 << 8)))
/* int32 lanes j = min j (bytes 8..15 of k4_scales_v), zero-extended. */
#define SHUF_K4M                                                                                              \
    _mm256_setr_epi32(0x80808008, 0x80808009, 0x8080800A, 0x8080800B, 0x8080800C, 0x8080800D, 0x8080800E,   \
                      0x8080800F)

/* The 12 scale bytes of a Q4_K/Q5_K block (at s; 16 bytes are read, inside
 * the block) unpacked as ggml's get_scale_min_k4: bytes 0..7 the 6-bit
 * scales, 8..15 the 6-bit mins, in both 128-bit lanes. */
AI __m256i k4_scales_v(const uint8_t *s)
{
    const __m128i v = _mm_loadu_si128((const __m128i *)s); /* dwords d0, d1, d2 (, 4 level bytes) */
    /* [d0 & 3f, d2 & 0f, d1 & 3f, (d2 >> 4) & 0f] | [0, (d0 >> 2) & 30, 0, (d1 >> 2) & 30] */
    const __m128i t1 = _mm_and_si128(_mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4)),
                                     _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    const __m128i t2 = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 0, 0)), 2),
                                     _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
    return _mm256_broadcastsi128_si256(_mm_or_si128(t1, t2));
}

/* Q4_K generation (one activation row, one weight row at a time): as
 * tile_k4 with MR = NR = 1, its scalar parts vectorised (the scales, the
 * two block scale products). */
static void gemv_q4_k(int K, const uint8_t *w, const uint8_t *x, float *out)
{
    const int nb = K / 256;
    const qdot_q8k *y = (const qdot_q8k *)x;
    const __m256i m4 = _mm256_set1_epi8(15);
    const __m128 nzero = _mm_setr_ps(0.0f, -0.0f, 0.0f, 0.0f);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, w += 144, y++) {
        prefetch_rows(1, w, 0, 144);
        const __m256i s256 = k4_scales_v(w + 4);
        __m256i sumi = _mm256_setzero_si256();
        #pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w + 16 + 32 * c));
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            sumi = madd_acc(sumi, _mm256_maddubs_epi16(lo, _mm256_load_si256((const __m256i *)(y->qs + 64 * c))),
                            _mm256_shuffle_epi8(s256, SHUF_K4B(2 * c)));
            sumi = madd_acc(sumi, _mm256_maddubs_epi16(hi, _mm256_load_si256((const __m256i *)(y->qs + 64 * c + 32))),
                            _mm256_shuffle_epi8(s256, SHUF_K4B(2 * c + 1)));
        }
        const __m256i M = _mm256_madd_epi16(_mm256_shuffle_epi8(s256, SHUF_K4M), _mm256_load_si256((const __m256i *)y->s32));
        /* [d·dy, −(dmin·dy)] */
        uint32_t h2;
        memcpy(&h2, w, 4);
        const __m128 dd = _mm_xor_ps(_mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)h2)), _mm_set1_ps(y->d)), nzero);
        const __m256 D = _mm256_broadcastss_ps(dd), Dm = _mm256_broadcastss_ps(_mm_movehdup_ps(dd));
        acc = _mm256_fmadd_ps(D, _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm256_fmadd_ps(Dm, _mm256_cvtepi32_ps(M), accm);
    }
    *out = hsum8(_mm256_add_ps(acc, accm));
}

AI void tile_k4(const steer_dtype T, const int MR, const int NR, int K, const uint8_t *w, size_t ldw,
                const uint8_t *x, size_t ldx, float *out, size_t ldo)
{
    const int nb = K / 256;
    const size_t bb = T == STEER_DTYPE_Q4_K ? 144 : 176;
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256 acc[QDOT_MR][QDOT_NR], accm[QDOT_MR][QDOT_NR];
    #pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 8
        for (int i = 0; i < NR; i++) acc[r][i] = accm[r][i] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        if (NR == 1) prefetch_rows(MR, w + (size_t)b * bb, ldw, bb);
        __m256i sv[QDOT_MR][8], mins[QDOT_MR];
        float d[QDOT_MR], dmin[QDOT_MR];
        #pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bb;
            d[r] = f16s(blk);
            dmin[r] = f16s(blk + 2);
            const __m256i s256 = k4_scales_v(blk + 4);
            #pragma GCC unroll 8
            for (int k = 0; k < 8; k++) sv[r][k] = _mm256_shuffle_epi8(s256, SHUF_K4B(k));
            mins[r] = _mm256_shuffle_epi8(s256, SHUF_K4M);
        }
        __m256i sumi[QDOT_MR][QDOT_NR];
        #pragma GCC unroll 8
        for (int r = 0; r < MR; r++)
            #pragma GCC unroll 8
            for (int i = 0; i < NR; i++) sumi[r][i] = _mm256_setzero_si256();
        #pragma GCC unroll 8
        for (int c = 0; c < 4; c++) {
            __m256i lo[QDOT_MR], hi[QDOT_MR];
            #pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bb;
                const __m256i q = _mm256_loadu_si256((const __m256i *)(blk + (T == STEER_DTYPE_Q4_K ? 16 : 48) + 32 * c));
                lo[r] = _mm256_and_si256(q, m4);
                hi[r] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                if (T == STEER_DTYPE_Q5_K) {
                    const __m256i h = _mm256_loadu_si256((const __m256i *)(blk + 16));
                    const __m256i one = _mm256_set1_epi8(1);
                    lo[r] = _mm256_or_si256(lo[r], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c), one), 4));
                    hi[r] = _mm256_or_si256(hi[r],
                                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c + 1), one), 4));
                }
            }
            #pragma GCC unroll 8
            for (int i = 0; i < NR; i++) {
                const qdot_q8k *y = (const qdot_q8k *)(x + (size_t)i * ldx) + b;
                const __m256i yl = _mm256_load_si256((const __m256i *)(y->qs + 64 * c));
                const __m256i yh = _mm256_load_si256((const __m256i *)(y->qs + 64 * c + 32));
                #pragma GCC unroll 8
                for (int r = 0; r < MR; r++) {
                    sumi[r][i] = madd_acc(sumi[r][i], _mm256_maddubs_epi16(lo[r], yl), sv[r][2 * c]);
                    sumi[r][i] = madd_acc(sumi[r][i], _mm256_maddubs_epi16(hi[r], yh), sv[r][2 * c + 1]);
                }
            }
        }
        #pragma GCC unroll 8
        for (int i = 0; i < NR; i++) {
            const qdot_q8k *y = (const qdot_q8k *)(x + (size_t)i * ldx) + b;
            const __m256i s32 = _mm256_load_si256((const __m256i *)y->s32);
            #pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                const __m256 D = _mm256_set1_ps(d[r] * y->d), Dm = _mm256_set1_ps(-(dmin[r] * y->d));
                acc[r][i] = _mm256_fmadd_ps(D, _mm256_cvtepi32_ps(sumi[r][i]), acc[r][i]);
                accm[r][i] = _mm256_fmadd_ps(Dm, _mm256_cvtepi32_ps(_mm256_madd_epi16(mins[r], s32)), accm[r][i]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int i = 0; i < NR; i++)
        #pragma GCC unroll 8
        for (int r = 0; r < MR; r++) out[(size_t)i * ldo + r] = hsum8(_mm256_add_ps(acc[r][i], accm[r][i]));
}

/* ---------------------------------------------------------------- Q2_K, Q3_K, Q6_K (16 groups of 16) */

/* 16 bytes: 8 × 2v then 8 × (2v + 1): the scales of vector v's two groups. */
#define SHUF_V16(v) _mm_set_epi64x(0x0101010101010101ll * (2 * (v) + 1), 0x0101010101010101ll * (2 * (v)))

AI size_t v16_bytes(const steer_dtype T) { return T == STEER_DTYPE_Q6_K ? 210 : T == STEER_DTYPE_Q3_K ? 110 : 84; }

/* The 16 signed group scales of Q3_K (6-bit, minus 32) as int8. */
AI __m128i q3k_scales(const uint8_t *s)
{
    uint32_t a[4];
    memcpy(a, s, 12);
    const uint32_t tmp = a[2];
    /* ggml's unpacking: low nibbles from bytes 0..7, high 2 bits from bytes 8..11 */
    a[2] = ((a[0] >> 4) & 0x0f0f0f0f) | (((tmp >> 4) & 0x03030303) << 4);
    a[3] = ((a[1] >> 4) & 0x0f0f0f0f) | (((tmp >> 6) & 0x03030303) << 4);
    a[0] = (a[0] & 0x0f0f0f0f) | (((tmp >> 0) & 0x03030303) << 4);
    a[1] = (a[1] & 0x0f0f0f0f) | (((tmp >> 2) & 0x03030303) << 4);
    return _mm_sub_epi8(_mm_set_epi32((int)a[3], (int)a[2], (int)a[1], (int)a[0]), _mm_set1_epi8(32));
}

AI void tile_v16(const steer_dtype T, const int MR, const int NR, int K, const uint8_t *w, size_t ldw,
                 const uint8_t *x, size_t ldx, float *out, size_t ldo)
{
    const int nb = K / 256;
    const size_t bb = v16_bytes(T);
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(15);
    __m256 acc[QDOT_MR][QDOT_NR], accm[QDOT_MR][QDOT_NR];
    #pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
        #pragma GCC unroll 8
        for (int i = 0; i < NR; i++) acc[r][i] = accm[r][i] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        if (NR == 1) prefetch_rows(MR, w + (size_t)b * bb, ldw, bb);
        __m256i sv[QDOT_MR][8], bsc[QDOT_MR];
        float d[QDOT_MR], dmin[QDOT_MR];
        #pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bb;
            __m128i sc;
            if (T == STEER_DTYPE_Q6_K) {
                d[r] = f16s(blk + 208);
                sc = _mm_loadu_si128((const __m128i *)(blk + 192));
                bsc[r] = _mm256_cvtepi8_epi16(sc);
            } else if (T == STEER_DTYPE_Q3_K) {
                d[r] = f16s(blk + 108);
                sc = q3k_scales(blk + 96);
            } else { /* Q2_K: scale = low nibble, min = high nibble */
                d[r] = f16s(blk + 80);
                dmin[r] = f16s(blk + 82);
                const __m128i s = _mm_loadu_si128((const __m128i *)blk);
                sc = _mm_and_si128(s, _mm_set1_epi8(15));
                bsc[r] = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s, 4), _mm_set1_epi8(15)));
            }
            #pragma GCC unroll 8
            for (int v = 0; v < 8; v++) sv[r][v] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(sc, SHUF_V16(v)));
        }
        __m256i sumi[QDOT_MR][QDOT_NR];
        #pragma GCC unroll 8
        for (int i = 0; i < NR; i++) {
            const qdot_q8k *y = (const qdot_q8k *)(x + (size_t)i * ldx) + b;
            const __m256i bs = _mm256_load_si256((const __m256i *)y->bsums);
            #pragma GCC unroll 8
            for (int r = 0; r < MR; r++)
                sumi[r][i] = T == STEER_DTYPE_Q6_K
                                 ? _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(bsc[r], bs), 5))
                                 : _mm256_setzero_si256();
        }
        #pragma GCC unroll 8
        for (int v = 0; v < 8; v++) {
            const int h = v / 4, p = v % 4;
            __m256i q[QDOT_MR], q4[QDOT_MR];
            #pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                const uint8_t *blk = w + (size_t)r * ldw + (size_t)b * bb;
                if (T == STEER_DTYPE_Q6_K) {
                    const __m256i l = _mm256_loadu_si256((const __m256i *)(blk + 64 * h + 32 * (p & 1)));
                    const __m256i hb = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
                    const __m256i lo = p < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
                    q[r] = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * p), m3), 4));
                } else if (T == STEER_DTYPE_Q3_K) {
                    const __m256i l = _mm256_loadu_si256((const __m256i *)(blk + 32 + 32 * h));
                    const __m256i hm = _mm256_loadu_si256((const __m256i *)blk);
                    q[r] = _mm256_and_si256(_mm256_srli_epi16(l, 2 * p), m3);
                    /* 4 where the high bit (bit 4h + p of hmask) is clear */
                    const __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + p), _mm256_set1_epi8(1));
                    q4[r] = _mm256_slli_epi16(_mm256_xor_si256(hbit, _mm256_set1_epi8(1)), 2);
                } else {
                    const __m256i l = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * h));
                    q[r] = _mm256_and_si256(_mm256_srli_epi16(l, 2 * p), m3);
                }
            }
            #pragma GCC unroll 8
            for (int i = 0; i < NR; i++) {
                const qdot_q8k *y = (const qdot_q8k *)(x + (size_t)i * ldx) + b;
                const __m256i yv = _mm256_load_si256((const __m256i *)(y->qs + 32 * v));
                #pragma GCC unroll 8
                for (int r = 0; r < MR; r++) {
                    __m256i p16 = _mm256_maddubs_epi16(q[r], yv);
                    if (T == STEER_DTYPE_Q3_K) p16 = _mm256_sub_epi16(p16, _mm256_maddubs_epi16(q4[r], yv));
                    sumi[r][i] = madd_acc(sumi[r][i], p16, sv[r][v]);
                }
            }
        }
        #pragma GCC unroll 8
        for (int i = 0; i < NR; i++) {
            const qdot_q8k *y = (const qdot_q8k *)(x + (size_t)i * ldx) + b;
            const __m256i bs = _mm256_load_si256((const __m256i *)y->bsums);
            #pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                acc[r][i] = _mm256_fmadd_ps(_mm256_set1_ps(d[r] * y->d), _mm256_cvtepi32_ps(sumi[r][i]), acc[r][i]);
                if (T == STEER_DTYPE_Q2_K)
                    accm[r][i] = _mm256_fmadd_ps(_mm256_set1_ps(-(dmin[r] * y->d)),
                                                 _mm256_cvtepi32_ps(_mm256_madd_epi16(bsc[r], bs)), accm[r][i]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int i = 0; i < NR; i++)
        #pragma GCC unroll 8
        for (int r = 0; r < MR; r++)
            out[(size_t)i * ldo + r] = hsum8(T == STEER_DTYPE_Q2_K ? _mm256_add_ps(acc[r][i], accm[r][i]) : acc[r][i]);
}

/* Bytes of Q6_K's int16 scale v within its broadcast half (gemv_q6_k). */
AI __m256i shuf_q6s(int v)
{
    const int a = 2 * (2 * (v & 3)), c = a + 2; /* bytes of int16 2v' and 2v' + 1 within the half */
    const short lo = (short)(a | ((a + 1) << 8)), hi = (short)(c | ((c + 1) << 8));
    return _mm256_setr_epi16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi);
}

/* Q6_K generation (one activation row, one weight row at a time): as
 * tile_v16 with MR = NR = 1, with fewer operations per level vector (the
 * two high bits moved to bits 4..5 by one shift and a mask) and one
 * shuffle per vector scale (from the int16 scales broadcast by halves). */
static void gemv_q6_k(int K, const uint8_t *w, const uint8_t *x, float *out)
{
    const int nb = K / 256;
    const qdot_q8k *y = (const qdot_q8k *)x;
    const __m256i m4 = _mm256_set1_epi8(15), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++, w += 210, y++) {
        prefetch_rows(1, w, 0, 210);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 192)));
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, _mm256_load_si256((const __m256i *)y->bsums)), 5);
        const __m256i scl = _mm256_permute2x128_si256(sc16, sc16, 0x00), sch = _mm256_permute2x128_si256(sc16, sc16, 0x11);
        __m256i sumi = _mm256_setzero_si256();
        #pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(w + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(w + 64 * h + 32));
            const __m256i hb = _mm256_loadu_si256((const __m256i *)(w + 128 + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
            #pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                const int v = 4 * h + p;
                const __m256i sv = _mm256_shuffle_epi8(v < 4 ? scl : sch, shuf_q6s(v));
                const __m256i d16 = _mm256_maddubs_epi16(q[p], _mm256_load_si256((const __m256i *)(y->qs + 32 * v)));
                sumi = madd_acc(sumi, d16, sv);
            }
        }
        sumi = _mm256_sub_epi32(sumi, corr);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16s(w + 208) * y->d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *out = hsum8(acc);
}

/* ---------------------------------------------------------------- instantiations */

#define CASE(FAM, T, MR, NR) \
    case NR: tile_##FAM(T, MR, NR, K, w, ldw, x, ldx, out, ldo); return;
#define CASES_NR(FAM, T, MR)                                                                                \
    switch (nr) {                                                                                           \
        CASE(FAM, T, MR, 1) CASE(FAM, T, MR, 2) CASE(FAM, T, MR, 3) CASE(FAM, T, MR, 4) CASE(FAM, T, MR, 5)  \
        CASE(FAM, T, MR, 6) CASE(FAM, T, MR, 7) CASE(FAM, T, MR, 8) default: return;                        \
    }
/* The kernel for nrows weight rows: register tiles of MR1 rows when nr = 1
 * (generation: no activation reuse to gain, so fewer live registers), MRN
 * rows otherwise; the last rows in tiles of one. */
#define TILE(FAM, T, NAME, MR1, MRN)                                                                           \
    static void tile1_##NAME(int K, const uint8_t *w, size_t ldw, int mr, const uint8_t *x, size_t ldx, int nr, \
                             float *out, size_t ldo)                                                           \
    {                                                                                                          \
        if (mr == (MR1) && nr == 1) {                                                                          \
            tile_##FAM(T, MR1, 1, K, w, ldw, x, ldx, out, ldo);                                                \
            return;                                                                                            \
        }                                                                                                      \
        if (mr == 1) CASES_NR(FAM, T, 1)                                                                       \
        CASES_NR(FAM, T, MRN)                                                                                  \
    }                                                                                                          \
    static void tile_##NAME(int K, const void *wv, size_t ldw, int nrows, const void *xv, size_t ldx, int nr,  \
                            float *out, size_t ldo)                                                            \
    {                                                                                                          \
        const uint8_t *w = wv, *x = xv;                                                                        \
        const int mr = nr == 1 ? (MR1) : (MRN);                                                                \
        int r = 0;                                                                                             \
        for (; r + mr <= nrows; r += mr) tile1_##NAME(K, w + (size_t)r * ldw, ldw, mr, x, ldx, nr, out + r, ldo); \
        for (; r < nrows; r++) tile1_##NAME(K, w + (size_t)r * ldw, ldw, 1, x, ldx, nr, out + r, ldo);         \
    }
/* Register tiles (rows × activation rows), measured on the pure kernels
 * (L1-resident data, one thread, AMD Zen 3, bench_qdot and its tile variants):
 *   n = 1 (generation): 1 × 1 (Q8_0 2 × 1 is 6% faster on cached weights
 *   but 35% slower streaming them from memory, one thread);
 *   n >= 2: legacy types 4 × 8 (each weight block decoded once for 8
 *   activation rows, each activation block loaded once for 4 weight rows),
 *   K types 1 × 8 (a super-block's decoded levels and scales are 4–8
 *   registers; more weight rows spill them).
 * Q8_0 n >= 2, tried and not kept (2026-12-06, quiet minutes, interleaved):
 * spill-free 4 × 2, 4 × 3, 3 × 3 and 2 × 4 tiles (signed weights as a
 * vpsignb memory operand, D = dw·dx formed 8 blocks at a time from scales
 * widened once per call) ran 12% fewer instructions but 4–9% slower than
 * 4 × 8: the loop is bound by the two integer multiplies per block pair
 * (vpmaddubsw, vpmaddwd), which every variant keeps. n = 1 Q4_K and Q6_K
 * run gemv_q4_k / gemv_q6_k (below the tiles). */
TILE(legacy, STEER_DTYPE_Q8_0, q8_0, 1, 4)
TILE(legacy, STEER_DTYPE_Q4_0, q4_0, 1, 4)
TILE(legacy, STEER_DTYPE_Q4_1, q4_1, 1, 4)
TILE(legacy, STEER_DTYPE_Q5_0, q5_0, 1, 4)
TILE(legacy, STEER_DTYPE_Q5_1, q5_1, 1, 4)
/* tile_NAME: one input row (nr = 1) through gemv_NAME, row by row; more
 * through the tile tile_NAME_t */
#define TILE_GEMV1(NAME)                                                                                      \
    static void tile_##NAME(int K, const void *w, size_t ldw, int nrows, const void *x, size_t ldx, int nr,  \
                            float *out, size_t ldo)                                                           \
    {                                                                                                         \
        if (nr != 1) {                                                                                        \
            tile_##NAME##_t(K, w, ldw, nrows, x, ldx, nr, out, ldo);                                          \
            return;                                                                                           \
        }                                                                                                     \
        for (int r = 0; r < nrows; r++) gemv_##NAME(K, (const uint8_t *)w + (size_t)r * ldw, x, out + r);     \
    }
TILE(k4, STEER_DTYPE_Q4_K, q4_k_t, 1, 1)
TILE_GEMV1(q4_k)
TILE(k4, STEER_DTYPE_Q5_K, q5_k, 1, 1)
TILE(v16, STEER_DTYPE_Q2_K, q2_k, 1, 1)
TILE(v16, STEER_DTYPE_Q3_K, q3_k, 1, 1)
TILE(v16, STEER_DTYPE_Q6_K, q6_k_t, 1, 1)
TILE_GEMV1(q6_k)

const qdot_impl QDOT_TABLE = {
    .name = QDOT_NAME,
    .needs = QDOT_NEEDS,
    .quant = {quant_q8_0, quant_q8_1, quant_q8_k},
    .tile =
        {
            [STEER_DTYPE_Q8_0] = tile_q8_0,
            [STEER_DTYPE_Q4_0] = tile_q4_0,
            [STEER_DTYPE_Q4_1] = tile_q4_1,
            [STEER_DTYPE_Q5_0] = tile_q5_0,
            [STEER_DTYPE_Q5_1] = tile_q5_1,
            [STEER_DTYPE_Q2_K] = tile_q2_k,
            [STEER_DTYPE_Q3_K] = tile_q3_k,
            [STEER_DTYPE_Q4_K] = tile_q4_k,
            [STEER_DTYPE_Q5_K] = tile_q5_k,
            [STEER_DTYPE_Q6_K] = tile_q6_k,
        },
    .nr = {[STEER_DTYPE_Q8_0] = 8, [STEER_DTYPE_Q4_0] = 8, [STEER_DTYPE_Q4_1] = 8, [STEER_DTYPE_Q5_0] = 8,
           [STEER_DTYPE_Q5_1] = 8, [STEER_DTYPE_Q2_K] = 8, [STEER_DTYPE_Q3_K] = 8, [STEER_DTYPE_Q4_K] = 8,
           [STEER_DTYPE_Q5_K] = 8, [STEER_DTYPE_Q6_K] = 8},
};
