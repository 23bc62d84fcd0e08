/* bench.c - how fast is tqs.h on this machine, and how close to its limit?
 *   ./bench/bench            full run (a few minutes)
 *   ./bench/bench --quick    seconds-long smoke run (make test runs it)
 *   ./bench/bench --json     one JSON object instead of the table
 *   ./bench/bench --only W   only the groups whose name contains W (small,
 *                            cpu-paper, tutorial, SR, step, busy, ...)
 *   ./bench/bench --busy     every row with a busy process on the last core
 *                            (a shared machine); the full run has a "busy"
 *                            group of its own either way
 *   ./bench/bench --repeat K 1 and all threads measured in turn K times,
 *                            each row the best of its K (default 1)
 * Every rate is measured with 1 thread and with all threads, and every
 * GFLOP/s figure is also given as a percentage of the peak double-precision
 * multiply-add rate measured by this program in the same run.
 *
 * FLOPs of one ViT forward pass (multiply-add = 2 FLOPs; n = tokens, d = width,
 * b = patch, f = ff, h = heads; elementwise work — LayerNorm, GELU, softmax,
 * logcosh — is not counted):
 *   embedding 2 n b^2 d,  per layer 4 n d^2 (values, output) + 4 n d^2 (queries,
 *   keys; standard only) + 2 n^2 d (attention times values) + 2 n^2 d (scores;
 *   standard only) + 4 n d f d (feed-forward),  head 4 d^2.
 * FLOPs of the Jacobian of one configuration: its forward pass F, then for
 * each of the 2 cotangents (Re and Im log psi) the gradients of the inputs
 * and of the weights of every product, each as many FLOPs as the product
 * (the embedding has no input gradient): 5 F - 2 E, E = the embedding's. So
 * a Jacobian costs about 5 forward passes per configuration (2.5 per row)
 * when both run at the same GFLOP/s. */
#define _GNU_SOURCE   /* sched_setaffinity, to put the busy process on one core */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__unix__) || defined(__APPLE__)
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#define BENCH_HAVE_FORK 1
#endif
#ifdef __linux__
#include <sched.h>
#endif

/* Count every allocation the library makes, to check that a step allocates nothing. */
static long bench_allocations;
static void *bench_malloc(size_t n) { bench_allocations++; return malloc(n); }
#define TQS_MALLOC(n) bench_malloc(n)
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "../examples/flags.h"

static int quick, json, max_threads, busy_all;
static const char *only;      /* --only: run groups whose name contains it */
static int wanted(const char *group) { return !only || strstr(group, only) != NULL; }
static double peak1, peakN;   /* GFLOP/s, one core and all cores */
static int n_rows;
static long busy_pid;          /* the busy process while one runs */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One result row: printed as a table line or as a JSON member. Rows are kept
 * until rows_flush, so that with --repeat K (the thread counts measured in
 * turn K times) each row reports its best: the fastest time or rate (the
 * worst allocation count). On a shared virtual machine the speed drifts by
 * 10-30% over minutes; measuring 1 and N threads in turn and keeping the best
 * of each compares them under the same conditions. */
typedef struct bench_row { char group[48], what[96], unit[24]; int threads; double value, gflops; } bench_row;
static bench_row rows[256];
static int n_kept;
static int lower_is_better(const char *unit) { return !strcmp(unit, "s") || !strcmp(unit, "s/step") || !strcmp(unit, "forwards/config") ||
                                                       !strcmp(unit, "us/config"); }
static void row(const char *group, const char *what, int threads, double value, const char *unit, double gflops) {
    int i;
    for (i = 0; i < n_kept; i++) {
        bench_row *r = &rows[i];
        if (r->threads == threads && !strcmp(r->group, group) && !strcmp(r->what, what)) {
            int better = lower_is_better(unit) ? value < r->value : value > r->value;
            if (better) { r->value = value; r->gflops = gflops; }
            return;
        }
    }
    if (n_kept == (int)(sizeof rows / sizeof rows[0])) { fprintf(stderr, "bench: too many rows\n"); exit(1); }
    snprintf(rows[n_kept].group, sizeof rows[n_kept].group, "%s", group);
    snprintf(rows[n_kept].what, sizeof rows[n_kept].what, "%s", what);
    snprintf(rows[n_kept].unit, sizeof rows[n_kept].unit, "%s", unit);
    rows[n_kept].threads = threads; rows[n_kept].value = value; rows[n_kept].gflops = gflops;
    n_kept++;
}
static void rows_flush(void) {
    int i;
    for (i = 0; i < n_kept; i++) {
        const bench_row *r = &rows[i];
        if (json) {
            printf("%s{\"group\":\"%s\",\"what\":\"%s\",\"threads\":%d,\"value\":%.6g,\"unit\":\"%s\"", n_rows ? ",\n " : "", r->group,
                   r->what, r->threads, r->value, r->unit);
            if (r->gflops > 0) printf(",\"gflops\":%.4g,\"percent_of_peak\":%.3g", r->gflops, 100 * r->gflops / (r->threads == 1 ? peak1 : peakN));
            printf("}");
        } else {
            printf("%-10s %-44s %2d  %12.4g %-14s", r->group, r->what, r->threads, r->value, r->unit);
            if (r->gflops > 0) printf("  %7.2f GFLOP/s  %5.1f%% of peak", r->gflops, 100 * r->gflops / (r->threads == 1 ? peak1 : peakN));
            printf("\n");
        }
        n_rows++;
    }
    n_kept = 0;
    fflush(stdout);
}

/* The thread counts each group measures: 1, then all, and with --repeat K
 * that pair K times in turn. */
static int repeats = 1;
#define FOR_THREADS(pass, th) \
    for ((pass) = 0; (th) = ((pass) % 2 == 0 ? 1 : max_threads), (pass) < repeats * (max_threads > 1 ? 2 : 1); (pass)++)

/* Peak: 48 independent multiply-add chains per thread (enough to fill the
 * FMA pipelines of any current x86 or ARM core), vectorised by the compiler.
 * The best of 5 runs: a peak is what the machine can do, and on a shared
 * (virtual) machine a single run can be slowed by a neighbour. */
#define PEAK_W 48
static double peak_once(int threads);
static double peak_gflops(int threads) {
    double best = 0;
    int k;
    for (k = 0; k < 5; k++) { double g = peak_once(threads); if (g > best) best = g; }
    return best;
}
static double peak_once(int threads) {
    long iters = quick ? 400000 : 4000000;
    double t0, dt, sink = 0;
    tqs_set_threads(threads);
    t0 = now();
    TQS__OMP(parallel reduction(+ : sink))
    {
        double a[PEAK_W], x = 1.0000001, y = 0.9999999;
        long it;
        int j;
        for (j = 0; j < PEAK_W; j++) a[j] = j * 1e-3;
        for (it = 0; it < iters; it++)
            for (j = 0; j < PEAK_W; j++) a[j] = a[j] * x + y;
        for (j = 0; j < PEAK_W; j++) sink += a[j];
    }
    dt = now() - t0;
    if (sink == 1.2345) printf(" ");   /* keeps the loop */
    return 2.0 * PEAK_W * iters * threads / dt * 1e-9;
}

/* Another CPU-bound process, as on a laptop, a shared server or a node
 * shared by MPI ranks: a child that spins on the last core (pinned where
 * the system allows) until busy_stop. Returns its pid, or 0. */
static long busy_start(void) {
#ifdef BENCH_HAVE_FORK
    pid_t pid;
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        volatile unsigned long x = 0;
#ifdef __linux__
        cpu_set_t set;
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        CPU_ZERO(&set);
        CPU_SET(ncpu > 0 ? (int)ncpu - 1 : 0, &set);
        sched_setaffinity(0, sizeof set, &set);
#endif
        for (;;) x++;
    }
    return pid > 0 ? (long)pid : 0;
#else
    return 0;
#endif
}
static void busy_stop(long pid) {
#ifdef BENCH_HAVE_FORK
    if (pid > 0) { kill((pid_t)pid, SIGKILL); waitpid((pid_t)pid, NULL, 0); }
#else
    (void)pid;
#endif
}

typedef struct shape { const char *name; tqs_vit_config cfg; } shape;

static double embedding_flops(const tqs_vit *m) { return 2.0 * m->n * m->cfg.b * m->cfg.b * m->cfg.d; }

static double forward_flops(const tqs_vit *m) {
    double n = m->n, d = m->cfg.d, b = m->cfg.b, f = m->cfg.ff, per_layer;
    int std = m->cfg.attention == TQS_ATTN_STANDARD;
    per_layer = 4 * n * d * d + (std ? 4 * n * d * d : 0) + 2 * n * n * d + (std ? 2 * n * n * d : 0) + 4 * n * d * f * d;
    return 2 * n * b * b * d + m->cfg.n_layers * per_layer + 4 * d * d;
}

/* Repeats fn until at least min_time seconds have passed; returns seconds per call. */
#define TIME_IT(out, min_time, call) do { \
    double t0_ = now(), el_; long reps_ = 0; \
    do { call; reps_++; el_ = now() - t0_; } while (el_ < (min_time)); \
    (out) = el_ / reps_; } while (0)

static void random_configs(int8_t *c, int B, int N, uint64_t seed) {
    tqs_rng r;
    int s;
    tqs_rng_seed(&r, seed, 0);
    for (s = 0; s < B; s++) tqs_random_config(c + (size_t)s * N, N, &r);
}

static void bench_model(const shape *sh) {
    static const int batches[3] = {1, 16, 256};
    tqs_vit m;
    tqs_vit_ws ws, jws;
    tqs_hamiltonian H;
    tqs_vit_amplitude holder;
    tqs_amplitude amp;
    tqs_eloc_ws ews;
    tqs_sampler S;
    int8_t *cf;
    tqs_complex *lp, *el;
    double *jac, fl, t, t_fwd = 0, mt = quick ? 0.05 : 0.5;
    int pass, th, k, Bj = quick ? 16 : 64, Be = quick ? 16 : 128, N;
    char what[96];
    if (tqs_vit_init(&m, &sh->cfg, 1) || tqs_hamiltonian_init(&H, sh->cfg.Lx, sh->cfg.Ly, 1.0, 0.5)) {
        fprintf(stderr, "bench: %s\n", tqs_last_error()); exit(1);
    }
    N = m.N; fl = forward_flops(&m);
    cf = (int8_t *)malloc((size_t)256 * N); lp = (tqs_complex *)malloc(sizeof(tqs_complex) * 256);
    el = (tqs_complex *)malloc(sizeof(tqs_complex) * 256);
    jac = (double *)malloc(sizeof(double) * 2 * Bj * m.n_params);
    random_configs(cf, 256, N, 7);
    tqs_vit_ws_init(&ws, &m, 256, 0);
    amp = tqs_vit_amplitude_make(&holder, &m, &ws);
    FOR_THREADS(pass, th) {
        tqs_set_threads(th);
        tqs_vit_ws_init(&jws, &m, Bj, 1);
        for (k = 0; k < 3; k++) {
            int B = batches[k];
            if (quick && B == 256 && m.n_params > 20000) continue;
            TIME_IT(t, mt, tqs_vit_forward(&m, &ws, lp, cf, B));
            snprintf(what, sizeof what, "forward, batch %d (%.3g MFLOP/config)", B, fl * 1e-6);
            row(sh->name, what, th, B / t, "configs/s", fl * B / t * 1e-9);
        }
        TIME_IT(t_fwd, mt, tqs_vit_forward(&m, &ws, lp, cf, Bj));
        TIME_IT(t, mt, tqs_vit_jacobian(&m, &jws, jac, NULL, cf, Bj));
        snprintf(what, sizeof what, "Jacobian, batch %d", Bj);
        row(sh->name, what, th, 2 * Bj / t, "rows/s", (5 * fl - 2 * embedding_flops(&m)) * Bj / t * 1e-9);
        row(sh->name, "  its time in forward passes", th, t / t_fwd, "forwards/config", 0);
        {   /* local energy: samples/s and connected configurations/s */
            long conn = 0;
            int s, flips[1024];
            double mels[512];
            for (s = 0; s < Be; s++) conn += tqs_hamiltonian_connected(&H, cf + (size_t)s * N, flips, mels);
            tqs_eloc_ws_init(&ews, &H, 256);
            tqs_vit_forward(&m, &ws, lp, cf, Be);
            TIME_IT(t, mt, tqs_local_energy(el, &H, &amp, &ews, cf, lp, Be));
            snprintf(what, sizeof what, "local energy, %d samples (%.1f connected each)", Be, (double)conn / Be);
            row(sh->name, what, th, Be / t, "samples/s", fl * conn / t * 1e-9);
            row(sh->name, "  connected configurations", th, conn / t, "configs/s", 0);
            tqs_eloc_ws_free(&ews);
        }
        {   /* observables of the same samples (which include their local energies): samples/s */
            tqs_observables o;
            int ref[64], e, nr = sh->cfg.b * sh->cfg.b <= 64 ? sh->cfg.b * sh->cfg.b : 1;
            for (e = 0; e < nr; e++) ref[e] = nr == 1 ? 0 : tqs_patch_site(&H.lat, sh->cfg.b, 0, e);
            if (tqs_observables_init(&o, &H.lat, ref, nr, Be)) { fprintf(stderr, "bench: %s\n", tqs_last_error()); exit(1); }
            TIME_IT(t, mt, tqs_observables_sampled(&o, &amp, cf, lp, Be, 1));
            snprintf(what, sizeof what, "observables, %d samples (%.1f amplitudes each)", Be, (double)o.n_amplitudes / Be);
            row(sh->name, what, th, Be / t, "samples/s", fl * o.n_amplitudes / t * 1e-9);
            tqs_observables_free(&o);
        }
        {   /* sampler: 16 chains, proposals per second */
            tqs_sampler_init(&S, &H.lat, 16, 3);
            TIME_IT(t, mt, tqs_sampler_run(&S, &amp, 0, 0, 1, NULL, NULL));
            row(sh->name, "sampler, 16 chains, one sweep", th, 16.0 * N / t, "proposals/s", 0);
            tqs_sampler_free(&S);
        }
        tqs_vit_ws_free(&jws);
    }
    tqs_vit_ws_free(&ws); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    free(cf); free(lp); free(el); free(jac);
    rows_flush();
}

/* The forward pass operation by operation, one thread, on a chunk of 16
 * samples (about the size the forward pass hands a thread, so the chunk's
 * activations stay in cache as they do there), each operation timed alone
 * on the workspace's own buffers, in the order the forward pass runs them.
 * FLOPs with the elementwise work counted (a multiply-add is 2): LayerNorm
 * 8 per element (mean 1, variance 3, normalise 4) and 2 per row (sqrt,
 * divide); GELU 40 per unit (the argument 5, exp's range reduction 7 and
 * 13 multiply-adds 26, the scale 1, then 1 + e and the divide); a residual
 * add 1; the factored attention's mixing 2 n^2 d; logcosh 30 (exp, cos,
 * sin, log, atan2 counted as 5 each). The head (pooling, 2 products,
 * 3 LayerNorms, d logcosh) is one row. */
static void bench_ops(const shape *sh) {
    enum { C = 16 };
    tqs_vit m;
    tqs_vit_ws ws;
    int8_t *cf;
    tqs_complex lp[C];
    double t, total = 0, mt = quick ? 0.05 : 0.3, fl_sum = 0;
    int n, d, fd, l, s, nl;
    long R;
    char grp[48], what[96];
    if (tqs_vit_init(&m, &sh->cfg, 1)) { fprintf(stderr, "bench: %s\n", tqs_last_error()); exit(1); }
    n = m.n; d = m.cfg.d; fd = m.cfg.ff * d; nl = m.cfg.n_layers; R = (long)C * n;
    snprintf(grp, sizeof grp, "ops %s", sh->name);
    cf = (int8_t *)malloc((size_t)C * m.N);
    random_configs(cf, C, m.N, 7);
    tqs_set_threads(1);
    tqs_vit_ws_init(&ws, &m, C, 0);
    tqs_vit_forward(&m, &ws, lp, cf, C);   /* prepares the weights, fills the activations */
#define OP(name, flops, call) do { TIME_IT(t, mt, call); total += t; fl_sum += (flops); \
        row(grp, name, 1, t / C * 1e6, "us/config", (flops) / t * 1e-9); } while (0)
    {
        const double *wt = ws.wt, *p = m.params;
        const size_t *off = ws.wt_off;
        OP("embedding", 2.0 * R * m.cfg.b * m.cfg.b * d,
           tqs__embedding_forward(ws.x[0], cf, &m, wt + off[nl * TQS__WT_PER_LAYER + 2], ws.emb, R));
        for (l = 0; l < nl; l++) {
            const tqs_vit_layer_offsets *L = &m.layer[l];
            const size_t *o = off + l * TQS__WT_PER_LAYER;
            snprintf(what, sizeof what, "layer %d: LayerNorm 1", l + 1);
            OP(what, 8.0 * R * d + 2.0 * R, tqs__layernorm_forward(ws.y1[l], ws.mu1[l], ws.rs1[l], ws.x[l], p + L->ln1_g, p + L->ln1_b, R, d));
            snprintf(what, sizeof what, "layer %d: values product", l + 1);
            OP(what, 2.0 * R * d * d, tqs__linear_forward(ws.v[l], ws.y1[l], wt + o[TQS__WT_V], p + L->bv, R, d, d));
            if (m.cfg.attention == TQS_ATTN_FACTORED) {
                snprintf(what, sizeof what, "layer %d: attention mixing", l + 1);
                OP(what, 2.0 * C * n * n * d,
                   for (s = 0; s < C; s++) tqs__attention_mix_forward(ws.a[l] + (size_t)s * n * d, ws.v[l] + (size_t)s * n * d,
                                                                          ws.amat + (size_t)l * m.cfg.h * n * n, n, d, m.cfg.h));
            }
            snprintf(what, sizeof what, "layer %d: output product", l + 1);
            OP(what, 2.0 * R * d * d, tqs__linear_forward(ws.xm[l], ws.a[l], wt + o[TQS__WT_O], p + L->bo, R, d, d));
            snprintf(what, sizeof what, "layer %d: residual adds (2)", l + 1);
            OP(what, 2.0 * R * d, tqs__residual_add(ws.xm[l], ws.x[l], R * d); tqs__residual_add(ws.x[l + 1], ws.xm[l], R * d));
            snprintf(what, sizeof what, "layer %d: LayerNorm 2", l + 1);
            OP(what, 8.0 * R * d + 2.0 * R, tqs__layernorm_forward(ws.y2[l], ws.mu2[l], ws.rs2[l], ws.xm[l], p + L->ln2_g, p + L->ln2_b, R, d));
            snprintf(what, sizeof what, "layer %d: feed-forward product 1", l + 1);
            OP(what, 2.0 * R * d * fd, tqs__linear_forward(ws.h1[l], ws.y2[l], wt + o[TQS__WT_1], p + L->b1, R, d, fd));
            snprintf(what, sizeof what, "layer %d: GELU", l + 1);
            OP(what, 40.0 * R * fd, tqs__gelu_forward(ws.g[l], ws.h1[l], R * fd));
            snprintf(what, sizeof what, "layer %d: feed-forward product 2", l + 1);
            OP(what, 2.0 * R * d * fd, tqs__linear_forward(ws.x[l + 1], ws.g[l], wt + o[TQS__WT_2], p + L->b2, R, fd, d));
        }
        OP("head", C * (2.0 * n * d + 3 * (8.0 * d + 2) + 4.0 * d * d + 30.0 * d), tqs__head_forward(&m, &ws, lp, 0, C));
    }
#undef OP
    row(grp, "sum of the operations", 1, total / C * 1e6, "us/config", fl_sum / total * 1e-9);
    TIME_IT(t, mt, tqs_vit_forward(&m, &ws, lp, cf, C));
    row(grp, "the forward pass, batch 16", 1, t / C * 1e6, "us/config", fl_sum / t * 1e-9);
    tqs_vit_ws_free(&ws); tqs_vit_free(&m); free(cf);
    tqs_set_threads(max_threads);
    rows_flush();
}

/* X^T X, X X^T, Cholesky and CG at one (R = 2M, P). */
static void bench_sr(long R, long P, int with_xtx) {
    double *X, *C, *f, *delta, t, mem;
    char grp[32], what[96];
    tqs_rng r;
    long i;
    int pass, th;
    snprintf(grp, sizeof grp, "SR %ldx%ld", R, P);
    mem = 8.0 * ((double)R * P + (with_xtx ? (double)P * P : 0) + (double)R * R);
    X = (double *)malloc(sizeof(double) * R * P);
    C = (double *)malloc(sizeof(double) * (with_xtx && P > R ? P * P : R * R));
    f = (double *)malloc(sizeof(double) * R); delta = (double *)malloc(sizeof(double) * P);
    if (!X || !C || !f || !delta) { fprintf(stderr, "bench: out of memory for %s (%.3g GB)\n", grp, mem * 1e-9); exit(1); }
    tqs_rng_seed(&r, 5, 0);
    for (i = 0; i < R * P; i++) X[i] = tqs_rng_normal(&r);
    for (i = 0; i < R; i++) f[i] = tqs_rng_normal(&r);
    row(grp, "memory: X, X X^T (and X^T X)", 0, mem * 1e-9, "GB", 0);
    FOR_THREADS(pass, th) {
        tqs_set_threads(th);
        if (with_xtx) {
            TIME_IT(t, 0, tqs_gram(C, X, R, P, 0));
            row(grp, "X^T X  (P^2 R FLOPs, one triangle)", th, t, "s", (double)P * P * R / t * 1e-9);
        }
        TIME_IT(t, 0, tqs_gram(C, X, R, P, 1));
        row(grp, "X X^T  (R^2 P FLOPs, one triangle)", th, t, "s", (double)R * R * P / t * 1e-9);
        for (i = 0; i < R; i++) C[i * R + i] += 1e-2 * P;  /* well conditioned */
        TIME_IT(t, 0, tqs_cholesky(C, R));
        snprintf(what, sizeof what, "Cholesky %ldx%ld  (R^3/3 FLOPs)", R, R);
        row(grp, what, th, t, "s", (double)R * R * R / 3 / t * 1e-9);
        {
            tqs_sr_options o;
            tqs_sr_ws ws;
            tqs_sr_info info;
            memset(&o, 0, sizeof o);
            o.solver = TQS_SOLVER_CG; o.cg_tol = 1e-30; o.cg_max_iter = quick ? 5 : 50;  /* a fixed number of iterations */
            tqs_sr_ws_init(&ws, R, P, &o);
            TIME_IT(t, 0, tqs_sr_solve(delta, X, f, 1e-2, &o, &ws, &info));
            snprintf(what, sizeof what, "CG, %d iterations (4 R P FLOPs each)", info.cg_iterations);
            row(grp, what, th, t, "s", 4.0 * R * P * info.cg_iterations / t * 1e-9);
            tqs_sr_ws_free(&ws);
        }
    }
    free(X); free(C); free(f); free(delta);
    rows_flush();
}

/* Full optimisation steps: seconds per step, by phase, and allocations.
 * chains: 16 (the small and cpu-paper rows of bench/README.md), or 0 for
 * the library's default, one sample per chain (1024 chains of one sweep:
 * what ground_state runs; 16 chains take 64 sweeps of 16-configuration
 * batches for the same samples, too small to keep two threads busy). */
static void bench_step(const shape *sh, int samples, int steps, int chains) {
    tqs_vit m;
    tqs_hamiltonian H;
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    double ph[4], total;
    long allocs;
    int pass, th, k, j;
    char grp[48], what[96];
    snprintf(grp, sizeof grp, "step %s", sh->name);
    FOR_THREADS(pass, th) {
        tqs_set_threads(th);
        tqs_vit_init(&m, &sh->cfg, 1);
        tqs_hamiltonian_init(&H, sh->cfg.Lx, sh->cfg.Ly, 1.0, 0.5);
        memset(&o, 0, sizeof o);
        o.n_samples = samples; o.n_chains = chains; o.lr = 0.01; o.diag_shift = 0.05; o.n_steps = steps + 2;
        o.momentum = -1; o.max_distance = -1;   /* plain SR: the step the tables in bench/README.md time */
        if (tqs_vmc_init(&v, &H, &m, &o)) { fprintf(stderr, "bench: %s\n", tqs_last_error()); exit(1); }
        tqs_vmc_step(&v, &info);               /* thermalisation happens here */
        tqs_vmc_step(&v, &info);               /* and the timed steps are 3, 4, ... */
        allocs = bench_allocations;
        for (j = 0; j < 4; j++) ph[j] = 0;
        total = now();
        for (k = 0; k < steps; k++) {
            tqs_vmc_step(&v, &info);
            for (j = 0; j < 4; j++) ph[j] += info.seconds[j] / steps;
        }
        total = (now() - total) / steps;
        snprintf(what, sizeof what, "full step, %d samples, %d chains, %zu parameters", samples, v.sampler.n_chains, m.n_params);
        row(grp, what, th, total, "s/step", 0);
        row(grp, "  sampling", th, ph[0], "s/step", 0);
        row(grp, "  local energy", th, ph[1], "s/step", 0);
        row(grp, "  Jacobian (+ centring)", th, ph[2], "s/step", 0);
        snprintf(what, sizeof what, "  SR solve (%s) and update", tqs_solver_name(info.sr.solver));
        row(grp, what, th, ph[3], "s/step", 0);
        row(grp, "  allocations during the steps", th, (double)(bench_allocations - allocs), "count", 0);
        tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    }
    rows_flush();
}

int main(int argc, char **argv) {
    shape small = {"small", {4, 4, 2, 16, 2, 2, 2, TQS_ATTN_FACTORED, TQS_SIGN_NONE}};
    shape paper_f = {"cpu-paper", {6, 6, 2, 32, 4, 2, 2, TQS_ATTN_FACTORED, TQS_SIGN_NONE}};
    shape paper_s = {"cpu-paper-std", {6, 6, 2, 32, 4, 2, 2, TQS_ATTN_STANDARD, TQS_SIGN_NONE}};
    shape tutorial = {"tutorial", {10, 10, 2, 60, 10, 4, 4, TQS_ATTN_FACTORED, TQS_SIGN_NONE}};
    /* the default model (small's) on the larger lattices */
    shape d6 = {"6x6", {6, 6, 2, 16, 2, 2, 2, TQS_ATTN_FACTORED, TQS_SIGN_NONE}}, d8 = {"8x8", {8, 8, 2, 16, 2, 2, 2, TQS_ATTN_FACTORED, TQS_SIGN_NONE}};
    shape d10 = {"10x10", {10, 10, 2, 16, 2, 2, 2, TQS_ATTN_FACTORED, TQS_SIGN_NONE}};
    int i;
    flags_prog = "bench";
    for (i = 1; i < argc; i++) {
        if (flags_bool(argv, i, "--quick", &quick) || flags_bool(argv, i, "--json", &json) || flags_bool(argv, i, "--busy", &busy_all) ||
            flags_str(argc, argv, &i, "--only", &only) || flags_int(argc, argv, &i, "--repeat", &repeats, 1, 100)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { printf("usage: bench [--quick] [--json] [--busy] [--only GROUP] [--repeat K]\n"); return 0; }
        flags_die("unknown flag '%s' (try --help)", argv[i]);
    }
    max_threads = tqs_get_threads();
    peak1 = peak_gflops(1);
    peakN = peak_gflops(max_threads);
    if (busy_all) busy_pid = busy_start();
    if (json) printf("{\"threads\":%d,\"busy\":%s,\"kernel\":\"%s\",\"peak_gflops_1\":%.4g,\"peak_gflops_all\":%.4g,\"quick\":%s,\"rows\":[", max_threads,
                     busy_all && busy_pid ? "true" : "false", tqs_kernel_name(), peak1, peakN, quick ? "true" : "false");
    else {
        printf("tqs.h benchmark%s%s: %d threads; dense kernels: %s\n", quick ? " (--quick)" : "",
               busy_all ? (busy_pid ? " (--busy: a busy process on the last core)" : " (--busy: no busy process could be started)") : "",
               max_threads, tqs_kernel_name());
        printf("peak (multiply-add kernel) %.1f GFLOP/s on 1 core, %.1f on %d\n", peak1, peakN, max_threads);
        printf("%-10s %-44s %2s  %12s %-14s\n", "group", "measurement", "th", "value", "unit");
    }
    if (wanted("small")) bench_model(&small);
    if (wanted("cpu-paper")) bench_model(&paper_f);
    if (wanted("cpu-paper-std")) bench_model(&paper_s);
    if (!quick && wanted("tutorial")) bench_model(&tutorial);
    if (quick) { if (wanted("SR 256x1024")) bench_sr(256, 1024, 1); }
    else {
        if (wanted("SR 2048x6208")) bench_sr(2048, 6208, 1);
        if (wanted("SR 2048x23720")) bench_sr(2048, 23720, 0);
        if (wanted("SR 4096x155620")) bench_sr(4096, 155620, 0);
    }
    if (wanted("step small")) bench_step(&small, quick ? 128 : 1024, quick ? 1 : 5, 16);
    if (wanted("step cpu-paper")) bench_step(&paper_f, quick ? 128 : 1024, quick ? 1 : 3, 16);
    if (!quick && wanted("step 6x6")) bench_step(&d6, 1024, 6, 0);
    if (!quick && wanted("step 8x8")) bench_step(&d8, 1024, 6, 0);
    if (wanted("step 10x10")) bench_step(&d10, quick ? 128 : 1024, quick ? 1 : 6, 0);
    if (wanted("ops small")) bench_ops(&small);
    if (wanted("ops 10x10")) bench_ops(&d10);
    if (!quick && wanted("ops tutorial")) bench_ops(&tutorial);
    if (!busy_all && !quick && wanted("busy")) {   /* the small model and its training step on a shared machine */
        shape busy_model = small, busy_step = small;
        busy_model.name = "busy small"; busy_step.name = "busy small";
        busy_pid = busy_start();
        bench_model(&busy_model);
        bench_step(&busy_step, 1024, 5, 16);
        busy_stop(busy_pid);
        busy_pid = 0;
    }
    busy_stop(busy_pid);
    if (json) printf("]}\n");
    tqs_set_threads(max_threads);
    return 0;
}
