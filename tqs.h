/* tqs.h - Transformer quantum states in one C header.                 v0.1.0
 *
 * A Vision-Transformer (ViT) variational wave function for the 2D J1-J2
 * Heisenberg model, trained by variational Monte Carlo, after
 *   L. L. Viteritti, R. Rende, "Are queries and keys always relevant?
 *   A case study on Transformer wave functions", arXiv:2405.18874.
 * Only libc and libm are needed; OpenMP is used when the compiler has it.
 *
 * USAGE
 *   In exactly one C or C++ file:
 *       #define TQS_IMPLEMENTATION
 *       #include "tqs.h"
 *   Everywhere else just #include "tqs.h".
 *
 *   Optional, before the #include that has TQS_IMPLEMENTATION:
 *       #define TQS_MALLOC(n)  my_malloc(n)   allocation (default malloc)
 *       #define TQS_FREE(p)    my_free(p)     release    (default free)
 *       #define TQS_ASSERT(x)  my_assert(x)   internal invariants (default assert)
 *       #define TQS_STATIC                    make every function static
 *
 *   Example: the ground-state energy of the 4x4 J1-J2 model at J2 = 0.5
 *       tqs_hamiltonian H;
 *       tqs_ed_result ed;
 *       if (tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5) != 0) ...;
 *       if (tqs_exact_ground_state(&ed, &H, NULL) != 0) puts(tqs_last_error());
 *       printf("%.10f\n", ed.energy / H.lat.N);
 *       tqs_ed_result_free(&ed);
 *       tqs_hamiltonian_free(&H);
 *
 * ERRORS
 *   Functions that can fail return 0 on success and a negative TQS_E... code
 *   otherwise. tqs_error_string(code) names the code; tqs_last_error() holds a
 *   sentence about the last failure (per process, not per thread). The library
 *   never prints and never exits.
 *
 * CONVENTIONS
 *   Spins are int8_t +1 (up) / -1 (down); S = sigma/2. Site i = x*Ly + y on an
 *   Lx x Ly periodic lattice. H = J1 sum_<ij> S_i.S_j + J2 sum_<<ij>> S_i.S_j.
 *
 * The license (MIT) is at the end of the file.
 */
#ifndef TQS_H
#define TQS_H

#define TQS_VERSION_MAJOR 0
#define TQS_VERSION_MINOR 1
#define TQS_VERSION_PATCH 0

#include <stddef.h>
#include <stdint.h>

#ifdef TQS_STATIC
#define TQSDEF static
#else
#define TQSDEF extern
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================================================== */
/* Errors                                                                */
/* ===================================================================== */
enum {
    TQS_OK = 0,
    TQS_EINVAL = -1,     /* an argument is out of range or inconsistent */
    TQS_ENOMEM = -2,     /* an allocation failed */
    TQS_ETOOBIG = -3,    /* the problem is larger than this routine handles */
    TQS_EIO = -4,        /* a file could not be opened, read or written */
    TQS_EFORMAT = -5,    /* a file is not in the expected format or is corrupt */
    TQS_ENUMERIC = -6,   /* a computation produced a non-finite value or failed to converge */
    TQS_ENOTPD = -7      /* a matrix that must be positive definite is not */
};
TQSDEF const char *tqs_error_string(int code);
TQSDEF const char *tqs_last_error(void);

/* ===================================================================== */
/* Complex numbers (a plain struct: <complex.h> breaks C++ and MSVC)     */
/* ===================================================================== */
typedef struct tqs_complex { double re, im; } tqs_complex;

/* ===================================================================== */
/* Random numbers: xoshiro256** seeded through splitmix64                */
/* ===================================================================== */
/* Stream (seed, id) is a deterministic function of both numbers, so a Markov
 * chain's random numbers depend on its index, never on the thread running it. */
typedef struct tqs_rng { uint64_t s[4]; } tqs_rng;
TQSDEF void     tqs_rng_seed(tqs_rng *rng, uint64_t seed, uint64_t stream);
TQSDEF uint64_t tqs_rng_u64(tqs_rng *rng);
TQSDEF double   tqs_rng_uniform(tqs_rng *rng);          /* in [0, 1) */
TQSDEF uint64_t tqs_rng_below(tqs_rng *rng, uint64_t n); /* uniform in [0, n), n > 0 */
TQSDEF double   tqs_rng_normal(tqs_rng *rng);           /* standard normal */
/* A uniformly random configuration with total Sz = 0 (N even). */
TQSDEF void     tqs_random_config(int8_t *s, int N, tqs_rng *rng);

/* Number of OpenMP threads used by the library (1 without OpenMP). */
TQSDEF void tqs_set_threads(int n);
TQSDEF int  tqs_get_threads(void);

/* ===================================================================== */
/* Lattice                                                               */
/* ===================================================================== */
/* Lx x Ly square lattice, periodic, Lx and Ly even and >= 4.
 * Site i = x*Ly + y. Bonds 0..2N-1 are nearest neighbours (J1: +x, +y of
 * every site), bonds 2N..4N-1 are diagonals (J2: +x+y, +x-y of every site):
 * each bond appears once. */
typedef struct tqs_lattice {
    int Lx, Ly, N;
    int n_bonds;        /* 4N: 2N nearest-neighbour then 2N diagonal bonds */
    int *bonds;         /* (n_bonds, 2) site pairs */
} tqs_lattice;
TQSDEF int  tqs_lattice_init(tqs_lattice *lat, int Lx, int Ly);
TQSDEF void tqs_lattice_free(tqs_lattice *lat);
TQSDEF int  tqs_site(const tqs_lattice *lat, int x, int y); /* periodic wrap */
/* Site of entry e = u*b + w of patch P = X*gy + Y: (X*b+u, Y*b+w), gy = Ly/b. */
TQSDEF int  tqs_patch_site(const tqs_lattice *lat, int b, int P, int e);
/* out[site(x+dx, y+dy)] = in[site(x, y)]: the configuration moved by (dx, dy). */
TQSDEF void tqs_translate(const tqs_lattice *lat, int8_t *out, const int8_t *in, int dx, int dy);

/* ===================================================================== */
/* J1-J2 Hamiltonian                                                     */
/* ===================================================================== */
typedef struct tqs_hamiltonian {
    tqs_lattice lat;
    double J1, J2;
} tqs_hamiltonian;
TQSDEF int  tqs_hamiltonian_init(tqs_hamiltonian *H, int Lx, int Ly, double J1, double J2);
TQSDEF void tqs_hamiltonian_free(tqs_hamiltonian *H);
/* Upper bound of the number of connected configurations (4N). */
TQSDEF int  tqs_hamiltonian_max_connected(const tqs_hamiltonian *H);
/* H_ss of configuration s. */
TQSDEF double tqs_hamiltonian_diagonal(const tqs_hamiltonian *H, const int8_t *s);
/* Off-diagonal part: returns K, the number of connected configurations s'_k;
 * s'_k is s with sites flips[2k] and flips[2k+1] exchanged and H_{s s'_k} = mels[k].
 * flips has room for 2*max_connected ints, mels for max_connected doubles.
 * No allocation. */
TQSDEF int tqs_hamiltonian_connected(const tqs_hamiltonian *H, const int8_t *s,
                                     int *flips, double *mels);

/* ===================================================================== */
/* Exact diagonalisation in the Sz = 0 sector (N <= 24)                  */
/* ===================================================================== */
#define TQS_ED_MAX_SITES 24
/* The Sz = 0 basis: states are bit patterns (bit i set = spin up at site i)
 * in combinatorial order; tqs_basis_index finds a state's index by ranking,
 * from two small tables, without search or hashing. */
typedef struct tqs_basis {
    int N;
    size_t dim;          /* binomial(N, N/2) */
    uint32_t *states;    /* (dim) */
    uint32_t *rank_lo;   /* (2^nlo): rank contribution of the low bits */
    uint32_t *rank_hi;   /* (nlo+1, 2^(N-nlo)): of the high bits, given the low ones' count */
    int nlo;
} tqs_basis;
TQSDEF int    tqs_basis_init(tqs_basis *basis, int N);
TQSDEF void   tqs_basis_free(tqs_basis *basis);
TQSDEF size_t tqs_basis_index(const tqs_basis *basis, uint32_t state);
TQSDEF uint32_t tqs_config_to_bits(const int8_t *s, int N);
TQSDEF void   tqs_bits_to_config(int8_t *s, uint32_t bits, int N);
/* out = H in on the Sz = 0 basis (OpenMP over rows). */
TQSDEF void   tqs_hamiltonian_apply(const tqs_hamiltonian *H, const tqs_basis *basis,
                                    double *out, const double *in);

typedef struct tqs_lanczos_options {   /* zero means default */
    int max_iter;        /* default 300 */
    double tol;          /* stop when |H v - E v| < tol; default 1e-10 */
    uint64_t seed;       /* start vector; default 0 */
    int want_vector;     /* also return the ground-state vector */
    int reorthogonalize; /* full re-orthogonalisation (stores every Lanczos vector) */
} tqs_lanczos_options;
typedef struct tqs_ed_result {
    double energy;       /* ground-state energy (not per site) */
    double residual;     /* |H v - E v| of the normalised ground state */
    int iterations;
    size_t dim;
    double *vector;      /* (dim) ground state in basis order, when asked for */
} tqs_ed_result;
TQSDEF int  tqs_exact_ground_state(tqs_ed_result *out, const tqs_hamiltonian *H,
                                   const tqs_lanczos_options *opt);
TQSDEF void tqs_ed_result_free(tqs_ed_result *r);
/* All eigenvalues (ascending) and, if z != NULL, orthonormal eigenvectors of the
 * symmetric tridiagonal matrix with diagonal d[0..n-1] and off-diagonal
 * e[0..n-2] (e has room for n entries); z is (n, n), column j the
 * eigenvector of eigenvalue j.
 * d is overwritten by the eigenvalues, e is destroyed. */
TQSDEF int  tqs_tridiag_eigen(double *d, double *e, double *z, int n);

#ifdef __cplusplus
}
#endif
#endif /* TQS_H */

/* ===================================================================== */
/* ===================================================================== */
/*                          IMPLEMENTATION                               */
/* ===================================================================== */
/* ===================================================================== */
#ifdef TQS_IMPLEMENTATION
#ifndef TQS_IMPLEMENTATION_DONE
#define TQS_IMPLEMENTATION_DONE

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef TQS_MALLOC
#define TQS_MALLOC(n) malloc(n)
#endif
#ifndef TQS_FREE
#define TQS_FREE(p) free(p)
#endif
#ifndef TQS_ASSERT
#include <assert.h>
#define TQS_ASSERT(x) assert(x)
#endif

/* OpenMP pragmas through _Pragma, so that compilers without OpenMP see
 * nothing (and do not warn about unknown pragmas). */
#define TQS__STR(...) #__VA_ARGS__
#ifdef _OPENMP
#define TQS__OMP(...) _Pragma(TQS__STR(omp __VA_ARGS__))
#else
#define TQS__OMP(...)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ===================================================================== */
/* Errors                                                                */
/* ===================================================================== */
static char tqs__errbuf[512];

TQSDEF const char *tqs_error_string(int code) {
    switch (code) {
    case TQS_OK: return "success";
    case TQS_EINVAL: return "invalid argument";
    case TQS_ENOMEM: return "out of memory";
    case TQS_ETOOBIG: return "problem too large";
    case TQS_EIO: return "input/output error";
    case TQS_EFORMAT: return "bad file format";
    case TQS_ENUMERIC: return "numerical failure";
    case TQS_ENOTPD: return "matrix not positive definite";
    default: return "unknown error";
    }
}

TQSDEF const char *tqs_last_error(void) { return tqs__errbuf; }

/* Record a message for tqs_last_error() and return the code. */
static int tqs__fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tqs__errbuf, sizeof tqs__errbuf, fmt, ap);
    va_end(ap);
    return code;
}

static void *tqs__alloc(size_t bytes) {
    return bytes ? TQS_MALLOC(bytes) : NULL;
}
static void *tqs__calloc(size_t bytes) {
    void *p = tqs__alloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

/* ===================================================================== */
/* Random numbers                                                        */
/* ===================================================================== */
static uint64_t tqs__splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

TQSDEF void tqs_rng_seed(tqs_rng *rng, uint64_t seed, uint64_t stream) {
    /* Mix seed and stream through splitmix64 so that nearby (seed, stream)
     * pairs give unrelated states; the state is never all zero in practice. */
    uint64_t x = seed;
    uint64_t a = tqs__splitmix64(&x);
    uint64_t y = a ^ (stream * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL);
    int k;
    for (k = 0; k < 4; k++) rng->s[k] = tqs__splitmix64(&y);
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) rng->s[0] = 1;
}

static uint64_t tqs__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

TQSDEF uint64_t tqs_rng_u64(tqs_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = tqs__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = tqs__rotl(s[3], 45);
    return result;
}

TQSDEF double tqs_rng_uniform(tqs_rng *rng) {
    return (double)(tqs_rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
}

TQSDEF uint64_t tqs_rng_below(tqs_rng *rng, uint64_t n) {
    /* Rejection from the top of the range: exactly uniform. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, r;
    do { r = tqs_rng_u64(rng); } while (r >= limit);
    return r % n;
}

TQSDEF double tqs_rng_normal(tqs_rng *rng) {
    double u1 = 1.0 - tqs_rng_uniform(rng), u2 = tqs_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

TQSDEF void tqs_random_config(int8_t *s, int N, tqs_rng *rng) {
    int i;
    for (i = 0; i < N; i++) s[i] = (int8_t)(i < N / 2 ? 1 : -1);
    for (i = N - 1; i > 0; i--) { /* Fisher-Yates shuffle */
        int j = (int)tqs_rng_below(rng, (uint64_t)i + 1);
        int8_t t = s[i]; s[i] = s[j]; s[j] = t;
    }
}

TQSDEF void tqs_set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

TQSDEF int tqs_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ===================================================================== */
/* Lattice                                                               */
/* ===================================================================== */
static int tqs__mod(int a, int m) { int r = a % m; return r < 0 ? r + m : r; }

TQSDEF int tqs_site(const tqs_lattice *lat, int x, int y) {
    return tqs__mod(x, lat->Lx) * lat->Ly + tqs__mod(y, lat->Ly);
}

TQSDEF int tqs_lattice_init(tqs_lattice *lat, int Lx, int Ly) {
    int x, y, k = 0, N;
    if (!lat) return tqs__fail(TQS_EINVAL, "lattice: null pointer");
    memset(lat, 0, sizeof *lat);
    if (Lx < 4 || Ly < 4 || Lx % 2 || Ly % 2)
        return tqs__fail(TQS_EINVAL, "lattice: Lx and Ly must be even and >= 4 (got %d x %d)", Lx, Ly);
    if (Lx > 4096 || Ly > 4096 || (long)Lx * Ly > (1L << 22))
        return tqs__fail(TQS_ETOOBIG, "lattice: %d x %d sites is too large", Lx, Ly);
    N = Lx * Ly;
    lat->bonds = (int *)tqs__alloc(sizeof(int) * 8 * (size_t)N);
    if (!lat->bonds) return tqs__fail(TQS_ENOMEM, "lattice: out of memory");
    lat->Lx = Lx; lat->Ly = Ly; lat->N = N; lat->n_bonds = 4 * N;
    for (x = 0; x < Lx; x++) for (y = 0; y < Ly; y++) { /* J1: +x, +y */
        int i = x * Ly + y;
        lat->bonds[2 * k] = i; lat->bonds[2 * k + 1] = tqs_site(lat, x + 1, y); k++;
        lat->bonds[2 * k] = i; lat->bonds[2 * k + 1] = tqs_site(lat, x, y + 1); k++;
    }
    for (x = 0; x < Lx; x++) for (y = 0; y < Ly; y++) { /* J2: +x+y, +x-y */
        int i = x * Ly + y;
        lat->bonds[2 * k] = i; lat->bonds[2 * k + 1] = tqs_site(lat, x + 1, y + 1); k++;
        lat->bonds[2 * k] = i; lat->bonds[2 * k + 1] = tqs_site(lat, x + 1, y - 1); k++;
    }
    return TQS_OK;
}

TQSDEF void tqs_lattice_free(tqs_lattice *lat) {
    if (!lat) return;
    TQS_FREE(lat->bonds);
    memset(lat, 0, sizeof *lat);
}

TQSDEF int tqs_patch_site(const tqs_lattice *lat, int b, int P, int e) {
    int gy = lat->Ly / b;
    int X = P / gy, Y = P % gy, u = e / b, w = e % b;
    return (X * b + u) * lat->Ly + (Y * b + w);
}

TQSDEF void tqs_translate(const tqs_lattice *lat, int8_t *out, const int8_t *in, int dx, int dy) {
    int x, y;
    for (x = 0; x < lat->Lx; x++)
        for (y = 0; y < lat->Ly; y++)
            out[tqs_site(lat, x + dx, y + dy)] = in[x * lat->Ly + y];
}

/* ===================================================================== */
/* J1-J2 Hamiltonian                                                     */
/* ===================================================================== */
/* With S = sigma/2, S_i.S_j = s_i s_j / 4 on the diagonal, and for an
 * antiparallel pair (S+_i S-_j + S-_i S+_j)/2 exchanges the two spins with
 * matrix element 1/2. */
TQSDEF int tqs_hamiltonian_init(tqs_hamiltonian *H, int Lx, int Ly, double J1, double J2) {
    int rc;
    if (!H) return tqs__fail(TQS_EINVAL, "hamiltonian: null pointer");
    memset(H, 0, sizeof *H);
    if (!isfinite(J1) || !isfinite(J2))
        return tqs__fail(TQS_EINVAL, "hamiltonian: J1 and J2 must be finite");
    rc = tqs_lattice_init(&H->lat, Lx, Ly);
    if (rc) return rc;
    H->J1 = J1; H->J2 = J2;
    return TQS_OK;
}

TQSDEF void tqs_hamiltonian_free(tqs_hamiltonian *H) {
    if (H) tqs_lattice_free(&H->lat);
}

TQSDEF int tqs_hamiltonian_max_connected(const tqs_hamiltonian *H) { return H->lat.n_bonds; }

TQSDEF double tqs_hamiltonian_diagonal(const tqs_hamiltonian *H, const int8_t *s) {
    const int *bd = H->lat.bonds;
    int k, half = H->lat.n_bonds / 2, sum1 = 0, sum2 = 0;
    for (k = 0; k < half; k++) sum1 += s[bd[2 * k]] * s[bd[2 * k + 1]];
    for (k = half; k < 2 * half; k++) sum2 += s[bd[2 * k]] * s[bd[2 * k + 1]];
    return 0.25 * (H->J1 * sum1 + H->J2 * sum2);
}

TQSDEF int tqs_hamiltonian_connected(const tqs_hamiltonian *H, const int8_t *s,
                                     int *flips, double *mels) {
    const int *bd = H->lat.bonds;
    int k, K = 0, half = H->lat.n_bonds / 2;
    for (k = 0; k < 2 * half; k++) {
        int i = bd[2 * k], j = bd[2 * k + 1];
        double J = k < half ? H->J1 : H->J2;
        if (s[i] != s[j] && J != 0.0) {
            flips[2 * K] = i; flips[2 * K + 1] = j; mels[K] = 0.5 * J; K++;
        }
    }
    return K;
}

/* ===================================================================== */
/* Exact diagonalisation                                                 */
/* ===================================================================== */
/* Combinatorial ranking: a state with up spins at sites p_1 < p_2 < ... has
 * rank sum_k binomial(p_k, k), a bijection onto 0..binomial(N, N/2)-1 that
 * is increasing in the state's value. The sum splits into the low nlo bits
 * (a table over their 2^nlo patterns) and the high bits (a table over their
 * patterns, for each count of up spins among the low bits). */
static uint64_t tqs__binom(int n, int k) {
    uint64_t r = 1;
    int i;
    if (k < 0 || k > n) return 0;
    for (i = 1; i <= k; i++) r = r * (uint64_t)(n - k + i) / (uint64_t)i;
    return r;
}

static int tqs__popcount(uint32_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_popcount(x);
#else
    int c = 0;
    while (x) { x &= x - 1; c++; }
    return c;
#endif
}

TQSDEF int tqs_basis_init(tqs_basis *basis, int N) {
    int nlo, nhi, c;
    uint32_t m, n_lo, n_hi;
    size_t idx = 0;
    uint64_t state;
    if (!basis) return tqs__fail(TQS_EINVAL, "basis: null pointer");
    memset(basis, 0, sizeof *basis);
    if (N <= 0 || N % 2) return tqs__fail(TQS_EINVAL, "basis: N must be even and positive (got %d)", N);
    if (N > TQS_ED_MAX_SITES)
        return tqs__fail(TQS_ETOOBIG, "exact diagonalisation handles at most %d sites (got %d): "
                         "the Sz=0 basis would have %.3g states", TQS_ED_MAX_SITES, N,
                         (double)tqs__binom(N > 62 ? 62 : N, N > 62 ? 31 : N / 2));
    nlo = N / 2; nhi = N - nlo;
    n_lo = 1u << nlo; n_hi = 1u << nhi;
    basis->N = N; basis->nlo = nlo;
    basis->dim = (size_t)tqs__binom(N, N / 2);
    basis->states = (uint32_t *)tqs__alloc(sizeof(uint32_t) * basis->dim);
    basis->rank_lo = (uint32_t *)tqs__alloc(sizeof(uint32_t) * n_lo);
    basis->rank_hi = (uint32_t *)tqs__alloc(sizeof(uint32_t) * n_hi * (size_t)(nlo + 1));
    if (!basis->states || !basis->rank_lo || !basis->rank_hi) {
        tqs_basis_free(basis);
        return tqs__fail(TQS_ENOMEM, "basis: out of memory for %zu states", (size_t)tqs__binom(N, N / 2));
    }
    for (m = 0; m < n_lo; m++) {
        uint32_t r = 0; int k = 0, p;
        for (p = 0; p < nlo; p++) if (m >> p & 1) { k++; r += (uint32_t)tqs__binom(p, k); }
        basis->rank_lo[m] = r;
    }
    for (c = 0; c <= nlo; c++) for (m = 0; m < n_hi; m++) {
        uint32_t r = 0; int k = c, p;
        for (p = 0; p < nhi; p++) if (m >> p & 1) { k++; r += (uint32_t)tqs__binom(p + nlo, k); }
        basis->rank_hi[(size_t)c * n_hi + m] = r;
    }
    /* Enumerate states with N/2 bits in increasing order (Gosper's hack). */
    state = (1ull << (N / 2)) - 1;
    while (idx < basis->dim) {
        uint64_t lowest = state & (~state + 1), ripple = state + lowest;
        basis->states[idx++] = (uint32_t)state;
        state = ripple | (((state ^ ripple) >> 2) / lowest);
    }
    return TQS_OK;
}

TQSDEF void tqs_basis_free(tqs_basis *basis) {
    if (!basis) return;
    TQS_FREE(basis->states); TQS_FREE(basis->rank_lo); TQS_FREE(basis->rank_hi);
    memset(basis, 0, sizeof *basis);
}

TQSDEF size_t tqs_basis_index(const tqs_basis *basis, uint32_t state) {
    uint32_t lo = state & ((1u << basis->nlo) - 1), hi = state >> basis->nlo;
    int c = tqs__popcount(lo);
    return (size_t)basis->rank_lo[lo] +
           basis->rank_hi[((size_t)c << (basis->N - basis->nlo)) + hi];
}

TQSDEF uint32_t tqs_config_to_bits(const int8_t *s, int N) {
    uint32_t b = 0;
    int i;
    for (i = 0; i < N; i++) if (s[i] > 0) b |= 1u << i;
    return b;
}

TQSDEF void tqs_bits_to_config(int8_t *s, uint32_t bits, int N) {
    int i;
    for (i = 0; i < N; i++) s[i] = (int8_t)((bits >> i & 1) ? 1 : -1);
}

static int tqs__ctz(uint32_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(x);
#else
    int c = 0;
    while (!(x & 1u)) { x >>= 1; c++; }
    return c;
#endif
}

/* The state "seen from the partner": bit i of tqs__shift(st, f) is the bit
 * of site i's partner in bond family f (0: +x, 1: +y, 2: +x+y, 3: +x-y), so
 * st ^ tqs__shift(st, f) marks every antiparallel bond of that family. */
static uint32_t tqs__shift(uint32_t st, int f, int Lx, int Ly) {
    int N = Lx * Ly;
    uint32_t all = N == 32 ? 0xFFFFFFFFu : ((1u << N) - 1), col0 = 0, colL = 0, t;
    int x;
    for (x = 0; x < Lx; x++) { col0 |= 1u << (x * Ly); colL |= 1u << (x * Ly + Ly - 1); }
    if (f == 0) return ((st >> Ly) | (st << (N - Ly))) & all;            /* (x+1, y) */
    if (f == 1 || f == 2) t = ((st >> 1) & ~colL) | ((st & col0) << (Ly - 1)); /* (x, y+1) */
    else t = ((st << 1) & ~col0) | ((st & colL) >> (Ly - 1));           /* (x, y-1) */
    t &= all;
    if (f == 1) return t;
    return ((t >> Ly) | (t << (N - Ly))) & all;
}

/* (H v)[r] = H_rr v[r] + sum_{r'} H_rr' v[r'], gathered row by row: each row
 * is written by one thread, so the result does not depend on the threads.
 * The antiparallel bonds of a family are the set bits of st ^ shift(st). */
TQSDEF void tqs_hamiltonian_apply(const tqs_hamiltonian *H, const tqs_basis *basis,
                                  double *out, const double *in) {
    int Lx = H->lat.Lx, Ly = H->lat.Ly, N = Lx * Ly, i;
    int partner[4][TQS_ED_MAX_SITES];
    double J[4];
    long r, dim = (long)basis->dim;
    J[0] = J[1] = H->J1; J[2] = J[3] = H->J2;
    for (i = 0; i < N; i++) {
        int x = i / Ly, y = i % Ly;
        partner[0][i] = tqs_site(&H->lat, x + 1, y);
        partner[1][i] = tqs_site(&H->lat, x, y + 1);
        partner[2][i] = tqs_site(&H->lat, x + 1, y + 1);
        partner[3][i] = tqs_site(&H->lat, x + 1, y - 1);
    }
    TQS__OMP(parallel for schedule(static))
    for (r = 0; r < dim; r++) {
        uint32_t st = basis->states[r];
        double diag = 0, off = 0;
        int fam;
        for (fam = 0; fam < 4; fam++) {
            uint32_t anti = st ^ tqs__shift(st, fam, Lx, Ly);
            int n_anti = tqs__popcount(anti);
            diag += 0.25 * J[fam] * (N - 2 * n_anti);
            double sum = 0;
            if (J[fam] == 0.0) continue;
            while (anti) {
                int a = tqs__ctz(anti);
                anti &= anti - 1;
                sum += in[tqs_basis_index(basis, st ^ (1u << a) ^ (1u << partner[fam][a]))];
            }
            off += 0.5 * J[fam] * sum;
        }
        out[r] = diag * in[r] + off;
    }
}

static double tqs__dot(const double *a, const double *b, long n) {
    /* Fixed-order blocked sum: same result for any thread count. */
    double total = 0;
    long nb = (n + 4095) / 4096, blk;
    double *part;
    if (nb <= 1) {
        long i;
        for (i = 0; i < n; i++) total += a[i] * b[i];
        return total;
    }
    part = (double *)tqs__alloc(sizeof(double) * (size_t)nb);
    if (!part) { long i; for (i = 0; i < n; i++) total += a[i] * b[i]; return total; }
    TQS__OMP(parallel for schedule(static))
    for (blk = 0; blk < nb; blk++) {
        long i, end = (blk + 1) * 4096 < n ? (blk + 1) * 4096 : n;
        double s = 0;
        for (i = blk * 4096; i < end; i++) s += a[i] * b[i];
        part[blk] = s;
    }
    for (blk = 0; blk < nb; blk++) total += part[blk];
    TQS_FREE(part);
    return total;
}

/* Symmetric tridiagonal eigenproblem by the implicit QL method with Wilkinson
 * shifts: each sweep applies Givens rotations that chase the bulge from the
 * bottom of the unreduced block to its top. */
TQSDEF int tqs_tridiag_eigen(double *d, double *e, double *z, int n) {
    int l, i, j, k, m, iter;
    if (n <= 0) return tqs__fail(TQS_EINVAL, "tridiagonal eigensolver: n must be positive");
    if (z) {
        memset(z, 0, sizeof(double) * (size_t)n * (size_t)n);
        for (i = 0; i < n; i++) z[(size_t)i * n + i] = 1.0;
    }
    if (n == 1) return TQS_OK;
    e[n - 1] = 0.0;
    for (l = 0; l < n; l++) {
        iter = 0;
        for (;;) {
            double g, r, s, c, p, f, b;
            for (m = l; m < n - 1; m++) {
                double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= 1e-16 * dd) break;
            }
            if (m == l) break;
            if (++iter > 60) return tqs__fail(TQS_ENUMERIC, "tridiagonal eigensolver did not converge");
            g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            r = hypot(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + (g >= 0 ? fabs(r) : -fabs(r)));
            s = c = 1.0; p = 0.0;
            for (i = m - 1; i >= l; i--) {
                f = s * e[i]; b = c * e[i];
                r = hypot(f, g);
                e[i + 1] = r;
                if (r == 0.0) { d[i + 1] -= p; e[m] = 0.0; break; }
                s = f / r; c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
                if (z) for (k = 0; k < n; k++) {
                    double *zk = z + (size_t)k * n;
                    f = zk[i + 1];
                    zk[i + 1] = s * zk[i] + c * f;
                    zk[i] = c * zk[i] - s * f;
                }
            }
            if (r == 0.0 && i >= l) continue;
            d[l] -= p; e[l] = g; e[m] = 0.0;
        }
    }
    /* sort ascending (selection sort: n is small) */
    for (i = 0; i < n - 1; i++) {
        k = i;
        for (j = i + 1; j < n; j++) if (d[j] < d[k]) k = j;
        if (k != i) {
            double t = d[i]; d[i] = d[k]; d[k] = t;
            if (z) for (j = 0; j < n; j++) {
                t = z[(size_t)j * n + i]; z[(size_t)j * n + i] = z[(size_t)j * n + k]; z[(size_t)j * n + k] = t;
            }
        }
    }
    return TQS_OK;
}

/* Lanczos: q_{k+1} beta_k = H q_k - alpha_k q_k - beta_{k-1} q_{k-1}. The
 * ground state of the tridiagonal T_k (alpha, beta) approximates E0, and
 * beta_k |y_k| (last component of its eigenvector) is the residual
 * |H v - E v| of the Ritz vector v = sum_k y_k q_k. Without
 * re-orthogonalisation only three vectors are kept; the ground-state vector is
 * then rebuilt by running the same recursion a second time. */
TQSDEF int tqs_exact_ground_state(tqs_ed_result *out, const tqs_hamiltonian *H,
                                  const tqs_lanczos_options *opt) {
    tqs_lanczos_options o;
    tqs_basis basis;
    double *alpha = NULL, *beta = NULL, *td = NULL, *te = NULL, *tz = NULL;
    double *q = NULL, *qprev = NULL, *w = NULL, *vec = NULL, *store = NULL;
    long dim, i;
    int rc, k, nit = 0, pass, max_iter;
    double E = 0, resid_est = 0;
    tqs_rng rng;

    if (!out || !H) return tqs__fail(TQS_EINVAL, "exact_ground_state: null pointer");
    memset(out, 0, sizeof *out);
    if (opt) o = *opt; else memset(&o, 0, sizeof o);
    if (o.max_iter <= 0) o.max_iter = 300;
    if (!(o.tol > 0)) o.tol = 1e-10;
    rc = tqs_basis_init(&basis, H->lat.N);
    if (rc) return rc;
    dim = (long)basis.dim;
    max_iter = o.max_iter < dim ? o.max_iter : (int)dim;
    alpha = (double *)tqs__alloc(sizeof(double) * (size_t)(max_iter + 1));
    beta = (double *)tqs__alloc(sizeof(double) * (size_t)(max_iter + 1));
    td = (double *)tqs__alloc(sizeof(double) * (size_t)(max_iter + 1));
    te = (double *)tqs__alloc(sizeof(double) * (size_t)(max_iter + 1));
    tz = (double *)tqs__alloc(sizeof(double) * (size_t)(max_iter + 1) * (size_t)(max_iter + 1));
    q = (double *)tqs__alloc(sizeof(double) * (size_t)dim);
    qprev = (double *)tqs__alloc(sizeof(double) * (size_t)dim);
    w = (double *)tqs__alloc(sizeof(double) * (size_t)dim);
    if (o.want_vector) vec = (double *)tqs__calloc(sizeof(double) * (size_t)dim);
    if (o.reorthogonalize) store = (double *)tqs__alloc(sizeof(double) * (size_t)dim * (size_t)max_iter);
    if (!alpha || !beta || !td || !te || !tz || !q || !qprev || !w ||
        (o.want_vector && !vec) || (o.reorthogonalize && !store)) {
        rc = tqs__fail(TQS_ENOMEM, "exact_ground_state: out of memory (basis of %ld states)", dim);
        goto done;
    }

    for (pass = 0; pass < (o.want_vector && !o.reorthogonalize ? 2 : 1); pass++) {
        double nrm;
        tqs_rng_seed(&rng, o.seed, 0x4C414E43ull);
        for (i = 0; i < dim; i++) q[i] = tqs_rng_uniform(&rng) - 0.5;
        nrm = sqrt(tqs__dot(q, q, dim));
        for (i = 0; i < dim; i++) { q[i] /= nrm; qprev[i] = 0; }
        for (k = 0; k < (pass == 0 ? max_iter : nit); k++) {
            double a, bprev = k > 0 ? beta[k - 1] : 0.0;
            if (pass == 1) { /* second pass: accumulate v = sum_k y_k q_k */
                for (i = 0; i < dim; i++) vec[i] += tz[k] * q[i];
                if (k == nit - 1) break;
            }
            if (store) memcpy(store + (size_t)k * dim, q, sizeof(double) * (size_t)dim);
            tqs_hamiltonian_apply(H, &basis, w, q);
            a = pass == 1 ? alpha[k] : tqs__dot(w, q, dim);
            for (i = 0; i < dim; i++) w[i] -= a * q[i] + bprev * qprev[i];
            if (store) { /* full re-orthogonalisation, twice for stability */
                int rep, j;
                for (rep = 0; rep < 2; rep++) for (j = 0; j <= k; j++) {
                    double *qj = store + (size_t)j * dim, c = tqs__dot(w, qj, dim);
                    for (i = 0; i < dim; i++) w[i] -= c * qj[i];
                }
            }
            if (pass == 1) { nrm = beta[k]; }
            else {
                int j;
                alpha[k] = a;
                nrm = sqrt(tqs__dot(w, w, dim));
                beta[k] = nrm;
                nit = k + 1;
                /* Ritz value and residual estimate from T_{k+1} */
                for (j = 0; j <= k; j++) { td[j] = alpha[j]; te[j] = beta[j]; }
                rc = tqs_tridiag_eigen(td, te, tz, k + 1);
                if (rc) goto done;
                E = td[0];
                resid_est = fabs(beta[k] * tz[(size_t)k * (k + 1)]);
                if (resid_est < o.tol || nrm < 1e-14 || k + 1 == max_iter) break;
            }
            for (i = 0; i < dim; i++) { double t = q[i]; q[i] = w[i] / nrm; qprev[i] = t; }
        }
        if (pass == 0 && !store) {
            /* keep column 0 of the final T's eigenvectors (row stride nit) */
            for (k = 0; k < nit; k++) tz[k] = tz[(size_t)k * nit];
        }
    }
    if (store && o.want_vector) {
        for (k = 0; k < nit; k++) {
            double c = tz[(size_t)k * nit];
            for (i = 0; i < dim; i++) vec[i] += c * store[(size_t)k * dim + i];
        }
    }
    out->energy = E;
    out->residual = resid_est;
    out->iterations = nit;
    out->dim = (size_t)dim;
    if (vec) { /* normalise and measure the true residual */
        double nrm = sqrt(tqs__dot(vec, vec, dim)), r2;
        for (i = 0; i < dim; i++) vec[i] /= nrm;
        tqs_hamiltonian_apply(H, &basis, w, vec);
        for (i = 0; i < dim; i++) w[i] -= E * vec[i];
        r2 = tqs__dot(w, w, dim);
        out->residual = sqrt(r2);
        out->vector = vec; vec = NULL;
    }
    if (!isfinite(E)) rc = tqs__fail(TQS_ENUMERIC, "exact_ground_state: non-finite energy");
    else if (resid_est >= o.tol && nit == max_iter)
        rc = tqs__fail(TQS_ENUMERIC, "Lanczos did not converge in %d iterations (residual %.2e)", nit, resid_est);
done:
    TQS_FREE(alpha); TQS_FREE(beta); TQS_FREE(td); TQS_FREE(te); TQS_FREE(tz);
    TQS_FREE(q); TQS_FREE(qprev); TQS_FREE(w); TQS_FREE(vec); TQS_FREE(store);
    tqs_basis_free(&basis);
    if (rc) tqs_ed_result_free(out);
    return rc;
}

TQSDEF void tqs_ed_result_free(tqs_ed_result *r) {
    if (!r) return;
    TQS_FREE(r->vector);
    memset(r, 0, sizeof *r);
}

#ifdef __cplusplus
}
#endif
#endif /* TQS_IMPLEMENTATION_DONE */
#endif /* TQS_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 The tqs.h authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
