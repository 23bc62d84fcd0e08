/* tests/test_mpi.c - a run shared by several MPI processes against the same
 * run in one process (make test-mpi: mpirun -np 2, one thread each).
 *
 * Each process computes the one-process reference itself (comm NULL; one
 * thread, which gives the same bits as any other thread count), then
 * the shared run, and compares: per-step energies and the final parameters
 * to 1e-10 relative, for the three SR solvers, sampled and exact; a shared
 * run repeated gives the same bits; a checkpoint written by the shared run
 * and resumed by one process continues as the shared run does.
 *
 * Why 1e-10: the shared and the single run differ only in the order of a few
 * sums (the centring <O>, X^T X or X X^T, X^T f, |X delta|^2 are added per
 * process, then over processes). Each such sum differs by a few ulp
 * (~1e-16 relative); SR solves with a shift of 1e-2 on matrices whose
 * largest eigenvalue is O(1), so a perturbation grows by at most ~1e2 per
 * solve, and five steps feed each other: 1e-16 * 1e2 * 5 ~ 1e-13, with three
 * orders of magnitude to spare. The samples themselves are bitwise the same
 * (chain c keeps its stream (seed, c) on any process).
 *
 *   ./test_mpi             the tests (every process prints its summary); make test-mpi
 *                          runs them on 2 processes and on 4 (then the 3,270
 *                          entries of the exact enumeration split unevenly:
 *                          818, 818, 818, 816)
 *   ./test_mpi --fail R    process R fails with a message at once; the others
 *                          go into a collective (make test-mpi checks that
 *                          the job ends, with the message, and not in a hang) */
#include <stdlib.h>
#include <string.h>
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "../examples/mpi.h"
#include "test.h"

static const tqs_comm *comm;
static int rank;

static tqs_vit_config small_cfg(void) {
    tqs_vit_config c;
    memset(&c, 0, sizeof c);   /* zero: every other field at its default (no sign rule) */
    c.Lx = 4; c.Ly = 4; c.b = 2; c.d = 8; c.h = 2; c.n_layers = 1; c.ff = 2; c.attention = TQS_ATTN_FACTORED;
    return c;
}

/* steps of a run from a fresh model (seed 3): energies (per step, then the
 * evaluation) and the final parameters. resume: a checkpoint file to start
 * from; save_at/ckpt: write one after that many steps. */
static int run(double *energies, double *params, const tqs_comm *cm, int solver, int exact, int steps, double momentum,
               const char *resume, int save_at, const char *ckpt) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_config c = small_cfg();
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    int k, rc;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m, &c, 3);
    memset(&o, 0, sizeof o);
    o.exact = exact; o.n_samples = 264; o.n_chains = 24; o.lr = 0.05;   /* 24 chains: 2, 3 or 4 processes */ o.diag_shift = 1e-2; o.n_steps = 10;
    o.momentum = momentum; o.max_distance = 0.1; o.seed = 11; o.sr.solver = solver; o.sr.cg_tol = 1e-12; o.comm = cm;
    if ((rc = tqs_vmc_init(&v, &H, &m, &o)) != 0) { printf("vmc_init: %s\n", tqs_last_error()); return rc; }
    if (resume && (rc = tqs_vmc_load_checkpoint(&v, resume)) != 0) { printf("resume: %s\n", tqs_last_error()); return rc; }
    for (k = 0; k < steps; k++) {
        if ((rc = tqs_vmc_step(&v, &info)) != 0) { printf("step: %s\n", tqs_last_error()); return rc; }
        energies[k] = info.energy;
        if (ckpt && k + 1 == save_at && (rc = tqs_vmc_save_checkpoint(&v, ckpt)) != 0) { printf("save: %s\n", tqs_last_error()); return rc; }
    }
    if ((rc = tqs_vmc_evaluate(&v, 512, &info)) != 0) { printf("evaluate: %s\n", tqs_last_error()); return rc; }
    energies[steps] = info.energy;
    memcpy(params, m.params, sizeof(double) * m.n_params);
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    return 0;
}

static double rel_diff(const double *a, const double *b, long n) {
    double worst = 0, scale = 0;
    long i;
    for (i = 0; i < n; i++) if (fabs(b[i]) > scale) scale = fabs(b[i]);
    for (i = 0; i < n; i++) if (fabs(a[i] - b[i]) > worst) worst = fabs(a[i] - b[i]);
    return scale > 0 ? worst / scale : worst;
}

static void test_solvers(void) {
    static const int solvers[3] = {TQS_SOLVER_PARAMETER, TQS_SOLVER_SAMPLE, TQS_SOLVER_CG};
    static const char *names[3] = {"parameter", "sample", "cg"};
    tqs_vit m;
    tqs_vit_config c = small_cfg();
    long P;
    int k, exact;
    tqs_vit_init(&m, &c, 3); P = (long)m.n_params; tqs_vit_free(&m);
    for (exact = 0; exact <= 1; exact++)
        for (k = 0; k < 3; k++) {
            double e1[6], e2[6], e3[6], *p1 = (double *)malloc(8 * P), *p2 = (double *)malloc(8 * P), *p3 = (double *)malloc(8 * P);
            double de, dp;
            int i;
            /* the sample solver with exact enumeration: the 3,270 entries of the
             * 4x4 basis (b = 2) make a 6,540 x 6,540 matrix, 340 MB per process;
             * the parameter and cg solvers cover the split enumeration */
            if (exact && solvers[k] == TQS_SOLVER_SAMPLE) { free(p1); free(p2); free(p3); continue; }
            CHECK_EQ(run(e1, p1, NULL, solvers[k], exact, 5, 0.5, NULL, 0, NULL), 0);
            CHECK_EQ(run(e2, p2, comm, solvers[k], exact, 5, 0.5, NULL, 0, NULL), 0);
            CHECK_EQ(run(e3, p3, comm, solvers[k], exact, 5, 0.5, NULL, 0, NULL), 0);
            de = rel_diff(e2, e1, 6); dp = rel_diff(p2, p1, P);
            CHECK_BELOW(de, 1e-10);
            CHECK_BELOW(dp, 1e-10);
            for (i = 0; i < 6; i++) CHECK(e2[i] == e3[i]);         /* rerun: the same bits */
            CHECK(memcmp(p2, p3, 8 * P) == 0);
            if (rank == 0)
                printf("  %s, %s: %d processes vs 1: energies %.2g, parameters %.2g relative; rerun bitwise equal\n",
                       exact ? "exact" : "sampled", names[k], comm->size, de, dp);
            free(p1); free(p2); free(p3);
        }
}

/* A checkpoint written by the shared run after 3 steps, resumed by one
 * process for the last 2 (and the evaluation), against the shared run. */
static void test_checkpoint(void) {
    tqs_vit m;
    tqs_vit_config c = small_cfg();
    double e_shared[6], e_single[3], *p_shared, *p_single, de;
    const char *path = "build/mpi/shared.ckpt";
    long P;
    tqs_vit_init(&m, &c, 3); P = (long)m.n_params; tqs_vit_free(&m);
    p_shared = (double *)malloc(8 * P); p_single = (double *)malloc(8 * P);
    CHECK_EQ(run(e_shared, p_shared, comm, TQS_SOLVER_SAMPLE, 0, 5, 0.5, NULL, 3, path), 0);
    if (rank == 0) {   /* one process alone */
        CHECK_EQ(run(e_single, p_single, NULL, TQS_SOLVER_SAMPLE, 0, 2, 0.5, path, 0, NULL), 0);
        de = fabs(e_single[0] - e_shared[3]) + fabs(e_single[1] - e_shared[4]) + fabs(e_single[2] - e_shared[5]);
        CHECK_BELOW(de / fabs(e_shared[3]), 1e-10);
        CHECK_BELOW(rel_diff(p_single, p_shared, P), 1e-10);
        printf("  a checkpoint of %d processes resumed by 1: energies %.2g, parameters %.2g relative\n", comm->size,
               de / fabs(e_shared[3]), rel_diff(p_single, p_shared, P));
    }
    /* and by the shared run again: the same bits as not stopping */
    {
        double e_again[3], *p_again = (double *)malloc(8 * P);
        CHECK_EQ(run(e_again, p_again, comm, TQS_SOLVER_SAMPLE, 0, 2, 0.5, path, 0, NULL), 0);
        CHECK(e_again[0] == e_shared[3] && e_again[1] == e_shared[4] && e_again[2] == e_shared[5]);
        CHECK(memcmp(p_again, p_shared, 8 * P) == 0);
        free(p_again);
    }
    free(p_shared); free(p_single);
}

/* Refusals that every process must agree on (none may go on alone). */
static void test_refusals(void) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vit_config c = small_cfg();
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5);
    tqs_vit_init(&m, &c, 3);
    memset(&o, 0, sizeof o);
    o.n_samples = 256; o.n_chains = 15; o.comm = comm;   /* 15 chains cannot be shared by 2 or 4 */
    CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), TQS_EINVAL);
    o.n_chains = 16; o.seed = (uint64_t)rank;            /* a different seed on each process */
    CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), TQS_ECOMM);
    o.seed = 1;
    CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), 0);
    /* a checkpoint that only process 0 can read: every process fails */
    CHECK_EQ(tqs_vmc_save_checkpoint(&v, "build/mpi/ok.ckpt"), 0);
    CHECK_EQ(tqs_vmc_load_checkpoint(&v, rank == 0 ? "build/mpi/ok.ckpt" : "build/mpi/no_such.ckpt"), rank == 0 ? TQS_ECOMM : TQS_EIO);
    /* a checkpoint process 0 cannot write: every process fails */
    CHECK(tqs_vmc_save_checkpoint(&v, "build/mpi/no_such_dir/x.ckpt") != 0);
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    if (rank == 0) printf("  refusals: uneven chains, differing seeds, a checkpoint one process cannot read or write\n");
}

int main(int argc, char **argv) {
    tqs_mpi mpi;
    int status;
    comm = tqs_mpi_init(&mpi, &argc, &argv);
    rank = comm->rank;
    if (argc == 3 && !strcmp(argv[1], "--fail")) {
        double x = 1;
        if (rank == atoi(argv[2])) { fprintf(stderr, "test_mpi: process %d fails on purpose\n", rank); exit(2); }
        comm->sum(comm->ctx, &x, 1);   /* the others wait here for it */
        return tqs_mpi_finalize(&mpi, 0);
    }
    if (comm->size < 2) { printf("test_mpi: run it with mpirun -np 2 (or more)\n"); return tqs_mpi_finalize(&mpi, 2); }
    tqs_set_threads(1);
    test_solvers();
    test_checkpoint();
    test_refusals();
    status = test_summary();
    return tqs_mpi_finalize(&mpi, status);
}
