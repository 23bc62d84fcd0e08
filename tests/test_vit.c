/* The ViT wave function: parameter count, gradients against finite
 * differences, batching, threads, translation symmetry, model file. */
#define _POSIX_C_SOURCE 200809L   /* mkdir, rmdir: a save made to fail */
#include "../tqs.h"
#include "test.h"
#include <stdlib.h>
#include <complex.h>
#include <sys/stat.h>
#include <unistd.h>

static tqs_vit_config make_cfg(int Lx, int Ly, int b, int d, int h, int nl, int attention) {
    tqs_vit_config c;
    memset(&c, 0, sizeof c);   /* zero: every other field at its default (no sign rule) */
    c.Lx = Lx; c.Ly = Ly; c.b = b; c.d = d; c.h = h; c.n_layers = nl; c.ff = 4; c.attention = attention;
    return c;
}

static void test_param_count(void) {
    tqs_vit_config c = make_cfg(10, 10, 2, 60, 10, 4, TQS_ATTN_FACTORED);
    tqs_vit m;
    CHECK_EQ(tqs_vit_param_count(&c), 155620); /* the NetKet tutorial's model */
    CHECK_EQ(tqs_vit_init(&m, &c, 1), 0);
    CHECK_EQ(m.n_params, 155620);
    CHECK_EQ(m.lni_b + 60, 155620);  /* the last tensor ends the vector */
    tqs_vit_free(&m);
    /* standard adds W_q b_q W_k b_k and swaps alpha for pos: 2(d*d + d) per layer */
    c.attention = TQS_ATTN_STANDARD;
    CHECK_EQ(tqs_vit_param_count(&c), 155620 + 4 * 2 * (3600 + 60));
    c = make_cfg(4, 4, 2, 6, 4, 1, 0);
    CHECK_EQ(tqs_vit_config_check(&c), TQS_EINVAL); /* 4 heads do not divide d = 6 */
    c = make_cfg(6, 6, 4, 8, 2, 1, 0);
    CHECK_EQ(tqs_vit_config_check(&c), TQS_EINVAL); /* patch 4 does not divide 6 */
}

/* ---- An independent reference: log psi of one configuration written from
 * the formula in tqs.h's model comment with plain loops, libm's tanh for
 * GELU and C99 complex functions for log cosh; none of the library's
 * kernels (tiles, transposed weights, expanded attention, vectorised exp). */
static void ref_layernorm(double *y, const double *u, const double *g, const double *b, int d) {
    double mu = 0, var = 0;
    int i;
    for (i = 0; i < d; i++) mu += u[i];
    mu /= d;
    for (i = 0; i < d; i++) var += (u[i] - mu) * (u[i] - mu);
    var /= d;
    for (i = 0; i < d; i++) y[i] = (u[i] - mu) / sqrt(var + 1e-6) * g[i] + b[i];
}
static void ref_linear(double *y, const double *x, const double *W, const double *b, int nin, int nout) {
    int o, i;
    for (o = 0; o < nout; o++) {
        double acc = b[o];
        for (i = 0; i < nin; i++) acc += W[o * nin + i] * x[i];
        y[o] = acc;
    }
}
static double complex ref_logpsi(const tqs_vit *m, const int8_t *s) {
    const double *p = m->params;
    int n = m->n, d = m->cfg.d, b = m->cfg.b, h = m->cfg.h, dh = d / h, f = m->cfg.ff * d;
    int gy = m->cfg.Ly / b, gx = m->cfg.Lx / b, P, Q, e, l, mu, c, a;
    double *x = (double *)calloc((size_t)n * d, sizeof(double)), *y = (double *)calloc((size_t)n * d, sizeof(double));
    double *v = (double *)calloc((size_t)n * d, sizeof(double)), *q = (double *)calloc((size_t)n * d, sizeof(double));
    double *k = (double *)calloc((size_t)n * d, sizeof(double)), *att = (double *)calloc((size_t)n * d, sizeof(double));
    double *hid = (double *)calloc((size_t)f, sizeof(double)), *tmp = (double *)calloc((size_t)d, sizeof(double));
    double *z = (double *)calloc((size_t)d, sizeof(double)), *r = (double *)calloc((size_t)d, sizeof(double));
    double *mm = (double *)calloc((size_t)d, sizeof(double)), A[64];
    double complex lp = 0;
    for (P = 0; P < n; P++) {            /* patch P at grid (P / gy, P % gy) */
        double patch[16];
        for (e = 0; e < b * b; e++) patch[e] = s[((P / gy) * b + e / b) * m->cfg.Ly + (P % gy) * b + e % b];
        ref_linear(x + P * d, patch, p + m->We, p + m->be, b * b, d);
    }
    for (l = 0; l < m->cfg.n_layers; l++) {
        const tqs_vit_layer_offsets *L = &m->layer[l];
        for (P = 0; P < n; P++) {
            ref_layernorm(y + P * d, x + P * d, p + L->ln1_g, p + L->ln1_b, d);
            ref_linear(v + P * d, y + P * d, p + L->Wv, p + L->bv, d, d);
            if (m->cfg.attention == TQS_ATTN_STANDARD) {
                ref_linear(q + P * d, y + P * d, p + L->Wq, p + L->bq, d, d);
                ref_linear(k + P * d, y + P * d, p + L->Wk, p + L->bk, d, d);
            }
        }
        for (mu = 0; mu < h; mu++)
            for (P = 0; P < n; P++) {
                double sum = 0;
                for (Q = 0; Q < n; Q++) {
                    int disp = (((Q / gy - P / gy) % gx + gx) % gx) * gy + ((Q % gy - P % gy) % gy + gy) % gy;
                    if (m->cfg.attention == TQS_ATTN_FACTORED) A[Q] = p[L->alpha + mu * n + disp];
                    else {
                        double sc = 0;
                        for (c = 0; c < dh; c++) sc += q[P * d + mu * dh + c] * k[Q * d + mu * dh + c];
                        A[Q] = exp(sc / sqrt((double)dh) + p[L->pos + mu * n + disp]);
                        sum += A[Q];
                    }
                }
                for (c = 0; c < dh; c++) {
                    double acc = 0;
                    for (Q = 0; Q < n; Q++) acc += (sum > 0 ? A[Q] / sum : A[Q]) * v[Q * d + mu * dh + c];
                    att[P * d + mu * dh + c] = acc;
                }
            }
        for (P = 0; P < n; P++) {
            ref_linear(tmp, att + P * d, p + L->Wo, p + L->bo, d, d);
            for (c = 0; c < d; c++) x[P * d + c] += tmp[c];
            ref_layernorm(y + P * d, x + P * d, p + L->ln2_g, p + L->ln2_b, d);
            ref_linear(hid, y + P * d, p + L->W1, p + L->b1, d, f);
            for (c = 0; c < f; c++)
                hid[c] = 0.5 * hid[c] * (1 + tanh(0.7978845608028654 * (hid[c] + 0.044715 * pow(hid[c], 3))));
            ref_linear(tmp, hid, p + L->W2, p + L->b2, f, d);
            for (c = 0; c < d; c++) x[P * d + c] += tmp[c];
        }
    }
    for (c = 0; c < d; c++) { tmp[c] = 0; for (P = 0; P < n; P++) tmp[c] += x[P * d + c]; }
    ref_layernorm(z, tmp, p + m->lnh_g, p + m->lnh_b, d);
    ref_linear(tmp, z, p + m->Wr, p + m->br, d, d);
    ref_layernorm(r, tmp, p + m->lnr_g, p + m->lnr_b, d);
    ref_linear(tmp, z, p + m->Wi, p + m->bi, d, d);
    ref_layernorm(mm, tmp, p + m->lni_g, p + m->lni_b, d);
    for (a = 0; a < d; a++) lp += clog(ccosh(r[a] + I * mm[a]));
    free(x); free(y); free(v); free(q); free(k); free(att); free(hid); free(tmp); free(z); free(r); free(mm);
    return lp;
}

/* tqs_vit_forward against the reference for a batch whose B * n is not a
 * multiple of the 8-row tiles and widths d, ff*d that are not multiples of
 * the 8-column tiles, with every parameter random (biases, gains, attention
 * weights nonzero). Both sum the same terms in different orders, with exp
 * and tanh from different code: differences are rounding, ~1e-16 per
 * operation over a few thousand operations, amplified by the LayerNorms'
 * 1/std (~10 here): below 1e-11 (measured ~1e-14). The bound 1e-10 on log
 * psi (O(10)) is far below what a wrong index, weight or term gives: changing
 * GELU's 0.044715 to 0.04472 alone moves log psi by ~1e-5.
 * Imaginary parts are compared modulo 2 pi (log cosh's branch). */
static void test_reference_forward(int attention, int b, int d, int h, int nl) {
    enum { B = 13 };
    tqs_vit_config c = make_cfg(6, 6, b, d, h, nl, attention);
    tqs_vit m;
    tqs_vit_ws ws;
    int8_t cfgs[B * 36];
    tqs_complex lp[B];
    double worst = 0;
    size_t i;
    int s;
    tqs_rng rng;
    c.ff = 3;
    tqs_rng_seed(&rng, 9, (uint64_t)(attention * 100 + b * 10 + d));
    CHECK_EQ(tqs_vit_init(&m, &c, 4), 0);
    for (i = 0; i < m.n_params; i++) m.params[i] += 0.2 * tqs_rng_normal(&rng);
    tqs_vit_ws_init(&ws, &m, B, 0);
    for (s = 0; s < B; s++) tqs_random_config(cfgs + s * 36, 36, &rng);
    CHECK_EQ(tqs_vit_forward(&m, &ws, lp, cfgs, B), 0);
    for (s = 0; s < B; s++) {
        double complex ref = ref_logpsi(&m, cfgs + s * 36);
        double dim = remainder(lp[s].im - cimag(ref), 4 * acos(0.0));
        worst = fmax(worst, fmax(fabs(lp[s].re - creal(ref)), fabs(dim)));
    }
    printf("  reference forward %s b=%d d=%d h=%d n_l=%d: worst |log psi - reference| %.2e\n",
           attention == TQS_ATTN_FACTORED ? "factored" : "standard", b, d, h, nl, worst);
    CHECK_BELOW(worst, 1e-10);
    tqs_vit_ws_free(&ws);
    tqs_vit_free(&m);
}

/* Gradient of every parameter against a 4-point central difference
 *   g ~ [8(f(+h) - f(-h)) - (f(+2h) - f(-2h))] / (12 h),
 * truncation error h^4 f^(5)/30, rounding about 1e-16 |log psi| / h. At
 * h = 1e-3 some entries with large gradients (|g| ~ 17) showed truncation
 * errors ~5e-6 relative (large fifth derivatives through the LayerNorms);
 * h = 2e-4 makes truncation 625 times smaller while rounding stays
 * ~1e-16 * 20 / 2e-4 = 1e-11. The test demands relative error below 1e-6,
 * relative to max(|g|, 1e-3): gradients smaller than 1e-3 must be right to
 * 1e-9 absolutely, still 100 times the finite-difference rounding. */
static void check_gradients(tqs_vit_config c, uint64_t seed) {
    enum { B = 3 };
    tqs_vit m;
    tqs_vit_ws ws;
    int8_t cfgs[B * 64];
    tqs_complex lp[B], f[4][B];
    double *jac, worst = 0, h = 2e-4;
    size_t k, N, worst_k = 0;
    int s, j;
    tqs_rng rng;
    CHECK_EQ(tqs_vit_init(&m, &c, seed), 0);
    N = (size_t)m.N;
    /* non-trivial biases and LayerNorm gains so every path matters */
    tqs_rng_seed(&rng, seed, 77);
    for (k = 0; k < m.n_params; k++) m.params[k] += 0.1 * (tqs_rng_uniform(&rng) - 0.5);
    CHECK_EQ(tqs_vit_ws_init(&ws, &m, B, 1), 0);
    for (s = 0; s < B; s++) tqs_random_config(cfgs + s * N, (int)N, &rng);
    jac = (double *)malloc(sizeof(double) * 2 * B * m.n_params);
    CHECK_EQ(tqs_vit_jacobian(&m, &ws, jac, lp, cfgs, B), 0);
    for (k = 0; k < m.n_params; k++) {
        double keep = m.params[k];
        static const double steps[4] = {1, -1, 2, -2};
        for (j = 0; j < 4; j++) {
            m.params[k] = keep + steps[j] * h;
            tqs_vit_forward(&m, &ws, f[j], cfgs, B);
        }
        m.params[k] = keep;
        for (s = 0; s < B; s++) {
            double fd_re = (8 * (f[0][s].re - f[1][s].re) - (f[2][s].re - f[3][s].re)) / (12 * h);
            double fd_im = (8 * (f[0][s].im - f[1][s].im) - (f[2][s].im - f[3][s].im)) / (12 * h);
            double g_re = jac[(2 * s) * m.n_params + k], g_im = jac[(2 * s + 1) * m.n_params + k];
            double e_re = fabs(g_re - fd_re) / fmax(fmax(fabs(g_re), fabs(fd_re)), 1e-3);
            double e_im = fabs(g_im - fd_im) / fmax(fmax(fabs(g_im), fabs(fd_im)), 1e-3);
            if (getenv("TQS_DEBUG") && (e_re > 1e-6 || e_im > 1e-6)) printf("k=%zu s=%d re %.12g %.12g im %.12g %.12g\n", k, s, g_re, fd_re, g_im, fd_im);
            if (e_re > worst) { worst = e_re; worst_k = k; }
            if (e_im > worst) { worst = e_im; worst_k = k; }
        }
    }
    printf("  gradient check %s %dx%d d=%d: worst relative error %.2e (parameter %zu of %zu)\n",
           c.attention ? "standard" : "factored", c.Lx, c.Ly, c.d, worst, worst_k, m.n_params);
    CHECK_BELOW(worst, 1e-6);
    free(jac);
    tqs_vit_ws_free(&ws);
    tqs_vit_free(&m);
}

/* Batched = one by one; 1 thread = 2 threads; Jacobian rows independent of the batch. */
static void test_batch_and_threads(int attention) {
    enum { B = 5 };
    tqs_vit_config c = make_cfg(4, 4, 2, 8, 2, 2, attention);
    tqs_vit m;
    tqs_vit_ws ws;
    int8_t cfgs[B * 16];
    tqs_complex lp[B], one, lp2[B];
    double *jac, *jac1, *jac2;
    size_t k;
    int s, same = 1, batch_same = 1;
    tqs_rng rng;
    tqs_rng_seed(&rng, 5, 1);
    tqs_vit_init(&m, &c, 11);
    tqs_vit_ws_init(&ws, &m, B, 1);
    for (s = 0; s < B; s++) tqs_random_config(cfgs + s * 16, 16, &rng);
    jac = (double *)malloc(sizeof(double) * 2 * B * m.n_params);
    jac1 = (double *)malloc(sizeof(double) * 2 * m.n_params);
    jac2 = (double *)malloc(sizeof(double) * 2 * B * m.n_params);
    /* the backward writes every entry of its rows (they are not zeroed
     * first): start from NaN so that an entry left unwritten shows */
    for (k = 0; k < 2 * B * m.n_params; k++) jac[k] = jac2[k] = NAN;
    for (k = 0; k < 2 * m.n_params; k++) jac1[k] = NAN;
    tqs_set_threads(1);
    tqs_vit_forward(&m, &ws, lp, cfgs, B);
    tqs_vit_jacobian(&m, &ws, jac, NULL, cfgs, B);
    for (k = 0; k < 2 * B * m.n_params; k++) same &= isfinite(jac[k]) != 0;
    CHECK(same); /* every entry written */
    for (s = 0; s < B; s++) {
        tqs_vit_forward(&m, &ws, &one, cfgs + s * 16, 1);
        batch_same &= one.re == lp[s].re && one.im == lp[s].im;
        tqs_vit_jacobian(&m, &ws, jac1, NULL, cfgs + s * 16, 1);
        for (k = 0; k < 2 * m.n_params; k++) batch_same &= jac1[k] == jac[2 * s * m.n_params + k];
    }
    CHECK(batch_same); /* bitwise: a row's arithmetic does not depend on the rows beside it (README) */
    tqs_set_threads(2);
    tqs_vit_forward(&m, &ws, lp2, cfgs, B);
    tqs_vit_jacobian(&m, &ws, jac2, NULL, cfgs, B);
    for (s = 0; s < B; s++) same &= lp2[s].re == lp[s].re && lp2[s].im == lp[s].im;
    for (k = 0; k < 2 * B * m.n_params; k++) same &= jac2[k] == jac[k];
    CHECK(same); /* bitwise: per-row work does not depend on the thread count */
    free(jac); free(jac1); free(jac2);
    tqs_vit_ws_free(&ws);
    tqs_vit_free(&m);
}

/* Shifting by a whole patch permutes the tokens; factored attention depends
 * only on displacements and the head sums over tokens, so log psi is
 * invariant. A shift by one site changes the patches' content. */
static void test_translation(int attention) {
    tqs_vit_config c = make_cfg(4, 6, 2, 12, 3, 2, attention);
    tqs_vit m;
    tqs_vit_ws ws;
    tqs_lattice lat;
    int8_t s[24], t[4][24];
    tqs_complex lp[5];
    tqs_rng rng;
    tqs_rng_seed(&rng, 9, 0);
    tqs_vit_init(&m, &c, 3);
    tqs_vit_ws_init(&ws, &m, 5, 0);
    tqs_lattice_init(&lat, 4, 6);
    tqs_random_config(s, 24, &rng);
    tqs_translate(&lat, t[0], s, 2, 0);
    tqs_translate(&lat, t[1], s, 0, 2);
    tqs_translate(&lat, t[2], s, 2, 4);
    tqs_translate(&lat, t[3], s, 1, 0);
    tqs_vit_forward(&m, &ws, lp, s, 1);
    tqs_vit_forward(&m, &ws, lp + 1, t[0], 4);
    /* the same numbers in another order (the tokens permuted): the sums over
     * the 6 tokens round differently, a few ulp of terms of size ~1-10, so
     * ~1e-15 to 1e-14 (measured: 2e-15 to 4e-15); 1e-12 keeps two orders of
     * margin, while a one-site shift (last check) moves log psi by O(1) */
    printf("  translation by whole patches (%s): |d log psi| %.1e %.1e %.1e; by one site %.2e\n",
           attention ? "standard" : "factored", cabs((lp[1].re - lp[0].re) + I * (lp[1].im - lp[0].im)),
           cabs((lp[2].re - lp[0].re) + I * (lp[2].im - lp[0].im)), cabs((lp[3].re - lp[0].re) + I * (lp[3].im - lp[0].im)),
           cabs((lp[4].re - lp[0].re) + I * (lp[4].im - lp[0].im)));
    CHECK_NEAR(lp[1].re, lp[0].re, 1e-12); CHECK_NEAR(lp[1].im, lp[0].im, 1e-12);
    CHECK_NEAR(lp[2].re, lp[0].re, 1e-12); CHECK_NEAR(lp[2].im, lp[0].im, 1e-12);
    CHECK_NEAR(lp[3].re, lp[0].re, 1e-12); CHECK_NEAR(lp[3].im, lp[0].im, 1e-12);
    CHECK(fabs(lp[4].re - lp[0].re) + fabs(lp[4].im - lp[0].im) > 1e-6);
    tqs_lattice_free(&lat);
    tqs_vit_ws_free(&ws);
    tqs_vit_free(&m);
}

static void test_attention_readout(void) {
    tqs_vit_config c = make_cfg(4, 4, 2, 8, 2, 2, TQS_ATTN_STANDARD);
    tqs_vit m;
    tqs_vit_ws ws;
    int8_t s[16];
    double A[2 * 2 * 4 * 4], worst = 0;
    int row, Q;
    tqs_rng rng;
    tqs_rng_seed(&rng, 2, 0);
    tqs_random_config(s, 16, &rng);
    tqs_vit_init(&m, &c, 4);
    tqs_vit_ws_init(&ws, &m, 1, 0);
    CHECK_EQ(tqs_vit_attention(&m, &ws, A, s), 0);
    for (row = 0; row < 2 * 2 * 4; row++) { /* softmax rows sum to one */
        double sum = 0;
        for (Q = 0; Q < 4; Q++) sum += A[row * 4 + Q];
        worst = fmax(worst, fabs(sum - 1));
    }
    CHECK_BELOW(worst, 1e-14);
    tqs_vit_ws_free(&ws); tqs_vit_free(&m);
    c.attention = TQS_ATTN_FACTORED;
    tqs_vit_init(&m, &c, 4);
    tqs_vit_ws_init(&ws, &m, 1, 0);
    tqs_vit_attention(&m, &ws, A, s);
    /* layer 1, head 1, query P=3 (X=1,Y=1), key Q=0: displacement (1,1) -> index 3 */
    CHECK(A[(1 * 2 + 1) * 16 + 3 * 4 + 0] == m.params[m.layer[1].alpha + 4 + 3]);
    tqs_vit_ws_free(&ws); tqs_vit_free(&m);
}

static int load_bytes(const unsigned char *buf, size_t len) {
    tqs_vit m;
    int rc = tqs_vit_from_bytes(&m, buf, len);
    if (rc == 0) tqs_vit_free(&m);
    return rc;
}

static void put32(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24); }

/* The parity of the up spins on the sublattice x + y even, counted through
 * tqs_site (the library's site numbering), not the library's own loop. */
static int marshall_parity(const tqs_lattice *lat, const int8_t *s) {
    int x, y, up = 0;
    for (x = 0; x < lat->Lx; x++)
        for (y = 0; y < lat->Ly; y++)
            if ((x + y) % 2 == 0 && s[tqs_site(lat, x, y)] > 0) up++;
    return up % 2;
}

/* Marshall's sign rule: the same parameters with and without it give the
 * same |psi| and phases apart by exactly pi where the parity is odd; the
 * Jacobian is the same (the sign has no parameters); psi_sym over the full
 * group (point group, translations inside a patch, spin flip) keeps that
 * relation, which holds only if the sign is the same on every g s; and the
 * model file keeps the rule (version 3). */
static void test_sign_rule(int Lx, int Ly) {
    enum { B = 24 };
    tqs_vit_config c = make_cfg(Lx, Ly, 2, 8, 2, 2, TQS_ATTN_FACTORED), cm = c;
    tqs_vit m, mm, back;
    tqs_vit_ws ws, wsm;
    tqs_lattice lat;
    tqs_symmetry G;
    tqs_symmetric_amplitude sa, sam;
    tqs_vit_amplitude h, hm;
    tqs_amplitude a, am, sym, symm;
    tqs_rng rng;
    int N = Lx * Ly, k, odd = 0, same_jac;
    int8_t *cf = (int8_t *)malloc((size_t)B * N);
    tqs_complex lp[B], lpm[B], lj[B], ls[B], lsm[B];
    double *jac, *jacm, worst = 0, worst_sym = 0;
    size_t P;
    cm.sign_rule = TQS_SIGN_MARSHALL;
    tqs_vit_init(&m, &c, 5); tqs_vit_init(&mm, &cm, 5);
    P = m.n_params;
    CHECK(mm.n_params == P && memcmp(m.params, mm.params, sizeof(double) * P) == 0);   /* no parameters of its own */
    tqs_vit_ws_init(&ws, &m, B, 1); tqs_vit_ws_init(&wsm, &mm, B, 1);
    tqs_lattice_init(&lat, Lx, Ly);
    tqs_rng_seed(&rng, 17, 0);
    for (k = 0; k < B; k++) tqs_random_config(cf + (size_t)k * N, N, &rng);
    CHECK_EQ(tqs_vit_forward(&m, &ws, lp, cf, B), 0);
    CHECK_EQ(tqs_vit_forward(&mm, &wsm, lpm, cf, B), 0);
    /* Im log psi + pi: one rounding of a number of size < 100, so <= 1e-14;
     * Re log psi is the same operations on the same numbers: equal */
    for (k = 0; k < B; k++) {
        int par = marshall_parity(&lat, cf + (size_t)k * N);
        double e = fabs(lpm[k].im - lp[k].im - 3.14159265358979323846 * par);
        odd += par;
        if (e > worst) worst = e;
        CHECK(lpm[k].re == lp[k].re);
    }
    CHECK(odd > 0 && odd < B);   /* both parities were drawn */
    CHECK_BELOW(worst, 1e-12);
    jac = (double *)malloc(sizeof(double) * 2 * B * P); jacm = (double *)malloc(sizeof(double) * 2 * B * P);
    CHECK_EQ(tqs_vit_jacobian(&m, &ws, jac, NULL, cf, B), 0);
    CHECK_EQ(tqs_vit_jacobian(&mm, &wsm, jacm, lj, cf, B), 0);
    same_jac = memcmp(jac, jacm, sizeof(double) * 2 * B * P) == 0;
    CHECK(same_jac);
    for (k = 0; k < B; k++) CHECK(lj[k].re == lpm[k].re && lj[k].im == lpm[k].im);
    /* psi_sym: 32 or 64 terms summed; each term's phase moved by pi (one rounding
     * each), so the sums agree to ~1e-15 of the largest term; 1e-9 leaves
     * room for a sum 1e5 times smaller than its terms. A sign that changed
     * under some g would mix the terms' signs: an O(1) difference. */
    CHECK_EQ(tqs_symmetry_init(&G, Lx, Ly, 2), 0);
    a = tqs_vit_amplitude_make(&h, &m, &ws); am = tqs_vit_amplitude_make(&hm, &mm, &wsm);
    CHECK_EQ(tqs_symmetric_amplitude_init(&sa, &sym, &G, &a), 0);
    CHECK_EQ(tqs_symmetric_amplitude_init(&sam, &symm, &G, &am), 0);
    CHECK_EQ(sym.fn(sym.ctx, ls, cf, B), 0);
    CHECK_EQ(symm.fn(symm.ctx, lsm, cf, B), 0);
    for (k = 0; k < B; k++) {
        int par = marshall_parity(&lat, cf + (size_t)k * N);
        double dphi = lsm[k].im - ls[k].im - 3.14159265358979323846 * par;
        double e = fabs(lsm[k].re - ls[k].re) + fabs(sin(0.5 * dphi));   /* sin(dphi/2): phases mod 2 pi */
        if (e > worst_sym) worst_sym = e;
    }
    printf("  Marshall's sign rule (%dx%d): phase - pi parity %.1e; Jacobian %s; psi_sym over %d elements %.1e\n",
           Lx, Ly, worst, same_jac ? "identical" : "DIFFERENT", G.n, worst_sym);
    CHECK_BELOW(worst_sym, 1e-9);
    {   /* the model file: version 3 with the rule, read back the same */
        const char *path = "build/test_model_sign.tqs";
        unsigned char *buf;
        size_t len;
        CHECK_EQ(tqs_vit_save(&mm, path), 0);
        CHECK_EQ(tqs_vit_load(&back, path), 0);
        CHECK(back.cfg.sign_rule == TQS_SIGN_MARSHALL && memcmp(back.params, mm.params, sizeof(double) * P) == 0);
        tqs_vit_free(&back);
        CHECK_EQ(tqs_read_file(path, &buf, &len, 1 << 20), 0);
        CHECK(len == 76 + 8 * P + 4 && buf[8] == 3);
        put32(buf + 72, 0); put32(buf + len - 4, tqs_crc32(0, buf, len - 4));   /* version 3 without a rule */
        CHECK_EQ(load_bytes(buf, len), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "sign") != NULL);
        put32(buf + 72, 2); put32(buf + len - 4, tqs_crc32(0, buf, len - 4));   /* no such rule */
        CHECK_EQ(load_bytes(buf, len), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "sign rule") != NULL);
        free(buf);
        remove(path);
    }
    tqs_symmetric_amplitude_free(&sa); tqs_symmetric_amplitude_free(&sam); tqs_symmetry_free(&G);
    free(jac); free(jacm); free(cf);
    tqs_lattice_free(&lat);
    tqs_vit_ws_free(&ws); tqs_vit_ws_free(&wsm);
    tqs_vit_free(&m); tqs_vit_free(&mm);
}

static void test_model_file(void) {
    tqs_vit_config c = make_cfg(4, 4, 2, 8, 2, 2, TQS_ATTN_STANDARD);
    tqs_vit m, m2;
    unsigned char *buf, *bad;
    size_t len;
    const char *path = "build/test_model.tqs";
    tqs_vit_init(&m, &c, 21);
    CHECK(isnan(m.J1) && isnan(m.J2));   /* a fresh model was trained at no couplings */
    CHECK_EQ(tqs_vit_save(&m, path), 0);
    CHECK_EQ(tqs_vit_load(&m2, path), 0);
    CHECK(isnan(m2.J1) && isnan(m2.J2));
    tqs_vit_free(&m2);
    m.J1 = 1.0; m.J2 = 0.6; m.trained_symmetry = 3;   /* as tqs_vmc_step records them */
    CHECK_EQ(tqs_vit_save(&m, path), 0);
    CHECK_EQ(tqs_vit_load(&m2, path), 0);
    CHECK_EQ(m2.n_params, m.n_params);
    CHECK(memcmp(&m2.cfg, &m.cfg, sizeof m.cfg) == 0);
    CHECK(m2.params && memcmp(m2.params, m.params, sizeof(double) * m.n_params) == 0);
    CHECK(m2.J1 == 1.0 && m2.J2 == 0.6 && m2.trained_symmetry == 3);
    tqs_vit_free(&m2);
    CHECK_EQ(tqs_read_file(path, &buf, &len, 1 << 20), 0);
    CHECK_EQ(len, 72 + 8 * m.n_params + 4);   /* version 2: the header, J1, J2 and the trained symmetry, the parameters, the CRC */
    {   /* a version 1 file (the same without the couplings) still loads, its couplings not recorded */
        unsigned char *v1 = (unsigned char *)malloc(len - 20);
        uint32_t crc;
        memcpy(v1, buf, 52); memcpy(v1 + 52, buf + 72, len - 72 - 4);
        put32(v1 + 8, 1);
        crc = tqs_crc32(0, v1, len - 20 - 4);
        put32(v1 + len - 20 - 4, crc);
        CHECK_EQ(tqs_vit_from_bytes(&m2, v1, len - 20), 0);
        CHECK(m2.params && memcmp(m2.params, m.params, sizeof(double) * m.n_params) == 0);
        CHECK(isnan(m2.J1) && isnan(m2.J2) && m2.trained_symmetry == 0);
        tqs_vit_free(&m2);
        free(v1);
    }
    CHECK_EQ(tqs_crc32(0, "123456789", 9), 0xCBF43926u); /* the CRC-32 check value */
    bad = (unsigned char *)malloc(len);
    CHECK_EQ(load_bytes(buf, len), 0);
    memcpy(bad, buf, len); bad[0] = 'X';
    CHECK_EQ(load_bytes(bad, len), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "magic") != NULL);
    {   /* couplings half recorded (J2 NaN beside a finite J1), the CRC made right: refused by name */
        double nan_value = NAN;
        memcpy(bad, buf, len); memcpy(bad + 60, &nan_value, 8);   /* (a little-endian machine, as the file) */
        put32(bad + len - 4, tqs_crc32(0, bad, len - 4));
        CHECK_EQ(load_bytes(bad, len), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "couplings") != NULL);
        memcpy(bad, buf, len); put32(bad + 68, 4);   /* no such kind of training */
        put32(bad + len - 4, tqs_crc32(0, bad, len - 4));
        CHECK_EQ(load_bytes(bad, len), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "trained symmetry") != NULL);
    }
    memcpy(bad, buf, len); put32(bad + 8, 4);
    CHECK_EQ(load_bytes(bad, len), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "version") != NULL);
    CHECK_EQ(load_bytes(buf, len - 1), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "bytes") != NULL);
    CHECK_EQ(load_bytes(buf, 30), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "truncated") != NULL);
    memcpy(bad, buf, len); bad[100] ^= 0x10;
    CHECK_EQ(load_bytes(bad, len), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "CRC") != NULL);
    memcpy(bad, buf, len); bad[44] ^= 1; /* parameter count off by one */
    CHECK_EQ(load_bytes(bad, len), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "imply") != NULL);
    memcpy(bad, buf, len); put32(bad + 24, 7); /* d = 7: heads 2 do not divide it */
    CHECK_EQ(load_bytes(bad, len), TQS_EFORMAT); CHECK(strstr(tqs_last_error(), "hyper-parameters") != NULL);
    memcpy(bad, buf, len); put32(bad + 12, 0x7fffffff); /* absurd lattice */
    CHECK_EQ(load_bytes(bad, len), TQS_EFORMAT);
    memcpy(bad, buf, len); put32(bad + 44, 0xffffffffu); put32(bad + 48, 0xffffffffu); /* absurd count */
    CHECK_EQ(load_bytes(bad, len), TQS_EFORMAT);
    CHECK_EQ(load_bytes(buf, 0), TQS_EFORMAT);
    CHECK_EQ(tqs_vit_load(&m2, "build/does-not-exist.tqs"), TQS_EIO);
    CHECK_EQ(tqs_vit_save(&m, "build/no-such-dir/x.tqs"), TQS_EIO);
    /* a failed save leaves the previous file byte for byte: a directory in
     * the way of PATH.tmp makes the save fail before it writes, and the
     * model is changed first, so a save that wrote anyway would show */
    {
        unsigned char *after = NULL;
        size_t alen = 0;
        m.params[0] += 1.0;
        rmdir("build/test_model.tqs.tmp");   /* left by an interrupted earlier run */
        CHECK_EQ(mkdir("build/test_model.tqs.tmp", 0700), 0);
        CHECK_EQ(tqs_vit_save(&m, path), TQS_EIO);
        CHECK(strstr(tqs_last_error(), "cannot create") != NULL);
        CHECK_EQ(tqs_read_file(path, &after, &alen, 1 << 20), 0);
        CHECK(after && alen == len && memcmp(after, buf, len) == 0);
        rmdir("build/test_model.tqs.tmp");
        free(after);
    }
    free(bad); free(buf);
    tqs_vit_free(&m);
}

int main(void) {
    test_param_count();
    test_reference_forward(TQS_ATTN_FACTORED, 2, 12, 3, 2);
    test_reference_forward(TQS_ATTN_STANDARD, 2, 12, 3, 2);
    test_reference_forward(TQS_ATTN_FACTORED, 1, 20, 4, 1);
    test_reference_forward(TQS_ATTN_STANDARD, 3, 16, 2, 2);
    check_gradients(make_cfg(4, 4, 2, 8, 2, 2, TQS_ATTN_FACTORED), 1);
    check_gradients(make_cfg(4, 4, 2, 8, 2, 2, TQS_ATTN_STANDARD), 2);
    check_gradients(make_cfg(4, 6, 2, 12, 3, 1, TQS_ATTN_FACTORED), 3);
    check_gradients(make_cfg(4, 6, 2, 12, 3, 1, TQS_ATTN_STANDARD), 4);
    test_batch_and_threads(TQS_ATTN_FACTORED);
    test_batch_and_threads(TQS_ATTN_STANDARD);
    test_translation(TQS_ATTN_FACTORED);
    test_translation(TQS_ATTN_STANDARD);
    test_attention_readout();
    test_model_file();
    test_sign_rule(4, 4);
    test_sign_rule(4, 6);
    return test_summary();
}
