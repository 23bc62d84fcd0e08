/* tests/test_obs.c - spin and dimer correlations and structure factors.
 *
 * 1. The exact 4x4 ground state (Lanczos vector) through the amplitude
 *    interface, every configuration weighted by psi^2, against <psi0|O|psi0>
 *    computed here by applying each operator to the vector directly (no
 *    amplitude ratios): C(r), the bond energy and the connected dimer
 *    correlations to 1e-10 (rounding: sums of 12,870 terms of size <= 1,
 *    ~1e-14). Sum rules: sum_r C(r) = 0 (a singlet), C(0) = 3/4, and
 *    E0/N = J1 (C(x) + C(y)) + J2 (C(x+y) + C(x-y)).
 * 2. One reference site gives the same expectations as all of them for a
 *    translation-invariant state (the ground state), to 1e-10.
 * 3. A fixed small ViT: sampled observables (one patch's sites as reference)
 *    against exact enumeration (every |z| below a bound set by the number of
 *    comparisons), and the error bar of C(x) against the spread of 40
 *    independent runs (the chi distribution's quantiles); the energy from the
 *    observables equals the local energy of the same samples, and the
 *    observables cost at most one local energy beyond it, in amplitudes. */
#include <stdlib.h>
#include <string.h>
#include "../tqs.h"
#include "test.h"

/* psi0 as an amplitude: log of the Lanczos vector's entry (the sign as a phase pi) */
typedef struct vec_amp { const tqs_basis *basis; const double *v; int N; } vec_amp;
static int vec_logpsi(void *ctx, tqs_complex *out, const int8_t *configs, int B) {
    vec_amp *a = (vec_amp *)ctx;
    int s;
    for (s = 0; s < B; s++) {
        double x = a->v[tqs_basis_index(a->basis, tqs_config_to_bits(configs + (size_t)s * a->N, a->N))];
        out[s].re = x != 0 ? log(fabs(x)) : -HUGE_VAL;
        out[s].im = x < 0 ? 3.14159265358979323846 : 0.0;
    }
    return 0;
}

/* out = S_i . S_j v on the Sz = 0 basis: 1/4 s_i s_j, and 1/2 from the state with i, j exchanged */
static void apply_exchange(double *out, const double *v, const tqs_basis *B, int i, int j) {
    size_t k;
    for (k = 0; k < B->dim; k++) {
        uint32_t st = B->states[k];
        int si = (st >> i) & 1, sj = (st >> j) & 1;
        if (i == j) { out[k] = 0.75 * v[k]; continue; }
        out[k] = (si == sj ? 0.25 : -0.25) * v[k];
        if (si != sj) out[k] += 0.5 * v[tqs_basis_index(B, st ^ (1u << i) ^ (1u << j))];
    }
}
static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    size_t k;
    for (k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

static void test_exact_ground_state(void) {
    tqs_hamiltonian H;
    tqs_lanczos_options lo;
    tqs_ed_result ed;
    tqs_observables o, o1;
    vec_amp va;
    tqs_amplitude amp;
    const tqs_basis *B;
    tqs_basis basis;
    int8_t *configs;
    tqs_complex *lp;
    double *w, *t1, *t2, worst = 0, sum = 0, e_from_c;
    int N = 16, r, oo, k, Ly = 4;
    size_t n, s;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    memset(&lo, 0, sizeof lo);
    lo.want_vector = 1;
    CHECK_EQ(tqs_exact_ground_state(&ed, &H, &lo), 0);
    tqs_basis_init(&basis, N);
    B = &basis; n = B->dim;
    va.basis = B; va.v = ed.vector; va.N = N;
    amp.fn = vec_logpsi; amp.ctx = &va; amp.max_batch = 1 << 20;
    configs = (int8_t *)malloc(n * N); lp = (tqs_complex *)malloc(sizeof(tqs_complex) * n); w = (double *)malloc(8 * n);
    for (s = 0; s < n; s++) {
        tqs_bits_to_config(configs + s * N, B->states[s], N);
        w[s] = ed.vector[s] * ed.vector[s];
    }
    vec_logpsi(&va, lp, configs, (int)n);
    CHECK_EQ(tqs_observables_init(&o, &H.lat, NULL, 0, 1), 0);
    CHECK_EQ(tqs_observables_weighted(&o, &amp, configs, lp, w, (long)n), 0);
    /* C(r) and the bonds against direct application */
    t1 = (double *)malloc(8 * n); t2 = (double *)malloc(8 * n);
    for (r = 0; r < N; r++) {
        double c = 0;
        for (k = 0; k < N; k++) {
            int j = tqs_site(&H.lat, k / Ly + r / Ly, k % Ly + r % Ly);
            apply_exchange(t1, ed.vector, B, k, j);
            c += dot(ed.vector, t1, n) / N;
        }
        if (fabs(o.corr[r] - c) > worst) worst = fabs(o.corr[r] - c);
        sum += o.corr[r];
    }
    CHECK_BELOW(worst, 1e-10);
    CHECK_NEAR(o.corr[0], 0.75, 1e-12);
    CHECK_NEAR(sum, 0.0, 1e-10);
    e_from_c = 1.0 * (o.corr[1 * Ly + 0] + o.corr[0 * Ly + 1]) + 0.5 * (o.corr[1 * Ly + 1] + o.corr[1 * Ly + 3]);
    CHECK_NEAR(e_from_c, ed.energy / N, 1e-10);
    CHECK_NEAR(o.bond[0], o.corr[Ly], 1e-12);
    CHECK_NEAR(o.diag[0], o.corr[Ly + 1], 1e-12);       /* the next-nearest bonds, (1, 1) and (1, -1) */
    CHECK_NEAR(o.diag[1], o.corr[Ly + Ly - 1], 1e-12);
    {   /* the energy from the bonds' estimators: E0 (same rounding argument) */
        tqs_stats est;
        double eim = 1;
        CHECK_EQ(tqs_observables_energy(&o, 1.0, 0.5, &est, &eim), 0);
        CHECK_NEAR(est.mean, ed.energy, 1e-10 * N);
        CHECK_EQ(eim, 0.0);   /* a real psi */
    }
    CHECK_NEAR(o.sq[0], sum, 1e-12);   /* S(0) = sum_r C(r) */
    printf("  4x4 ground state: C(r) vs <psi0|S.S|psi0> %.2g; sum_r C(r) %.2g; E/N from C %.12f vs %.12f; S(pi,pi) %.6f\n",
           worst, sum, e_from_c, ed.energy / N, o.sq[2 * Ly + 2]);
    /* the connected dimer correlations against <D_b D_b'> - <D_b><D_b'> */
    worst = 0;
    for (oo = 0; oo < 2; oo++)
        for (r = 0; r < N; r++) {
            double d = 0;
            for (k = 0; k < N; k++) {
                int k2 = oo ? tqs_site(&H.lat, k / Ly, k % Ly + 1) : tqs_site(&H.lat, k / Ly + 1, k % Ly);
                int j = tqs_site(&H.lat, k / Ly + r / Ly, k % Ly + r % Ly), j2 = oo ? tqs_site(&H.lat, j / Ly, j % Ly + 1) : tqs_site(&H.lat, j / Ly + 1, j % Ly);
                double db, dbp;
                apply_exchange(t1, ed.vector, B, j, j2);     /* D_b' psi0 */
                dbp = dot(ed.vector, t1, n);
                apply_exchange(t2, t1, B, k, k2);            /* D_b D_b' psi0 */
                d += dot(ed.vector, t2, n) / N;
                apply_exchange(t1, ed.vector, B, k, k2);
                db = dot(ed.vector, t1, n);
                d -= db * dbp / N;
            }
            if (fabs(o.dimer[oo][r] - d) > worst) worst = fabs(o.dimer[oo][r] - d);
        }
    CHECK_BELOW(worst, 1e-10);
    printf("  4x4 ground state: connected dimer correlations vs direct %.2g; dimer S(pi,0) %.6f, S(0,pi) %.6f\n", worst,
           o.dimer_sq[0], o.dimer_sq[1]);
    /* one reference site: the same for a translation-invariant state */
    {
        int ref = 5;
        double w1 = 0;
        CHECK_EQ(tqs_observables_init(&o1, &H.lat, &ref, 1, 1), 0);
        CHECK_EQ(tqs_observables_weighted(&o1, &amp, configs, lp, w, (long)n), 0);
        for (r = 0; r < N; r++) {
            if (fabs(o1.corr[r] - o.corr[r]) > w1) w1 = fabs(o1.corr[r] - o.corr[r]);
            for (oo = 0; oo < 2; oo++) if (fabs(o1.dimer[oo][r] - o.dimer[oo][r]) > w1) w1 = fabs(o1.dimer[oo][r] - o.dimer[oo][r]);
        }
        CHECK_BELOW(w1, 1e-10);
        /* and fewer amplitudes: the pairs and bond products scale with the
         * reference sites (N/2 + N/2 per site), the 2N bonds do not (about N):
         * 1 site about 2N per configuration against N + N^2 = 17N with 16 */
        CHECK_BELOW((double)o1.n_amplitudes, 0.25 * (double)o.n_amplitudes);
        tqs_observables_free(&o1);
    }
    tqs_observables_free(&o);
    free(configs); free(lp); free(w); free(t1); free(t2);
    tqs_basis_free(&basis); tqs_ed_result_free(&ed); tqs_hamiltonian_free(&H);
}

/* An amplitude that counts the configurations it is asked for. */
typedef struct count_amp { tqs_amplitude inner; long n; } count_amp;
static int count_logpsi(void *ctx, tqs_complex *out, const int8_t *configs, int B) {
    count_amp *a = (count_amp *)ctx;
    a->n += B;
    return a->inner.fn(a->inner.ctx, out, configs, B);
}

/* A fixed small ViT: samples against exact enumeration; the energy from the
 * observables' bonds against the local energy of the same samples, and what
 * each costs in amplitudes. */
static void test_sampled(void) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_config c;
    tqs_vit_ws ws;
    tqs_vit_amplitude holder;
    tqs_amplitude amp;
    tqs_enumeration E;
    tqs_sampler S;
    tqs_observables ex, sm;
    int ref[4], e, chains = 32, per = 64, runs = 40, run, r, oo, N = 16, worst_k = 0;
    double worst = 0, spread_ratio_c = 0, *runs_c, mean_err = 0, fe = test_error_scale();
    int8_t *samples;
    tqs_complex *lp, *el;
    double *ere, worst_e = 0;
    count_amp ca;
    tqs_amplitude camp;
    tqs_eloc_ws ews;
    long amps_obs = 0, amps_eloc = 0;
    memset(&c, 0, sizeof c);
    c.Lx = 4; c.Ly = 4; c.b = 2; c.d = 8; c.h = 2; c.n_layers = 1; c.ff = 2; c.attention = TQS_ATTN_FACTORED;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m, &c, 21);
    {   /* a model with structure: scale the output weights so psi is far from uniform */
        size_t k;
        for (k = m.n_params - 64; k < m.n_params; k++) m.params[k] *= 8;
    }
    tqs_vit_ws_init(&ws, &m, 256, 0);
    amp = tqs_vit_amplitude_make(&holder, &m, &ws);
    CHECK_EQ(tqs_enumeration_init(&E, &H.lat, 2), 0);
    CHECK_EQ(tqs_enumeration_evaluate(&E, &H, &amp), 0);
    CHECK_EQ(tqs_observables_init(&ex, &H.lat, NULL, 0, 1), 0);
    CHECK_EQ(tqs_observables_weighted(&ex, &amp, E.configs, E.logpsi, E.weights, E.n), 0);
    for (e = 0; e < 4; e++) ref[e] = tqs_patch_site(&H.lat, 2, 0, e);
    CHECK_EQ(tqs_observables_init(&sm, &H.lat, ref, 4, (long)chains * per), 0);
    samples = (int8_t *)malloc((size_t)chains * per * N); lp = (tqs_complex *)malloc(sizeof(tqs_complex) * chains * per);
    runs_c = (double *)calloc((size_t)runs * N, 8);
    el = (tqs_complex *)malloc(sizeof(tqs_complex) * chains * per); ere = (double *)malloc(sizeof(double) * chains * per);
    ca.inner = amp; ca.n = 0;
    camp.fn = count_logpsi; camp.ctx = &ca; camp.max_batch = amp.max_batch;
    CHECK_EQ(tqs_eloc_ws_init(&ews, &H, 256), 0);
    for (run = 0; run < runs; run++) {
        tqs_stats est, st;
        double eim, lim = 0;
        long k;
        tqs_sampler_init(&S, &H.lat, chains, 100 + run + test_seed_offset());
        CHECK_EQ(tqs_sampler_run(&S, &amp, per, 2, 50, samples, lp), 0);
        ca.n = 0;
        CHECK_EQ(tqs_observables_sampled(&sm, &camp, samples, lp, chains, per), 0);
        CHECK_EQ(ca.n, sm.n_amplitudes);
        amps_obs += ca.n;
        tqs_sampler_free(&S);
        /* the same samples' local energies: the same statistics from the
         * observables' bonds (the same terms summed in another order: rounding,
         * ~1e-15 relative per sample) */
        ca.n = 0;
        CHECK_EQ(tqs_local_energy(el, &H, &camp, &ews, samples, lp, (long)chains * per), 0);
        amps_eloc += ca.n;
        for (k = 0; k < (long)chains * per; k++) { ere[k] = el[k].re; lim += el[k].im / ((double)chains * per); }
        tqs_statistics(&st, ere, chains, per);
        CHECK_EQ(tqs_observables_energy(&sm, 1.0, 0.5, &est, &eim), 0);
        if (fabs(est.mean - st.mean) / fabs(st.mean) > worst_e) worst_e = fabs(est.mean - st.mean) / fabs(st.mean);
        if (fabs(est.error - st.error) / st.error > worst_e) worst_e = fabs(est.error - st.error) / st.error;
        if (fabs(eim - lim) / fabs(st.mean) > worst_e) worst_e = fabs(eim - lim) / fabs(st.mean);
        /* z = (sampled - exact) / error bar: C(r), S(q), the bonds, the dimer correlations */
        for (r = 0; r < N; r++) {
            double zc = fabs(sm.corr[r] - ex.corr[r]) / (fe * sm.corr_err[r] + 1e-300), zq = fabs(sm.sq[r] - ex.sq[r]) / (fe * sm.sq_err[r] + 1e-300);
            if (r == 0) zc = zq = 0;   /* C(0) = 3/4 exactly, error 0 */
            if (zc > worst) { worst = zc; worst_k = r; }
            if (zq > worst) { worst = zq; worst_k = 100 + r; }
            for (oo = 0; oo < 2; oo++) {
                double zd = fabs(sm.dimer[oo][r] - ex.dimer[oo][r]) / (fe * sm.dimer_err[oo][r] + 1e-300);
                if (zd > worst) { worst = zd; worst_k = 200 + 100 * oo + r; }
            }
            runs_c[run * N + r] = sm.corr[r];
        }
        for (oo = 0; oo < 2; oo++) {
            double zb = fabs(sm.bond[oo] - ex.bond[oo]) / (fe * sm.bond_err[oo]);
            double zs = fabs(sm.dimer_sq[oo] - ex.dimer_sq[oo]) / (fe * sm.dimer_sq_err[oo]);
            double zn = fabs(sm.diag[oo] - ex.diag[oo]) / (fe * sm.diag_err[oo]);
            if (zb > worst) { worst = zb; worst_k = 400 + oo; }
            if (zs > worst) { worst = zs; worst_k = 500 + oo; }
            if (zn > worst) { worst = zn; worst_k = 600 + oo; }
        }
        mean_err += fe * sm.corr_err[1] / runs;
    }
    CHECK_BELOW(worst_e, 1e-12);
    /* the cost: the observables evaluate the local energy's amplitudes (the
     * moved configurations of the 4N bonds) and at most one local energy's
     * worth more (pairs of C: ~N/2, products of two bonds: ~N; the local
     * energy ~2N here). Exact counts, no statistics in the bound's margin
     * beyond the model's own spin correlations. */
    CHECK(amps_obs >= amps_eloc);
    CHECK(amps_obs - amps_eloc <= amps_eloc);
    /* 40 runs x (15 C + 15 S + 32 dimer + 6) = 2,720 comparisons (C(0) and S(0)
     * are exact). With right error bars each z is nearly normal; the bars are
     * themselves estimated (tau from the autocorrelation, ~5% uncertain), so
     * allow them 10% low: |z| > 5.5 then needs a normal deviate above 5.0,
     * probability 5.7e-7 each, and by the union bound at most 1.6e-3 for the
     * worst of 2,720, whatever their correlations. Error bars half their
     * true size put the worst of 2,720 near 2 x 3.9 = 7.8. */
    CHECK_BELOW(worst, 5.5);
    /* the error bar of C(x) against the spread of the runs: the sample
     * standard deviation s of n = 40 independent estimates is sigma
     * sqrt(chi2_39 / 39), whose two-sided 99.9% interval is [0.646, 1.384]
     * (scipy.stats.chi2.ppf(0.0005 and 0.9995, 39)); a bar doubled or halved
     * falls outside it with probability 0.994 and 0.998 */
    {
        double m0 = 0, v0 = 0;
        for (run = 0; run < runs; run++) m0 += runs_c[run * N + 1] / runs;
        for (run = 0; run < runs; run++) v0 += (runs_c[run * N + 1] - m0) * (runs_c[run * N + 1] - m0) / (runs - 1);
        spread_ratio_c = sqrt(v0) / mean_err;
        CHECK(spread_ratio_c > 0.646 && spread_ratio_c < 1.384);
    }
    printf("  sampled (one of a patch's 4 sites per sample) vs exact enumeration: worst |z| %.2f (item %d); C(x) spread/error %.2f\n"
           "  energy from the observables vs the local energy, same samples: %.1e; amplitudes per sample: observables %.1f, "
           "local energy %.1f\n", worst, worst_k, spread_ratio_c, worst_e, (double)amps_obs / ((double)runs * chains * per),
           (double)amps_eloc / ((double)runs * chains * per));
    tqs_eloc_ws_free(&ews);
    free(samples); free(lp); free(runs_c); free(el); free(ere);
    tqs_observables_free(&ex); tqs_observables_free(&sm);
    tqs_enumeration_free(&E); tqs_vit_ws_free(&ws); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

#ifdef TQS_TEST_FULL
/* make check: 4x6 (2,704,156 states, 80 s; 4x4 above runs the same code): one reference site (the ground state is invariant
 * under every translation), C(r) and the dimer correlations from that site
 * against direct application, to 1e-10. */
static void test_exact_4x6(void) {
    tqs_hamiltonian H;
    tqs_lanczos_options lo;
    tqs_ed_result ed;
    tqs_observables o;
    tqs_basis basis;
    vec_amp va;
    tqs_amplitude amp;
    int8_t *configs;
    tqs_complex *lp;
    double *w, *t1, *t2, worst = 0, sum = 0;
    int N = 24, Ly = 6, r, oo, ref = 0;
    size_t n, s;
    tqs_hamiltonian_init(&H, 4, 6, 1.0, 0.5);
    memset(&lo, 0, sizeof lo);
    lo.want_vector = 1;
    CHECK_EQ(tqs_exact_ground_state(&ed, &H, &lo), 0);
    tqs_basis_init(&basis, N);
    n = basis.dim;
    va.basis = &basis; va.v = ed.vector; va.N = N;
    amp.fn = vec_logpsi; amp.ctx = &va; amp.max_batch = 1 << 20;
    configs = (int8_t *)malloc(n * N); lp = (tqs_complex *)malloc(sizeof(tqs_complex) * n); w = (double *)malloc(8 * n);
    t1 = (double *)malloc(8 * n); t2 = (double *)malloc(8 * n);
    for (s = 0; s < n; s++) { tqs_bits_to_config(configs + s * N, basis.states[s], N); w[s] = ed.vector[s] * ed.vector[s]; }
    vec_logpsi(&va, lp, configs, (int)n);
    CHECK_EQ(tqs_observables_init(&o, &H.lat, &ref, 1, 1), 0);
    CHECK_EQ(tqs_observables_weighted(&o, &amp, configs, lp, w, (long)n), 0);
    for (r = 0; r < N; r++) {
        apply_exchange(t1, ed.vector, &basis, 0, tqs_site(&H.lat, r / Ly, r % Ly));
        if (fabs(o.corr[r] - dot(ed.vector, t1, n)) > worst) worst = fabs(o.corr[r] - dot(ed.vector, t1, n));
        sum += o.corr[r];
    }
    for (oo = 0; oo < 2; oo++)
        for (r = 0; r < N; r++) {
            int k2 = oo ? tqs_site(&H.lat, 0, 1) : tqs_site(&H.lat, 1, 0), j = tqs_site(&H.lat, r / Ly, r % Ly);
            int j2 = oo ? tqs_site(&H.lat, j / Ly, j % Ly + 1) : tqs_site(&H.lat, j / Ly + 1, j % Ly);
            double db, dbp, d;
            apply_exchange(t1, ed.vector, &basis, j, j2);
            dbp = dot(ed.vector, t1, n);
            apply_exchange(t2, t1, &basis, 0, k2);
            d = dot(ed.vector, t2, n);
            apply_exchange(t1, ed.vector, &basis, 0, k2);
            db = dot(ed.vector, t1, n);
            d -= db * dbp;
            if (fabs(o.dimer[oo][r] - d) > worst) worst = fabs(o.dimer[oo][r] - d);
        }
    CHECK_BELOW(worst, 1e-10);
    CHECK_NEAR(sum, 0.0, 1e-10);
    CHECK_NEAR(o.corr[0], 0.75, 1e-12);
    printf("  4x6 ground state: C(r) and dimer correlations vs direct %.2g; sum_r C(r) %.2g; S(pi,pi) %.5f\n", worst, sum,
           o.sq[2 * Ly + 3]);
    tqs_observables_free(&o);
    free(configs); free(lp); free(w); free(t1); free(t2);
    tqs_basis_free(&basis); tqs_ed_result_free(&ed); tqs_hamiltonian_free(&H);
}
#endif

int main(void) {
    test_exact_ground_state();
#ifdef TQS_TEST_FULL
    test_exact_4x6();
#endif
    test_sampled();
    return test_summary();
}
