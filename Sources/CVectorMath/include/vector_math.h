#ifndef LORS_VECTOR_MATH_H
#define LORS_VECTOR_MATH_H

/* Fused multiply-add on whole vectors for the Swift kernels. Swift's SIMD `addingProduct` is a per-lane loop that
   LLVM re-vectorises unreliably (16-lane AVX-512 code came out split into ymm/xmm/scalar pieces); this one is a
   single vector FMA instruction. The vector types import into Swift as SIMD8<Float> / SIMD16<Float>. Used only when
   the build targets FMA hardware (LORS_FMA); without FMA it would be a libm call per lane. */

typedef float lors_float8 __attribute__((ext_vector_type(8)));
typedef float lors_float16 __attribute__((ext_vector_type(16)));

static inline __attribute__((always_inline)) lors_float8 lors_fma8(lors_float8 a, lors_float8 b, lors_float8 c) {
    return __builtin_elementwise_fma(a, b, c);
}

static inline __attribute__((always_inline)) lors_float16 lors_fma16(lors_float16 a, lors_float16 b, lors_float16 c) {
    return __builtin_elementwise_fma(a, b, c);
}

/* Lane-wise clamp to [lo, hi] (Swift's generic pointwiseMin/Max stayed out-of-line calls in the softmax loop). */
static inline __attribute__((always_inline)) lors_float8 lors_clamp8(lors_float8 x, float lo, float hi) {
    return __builtin_elementwise_min(__builtin_elementwise_max(x, (lors_float8)lo), (lors_float8)hi);
}

static inline __attribute__((always_inline)) lors_float16 lors_clamp16(lors_float16 x, float lo, float hi) {
    return __builtin_elementwise_min(__builtin_elementwise_max(x, (lors_float16)lo), (lors_float16)hi);
}

#endif
