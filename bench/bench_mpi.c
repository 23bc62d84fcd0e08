/* bench_mpi.c - strong scaling of one SR step over MPI processes (make bench-mpi).
 *   mpirun -np R ./bench/bench_mpi [--model small|cpu-paper|tutorial|8x8|10x10] [--samples M] [--chains C]
 *                                  [--steps K] [--solver S]
 * (8x8 and 10x10: the default model, d = 16, on those lattices; --chains: 16
 * by default, as bench/bench's model rows; 0 for the library's one sample per
 * chain, what ground_state runs)
 * Every process first runs the same step alone (one process's run, no
 * communication, its own threads), then the run shared by all R; process 0
 * prints seconds per step of both, the shared step's phases, the time spent
 * in the three collectives (summed over the calls of a step), and the
 * parallel efficiency t_alone / (R t_shared) (1: perfect; per process, so a
 * process with T threads is compared with itself). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "../examples/flags.h"
#include "../examples/mpi.h"

/* The collectives, timed. */
static const tqs_comm *inner;
static double t_comm;
static int timed_sum(void *ctx, double *x, long n) {
    double t = MPI_Wtime();
    int rc = inner->sum(inner->ctx, x, n);
    (void)ctx; t_comm += MPI_Wtime() - t;
    return rc;
}
static int timed_allgather(void *ctx, const void *s, void *r, size_t bytes) {
    double t = MPI_Wtime();
    int rc = inner->allgather(inner->ctx, s, r, bytes);
    (void)ctx; t_comm += MPI_Wtime() - t;
    return rc;
}
static int timed_alltoall(void *ctx, const void *s, void *r, size_t bytes) {
    double t = MPI_Wtime();
    int rc = inner->alltoall(inner->ctx, s, r, bytes);
    (void)ctx; t_comm += MPI_Wtime() - t;
    return rc;
}

/* Seconds per step (after one step that thermalises) and its phases. */
static double steps(const tqs_vit_config *cfg, const tqs_comm *comm, int samples, int chains, int n, int solver, double ph[4], double *comm_s) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    double t0;
    int k, j;
    tqs_hamiltonian_init(&H, cfg->Lx, cfg->Ly, 1.0, 0.5);
    tqs_vit_init(&m, cfg, 1);
    memset(&o, 0, sizeof o);
    o.n_samples = samples; o.n_chains = chains; o.lr = 0.01; o.diag_shift = 0.05; o.n_steps = n + 1; o.sr.solver = solver; o.comm = comm;
    o.momentum = -1; o.max_distance = -1;   /* plain SR, as bench/bench.c */
    if (tqs_vmc_init(&v, &H, &m, &o) || tqs_vmc_step(&v, &info)) { fprintf(stderr, "bench_mpi: %s\n", tqs_last_error()); exit(1); }
    for (j = 0; j < 4; j++) ph[j] = 0;
    MPI_Barrier(MPI_COMM_WORLD);
    t_comm = 0;
    t0 = MPI_Wtime();
    for (k = 0; k < n; k++) {
        if (tqs_vmc_step(&v, &info)) { fprintf(stderr, "bench_mpi: %s\n", tqs_last_error()); exit(1); }
        for (j = 0; j < 4; j++) ph[j] += info.seconds[j] / n;
    }
    t0 = (MPI_Wtime() - t0) / n;
    *comm_s = t_comm / n;
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    return t0;
}

int main(int argc, char **argv) {
    tqs_mpi mpi;
    tqs_comm timed;
    tqs_vit_config small = {4, 4, 2, 16, 2, 2, 2, TQS_ATTN_FACTORED, TQS_SIGN_NONE}, paper = {6, 6, 2, 32, 4, 2, 2, TQS_ATTN_FACTORED, TQS_SIGN_NONE};
    tqs_vit_config tutorial = {10, 10, 2, 60, 10, 4, 4, TQS_ATTN_FACTORED, TQS_SIGN_NONE}, cfg;
    tqs_vit_config d8 = {8, 8, 2, 16, 2, 2, 2, TQS_ATTN_FACTORED, TQS_SIGN_NONE}, d10 = {10, 10, 2, 16, 2, 2, 2, TQS_ATTN_FACTORED, TQS_SIGN_NONE};
    const char *model = "cpu-paper", *solver = "auto";
    int i, samples = 1024, chains = 16, n = 3, sol = TQS_SOLVER_AUTO;
    double alone, shared, ph[4], ph_alone[4], c_alone, c_shared;
    inner = tqs_mpi_init(&mpi, &argc, &argv);
    flags_prog = "bench_mpi";
    for (i = 1; i < argc; i++) {
        if (flags_str(argc, argv, &i, "--model", &model) || flags_int(argc, argv, &i, "--samples", &samples, 16, 1 << 20) ||
            flags_int(argc, argv, &i, "--chains", &chains, 0, 1 << 20) ||
            flags_int(argc, argv, &i, "--steps", &n, 1, 1000) || flags_str(argc, argv, &i, "--solver", &solver)) continue;
        flags_die("unknown flag '%s' (usage: bench_mpi [--model small|cpu-paper|tutorial|8x8|10x10] [--samples M] [--chains C] [--steps K] [--solver S])", argv[i]);
    }
    if (!strcmp(model, "small")) cfg = small;
    else if (!strcmp(model, "cpu-paper")) cfg = paper;
    else if (!strcmp(model, "tutorial")) cfg = tutorial;
    else if (!strcmp(model, "8x8")) cfg = d8;
    else if (!strcmp(model, "10x10")) cfg = d10;
    else flags_die("--model: small, cpu-paper, tutorial, 8x8 or 10x10 (got '%s')", model);
    if (!strcmp(solver, "parameter")) sol = TQS_SOLVER_PARAMETER;
    else if (!strcmp(solver, "sample")) sol = TQS_SOLVER_SAMPLE;
    else if (!strcmp(solver, "cg")) sol = TQS_SOLVER_CG;
    else if (strcmp(solver, "auto")) flags_die("--solver: auto, parameter, sample or cg (got '%s')", solver);
    timed = *inner;
    timed.sum = timed_sum; timed.allgather = timed_allgather; timed.alltoall = timed_alltoall;
    alone = steps(&cfg, NULL, samples, chains, n, sol, ph_alone, &c_alone);
    shared = steps(&cfg, &timed, samples, chains, n, sol, ph, &c_shared);
    if (inner->rank == 0) {
        char ch[32];
        if (chains) snprintf(ch, sizeof ch, "%d chains", chains); else snprintf(ch, sizeof ch, "one sample per chain");
        printf("bench_mpi: %s model, %d samples, %s, %d processes x %d threads, solver %s\n", model, samples, ch, inner->size,
               tqs_get_threads(), solver);
        printf("  one process alone (each process the same run): %.4f s/step\n", alone);
        printf("  shared by %d processes: %.4f s/step  (sampling %.4f, local energy %.4f, Jacobian %.4f, SR %.4f)\n", inner->size, shared,
               ph[0], ph[1], ph[2], ph[3]);
        printf("  communication: %.4f s/step (%.1f%% of the step)\n", c_shared, 100 * c_shared / shared);
        printf("  speed-up %.2f, efficiency %.2f\n", alone / shared, alone / (inner->size * shared));
    }
    return tqs_mpi_finalize(&mpi, 0);
}
