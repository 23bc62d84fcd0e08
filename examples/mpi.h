/* examples/mpi.h - tqs.h's tqs_comm over MPI (make mpi builds the programs
 * that use it with mpicc; tqs.h itself never includes MPI).
 *
 *   tqs_mpi mpi;
 *   const tqs_comm *comm = tqs_mpi_init(&mpi, &argc, &argv);   after which
 *   opt.comm = comm;                                           every process runs the same calls
 *   ...
 *   tqs_mpi_finalize(&mpi, status);
 *
 * A process that exits any other way (a bad flag, a failed file) takes every
 * process with it (MPI_Abort from an atexit handler): a failure on one
 * process never leaves the others waiting in a collective. */
#ifndef TQS_EXAMPLES_MPI_H
#define TQS_EXAMPLES_MPI_H
#include <limits.h>
#include <stdlib.h>
#include <mpi.h>

typedef struct tqs_mpi { MPI_Comm comm; tqs_comm c; } tqs_mpi;
static int tqs_mpi_finalized;

/* MPI counts are ints: a message of `bytes` goes as count units of a
 * contiguous type of u bytes, u the smallest of 1, 8, 1 KiB, 1 MiB that
 * divides it with count <= INT_MAX. */
static int tqs_mpi_type(size_t bytes, MPI_Datatype *t, int *count) {
    static const size_t units[4] = {1, 8, 1024, 1 << 20};
    int k;
    for (k = 0; k < 4; k++)
        if (bytes % units[k] == 0 && bytes / units[k] <= INT_MAX) {
            *count = (int)(bytes / units[k]);
            if (MPI_Type_contiguous((int)units[k], MPI_BYTE, t) != MPI_SUCCESS) return 1;
            return MPI_Type_commit(t) != MPI_SUCCESS;
        }
    return 1;
}

/* Reduced on process 0, then broadcast: the very same bits on every process
 * (an allreduce may add in a different order on different processes). */
static int tqs_mpi_sum(void *ctx, double *x, long n) {
    tqs_mpi *m = (tqs_mpi *)ctx;
    long done = 0;
    while (done < n) {
        int k = n - done > (1L << 28) ? 1 << 28 : (int)(n - done);
        if (MPI_Reduce(m->c.rank == 0 ? MPI_IN_PLACE : x + done, x + done, k, MPI_DOUBLE, MPI_SUM, 0, m->comm) != MPI_SUCCESS ||
            MPI_Bcast(x + done, k, MPI_DOUBLE, 0, m->comm) != MPI_SUCCESS)
            return 1;
        done += k;
    }
    return 0;
}

static int tqs_mpi_allgather(void *ctx, const void *send, void *recv, size_t bytes) {
    tqs_mpi *m = (tqs_mpi *)ctx;
    MPI_Datatype t;
    int count, rc;
    if (bytes == 0) return 0;
    if (tqs_mpi_type(bytes, &t, &count)) return 1;
    rc = MPI_Allgather((void *)send, count, t, recv, count, t, m->comm) != MPI_SUCCESS;
    MPI_Type_free(&t);
    return rc;
}

static int tqs_mpi_alltoall(void *ctx, const void *send, void *recv, size_t bytes) {
    tqs_mpi *m = (tqs_mpi *)ctx;
    MPI_Datatype t;
    int count, rc;
    if (bytes == 0) return 0;
    if (tqs_mpi_type(bytes, &t, &count)) return 1;
    rc = MPI_Alltoall((void *)send, count, t, recv, count, t, m->comm) != MPI_SUCCESS;
    MPI_Type_free(&t);
    return rc;
}

static void tqs_mpi_atexit(void) {
    if (!tqs_mpi_finalized) MPI_Abort(MPI_COMM_WORLD, 2);
}

static const tqs_comm *tqs_mpi_init(tqs_mpi *m, int *argc, char ***argv) {
    MPI_Init(argc, argv);
    atexit(tqs_mpi_atexit);
    m->comm = MPI_COMM_WORLD;
    MPI_Comm_rank(m->comm, &m->c.rank);
    MPI_Comm_size(m->comm, &m->c.size);
    m->c.ctx = m;
    m->c.sum = tqs_mpi_sum;
    m->c.allgather = tqs_mpi_allgather;
    m->c.alltoall = tqs_mpi_alltoall;
    return &m->c;
}

/* The end of the program on every process: status 0 finalises, anything
 * else stops every process with that status. */
static int tqs_mpi_finalize(tqs_mpi *m, int status) {
    if (status) MPI_Abort(m->comm, status);
    tqs_mpi_finalized = 1;
    MPI_Finalize();
    return status;
}
#endif
