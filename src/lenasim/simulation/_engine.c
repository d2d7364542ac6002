/* The compiled core of the Monte Carlo engine (lenasim.simulate) and of its random
 * numbers (lenasim.streams). Plain C99, no Python API: loaded with ctypes, so importing
 * it costs nothing and calls release the GIL. The Python modules hold the documentation
 * of what is computed; this file says how.
 *
 * Random numbers: Philox4x32-10 (Salmon, Moraes, Dror and Shaw, SC 2011), counters and
 * keys as in lenasim.streams; 32-bit words become uniforms (x + 0.5) / 2^32; normals are
 * the inverse normal CDF of such uniforms by Wichura's AS 241 (PPND16, Applied
 * Statistics 37:477-484, 1988; the algorithm of R's qnorm).
 *
 * Speed: the loops over patients are written so that GCC vectorises them (restrict
 * pointers, no table look-ups in the event pass, reductions declared to `omp simd`,
 * compiled with -fopenmp-simd: no OpenMP runtime). On x86-64 the hot functions are built
 * twice (AVX2 + FMA, and baseline) and the loader picks one for the CPU at run time.
 */

#include <math.h>
#include <stdint.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif

#define M0 UINT64_C(0xD2511F53)
#define M1 UINT64_C(0xCD9E8D57)
#define W0 UINT32_C(0x9E3779B9)
#define W1 UINT32_C(0xBB67AE85)

enum { PURPOSE_CYCLE = 0, PURPOSE_PATIENT = 1, PURPOSE_DRAW = 2, PURPOSE_KEY = 3 };
/* The layout of a simulation: sizes and the columns of a result row, derived from the
 * vocabulary in ONE place (lenasim.simulation.streams.Layout, whose `header` fills this
 * array) and checked by lenasim_simulate. */
enum {
    L_EVENTS, L_HAZARDS, L_OUTPUTS, L_COVARIATES, L_STRATA, L_R_P, L_R_SAMPLED, L_R_CUM,
    L_R_DOSE, L_N_RES, L_CYCLE_BLOCKS, L_PATIENT_BLOCKS, L_TRIAL_BLOCKS, L_SIZE
};
/* An output event's descriptor (Layout.outputs_table): its hazard row, the output whose
 * event it is the severity of (-1: none; that output comes before it), and the code it
 * gives the cycle's outcome when it fires (0: not a grade >= 3 event, else the dose
 * rule's action + 1; the cycle's outcome is the largest code that fired). */
enum { O_HAZARD, O_BASE, O_CODE, O_SIZE };
/* A patient covariate's descriptor: its thresholds (count, offset into `thresholds`) and
 * the stride of its level in the stratum index. */
enum { C_THRESHOLDS, C_OFFSET, C_STRIDE, C_SIZE };
/* The dose columns of a result row; at most MAX_OUTPUTS output events (one bit each). */
enum { N_DOSE = 7, MAX_OUTPUTS = 32, ABI_VERSION = 2 };

static const double ETA_CLIP = 700.0;
static const double CENTRAL = 0.425;

/* Philox4x32-10 of the counter (c0, c1, c2, c3) under the key (k0, k1), in place on
 * four uint32_t variables (a macro, not a function on an array, so that the loops over
 * patients keep them in vector registers; the 32 x 32 -> 64-bit products are what the
 * vectoriser turns into vpmuludq). */
#define PHILOX(c0, c1, c2, c3, key0, key1)                                                    \
    do {                                                                                     \
        uint32_t k0_ = (key0), k1_ = (key1);                                                 \
        for (int r_ = 0; r_ < 10; r_++) {                                                    \
            if (r_ > 0) {                                                                    \
                k0_ += W0;                                                                   \
                k1_ += W1;                                                                   \
            }                                                                                \
            uint64_t p0_ = (uint64_t)(c0) * M0, p1_ = (uint64_t)(c2) * M1;                   \
            uint32_t n0_ = (uint32_t)(p1_ >> 32) ^ (c1) ^ k0_;                               \
            uint32_t n2_ = (uint32_t)(p0_ >> 32) ^ (c3) ^ k1_;                               \
            (c0) = n0_;                                                                      \
            (c1) = (uint32_t)p1_;                                                            \
            (c2) = n2_;                                                                      \
            (c3) = (uint32_t)p0_;                                                            \
        }                                                                                    \
    } while (0)

static inline void philox(uint32_t c[4], uint32_t k0, uint32_t k1)
{
    PHILOX(c[0], c[1], c[2], c[3], k0, k1);
}

/* A 32-bit word -> (x + 0.5) / 2^32, exactly (through int32, whose conversion to double
 * vectorises). */
static inline double to_uniform(uint32_t x)
{
    return ((double)(int32_t)(x ^ UINT32_C(0x80000000)) + 2147483648.5) * 0x1p-32;
}

/* AS 241, central branch: the normal quantile of p = 0.5 + q, |q| <= 0.425. */
static inline double normal_central(double q)
{
    double r = 0.180625 - q * q;
    double num = (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r
                       + 67265.770927008700853) * r + 45921.953931549871457) * r
                     + 13731.693765509461125) * r + 1971.5909503065514427) * r
                   + 133.14166789178437745) * r + 3.387132872796366608);
    double den = (((((((r * 5226.495278852545925 + 28729.085735721942674) * r
                       + 39307.89580009271061) * r + 21213.794301586595867) * r
                     + 5394.1960214247511077) * r + 687.1870074920579083) * r
                   + 42.313330701600911252) * r + 1.0);
    return q * num / den;
}

/* AS 241, intermediate tail: min(p, 1 - p) in [exp(-25), 0.075]; every uniform of
 * to_uniform outside the central range is there (the smallest is 2^-33 > exp(-25)). */
static inline double normal_tail(double p)
{
    double q = p - 0.5;
    double r = sqrt(-log(q < 0.0 ? p : 1.0 - p)) - 1.6;
    double num = (((((((r * 7.7454501427834140764e-4 + 0.0227238449892691845833) * r
                       + 0.24178072517745061177) * r + 1.27045825245236838258) * r
                     + 3.64784832476320460504) * r + 5.7694972214606914055) * r
                   + 4.6303378461565452959) * r + 1.42343711074968357734);
    double den = (((((((r * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * r
                       + 0.0151986665636164571966) * r + 0.14810397642748007459) * r
                     + 0.68976733498510000455) * r + 1.6763848301838038494) * r
                   + 2.05319162663775882187) * r + 1.0);
    double v = num / den;
    return q < 0.0 ? -v : v;
}

static inline double normal(double p)
{
    double q = p - 0.5;
    return fabs(q) <= CENTRAL ? normal_central(q) : normal_tail(p);
}

static inline double clip(double x)
{
    return x < -ETA_CLIP ? -ETA_CLIP : (x > ETA_CLIP ? ETA_CLIP : x);
}

/* ---- the streams, one function each (lenasim.streams) ---- */

#ifndef LENASIM_SOURCE_HASH
#define LENASIM_SOURCE_HASH "unknown"
#endif

/* The hash of this file when it was built (setup.py), checked by lenasim._native. */
const char *lenasim_source_hash(void) { return LENASIM_SOURCE_HASH; }

void lenasim_philox(const uint32_t *ctr, const uint32_t *key, uint32_t *out)
{
    uint32_t c[4] = {ctr[0], ctr[1], ctr[2], ctr[3]};
    philox(c, key[0], key[1]);
    for (int i = 0; i < 4; i++)
        out[i] = c[i];
}

void lenasim_derive_keys(const uint64_t *root, const uint64_t *index, int64_t n,
                         uint64_t *out)
{
    for (int64_t j = 0; j < n; j++) {
        uint32_t c[4] = {(uint32_t)index[j], (uint32_t)(index[j] >> 32), PURPOSE_KEY, 0};
        philox(c, (uint32_t)root[0], (uint32_t)root[1]);
        out[2 * j] = c[0];
        out[2 * j + 1] = c[1];
    }
}

/* The four uniforms of the Philox block at counter (c0[j], c1, c2, c3), out[4 j + w]: the
 * streams of lenasim.streams (cycle, patient and draw blocks). */
void lenasim_block_uniforms(const uint64_t *key, const int64_t *c0, int64_t n, int64_t c1,
                            int64_t c2, int64_t c3, double *out)
{
    for (int64_t j = 0; j < n; j++) {
        uint32_t c[4] = {(uint32_t)c0[j], (uint32_t)c1, (uint32_t)c2, (uint32_t)c3};
        philox(c, (uint32_t)key[0], (uint32_t)key[1]);
        for (int e = 0; e < 4; e++)
            out[4 * j + e] = to_uniform(c[e]);
    }
}

/* What Python checks at load (lenasim._native): this file's ABI version and the sizes
 * of its descriptors. */
void lenasim_abi(int64_t *out)
{
    out[0] = ABI_VERSION;
    out[1] = L_SIZE;
    out[2] = O_SIZE;
    out[3] = C_SIZE;
    out[4] = N_DOSE;
    out[5] = MAX_OUTPUTS;
}

void lenasim_to_uniform(const uint64_t *x, int64_t n, double *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = to_uniform((uint32_t)x[i]);
}

void lenasim_normal_quantile(const double *p, int64_t n, double *out)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = normal(p[i]);
}

/* out[offset + a * stride + j] = val[a, index[j]]: the per-state tables from the
 * distinct rows (val: rows x width). */
void lenasim_take_last(const double *restrict val, int64_t rows, int64_t width,
                       const int64_t *restrict index, int64_t m, double *restrict out,
                       int64_t out_stride, int64_t out_offset)
{
    for (int64_t a = 0; a < rows; a++)
        for (int64_t j = 0; j < m; j++)
            out[out_offset + a * out_stride + j] = val[a * width + index[j]];
}

/* ---- the engine (lenasim.simulate) ---- */

/* u_e[i] = the uniform of word e of Philox at counter (i, c1, c2, c3), from <= i < n: the
 * random numbers of a pass over the patients (one block of four words). */
static void uniforms_generic(int64_t from, int64_t n, uint32_t c1, uint32_t c2, uint32_t c3,
                             uint32_t k0, uint32_t k1, double *restrict u0,
                             double *restrict u1, double *restrict u2, double *restrict u3)
{
    for (int64_t i = from; i < n; i++) {
        uint32_t c[4] = {(uint32_t)i, c1, c2, c3};
        philox(c, k0, k1);
        u0[i] = to_uniform(c[0]);
        u1[i] = to_uniform(c[1]);
        u2[i] = to_uniform(c[2]);
        u3[i] = to_uniform(c[3]);
    }
}

#ifdef HAVE_AVX2_PATH
/* The same, four patients at a time in the 64-bit lanes of AVX2 registers: the words sit
 * in the low halves, so each 32 x 32 -> 64-bit product is one vpmuludq. */
__attribute__((target("avx2"))) static inline __m256d words_to_uniforms(__m256i x)
{
    /* the low 32 bits of the four lanes -> int32 (x - 2^31) -> double, as to_uniform */
    const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    __m128i lo = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(x, pick));
    lo = _mm_xor_si128(lo, _mm_set1_epi32((int)0x80000000));
    __m256d d = _mm256_cvtepi32_pd(lo);
    return _mm256_mul_pd(_mm256_add_pd(d, _mm256_set1_pd(2147483648.5)),
                         _mm256_set1_pd(0x1p-32));
}

__attribute__((target("avx2"))) static void uniforms_avx2(int64_t n, uint32_t c1, uint32_t c2,
                                                          uint32_t c3v, uint32_t k0,
                                                          uint32_t k1, double *restrict u0,
                                                          double *restrict u1,
                                                          double *restrict u2,
                                                          double *restrict u3)
{
    __m256i rk0[10], rk1[10];
    for (int r = 0; r < 10; r++) {
        rk0[r] = _mm256_set1_epi64x(k0);
        rk1[r] = _mm256_set1_epi64x(k1);
        k0 += W0;
        k1 += W1;
    }
    const __m256i m0 = _mm256_set1_epi64x((long long)M0), m1 = _mm256_set1_epi64x((long long)M1);
    const __m256i mask = _mm256_set1_epi64x(0xFFFFFFFFLL);
    const __m256i step = _mm256_set1_epi64x(4);
    __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        __m256i c0 = idx, cc1 = _mm256_set1_epi64x(c1), cc2 = _mm256_set1_epi64x(c2),
                c3 = _mm256_set1_epi64x(c3v);
        for (int r = 0; r < 10; r++) {
            __m256i p0 = _mm256_mul_epu32(c0, m0), p1 = _mm256_mul_epu32(cc2, m1);
            c0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), cc1), rk0[r]);
            cc1 = _mm256_and_si256(p1, mask);
            cc2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), c3), rk1[r]);
            c3 = _mm256_and_si256(p0, mask);
        }
        _mm256_storeu_pd(u0 + i, words_to_uniforms(c0));
        _mm256_storeu_pd(u1 + i, words_to_uniforms(cc1));
        _mm256_storeu_pd(u2 + i, words_to_uniforms(cc2));
        _mm256_storeu_pd(u3 + i, words_to_uniforms(c3));
        idx = _mm256_add_epi64(idx, step);
    }
    /* the last few patients, by the scalar code (with the first round's key) */
    uniforms_generic(i, n, c1, c2, c3v, (uint32_t)_mm256_extract_epi64(rk0[0], 0),
                     (uint32_t)_mm256_extract_epi64(rk1[0], 0), u0, u1, u2, u3);
}
#endif

/* One block of uniforms for every patient: u[w * n + i] = word w of patient i. */
static void uniforms(int64_t n, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                     uint32_t k1, double *u)
{
#ifdef HAVE_AVX2_PATH
    if (__builtin_cpu_supports("avx2")) {
        uniforms_avx2(n, c1, c2, c3, k0, k1, u, u + n, u + 2 * n, u + 3 * n);
        return;
    }
#endif
    uniforms_generic(0, n, c1, c2, c3, k0, k1, u, u + n, u + 2 * n, u + 3 * n);
}

/* The uniforms of a pass (4 rows of n) for the tests: by the dispatched path (the vector
 * one where the CPU has AVX2) or, with generic != 0, by the scalar one. */
void lenasim_pass_uniforms(int64_t n, int64_t c1, int64_t c2, int64_t c3, const uint64_t *key,
                           int64_t generic, double *out)
{
    if (generic)
        uniforms_generic(0, n, (uint32_t)c1, (uint32_t)c2, (uint32_t)c3, (uint32_t)key[0],
                         (uint32_t)key[1], out, out + n, out + 2 * n, out + 3 * n);
    else
        uniforms(n, (uint32_t)c1, (uint32_t)c2, (uint32_t)c3, (uint32_t)key[0],
                 (uint32_t)key[1], out);
}

/* An event's frailty factor of every patient: w[i] = exp(-(t + s z_i)), z_i the normal
 * quantile of u[i]. */
HOT static void frailty(int64_t n, const double *restrict u, double t, double s,
                        double *restrict w)
{
    for (int64_t i = 0; i < n; i++)
        w[i] = normal_central(u[i] - 0.5);
    for (int64_t i = 0; i < n; i++)
        if (fabs(u[i] - 0.5) > CENTRAL)
            w[i] = normal_tail(u[i]);
    for (int64_t i = 0; i < n; i++)
        w[i] = exp(-clip(t + s * w[i]));
}

/* A patient covariate's level, added into the stratum index: level = the number of
 * thresholds above the patient's uniform (see Layout.thresholds). */
HOT static void stratum_pass(int64_t n, const double *restrict u, const double *thr,
                             int64_t n_thr, int64_t stride, int64_t *restrict stratum)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t level = 0;
        for (int64_t m = 0; m < n_thr; m++)
            level += u[i] < thr[m];
        stratum[i] += level * stride;
    }
}

/* The sums of an output event over the patients: p, p of those still free of it,
 * events, patients still free of it. */
typedef struct {
    double p, q;
    int64_t e, r;
} Sums;

/* One event of cycle c for every patient: one branch-free pass with no table look-ups
 * (it vectorises). u: the event's uniforms; h: each patient's exp(-eta) (+inf: no
 * lenalidomide or stopped, p = 0); w: the frailty factors; bit: the event's bit in
 * ever (events so far); code: see O_CODE, folded into outcome (max). */
HOT static Sums event_pass(int64_t n, int bit, int64_t code, const double *restrict u,
                           const double *restrict h, const double *restrict w,
                           int64_t *restrict ever, int64_t *restrict outcome)
{
    double sp = 0, sq = 0;
    int64_t se = 0, sr = 0;
#pragma omp simd reduction(+ : sp, sq, se, sr)
    for (int64_t i = 0; i < n; i++) {
        double p = 1.0 / (1.0 + h[i] * w[i]);
        sp += p;
        int64_t ev = (ever[i] >> bit) & 1;
        sr += ev == 0;
        sq += ev ? 0.0 : p;
        int64_t e = u[i] < p;
        se += e;
        ever[i] |= e << bit;
        int64_t c = e * code;
        outcome[i] = c > outcome[i] ? c : outcome[i];
    }
    return (Sums){sp, sq, se, sr};
}

/* The severity of an event: sv = h[i], the conditional probability of grade >= 3 (0
 * where no lenalidomide); p = the event's p times sv; it fires with the event when
 * u < sv. The event's p and firing are recomputed from its own rows (ub, hb, wb) by the
 * same expression as in its pass: the same bits, and no scratch row. */
HOT static Sums severity_pass(int64_t n, int bit, int64_t code, const double *restrict u,
                              const double *restrict h, const double *restrict ub,
                              const double *restrict hb, const double *restrict wb,
                              int64_t *restrict ever, int64_t *restrict outcome)
{
    double sp = 0, sq = 0;
    int64_t se = 0, sr = 0;
#pragma omp simd reduction(+ : sp, sq, se, sr)
    for (int64_t i = 0; i < n; i++) {
        double pb = 1.0 / (1.0 + hb[i] * wb[i]);
        int64_t eb = ub[i] < pb;
        double sv = h[i];
        double p = pb * sv;
        sp += p;
        int64_t ev = (ever[i] >> bit) & 1;
        sr += ev == 0;
        sq += ev ? 0.0 : p;
        int64_t e = eb & (int64_t)(u[i] < sv);
        se += e;
        ever[i] |= e << bit;
        int64_t c = e * code;
        outcome[i] = c > outcome[i] ? c : outcome[i];
    }
    return (Sums){sp, sq, se, sr};
}

/* An output event's row of the cycle: its sums, and its cumulative probability updated as a
 * product limit: with h the mean p over the patients still free of the event (stopped ones
 * included, p = 0), F += (1 - F) h; when every patient has had the event, h is the mean p
 * over all of them. (HOT like the passes: the same floating-point contraction.) */
HOT static void record(Sums sm, int64_t n, int64_t o, const int64_t *lay, double *cum,
                       double *row)
{
    cum[o] += (1.0 - cum[o]) * (sm.r > 0 ? sm.q / (double)sm.r : sm.p / (double)n);
    row[lay[L_R_P] + o] = sm.p;
    row[lay[L_R_SAMPLED] + o] = (double)sm.e;
    row[lay[L_R_CUM] + o] = cum[o];
}

/* Each patient's next state from the cycle's outcome (0 no grade >= 3 event, 1 grade >= 3
 * event with action continue, 2 hold, 3 reduce, 4 discontinue), the cycle's dose sums (then
 * the sums of the row become means), and the next cycle's table gathered into h (k_n rows
 * of n). nxt: (G + 1) x 5; red_stop, dose (4 rows), hz_next (k_n rows): G + 1 columns.
 * red_stop[s]: added to a "reduce" outcome where there is no level below (+1: discontinue,
 * -1: hold). dose rows: mean dose, intensity (no event or continue), at target, intensity
 * after a grade >= 3 event with action continue (the intensity, or less when the cycle's
 * later escalation steps are not taken after an event). */
HOT static void transition(int64_t n, int64_t g1, int64_t k_n, const int64_t *lay,
                           int64_t *restrict state, int64_t *restrict outcome,
                           const int64_t *restrict nxt,
                           const int64_t *restrict red_stop, const double *restrict dose,
                           const double *restrict hz_next, double *restrict deliv,
                           double *restrict h, double *row)
{
    const int64_t stop = g1 - 1;
    int64_t n_start = 0, n_left = 0, n_held = 0, n_reduced = 0;
    /* the next states and the counts (integers: any order of the sums is exact); outcome
     * keeps the state the patient started the cycle in, for the dose sums: o + 8 s */
#pragma omp simd reduction(+ : n_start, n_left, n_held, n_reduced)
    for (int64_t i = 0; i < n; i++) {
        int64_t s = state[i];
        int64_t o = outcome[i];
        o += (o == 3) * red_stop[s]; /* reduce with no level below: discontinue or hold */
        outcome[i] = o + 8 * s;
        state[i] = nxt[s * 5 + o];
        int64_t on = s != stop;
        n_start += on;
        n_held += (o == 2) | (o == 3);
        n_reduced += o == 3;
        n_left += on & (o != 4);
    }
    /* the mg delivered per day of the cycle, by outcome (rows) and state: no event: the
     * intensity; a grade >= 3 event with action continue: the intensity after it; hold,
     * reduce or discontinue: half the intensity (the event taken to strike mid-cycle) */
    for (int64_t s = 0; s < g1; s++) {
        deliv[s] = dose[g1 + s];
        deliv[g1 + s] = dose[3 * g1 + s];
        for (int64_t o = 2; o < 5; o++)
            deliv[o * g1 + s] = 0.5 * dose[g1 + s];
    }
    /* the dose sums, patient by patient in order (floating point: the order is fixed) */
    double dose_sum = 0, deliv_sum = 0, target_sum = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t s = outcome[i] >> 3;
        dose_sum += dose[s];
        deliv_sum += deliv[(outcome[i] & 7) * g1 + s];
        target_sum += dose[2 * g1 + s];
    }
    /* the next cycle's table rows, one hazard at a time (gathers that vectorise) */
    for (int64_t k = 0; k < k_n; k++) {
        const double *restrict hk = hz_next + k * g1;
        double *restrict out = h + k * n;
        for (int64_t i = 0; i < n; i++)
            out[i] = hk[state[i]];
    }
    double inv = n_start > 0 ? 1.0 / (double)n_start : NAN;
    for (int64_t e = 0; e < lay[L_OUTPUTS]; e++) {
        row[lay[L_R_P] + e] *= inv; /* probabilities */
        row[lay[L_R_SAMPLED] + e] *= inv; /* sampled shares */
    }
    double *rd = row + lay[L_R_DOSE];
    rd[0] = dose_sum * inv;
    rd[1] = deliv_sum * inv;
    rd[2] = (double)n_start / (double)n;
    rd[3] = target_sum * inv;
    rd[4] = (double)n_held * inv;
    rd[5] = (double)n_reduced * inv;
    rd[6] = 1.0 - (double)n_left / (double)n;
}

/* The carried exposure of the cumulative-exposure term (lenasim.core.regimen.carry_exposure),
 * after cycle c: each patient's carried[i] = carried[i] K + A, (K, A) = kc[2 m], kc[2 m + 1]
 * for m = 5 s + o (the state s the patient started the cycle in and its outcome o, as
 * transition leaves them in outcome: o + 8 s); then the next cycle's rows of the hazards
 * that use the term, h = exp(-eta), times exp(-beta_k log(1 + carried / ref)) (beta_k 0:
 * the hazard does not use it, its row untouched). */
static void carry_pass(int64_t n, int64_t k_n, const int64_t *restrict outcome,
                       const double *restrict kc, const double *restrict beta, double ref,
                       double *restrict carried, double *restrict h)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t m = (outcome[i] >> 3) * 5 + (outcome[i] & 7);
        carried[i] = carried[i] * kc[2 * m] + kc[2 * m + 1];
    }
    for (int64_t k = 0; k < k_n; k++) {
        double b = beta[k];
        if (b == 0.0)
            continue;
        double *restrict hk = h + k * n;
        for (int64_t i = 0; i < n; i++) {
            double x = b * log1p(carried[i] / ref);
            hk[i] *= exp(-(x < ETA_CLIP ? x : ETA_CLIP));
        }
    }
}

/* 0 if the layout is one this file can run, else the number of the first check that
 * fails (lenasim.simulation.streams.Layout.check says the same in words). */
static int64_t check_layout(const int64_t *lay, const int64_t *outputs)
{
    int64_t e = lay[L_EVENTS], k = lay[L_HAZARDS], o = lay[L_OUTPUTS];
    if (e < 1 || k < e || o < k || o > MAX_OUTPUTS)
        return 1;
    if (lay[L_R_P] != 0 || lay[L_R_SAMPLED] != o || lay[L_R_CUM] != 2 * o
        || lay[L_R_DOSE] != 3 * o || lay[L_N_RES] != 3 * o + N_DOSE)
        return 2;
    if (lay[L_CYCLE_BLOCKS] != (o + 3) / 4 || lay[L_PATIENT_BLOCKS] != (e + lay[L_COVARIATES] + 3) / 4
        || lay[L_TRIAL_BLOCKS] != (e + 3) / 4)
        return 3;
    for (int64_t j = 0; j < o; j++) {
        const int64_t *d = outputs + j * O_SIZE;
        if (d[O_HAZARD] < 0 || d[O_HAZARD] >= k || d[O_BASE] >= j)
            return 4;
        if ((d[O_BASE] < 0) != (d[O_HAZARD] < e))
            return 4;
    }
    return 0;
}

/* One cohort per draw j < n_draws (see lenasim.simulation.engine._run_draws for the
 * shapes; E events, K hazards, O outputs, P covariates as in the layout).
 * tau, sigma: n_draws x E; hazard: n_draws x K x C x G1; next_state: C x G1 x 5;
 * reduce_stops: C x G1; dose: C x 4 x G1; start: strata; work_f: (E + K + 4 B) x n
 * with B the larger of the cycle and patient blocks; work_i: 3 x n; hzn: (K + 5) x G1
 * (scratch: the next cycle's table, contiguous, and the mg delivered by outcome); res: n_draws x C x N_RES.
 * With a cumulative-exposure term (lenasim_simulate_carry; NULL cum_beta: none):
 * cum_beta: n_draws x K, each hazard's coefficient of the term (0: not used); carry:
 * C x G1 x 5 x 2, (K, A) of carry_pass; cum_ref: the reference exposure; carried: n
 * (scratch). Returns 0, or the failed layout check. */
static int64_t simulate(const int64_t *lay, const int64_t *outputs, const int64_t *covs,
                        const double *thresholds, int64_t n_draws, int64_t n, int64_t n_cyc,
                        int64_t g1, const uint64_t *keys, const double *tau,
                        const double *sigma, const double *hazard, const int64_t *next_state,
                        const int64_t *reduce_stops, const double *dose, const int64_t *start,
                        int64_t new_trial, double *work_f, int64_t *work_i, double *hzn,
                        double *res, const double *cum_beta, const double *carry,
                        double cum_ref, double *carried)
{
    int64_t bad = check_layout(lay, outputs);
    if (bad)
        return bad;
    const int64_t n_ev = lay[L_EVENTS], k_n = lay[L_HAZARDS], n_out = lay[L_OUTPUTS];
    const int64_t n_cov = lay[L_COVARIATES], n_res = lay[L_N_RES];
    const int64_t cb = lay[L_CYCLE_BLOCKS], pb = lay[L_PATIENT_BLOCKS];
    const int64_t ub = cb > pb ? cb : pb;
    double *w = work_f;       /* n_ev rows */
    double *h = w + n_ev * n; /* k_n rows */
    double *u = h + k_n * n;  /* 4 ub rows */
    int64_t *state = work_i, *ever = work_i + n, *outcome = work_i + 2 * n;
    int64_t *stratum = outcome; /* before the first cycle */
    double cum[MAX_OUTPUTS];
    for (int64_t j = 0; j < n_draws; j++) {
        uint32_t k0 = (uint32_t)keys[2 * j], k1 = (uint32_t)keys[2 * j + 1];
        /* the draw's trial effects: t_e = tau_e z_e, z_e from word e of the draw's blocks */
        double t[MAX_OUTPUTS];
        for (int64_t e = 0; e < n_ev; e++)
            t[e] = 0.0;
        if (new_trial) {
            for (int64_t b = 0; b < lay[L_TRIAL_BLOCKS]; b++) {
                uint32_t c[4] = {0, 0, PURPOSE_DRAW, (uint32_t)b};
                philox(c, k0, k1);
                for (int64_t e = 4 * b; e < n_ev && e < 4 * b + 4; e++)
                    t[e] = tau[n_ev * j + e] * normal(to_uniform(c[e - 4 * b]));
            }
        }
        /* the patients: frailty factors (slots 0..E-1), covariates' strata (slots E..) */
        for (int64_t b = 0; b < pb; b++)
            uniforms(n, 0, PURPOSE_PATIENT, (uint32_t)b, k0, k1, u + 4 * b * n);
        for (int64_t e = 0; e < n_ev; e++)
            frailty(n, u + e * n, t[e], sigma[n_ev * j + e], w + e * n);
        for (int64_t i = 0; i < n; i++)
            stratum[i] = 0;
        for (int64_t c = 0; c < n_cov; c++) {
            const int64_t *d = covs + c * C_SIZE;
            stratum_pass(n, u + (n_ev + c) * n, thresholds + d[C_OFFSET], d[C_THRESHOLDS],
                         d[C_STRIDE], stratum);
        }
        for (int64_t i = 0; i < n; i++) {
            state[i] = start[stratum[i]];
            ever[i] = 0;
        }
        if (cum_beta)
            for (int64_t i = 0; i < n; i++)
                carried[i] = 0.0;
        const double *hz = hazard + j * k_n * n_cyc * g1; /* [k][c][s] */
        for (int64_t k = 0; k < k_n; k++)
            for (int64_t i = 0; i < n; i++)
                h[k * n + i] = hz[k * n_cyc * g1 + state[i]];
        for (int64_t o = 0; o < n_out; o++)
            cum[o] = 0.0;
        for (int64_t c = 0; c < n_cyc; c++) {
            double *row = res + (j * n_cyc + c) * n_res;
            for (int64_t b = 0; b < cb; b++)
                uniforms(n, (uint32_t)c, PURPOSE_CYCLE, (uint32_t)b, k0, k1, u + 4 * b * n);
            for (int64_t i = 0; i < n; i++)
                outcome[i] = 0;
            for (int64_t o = 0; o < n_out; o++) {
                const int64_t *d = outputs + o * O_SIZE;
                const double *hk = h + d[O_HAZARD] * n;
                Sums sm;
                if (d[O_BASE] < 0) {
                    sm = event_pass(n, (int)o, d[O_CODE], u + o * n, hk, w + d[O_HAZARD] * n,
                                    ever, outcome);
                } else {
                    const int64_t b = d[O_BASE], kb = outputs[b * O_SIZE + O_HAZARD];
                    sm = severity_pass(n, (int)o, d[O_CODE], u + o * n, hk, u + b * n,
                                       h + kb * n, w + kb * n, ever, outcome);
                }
                record(sm, n, o, lay, cum, row);
            }
            int64_t cn = c + 1 < n_cyc ? c + 1 : c; /* after the last cycle: not used */
            for (int64_t k = 0; k < k_n; k++)
                for (int64_t s = 0; s < g1; s++)
                    hzn[k * g1 + s] = hz[(k * n_cyc + cn) * g1 + s];
            transition(n, g1, k_n, lay, state, outcome, next_state + c * g1 * 5,
                       reduce_stops + c * g1, dose + c * 4 * g1, hzn, hzn + k_n * g1, h, row);
            if (cum_beta)
                carry_pass(n, k_n, outcome, carry + c * g1 * 10, cum_beta + j * k_n, cum_ref,
                           carried, h);
        }
    }
    return 0;
}

int64_t lenasim_simulate(const int64_t *lay, const int64_t *outputs, const int64_t *covs,
                         const double *thresholds, int64_t n_draws, int64_t n, int64_t n_cyc,
                         int64_t g1, const uint64_t *keys, const double *tau,
                         const double *sigma, const double *hazard, const int64_t *next_state,
                         const int64_t *reduce_stops, const double *dose, const int64_t *start,
                         int64_t new_trial, double *work_f, int64_t *work_i, double *hzn,
                         double *res)
{
    return simulate(lay, outputs, covs, thresholds, n_draws, n, n_cyc, g1, keys, tau, sigma,
                    hazard, next_state, reduce_stops, dose, start, new_trial, work_f, work_i,
                    hzn, res, 0, 0, 0.0, 0);
}

/* lenasim_simulate with the per-patient carried exposure of a cumulative-exposure term. */
int64_t lenasim_simulate_carry(const int64_t *lay, const int64_t *outputs, const int64_t *covs,
                               const double *thresholds, int64_t n_draws, int64_t n,
                               int64_t n_cyc, int64_t g1, const uint64_t *keys,
                               const double *tau, const double *sigma, const double *hazard,
                               const int64_t *next_state, const int64_t *reduce_stops,
                               const double *dose, const int64_t *start, int64_t new_trial,
                               double *work_f, int64_t *work_i, double *hzn, double *res,
                               const double *cum_beta, const double *carry, double cum_ref,
                               double *carried)
{
    return simulate(lay, outputs, covs, thresholds, n_draws, n, n_cyc, g1, keys, tau, sigma,
                    hazard, next_state, reduce_stops, dose, start, new_trial, work_f, work_i,
                    hzn, res, cum_beta, carry, cum_ref, carried);
}
