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
enum { CONTINUE = 0, HOLD = 1, REDUCE = 2, STOP = 3 };
/* Columns of a result row (simulate._R_*): p, sampled, cumulative (4 each), dose (7). */
enum { R_P = 0, R_SAMPLED = 4, R_CUM = 8, R_DOSE = 12, N_RES = 19 };

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

void lenasim_cycle_uniforms(const uint64_t *key, const int64_t *patients, int64_t n,
                            int64_t cycle, double *out)
{
    for (int64_t j = 0; j < n; j++) {
        uint32_t c[4] = {(uint32_t)patients[j], (uint32_t)cycle, PURPOSE_CYCLE, 0};
        philox(c, (uint32_t)key[0], (uint32_t)key[1]);
        for (int e = 0; e < 4; e++)
            out[4 * j + e] = to_uniform(c[e]);
    }
}

void lenasim_patient_draws(const uint64_t *key, const int64_t *patients, int64_t n,
                           double *out)
{
    for (int64_t j = 0; j < n; j++) {
        uint32_t c[4] = {(uint32_t)patients[j], 0, PURPOSE_PATIENT, 0};
        philox(c, (uint32_t)key[0], (uint32_t)key[1]);
        for (int e = 0; e < 3; e++)
            out[4 * j + e] = normal(to_uniform(c[e]));
        out[4 * j + 3] = to_uniform(c[3]);
    }
}

void lenasim_trial_normals(const uint64_t *key, double *out)
{
    uint32_t c[4] = {0, 0, PURPOSE_DRAW, 0};
    philox(c, (uint32_t)key[0], (uint32_t)key[1]);
    for (int e = 0; e < 3; e++)
        out[e] = normal(to_uniform(c[e]));
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

/* u_e[i] = the uniform of word e of Philox at counter (i, c1, c2, 0), from <= i < n: the
 * random numbers of a pass over the patients. */
static void uniforms_generic(int64_t from, int64_t n, uint32_t c1, uint32_t c2, uint32_t k0,
                             uint32_t k1, double *restrict u0, double *restrict u1,
                             double *restrict u2, double *restrict u3)
{
    for (int64_t i = from; i < n; i++) {
        uint32_t c[4] = {(uint32_t)i, c1, c2, 0};
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
                                                          uint32_t k0, uint32_t k1,
                                                          double *restrict u0,
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
                c3 = _mm256_setzero_si256();
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
    uniforms_generic(i, n, c1, c2, (uint32_t)_mm256_extract_epi64(rk0[0], 0),
                     (uint32_t)_mm256_extract_epi64(rk1[0], 0), u0, u1, u2, u3);
}
#endif

static void uniforms(int64_t n, uint32_t c1, uint32_t c2, uint32_t k0, uint32_t k1,
                     double *u0, double *u1, double *u2, double *u3)
{
#ifdef HAVE_AVX2_PATH
    if (__builtin_cpu_supports("avx2")) {
        uniforms_avx2(n, c1, c2, k0, k1, u0, u1, u2, u3);
        return;
    }
#endif
    uniforms_generic(0, n, c1, c2, k0, k1, u0, u1, u2, u3);
}

/* The uniforms of a pass (4 rows of n) for the tests: by the dispatched path (the vector
 * one where the CPU has AVX2) or, with generic != 0, by the scalar one. */
void lenasim_pass_uniforms(int64_t n, int64_t c1, int64_t c2, const uint64_t *key,
                           int64_t generic, double *out)
{
    if (generic)
        uniforms_generic(0, n, (uint32_t)c1, (uint32_t)c2, (uint32_t)key[0], (uint32_t)key[1],
                         out, out + n, out + 2 * n, out + 3 * n);
    else
        uniforms(n, (uint32_t)c1, (uint32_t)c2, (uint32_t)key[0], (uint32_t)key[1], out,
                 out + n, out + 2 * n, out + 3 * n);
}

/* The patients of one cohort: w[k][i] = exp(-(t_k + s_k z_ik)), z the frailty normals;
 * the start state (elderly or not); no events yet. u (4 rows of n) is scratch. */
HOT static void patients(int64_t n, uint32_t k0, uint32_t k1, const double *t,
                         const double *s, const int64_t *start, double elderly_share,
                         double *restrict w0, double *restrict w1, double *restrict w2,
                         double *restrict u0, double *restrict u1, double *restrict u2,
                         double *restrict u3, int64_t *restrict state,
                         int64_t *restrict ever)
{
    uniforms(n, 0, PURPOSE_PATIENT, k0, k1, u0, u1, u2, u3);
    for (int64_t i = 0; i < n; i++) {
        w0[i] = normal_central(u0[i] - 0.5);
        w1[i] = normal_central(u1[i] - 0.5);
        w2[i] = normal_central(u2[i] - 0.5);
    }
    double *w[3] = {w0, w1, w2};
    const double *u[3] = {u0, u1, u2};
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < n; i++)
            if (fabs(u[k][i] - 0.5) > CENTRAL)
                w[k][i] = normal_tail(u[k][i]);
    for (int64_t i = 0; i < n; i++) {
        w0[i] = exp(-clip(t[0] + s[0] * w0[i]));
        w1[i] = exp(-clip(t[1] + s[1] * w1[i]));
        w2[i] = exp(-clip(t[2] + s[2] * w2[i]));
    }
    for (int64_t i = 0; i < n; i++) {
        state[i] = u3[i] < elderly_share ? start[1] : start[0];
        ever[i] = 0;
    }
}

/* Cycle c's probabilities, events and sums: one branch-free pass with no table look-ups
 * (it vectorises). u0..u3: each patient's uniforms of the cycle (flare, severity, TLS,
 * neutropenia). h0..h3: each patient's exp(-eta) of flare, TLS, neutropenia and the
 * severity probability (exp(-eta) = +inf: no lenalidomide or stopped, p = 0). ever[i]:
 * events so far (bits 0-3) and, out, this cycle's outcome in bits 8-10 (0 no grade >= 3
 * event, 1 grade >= 3 event with action continue, 2 hold, 3 reduce, 4 discontinue).
 * cum[e]: the cumulative probability, updated as a product limit: with h the mean p over
 * the patients still free of event e (stopped ones included, p = 0), F += (1 - F) h; when
 * every patient has had the event, h is the mean p over all of them. */
HOT static void events(int64_t n, const double *restrict u0, const double *restrict u1,
                       const double *restrict u2, const double *restrict u3,
                       const double *restrict h0, const double *restrict h1,
                       const double *restrict h2, const double *restrict h3,
                       const double *restrict w0, const double *restrict w1,
                       const double *restrict w2, int64_t *restrict ever,
                       const int64_t *acts, double *cum, double *row)
{
    const int64_t a_sev = acts[0], a_tls = acts[1], a_neut = acts[2];
    double p0 = 0, p1 = 0, p2 = 0, p3 = 0, q0 = 0, q1 = 0, q2 = 0, q3 = 0;
    int64_t e0 = 0, e1 = 0, e2 = 0, e3 = 0, r0 = 0, r1 = 0, r2 = 0, r3 = 0;
#pragma omp simd reduction(+ : p0, p1, p2, p3, q0, q1, q2, q3, e0, e1, e2, e3, r0, r1, r2, r3)
    for (int64_t i = 0; i < n; i++) {
        double pf = 1.0 / (1.0 + h0[i] * w0[i]);
        double pt = 1.0 / (1.0 + h1[i] * w1[i]);
        double pn = 1.0 / (1.0 + h2[i] * w2[i]);
        double sv = h3[i];
        double pg = pf * sv;
        p0 += pf;
        p1 += pg;
        p2 += pt;
        p3 += pn;
        int64_t ev = ever[i] & 15;
        r0 += (ev & 1) == 0;
        r1 += (ev & 2) == 0;
        r2 += (ev & 4) == 0;
        r3 += (ev & 8) == 0;
        q0 += (ev & 1) ? 0.0 : pf;
        q1 += (ev & 2) ? 0.0 : pg;
        q2 += (ev & 4) ? 0.0 : pt;
        q3 += (ev & 8) ? 0.0 : pn;
        int64_t ef = u0[i] < pf;
        int64_t eg = ef & (int64_t)(u1[i] < sv);
        int64_t et = u2[i] < pt;
        int64_t en = u3[i] < pn;
        e0 += ef;
        e1 += eg;
        e2 += et;
        e3 += en;
        int64_t act = eg * a_sev;
        act = et * a_tls > act ? et * a_tls : act;
        act = en * a_neut > act ? en * a_neut : act;
        int64_t outcome = act > 0 ? act + 1 : (eg | et | en);
        ever[i] = ev | ef | (eg << 1) | (et << 2) | (en << 3) | (outcome << 8);
    }
    const double q[4] = {q0, q1, q2, q3}, pa[4] = {p0, p1, p2, p3};
    const int64_t r[4] = {r0, r1, r2, r3};
    for (int e = 0; e < 4; e++)
        cum[e] += (1.0 - cum[e]) * (r[e] > 0 ? q[e] / (double)r[e] : pa[e] / (double)n);
    row[R_P + 0] = p0;
    row[R_P + 1] = p1;
    row[R_P + 2] = p2;
    row[R_P + 3] = p3;
    row[R_SAMPLED + 0] = (double)e0;
    row[R_SAMPLED + 1] = (double)e1;
    row[R_SAMPLED + 2] = (double)e2;
    row[R_SAMPLED + 3] = (double)e3;
    for (int e = 0; e < 4; e++)
        row[R_CUM + e] = cum[e];
}

/* Each patient's next state from the cycle's outcome, the cycle's dose sums (then the
 * sums of the row become means), and the next cycle's table gathered into h0..h3.
 * nxt: (G + 1) x 5; red_stop, dose (4 rows), hz_next (4 rows): G + 1 columns.
 * red_stop[s]: added to a "reduce" outcome where there is no level below (+1: discontinue,
 * -1: hold). dose rows: mean dose, intensity (no event or continue), at target, intensity
 * after a grade >= 3 event with action continue (the intensity, or less when the cycle's
 * later escalation steps are not taken after an event). */
HOT static void transition(int64_t n, int64_t g1, int64_t *restrict state,
                           const int64_t *restrict ever, const int64_t *restrict nxt,
                           const int64_t *restrict red_stop, const double *restrict dose,
                           const double *restrict hz_next, double *restrict h0,
                           double *restrict h1, double *restrict h2, double *restrict h3,
                           double *row)
{
    const int64_t stop = g1 - 1;
    int64_t n_start = 0, n_left = 0, n_held = 0, n_reduced = 0;
    double dose_sum = 0, deliv_sum = 0, target_sum = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t s = state[i];
        int64_t o = (ever[i] >> 8) & 7;
        o += (o == 3) * red_stop[s]; /* reduce with no level below: discontinue or hold */
        int64_t sn = nxt[s * 5 + o];
        state[i] = sn;
        h0[i] = hz_next[sn];
        h1[i] = hz_next[g1 + sn];
        h2[i] = hz_next[2 * g1 + sn];
        h3[i] = hz_next[3 * g1 + sn];
        int64_t on = s != stop;
        n_start += on;
        dose_sum += dose[s];
        deliv_sum += o == 0 ? dose[g1 + s] : (o == 1 ? dose[3 * g1 + s] : 0.5 * dose[g1 + s]);
        target_sum += dose[2 * g1 + s];
        n_held += (o == 2) | (o == 3);
        n_reduced += o == 3;
        n_left += on & (o != 4);
    }
    double inv = n_start > 0 ? 1.0 / (double)n_start : NAN;
    for (int e = 0; e < 8; e++)
        row[R_P + e] *= inv; /* probabilities and sampled shares */
    row[R_DOSE + 0] = dose_sum * inv;
    row[R_DOSE + 1] = deliv_sum * inv;
    row[R_DOSE + 2] = (double)n_start / (double)n;
    row[R_DOSE + 3] = target_sum * inv;
    row[R_DOSE + 4] = (double)n_held * inv;
    row[R_DOSE + 5] = (double)n_reduced * inv;
    row[R_DOSE + 6] = 1.0 - (double)n_left / (double)n;
}

/* One cohort per draw j < n_draws (see lenasim.simulate._run_draws for the shapes).
 * hazard: n_draws x 4 x C x G1; next_state: C x G1 x 5; reduce_stops: C x G1;
 * dose: C x 4 x G1; work_f: 11 x n; work_i: 2 x n; hzn: 4 x G1 (scratch: the next
 * cycle's table, contiguous); res: n_draws x C x N_RES. */
void lenasim_simulate(int64_t n_draws, int64_t n, int64_t n_cyc, int64_t g1,
                      const uint64_t *keys, const double *tau, const double *sigma,
                      const double *hazard, const int64_t *next_state,
                      const int64_t *reduce_stops, const double *dose, const int64_t *start,
                      const int64_t *acts, double elderly_share, int64_t new_trial,
                      double *work_f, int64_t *work_i, double *hzn, double *res)
{
    double *w0 = work_f, *w1 = work_f + n, *w2 = work_f + 2 * n;
    double *h0 = work_f + 3 * n, *h1 = work_f + 4 * n, *h2 = work_f + 5 * n,
           *h3 = work_f + 6 * n;
    double *v0 = work_f + 7 * n, *v1 = work_f + 8 * n, *v2 = work_f + 9 * n,
           *v3 = work_f + 10 * n;
    int64_t *state = work_i, *ever = work_i + n;
    for (int64_t j = 0; j < n_draws; j++) {
        uint32_t k0 = (uint32_t)keys[2 * j], k1 = (uint32_t)keys[2 * j + 1];
        double t[3] = {0, 0, 0};
        if (new_trial) {
            double z[3];
            lenasim_trial_normals(keys + 2 * j, z);
            for (int e = 0; e < 3; e++)
                t[e] = tau[3 * j + e] * z[e];
        }
        patients(n, k0, k1, t, sigma + 3 * j, start, elderly_share, w0, w1, w2, h0, h1, h2,
                 h3, state, ever);
        const double *hz = hazard + j * 4 * n_cyc * g1; /* [k][c][s] */
        /* cycle 0's table: gather through the transition of a "stay" with no outcome */
        for (int64_t i = 0; i < n; i++) {
            int64_t s = state[i];
            h0[i] = hz[s];
            h1[i] = hz[n_cyc * g1 + s];
            h2[i] = hz[2 * n_cyc * g1 + s];
            h3[i] = hz[3 * n_cyc * g1 + s];
        }
        double cum[4] = {0, 0, 0, 0};
        for (int64_t c = 0; c < n_cyc; c++) {
            double *row = res + (j * n_cyc + c) * N_RES;
            uniforms(n, (uint32_t)c, PURPOSE_CYCLE, k0, k1, v0, v1, v2, v3);
            events(n, v0, v1, v2, v3, h0, h1, h2, h3, w0, w1, w2, ever, acts, cum, row);
            int64_t cn = c + 1 < n_cyc ? c + 1 : c; /* after the last cycle: not used */
            for (int k = 0; k < 4; k++)
                for (int64_t s = 0; s < g1; s++)
                    hzn[k * g1 + s] = hz[(k * n_cyc + cn) * g1 + s];
            transition(n, g1, state, ever, next_state + c * g1 * 5, reduce_stops + c * g1,
                       dose + c * 4 * g1, hzn, h0, h1, h2, h3, row);
        }
    }
}
