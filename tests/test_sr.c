/* Linear algebra, the three SR solvers, one SR step against a dense
 * reference, short optimisations, checkpoint/resume. */
#include "../tqs.h"
#define TEST_DENSE_SOLVE
#include "test.h"
#include <stdlib.h>

static double *random_matrix(long r, long c, uint64_t seed) {
    double *m = (double *)malloc(sizeof(double) * r * c);
    tqs_rng g;
    long i;
    tqs_rng_seed(&g, seed, 0);
    for (i = 0; i < r * c; i++) m[i] = tqs_rng_normal(&g);
    return m;
}


static void test_gram(long R, long P) {
    double *X = random_matrix(R, P, (uint64_t)(R * 1000 + P)), *C1 = (double *)malloc(8 * P * P), *C2 = (double *)malloc(8 * R * R);
    double worst = 0;
    long i, j, k;
    CHECK_EQ(tqs_gram(C1, X, R, P, 0), 0);
    CHECK_EQ(tqs_gram(C2, X, R, P, 1), 0);
    /* naive sums of R (or P) products of unit normals: rounding ~1e-16 * sqrt(k) * k */
    for (i = 0; i < P; i++) for (j = 0; j < P; j++) {
        double s = 0;
        for (k = 0; k < R; k++) s += X[k * P + i] * X[k * P + j];
        worst = fmax(worst, fabs(s - C1[i * P + j]) / R);
    }
    for (i = 0; i < R; i++) for (j = 0; j < R; j++) {
        double s = 0;
        for (k = 0; k < P; k++) s += X[i * P + k] * X[j * P + k];
        worst = fmax(worst, fabs(s - C2[i * R + j]) / P);
    }
    CHECK_BELOW(worst, 1e-14);
    free(X); free(C1); free(C2);
}

static void test_cholesky(long n) {
    double *X = random_matrix(n + 5, n, (uint64_t)n), *A = (double *)malloc(8 * n * n), *L = (double *)malloc(8 * n * n);
    double worst = 0, scale = 0, *b, *x;
    long i, j, k;
    tqs_gram(A, X, n + 5, n, 0);   /* A = X^T X: SPD, condition number ~ (sqrt(n+5)+sqrt(n))^2/5^2 */
    for (i = 0; i < n; i++) A[i * n + i] += 1.0;
    memcpy(L, A, 8 * n * n);
    CHECK_EQ(tqs_cholesky(L, n), 0);
    for (i = 0; i < n; i++) for (j = 0; j <= i; j++) {
        double s = 0;
        for (k = 0; k <= j; k++) s += L[i * n + k] * L[j * n + k];
        worst = fmax(worst, fabs(s - A[i * n + j]));
        scale = fmax(scale, fabs(A[i * n + j]));
    }
    /* backward stability: |L L^T - A| <= c n eps |A| */
    CHECK_BELOW(worst / scale, 1e-13);
    b = random_matrix(n, 1, 3); x = (double *)malloc(8 * (size_t)n);
    memcpy(x, b, 8 * (size_t)n);
    tqs_cholesky_solve(L, x, n);
    {   /* backward stability of the two triangular solves and the factor
         * (Higham, Accuracy and Stability of Numerical Algorithms, Thm 10.4):
         * |b - A x| <= gamma_(3n+1) |L||L^T| |x|, and with |L||L^T| of the
         * size of |A| for this well-conditioned A the normwise residual
         * |b - A x|_inf / (|A|_inf |x|_inf) is below 3 n eps */
        double norm_a = 0, norm_x = 0;
        worst = 0;
        for (i = 0; i < n; i++) {
            double s = 0, row = 0;
            for (j = 0; j < n; j++) { s += A[i * n + j] * x[j]; row += fabs(A[i * n + j]); }
            worst = fmax(worst, fabs(s - b[i]));
            norm_a = fmax(norm_a, row); norm_x = fmax(norm_x, fabs(x[i]));
        }
        printf("  Cholesky n = %ld: solve residual %.1e of |A| |x| (bound 3 n eps = %.1e)\n", n,
               worst / (norm_a * norm_x), 3.0 * n * 2.220446049250313e-16);
        CHECK_BELOW(worst / (norm_a * norm_x), 3.0 * n * 2.220446049250313e-16);
    }
    /* indefinite: flip the sign of one diagonal entry far below the rest */
    memcpy(L, A, 8 * n * n);
    L[(n / 2) * n + n / 2] = -1.0;
    CHECK_EQ(tqs_cholesky(L, n), TQS_ENOTPD);
    for (i = 0, k = 1; i < n * n; i++) k &= !isnan(L[i]);
    CHECK(k); /* no NaN produced */
    free(X); free(A); free(L); free(b); free(x);
}

/* The dense normal equations of SR: S = X^T X + shift (P x P) and
 * rhs = X^T f + shift p (p may be NULL). */
static void dense_normal_equations(double *S, double *rhs, const double *X, const double *f, const double *p,
                                   double shift, long R, long P) {
    long i, j, k;
    for (i = 0; i < P; i++) {
        for (j = 0; j < P; j++) { S[i * P + j] = 0; for (k = 0; k < R; k++) S[i * P + j] += X[k * P + i] * X[k * P + j]; }
        S[i * P + i] += shift;
        rhs[i] = p ? shift * p[i] : 0.0;
        for (k = 0; k < R; k++) rhs[i] += X[k * P + i] * f[k];
    }
}

/* The three solvers and a dense reference agree. */
static void test_solvers(long R, long P) {
    double *X = random_matrix(R, P, 11), *f = random_matrix(R, 1, 12), *S = (double *)calloc(P * P, 8), *ref = (double *)calloc(P, 8);
    double *d1 = (double *)malloc(8 * P), *d2 = (double *)malloc(8 * P), *d3 = (double *)malloc(8 * P);
    double shift = 0.1, e12 = 0, e13 = 0, e1r = 0, nr = 0;
    long i;
    tqs_sr_options o;
    tqs_sr_ws ws;
    tqs_sr_info info;
    dense_normal_equations(S, ref, X, f, NULL, shift, R, P);
    dense_solve(S, ref, (int)P);
    memset(&o, 0, sizeof o);
    o.solver = TQS_SOLVER_PARAMETER; tqs_sr_ws_init(&ws, R, P, &o); CHECK_EQ(tqs_sr_solve(d1, X, f, shift, &o, &ws, &info), 0); tqs_sr_ws_free(&ws);
    o.solver = TQS_SOLVER_SAMPLE; tqs_sr_ws_init(&ws, R, P, &o); CHECK_EQ(tqs_sr_solve(d2, X, f, shift, &o, &ws, &info), 0); tqs_sr_ws_free(&ws);
    o.solver = TQS_SOLVER_CG; o.cg_tol = 1e-12; o.cg_max_iter = 5000;
    tqs_sr_ws_init(&ws, R, P, &o); CHECK_EQ(tqs_sr_solve(d3, X, f, shift, &o, &ws, &info), 0); tqs_sr_ws_free(&ws);
    CHECK_BELOW(info.cg_residual, 1e-11); /* reached its tolerance (true residual) */
    for (i = 0; i < P; i++) {
        e12 = fmax(e12, fabs(d1[i] - d2[i])); e13 = fmax(e13, fabs(d1[i] - d3[i]));
        e1r = fmax(e1r, fabs(d1[i] - ref[i])); nr = fmax(nr, fabs(ref[i]));
    }
    /* condition number of S + 0.1 <= (sqrt(R)+sqrt(P))^2/0.1 ~ 4e3: 1e-8 leaves a wide margin */
    CHECK_BELOW(e12 / nr, 1e-8);
    CHECK_BELOW(e13 / nr, 1e-8);
    CHECK_BELOW(e1r / nr, 1e-8);
    free(X); free(f); free(S); free(ref); free(d1); free(d2); free(d3);
}

static tqs_vit_config tiny_cfg(void) {
    tqs_vit_config c;
    memset(&c, 0, sizeof c);   /* zero: every other field at its default (no sign rule) */
    c.Lx = 4; c.Ly = 4; c.b = 2; c.d = 4; c.h = 1; c.n_layers = 1; c.ff = 1; c.attention = TQS_ATTN_FACTORED;
    return c;
}

/* The local energies of the force clipped by hand, independently of the
 * library: centre m = sum w E, width c sum w |E - m|, those farther moved
 * radially onto the circle. Returns how many moved. */
static long clip_by_hand(tqs_complex *out, const tqs_complex *e, const double *w, long M, double c) {
    double mr = 0, mi = 0, width = 0;
    long s, moved = 0;
    for (s = 0; s < M; s++) { mr += w[s] * e[s].re; mi += w[s] * e[s].im; }
    for (s = 0; s < M; s++) width += w[s] * sqrt((e[s].re - mr) * (e[s].re - mr) + (e[s].im - mi) * (e[s].im - mi));
    width *= c;
    for (s = 0; s < M; s++) {
        double d = sqrt((e[s].re - mr) * (e[s].re - mr) + (e[s].im - mi) * (e[s].im - mi));
        out[s] = e[s];
        if (d > width) { out[s].re = mr + (e[s].re - mr) * width / d; out[s].im = mi + (e[s].im - mi) * width / d; moved++; }
    }
    return moved;
}

/* tqs_clip_local_energies on values worked out by hand. */
static void test_clip_values(void) {
    tqs_complex a[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {10, 0}}, b[4] = {{3, 4}, {0, 0}, {0, 0}, {-3, -4}};
    tqs_complex c3[3] = {{1, 0}, {3, 0}, {100, 0}}, out[5];
    double w3[3] = {0.5, 0.5, 0};
    /* mean 2, mean absolute deviation (4 x 2 + 8)/5 = 3.2: 10 moves to 2 + 3.2, the zeros stay */
    CHECK_EQ(tqs_clip_local_energies(out, a, NULL, 5, 1.0), 1);
    CHECK(out[0].re == 0 && out[3].re == 0 && out[3].im == 0);
    CHECK_NEAR(out[4].re, 5.2, 1e-15); CHECK(out[4].im == 0);
    /* complex, radially: mean 0, deviation (5 + 0 + 0 + 5)/4 = 2.5; 3+4i (|.| = 5) to half of it */
    CHECK_EQ(tqs_clip_local_energies(out, b, NULL, 4, 1.0), 2);
    CHECK_NEAR(out[0].re, 1.5, 1e-15); CHECK_NEAR(out[0].im, 2.0, 1e-15);
    CHECK_NEAR(out[3].re, -1.5, 1e-15); CHECK_NEAR(out[3].im, -2.0, 1e-15);
    CHECK(out[1].re == 0 && out[1].im == 0);
    /* weighted: 100 has weight 0, so mean 2 and deviation 1; c = 2 puts it at 4 */
    CHECK_EQ(tqs_clip_local_energies(out, c3, w3, 3, 2.0), 1);
    CHECK(out[0].re == 1 && out[1].re == 3);
    CHECK_NEAR(out[2].re, 4.0, 1e-14);
    /* in place, and a width no value reaches: nothing moves */
    memcpy(out, a, sizeof a);
    CHECK_EQ(tqs_clip_local_energies(out, out, NULL, 5, 3.0), 0);
    CHECK(out[4].re == 10);
    CHECK_EQ(tqs_clip_local_energies(out, a, NULL, 5, 0.0), -1);
    CHECK_EQ(tqs_clip_local_energies(out, a, NULL, 0, 1.0), -1);
    CHECK_EQ(tqs_clip_local_energies(NULL, a, NULL, 5, 1.0), -1);
}

/* One exact SR step against a dense complex-arithmetic reference:
 *   S_kl = Re sum_s w_s conj(dO_k) dO_l,  F_k = Re sum_s w_s conj(dO_k) dE,
 *   theta' = theta - lr (S + shift)^{-1} F.
 * clip > 0: the step with tqs_vmc_options.clip_local_energy against the
 * same reference built from local energies clipped by hand. */
static void test_exact_step(double clip) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_config c = tiny_cfg();
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    double *theta0, *theta1, *F, *Ore, *Oim, *jac, Ere = 0, worst = 0, scale = 0;
    long P, M, s, k;
    tqs_vit_ws ws;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m, &c, 5);
    test_plain_options(&o);
    o.exact = 1; o.lr = 0.1; o.diag_shift = 0.01; o.n_steps = 10; o.sr.solver = TQS_SOLVER_PARAMETER;
    o.clip_local_energy = clip;
    CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), 0);
    P = (long)m.n_params;
    theta0 = (double *)malloc(8 * P);
    memcpy(theta0, m.params, 8 * P);
    CHECK_EQ(tqs_vmc_step(&v, &info), 0);
    CHECK(!info.rejected);
    theta1 = (double *)malloc(8 * P);
    memcpy(theta1, m.params, 8 * P); /* v.model is &m: keep the updated parameters */
    /* the reference, from the enumeration the step used (weights, E_loc) and
     * the Jacobian recomputed here at theta0 */
    M = v.en.n;
    memcpy(m.params, theta0, 8 * P);
    tqs_vit_ws_init(&ws, &m, 64, 1);
    jac = (double *)malloc(8 * 2 * 64 * P);
    Ore = (double *)malloc(8 * M * P); Oim = (double *)malloc(8 * M * P);
    F = (double *)calloc(P, 8);
    for (s = 0; s < M; s += 64) {
        int B = (int)(M - s < 64 ? M - s : 64), b;
        tqs_vit_jacobian(&m, &ws, jac, NULL, v.en.configs + s * 16, B);
        for (b = 0; b < B; b++) for (k = 0; k < P; k++) {
            Ore[(s + b) * P + k] = jac[(2 * b) * P + k];
            Oim[(s + b) * P + k] = jac[(2 * b + 1) * P + k];
        }
    }
    if (clip > 0) {
        /* the clipped force's reference, and the unclipped one it must differ from */
        tqs_complex *ec = (tqs_complex *)malloc(sizeof(tqs_complex) * M);
        double *F0 = (double *)calloc(P, 8), diff = 0, size = 0;
        long moved = clip_by_hand(ec, v.en.eloc, v.en.weights, M, clip);
        CHECK(moved > 0);
        CHECK_EQ(info.clipped, (int)moved);
        dense_sr_direction(F, Ore, Oim, v.en.weights, ec, M, P, 0.01);
        dense_sr_direction(F0, Ore, Oim, v.en.weights, v.en.eloc, M, P, 0.01);
        for (k = 0; k < P; k++) { diff = fmax(diff, fabs(F[k] - F0[k])); size = fmax(size, fabs(F0[k])); }
        CHECK(diff > 1e-3 * size);   /* the clip changes the step far beyond the 1e-8 checked below */
        free(ec); free(F0);
    } else {
        CHECK_EQ(info.clipped, 0);
        dense_sr_direction(F, Ore, Oim, v.en.weights, v.en.eloc, M, P, 0.01);
    }
    for (k = 0; k < P; k++) {
        double expect = theta0[k] - 0.1 * F[k];
        worst = fmax(worst, fabs(theta1[k] - expect));
        scale = fmax(scale, fabs(0.1 * F[k]));
    }
    /* the update itself must agree to 1e-8 relative */
    CHECK_BELOW(worst / scale, 1e-8);
    /* in exact mode the step's energy is the enumeration energy, sum_s w_s Re E_loc(s) */
    for (s = 0; s < M; s++) Ere += v.en.weights[s] * v.en.eloc[s].re;
    CHECK_NEAR(info.energy, Ere, 1e-12);
    free(theta0); free(theta1); free(F); free(Ore); free(Oim); free(jac);
    tqs_vit_ws_free(&ws);
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

/* Short optimisations: how far 60 SR steps take a small ViT on 4x4 at
 * J2 = 0.5 (exact E/N -0.5286; the best product state -0.25; the initial
 * random ViT about +0.1). Under the sanitizers (20x slower) the runs are 6
 * steps long and only the memory checks count; the thresholds are asserted
 * by the optimised builds. */
#ifdef TQS_TEST_SHORT
#define SHORT_STEPS 6
#define SHORT_CHECK(x) (void)0
#else
#define SHORT_STEPS 60
#define SHORT_CHECK(x) x
#endif
static void test_short_runs(void) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_config c = tiny_cfg();
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info, first;
    memset(&first, 0, sizeof first);
    int step;
    c.d = 8; c.h = 2; c.ff = 2;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    /* exact enumeration, 60 steps */
    tqs_vit_init(&m, &c, 3);
    test_plain_options(&o);
    o.exact = 1; o.lr = o.lr_final = 0.1; o.diag_shift = 1e-2; o.n_steps = SHORT_STEPS;
    CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), 0);
    for (step = 0; step < o.n_steps; step++) { tqs_vmc_step(&v, &info); if (step == 0) first = info; }
    tqs_vmc_evaluate(&v, 0, &info);
    printf("  exact-enumeration run: E/N %.4f -> %.7f in %d steps\n", first.energy / 16, info.energy / 16, o.n_steps);
    /* Deterministic (no sampling): this run reaches E/N -0.4873069 (2026-12-04).
     * Scaling every initial parameter by 1 + 1e-9 (1e-6) moves that by 1e-8
     * (1.7e-5), so rounding differences between compilers and kernels
     * (1e-16 relative) move it far less than the 1.3e-3 margin below; other
     * initial seeds end between -0.456 and -0.511, so a learning rate, shift,
     * gradient or solver that learns differently would show. */
    SHORT_CHECK(CHECK_BELOW(info.energy / 16, -0.486));
    tqs_vmc_free(&v); tqs_vit_free(&m);
    /* sampled, 60 steps of 256 samples, seeds 4-8 (the seeds this test always
     * used, not picked by result): the median run. The distribution of one
     * run's E/N, measured over seeds 1-116 (2026-12-04): median -0.462,
     * from -0.504 to -0.336, 4 of 116 above -0.38 (p = 0.035). The median of
     * 5 is above -0.38 only if 3 runs are: 10 p^3 = 4e-4 (+ 4 error bars of
     * 0.0015 in the bound, which moves that little), while the exact run
     * above ends at -0.487: a sampler, local energy or reweighting that
     * leaves the sampled runs far behind the exact one fails. */
    {
        double ends[5], bound[5], t;
        int r, i, j;
        for (r = 0; r < 5; r++) {
            tqs_vit_init(&m, &c, 3);
            test_plain_options(&o);
            o.n_samples = 256; o.n_chains = 16; o.lr = o.lr_final = 0.1; o.diag_shift = 1e-2; o.n_steps = SHORT_STEPS;
            o.seed = 4 + r + test_seed_offset();
            CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), 0);
            for (step = 0; step < o.n_steps; step++) { tqs_vmc_step(&v, &info); if (step == 0) first = info; }
            tqs_vmc_evaluate(&v, 4096, &info);
            printf("  sampled run, seed %d: E/N %.4f -> %.4f +- %.4f in %d steps\n", (int)o.seed, first.energy / 16, info.energy / 16,
                   info.error / 16, o.n_steps);
            ends[r] = info.energy / 16; bound[r] = info.energy / 16 + 4 * info.error / 16;
            tqs_vmc_free(&v); tqs_vit_free(&m);
        }
        for (i = 1; i < 5; i++) for (j = i; j > 0 && ends[j] < ends[j - 1]; j--) {   /* sort by energy, bounds along */
            t = ends[j]; ends[j] = ends[j - 1]; ends[j - 1] = t;
            t = bound[j]; bound[j] = bound[j - 1]; bound[j - 1] = t;
        }
        SHORT_CHECK(CHECK_BELOW(bound[2], -0.38));
    }
    tqs_hamiltonian_free(&H);
}

/* 2K steps = K steps, checkpoint, resume in a fresh driver, K steps: every
 * energy equal to the last bit; and the same with 1 and 2 threads. */
static double run_momentum = -1;   /* SPRING's momentum of run_steps (< 0: off; with it the checkpoint carries the prior) */
static void run_steps(double *energies, int from, int to, const char *save_path, const char *resume_path, int threads) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_config c = tiny_cfg();
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    int step;
    tqs_set_threads(threads);
    c.attention = TQS_ATTN_STANDARD; c.d = 8; c.h = 2;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m, &c, 8);
    test_plain_options(&o);
    o.n_samples = 128; o.n_chains = 8; o.lr = 0.05; o.lr_final = 0.01; o.diag_shift = 1e-2; o.n_steps = 6; o.seed = 77;
    o.momentum = run_momentum;
    tqs_vmc_init(&v, &H, &m, &o);
    if (resume_path) CHECK_EQ(tqs_vmc_load_checkpoint(&v, resume_path), 0);
    CHECK_EQ(v.step, from);
    for (step = from; step < to; step++) { tqs_vmc_step(&v, &info); energies[step] = info.energy; }
    if (save_path) CHECK_EQ(tqs_vmc_save_checkpoint(&v, save_path), 0);
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

static void test_checkpoint_resume(void) {
    double straight[6], split[6], two[6];
    run_steps(straight, 0, 6, NULL, NULL, 2);
    run_steps(split, 0, 3, "build/test_ckpt.bin", NULL, 2);
    run_steps(split, 3, 6, NULL, "build/test_ckpt.bin", 2);
    CHECK(memcmp(straight, split, sizeof straight) == 0);
    run_steps(two, 0, 6, NULL, NULL, 1);
    CHECK(memcmp(straight, two, sizeof straight) == 0);
    CHECK(straight[5] != straight[0]); /* it did move */
    /* with momentum: the prior is part of the state (checkpoint version 2) */
    run_momentum = 0.8;
    run_steps(two, 0, 6, NULL, NULL, 2);
    run_steps(split, 0, 3, "build/test_ckpt.bin", NULL, 2);
    run_steps(split, 3, 6, NULL, "build/test_ckpt.bin", 2);
    CHECK(memcmp(two, split, sizeof two) == 0);
    CHECK(memcmp(two, straight, sizeof two) != 0); /* the momentum changed the run */
    run_momentum = -1;
}

/* With max_distance the update is the uncapped one scaled to that length
 * in the metric S: same state, same samples (exact), so the two parameter
 * changes must be parallel with ratio cap / distance. */
static void test_max_distance(void) {
    tqs_hamiltonian H;
    tqs_vit m1, m2;
    tqs_vit_config c = tiny_cfg();
    tqs_vmc v1, v2;
    tqs_vmc_options o;
    tqs_step_info i1, i2;
    double *theta0, worst = 0, scale = 0, ratio;
    long k, P;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m1, &c, 6); tqs_vit_init(&m2, &c, 6);
    P = (long)m1.n_params;
    theta0 = (double *)malloc(8 * P);
    memcpy(theta0, m1.params, 8 * P);
    test_plain_options(&o);
    o.exact = 1; o.lr = 0.1; o.diag_shift = 0.01;
    tqs_vmc_init(&v1, &H, &m1, &o);
    o.max_distance = 1e-3;
    tqs_vmc_init(&v2, &H, &m2, &o);
    tqs_vmc_step(&v1, &i1); tqs_vmc_step(&v2, &i2);
    CHECK(!i1.capped && i2.capped);
    CHECK(i1.distance > 1e-3);
    CHECK_NEAR(i2.distance, i1.distance, 1e-12 * i1.distance); /* reported before the cap */
    ratio = 1e-3 / i1.distance;
    for (k = 0; k < P; k++) {
        worst = fmax(worst, fabs((m2.params[k] - theta0[k]) - ratio * (m1.params[k] - theta0[k])));
        scale = fmax(scale, fabs(m1.params[k] - theta0[k]));
    }
    CHECK_BELOW(worst, 1e-12 * scale + 1e-15);
    free(theta0);
    tqs_vmc_free(&v1); tqs_vmc_free(&v2); tqs_vit_free(&m1); tqs_vit_free(&m2); tqs_hamiltonian_free(&H);
}

/* SPRING's solve with a prior p: the three solvers against the dense
 * reference (S + shift) d = X^T f + shift p, and d = p when f = X p (the
 * prior already fits: nothing is left to learn). */
static void test_solvers_prior(long R, long P) {
    double *X = random_matrix(R, P, 21), *f = random_matrix(R, 1, 22), *p = random_matrix(P, 1, 23);
    double *S = (double *)calloc(P * P, 8), *ref = (double *)calloc(P, 8), *d = (double *)malloc(8 * P), *fp = (double *)calloc(R, 8);
    double shift = 0.05, nr = 0;
    int solver;
    long i, k;
    tqs_sr_options o;
    tqs_sr_ws ws;
    tqs_sr_info info;
    dense_normal_equations(S, ref, X, f, p, shift, R, P);
    dense_solve(S, ref, (int)P);
    for (i = 0; i < P; i++) nr = fmax(nr, fabs(ref[i]));
    for (k = 0; k < R; k++) for (i = 0; i < P; i++) fp[k] += X[k * P + i] * p[i];
    for (solver = TQS_SOLVER_PARAMETER; solver <= TQS_SOLVER_CG; solver++) {
        double e = 0, e2 = 0, np = 0;
        memset(&o, 0, sizeof o);
        o.solver = solver; o.cg_tol = 1e-13; o.cg_max_iter = 5000;
        CHECK_EQ(tqs_sr_ws_init(&ws, R, P, &o), 0);
        CHECK_EQ(tqs_sr_solve_prior(d, X, f, shift, p, &o, &ws, &info), 0);
        for (i = 0; i < P; i++) e = fmax(e, fabs(d[i] - ref[i]));
        /* condition number of S + 0.05 below ~1e4 (as in test_solvers): 1e-8 is wide */
        CHECK_BELOW(e / nr, 1e-8);
        CHECK_EQ(tqs_sr_solve_prior(d, X, fp, shift, p, &o, &ws, &info), 0);
        for (i = 0; i < P; i++) { e2 = fmax(e2, fabs(d[i] - p[i])); np = fmax(np, fabs(p[i])); }
        CHECK_BELOW(e2 / np, 1e-8);
        tqs_sr_ws_free(&ws);
    }
    free(X); free(f); free(p); free(S); free(ref); free(d); free(fp);
}

/* The driver with momentum mu: its first step is plain SR, its second the
 * solve with prior mu * (first update): checked against a driver without
 * momentum that takes the same first step and leaves the second step's
 * X and f in its buffers (the same states: the same samples of the same
 * parameters, or the exact enumeration in make check). */
static void test_momentum_step(void) {
    tqs_hamiltonian H;
    tqs_vit m1, m2;
    tqs_vit_config c = tiny_cfg();
    tqs_vmc v1, v2;
    tqs_vmc_options o;
    tqs_sr_options so;
    tqs_sr_ws ws;
    double *theta0, *theta1, *prior, *d, worst = 0, scale = 0, mu = 0.9, lr = 0.1;
    long k, P;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m1, &c, 9); tqs_vit_init(&m2, &c, 9);
    P = (long)m1.n_params;
    theta0 = (double *)malloc(8 * P); theta1 = (double *)malloc(8 * P);
    prior = (double *)malloc(8 * P); d = (double *)malloc(8 * P);
    memcpy(theta0, m1.params, 8 * P);
    test_plain_options(&o);
#ifdef TQS_TEST_FULL
    o.exact = 1;   /* the sample solver on all 12870 states (9 s) */
#else
    o.n_samples = 64; o.n_chains = 8; o.seed = 3;   /* the two runs draw the same samples while their parameters agree */
#endif
    o.lr = o.lr_final = lr; o.diag_shift = 0.01; o.n_steps = 2; o.sr.solver = TQS_SOLVER_SAMPLE;
    CHECK_EQ(tqs_vmc_init(&v2, &H, &m2, &o), 0);
    o.momentum = mu;
    CHECK_EQ(tqs_vmc_init(&v1, &H, &m1, &o), 0);
    CHECK_EQ(tqs_vmc_step(&v1, NULL), 0); CHECK_EQ(tqs_vmc_step(&v2, NULL), 0);
    CHECK(memcmp(m1.params, m2.params, 8 * P) == 0);   /* step 1: no prior yet */
    memcpy(theta1, m1.params, 8 * P);
    CHECK_EQ(tqs_vmc_step(&v1, NULL), 0); CHECK_EQ(tqs_vmc_step(&v2, NULL), 0);
    for (k = 0; k < P; k++) prior[k] = mu * (theta0[k] - theta1[k]) / lr;
    memset(&so, 0, sizeof so);
    so.solver = TQS_SOLVER_PARAMETER;
    CHECK_EQ(tqs_sr_ws_init(&ws, v2.R, P, &so), 0);
    CHECK_EQ(tqs_sr_solve_prior(d, v2.X, v2.f, 0.01, prior, &so, &ws, NULL), 0);
    for (k = 0; k < P; k++) {
        worst = fmax(worst, fabs(m1.params[k] - (theta1[k] - lr * d[k])));
        scale = fmax(scale, fabs(lr * d[k]));
    }
    /* the other solver and the prior recovered from rounded parameters: 1e-7 */
    CHECK_BELOW(worst / scale, 1e-7);
    CHECK(memcmp(m1.params, m2.params, 8 * P) != 0);   /* and the momentum did change the step */
    tqs_sr_ws_free(&ws);
    free(theta0); free(theta1); free(prior); free(d);
    tqs_vmc_free(&v1); tqs_vmc_free(&v2); tqs_vit_free(&m1); tqs_vit_free(&m2); tqs_hamiltonian_free(&H);
}

#define PI_ 3.14159265358979323846
/* The learning-rate and shift schedules as info reports them: a linear
 * warm-up to lr, then cosine from lr to lr_final (and the shift from its
 * start to its end) over the remaining steps; exponential by default. */
static void test_schedules(void) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_config c = tiny_cfg();
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    int t, kind;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m, &c, 2);
    for (kind = 0; kind < 2; kind++) {
        test_plain_options(&o);
        o.n_samples = 16; o.n_chains = 8; o.n_steps = 7; o.warmup = kind ? 2 : 0;
        o.lr = 0.1; o.lr_final = 0.01; o.diag_shift = 1e-2; o.diag_shift_final = 1e-4;
        o.schedule = kind ? TQS_SCHEDULE_COSINE : TQS_SCHEDULE_EXP;
        CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), 0);
        for (t = 0; t < 7; t++) {
            double x, lr, shift;
            CHECK_EQ(tqs_vmc_step(&v, &info), 0);
            if (kind) {   /* warm-up 0.1/3, 0.2/3, then x = (t - 2)/4 */
                x = (t - 2) / 4.0;
                lr = t < 2 ? 0.1 * (t + 1) / 3.0 : 0.01 + 0.09 * 0.5 * (1 + cos(PI_ * x));
                shift = 1e-4 + (1e-2 - 1e-4) * 0.5 * (1 + cos(PI_ * t / 6.0));
            } else {
                lr = 0.1 * pow(0.1, t / 6.0);
                shift = 1e-2 * pow(1e-2, t / 6.0);
            }
            CHECK_NEAR(info.lr, lr, 1e-15);        /* formulas in doubles: a few ulp */
            CHECK_NEAR(info.diag_shift, shift, 1e-16);
        }
        tqs_vmc_free(&v);
    }
    o.warmup = 7;   /* a warm-up as long as the run is refused */
    CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), TQS_EINVAL);
    tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

/* A singular S with no shift: the first Cholesky meets a zero pivot, the
 * solve retries with the shift raised to 1e-10 and succeeds; the result
 * solves (X^T X + 1e-10) delta = X^T f, the residual relative to |X^T f|
 * below 1e-3: the shifted matrix's condition number is about its largest
 * eigenvalue (~P R = 32 for unit normal entries) over 1e-10, 3e11, so a
 * backward-stable solve leaves up to 3e11 x 1.1e-16 = 3.5e-5 times a
 * modest factor of the dimension (measured: 2.5e-16 parameter, 3.6e-5
 * sample space). Both direct solvers. */
static void test_shift_retry(void) {
    enum { R = 4, P = 8 };
    double X[R * P], f[R], delta[P], b[P], y[P], tmp[R], bn = 0, rn = 0;
    tqs_sr_options o;
    tqs_sr_ws ws;
    tqs_sr_info info;
    tqs_rng rng;
    int k, solver;
    tqs_rng_seed(&rng, 3, 0);
    for (k = 0; k < R * P; k++) X[k] = tqs_rng_normal(&rng);
    for (k = 0; k < R; k++) f[k] = tqs_rng_normal(&rng);
    for (solver = TQS_SOLVER_PARAMETER; solver <= TQS_SOLVER_SAMPLE; solver++) {
        memset(&o, 0, sizeof o);
        o.solver = solver;
        if (solver == TQS_SOLVER_SAMPLE) {   /* X X^T singular: rows 3 = row 0 + row 1 */
            for (k = 0; k < P; k++) X[3 * P + k] = X[0 * P + k] + X[1 * P + k];
        }
        CHECK_EQ(tqs_sr_ws_init(&ws, R, P, &o), 0);
        CHECK_EQ(tqs_sr_solve(delta, X, f, 0.0, &o, &ws, &info), 0);
        CHECK(info.shift_retries >= 1);
        CHECK(info.shift >= 1e-10);
        tqs_sr_apply(y, X, delta, info.shift, R, P, tmp);
        for (k = 0; k < P; k++) b[k] = 0;
        rn = bn = 0;
        for (k = 0; k < R * P; k++) b[k % P] += X[k] * f[k / P];
        for (k = 0; k < P; k++) { rn += (y[k] - b[k]) * (y[k] - b[k]); bn += b[k] * b[k]; }
        CHECK_BELOW(sqrt(rn / bn), 1e-3);
        printf("  %s solver, shift 0 on a singular matrix: %d retries, shift %.0e, residual %.1e\n", tqs_solver_name(solver),
               info.shift_retries, info.shift, sqrt(rn / bn));
        tqs_sr_ws_free(&ws);
    }
}

/* tqs_symmetric_eigen on A = Q diag(lam) Q^T with a known spectrum: Q a
 * product of n random Householder reflections built here, lam spread over
 * ten decades with gaps >= 0.5 between neighbours. Backward-stable
 * reduction and QL: each eigenvalue within ~n eps |A| (n <= 120: 3e-14
 * |A|, tolerance 1e-12 |A|); eigenvector components within ~n eps |A| / gap
 * (< 1e-11: tolerance 1e-9 on the squares). */
static void test_symmetric_eigen(long n) {
    double *Q = (double *)calloc((size_t)(n * n), 8), *A = (double *)malloc(8 * n * n), *v = (double *)malloc(8 * n);
    double *lam = (double *)malloc(8 * n), *c = (double *)malloc(8 * n), *g = (double *)malloc(8 * n), *w = (double *)malloc(8 * n);
    double amax, worst_w = 0, worst_g = 0;
    long i, j, k, r;
    tqs_rng rng;
    tqs_rng_seed(&rng, (uint64_t)(7 * n), 0);
    for (i = 0; i < n; i++) Q[i * n + i] = 1;
    for (r = 0; r < n; r++) {   /* Q <- Q (I - 2 v v^T / v.v) */
        double vv = 0;
        for (i = 0; i < n; i++) { v[i] = tqs_rng_normal(&rng); vv += v[i] * v[i]; }
        for (i = 0; i < n; i++) {
            double t = 0;
            for (j = 0; j < n; j++) t += Q[i * n + j] * v[j];
            for (j = 0; j < n; j++) Q[i * n + j] -= 2 * t * v[j] / vv;
        }
    }
    /* eigenvalues ascending: -(n/2) .. n/2 in steps of 1, the middle ones
     * replaced by 1e-10 .. 1e-1 scaled copies kept 0.5 apart */
    for (i = 0; i < n; i++) lam[i] = (double)i - (double)(n / 2);
    lam[n / 2] = 1e-10; lam[n / 2 + 1] = 0.5;
    amax = fmax(fabs(lam[0]), fabs(lam[n - 1]));
    for (i = 0; i < n; i++) c[i] = tqs_rng_normal(&rng);
    for (i = 0; i < n; i++) for (j = 0; j < n; j++) {
        double t = 0;
        for (k = 0; k < n; k++) t += Q[i * n + k] * lam[k] * Q[j * n + k];
        A[i * n + j] = t;
    }
    for (i = 0; i < n; i++) { double t = 0; for (k = 0; k < n; k++) t += Q[i * n + k] * c[k]; g[i] = t; }   /* g = Q c */
    for (i = 0; i < n; i++) for (j = 0; j < i; j++) A[i * n + j] = A[j * n + i];   /* exactly symmetric */
    CHECK_EQ(tqs_symmetric_eigen(w, A, g, n), 0);
    for (i = 0; i < n; i++) {
        worst_w = fmax(worst_w, fabs(w[i] - lam[i]) / amax);
        worst_g = fmax(worst_g, fabs(g[i] * g[i] - c[i] * c[i]));
    }
    CHECK_BELOW(worst_w, 1e-12);
    CHECK_BELOW(worst_g, 1e-9);
    CHECK(tqs_symmetric_eigen(w, A, NULL, 0) == TQS_EINVAL);
    free(Q); free(A); free(v); free(lam); free(c); free(g); free(w);
}

/* tqs_sr_spectrum against identities that do not use its eigenvectors:
 * sum lambda = |X|_F^2, sum share = 1, sum share lambda = |X^T f|^2 / |f|^2
 * (the gradient), sum share / (lambda + eps) = f^T (X X^T + eps)^-1 f / |f|^2
 * (solved by the tests' own elimination). Each side is a sum of R terms of
 * relative rounding ~R eps: tolerance 1e-10 relative. With R > P, R - P
 * eigenvalues are zero up to rounding (~R eps times the largest). */
static void test_sr_spectrum(long R, long P) {
    double *X = random_matrix(R, P, (uint64_t)(R * 31 + P)), *f = random_matrix(R, 1, (uint64_t)(R + 5));
    double *lam = (double *)malloc(8 * R), *share = (double *)malloc(8 * R), *A = (double *)malloc(8 * R * R), *b = (double *)malloc(8 * R);
    double fro = 0, f2 = 0, grad2 = 0, eps = 0.3, quad = 0, s_lam = 0, s_share = 0, s_grad = 0, s_quad = 0;
    long i, j, k;
    CHECK_EQ(tqs_sr_spectrum(lam, share, X, f, R, P), 0);
    for (i = 0; i < R * P; i++) fro += X[i] * X[i];
    for (i = 0; i < R; i++) f2 += f[i] * f[i];
    for (k = 0; k < P; k++) { double t = 0; for (i = 0; i < R; i++) t += X[i * P + k] * f[i]; grad2 += t * t; }
    for (i = 0; i < R; i++) for (j = 0; j < R; j++) {
        double t = 0;
        for (k = 0; k < P; k++) t += X[i * P + k] * X[j * P + k];
        A[i * R + j] = t + (i == j ? eps : 0);
    }
    memcpy(b, f, 8 * R);
    dense_solve(A, b, (int)R);
    for (i = 0; i < R; i++) quad += f[i] * b[i];
    for (i = 0; i < R; i++) {
        s_lam += lam[i]; s_share += share[i]; s_grad += share[i] * lam[i]; s_quad += share[i] / (lam[i] + eps);
        if (i > 0) CHECK(lam[i] >= lam[i - 1]);
    }
    CHECK_NEAR(s_lam / fro, 1, 1e-10);
    CHECK_NEAR(s_share, 1, 1e-10);
    CHECK_NEAR(s_grad / (grad2 / f2), 1, 1e-10);
    CHECK_NEAR(s_quad / (quad / f2), 1, 1e-10);
    if (R > P) CHECK_BELOW(fabs(lam[R - P - 1]), 1e-12 * lam[R - 1]);
    CHECK(lam[R > P ? R - P : 0] > 1e-3 * lam[R - 1]);   /* random X: full rank, well conditioned */
    free(X); free(f); free(lam); free(share); free(A); free(b);
}

/* tqs_recipe's phases on exact enumeration (deterministic, fast): the
 * plain phase's steps, then psi_sym over the point group in the ground
 * state's sector, each phase's step counter from 0, the state after it
 * psi_sym (its energy that of the symmetric amplitude, the model file's
 * record "point group"), further steps refused; TQS_RECIPE_PLAIN stops
 * after the plain phase. Against a phase run by hand with tqs_vmc: the same
 * energies to the bit. */
static void test_recipe(void) {
    tqs_hamiltonian H;
    tqs_vit m, m2;
    tqs_vit_config c = tiny_cfg();
    tqs_recipe r;
    tqs_recipe_options o;
    tqs_vmc v;
    tqs_symmetry G;
    tqs_step_info info, by_hand;
    int k, phases[5], steps[5], same = 1;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m, &c, 3); tqs_vit_init(&m2, &c, 3);
    memset(&o, 0, sizeof o);
    o.plain_steps = 2; o.sym_steps = 2; o.plain.exact = 1;
    CHECK_EQ(tqs_recipe_init(&r, &H, &m, &o), 0);
    CHECK(r.opt.sym.lr == 0.1 && r.opt.sym.lr_final == 0.01 && r.opt.sym.max_distance == 0.1 && r.opt.sym.exact == 1);
    {   /* psi_sym's first learning rate: 0.1 up to 8x8, 0.05 above (measured on 10x10) */
        tqs_recipe_options d8, d10;
        memset(&d8, 0, sizeof d8); memset(&d10, 0, sizeof d10);
        tqs_recipe_options_defaults(&d8, 64); tqs_recipe_options_defaults(&d10, 100);
        CHECK(d8.sym.lr == 0.1 && d10.sym.lr == 0.05 && d10.sym.lr_final == 0.01);
    }
    for (k = 0; k < 4; k++) {
        phases[k] = r.phase;
        CHECK_EQ(tqs_recipe_step(&r, &info), 0);
        steps[k] = (int)info.step;
    }
    /* the switch comes with the first psi_sym step (so the plain run's last
     * state can still be checkpointed) */
    CHECK(phases[0] == 0 && phases[1] == 0 && phases[2] == 0 && phases[3] == 1 && r.phase == 2);
    CHECK(steps[0] == 0 && steps[1] == 1 && steps[2] == 0 && steps[3] == 1);
    CHECK(r.vmc.opt.symmetry == &r.group && r.group.no_flip && m.trained_symmetry == 3);
    CHECK(tqs_recipe_step(&r, &info) == TQS_EINVAL);
    CHECK_EQ(tqs_recipe_evaluate(&r, 0, &info), 0);
    /* by hand: two plain steps, the sector, two psi_sym steps with the recipe's options */
    memset(&o, 0, sizeof o);
    o.plain_steps = 2; o.sym_steps = 2; o.plain.exact = 1;
    tqs_recipe_options_defaults(&o, 16);
    CHECK_EQ(tqs_vmc_init(&v, &H, &m2, &o.plain), 0);
    for (k = 0; k < 2; k++) tqs_vmc_step(&v, &by_hand);
    tqs_symmetry_init_point(&G, 4, 4, 2);
    CHECK_EQ(tqs_symmetry_sector(&G, &H, &v.amp, o.sym.n_chains, o.sym.seed, NULL), 0);
    tqs_vmc_free(&v);
    o.sym.symmetry = &G;
    CHECK_EQ(tqs_vmc_init(&v, &H, &m2, &o.sym), 0);
    for (k = 0; k < 2; k++) tqs_vmc_step(&v, &by_hand);
    tqs_vmc_evaluate(&v, 0, &by_hand);
    same = by_hand.energy == info.energy && !memcmp(m.params, m2.params, sizeof(double) * m.n_params);
    CHECK(same);
    printf("  recipe: 2 plain steps, then 2 of psi_sym over the point group (exact enumeration): E/N %.10f, by hand %s\n",
           info.energy / 16, same ? "the same to the bit" : "DIFFERENT");
    tqs_vmc_free(&v); tqs_symmetry_free(&G);
    tqs_recipe_free(&r);
    /* the plain phase alone */
    memset(&o, 0, sizeof o);
    o.plain_steps = 2; o.plain.exact = 1; o.group = TQS_RECIPE_PLAIN;
    CHECK_EQ(tqs_recipe_init(&r, &H, &m, &o), 0);
    for (k = 0; k < 2; k++) CHECK_EQ(tqs_recipe_step(&r, &info), 0);
    CHECK(r.phase == 2 && r.vmc.opt.symmetry == NULL && m.trained_symmetry == 0);
    tqs_recipe_free(&r);
    o.group = 7;
    CHECK_EQ(tqs_recipe_init(&r, &H, &m, &o), TQS_EINVAL);
    tqs_vit_free(&m); tqs_vit_free(&m2); tqs_hamiltonian_free(&H);
}

/* Above 24 sites, samples that leave the translations' sector open: psi_sym
 * in Marshall's sector (chi_x = chi_y = +1). The plain model is a random
 * 6x6 ViT with its weights scaled up by MARSHALL_SCALE, so that
 * psi(T s)/psi(s) has a wild phase and <T> is lost in its noise (checked,
 * not assumed: the test first asks tqs_symmetry_sector); with J1 = J2 = 0
 * the plain step changes no parameter (the force is zero). */
#define MARSHALL_SCALE 8.0
static void test_recipe_marshall(void) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_config c = tiny_cfg();
    tqs_recipe r;
    tqs_recipe_options o;
    tqs_symmetry G;
    tqs_step_info info;
    size_t i;
    int rc;
    tqs_hamiltonian_init(&H, 6, 6, 0.0, 0.0);
    c.Lx = c.Ly = 6;
    tqs_vit_init(&m, &c, 11);
    for (i = 0; i < m.n_params; i++) m.params[i] *= MARSHALL_SCALE;
    memset(&o, 0, sizeof o);
    o.plain_steps = 1; o.sym_steps = 1; o.group = TQS_RECIPE_POINT;
    o.plain.n_samples = o.sym.n_samples = 64; o.plain.n_chains = o.sym.n_chains = 8;
    CHECK_EQ(tqs_recipe_init(&r, &H, &m, &o), 0);
    CHECK_EQ(tqs_recipe_step(&r, &info), 0);
    tqs_symmetry_init_translations(&G, 6, 6, 2);
    rc = tqs_symmetry_sector(&G, &H, &r.vmc.amp, r.opt.sym.n_chains, r.opt.sym.seed, NULL);
    CHECK_EQ(rc, TQS_ENUMERIC);
    CHECK_EQ(tqs_recipe_step(&r, &info), 0);   /* the psi_sym phase's step */
    CHECK(r.phase == 2 && r.sector_marshall == 1 && r.sector_fallback == 1 && r.opt.group == TQS_RECIPE_TRANSLATIONS);
    CHECK(r.vmc.opt.symmetry == &r.group && r.group.translations_only && r.group.chi_x == 1 && r.group.chi_y == 1);
    printf("  6x6, a plain model in no sector (the sampled sector: %s): psi_sym over the translations in Marshall's sector: %s\n",
           rc == TQS_ENUMERIC ? "open" : "determined", r.sector_marshall ? "yes" : "no");
    tqs_symmetry_free(&G); tqs_recipe_free(&r); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

/* The recipe's other entries: skip_plain (psi_sym from a model as it is)
 * takes the steps of the psi_sym phase after a plain phase run apart;
 * checkpoints of either phase continue bit for bit (sampled, so the chains
 * travel too); a checkpoint of another group is refused; the budget table
 * says what examples/README.md measured. */
static void test_recipe_resume(void) {
    tqs_hamiltonian H;
    tqs_vit m, m2, m3;
    tqs_vit_config c = tiny_cfg();
    tqs_recipe r, r2;
    tqs_recipe_options o;
    tqs_step_info a[6], b;
    tqs_recipe_budget bu;
    const char *ck = "build/test_recipe.ckpt";
    int k, same = 1, stop;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    memset(&o, 0, sizeof o);
    o.plain_steps = 3; o.sym_steps = 3; o.plain.n_samples = 32; o.sym.n_samples = 32; o.plain.seed = 5;
    for (stop = 2; stop <= 4; stop += 2) {   /* a checkpoint after the plain step 1, then after the psi_sym step 0 */
        tqs_vit_init(&m, &c, 3); tqs_vit_init(&m2, &c, 3);
        CHECK_EQ(tqs_recipe_init(&r, &H, &m, &o), 0);
        for (k = 0; k < 6; k++) {
            CHECK_EQ(tqs_recipe_step(&r, &a[k]), 0);
            if (k + 1 == stop) CHECK_EQ(tqs_vmc_save_checkpoint(&r.vmc, ck), 0);
        }
        CHECK_EQ(tqs_recipe_init(&r2, &H, &m2, &o), 0);
        CHECK_EQ(tqs_recipe_load_checkpoint(&r2, ck), 0);
        CHECK_EQ(r2.phase, stop < 3 ? 0 : 1);
        for (k = stop; k < 6; k++) { CHECK_EQ(tqs_recipe_step(&r2, &b), 0); same &= b.energy == a[k].energy; }
        same &= r2.phase == 2 && !memcmp(m.params, m2.params, sizeof(double) * m.n_params);
        if (stop == 4) {   /* a psi_sym checkpoint is refused by a recipe over another group */
            tqs_recipe_options o2 = o;
            o2.group = TQS_RECIPE_TRANSLATIONS;
            tqs_recipe_free(&r2);
            CHECK_EQ(tqs_recipe_init(&r2, &H, &m2, &o2), 0);
            CHECK(tqs_recipe_load_checkpoint(&r2, ck) == TQS_EINVAL);
        }
        tqs_recipe_free(&r); tqs_recipe_free(&r2);
        tqs_vit_free(&m); tqs_vit_free(&m2);
    }
    CHECK(same);
    /* skip_plain: the second phase alone, from the plain phase's model */
    tqs_vit_init(&m, &c, 3); tqs_vit_init(&m3, &c, 3);
    CHECK_EQ(tqs_recipe_init(&r, &H, &m, &o), 0);
    for (k = 0; k < 6; k++) {
        CHECK_EQ(tqs_recipe_step(&r, &a[k]), 0);
        if (k == 2) memcpy(m3.params, m.params, sizeof(double) * m.n_params);
    }
    o.skip_plain = 1;
    CHECK_EQ(tqs_recipe_init(&r2, &H, &m3, &o), 0);
    for (k = 3; k < 6; k++) { CHECK_EQ(tqs_recipe_step(&r2, &b), 0); same &= b.energy == a[k].energy; }
    CHECK(same && r2.phase == 2 && !memcmp(m.params, m3.params, sizeof(double) * m.n_params));
    tqs_recipe_free(&r); tqs_recipe_free(&r2);
    o.group = TQS_RECIPE_PLAIN;
    CHECK(tqs_recipe_init(&r2, &H, &m3, &o) == TQS_EINVAL);   /* no phase at all */
    tqs_vit_free(&m); tqs_vit_free(&m3);
    remove(ck);
    /* the budget table */
    bu = tqs_recipe_for_budget(4, 4, 3);
    CHECK(bu.plain_samples == 512 && bu.d == 16 && bu.group == TQS_RECIPE_POINT && fabs(bu.plain_share - 1.0 / 3) < 1e-15);
    bu = tqs_recipe_for_budget(4, 6, 3);
    CHECK(bu.group == TQS_RECIPE_PLAIN && bu.plain_share == 1);
    bu = tqs_recipe_for_budget(4, 6, 5);   /* measured: plain alone 1.7e-3 to 2.7e-3, two phases 2.1e-3 to 3.3e-2 */
    CHECK(bu.group == TQS_RECIPE_PLAIN && bu.plain_share == 1);
    bu = tqs_recipe_for_budget(4, 6, 15);
    CHECK(bu.group == TQS_RECIPE_POINT && bu.plain_samples == 512);
    bu = tqs_recipe_for_budget(6, 6, 60);
    CHECK(bu.plain_samples == 1024 && bu.d == 16 && bu.plain_share == 0.25);
    bu = tqs_recipe_for_budget(6, 6, 120);
    CHECK(bu.d == 24 && fabs(bu.plain_share - 1.0 / 6) < 1e-15 && bu.group == TQS_RECIPE_POINT);
    bu = tqs_recipe_for_budget(8, 8, 60);   /* measured on 8x8: the 4 translations, not the 32-term point group */
    CHECK(bu.group == TQS_RECIPE_TRANSLATIONS && bu.plain_samples == 1024 && bu.plain_share == 0.25);
    bu = tqs_recipe_for_budget(10, 10, 0);   /* fixed step counts too */
    CHECK(bu.group == TQS_RECIPE_TRANSLATIONS);
    /* the sign rule: Marshall's above 36 sites on even lattices at J1 > 0, J2 <= 0.55 J1 */
    CHECK(tqs_recipe_sign_rule(10, 10, 1, 0.5) == TQS_SIGN_MARSHALL && tqs_recipe_sign_rule(8, 8, 1, 0) == TQS_SIGN_MARSHALL);
    CHECK(tqs_recipe_sign_rule(6, 8, 1, 0.55) == TQS_SIGN_MARSHALL && tqs_recipe_sign_rule(6, 6, 1, 0.5) == TQS_SIGN_NONE);
    CHECK(tqs_recipe_sign_rule(10, 10, 1, 0.6) == TQS_SIGN_NONE && tqs_recipe_sign_rule(10, 10, -1, 0.5) == TQS_SIGN_NONE);
    printf("  recipe: checkpoints of either phase continue bit for bit, another group refused; skip_plain = the second phase; "
           "the budget table and sign rule\n");
    tqs_hamiltonian_free(&H);
}

/* opt.rollback: the driver keeps the parameters of the lowest energy so far
 * (checked against the parameters before each step), and a step whose
 * energy lies far above that best goes back to them exactly, with the
 * momentum cleared and half the learning rate from then on; with rollback
 * off the same step updates as usual. The rise is made by lowering the
 * recorded best by 10 (the lattice's energy, ~ -1 here with an error of
 * ~ 0.2: about 40 error bars and far more than 2%), so the test does not
 * depend on what a bad update does. A checkpoint after the rollback resumes to the same energies. */
static void rollback_run(tqs_vmc *v, tqs_hamiltonian *H, tqs_vit *m, double rollback) {
    tqs_vit_config c = tiny_cfg();
    tqs_vmc_options o;
    tqs_hamiltonian_init(H, 4, 4, 1.0, 0.5);
    tqs_vit_init(m, &c, 12);
    test_plain_options(&o);
    o.n_samples = 128; o.n_chains = 16; o.lr = 0.05; o.lr_final = 0.01; o.diag_shift = 1e-2; o.n_steps = 10; o.seed = 5;
    o.momentum = 0.9; o.rollback = rollback;
    CHECK_EQ(tqs_vmc_init(v, H, m, &o), 0);
}
static void test_rollback(void) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vmc v;
    tqs_step_info info;
    double *before, *bestp, *fake, best_e = HUGE_VAL, e_resumed[2], e_straight[2], lr_plain;
    size_t P, k;
    int step, nonzero = 0;
    rollback_run(&v, &H, &m, 5);
    P = m.n_params;
    before = (double *)malloc(8 * P); bestp = (double *)malloc(8 * P); fake = (double *)malloc(8 * P);
    for (step = 0; step < 4; step++) {
        memcpy(before, m.params, 8 * P);
        CHECK_EQ(tqs_vmc_step(&v, &info), 0);
        CHECK(!info.rolled_back);
        if (info.energy < best_e) { best_e = info.energy; memcpy(bestp, before, 8 * P); }
    }
    CHECK(v.have_best && v.best_energy == best_e && memcmp(v.best, bestp, 8 * P) == 0);
    /* a best far below, with other parameters: the next step must return to them */
    for (k = 0; k < P; k++) fake[k] = m.params[k] + 0.01 * (double)((k * 7) % 13) / 13.0;
    memcpy(v.best, fake, 8 * P);
    v.best_energy -= 10.0;
    CHECK_EQ(tqs_vmc_step(&v, &info), 0);
    CHECK(info.rolled_back);
    CHECK(memcmp(m.params, fake, 8 * P) == 0);
    for (k = 0; k < P; k++) nonzero += v.prior[k] != 0;
    CHECK_EQ(nonzero, 0);
    CHECK_EQ(v.rollbacks, 1);
    CHECK(v.lr_scale == 0.5);
    CHECK_EQ(v.step, 5);
    CHECK(!v.have_best);   /* the next step measures it again */
    CHECK_EQ(tqs_vmc_save_checkpoint(&v, "build/test_rollback.bin"), 0);
    for (step = 0; step < 2; step++) {
        CHECK_EQ(tqs_vmc_step(&v, &info), 0);
        CHECK(!info.rolled_back);
        e_straight[step] = info.energy;
    }
    lr_plain = info.lr;
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    /* the schedule's lr at step 6 of 10 (0.05 to 0.01, exponential), halved */
    CHECK_NEAR(lr_plain, 0.5 * 0.05 * pow(0.01 / 0.05, 6.0 / 9.0), 1e-15);
    /* resumed from the checkpoint written after the rollback */
    rollback_run(&v, &H, &m, 5);
    CHECK_EQ(tqs_vmc_load_checkpoint(&v, "build/test_rollback.bin"), 0);
    CHECK(v.lr_scale == 0.5 && v.rollbacks == 1 && !v.have_best);
    for (step = 0; step < 2; step++) { CHECK_EQ(tqs_vmc_step(&v, &info), 0); e_resumed[step] = info.energy; }
    CHECK(memcmp(e_resumed, e_straight, sizeof e_straight) == 0);
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    /* off: the same step is an ordinary update */
    rollback_run(&v, &H, &m, -1);
    for (step = 0; step < 4; step++) CHECK_EQ(tqs_vmc_step(&v, &info), 0);
    CHECK(!v.have_best);
    v.best_energy = -1e9;
    memcpy(before, m.params, 8 * P);
    CHECK_EQ(tqs_vmc_step(&v, &info), 0);
    CHECK(!info.rolled_back && !info.rejected);
    CHECK(memcmp(m.params, before, 8 * P) != 0);
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    free(before); free(bestp); free(fake);
}

int main(void) {
    test_gram(37, 53);
    test_gram(300, 70);
    test_cholesky(50);
    test_cholesky(333);
    test_symmetric_eigen(7);
    test_symmetric_eigen(120);
    test_sr_spectrum(40, 100);
    test_sr_spectrum(120, 30);
    test_solvers(40, 100);   /* P > 2M */
    test_solvers(120, 30);   /* P < 2M */
    test_solvers_prior(40, 100);
    test_solvers_prior(120, 30);
    test_momentum_step();
    test_schedules();
    test_clip_values();
    test_exact_step(0);
    test_exact_step(1.5);   /* (the energy itself is not clipped: checked inside, as E = sum w Re E_loc) */
    test_short_runs();
    test_checkpoint_resume();
    test_rollback();
    test_max_distance();
    test_shift_retry();
    test_recipe();
    test_recipe_marshall();
    test_recipe_resume();
    return test_summary();
}
