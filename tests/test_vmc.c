/* Sampler, local energy, statistics and exact enumeration. */
#include "../tqs.h"
#include "test.h"
#include <stdlib.h>

/* The exact ground state as an amplitude: log psi = log|v| + i pi [v < 0]. */
typedef struct { const tqs_basis *basis; const double *v; int N; } exact_amp;
static int exact_logpsi(void *ctx, tqs_complex *out, const int8_t *configs, int B) {
    const exact_amp *e = (const exact_amp *)ctx;
    int s;
    for (s = 0; s < B; s++) {
        double a = e->v[tqs_basis_index(e->basis, tqs_config_to_bits(configs + (size_t)s * e->N, e->N))];
        out[s].re = log(fabs(a));
        out[s].im = a < 0 ? 3.141592653589793 : 0.0;
    }
    return 0;
}

static tqs_vit_config small_cfg(int attention) {
    tqs_vit_config c;
    memset(&c, 0, sizeof c);   /* zero: every other field at its default (no sign rule) */
    c.Lx = 4; c.Ly = 4; c.b = 2; c.d = 8; c.h = 2; c.n_layers = 1; c.ff = 2; c.attention = attention;
    return c;
}

/* With psi = the exact ground state, E_loc(s) = (H psi)(s)/psi(s) = E0 for
 * every s. The Lanczos residual |H v - E v| <= 1e-12 (tol below) bounds the
 * error of E_loc(s) by 1e-12/|psi(s)|; configurations with |psi(s)| < 1e-4
 * (together less than 12870 * 1e-8 = 1.3e-4 of the probability) could err
 * by more than 1e-8 and are left out. */
static void test_eloc_exact_state(void) {
    tqs_hamiltonian H;
    tqs_ed_result ed;
    tqs_lanczos_options opt;
    tqs_enumeration E;
    tqs_eloc_ws ws;
    exact_amp ea;
    tqs_amplitude amp;
    size_t r;
    double worst = 0;
    int used = 0;
    memset(&opt, 0, sizeof opt);
    opt.want_vector = 1; opt.tol = 1e-12;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    CHECK_EQ(tqs_exact_ground_state(&ed, &H, &opt), 0);
    CHECK_BELOW(ed.residual, 1e-11);
    tqs_enumeration_init(&E, &H.lat, 0);
    ea.basis = &E.basis; ea.v = ed.vector; ea.N = 16;
    amp.fn = exact_logpsi; amp.ctx = &ea; amp.max_batch = 100;
    tqs_eloc_ws_init(&ws, &H, 37); /* a chunk that does not divide anything */
    CHECK_EQ(tqs_enumeration_evaluate(&E, &H, &amp), 0);
    for (r = 0; r < E.basis.dim; r++) {
        if (fabs(ed.vector[r]) < 1e-4) continue;
        used++;
        worst = fmax(worst, fabs(E.eloc[r].re - ed.energy) + fabs(E.eloc[r].im));
    }
    CHECK_BELOW(worst, 1e-8);
    CHECK(used > 12000);
    CHECK_NEAR(E.energy, ed.energy, 1e-9);
    CHECK_BELOW(E.variance, 1e-12);
    tqs_eloc_ws_free(&ws);
    tqs_enumeration_free(&E);
    tqs_ed_result_free(&ed);
    tqs_hamiltonian_free(&H);
}

/* Enumeration energy of a ViT equals <psi|H|psi>/<psi|psi> computed with
 * tqs_hamiltonian_apply on the (real-imaginary) amplitude vector. */
static void test_enumeration_vs_apply(int attention) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_ws vws;
    tqs_vit_amplitude holder;
    tqs_amplitude amp;
    tqs_enumeration E;
    tqs_eloc_ws ws;
    tqs_vit_config c = small_cfg(attention);
    double *re, *im, *Hre, *Him, num = 0, den = 0, wsum = 0, mx = -1e300;
    size_t r, dim;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m, &c, 7);
    tqs_vit_ws_init(&vws, &m, 64, 0);
    amp = tqs_vit_amplitude_make(&holder, &m, &vws);
    tqs_enumeration_init(&E, &H.lat, 0);
    tqs_eloc_ws_init(&ws, &H, 64);
    CHECK_EQ(tqs_enumeration_evaluate(&E, &H, &amp), 0);
    dim = E.basis.dim;
    re = (double *)calloc(dim, 8); im = (double *)calloc(dim, 8);
    Hre = (double *)malloc(dim * 8); Him = (double *)malloc(dim * 8);
    for (r = 0; r < dim; r++) mx = fmax(mx, E.logpsi[r].re);
    for (r = 0; r < dim; r++) {
        double mag = exp(E.logpsi[r].re - mx);
        re[r] = mag * cos(E.logpsi[r].im); im[r] = mag * sin(E.logpsi[r].im);
        wsum += E.weights[r];
    }
    tqs_hamiltonian_apply(&H, &E.basis, Hre, re);
    tqs_hamiltonian_apply(&H, &E.basis, Him, im);
    for (r = 0; r < dim; r++) { num += re[r] * Hre[r] + im[r] * Him[r]; den += re[r] * re[r] + im[r] * im[r]; }
    CHECK_NEAR(wsum, 1.0, 1e-12);
    CHECK_NEAR(E.energy, num / den, 1e-11);
    CHECK(E.variance > 0);
    {   /* orbits under translations by the patch size: same expectation values */
        tqs_enumeration E2;
        double w2 = 0;
        long k;
        CHECK_EQ(tqs_enumeration_init(&E2, &H.lat, 2), 0);
        CHECK(E2.n > (long)dim / 4 && E2.n < (long)dim / 3); /* orbits of size <= 4, most of size 4 */
        CHECK_EQ(tqs_enumeration_evaluate(&E2, &H, &amp), 0);
        for (k = 0; k < E2.n; k++) w2 += E2.weights[k];
        CHECK_NEAR(w2, 1.0, 1e-12);
        CHECK_NEAR(E2.energy, E.energy, 1e-12);
        CHECK_NEAR(E2.variance, E.variance, 1e-12);
        tqs_enumeration_free(&E2);
        /* every translation (b = 1): orbits of size <= 16, for a ViT with
         * patch 1, which is invariant under all of them */
        {
            tqs_vit m1;
            tqs_vit_ws ws1;
            tqs_vit_amplitude h1;
            tqs_amplitude amp1;
            tqs_vit_config c1 = small_cfg(attention);
            c1.b = 1;
            tqs_vit_init(&m1, &c1, 9);
            tqs_vit_ws_init(&ws1, &m1, 64, 0);
            amp1 = tqs_vit_amplitude_make(&h1, &m1, &ws1);
            CHECK_EQ(tqs_enumeration_init(&E2, &H.lat, 1), 0);
            CHECK(E2.n > (long)dim / 16 && E2.n < (long)dim / 15);
            CHECK_EQ(tqs_enumeration_evaluate(&E2, &H, &amp1), 0);
            CHECK_EQ(tqs_enumeration_evaluate(&E, &H, &amp1), 0); /* full basis, same model */
            CHECK_NEAR(E2.energy, E.energy, 1e-12);
            CHECK_NEAR(E2.variance, E.variance, 1e-12);
            tqs_enumeration_free(&E2);
            tqs_vit_ws_free(&ws1);
            tqs_vit_free(&m1);
        }
    }
    free(re); free(im); free(Hre); free(Him);
    tqs_eloc_ws_free(&ws); tqs_enumeration_free(&E);
    tqs_vit_ws_free(&vws); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

/* Sampled energy of a random ViT vs exact enumeration; error bar calibration. */
/* A model with a far-from-uniform |psi|^2: the output layers scaled up and
 * random biases on the last layer norm. */
static void far_from_uniform_model(tqs_vit *m, const tqs_vit_config *c) {
    tqs_rng rng;
    size_t k;
    tqs_vit_init(m, c, 13);
    for (k = 0; k < (size_t)c->d * c->d; k++) { m->params[m->Wr + k] *= 3; m->params[m->Wi + k] *= 3; }
    tqs_rng_seed(&rng, 1, 1);
    for (k = 0; k < (size_t)c->d; k++) m->params[m->lnr_b + k] = 0.5 * tqs_rng_normal(&rng);
}

static void test_sampled_energy(int attention) {
    enum { RUNS = 40, M = 16, K = 150 };
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_ws vws;
    tqs_vit_amplitude holder;
    tqs_amplitude amp;
    tqs_enumeration E;
    tqs_eloc_ws ws;
    tqs_sampler S;
    tqs_vit_config c = small_cfg(attention);
    int8_t *samples = (int8_t *)malloc((size_t)M * K * 16);
    tqs_complex lp[M * K], el[M * K];
    double e[M * K], means[RUNS], errs[RUNS], spread = 0, avg = 0, avg_err = 0, worst_z = 0, fe = test_error_scale();
    int run, i, sz_ok = 1;
    tqs_stats st;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    far_from_uniform_model(&m, &c);
    tqs_vit_ws_init(&vws, &m, 256, 0);
    amp = tqs_vit_amplitude_make(&holder, &m, &vws);
    tqs_enumeration_init(&E, &H.lat, 0);
    tqs_eloc_ws_init(&ws, &H, 256);
    tqs_enumeration_evaluate(&E, &H, &amp);
    for (run = 0; run < RUNS; run++) {
        CHECK_EQ(tqs_sampler_init(&S, &H.lat, M, 100 + run + test_seed_offset()), 0);
        CHECK_EQ(tqs_sampler_run(&S, &amp, K, 1, 20, samples, lp), 0);
        for (i = 0; i < M * K; i++) {
            int j, up = 0;
            for (j = 0; j < 16; j++) up += samples[i * 16 + j] > 0;
            sz_ok &= up == 8;
        }
        tqs_local_energy(el, &H, &amp, &ws, samples, lp, M * K);
        for (i = 0; i < M * K; i++) e[i] = el[i].re;
        tqs_statistics(&st, e, M, K);
        means[run] = st.mean; errs[run] = fe * st.error;
        worst_z = fmax(worst_z, fabs(st.mean - E.energy) / errs[run]);
        CHECK(tqs_sampler_acceptance(&S, -1) > 0.01 && tqs_sampler_acceptance(&S, -1) < 1);
        tqs_sampler_free(&S);
    }
    CHECK(sz_ok);
    /* every run within 4.5 error bars of the exact energy: each |z| > 4.5
     * has probability 6.8e-6 for a normal deviate (4.1e-5 if the estimated
     * bar is 10% low), so at most 1.7e-3 for the worst of 40 runs */
    CHECK_BELOW(worst_z, 4.5);
    for (run = 0; run < RUNS; run++) { avg += means[run] / RUNS; avg_err += errs[run] / RUNS; }
    for (run = 0; run < RUNS; run++) spread += (means[run] - avg) * (means[run] - avg) / (RUNS - 1);
    spread = sqrt(spread);
    /* the sample standard deviation of n = 40 independent runs is sigma
     * sqrt(chi2_39 / 39): two-sided 99.9% interval [0.646, 1.384] of the true
     * error (scipy.stats.chi2.ppf(0.0005 and 0.9995, 39)); a reported bar
     * doubled or halved leaves it with probability 0.994 and 0.998 */
    printf("  %s: exact E %.6f, runs' spread %.5f, mean reported error %.5f (ratio %.3f), worst |z| %.2f of %d runs\n",
           attention ? "standard" : "factored", E.energy, spread, avg_err, spread / avg_err, worst_z, RUNS);
    CHECK(spread > 0.646 * avg_err && spread < 1.384 * avg_err);
    free(samples);
    tqs_eloc_ws_free(&ws); tqs_enumeration_free(&E);
    tqs_vit_ws_free(&vws); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

/* The exact 4x4 J2 = 0.5 ground state psi0 as a batched amplitude over the
 * Sz = 0 basis (for the samplers' distribution tests). */
static void exact_ground_amp(tqs_hamiltonian *H, tqs_ed_result *ed, tqs_basis *B, exact_amp *ea, tqs_amplitude *amp, int batch) {
    tqs_lanczos_options opt;
    memset(&opt, 0, sizeof opt);
    opt.want_vector = 1;
    tqs_hamiltonian_init(H, 4, 4, 1.0, 0.5);
    tqs_exact_ground_state(ed, H, &opt);
    tqs_basis_init(B, 16);
    ea->basis = B; ea->v = ed->vector; ea->N = 16;
    amp->fn = exact_logpsi; amp->ctx = ea; amp->max_batch = batch;
}

/* The histogram of the staggered magnetisation's up-count on sublattice A
 * (0..8) sampled from |psi0|^power (psi0 the exact ground state) against its
 * exact distribution. */
static void test_sampler_distribution(double power) {
    enum { M = 32, K = 400 };
    tqs_hamiltonian H;
    tqs_ed_result ed;
    tqs_basis B;
    tqs_sampler S;
    exact_amp ea;
    tqs_amplitude amp;
    double exact[9] = {0}, seen[9] = {0}, chi2 = 0, two_tau = 1, norm = 0;
    int8_t *samples = (int8_t *)malloc((size_t)M * K * 16), cfg[16];
    size_t r;
    int i, j, bins = 0;
    exact_ground_amp(&H, &ed, &B, &ea, &amp, M);
    for (r = 0; r < B.dim; r++) {
        int up = 0;
        tqs_bits_to_config(cfg, B.states[r], 16);
        for (j = 0; j < 16; j++) up += ((j / 4 + j % 4) % 2 == 0) && cfg[j] > 0;
        exact[up] += pow(fabs(ed.vector[r]), power);
        norm += pow(fabs(ed.vector[r]), power);
    }
    for (i = 0; i < 9; i++) exact[i] /= norm;
    tqs_sampler_init(&S, &H.lat, M, 5 + test_seed_offset());
    S.power = power;
    /* Successive samples of a chain are correlated (tau ~ 2 samples at 3
     * sweeps apart); the chi-square statistic of correlated counts is
     * inflated by about 2 tau, so it is divided by the measured 2 tau (the
     * effective number of independent samples is n / (2 tau)). */
    CHECK_EQ(tqs_sampler_run(&S, &amp, K, 3, 20, samples, NULL), 0);
    for (i = 0; i < M * K; i++) {
        int up = 0;
        for (j = 0; j < 16; j++) up += ((j / 4 + j % 4) % 2 == 0) && samples[i * 16 + j] > 0;
        seen[up] += 1;
    }
    {
        double *stat = (double *)malloc(sizeof(double) * M * K);
        tqs_stats st;
        for (i = 0; i < M * K; i++) {
            int up = 0;
            for (j = 0; j < 16; j++) up += ((j / 4 + j % 4) % 2 == 0) && samples[i * 16 + j] > 0;
            stat[i] = up;
        }
        tqs_statistics(&st, stat, M, K);
        two_tau = 2 * st.tau;
        free(stat);
    }
    for (i = 0; i < 9; i++) {
        double expct = exact[i] * M * K;
        if (expct < 5) continue; /* too few expected counts for the chi-square approximation */
        chi2 += (seen[i] - expct) * (seen[i] - expct) / expct;
        bins++;
    }
    chi2 /= two_tau;
    /* 99.9% quantile of chi-square with bins-1 <= 8 degrees of freedom: 26.1 */
    printf("  sampler |psi0|^%g: chi-square %.2f over %d bins after dividing by 2 tau = %.2f (P(4 up on A): exact %.4f, sampled %.4f)\n",
           power, chi2, bins, two_tau, exact[4], seen[4] / (M * K));
    CHECK(bins >= 5);
    CHECK_BELOW(chi2, 26.1);
    free(samples);
    tqs_sampler_free(&S); tqs_basis_free(&B); tqs_ed_result_free(&ed); tqs_hamiltonian_free(&H);
}

/* The exact ground state tilted towards bonds along x: log psi = log psi0 +
 * TILT sum_x-bonds s_i s_j, an amplitude the lattice's rotations change. */
enum { TILT_N = 16 };
static const double TILT = 0.15;
static int bonds(const int8_t *s, int dx, int dy) {   /* sum of s_i s_j over the bonds along (dx, dy) */
    int x, y, a = 0;
    for (x = 0; x < 4; x++) for (y = 0; y < 4; y++) a += s[x * 4 + y] * s[((x + dx) % 4) * 4 + (y + dy) % 4];
    return a;
}
static int x_bonds(const int8_t *s) { return bonds(s, 1, 0); }
static int anisotropy(const int8_t *s) { return bonds(s, 1, 0) - bonds(s, 0, 1); }
static int tilted_logpsi(void *ctx, tqs_complex *out, const int8_t *configs, int B) {
    int s, rc = exact_logpsi(ctx, out, configs, B);
    for (s = 0; s < B; s++) out[s].re += TILT * x_bonds(configs + (size_t)s * TILT_N);
    return rc;
}

/* Symmetry moves (tqs_sampler_set_moves over the whole 4x4 group, 256
 * elements): on psi0, whose |psi0| every element keeps, every move is
 * accepted (a rejection needs u < 1 - exp(-1e-14): never in 10^4 draws);
 * on the tilted psi, which rotations change, some are rejected, and the
 * samples still follow |psi|^2: the histogram of the anisotropy (-32..32 in
 * steps of 4) against its exact distribution, chi-square divided by 2 tau as
 * in test_sampler_distribution. A move accepted without its Metropolis
 * ratio would make the anisotropy's distribution symmetric (measured: mean
 * -0.01 against the exact +20.7, chi-square 86,000). */
static void test_sampler_moves(void) {
    enum { M = 32, K = 300, NB = 17 };
    tqs_hamiltonian H;
    tqs_ed_result ed;
    tqs_basis B;
    tqs_sampler S;
    tqs_symmetry G;
    exact_amp ea;
    tqs_amplitude amp, tilted;
    double exact[NB] = {0}, seen[NB] = {0}, chi2 = 0, norm = 0, mean_exact = 0, mean_seen = 0, acc, acc0;
    int8_t *samples = (int8_t *)malloc((size_t)M * K * 16), cfg[16];
    double *stat = (double *)malloc(sizeof(double) * M * K);
    tqs_stats st;
    size_t r;
    int i, bins = 0;
    exact_ground_amp(&H, &ed, &B, &ea, &amp, M);
    CHECK_EQ(tqs_symmetry_init(&G, 4, 4, 0), 0);
    CHECK_EQ(G.n, 256);
    tqs_sampler_init(&S, &H.lat, M, 11 + test_seed_offset());
    CHECK_EQ(tqs_sampler_set_moves(&S, G.perm, G.flip, G.n), 0);
    CHECK_EQ(tqs_sampler_run(&S, &amp, K, 1, 10, samples, NULL), 0);
    CHECK_EQ(S.move_proposed, (uint64_t)M * K);
    CHECK_EQ(S.move_accepted, S.move_proposed);
    acc0 = (double)S.move_accepted / (double)S.move_proposed;

    tilted = amp; tilted.fn = tilted_logpsi;
    for (r = 0; r < B.dim; r++) {
        double w;
        tqs_bits_to_config(cfg, B.states[r], 16);
        w = ed.vector[r] * ed.vector[r] * exp(2 * TILT * x_bonds(cfg));
        exact[(anisotropy(cfg) + 32) / 4] += w; norm += w;
        mean_exact += w * anisotropy(cfg);
    }
    for (i = 0; i < NB; i++) exact[i] /= norm;
    mean_exact /= norm;
    tqs_sampler_invalidate(&S);
    CHECK_EQ(tqs_sampler_run(&S, &tilted, K, 3, 20, samples, NULL), 0);
    acc = (double)S.move_accepted / (double)S.move_proposed;
    for (i = 0; i < M * K; i++) {
        stat[i] = anisotropy(samples + (size_t)i * 16);
        seen[((int)stat[i] + 32) / 4] += 1;
        mean_seen += stat[i] / (M * K);
    }
    tqs_statistics(&st, stat, M, K);
    for (i = 0; i < NB; i++) {
        double expct = exact[i] * M * K;
        if (expct < 5) continue;   /* too few expected counts for the chi-square approximation */
        chi2 += (seen[i] - expct) * (seen[i] - expct) / expct;
        bins++;
    }
    chi2 /= 2 * st.tau;
    printf("  symmetry moves: accepted on psi0 %.3f, on the tilted psi %.3f; its anisotropy mean %.3f (exact %.3f), "
           "chi-square %.2f over %d bins after dividing by 2 tau = %.2f\n", acc0, acc, mean_seen, mean_exact, chi2, bins, 2 * st.tau);
    CHECK(acc > 0.05 && acc < 0.95);
    CHECK(bins >= 5);
    /* 99.9% quantile of chi-square with bins - 1 <= 16 degrees of freedom: 39.3 */
    CHECK_BELOW(chi2, 39.3);
    /* refusals: not a permutation */
    {
        int bad[16];
        for (i = 0; i < 16; i++) bad[i] = i ? i : 1;
        CHECK_EQ(tqs_sampler_set_moves(&S, bad, NULL, 1), TQS_EINVAL);
    }
    free(samples); free(stat);
    tqs_symmetry_free(&G); tqs_sampler_free(&S); tqs_basis_free(&B); tqs_ed_result_free(&ed); tqs_hamiltonian_free(&H);
}

/* The energy gradient the driver hands SR, g = X^T f = Re sum_s w_s (O(s) - <O>)^* (E_loc(s) - E), after one step. */
static void driver_gradient(double *g, const tqs_vmc *v) {
    long P = (long)v->model->n_params, r, k;
    for (k = 0; k < P; k++) g[k] = 0;
    for (r = 0; r < v->R; r++) for (k = 0; k < P; k++) g[k] += v->X[r * P + k] * v->f[r];
}

/* Training samples of |psi|^p, p = 1, reweighted by |psi|^(2-p): the energy
 * and the gradient the driver hands SR are those of |psi|^2 (exact
 * enumeration), for a far-from-uniform psi where the unweighted p = 1
 * averages differ from them by many error bars. RUNS = 40 independent runs:
 * the energy within 4.5 of its reported error bars of the exact one each;
 * the reported error bar against the runs' spread (the chi interval of
 * test_sampled_energy); the gradient's projection on the exact one,
 * g.g_ex / |g_ex|^2, within 4 standard errors (the runs' spread / sqrt(RUNS))
 * of 1: Student's t with 39 degrees of freedom exceeds 4 with probability
 * 2.8e-4. */
static void test_sample_power(void) {
    enum { RUNS = 40 };
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    tqs_vit_config c = small_cfg(TQS_ATTN_FACTORED);
    double *keep, *g, *gx, E_ex, gg = 0, proj[RUNS], pm = 0, ps = 0, means[RUNS], errs[RUNS], avg = 0, spread = 0, avg_err = 0;
    double unweighted = 0, worst_z = 0, fe = test_error_scale();
    int run;
    size_t k, P;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    far_from_uniform_model(&m, &c);
    P = m.n_params;
    keep = (double *)malloc(sizeof(double) * P); g = (double *)malloc(sizeof(double) * P); gx = (double *)malloc(sizeof(double) * P);
    memcpy(keep, m.params, sizeof(double) * P);
    memset(&o, 0, sizeof o);
    o.exact = 1; o.n_steps = 1;
    CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), 0);
    CHECK_EQ(tqs_vmc_step(&v, &info), 0);
    E_ex = info.energy;
    driver_gradient(gx, &v);
    for (k = 0; k < P; k++) gg += gx[k] * gx[k];
    tqs_vmc_free(&v);
    o.exact = 1; o.sample_power = 1.0;
    CHECK(tqs_vmc_init(&v, &H, &m, &o) != 0);   /* nothing is sampled with exact enumeration */
    o.exact = 0; o.sample_power = 2.5;
    CHECK(tqs_vmc_init(&v, &H, &m, &o) != 0);
    o.sample_power = 1.0; o.n_samples = 4096; o.n_chains = 128;
    for (run = 0; run < RUNS; run++) {
        int s;
        double d = 0;
        memcpy(m.params, keep, sizeof(double) * P);
        o.seed = 40 + (uint64_t)run + test_seed_offset();
        CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), 0);
        CHECK_EQ(tqs_vmc_step(&v, &info), 0);
        driver_gradient(g, &v);
        for (k = 0; k < P; k++) d += g[k] * gx[k];
        proj[run] = d / gg;
        means[run] = info.energy; errs[run] = fe * info.error;
        worst_z = fmax(worst_z, fabs(info.energy - E_ex) / errs[run]);
        CHECK(info.ess > 1 && info.ess < v.M_all);   /* unequal weights: fewer effective samples */
        for (s = 0; s < v.M; s++) unweighted += v.eloc[s].re / v.M / RUNS;
        tqs_vmc_free(&v);
    }
    for (run = 0; run < RUNS; run++) { pm += proj[run] / RUNS; avg += means[run] / RUNS; avg_err += errs[run] / RUNS; }
    for (run = 0; run < RUNS; run++) {
        ps += (proj[run] - pm) * (proj[run] - pm) / (RUNS - 1);
        spread += (means[run] - avg) * (means[run] - avg) / (RUNS - 1);
    }
    ps = sqrt(ps / RUNS); spread = sqrt(spread);
    printf("  |psi|^1 samples, reweighted: E %.5f (exact %.5f, unweighted %.5f), runs' spread %.5f, mean error %.5f; "
           "gradient projection %.4f +- %.4f; worst |z| %.2f\n", avg, E_ex, unweighted, spread, avg_err, pm, ps, worst_z);
    CHECK_BELOW(worst_z, 4.5);                                        /* as in test_sampled_energy */
    CHECK(spread > 0.646 * avg_err && spread < 1.384 * avg_err);   /* chi2_39, two-sided 99.9% */
    CHECK(fabs(pm - 1) < 4 * ps);
    /* the weights matter for this psi: the unweighted mean of all RUNS runs
     * (error about avg_err / sqrt(RUNS)) is many of its error bars away */
    CHECK(fabs(unweighted - E_ex) > 10 * avg_err / sqrt((double)RUNS));
    free(keep); free(g); free(gx);
    tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

static void test_sampler_threads(void) {
    enum { M = 8, K = 20 };
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_ws vws;
    tqs_vit_amplitude holder;
    tqs_amplitude amp;
    tqs_sampler S;
    tqs_vit_config c = small_cfg(TQS_ATTN_STANDARD);
    int8_t a[M * K * 16], b[M * K * 16];
    tqs_complex la[M * K], lb[M * K];
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m, &c, 3);
    tqs_vit_ws_init(&vws, &m, M, 0);
    amp = tqs_vit_amplitude_make(&holder, &m, &vws);
    tqs_set_threads(1);
    tqs_sampler_init(&S, &H.lat, M, 9);
    tqs_sampler_run(&S, &amp, K, 1, 5, a, la);
    tqs_sampler_free(&S);
    tqs_set_threads(2);
    tqs_sampler_init(&S, &H.lat, M, 9);
    tqs_sampler_run(&S, &amp, K, 1, 5, b, lb);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(la, lb, sizeof la) == 0);
    CHECK(S.n_pairs == 16 * 5); /* 4x4: +x,+y,+x+y,+x-y per site; +2x and +2y coincide with -2x, -2y: 16 */
    tqs_sampler_free(&S);
    tqs_vit_ws_free(&vws); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

/* AR(1): x_t = phi x_{t-1} + e_t has tau_int = (1 + phi) / (2 (1 - phi)) and
 * variance 1/(1 - phi^2) for unit noise. */
static void test_statistics_ar1(void) {
    enum { C = 8, L = 4000, REP = 40 };
    static double x[C * L];
    double phi = 0.8, tau_exact = (1 + phi) / (2 * (1 - phi)), var_exact = 1 / (1 - phi * phi);
    double means[REP], mean_tau = 0, mean_err = 0, spread = 0, mm = 0;
    int rep, c, t;
    tqs_stats st;
    tqs_rng rng;
    tqs_rng_seed(&rng, 2024 + test_seed_offset(), 0);
    for (rep = 0; rep < REP; rep++) {
        for (c = 0; c < C; c++) {
            double v = tqs_rng_normal(&rng) * sqrt(var_exact);
            for (t = 0; t < L; t++) { v = phi * v + tqs_rng_normal(&rng); x[c * L + t] = v; }
        }
        tqs_statistics(&st, x, C, L);
        means[rep] = st.mean; mean_tau += st.tau / REP; mean_err += test_error_scale() * st.error / REP;
        if (rep == 0) {
            /* the variance of 32,000 samples: relative standard error
             * sqrt(2 (1 + phi^2) / (1 - phi^2) / n) = 1.7% (x^2 of an AR(1) has
             * autocorrelation phi^(2t)); 10% is 6 of them */
            CHECK_NEAR(st.variance, var_exact, 0.1 * var_exact);
            /* split R-hat^2 = (h-1)/h + Bv/W: with h = 2000 samples per half
             * chain, the variance of the 16 half-chain means is about
             * W 2 tau / h chi2_15/15, so R-hat lies in [1.0002, 1.0057] with
             * probability 99.9% (chi2_15's 0.05% and 99.95% quantiles) */
            CHECK(st.rhat > 1.0 && st.rhat < 1.01);
        }
    }
    for (rep = 0; rep < REP; rep++) mm += means[rep] / REP;
    for (rep = 0; rep < REP; rep++) spread += (means[rep] - mm) * (means[rep] - mm) / (REP - 1);
    spread = sqrt(spread);
    printf("  AR(1) phi=0.8: tau %.3f (exact %.3f), error %.5f (exact %.5f, spread of %d runs %.5f)\n",
           mean_tau, tau_exact, mean_err, sqrt(var_exact * 2 * tau_exact / (C * L)), REP, spread);
    /* the windowed estimator is biased low by ~exp(-W/tau) + statistical ~5%: 10% */
    CHECK_NEAR(mean_tau, tau_exact, 0.1 * tau_exact);
    CHECK_NEAR(mean_err, sqrt(var_exact * 2 * tau_exact / (C * L)), 0.1 * sqrt(var_exact * 2 * tau_exact / (C * L)));
    /* 40 runs: the spread is the true error times sqrt(chi2_39 / 39), in
     * [0.646, 1.384] with probability 99.9% (as in test_sampled_energy) */
    CHECK(spread > 0.646 * mean_err && spread < 1.384 * mean_err);
    /* independent samples: tau = 1/2; chains at different means: R-hat > 1 */
    for (t = 0; t < C * L; t++) x[t] = tqs_rng_normal(&rng) + (t >= L ? 0 : 3);
    tqs_statistics(&st, x, C, L);
    CHECK(st.rhat > 1.1);
}

/* tqs_sampler_start_ordered on the exact 4x4 ground state: each chain moves
 * to the Neel, stripe or its own configuration with probability proportional
 * to |psi0|^p among the 7. The expected count of each choice over M chains
 * is sum_c p_c(k) with variance sum_c p_c(k)(1 - p_c(k)) (independent
 * draws); the counts must be within 4 standard deviations + 1 of it (the +1
 * for rare choices, where one draw is already several deviations). And every
 * chain's log psi is its configuration's, its magnetisation unchanged. */
static void test_start_ordered(double power) {
    enum { M = 2048, K = 6 };
    tqs_hamiltonian H;
    tqs_ed_result ed;
    tqs_basis B;
    tqs_sampler S;
    exact_amp ea;
    tqs_amplitude amp;
    tqs_complex lp[M], pl[K];
    int8_t *before = (int8_t *)malloc((size_t)M * 16), pat[K * 16];
    double expect[K + 1] = {0}, var[K + 1] = {0}, seen[K + 1] = {0}, worst = 0;
    int c, k, i, lp_ok = 1, mag_ok = 1;
    exact_ground_amp(&H, &ed, &B, &ea, &amp, M);
    for (k = 0; k < K; k++)   /* the patterns, written here independently: site x Ly + y */
        for (i = 0; i < 16; i++) {
            int x = i / 4, y = i % 4, bit = k == 0 ? (x + y) % 2 : k == 1 ? (x + y + 1) % 2 : k == 2 ? x % 2
                                                 : k == 3 ? (x + 1) % 2 : k == 4 ? y % 2 : (y + 1) % 2;
            pat[k * 16 + i] = (int8_t)(bit ? 1 : -1);
        }
    exact_logpsi(&ea, pl, pat, K);
    tqs_sampler_init(&S, &H.lat, M, 9 + test_seed_offset());
    S.power = power;
    memcpy(before, S.state, (size_t)M * 16);
    exact_logpsi(&ea, lp, before, M);
    for (c = 0; c < M; c++) {   /* each chain's probabilities */
        double w[K + 1], sum = 0;
        for (k = 0; k < K; k++) w[k] = exp(power * pl[k].re);
        w[K] = exp(power * lp[c].re);
        for (k = 0; k <= K; k++) sum += w[k];
        for (k = 0; k <= K; k++) { double p = w[k] / sum; expect[k] += p; var[k] += p * (1 - p); }
    }
    CHECK_EQ(tqs_sampler_start_ordered(&S, &H.lat, &amp), 0);
    exact_logpsi(&ea, lp, S.state, M);
    for (c = 0; c < M; c++) {
        const int8_t *st = S.state + (size_t)c * 16;
        int found = K, m = 0;
        for (k = 0; k < K && found == K; k++) if (!memcmp(st, pat + k * 16, 16)) found = k;
        if (found == K) mag_ok &= !memcmp(st, before + (size_t)c * 16, 16);   /* else it stayed */
        seen[found] += 1;
        for (i = 0; i < 16; i++) m += st[i];
        mag_ok &= m == 0;
        lp_ok &= lp[c].re == S.logpsi[c].re;
    }
    for (k = 0; k <= K; k++) worst = fmax(worst, (fabs(seen[k] - expect[k]) - 1) / sqrt(var[k] + 1e-300));
    printf("  ordered starts, |psi0|^%g, %d chains: Neel %g %g (expected %.1f %.1f), stripes %g %g %g %g, stayed %g (%.1f); "
           "worst (|n - E| - 1)/sd %.2f\n", power, M, seen[0], seen[1], expect[0], expect[1], seen[2], seen[3], seen[4], seen[5],
           seen[K], expect[K], worst);
    CHECK(worst < 4);
    CHECK(lp_ok && S.have_logpsi);
    CHECK(mag_ok);
    CHECK(seen[0] > 0.2 * M && seen[1] > 0.2 * M);   /* psi0 favours Neel: the draw is not the chains' own */
    tqs_sampler_free(&S); free(before); tqs_basis_free(&B); tqs_ed_result_free(&ed); tqs_hamiltonian_free(&H);
}

/* tqs_vmc_set_chains: bad configurations are refused by name and leave the
 * chains as they were; accepted ones are where the first step samples from,
 * without thermalising. The reference is a run that thermalises for zero
 * sweeps from the same chains written into its sampler by hand: the first
 * steps must agree bit for bit, and differ from the same hand-written start
 * thermalised for the default 20 sweeps (so the comparison can fail). */
static void test_set_chains(void) {
    enum { C = 16 };
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vmc a, b, r;
    tqs_vmc_options o;
    tqs_step_info ia, ib, ir;
    tqs_vit_config c = small_cfg(TQS_ATTN_FACTORED);
    int8_t st[C * 16], keep[C * 16];
    tqs_rng rng;
    int k;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    far_from_uniform_model(&m, &c);
    memset(&o, 0, sizeof o);
    o.n_samples = 4 * C; o.n_chains = C; o.n_steps = 3; o.seed = 7;
    tqs_rng_seed(&rng, 3, 0);
    for (k = 0; k < C; k++) tqs_random_config(st + 16 * k, 16, &rng);
    CHECK_EQ(tqs_vmc_init(&a, &H, &m, &o), 0);
    memcpy(keep, a.sampler.state, sizeof keep);
    st[16 * 3 + 5] = 0;
    CHECK_EQ(tqs_vmc_set_chains(&a, st), TQS_EINVAL);
    CHECK(strstr(tqs_last_error(), "chain 3: spin 5 is 0") != NULL);
    for (k = 0; k < 16; k++) st[16 * 3 + k] = 1;   /* chain 3 all up: valid spins, magnetisation 16 for 0 */
    CHECK_EQ(tqs_vmc_set_chains(&a, st), TQS_EINVAL);
    CHECK(strstr(tqs_last_error(), "chain 3: the magnetisation") != NULL);
    CHECK(memcmp(keep, a.sampler.state, sizeof keep) == 0);   /* nothing written */
    tqs_rng_seed(&rng, 3, 0);
    for (k = 0; k < C; k++) tqs_random_config(st + 16 * k, 16, &rng);
    CHECK_EQ(tqs_vmc_set_chains(&a, st), 0);
    CHECK_EQ(tqs_vmc_step(&a, &ia), 0);
    CHECK_EQ(tqs_vmc_set_chains(&a, st), TQS_EINVAL);   /* after the first step */
    CHECK(strstr(tqs_last_error(), "before the first step") != NULL);
    tqs_vmc_free(&a); tqs_vit_free(&m);   /* the step changed the parameters: b and r start from the same ones as a */
    far_from_uniform_model(&m, &c);
    o.thermalize = -1;   /* zero sweeps */
    CHECK_EQ(tqs_vmc_init(&b, &H, &m, &o), 0);
    memcpy(b.sampler.state, st, sizeof st);
    CHECK_EQ(tqs_vmc_step(&b, &ib), 0);
    tqs_vmc_free(&b); tqs_vit_free(&m);
    far_from_uniform_model(&m, &c);
    o.thermalize = 0;    /* the default 20 */
    CHECK_EQ(tqs_vmc_init(&r, &H, &m, &o), 0);
    memcpy(r.sampler.state, st, sizeof st);
    CHECK_EQ(tqs_vmc_step(&r, &ir), 0);
    printf("  set_chains: first step E %.12f, by hand without thermalising %.12f, with 20 sweeps %.12f\n",
           ia.energy, ib.energy, ir.energy);
    CHECK(ia.energy == ib.energy && ia.variance == ib.variance);
    CHECK(ia.energy != ir.energy);
    tqs_vmc_free(&r); tqs_vit_free(&m);
    memset(&o, 0, sizeof o);
    o.exact = 1; o.n_steps = 1;
    far_from_uniform_model(&m, &c);
    CHECK_EQ(tqs_vmc_init(&r, &H, &m, &o), 0);
    CHECK_EQ(tqs_vmc_set_chains(&r, st), TQS_EINVAL);   /* no chains to set */
    tqs_vmc_free(&r); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

int main(void) {
    test_eloc_exact_state();
    test_enumeration_vs_apply(TQS_ATTN_FACTORED);
    test_enumeration_vs_apply(TQS_ATTN_STANDARD);
    test_sampled_energy(TQS_ATTN_FACTORED);
    test_sampled_energy(TQS_ATTN_STANDARD);
    test_sampler_distribution(2.0);
    test_sampler_distribution(1.0);
    test_sampler_moves();
    test_start_ordered(2.0);
    test_start_ordered(1.0);
    test_sample_power();
    test_set_chains();
    test_sampler_threads();
    test_statistics_ar1();
    return test_summary();
}
