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
 *       #define TQS_NO_VECTOR_EXT             plain-C dense kernels even with GCC/Clang
 *                                             (their vector extensions, at the width the
 *                                             compile target has, are the default)
 *       #define TQS_NO_DISPATCH               no AVX2 + FMA copies chosen at run time in
 *                                             x86 builds whose target lacks them
 *       #define TQS_PAR_MIN_WORK 1e6          multiply-adds below which a parallel region
 *                                             runs on one thread (see "Threads on a machine")
 *   Any optimisation flags work: "cc -O2 -fopenmp prog.c -lm" picks the AVX2
 *   kernels at run time; tqs_kernel_name() says which kernels run.
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
 * SEVERAL PROCESSES
 *   A run can be shared by processes (MPI ranks, say) through three callbacks
 *   in a tqs_comm (tqs_vmc_options.comm); tqs.h has no MPI in it.
 *   examples/mpi.h implements them with MPI; NULL is one process.
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
 * CONTENTS, in the order data flows. The declarations follow it, then the
 * implementation in the same order; each section starts with a banner, its
 * name between two lines of "=" (search for the name):
 *   Errors                  return codes, tqs_last_error
 *   Complex numbers         a plain struct (C and C++ alike)
 *   Random numbers          xoshiro256**, one stream per Markov chain
 *   Lattice                 sites, bonds, patches, translations
 *   J1-J2 Hamiltonian       diagonal and off-diagonal elements; the Sz = 0 basis
 *   Model parameters        the ViT: configuration, defaults, the flat parameter vector
 *   Forward                 log psi of a batch of configurations
 *   Backward                the Jacobian d log psi / d theta, by hand
 *   Sampler                 Metropolis exchange moves from |psi|^2, all chains batched
 *   Local energy            E_loc(s), the connected configurations batched
 *   Statistics              mean, error with autocorrelation, split-R-hat
 *   Observables             spin and dimer correlations, structure factors
 *   Exact enumeration       expectation values over the whole basis (N <= 24)
 *   Linear algebra and SR   Gram matrices, Cholesky, CG; the SR solve (three solvers, SPRING)
 *   The optimisation driver tqs_vmc: options and defaults, one step, evaluation
 *   File I/O                model files, checkpoints (with the run's options)
 *   Exact diagonalisation   Lanczos ground state (N <= 24)
 *   Symmetrised wave function  psi_sym over the lattice symmetries, its sector
 *   Attention analysis      attention maps and their input dependence
 *   The recipe              plain training, then psi_sym in the ground state's sector (tqs_recipe)
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

#if defined(TQS_STATIC) && (defined(__GNUC__) || defined(__clang__))
#define TQSDEF static __attribute__((unused))   /* a program may use few of them */
#elif defined(TQS_STATIC)
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
    TQS_ENOTPD = -7,     /* a matrix that must be positive definite is not */
    TQS_ECOMM = -8       /* a tqs_comm callback failed, or the processes disagree */
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
TQSDEF int      tqs_rng_seed(tqs_rng *rng, uint64_t seed, uint64_t stream);
TQSDEF uint64_t tqs_rng_u64(tqs_rng *rng);
TQSDEF double   tqs_rng_uniform(tqs_rng *rng);          /* in [0, 1) */
TQSDEF uint64_t tqs_rng_below(tqs_rng *rng, uint64_t n); /* uniform in [0, n); 0 if n = 0 */
TQSDEF double   tqs_rng_normal(tqs_rng *rng);           /* standard normal */
/* A uniformly random configuration with total Sz = 0 (N even). */
TQSDEF int      tqs_random_config(int8_t *s, int N, tqs_rng *rng);

/* Number of OpenMP threads used by the library (1 without OpenMP). */
TQSDEF void tqs_set_threads(int n);
TQSDEF int  tqs_get_threads(void);
/* Which dense kernels this build runs (vector width, run-time AVX2 choice). */
TQSDEF const char *tqs_kernel_name(void);

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
TQSDEF int  tqs_translate(const tqs_lattice *lat, int8_t *out, const int8_t *in, int dx, int dy);
/* n_A(s) mod 2, n_A the up spins on the sublattice x + y even: Marshall's
 * sign is (-1)^n_A (TQS_SIGN_MARSHALL below). s is Lx*Ly spins, site x*Ly + y. */
TQSDEF int  tqs_marshall_parity(const int8_t *s, int Lx, int Ly);

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

#define TQS_ED_MAX_SITES 24
/* The Sz = 0 basis of exact diagonalisation and exact enumeration (N <= 24):
 * states are bit patterns (bit i set = spin up at site i)
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
TQSDEF int    tqs_bits_to_config(int8_t *s, uint32_t bits, int N);
/* out = H in on the Sz = 0 basis (OpenMP over rows). */
TQSDEF int    tqs_hamiltonian_apply(const tqs_hamiltonian *H, const tqs_basis *basis,
                                    double *out, const double *in);


/* ===================================================================== */
/* Model parameters: the Vision-Transformer wave function                */
/* ===================================================================== */
/* log psi(s) of arXiv:2405.18874 (and NetKet's ViT tutorial):
 *   patches p_P (b*b spins) -> x_P = W_e p_P + b_e                 (no positional embedding)
 *   n_l pre-LayerNorm encoder blocks:
 *     y = LN1(x);  v = W_v y + b_v;  a_P = sum_Q A^mu_PQ v^mu_Q per head mu
 *       factored:  A^mu_PQ = alpha^mu[disp(P,Q)]                   (positions only)
 *       standard:  A^mu_PQ = softmax_Q(q^mu_P.k^mu_Q/sqrt(dh) + pos^mu[disp(P,Q)])
 *     x += W_o a + b_o;   x += W_2 gelu(W_1 LN2(x) + b_1) + b_2
 *   z = LN_h(sum_P x_P);  r = LN_r(W_r z + b_r);  m = LN_i(W_i z + b_i)
 *   log psi = sum_a logcosh(r_a + i m_a)   (+ i pi n_A(s) with the sign rule below)
 * disp(P,Q) = ((QX-PX) mod gx)*gy + ((QY-PY) mod gy) on the periodic patch grid. */
enum { TQS_ATTN_FACTORED = 0, TQS_ATTN_STANDARD = 1 };
/* A fixed sign the network's output multiplies (no parameters). Marshall's:
 * psi(s) = (-1)^{n_A(s)} psi_ViT(s), n_A the up spins on the sublattice
 * x + y even, the exact sign of the unfrustrated ground state (J2 = 0), so
 * the network learns only the frustration's corrections to it. A translation
 * by one site or a spin flip turns n_A into N/2 - n_A, the point group keeps
 * the sublattices: with N/2 = 2 (Lx/2)(Ly/2) even the sign is invariant
 * under the whole group, so psi_sym's sectors are the network's. */
enum { TQS_SIGN_NONE = 0, TQS_SIGN_MARSHALL = 1 };

typedef struct tqs_vit_config {  /* zero means default (tqs_vit_config_defaults), but for the lattice */
    int Lx, Ly;      /* lattice (required) */
    int b;           /* patch size (divides Lx and Ly), default 2 */
    int d;           /* embedding dimension, default 16 */
    int h;           /* heads (divides d), default 2 */
    int n_layers;    /* encoder blocks, default 2 */
    int ff;          /* feed-forward width multiplier (hidden width ff*d), default 2 */
    int attention;   /* TQS_ATTN_FACTORED (default) or TQS_ATTN_STANDARD */
    int sign_rule;   /* TQS_SIGN_NONE (default) or TQS_SIGN_MARSHALL (the recipe's choice: tqs_recipe_sign_rule) */
} tqs_vit_config;

/* Offsets of one encoder block's tensors in the flat parameter vector.
 * Matrices are row-major (out, in), so y = W x + b. Tensors absent for the
 * attention kind (alpha, or W_q b_q W_k b_k pos) have size 0. */
typedef struct tqs_vit_layer_offsets {
    size_t ln1_g, ln1_b;        /* (d), (d) */
    size_t alpha;               /* (h, n)  factored */
    size_t Wq, bq, Wk, bk, pos; /* (d,d) (d) (d,d) (d) (h,n)  standard */
    size_t Wv, bv, Wo, bo;      /* (d,d) (d) (d,d) (d) */
    size_t ln2_g, ln2_b;        /* (d), (d) */
    size_t W1, b1, W2, b2;      /* (ff*d, d) (ff*d) (d, ff*d) (d) */
} tqs_vit_layer_offsets;

typedef struct tqs_vit {
    tqs_vit_config cfg;
    int N;                  /* sites */
    int n;                  /* tokens (patches) */
    int gx, gy;             /* patch grid */
    int dh;                 /* head size d/h */
    size_t n_params;
    double *params;         /* (n_params): every parameter, in file order */
    size_t We, be;                          /* (d, b*b), (d) */
    tqs_vit_layer_offsets *layer;           /* (n_layers) */
    size_t lnh_g, lnh_b, Wr, br, lnr_g, lnr_b, Wi, bi, lni_g, lni_b; /* head */
    int *patch_site;        /* (n, b*b): site of each patch entry */
    int *disp;              /* (n, n): displacement index from query P to key Q */
    double J1, J2;          /* the couplings it was last trained at (set by each tqs_vmc_step,
                               kept in the model file); NAN: not recorded (a fresh model, or
                               a version 1 file) */
    int trained_symmetry;   /* and what was trained: 0 psi itself; psi_sym over 1 tqs_symmetry_init's
                               group, 2 the translations alone, 3 tqs_symmetry_init_point's group */
} tqs_vit;

/* Fills every zero field but Lx, Ly with its default: the defaults of
 * tqs_vit_init and of the example programs (one definition). */
TQSDEF void   tqs_vit_config_defaults(tqs_vit_config *cfg);
/* Checks a configuration; returns 0 or TQS_EINVAL with a message naming the field. */
TQSDEF int    tqs_vit_config_check(const tqs_vit_config *cfg);
/* Number of parameters implied by cfg, zero fields at their defaults (0 if cfg is invalid). */
TQSDEF size_t tqs_vit_param_count(const tqs_vit_config *cfg);
/* Allocates a model with Xavier-uniform matrices, zero biases, unit LayerNorm
 * gains, drawn from the generator stream (seed, 0); zero fields of cfg take
 * their defaults (model->cfg holds the values used). */
TQSDEF int    tqs_vit_init(tqs_vit *model, const tqs_vit_config *cfg, uint64_t seed);
TQSDEF void   tqs_vit_free(tqs_vit *model);

/* Workspace for batched forward and backward passes, allocated once for at
 * most max_batch configurations and reused by every call (no allocation per
 * call). with_backward also reserves the per-thread backward scratch. */
typedef struct tqs_vit_ws {
    int max_batch, with_backward, n_slots;
    size_t slot_size;
    double *block;          /* every activation, one allocation */
    double **x, **y1, **mu1, **rs1, **q, **k, **att, **v, **a, **xm, **y2, **mu2, **rs2, **h1, **g;
    double *xs, *z, *muh, *rsh, *rp, *r, *mur, *rsr, *mp, *m, *mui, *rsi;
    double *wt;             /* every weight matrix (O, I) transposed to (I, O rounded up to 8), see tqs__vit_wt_offsets */
    double *amat;           /* (n_layers, h, n, n) factored attention matrices alpha_mu(P - Q) */
    double *emb;            /* (2^(b b), d) the embedding of every spin pattern of a patch, for b <= 2
                               (NULL for larger patches: embedded token by token) */
    size_t *wt_off;         /* (6 n_layers + 3) offsets in wt */
    double *prepared_params;/* (n_params) the parameters wt and amat were made from */
    int prepared;
    double *scratch;        /* (n_slots, slot_size) backward scratch */
    double **ptrs;          /* storage of the pointer arrays above */
} tqs_vit_ws;
TQSDEF int  tqs_vit_ws_init(tqs_vit_ws *ws, const tqs_vit *model, int max_batch, int with_backward);
TQSDEF void tqs_vit_ws_free(tqs_vit_ws *ws);

/* ===================================================================== */
/* Forward: log psi of a batch                                           */
/* ===================================================================== */
/* logpsi[s] = log psi(configs + s*N) for s < B (B <= ws->max_batch). */
TQSDEF int tqs_vit_forward(const tqs_vit *model, tqs_vit_ws *ws, tqs_complex *logpsi,
                           const int8_t *configs, int B);
/* Attention weights A^mu_PQ of every layer and head for one configuration,
 * out is (n_layers, h, n, n). For factored attention they do not depend on s. */
TQSDEF int tqs_vit_attention(const tqs_vit *model, tqs_vit_ws *ws, double *out, const int8_t *config);

/* ===================================================================== */
/* Backward: the Jacobian O_k(s) = d log psi(s) / d theta_k              */
/* ===================================================================== */
/* jac is (2B, n_params): row 2s holds d Re log psi(s)/d theta, row 2s+1
 * d Im log psi(s)/d theta, so O_k(s) = jac[2s][k] + i jac[2s+1][k].
 * logpsi (may be NULL) receives log psi as in tqs_vit_forward. The workspace
 * must have been made with with_backward. */
TQSDEF int tqs_vit_jacobian(const tqs_vit *model, tqs_vit_ws *ws, double *jac, tqs_complex *logpsi,
                            const int8_t *configs, int B);

/* ===================================================================== */
/* Sampler: Metropolis exchange moves from |psi|^2                       */
/* ===================================================================== */
/* Any wave function, as a batched log-amplitude callback:
 * out[s] = log psi(configs + s*N) for s < B, B <= max_batch; returns 0 or a
 * negative TQS_E... code. */
typedef int (*tqs_logpsi_fn)(void *ctx, tqs_complex *out, const int8_t *configs, int B);
typedef struct tqs_amplitude {
    tqs_logpsi_fn fn;
    void *ctx;
    int max_batch;
} tqs_amplitude;

/* The ViT as an amplitude (ctx points to this struct). */
typedef struct tqs_vit_amplitude { const tqs_vit *model; tqs_vit_ws *ws; } tqs_vit_amplitude;
TQSDEF int tqs_vit_logpsi_fn(void *ctx, tqs_complex *out, const int8_t *configs, int B);
TQSDEF tqs_amplitude tqs_vit_amplitude_make(tqs_vit_amplitude *holder, const tqs_vit *model, tqs_vit_ws *ws);

/* M chains advance in lockstep: at each proposal the proposed configurations of
 * all chains are evaluated in one batched call. Each chain has its own random
 * stream (seed, chain index), so the samples do not depend on the threads. A
 * move exchanges the spins of a pair at lattice distance <= 2 (nearest,
 * diagonal, straight next-nearest) chosen uniformly; pairs with equal spins
 * leave the chain unchanged and are not counted as proposals.
 * Symmetry moves (optional, tqs_sampler_set_moves): before each recorded
 * sample every chain also proposes g s for an element g drawn uniformly
 * from a group of lattice permutations (and spin flips). The proposal is
 * symmetric (g and its inverse are equally likely), so the acceptance is the
 * same Metropolis ratio. For a symmetrised amplitude |psi_sym(g s)| =
 * |psi_sym(s)| and the move is always accepted: it carries a chain between
 * the images of an ordered pattern (stripes along x and along y), which
 * exchange spins only through domain walls that local moves cross in
 * hundreds of sweeps. Without it a psi_sym run measured C(1,0) = -0.146 and
 * C(0,1) = -0.223 +- 0.012 on 4x4 at J2 = 0.6 (equal by symmetry). */
typedef struct tqs_sampler {
    int N, n_chains, n_pairs;
    int *pairs;              /* (n_pairs, 2) */
    int8_t *state;           /* (n_chains, N) current configuration of every chain */
    tqs_complex *logpsi;     /* (n_chains) log psi of the current configurations */
    int have_logpsi;         /* logpsi is valid for the current parameters */
    tqs_rng *rng;            /* (n_chains) */
    uint64_t *accepted, *proposed; /* (n_chains) since the last tqs_sampler_run */
    int8_t *prop;            /* (n_chains, N) workspace: proposals, compacted */
    int *prop_chain;         /* (n_chains) chain of each proposal */
    tqs_complex *prop_logpsi;
    double power;            /* the chains sample |psi|^power (2 after tqs_sampler_init) */
    int n_moves;             /* symmetry moves: 0 none, else the group's size */
    const int *move_perm;    /* (n_moves, N) (g s)[i] = s[move_perm[g N + i]] (not owned) */
    const int8_t *move_flip; /* (n_moves) 1: g also flips every spin (not owned) */
    uint64_t move_accepted, move_proposed; /* symmetry moves since the last tqs_sampler_run */
} tqs_sampler;
TQSDEF int  tqs_sampler_init(tqs_sampler *S, const tqs_lattice *lat, int n_chains, uint64_t seed);
TQSDEF void tqs_sampler_free(tqs_sampler *S);
/* Call after the parameters change: log psi of the chains is recomputed. */
TQSDEF void tqs_sampler_invalidate(tqs_sampler *S);
/* Moves every chain to an ordered start: one of its current configuration,
 * the two Neel states and the four stripe states (those with the chain's
 * magnetisation), drawn with probability proportional to |psi|^power among
 * these 7 (the chain's own random stream draws). Why: chains started at
 * random configurations of an ordered state's model form domains, and their
 * walls take hundreds of sweeps to leave: a trained 6x6 model's E/N from
 * 4096 samples after 20 and 200 sweeps from random starts was -0.456 and
 * -0.489, after 20 from these starts -0.5002 (its training chains: -0.4996;
 * examples/README.md, "Variational Monte Carlo", Thermalisation). On a
 * model that barely depends on the configuration the draw is near uniform
 * and changes nothing. lat: the sampler's lattice. */
TQSDEF int  tqs_sampler_start_ordered(tqs_sampler *S, const tqs_lattice *lat, const tqs_amplitude *amp);
/* thermalize sweeps, then n_per_chain samples per chain with sweeps_between
 * sweeps (N proposals each) before each. samples is chain-major:
 * (n_chains, n_per_chain, N); logpsi (may be NULL) likewise. */
TQSDEF int tqs_sampler_run(tqs_sampler *S, const tqs_amplitude *amp, int n_per_chain, int sweeps_between,
                           int thermalize, int8_t *samples, tqs_complex *logpsi);
/* Acceptance rate of chain c in the last run, or of all chains for c < 0
 * (local moves; symmetry moves are counted in move_accepted/move_proposed). */
TQSDEF double tqs_sampler_acceptance(const tqs_sampler *S, int c);
/* Symmetry moves through the n elements of a group (the tables are the
 * caller's and must outlive their use; n = 0 turns them off). perm and flip
 * as in tqs_symmetry (an element of tqs_symmetry_init(G, Lx, Ly, 0) and of
 * its _point and _translations variants: those sum whole groups). */
TQSDEF int tqs_sampler_set_moves(tqs_sampler *S, const int *perm, const int8_t *flip, int n);

/* ===================================================================== */
/* Local energy                                                          */
/* ===================================================================== */
/* E_loc(s) = H_ss + sum_s' H_ss' exp(log psi(s') - log psi(s)); the connected
 * configurations of many samples are gathered into batches of
 * amp->max_batch and evaluated together. */
typedef struct tqs_eloc_ws {
    int N, chunk, max_conn;
    int8_t *batch;           /* (chunk, N) connected configurations */
    int *owner;              /* (chunk) sample each belongs to */
    double *mel;             /* (chunk) matrix element */
    tqs_complex *lp;         /* (chunk) */
    int *flips;              /* (max_conn, 2) */
    double *mels;            /* (max_conn) */
} tqs_eloc_ws;
TQSDEF int  tqs_eloc_ws_init(tqs_eloc_ws *ws, const tqs_hamiltonian *H, int chunk);
TQSDEF void tqs_eloc_ws_free(tqs_eloc_ws *ws);
TQSDEF int  tqs_local_energy(tqs_complex *eloc, const tqs_hamiltonian *H, const tqs_amplitude *amp,
                             tqs_eloc_ws *ws, const int8_t *configs, const tqs_complex *logpsi, long B);

/* ===================================================================== */
/* Statistics                                                            */
/* ===================================================================== */
typedef struct tqs_stats {
    double mean;       /* average over all samples */
    double error;      /* error of the mean, sqrt(var * 2 tau / n) */
    double variance;   /* sample variance */
    double tau;        /* integrated autocorrelation time (1/2 for independent samples) */
    double rhat;       /* split-R-hat across chains (1 when converged) */
} tqs_stats;
/* x is chain-major (n_chains, n_per_chain). tau from the chain-averaged
 * autocorrelation function with Sokal's automatic window (W >= 5 tau). */
TQSDEF int tqs_statistics(tqs_stats *st, const double *x, int n_chains, int n_per_chain);
/* Local energies clipped for the SR force (FermiNet's rule, radially in the
 * complex plane): with the weighted mean m = sum_s w_s E_s and the width
 * c * sum_s w_s |E_s - m| (c mean absolute deviations), every E_s farther
 * than the width from m is moved onto that circle, m + width (E_s - m)/|E_s - m|;
 * the others are copied bit for bit. A few configurations where psi is
 * nearly zero have huge local energies; clipped, they cannot set the
 * step's direction alone. weights: NULL for 1/M each. Returns how many
 * were moved, or -1 (tqs_last_error) on bad input. out may be eloc. */
TQSDEF long tqs_clip_local_energies(tqs_complex *out, const tqs_complex *eloc, const double *weights, long M, double c);

/* ===================================================================== */
/* Observables: spin and dimer correlations, structure factors           */
/* ===================================================================== */
/* Measured on configurations of |psi|^2 through any amplitude, with the
 * exchange operator P_ij (swaps the spins of i and j): S_i.S_j = (P_ij - 1/2)/2,
 * whose local estimator is Re psi(P_ij s)/psi(s) (1 when s_i = s_j), and for
 * a product of two, Re psi(P_kl P_ij s)/psi(s). Displacements and momenta
 * are indexed like sites: r = dx Ly + dy, q = (2 pi kx/Lx, 2 pi ky/Ly) at
 * kx Ly + ky.
 *   corr[r]       C(r) = (1/N) sum_i <S_i . S_{i+r}>     (C(0) = 3/4)
 *   sq[q]         S(q) = sum_r cos(q . r) C(r)           (S(pi,pi): Neel order; S(pi,0), S(0,pi): stripe)
 *   bond[o]       <D_b> of a nearest-neighbour bond b = (i, i + e_o), D_b = S_i . S_{i+e_o}; o = 0: x, 1: y
 *   diag[d]       <S_i . S_{i+f_d}>, next-nearest neighbours f_0 = (1, 1), f_1 = (1, -1)
 *   dimer[o][r]   <D_b D_{b+r}> - <D_b><D_{b+r}>, bonds of orientation o, averaged over b
 *   dimer_sq[o]   sum_r cos(Q_o . r) dimer[o][r], Q_0 = (pi, 0), Q_1 = (0, pi): columnar dimer order
 * and their error bars (_err: tqs_statistics over the chains, so the
 * autocorrelation counts; the connected dimer correlations linearised around
 * the means; 0 for exact weights). bond and diag average over every bond, so
 * the energy of any J1, J2 follows from the same amplitudes, sample by
 * sample (tqs_observables_energy: E_loc(s) = J1 sum_nn + J2 sum_nnn, equal to
 * tqs_local_energy's). The averages over i in C(r) and over b in the dimer
 * correlations run over the reference sites given to tqs_observables_init:
 * all N, or, for a model invariant under translations by the patch (the
 * ViT), the b*b sites of one patch, which have the same expectation. With
 * exact weights every reference site is used for every configuration; from
 * samples, each sample uses one of them, drawn uniformly (from a hash of the
 * sample's index: reproducible, and unbiased for any state).
 * Cost per sample, in amplitudes (moved configurations only, all in batched
 * calls of many samples): the 4N bonds as the local energy (about 2.2N on
 * J1-J2 states), plus about N/2 for the pairs of C and N for the products
 * of two bonds: about 1.5 local energies in all, so measured together with
 * the energy (tqs_vmc_evaluate_observables) they add about half of one. */
typedef struct tqs_observables {
    int Lx, Ly, N, n_ref;
    double *corr, *corr_err, *sq, *sq_err;   /* (N) each */
    double *dimer[2], *dimer_err[2];         /* (N) each */
    double bond[2], bond_err[2], diag[2], diag_err[2], dimer_sq[2], dimer_sq_err[2];
    long n_configs, n_amplitudes;            /* of the last call: configurations, amplitudes evaluated */
    int n_chains, n_per_chain;               /* of the last sampled call (0: the last call was exact) */
    /* workspace */
    int *ref;                                /* (n_ref) reference sites */
    signed char *rbond;                      /* (N) displacement r -> the bond (i, i + r) is, 0: none */
    int max_conf;                            /* amplitudes per configuration with every reference site, at most */
    long cap;                                /* rows of conf: the amplitudes of one batched call */
    int8_t *conf;                            /* (cap, N) */
    tqs_complex *lp;                         /* (cap) */
    double *vals;                            /* (max_samples, 7N + 2) the estimators of each sample */
    long max_samples;
    double *col, *cosq, *mean, *block;       /* (max_samples); (N, N) cos(q . r); (7N + 2); (64, 7N + 2) */
} tqs_observables;
/* ref_sites NULL: all N sites. max_samples: samples per call, at most. */
TQSDEF int  tqs_observables_init(tqs_observables *o, const tqs_lattice *lat, const int *ref_sites, int n_ref, long max_samples);
TQSDEF void tqs_observables_free(tqs_observables *o);
/* From samples of |psi|^2, chain-major (n_chains, n_per_chain, N), with their log psi. */
TQSDEF int  tqs_observables_sampled(tqs_observables *o, const tqs_amplitude *amp, const int8_t *samples,
                                    const tqs_complex *logpsi, int n_chains, int n_per_chain);
/* Exactly: n configurations with normalised weights (exact enumeration, or a
 * whole basis with |psi|^2); configurations of weight 0 are skipped. */
TQSDEF int  tqs_observables_weighted(tqs_observables *o, const tqs_amplitude *amp, const int8_t *configs,
                                     const tqs_complex *logpsi, const double *weights, long n);
/* The energy of the J1-J2 model on the last call's configurations (total,
 * not per site): after tqs_observables_sampled its statistics over the
 * chains, sample by sample, and the mean imaginary part in *imag (NULL: not
 * wanted); after tqs_observables_weighted the exact mean (error 0, variance
 * and tau NAN). */
TQSDEF int  tqs_observables_energy(tqs_observables *o, double J1, double J2, tqs_stats *st, double *imag);

/* ===================================================================== */
/* Exact enumeration (N <= 24): expectation values without sampling     */
/* ===================================================================== */
/* With b >= 1 the basis is reduced to orbits under the lattice translations
 * by multiples of b, under which the ViT (patch size b) is exactly invariant
 * and so are psi, O(s) and E_loc(s): one representative per orbit, weighted
 * by the orbit's size, gives the same expectation values with about
 * N / b^2 times fewer configurations. b = 0 keeps every configuration. */
typedef struct tqs_enumeration {
    tqs_basis basis;
    long n;                /* entries: orbit representatives (all dim states for b = 0) */
    uint32_t *slot;        /* (dim) entry of each basis state's orbit */
    double *mult;          /* (n) orbit sizes */
    int8_t *configs;       /* (n, N) representative configurations */
    tqs_complex *logpsi;   /* (n) */
    double *weights;       /* (n) mult |psi|^2 / sum over all states of |psi|^2 */
    tqs_complex *eloc;     /* (n) */
    double energy;         /* sum_s w_s Re E_loc(s) */
    double variance;       /* sum_s w_s |E_loc(s) - energy|^2 */
    int n_slots;           /* per-thread scratch for the connected configurations */
    int *flips;            /* (n_slots, 4N, 2) */
    double *mels;          /* (n_slots, 4N) */
    const struct tqs_comm *comm; /* tqs_enumeration_split: the entries shared out in blocks */
    long block, first;     /* entries per process, ceil(n / processes); this process's first */
    tqs_complex *stage, *gather; /* (block), (processes * block) */
} tqs_enumeration;
TQSDEF int  tqs_enumeration_init(tqs_enumeration *E, const tqs_lattice *lat, int b);
TQSDEF void tqs_enumeration_free(tqs_enumeration *E);
/* Shares the entries out over the processes of comm (NULL: one): each then
 * evaluates the amplitudes and local energies of its block of entries, and
 * tqs_enumeration_evaluate gathers them, so every process ends with all of
 * logpsi, weights, eloc, energy and variance. Collective from then on. */
TQSDEF int  tqs_enumeration_split(tqs_enumeration *E, const struct tqs_comm *comm);
TQSDEF int  tqs_enumeration_evaluate(tqs_enumeration *E, const tqs_hamiltonian *H, const tqs_amplitude *amp);

/* ===================================================================== */
/* Linear algebra and stochastic reconfiguration                         */
/* ===================================================================== */
/* C (n x n, full symmetric storage) = A^T A for A = X (R x P, n = P) or
 * C = X X^T (n = R) when transpose is set. Cache-blocked, OpenMP-parallel,
 * computes one triangle and mirrors it. */
TQSDEF int tqs_gram(double *C, const double *X, long R, long P, int transpose);
/* In-place lower Cholesky A = L L^T of the n x n row-major matrix (blocked,
 * OpenMP-parallel); only the lower triangle is read and written. Returns
 * TQS_ENOTPD (A partially overwritten) at a non-positive or non-finite pivot. */
TQSDEF int tqs_cholesky(double *A, long n);
/* Solves L L^T x = b in place (b becomes x). */
TQSDEF int tqs_cholesky_solve(const double *L, double *b, long n);

enum { TQS_SOLVER_AUTO = 0, TQS_SOLVER_PARAMETER = 1, TQS_SOLVER_SAMPLE = 2, TQS_SOLVER_CG = 3 };
TQSDEF const char *tqs_solver_name(int solver);

/* Several processes, one run (MPI ranks, say): the library calls these three
 * collectives and nothing else to talk to the other processes, and needs no
 * MPI itself (examples/mpi.h implements them with MPI in a few lines). A
 * NULL pointer, or size 1, is one process. Every process makes every call,
 * in the same order; a callback returns 0, or nonzero on failure (the
 * library then fails with TQS_ECOMM). The results must be the same bits on
 * every process (a sum reduced in one place and broadcast, for instance):
 * every process then takes the same decisions and keeps the same
 * parameters. */
typedef struct tqs_comm {
    int rank, size;               /* this process, and how many (0 or 1: one) */
    void *ctx;                    /* passed to the callbacks */
    /* x[0..n) becomes the sum over the processes of their x[0..n) */
    int (*sum)(void *ctx, double *x, long n);
    /* recv[r bytes ..] = process r's send[0 .. bytes), for every process r */
    int (*allgather)(void *ctx, const void *send, void *recv, size_t bytes);
    /* recv[r bytes ..] = process r's send[rank bytes .. (rank + 1) bytes) */
    int (*alltoall)(void *ctx, const void *send, void *recv, size_t bytes);
} tqs_comm;

/* SR: X is (R, P) with rows Re, Im of (O(s) - <O>)/sqrt(M) (R = 2M), f (R)
 * likewise for E_loc. delta = (X^T X + shift I)^{-1} X^T f. */
typedef struct tqs_sr_options {   /* zero means default */
    int solver;                   /* TQS_SOLVER_*, default auto */
    double cg_tol;                /* relative residual, default 1e-8 */
    int cg_max_iter;              /* default 1000 */
    double memory_limit;          /* bytes for the matrix, default 4e9 */
    const tqs_comm *comm;         /* several processes: X and f are this process's rows (as many on
                                     every process), delta comes out the same on every one; NULL: one */
} tqs_sr_options;
typedef struct tqs_sr_info {
    int solver;                   /* the solver that ran */
    int shift_retries;            /* times the shift was raised after a non-positive pivot */
    double shift;                 /* the shift finally used */
    int cg_iterations;
    double cg_residual;           /* |b - A x| / |b| at the end */
} tqs_sr_info;
typedef struct tqs_sr_ws {
    long R, P;                    /* this process's rows, parameters */
    int solver;
    double *mat;                  /* (P, P) or (R_all, R_all) for the direct solvers */
    double *pack;                 /* packing buffer of the rank-k kernel */
    double *v1, *v2, *v3, *v4, *v5; /* vectors of length max(R_all, P + processes) */
    const tqs_comm *comm;         /* with several processes: */
    long R_all, Ps;               /* rows of all of them; parameters per slice, ceil(P / processes) */
    double *xsend, *xcols;        /* sample solver: (processes, R, Ps) this process's rows cut in slices;
                                     (R_all, Ps) every row's entries of this process's slice */
} tqs_sr_ws;
/* Chooses the solver (auto: parameter if P <= R, sample otherwise, cg when the
 * matrix exceeds memory_limit; R of all processes) and allocates for it.
 * With opt->comm it is collective. */
TQSDEF int  tqs_sr_ws_init(tqs_sr_ws *ws, long R, long P, const tqs_sr_options *opt);
TQSDEF void tqs_sr_ws_free(tqs_sr_ws *ws);
TQSDEF int  tqs_sr_solve(double *delta, const double *X, const double *f, double shift,
                         const tqs_sr_options *opt, tqs_sr_ws *ws, tqs_sr_info *info);
/* The same with a prior p (NULL: none): delta = argmin |X delta - f|^2 +
 * shift |delta - p|^2 = (S + shift)^{-1} (X^T f + shift p). With p = mu times
 * the previous update this is SPRING (Goldshlager, Abrahamsen, Lin, J. Comput.
 * Phys. 2024): SR whose regulariser pulls towards the last step instead of 0,
 * so that a small shift does not forget the directions S barely sees. */
TQSDEF int  tqs_sr_solve_prior(double *delta, const double *X, const double *f, double shift, const double *prior,
                               const tqs_sr_options *opt, tqs_sr_ws *ws, tqs_sr_info *info);
/* y = X^T (X v) + shift v, never forming X^T X (tmp has R entries). */
TQSDEF int tqs_sr_apply(double *y, const double *X, const double *v, double shift, long R, long P, double *tmp);
/* Eigenvalues w (n, ascending) of the symmetric n x n row-major matrix A
 * (destroyed): Householder reduction to tridiagonal form, then the QL solver
 * tqs_tridiag_eigen. With g (n entries, may be NULL), g is replaced by its
 * components along the eigenvectors, in the order of w (U^T g). Allocates. */
TQSDEF int tqs_symmetric_eigen(double *w, double *A, double *g, long n);
/* What SR sees at one step: the spectrum of the metric S = X^T X (X and f as
 * tqs_sr_solve takes them; S's nonzero eigenvalues are those of the R x R
 * matrix X X^T) into lambda (R, ascending), and into share (R, may be NULL)
 * how the local energy's variance |f|^2 splits over the eigenvectors u_k of
 * X X^T: share_k = (u_k . f)^2 / |f|^2, summing to 1. The step (S + eps)^-1
 * X^T f lowers the energy along mode k by a part lambda_k / (lambda_k + eps)
 * of its share: modes far below the shift eps do not move, and the share in
 * modes with lambda ~ 0 is variance no change of the parameters reaches to
 * first order. One process's rows. Allocates (R x R doubles). */
TQSDEF int tqs_sr_spectrum(double *lambda, double *share, const double *X, const double *f, long R, long P);

/* ===================================================================== */
/* The optimisation driver                                               */
/* ===================================================================== */
enum { TQS_SCHEDULE_EXP = 0, TQS_SCHEDULE_COSINE = 1 };
typedef struct tqs_vmc_options {  /* zero means default (tqs_vmc_options_defaults) */
    int n_samples;                /* per step, default 1024 (rounded up to a multiple of n_chains) */
    int n_chains;                 /* default: one sample per chain, min(n_samples, 1024) chains */
    int sweeps;                   /* sweeps between samples, default 1 */
    int thermalize;               /* sweeps before the first step's samples, default 20 */
    int exact;                    /* exact enumeration instead of sampling (N <= 24) */
    int n_steps;                  /* steps of the run (the schedules' length; tqs_vmc_step refuses more), default 500 */
    double lr, lr_final;          /* learning rate from lr to lr_final (schedule); default 0.05, final lr / 10 */
    double diag_shift, diag_shift_final; /* default 1e-3, final = initial */
    int schedule;                 /* TQS_SCHEDULE_EXP (default): a (b/a)^x, or TQS_SCHEDULE_COSINE:
                                     b + (a - b)(1 + cos(pi x))/2, x = step/(n_steps - 1), both quantities */
    int warmup;                   /* steps over which lr rises linearly to lr before its schedule; default 0 */
    double sample_power;          /* training samples |psi|^p, 0 < p <= 2; below 2 the estimators are
                                     reweighted by |psi|^(2-p) (importance sampling: the chains also
                                     visit where |psi| is small, which |psi|^2 misses). Default (0):
                                     tqs_vmc_default_sample_power(N), 1 up to 24 sites, 2 above; 2 with
                                     exact enumeration. tqs_vmc_evaluate always samples |psi|^2 */
    tqs_sr_options sr;
    uint64_t seed;
    int jac_batch;                /* configurations per Jacobian call; 0: from the model's size (32 and up) */
    double max_distance;          /* the update's Fubini-Study length lr sqrt(delta^T S delta) is
                                     capped at it; default 0.05, < 0: no cap */
    double momentum;              /* SPRING's mu < 1: the solve is pulled towards mu times the
                                     last update (tqs_sr_solve_prior); < 0: plain SR. Default (0):
                                     tqs_vmc_default_momentum(N), 0.9 up to 36 sites, off above */
    double rollback;              /* sampled runs: a step whose energy lies more than rollback error
                                     bars (of its estimate and the best's together) and 2% above the
                                     run's lowest is undone before it learns anything: the parameters
                                     go back to those of that lowest energy, the learning rate is
                                     halved for the rest of the run, the momentum cleared and the
                                     chains thermalised again (tqs_step_info.rolled_back), and the
                                     next step's energy is the new best. Default (0) and < 0: off;
                                     5 is the value measured (examples/README.md, "Stochastic
                                     reconfiguration": it cost more than it saved there) */
    double clip_local_energy;     /* the SR force's local energies clipped to within this many mean
                                     absolute deviations of their mean (tqs_clip_local_energies);
                                     the energy and its statistics are never clipped. Default (0)
                                     and < 0: off */
    const struct tqs_symmetry *symmetry; /* if set (characters chosen): train, sample and measure
                                     psi_sym(s) = sum_g chi(g) psi(g s) instead of psi; each
                                     configuration then costs symmetry->n passes */
    double memory_limit;          /* bytes tqs_vmc_init may plan to use, default 32e9 (refused above it) */
    const char *note;             /* free text kept in checkpoints (a program's flags, say), NULL: none */
    const tqs_comm *comm;         /* several processes share the run (NULL: one): each runs n_chains /
                                     processes of the chains (chain c keeps the stream (seed, c)),
                                     or a block of the enumeration, and its rows of X; statistics
                                     are over all chains, the parameters the same on every process.
                                     tqs_vmc_init, _step, _evaluate and the checkpoints are collective */
} tqs_vmc_options;
/* Fills every zero field with its default: the defaults of tqs_vmc_init and
 * of the example programs (one definition; measured in examples/README.md,
 * "Training"), except sample_power and momentum, whose defaults depend on
 * the lattice (left 0, see below). Idempotent: "off" stays negative. */
TQSDEF void tqs_vmc_options_defaults(tqs_vmc_options *opt);
/* The default momentum on a lattice of n_sites: 0.9 up to 36 sites, off
 * (-1) above. Measured (examples/README.md, "8x8 and 10x10"): on 8x8, 20-minute plain runs with it ended 3.6e-2, 6.3e-2 and 4.5e-1
 * above the best published energy (seeds 1-3; seed 1 swung by 2-4% over
 * tens of steps, seed 3 diverged), without it 2.2e-2, 7.3e-2 and 4.7e-2;
 * an hour with it collapsed once (E/N -0.484 to -0.097).
 * Left zero by tqs_vmc_options_defaults, resolved by tqs_vmc_init. */
TQSDEF double tqs_vmc_default_momentum(int n_sites);
/* The default sample power on a lattice of n_sites: 1 up to 24 sites, 2
 * above. Measured (examples/README.md, "The model for the lattice"): on 4x4
 * and 4x6 |psi|^1 samples lower the median error of every recipe tried 4
 * to 12 times and keep runs out of the stalls |psi|^2 samples cannot see;
 * on 6x6 they narrowed the spread over seeds but not the median. Left
 * zero by tqs_vmc_options_defaults (it does not know the lattice) and
 * resolved by tqs_vmc_init. */
TQSDEF double tqs_vmc_default_sample_power(int n_sites);

typedef struct tqs_step_info {
    long step;                    /* index of this step (0-based) */
    /* Of the samples before the update. energy, error and variance are of the
     * whole lattice (totals, as H is): divide energy and error by N for the
     * energy per site, variance by N for the variance per site the programs
     * print (the V-score is N variance / energy^2). */
    double energy, error, variance, tau, rhat, acceptance;
    double energy_imag;           /* the imaginary part of the mean local energy (0 up to noise) */
    double ess;                   /* effective number of samples 1 / sum_s w_s^2: all of them for |psi|^2
                                     samples, fewer with sample_power < 2 (their weights differ); 0 exact */
    double lr, diag_shift;
    tqs_sr_info sr;
    int rejected;                 /* the update was not finite: parameters unchanged */
    int clipped;                  /* local energies the force's clip moved (tqs_vmc_options.clip_local_energy) */
    int rolled_back;              /* the energy had risen (tqs_vmc_options.rollback): the parameters are
                                     back to the run's best, no update; lr is the halved one to come */
    double distance;              /* lr sqrt(delta^T S delta) of the update (before any cap) */
    int capped;                   /* the update was scaled down to max_distance */
    double seconds[4];            /* wall time of: sampling (or enumeration), local energy, Jacobian, SR solve and update */
} tqs_step_info;

typedef struct tqs_vmc {
    const tqs_hamiltonian *H;
    tqs_vit *model;
    tqs_vmc_options opt;
    long step;                    /* steps done */
    int M, per_chain;             /* samples per step (or basis size) of this process, per chain */
    long R;                       /* rows of X: 2M */
    const tqs_comm *comm;         /* NULL: one process */
    int M_all, M_rows;            /* samples (entries) of all processes; this one's that hold data (M, but
                                     for the last block of a split enumeration) */
    long first;                   /* this process's first chain (sampled) or entry (exact) */
    tqs_complex *eloc_all;        /* (M_all) every process's local energies, chain-major (sampled, shared) */
    double *e_all;                /* (M_all) their real parts */
    const tqs_complex *el_all;    /* the local energies of all samples (eloc_all, eloc or the enumeration's) */
    const double *w_all;          /* their weights (the enumeration's or sample_power's), NULL: 1 / M_all each */
    double *lw_all;               /* (M_all) with sample_power < 2: every sample's weight |psi|^(2-p), normalised */
    tqs_sampler sampler;
    tqs_enumeration en;
    tqs_vit_ws fwd_ws, jac_ws;
    tqs_vit_amplitude holder;
    tqs_amplitude amp;
    tqs_eloc_ws eloc_ws;
    tqs_sr_ws sr_ws;
    int8_t *samples;              /* (M, N) */
    tqs_complex *logpsi, *eloc;   /* (M) */
    double *X, *f, *delta, *work; /* (R, P), (R), (P), (max(R, P)) */
    double *prior;                /* (P): momentum times the last update applied (SPRING) */
    struct tqs_symmetric_amplitude *sym_amp; /* with opt.symmetry: psi_sym, and for its Jacobian */
    int sym_per_call;             /* samples per Jacobian call (each is symmetry->n configurations) */
    int8_t *sym_cfgs;             /* (sym_per_call * n, N) the g s */
    tqs_complex *sym_lp;          /* (sym_per_call * n) log psi(g s) */
    double *sym_jac, *sym_w;      /* (2 sym_per_call n, P) their rows; (2 sym_per_call n) the weights */
    struct tqs_symmetry *moves;   /* sampled psi_sym: the whole group of opt.symmetry's kind (every
                                     translation), the sampler's symmetry moves */
    double *weights;              /* (M): 1/M, or the enumeration weights */
    int chains_ready;             /* the chains are thermalised for sampler.power (set by the first
                                     sampling, or by tqs_vmc_set_chains) */
    /* opt.rollback: the parameters of the lowest energy so far, its estimate, the learning rate's factor */
    double *best;                 /* (P) */
    double best_energy, best_error, lr_scale;
    int have_best, rollbacks;     /* rollbacks: how many steps were undone */
} tqs_vmc;
TQSDEF int  tqs_vmc_init(tqs_vmc *v, const tqs_hamiltonian *H, tqs_vit *model, const tqs_vmc_options *opt);
TQSDEF void tqs_vmc_free(tqs_vmc *v);
/* One SR step: sample (or enumerate), local energies, Jacobian, solve, update. */
TQSDEF int  tqs_vmc_step(tqs_vmc *v, tqs_step_info *info);
/* Changes the run's length to n_steps (>= the steps done, > opt.warmup): the
 * schedules follow the new length from the next step on. For a program that
 * plans a run by the clock (ground_state --time-limit re-plans every step). */
TQSDEF int  tqs_vmc_set_steps(tqs_vmc *v, int n_steps);
/* Starts this process's chains from the given configurations (sampler.n_chains
 * of them, (n_chains, N), each +1/-1 with the magnetisation of the chain's
 * current one) and counts them as thermalised for the training's samples:
 * the first step then samples without thermalising. For a program that has
 * walked the same chains already (ground_state --time-limit times its first
 * steps on a trial run and hands its chains on). Before the first step only. */
TQSDEF int  tqs_vmc_set_chains(tqs_vmc *v, const int8_t *states);
/* Energy statistics of the current model from n_samples fresh samples (the
 * driver's chains continue), or exactly with opt.exact. */
TQSDEF int  tqs_vmc_evaluate(tqs_vmc *v, int n_samples, tqs_step_info *info);
/* The same, and the observables of the same samples: the energy comes from
 * the observables' bonds (tqs_observables_energy, the same numbers as the
 * local energy's), so one batched pass of amplitudes serves both. o: from
 * tqs_observables_init with room for the evaluation's samples (n_samples
 * rounded up to a multiple of the chains); with opt.exact, over the
 * enumeration, whose entries are orbit representatives, so o must average
 * over all N sites (ref_sites NULL). One process only. */
TQSDEF int  tqs_vmc_evaluate_observables(tqs_vmc *v, int n_samples, tqs_step_info *info, tqs_observables *o);

/* ===================================================================== */
/* File I/O: the model file                                              */
/* ===================================================================== */
/* Little-endian: "TQSMODEL", uint32 version 2, int32 Lx Ly b d h n_layers ff
 * attention, uint64 n_params, float64 J1 J2 (the couplings the model was
 * trained at, NaN if not recorded), int32 trained_symmetry (0-3, as in
 * tqs_vit), n_params float64, uint32 CRC-32 (zlib's) of every byte before
 * it. A model with a sign rule is written as version 3: the same with an
 * int32 sign_rule after trained_symmetry (a model without one stays version
 * 2, byte for byte). Version 1 (no J1, J2, trained_symmetry) is still read,
 * with J1 = J2 = NAN and trained_symmetry 0. Saving writes PATH.tmp and
 * renames it over PATH. */
TQSDEF uint32_t tqs_crc32(uint32_t crc, const void *data, size_t len);
TQSDEF int tqs_vit_save(const tqs_vit *model, const char *path);
TQSDEF int tqs_vit_load(tqs_vit *model, const char *path);
/* Parses a model file held in memory (what tqs_vit_load does after reading). */
TQSDEF int tqs_vit_from_bytes(tqs_vit *model, const unsigned char *buf, size_t len);
/* Atomic write of a whole buffer: PATH.tmp, flush, close, rename. */
TQSDEF int tqs_write_file_atomic(const char *path, const void *buf, size_t len);
/* Reads a whole file into a fresh TQS_MALLOC buffer (at most max_len bytes). */
TQSDEF int tqs_read_file(const char *path, unsigned char **buf, size_t *len, size_t max_len);

/* Configurations as text: one per line, N integers +1 or -1 separated by
 * blanks; blank lines and lines starting with '#' are skipped. Parses all of
 * text[0..len) (which need not end in a NUL) into a fresh TQS_MALLOC array
 * (count, N) before returning, so a bad line yields an error naming it and
 * no configurations. */
TQSDEF int tqs_parse_configs(const char *text, size_t len, int N, int8_t **configs, long *count);

/* Checkpoint of a run: everything tqs_vmc_step needs to continue exactly as
 * if never interrupted (model, step, chain configurations and random
 * streams, SPRING's prior, the rollback's best parameters) and the run
 * itself (couplings, options, the symmetry sector of psi_sym, the options'
 * note). Little-endian:
 * "TQSCKPT1", uint32 version 4, uint64 step, uint32 n_chains (0 with exact
 * enumeration), uint32 N, n_chains*N int8 spins, n_chains*4 uint64
 * generator states, uint64 length L, L bytes of a model file, uint64 P, P
 * doubles of the prior (P = 0 without momentum), uint64 length K, K bytes
 * of the run record (text, "key value" lines, numbers that round-trip
 * exactly, the note last), the rollback's state (uint32 have_best, uint32
 * rollbacks, doubles lr_scale, best_energy, best_error, uint64 B, B doubles
 * of the best parameters, B = 0 before a best), uint32 CRC-32 of every byte
 * before it. Versions 1 to 3 (1: no prior, no run record; 2: no run record;
 * 3: no rollback state) are still read. Written atomically.
 * Loading requires a tqs_vmc made with the same lattice, model shape, chain
 * count (of all processes) and, from version 3, the same run: J1, J2 and
 * every option that changes the trajectory (a difference is refused with
 * TQS_EINVAL, naming it); it replaces the parameters, step and chains. With
 * several processes both are collective: the file holds every process's
 * chains, process 0 writes it, and every process returns the outcome; a run
 * saved by R processes loads into any number of them. */
TQSDEF int tqs_vmc_save_checkpoint(const tqs_vmc *v, const char *path);
TQSDEF int tqs_vmc_load_checkpoint(tqs_vmc *v, const char *path);
TQSDEF int tqs_vmc_checkpoint_from_bytes(tqs_vmc *v, const unsigned char *buf, size_t len);
/* What a checkpoint file holds, without a run: enough to rebuild the run
 * it continues (the example programs' --resume FILE). */
#define TQS_NOTE_MAX 4096
typedef struct tqs_checkpoint_info {
    int version;                  /* 1 to 4 */
    long step;                    /* steps done */
    int n_chains, N;              /* chains in the file (0: exact enumeration), sites */
    tqs_vit_config cfg;           /* the model's */
    int has_run;                  /* from version 3: the run's fields below are set */
    double J1, J2;
    tqs_vmc_options opt;          /* its options, defaults resolved (pointers NULL) */
    int symmetry;                 /* 0: psi; 1: psi_sym over tqs_symmetry_init's group; 2: the translations alone;
                                     3: tqs_symmetry_init_point's group */
    int symmetry_b;               /* the group's patch size */
    double chi_x, chi_y, chi_flip, chi_point[8];   /* the sector */
    char note[TQS_NOTE_MAX];      /* opt.note ("" if none) */
} tqs_checkpoint_info;
TQSDEF int tqs_vmc_checkpoint_info(tqs_checkpoint_info *info, const char *path);

/* ===================================================================== */
/* Exact diagonalisation in the Sz = 0 sector (N <= 24)                  */
/* ===================================================================== */
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

/* ===================================================================== */
/* Symmetrised wave function                                             */
/* ===================================================================== */
/* psi_sym(s) = sum_{g in G} chi(g) psi(g s), G = translations x point group
 * (C4v for Lx = Ly, C2v otherwise) x global spin flip, chi a one-dimensional
 * character: the projection of psi onto one symmetry sector.
 * An element is (dx, dy, p, f): (g s)_i = (-1)^f s_j, j = p(site i) + (dx, dy).
 * Point elements p: for C4v p = 4 m + k is "mirror x -> -x (if m), then k
 * quarter turns (x, y) -> (-y, x)"; for C2v p = 2 my + mx, mirrors x -> -x, y -> -y.
 * chi(g) = chi_x^dx chi_y^dy chi_point[p] chi_flip^f.
 * A ViT with patch b is already invariant under translations by multiples of
 * b, so with b > 0 only the b*b translations inside a patch are summed
 * (psi_sym changes by the constant factor (N/b^2), which cancels everywhere);
 * this needs chi_x^b = chi_y^b = 1, which set_characters checks. b = 0 sums
 * every translation. */
typedef struct tqs_symmetry {
    int Lx, Ly, N, b;
    int n_point;             /* 8 (C4v) or 4 (C2v) */
    int n_full;              /* |G| = N * n_point * 2 */
    int n;                   /* elements summed: (b*b or N translations) x n_point x 2, without the flip
                                (tqs_symmetry_init_point) x n_point, or the translations alone */
    int translations_only;   /* made by tqs_symmetry_init_translations */
    int no_flip;             /* made by tqs_symmetry_init_point: the flip is not summed */
    double chi_x, chi_y, chi_flip, chi_point[8];
    int *perm;               /* (n, N) j of each site i */
    int8_t *flip;            /* (n) f */
    double *chi;             /* (n) chi(g) */
} tqs_symmetry;
TQSDEF int  tqs_symmetry_init(tqs_symmetry *G, int Lx, int Ly, int b);  /* every character +1 */
/* The translations alone (the b*b inside a patch, or all N with b = 0): the
 * symmetries the patches break, n = b*b elements (characters chi_x, chi_y;
 * the point-group and flip characters are not used). */
TQSDEF int  tqs_symmetry_init_translations(tqs_symmetry *G, int Lx, int Ly, int b);
/* The b*b translations and the point group, without the spin flip: n = b*b
 * n_point elements, half the cost of the full group. On 4x4 at J2 = 0.5 the
 * states that trap sampled SR are of other momenta and point-group
 * characters, while the flip-odd states at momentum 0 lie far higher
 * (examples/README.md, "What a stalled run is"); chi_flip is not used. */
TQSDEF int  tqs_symmetry_init_point(tqs_symmetry *G, int Lx, int Ly, int b);
TQSDEF void tqs_symmetry_free(tqs_symmetry *G);
/* out = g in for the element (dx, dy, p, f). */
TQSDEF int  tqs_symmetry_apply(const tqs_symmetry *G, int8_t *out, const int8_t *in, int dx, int dy, int p, int f);
/* Sets the characters (each +1 or -1) and the per-element table. */
TQSDEF int  tqs_symmetry_set_characters(tqs_symmetry *G, double chi_x, double chi_y, const double *chi_point, double chi_flip);
/* <psi|g|psi> / <psi|psi> for a real state psi on the Sz = 0 basis (e.g. the
 * Lanczos ground state), for the element (dx, dy, p, f). */
TQSDEF double tqs_symmetry_expectation(const tqs_symmetry *G, const tqs_basis *basis, const double *psi,
                                       int dx, int dy, int p, int f);
/* Characters of an exact eigenstate: <g> of each generator (unit translations,
 * the point elements, the flip), which must be +1 or -1 up to tol; *worst
 * receives the largest | |<g>| - 1 | over the generators. */
TQSDEF int  tqs_symmetry_characters_exact(tqs_symmetry *G, const tqs_basis *basis, const double *psi, double tol, double *worst);
/* Characters of the ground state of H, from the library's Lanczos (N <= 24). */
TQSDEF int  tqs_symmetry_characters_ground_state(tqs_symmetry *G, const tqs_hamiltonian *H);
/* The translations' sector of Marshall's sign rule, for a translations-only
 * group on an even-by-even lattice: psi(s) = (-1)^(up spins on sublattice A)
 * phi(s) with phi > 0 translation invariant (exact at J2 = 0); a unit
 * translation swaps the sublattices, so psi(T s) = (-1)^(N/2) psi(s), and
 * N/2 = Lx Ly / 2 is even: chi_x = chi_y = +1. The exact ground states of
 * 4x4 (J2 = 0, 0.5) and 6x4 (J2 = 0.5) are in it (tests/test_sym.c), and
 * so is the one the samples of a trained 8x8 plain model showed at J2 = 0.5
 * (examples/README.md). TQS_EINVAL on an odd side
 * or a group with the point group. */
TQSDEF int  tqs_symmetry_set_marshall(tqs_symmetry *G);
/* Characters of a variational state from M samples of |psi|^2 (taken far
 * enough apart to be nearly independent): <g> = E[psi(g s)/psi(s)] (real part)
 * for each generator (0: x translation, 1: y translation, 2: flip, 3..: point
 * elements 1..), rounded to +-1. expect and error (may be NULL; 2 + n_point
 * entries) receive <g> and its standard error. Fails with TQS_ENUMERIC when
 * some |<g>| is below 3 standard errors: the sign is not determined (psi is
 * not close to one sector). A translations-only group (tqs_symmetry_init_
 * translations) needs only the two translations: the others are not
 * measured (<g> = 1, error 0 reported; their characters are not used). */
TQSDEF int  tqs_symmetry_characters_sampled(tqs_symmetry *G, const tqs_amplitude *amp, const int8_t *samples,
                                            const tqs_complex *logpsi, int M, double *expect, double *error);

/* psi_sym as an amplitude: each configuration costs G->n evaluations of the
 * inner amplitude, made in batches of inner->max_batch. */
typedef struct tqs_symmetric_amplitude {
    const tqs_symmetry *G;
    tqs_amplitude inner;
    int chunk;               /* configurations per inner batch */
    int8_t *buf;             /* (chunk * G->n, N) */
    tqs_complex *lp;         /* (chunk * G->n) */
} tqs_symmetric_amplitude;
TQSDEF int  tqs_symmetric_amplitude_init(tqs_symmetric_amplitude *sa, tqs_amplitude *out,
                                         const tqs_symmetry *G, const tqs_amplitude *inner);
TQSDEF void tqs_symmetric_amplitude_free(tqs_symmetric_amplitude *sa);

/* ===================================================================== */
/* Attention analysis                                                    */
/* ===================================================================== */
/* Over K configurations (e.g. samples of |psi|^2) the attention weights
 * A(s) of every layer and head, (n_layers, h, n, n):
 *   mean = (1/K) sum_s A(s),  std = sqrt((1/K) sum_s (A(s) - mean)^2)  elementwise,
 *   dep[l h + mu] = (1/K) sum_s ||A(s) - mean||_F / ||mean||_F   (input dependence),
 * the last 0 for factored attention by construction. Any output may be NULL. */
TQSDEF int tqs_vit_attention_stats(const tqs_vit *model, tqs_vit_ws *ws, double *dep, double *mean, double *std,
                                   const int8_t *configs, int K);
/* A map over (query P, key Q), (n, n), averaged over P at fixed displacement
 * Q - P: out (gx, gy), out[dx * gy + dy] (gx = Lx / b, gy = Ly / b). */
TQSDEF int tqs_vit_displacement_map(const tqs_vit *model, double *out, const double *map);

/* ===================================================================== */
/* The recipe: plain training, then psi_sym                              */
/* ===================================================================== */
/* The protocol this project measured best on 4x4 to 6x6 (examples/README.md,
 * "Time to accuracy"), as one driver: SR on the plain ViT, then psi_sym
 * over the b*b translations inside a patch and the point group
 * (tqs_symmetry_init_point), projected on the ground state's sector and
 * trained on from the plain phase's parameters. Each phase is a tqs_vmc
 * run in r->vmc (the plain one freed when the second starts; the second
 * thermalises its own chains, as a run started from a model file does).
 * With the same options it takes bit for bit the steps of
 *   ground_state --steps P --sym-steps Q --seed S
 * and of the two commands of a single phase each
 *   ground_state --plain --samples 512 --steps P --seed S --save p.tqs
 *   ground_state --init p.tqs --sym-train point --steps Q --seed S
 * (tests/test_cli.c checks both). Fixed step counts: a program that plans
 * by the clock sets them (ground_state --time-limit; tqs_recipe_for_budget
 * for the split the measurements chose). */
enum { TQS_RECIPE_POINT = 0, TQS_RECIPE_FULL = 1, TQS_RECIPE_TRANSLATIONS = 2, TQS_RECIPE_PLAIN = 3 };
typedef struct tqs_recipe_options {   /* zero means default */
    int plain_steps;          /* steps of the plain phase, default 1500 */
    int sym_steps;            /* steps of the psi_sym phase, default plain_steps / 6 (250) */
    int group;                /* psi_sym over TQS_RECIPE_POINT (default), _FULL (tqs_symmetry_init) or
                                 _TRANSLATIONS; TQS_RECIPE_PLAIN: the plain phase alone */
    int skip_plain;           /* 1: no plain phase; psi_sym from the model as it is (a model trained
                                 before), its sector from that model at the first step */
    tqs_vmc_options plain;    /* the plain phase's options: zero fields take the recipe's (512 samples
                                 up to 24 sites, 1024 above), then tqs_vmc_options_defaults';
                                 n_steps is plain_steps */
    tqs_vmc_options sym;      /* the psi_sym phase's: zero fields take the recipe's (512 samples, lr 0.1
                                 (0.05 above 64 sites) to 0.01, max_distance 0.1) and the plain phase's seed, exact, comm
                                 and note; n_steps is sym_steps, symmetry is the recipe's group */
} tqs_recipe_options;
/* Fills every zero field with the recipe's default for a lattice of
 * n_sites (the phases' options as tqs_recipe_init uses them). Idempotent. */
TQSDEF void tqs_recipe_options_defaults(tqs_recipe_options *opt, int n_sites);
/* What the measurements chose for a wall-clock budget (examples/README.md,
 * "Time to accuracy", 2-core machine): the plain phase's share of the
 * time, its samples, the model width, and whether a psi_sym phase pays
 * for itself at all. minutes <= 0: fixed step counts (share unused). */
typedef struct tqs_recipe_budget {
    double plain_share;       /* of the budget: 1/3 below 30 minutes, 1/4 below 90, 1/6 from 90 (d = 24) */
    int plain_samples;        /* 512 up to 24 sites, 1024 above */
    int d;                    /* model width: 16, 24 from 90 minutes on more than 24 sites */
    int group;                /* TQS_RECIPE_POINT; TQS_RECIPE_PLAIN (4x6 up to 5 minutes);
                                 TQS_RECIPE_TRANSLATIONS above 36 sites */
} tqs_recipe_budget;
TQSDEF tqs_recipe_budget tqs_recipe_for_budget(int Lx, int Ly, double minutes);
/* The sign rule the measurements chose for a new model (its
 * tqs_vit_config.sign_rule): TQS_SIGN_MARSHALL above 36 sites on an even
 * lattice with J1 > 0 and J2 <= 0.55 J1, TQS_SIGN_NONE otherwise. On 10x10
 * at J2 = 0.5 the networks that stalled had not learned Marshall's sign;
 * given it, seeds 1-3 ended at +1.44e-2, +1.63e-2, +3.11e-2 against
 * +1.82e-2, +8.00e-2, +4.15e-2 in the same steps, and a stalled 8x8 seed
 * at +1.46e-2 against +7.29e-2 (examples/README.md, "Marshall's sign on
 * 10x10"). Up to 36 sites the measured recipes run without it; beyond
 * J2 = 0.55 the sign holds less (the exact 4x4 ground state's weight on
 * it: 0.97 at J2 = 0.5, 0.92 at 0.55, 0.80 at 0.6, 0.29 at 0.7) and the
 * stripe phase has another. */
TQSDEF int tqs_recipe_sign_rule(int Lx, int Ly, double J1, double J2);
typedef struct tqs_recipe {
    const tqs_hamiltonian *H;
    tqs_vit *model;
    tqs_recipe_options opt;   /* defaults resolved */
    int phase;                /* 0: plain, 1: psi_sym, 2: done */
    tqs_vmc vmc;              /* the current phase's driver: its step, options, amplitude */
    tqs_symmetry group;       /* psi_sym's group and sector (from the second phase on) */
    int have_group;
    int sector_fallback;      /* 0: psi_sym over the group asked for; 1: over the translations alone,
                                 2: none (the recipe ended after the plain phase; a caller with
                                 time left may train the plain model on), because the
                                 ground state (up to 24 sites) or the plain model's samples are not
                                 in one sector of the larger group: a degenerate ground state, a
                                 sector that is not one-dimensional, or a sign the samples leave open */
    int sector_marshall;      /* 1: the samples left the translations' sector open (above 24 sites),
                                 and psi_sym takes Marshall's, chi_x = chi_y = +1 (even lattices) */
} tqs_recipe;
TQSDEF int  tqs_recipe_init(tqs_recipe *r, const tqs_hamiltonian *H, tqs_vit *model, const tqs_recipe_options *opt);
/* One step of the current phase. A step after the plain phase's last one
 * first begins the psi_sym phase (tqs_recipe_next_phase); after the last
 * step of all, r->phase is 2 and a further step is refused. */
TQSDEF int  tqs_recipe_step(tqs_recipe *r, tqs_step_info *info);
/* Ends the plain phase now (after its last step, or early) and begins
 * psi_sym: the sector from the plain model (tqs_symmetry_sector), the
 * second run from its parameters. With TQS_RECIPE_PLAIN, or in psi_sym:
 * the recipe is done (phase 2). Where the group has no sector to project on
 * (sector_fallback above) it takes the translations alone, and where they
 * have none either it ends with the plain model (phase 2, TQS_OK); above 24
 * sites on an even lattice, the translations then take Marshall's sector
 * (sector_marshall). */
TQSDEF int  tqs_recipe_next_phase(tqs_recipe *r);
/* Continues from a checkpoint of either phase (tqs_vmc_save_checkpoint of
 * r->vmc): a psi_sym checkpoint begins the second phase in its sector. The
 * run's options must be those of the checkpoint (tqs_vmc_load_checkpoint). */
TQSDEF int  tqs_recipe_load_checkpoint(tqs_recipe *r, const char *path);
/* Energy statistics of the trained state (psi_sym once its phase has
 * begun) from n_samples fresh samples, or exactly with opt.*.exact. */
TQSDEF int  tqs_recipe_evaluate(tqs_recipe *r, int n_samples, tqs_step_info *info);
TQSDEF void tqs_recipe_free(tqs_recipe *r);
/* The sector psi_sym is projected on (G from tqs_symmetry_init, _point or
 * _translations): the characters of the exact ground state (N <= 24; its
 * energy into *exact_energy, if given, NAN otherwise), or those 4096
 * samples of the plain amplitude show (chains chains from ordered starts,
 * stream seed + 1000, 50 sweeps of thermalisation, two sweeps apart;
 * TQS_ENUMERIC if a sign is not determined). */
TQSDEF int  tqs_symmetry_sector(tqs_symmetry *G, const tqs_hamiltonian *H, const tqs_amplitude *plain, int chains,
                                uint64_t seed, double *exact_energy);

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
#include <time.h>
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

/* Threads on a machine that is not idle. A parallel region costs about a
 * microsecond when every thread has a core, but when another process holds
 * a core, the thread sharing it runs in time slices of milliseconds: each
 * region ends in a barrier that may wait for it, and an even split of the
 * work makes the region as slow as that thread. So
 *  1. a region whose work is below TQS_PAR_MIN_WORK operations (multiply-
 *     adds, copies) runs on the calling thread alone (OpenMP's if clause);
 *  2. the work is handed out in chunks (schedule(guided), or dynamic chunks
 *     of samples), so that a thread with a core of its own takes more of it;
 *  3. the regions of the model (forward, Jacobian) time themselves: when the
 *     threads ran out of work at times further apart than a quarter of the
 *     region in two regions in a row (and more, see tqs__par_report), another
 *     process is taking a core, and the threshold is raised 64 times (up to
 *     512 times in all), so that only regions long against a time slice
 *     stay parallel; it falls back by half every 2 s, and regions that
 *     wait again raise it again. The raised threshold holds for every
 *     region, not only the model's (eightfold and the model's alone left
 *     two threads 0-17% behind one: README, "A busy machine").
 * Each output is computed by one thread in a fixed order whichever thread
 * that is, so results stay bitwise independent of the thread count and of
 * these choices. The numbers were measured with bench --busy (README,
 * Performance). The state of 3 is per process, like tqs_last_error. */
#ifndef TQS_PAR_MIN_WORK
#define TQS_PAR_MIN_WORK 1e6
#endif
static double tqs__par_scale = 1.0, tqs__par_scale_time;   /* the raised threshold and when it was last set */
static int tqs__par_waits;                                 /* regions in a row that waited */
#ifdef _OPENMP
static double tqs__now(void) { return omp_get_wtime(); }
#else
static double tqs__now(void) { return 0.0; }
#endif
/* Whether a model region of this much work should use the threads. */
static int tqs__par_adaptive(double work) {
    if (tqs__par_scale > 1.0) {
        double t = tqs__now();
        while (tqs__par_scale > 1.0 && t - tqs__par_scale_time > 2.0) { tqs__par_scale *= 0.5; tqs__par_scale_time += 2.0; }
        if (tqs__par_scale < 1.0) tqs__par_scale = 1.0;
    }
    return work >= (double)TQS_PAR_MIN_WORK * tqs__par_scale;
}
#ifdef _OPENMP   /* (only OpenMP's if clauses use it) */
/* Every other region (the SR kernels, the local energy, the sampler's
 * batches) follows the threshold the model's regions set: they cannot time
 * themselves cheaply, but a core taken from the model is taken from them. */
static int tqs__par(double work) { return tqs__par_adaptive(work); }
#endif
/* Each thread of a timed region notes when it ran out of chunks. */
#define TQS__MAX_TEAM 64
static void tqs__par_finished(double *finish, int *team) {
#ifdef _OPENMP
    int t = omp_get_thread_num();
    if (t < TQS__MAX_TEAM) finish[t] = tqs__now();
    if (t == 0) *team = omp_get_num_threads() < TQS__MAX_TEAM ? omp_get_num_threads() : TQS__MAX_TEAM;
#else
    finish[0] = 0.0; *team = 1;
#endif
}
/* After a parallel region of n_chunks chunks that ran from t0 to t1, whose
 * threads ran out of chunks at finish[0 .. team-1]. With dynamic chunks the
 * threads finish within a chunk of each other unless one of them was not
 * running: a spread of the finishing times longer than a quarter of the
 * region, than 1 ms (a time slice is milliseconds; waking an idle thread,
 * tens of microseconds, or about a millisecond for an idle virtual CPU) and
 * than three chunks means another process took a core. Either thread can be
 * the one held up (the scheduler moves them), so the spread counts, not the
 * calling thread's wait. Two such regions in a row (one can be a hiccup of a
 * virtual machine) raise the threshold; while it is raised (a probe, after
 * it has fallen back by half), one such region raises it again. */
static void tqs__par_report(double t0, double t1, const double *finish, int team, long n_chunks) {
    double lo = finish[0], hi = finish[0], region = t1 - t0, chunk = region * team / (double)n_chunks, spread;
    int t;
    for (t = 1; t < team; t++) { lo = finish[t] < lo ? finish[t] : lo; hi = finish[t] > hi ? finish[t] : hi; }
    spread = hi - lo;
    if (spread > 0.25 * region && spread > 1e-3 && spread > 3 * chunk) tqs__par_waits++;
    else tqs__par_waits = 0;
    if (tqs__par_waits >= (tqs__par_scale > 1.0 ? 1 : 2)) {   /* while backing off, one is enough */
        tqs__par_scale = tqs__par_scale * 64.0 > 512.0 ? 512.0 : tqs__par_scale * 64.0;
        tqs__par_scale_time = t1;
        tqs__par_waits = 0;
    }
}

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
    case TQS_ECOMM: return "communication between processes failed";
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

/* Prefixes the last error with a file name (for loaders); passes rc through. */
static int tqs__fail_in_file(int rc, const char *path) {
    char msg[sizeof tqs__errbuf];
    if (rc == TQS_OK) return rc;
    memcpy(msg, tqs__errbuf, sizeof msg);
    return tqs__fail(rc, "%s: %s", path, msg);
}

/* Wall-clock seconds, for the phase timings of a step: OpenMP's clock when
 * available, else clock() (CPU time, which is wall time for one thread). */
static double tqs__seconds(void) {
#ifdef _OPENMP
    return omp_get_wtime();
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
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

TQSDEF int tqs_rng_seed(tqs_rng *rng, uint64_t seed, uint64_t stream) {
    /* Mix seed and stream through splitmix64 so that nearby (seed, stream)
     * pairs give unrelated states; the state is never all zero in practice. */
    uint64_t x = seed, a, y;
    int k;
    if (!rng) return tqs__fail(TQS_EINVAL, "rng_seed: null generator");
    a = tqs__splitmix64(&x);
    y = a ^ (stream * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL);
    for (k = 0; k < 4; k++) rng->s[k] = tqs__splitmix64(&y);
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3])) rng->s[0] = 1;
    return TQS_OK;
}

static uint64_t tqs__rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

TQSDEF uint64_t tqs_rng_u64(tqs_rng *rng) {
    uint64_t *s, result, t;
    if (!rng) return 0;   /* (no room for an error code: a null generator gives zeros) */
    s = rng->s;
    result = tqs__rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;
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
    uint64_t limit, r;
    if (n == 0 || !rng) return 0;
    limit = UINT64_MAX - UINT64_MAX % n;
    do { r = tqs_rng_u64(rng); } while (r >= limit);
    return r % n;
}

TQSDEF double tqs_rng_normal(tqs_rng *rng) {
    double u1 = 1.0 - tqs_rng_uniform(rng), u2 = tqs_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

TQSDEF int tqs_random_config(int8_t *s, int N, tqs_rng *rng) {
    int i;
    if (!s || !rng || N < 2 || N % 2) return tqs__fail(TQS_EINVAL, "random_config: null pointer or N = %d not even and >= 2", N);
    for (i = 0; i < N; i++) s[i] = (int8_t)(i < N / 2 ? 1 : -1);
    for (i = N - 1; i > 0; i--) { /* Fisher-Yates shuffle */
        int j = (int)tqs_rng_below(rng, (uint64_t)i + 1);
        int8_t t = s[i]; s[i] = s[j]; s[j] = t;
    }
    return TQS_OK;
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

/* Bit helpers (basis ranking, exact diagonalisation, enumeration) */
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

static int tqs__ctz(uint32_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctz(x);
#else
    int c = 0;
    while (!(x & 1u)) { x >>= 1; c++; }
    return c;
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

TQSDEF int tqs_translate(const tqs_lattice *lat, int8_t *out, const int8_t *in, int dx, int dy) {
    int x, y;
    if (!lat || !out || !in || out == in || lat->Lx < 1 || lat->Ly < 1)
        return tqs__fail(TQS_EINVAL, "translate: null pointer, uninitialised lattice or out == in");
    for (x = 0; x < lat->Lx; x++)
        for (y = 0; y < lat->Ly; y++)
            out[tqs_site(lat, x + dx, y + dy)] = in[x * lat->Ly + y];
    return TQS_OK;
}

TQSDEF int tqs_marshall_parity(const int8_t *s, int Lx, int Ly) {
    int x, y, up = 0;
    for (x = 0; x < Lx; x++)
        for (y = x & 1; y < Ly; y += 2) up += s[x * Ly + y] > 0;
    return up & 1;
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
    const int *bd;
    int k, half, sum1 = 0, sum2 = 0;
    if (!H || !H->lat.bonds || !s) return NAN;
    bd = H->lat.bonds; half = H->lat.n_bonds / 2;
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
/* Model parameters                                                      */
/* ===================================================================== */
#define TQS__LN_EPS 1e-6

/* Validates cfg; on success fills the derived sizes. */
TQSDEF int tqs_vit_config_check(const tqs_vit_config *c) {
    if (!c) return tqs__fail(TQS_EINVAL, "model: null configuration");
    if (c->Lx < 4 || c->Ly < 4 || c->Lx % 2 || c->Ly % 2 || c->Lx > 1024 || c->Ly > 1024)
        return tqs__fail(TQS_EINVAL, "model: Lx and Ly must be even, >= 4 and <= 1024 (got %d x %d)", c->Lx, c->Ly);
    if (c->b < 1 || c->b > 16 || c->Lx % c->b || c->Ly % c->b)
        return tqs__fail(TQS_EINVAL, "model: patch size %d must divide Lx = %d and Ly = %d (and be <= 16)", c->b, c->Lx, c->Ly);
    if (c->d < 1 || c->d > 4096) return tqs__fail(TQS_EINVAL, "model: d must be in [1, 4096] (got %d)", c->d);
    if (c->h < 1 || c->h > c->d || c->d % c->h)
        return tqs__fail(TQS_EINVAL, "model: heads %d must divide d = %d", c->h, c->d);
    if (c->n_layers < 1 || c->n_layers > 64)
        return tqs__fail(TQS_EINVAL, "model: layers must be in [1, 64] (got %d)", c->n_layers);
    if (c->ff < 1 || c->ff > 64) return tqs__fail(TQS_EINVAL, "model: ff must be in [1, 64] (got %d)", c->ff);
    if (c->attention != TQS_ATTN_FACTORED && c->attention != TQS_ATTN_STANDARD)
        return tqs__fail(TQS_EINVAL, "model: attention must be 0 (factored) or 1 (standard), got %d", c->attention);
    if (c->sign_rule != TQS_SIGN_NONE && c->sign_rule != TQS_SIGN_MARSHALL)
        return tqs__fail(TQS_EINVAL, "model: sign rule must be 0 (none) or 1 (Marshall's), got %d", c->sign_rule);
    if ((double)tqs_vit_param_count(c) > 2e9)
        return tqs__fail(TQS_ETOOBIG, "model: %.3g parameters is too many", (double)tqs_vit_param_count(c));
    return TQS_OK;
}

/* Lays out the tensors in file order; returns the total count. */
static size_t tqs__vit_layout(tqs_vit_layer_offsets *layers, size_t *head, const tqs_vit_config *c) {
    size_t d = (size_t)c->d, n = (size_t)(c->Lx / c->b) * (size_t)(c->Ly / c->b), h = (size_t)c->h;
    size_t fd = (size_t)c->ff * d, at = 0;
    int l;
#define TQS__TAKE(dst, size) do { if (dst) *(dst) = at; at += (size); } while (0)
    TQS__TAKE(head ? &head[0] : NULL, d * (size_t)c->b * (size_t)c->b); /* W_e */
    TQS__TAKE(head ? &head[1] : NULL, d);                               /* b_e */
    for (l = 0; l < c->n_layers; l++) {
        tqs_vit_layer_offsets tmp, *L = layers ? &layers[l] : &tmp;
        memset(L, 0, sizeof *L);
        TQS__TAKE(&L->ln1_g, d); TQS__TAKE(&L->ln1_b, d);
        if (c->attention == TQS_ATTN_FACTORED) { TQS__TAKE(&L->alpha, h * n); }
        else {
            TQS__TAKE(&L->Wq, d * d); TQS__TAKE(&L->bq, d);
            TQS__TAKE(&L->Wk, d * d); TQS__TAKE(&L->bk, d);
            TQS__TAKE(&L->pos, h * n);
        }
        TQS__TAKE(&L->Wv, d * d); TQS__TAKE(&L->bv, d);
        TQS__TAKE(&L->Wo, d * d); TQS__TAKE(&L->bo, d);
        TQS__TAKE(&L->ln2_g, d); TQS__TAKE(&L->ln2_b, d);
        TQS__TAKE(&L->W1, fd * d); TQS__TAKE(&L->b1, fd);
        TQS__TAKE(&L->W2, d * fd); TQS__TAKE(&L->b2, d);
    }
    { /* head: gamma_h beta_h, W_r b_r gamma_r beta_r, W_i b_i gamma_i beta_i */
        static const int sizes_in_d[10] = {1, 1, -1, 1, 1, 1, -1, 1, 1, 1};
        int k;
        for (k = 0; k < 10; k++) TQS__TAKE(head ? &head[2 + k] : NULL, sizes_in_d[k] < 0 ? d * d : d);
    }
#undef TQS__TAKE
    return at;
}

TQSDEF void tqs_vit_config_defaults(tqs_vit_config *c) {
    if (!c) return;
    if (c->b == 0) c->b = 2;
    if (c->d == 0) c->d = 16;
    if (c->h == 0) c->h = 2;
    if (c->n_layers == 0) c->n_layers = 2;
    if (c->ff == 0) c->ff = 2;
}

TQSDEF size_t tqs_vit_param_count(const tqs_vit_config *cfg) {
    tqs_vit_config full, *c = &full;
    if (!cfg) return 0;
    full = *cfg;
    tqs_vit_config_defaults(&full);
    if (c->b < 1 || c->d < 1 || c->h < 1 || c->n_layers < 1 || c->n_layers > 64 || c->ff < 1 ||
        c->Lx < 1 || c->Ly < 1 || c->Lx > 1024 || c->Ly > 1024 || c->d > 4096 || c->b > 16 || c->ff > 64)
        return 0;
    return tqs__vit_layout(NULL, NULL, c);
}

/* Xavier-uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)). */
static void tqs__xavier(double *w, size_t rows, size_t cols, tqs_rng *rng) {
    double a = sqrt(6.0 / (double)(rows + cols));
    size_t i;
    for (i = 0; i < rows * cols; i++) w[i] = a * (2.0 * tqs_rng_uniform(rng) - 1.0);
}

static void tqs__fill(double *w, size_t n, double value) {
    size_t i;
    for (i = 0; i < n; i++) w[i] = value;
}

/* Allocates the model's tables and parameter block (parameters not set). */
static int tqs__vit_alloc(tqs_vit *m, const tqs_vit_config *c) {
    size_t head[12];
    int rc, P, Q, e, bb;
    tqs_lattice lat;
    memset(m, 0, sizeof *m);
    m->J1 = m->J2 = NAN;
    if ((rc = tqs_vit_config_check(c)) != 0) return rc;
    m->cfg = *c;
    m->N = c->Lx * c->Ly;
    m->gx = c->Lx / c->b; m->gy = c->Ly / c->b; m->n = m->gx * m->gy;
    m->dh = c->d / c->h;
    bb = c->b * c->b;
    m->layer = (tqs_vit_layer_offsets *)tqs__alloc(sizeof(tqs_vit_layer_offsets) * (size_t)c->n_layers);
    if (!m->layer) return tqs__fail(TQS_ENOMEM, "model: out of memory");
    m->n_params = tqs__vit_layout(m->layer, head, c);
    m->We = head[0]; m->be = head[1];
    m->lnh_g = head[2]; m->lnh_b = head[3]; m->Wr = head[4]; m->br = head[5];
    m->lnr_g = head[6]; m->lnr_b = head[7]; m->Wi = head[8]; m->bi = head[9];
    m->lni_g = head[10]; m->lni_b = head[11];
    m->params = (double *)tqs__alloc(sizeof(double) * m->n_params);
    m->patch_site = (int *)tqs__alloc(sizeof(int) * (size_t)m->n * (size_t)bb);
    m->disp = (int *)tqs__alloc(sizeof(int) * (size_t)m->n * (size_t)m->n);
    if (!m->params || !m->patch_site || !m->disp) {
        tqs_vit_free(m);
        return tqs__fail(TQS_ENOMEM, "model: out of memory for %zu parameters", tqs_vit_param_count(c));
    }
    lat.Lx = c->Lx; lat.Ly = c->Ly; lat.N = m->N; lat.n_bonds = 0; lat.bonds = NULL;
    for (P = 0; P < m->n; P++) {
        for (e = 0; e < bb; e++) m->patch_site[P * bb + e] = tqs_patch_site(&lat, c->b, P, e);
        for (Q = 0; Q < m->n; Q++) {
            int PX = P / m->gy, PY = P % m->gy, QX = Q / m->gy, QY = Q % m->gy;
            m->disp[P * m->n + Q] = tqs__mod(QX - PX, m->gx) * m->gy + tqs__mod(QY - PY, m->gy);
        }
    }
    return TQS_OK;
}

TQSDEF int tqs_vit_init(tqs_vit *m, const tqs_vit_config *cfg, uint64_t seed) {
    tqs_rng rng;
    size_t d, n, h, fd, bb;
    int rc, l;
    double *p;
    tqs_vit_config full, *c = &full;
    if (!m || !cfg) return tqs__fail(TQS_EINVAL, "model: null pointer");
    full = *cfg;
    tqs_vit_config_defaults(&full);
    if ((rc = tqs__vit_alloc(m, c)) != 0) return rc;
    d = (size_t)c->d; n = (size_t)m->n; h = (size_t)c->h; fd = (size_t)c->ff * d; bb = (size_t)(c->b * c->b);
    p = m->params;
    memset(p, 0, sizeof(double) * m->n_params);   /* biases and betas 0 */
    tqs_rng_seed(&rng, seed, 0);
    tqs__xavier(p + m->We, d, bb, &rng);
    for (l = 0; l < c->n_layers; l++) {
        const tqs_vit_layer_offsets *L = &m->layer[l];
        tqs__fill(p + L->ln1_g, d, 1.0);
        if (c->attention == TQS_ATTN_FACTORED) tqs__xavier(p + L->alpha, h, n, &rng);
        else {
            tqs__xavier(p + L->Wq, d, d, &rng);
            tqs__xavier(p + L->Wk, d, d, &rng);
            tqs__xavier(p + L->pos, h, n, &rng);
        }
        tqs__xavier(p + L->Wv, d, d, &rng);
        tqs__xavier(p + L->Wo, d, d, &rng);
        tqs__fill(p + L->ln2_g, d, 1.0);
        tqs__xavier(p + L->W1, fd, d, &rng);
        tqs__xavier(p + L->W2, d, fd, &rng);
    }
    tqs__fill(p + m->lnh_g, d, 1.0);
    tqs__xavier(p + m->Wr, d, d, &rng);
    tqs__fill(p + m->lnr_g, d, 1.0);
    tqs__xavier(p + m->Wi, d, d, &rng);
    tqs__fill(p + m->lni_g, d, 1.0);
    return TQS_OK;
}

TQSDEF void tqs_vit_free(tqs_vit *m) {
    if (!m) return;
    TQS_FREE(m->params); TQS_FREE(m->layer); TQS_FREE(m->patch_site); TQS_FREE(m->disp);
    memset(m, 0, sizeof *m);
}

/* Per-thread backward scratch of one sample with its two cotangents. */
#define TQS__T 8  /* register tile size of the dense products (see tqs__tile) */
/* Width of the transposed weights: O rounded up to whole tiles. */
static long tqs__padded(long O) { return (O + TQS__T - 1) / TQS__T * TQS__T; }

static size_t tqs__vit_slot_size(const tqs_vit *m) {
    size_t nd = (size_t)m->n * (size_t)m->cfg.d, d = (size_t)m->cfg.d;
    return 2 * (7 * nd + (size_t)m->n * (size_t)m->cfg.ff * d + 6 * d) + (size_t)m->n * (size_t)m->n;
}

/* Offsets in ws->wt of the transposed matrices: per layer W_v W_q W_k W_o
 * W_1 W_2 (W_q, W_k size 0 unless standard), then W_r W_i and the
 * embedding W_e; returns the total. off may be NULL. */
enum { TQS__WT_V, TQS__WT_Q, TQS__WT_K, TQS__WT_O, TQS__WT_1, TQS__WT_2, TQS__WT_PER_LAYER };
static size_t tqs__vit_wt_offsets(const tqs_vit *m, size_t *off) {
    size_t d = (size_t)m->cfg.d, fd = (size_t)m->cfg.ff * d, pd = (size_t)tqs__padded((long)d), total = 0;
    size_t sz[TQS__WT_PER_LAYER];
    int l, j, std = m->cfg.attention == TQS_ATTN_STANDARD;
    sz[TQS__WT_V] = d * pd; sz[TQS__WT_Q] = sz[TQS__WT_K] = std ? d * pd : 0; sz[TQS__WT_O] = d * pd;
    sz[TQS__WT_1] = d * (size_t)tqs__padded((long)fd); sz[TQS__WT_2] = fd * pd;
    for (l = 0; l < m->cfg.n_layers; l++)
        for (j = 0; j < TQS__WT_PER_LAYER; j++) { if (off) off[l * TQS__WT_PER_LAYER + j] = total; total += sz[j]; }
    for (j = 0; j < 3; j++) {
        if (off) off[m->cfg.n_layers * TQS__WT_PER_LAYER + j] = total;
        total += (j < 2 ? d : (size_t)m->cfg.b * m->cfg.b) * pd;
    }
    return total;
}

/* Doubles of the table of patch embeddings: 2^(b b) patterns of d, where
 * b b <= 4 (16 patterns; b = 3 would be 512 and is embedded token by token). */
static size_t tqs__vit_emb_table(const tqs_vit *m) {
    int bb = m->cfg.b * m->cfg.b;
    return bb <= 4 ? ((size_t)1 << bb) * (size_t)m->cfg.d : 0;
}

/* Doubles of activations for max_batch configurations:
 * per layer y1 v a xm y2 (n d each), q k (standard), att (h n n, standard),
 * mu1 rs1 mu2 rs2 (n each), h1 g (n ff d each); x has n_layers + 1 entries;
 * plus, once, the transposed weights, the factored attention matrices, a
 * copy of the parameters they were made from and the patch embeddings. */
static size_t tqs__vit_ws_doubles(const tqs_vit *m, int max_batch) {
    size_t Bm = (size_t)max_batch, n = (size_t)m->n, d = (size_t)m->cfg.d, fd = (size_t)m->cfg.ff * d;
    size_t h = (size_t)m->cfg.h, nl = (size_t)m->cfg.n_layers, nd = n * d;
    int std = m->cfg.attention == TQS_ATTN_STANDARD;
    size_t per_layer = Bm * (5 * nd + (std ? 2 * nd + h * n * n : 0) + 4 * n + 2 * n * fd);
    return per_layer * nl + Bm * nd * (nl + 1) + Bm * (6 * d + 6) + tqs__vit_wt_offsets(m, NULL) + (std ? 0 : nl * h * n * n) + m->n_params +
           tqs__vit_emb_table(m);
}

TQSDEF int tqs_vit_ws_init(tqs_vit_ws *ws, const tqs_vit *m, int max_batch, int with_backward) {
    size_t Bm, n, d, fd, h, nl, total = 0, nd;
    int l, std;
    double *p;
    if (!ws || !m || !m->params) return tqs__fail(TQS_EINVAL, "workspace: null pointer or empty model");
    memset(ws, 0, sizeof *ws);
    if (max_batch < 1) return tqs__fail(TQS_EINVAL, "workspace: max_batch must be >= 1 (got %d)", max_batch);
    Bm = (size_t)max_batch; n = (size_t)m->n; d = (size_t)m->cfg.d; fd = (size_t)m->cfg.ff * d;
    h = (size_t)m->cfg.h; nl = (size_t)m->cfg.n_layers; nd = n * d;
    std = m->cfg.attention == TQS_ATTN_STANDARD;
    total = tqs__vit_ws_doubles(m, max_batch);
    if ((double)total * 8.0 > 64e9)
        return tqs__fail(TQS_ETOOBIG, "workspace: %.3g GB of activations for batch %d is too much",
                         (double)total * 8e-9, max_batch);
    ws->max_batch = max_batch;
    ws->with_backward = with_backward;
    ws->n_slots = with_backward ? tqs_get_threads() : 0;
    ws->slot_size = with_backward ? tqs__vit_slot_size(m) : 0;
    ws->block = (double *)tqs__calloc(sizeof(double) * total);
    ws->ptrs = (double **)tqs__calloc(sizeof(double *) * 15 * (nl + 1));
    ws->wt_off = (size_t *)tqs__alloc(sizeof(size_t) * (TQS__WT_PER_LAYER * nl + 3));
    if (with_backward) ws->scratch = (double *)tqs__alloc(sizeof(double) * ws->slot_size * (size_t)ws->n_slots);
    if (!ws->block || !ws->ptrs || !ws->wt_off || (with_backward && !ws->scratch)) {
        tqs_vit_ws_free(ws);
        return tqs__fail(TQS_ENOMEM, "workspace: out of memory (%.3g GB for batch %d)", (double)total * 8e-9, max_batch);
    }
    ws->x = ws->ptrs; ws->y1 = ws->x + (nl + 1); ws->mu1 = ws->y1 + (nl + 1); ws->rs1 = ws->mu1 + (nl + 1);
    ws->q = ws->rs1 + (nl + 1); ws->k = ws->q + (nl + 1); ws->att = ws->k + (nl + 1); ws->v = ws->att + (nl + 1);
    ws->a = ws->v + (nl + 1); ws->xm = ws->a + (nl + 1); ws->y2 = ws->xm + (nl + 1); ws->mu2 = ws->y2 + (nl + 1);
    ws->rs2 = ws->mu2 + (nl + 1); ws->h1 = ws->rs2 + (nl + 1); ws->g = ws->h1 + (nl + 1);
    p = ws->block;
#define TQS__CARVE(dst, size) do { (dst) = p; p += (size); } while (0)
    for (l = 0; l <= (int)nl; l++) TQS__CARVE(ws->x[l], Bm * nd);
    for (l = 0; l < (int)nl; l++) {
        TQS__CARVE(ws->y1[l], Bm * nd); TQS__CARVE(ws->mu1[l], Bm * n); TQS__CARVE(ws->rs1[l], Bm * n);
        if (std) { TQS__CARVE(ws->q[l], Bm * nd); TQS__CARVE(ws->k[l], Bm * nd); TQS__CARVE(ws->att[l], Bm * h * n * n); }
        TQS__CARVE(ws->v[l], Bm * nd); TQS__CARVE(ws->a[l], Bm * nd); TQS__CARVE(ws->xm[l], Bm * nd);
        TQS__CARVE(ws->y2[l], Bm * nd); TQS__CARVE(ws->mu2[l], Bm * n); TQS__CARVE(ws->rs2[l], Bm * n);
        TQS__CARVE(ws->h1[l], Bm * n * fd); TQS__CARVE(ws->g[l], Bm * n * fd);
    }
    TQS__CARVE(ws->xs, Bm * d); TQS__CARVE(ws->z, Bm * d); TQS__CARVE(ws->muh, Bm); TQS__CARVE(ws->rsh, Bm);
    TQS__CARVE(ws->rp, Bm * d); TQS__CARVE(ws->r, Bm * d); TQS__CARVE(ws->mur, Bm); TQS__CARVE(ws->rsr, Bm);
    TQS__CARVE(ws->mp, Bm * d); TQS__CARVE(ws->m, Bm * d); TQS__CARVE(ws->mui, Bm); TQS__CARVE(ws->rsi, Bm);
    TQS__CARVE(ws->wt, tqs__vit_wt_offsets(m, ws->wt_off)); TQS__CARVE(ws->amat, std ? 0 : nl * h * n * n);
    TQS__CARVE(ws->prepared_params, m->n_params);
    TQS__CARVE(ws->emb, tqs__vit_emb_table(m));
    if (!tqs__vit_emb_table(m)) ws->emb = NULL;
#undef TQS__CARVE
    TQS_ASSERT((size_t)(p - ws->block) == total);
    return TQS_OK;
}

TQSDEF void tqs_vit_ws_free(tqs_vit_ws *ws) {
    if (!ws) return;
    TQS_FREE(ws->block); TQS_FREE(ws->ptrs); TQS_FREE(ws->wt_off); TQS_FREE(ws->scratch);
    memset(ws, 0, sizeof *ws);
}

/* ===================================================================== */
/* Forward                                                               */
/* ===================================================================== */
/* The register tile behind every dense product (linear layers, X X^T, the
 * Cholesky update):
 *   acc[r][c] += sum_{k < K} a_k[r] b_k[c],   r, c < 8,  k in increasing order,
 * with a_k[r] = arow[r][k * aks] and b_k[c] = b[k * ldb + c]. The 64 sums stay
 * in registers while k runs, so each b_k loaded serves 8 rows and each a_k[r]
 * 8 columns: the loop is bound by multiply-adds, not by loads. GCC and Clang
 * are given the vectors explicitly (their vectorisers do not find this
 * blocking), at the width the compile target has:
 *   4 doubles  where the target has AVX (__AVX__, so also AVX2 and AVX-512),
 *   2 doubles  where it has SSE2 or NEON (baseline x86-64, AArch64),
 *   plain loops otherwise, with other compilers, or with -DTQS_NO_VECTOR_EXT.
 * (4-wide vectors on a 2-wide target are split by the compiler into slow
 * sequences: the width must match.) On x86 with GCC or Clang a target
 * without AVX2 and FMA (plain "cc -O2") also gets an AVX2 + FMA copy of the
 * hot kernels, chosen at run time when the processor has them
 * (__builtin_cpu_supports), so the header is fast without -march flags;
 * -DTQS_NO_DISPATCH turns that off. Every variant forms the same sums in the
 * same order; they differ only by the rounding of fused multiply-adds.
 * tqs_kernel_name() says which one runs. */
#if defined(__GNUC__) || defined(__clang__)
#define TQS__NOINLINE __attribute__((noinline))
#define TQS__INLINE __inline__ __attribute__((always_inline))
#else
#define TQS__NOINLINE
#define TQS__INLINE
#endif
#if (defined(__GNUC__) || defined(__clang__)) && !defined(TQS_NO_VECTOR_EXT)
#if defined(__AVX__)
#define TQS__VW 4
#elif defined(__SSE2__) || defined(__ARM_NEON) || defined(__aarch64__)
#define TQS__VW 2
#endif
#if (defined(__x86_64__) || defined(__i386__)) && !(defined(__AVX2__) && defined(__FMA__)) && !defined(TQS_NO_DISPATCH)
#define TQS__DISPATCH 1
/* GCC contracts a * b + c into one FMA only under -ffp-contract=fast, which
 * -std=c99/c11 turn off; the AVX2 copies ask for it (Clang contracts within
 * an expression by default). */
#if defined(__clang__)
#define TQS__AVX2 __attribute__((target("avx2,fma")))
#else
#define TQS__AVX2 __attribute__((target("avx2,fma"), optimize("fp-contract=fast")))
#endif
#endif
#endif
#ifndef TQS__VW
#define TQS__VW 0
#endif

#if TQS__VW || defined(TQS__DISPATCH)
typedef double tqs__v2 __attribute__((vector_size(16)));
typedef double tqs__v4 __attribute__((vector_size(32)));
/* The tile with vectors V of W doubles: c[i][j] holds acc[i][W j .. W j + W - 1]. */
/* GCC unrolls the 8-row loops completely only at -O3; the tile needs it at
 * any level (its 16 sums must stay in registers), so it is asked for. */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)
#define TQS__UNROLL _Pragma("GCC unroll 8")
#else
#define TQS__UNROLL
#endif
#define TQS__TILE_VECTORS(V, W)                                                             \
    {                                                                                       \
        V c[8][8 / (W)], bv[8 / (W)], zero = {0}; /* (no compound literal: C++) */          \
        long k;                                                                             \
        int i, j;                                                                           \
        TQS__UNROLL for (i = 0; i < 8; i++)                                                 \
            TQS__UNROLL for (j = 0; j < 8 / (W); j++) memcpy(&c[i][j], acc + 8 * i + (W) * j, sizeof(V)); \
        for (k = 0; k < K; k++) {                                                           \
            TQS__UNROLL for (j = 0; j < 8 / (W); j++) memcpy(&bv[j], b + k * ldb + (W) * j, sizeof(V)); \
            TQS__UNROLL for (i = 0; i < 8; i++) {                                           \
                V xv = zero + arow[i][k * aks]; /* broadcast */                             \
                TQS__UNROLL for (j = 0; j < 8 / (W); j++) c[i][j] += xv * bv[j];            \
            }                                                                               \
        }                                                                                   \
        TQS__UNROLL for (i = 0; i < 8; i++)                                                 \
            TQS__UNROLL for (j = 0; j < 8 / (W); j++) memcpy(acc + 8 * i + (W) * j, &c[i][j], sizeof(V)); \
    }
#endif

static void tqs__tile_base(double *acc /* (8, 8) */, const double *const *arow, long aks,
                           const double *b, long ldb, long K)
#if TQS__VW == 4
TQS__TILE_VECTORS(tqs__v4, 4)
#elif TQS__VW == 2
TQS__TILE_VECTORS(tqs__v2, 2)
#else
{
    long k;
    int i, j;
    for (k = 0; k < K; k++)
        for (i = 0; i < 8; i++) {
            double x = arow[i][k * aks];
            for (j = 0; j < 8; j++) acc[8 * i + j] += x * b[k * ldb + j];
        }
}
#endif

#ifdef TQS__DISPATCH
static TQS__AVX2 TQS__INLINE void tqs__tile_avx2_body(double *acc, const double *const *arow, long aks, const double *b,
                                                      long ldb, long K)
TQS__TILE_VECTORS(tqs__v4, 4)
/* Called, not inlined, so the two usual strides are made constants here, as
 * inlining does for the compile-time kernels: packed panels (X X^T, the
 * Cholesky update) and linear layers. */
static TQS__AVX2 void tqs__tile_avx2(double *acc, const double *const *arow, long aks, const double *b, long ldb, long K) {
    if (aks == TQS__T && ldb == TQS__T) tqs__tile_avx2_body(acc, arow, TQS__T, b, TQS__T, K);
    else if (aks == 1) tqs__tile_avx2_body(acc, arow, 1, b, ldb, K);
    else tqs__tile_avx2_body(acc, arow, aks, b, ldb, K);
}
/* Both features, as the AVX2 kernels are compiled with FMA. */
static int tqs__have_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#endif

/* Other hot loops under run-time dispatch: NAME_loop holds the code (always
 * inlined), TQS__TWO_TARGETS(NAME, (parameters), (arguments)) defines NAME,
 * which runs an AVX2 + FMA copy of it when the processor has them.
 * GCC vectorises some of these loops only without -ftrapping-math (the
 * clamps in tqs__expv split a loop into paths that it will not merge when an
 * operation on one of them could trap) and, at -O2, only with its full cost
 * model: TQS__VECTORISE asks for both on these functions alone, and for FMA
 * contraction as TQS__AVX2 does (on the loop functions themselves too: an
 * inlined function keeps the options it was first optimised with). */
#if defined(__GNUC__) && !defined(__clang__)
#define TQS__VECTORISE __attribute__((optimize("no-trapping-math", "no-math-errno", "vect-cost-model=dynamic", "fp-contract=fast")))
#else
#define TQS__VECTORISE
#endif
#ifdef TQS__DISPATCH
#define TQS__TWO_TARGETS(name, params, args)                                         \
    static TQS__AVX2 TQS__VECTORISE TQS__NOINLINE void name##_avx2 params { name##_loop args; } \
    static TQS__VECTORISE TQS__NOINLINE void name params {                          \
        if (tqs__have_avx2()) name##_avx2 args;                                      \
        else name##_loop args;                                                       \
    }
#else
#define TQS__TWO_TARGETS(name, params, args) \
    static TQS__VECTORISE TQS__NOINLINE void name params { name##_loop args; }
#endif

static void tqs__tile(double *acc /* (8, 8) */, const double *const *arow, long aks,
                      const double *b, long ldb, long K) {
#ifdef TQS__DISPATCH
    if (tqs__have_avx2()) { tqs__tile_avx2(acc, arow, aks, b, ldb, K); return; }
#endif
    tqs__tile_base(acc, arow, aks, b, ldb, K);
}

TQSDEF const char *tqs_kernel_name(void) {
#ifdef TQS__DISPATCH
    if (tqs__have_avx2()) return "avx2+fma (chosen at run time)";
#endif
#if TQS__VW == 4
    return "4-wide vectors (compile target has AVX)";
#elif TQS__VW == 2
    return "2-wide vectors (compile target has SSE2/NEON)";
#else
    return "plain C";
#endif
}

/* wt (I, Op) = W^T zero padded to Op = O rounded up to 8 columns; W (O, I) is
 * row-major (PyTorch's layout). Made for all matrices by tqs__vit_prepare,
 * so that the innermost loop of every product runs over consecutive outputs. */
static void tqs__transpose_padded(double *wt, const double *W, int I, int O) {
    long Op = tqs__padded(O), i, o;
    for (i = 0; i < I; i++)
        for (o = 0; o < Op; o++) wt[i * Op + o] = o < O ? W[(size_t)o * I + i] : 0.0;
}

/* out (R, O) = in (R, I) W^T + bias, with wt from tqs__transpose_padded: each
 * 8 x 8 tile of outputs is one call of tqs__tile. A last partial tile of rows
 * repeats its last row and stores only the real ones. Each output is
 * bias + sum_i in the order i = 0, 1, ..., whatever the tiling, so a row's
 * result does not depend on which rows are computed with it. */
static TQS__INLINE void tqs__linear_forward(double *out, const double *in, const double *wt, const double *bias,
                                long R, int I, int O) {
    long Op = tqs__padded(O), r0, o0;
    for (r0 = 0; r0 < R; r0 += TQS__T)
        for (o0 = 0; o0 < Op; o0 += TQS__T) {
            int nr = R - r0 < TQS__T ? (int)(R - r0) : TQS__T, nc = O - o0 < TQS__T ? (int)(O - o0) : TQS__T, r, c;
            const double *rows[TQS__T];
            double acc[TQS__T * TQS__T];
            /* acc is filled by whole rows, as the tile then loads it: element by
             * element stores followed by vector loads of the same bytes stall
             * (no store forwarding), which cost a tenth of the forward pass */
            for (r = 0; r < TQS__T; r++) {
                rows[r] = in + (size_t)(r0 + (r < nr ? r : nr - 1)) * I;
                if (bias && nc == TQS__T) memcpy(acc + r * TQS__T, bias + o0, sizeof(double) * TQS__T);
                else if (!bias) memset(acc + r * TQS__T, 0, sizeof(double) * TQS__T);
                else for (c = 0; c < TQS__T; c++) acc[r * TQS__T + c] = c < nc ? bias[o0 + c] : 0.0;
            }
            tqs__tile(acc, rows, 1, wt + o0, Op, I);
            for (r = 0; r < nr; r++) /* a fixed-size copy when full (inlined; a loop over nc becomes a memcpy call) */
                if (nc == TQS__T) memcpy(out + (size_t)(r0 + r) * O + o0, acc + r * TQS__T, sizeof(double) * TQS__T);
                else for (c = 0; c < nc; c++) out[(size_t)(r0 + r) * O + o0 + c] = acc[r * TQS__T + c];
        }
}

/* LayerNorm of R rows of width d: y = (u - mean) * rstd * gamma + beta,
 * rstd = 1/sqrt(var + eps) with the biased variance. A row's sums run in
 * four interleaved partial sums (elements i = 4j + k into sum k, then
 * (s0 + s1) + (s2 + s3)): one vector's lanes, where a single chain of
 * dependent additions waited for the last; the order is fixed by d alone,
 * so a row's result does not depend on the rows computed with it. */
static TQS__INLINE double tqs__sum4(const double *x, int d) {
    double s[4] = {0, 0, 0, 0};
    int i, k;
    for (i = 0; i + 4 <= d; i += 4)
        for (k = 0; k < 4; k++) s[k] += x[i + k];
    for (k = 0; i + k < d; k++) s[k] += x[i + k];
    return (s[0] + s[1]) + (s[2] + s[3]);
}
static TQS__INLINE double tqs__sumsq4(const double *x, double mu, int d) {
    double s[4] = {0, 0, 0, 0};
    int i, k;
    for (i = 0; i + 4 <= d; i += 4)
        for (k = 0; k < 4; k++) s[k] += (x[i + k] - mu) * (x[i + k] - mu);
    for (k = 0; i + k < d; k++) s[k] += (x[i + k] - mu) * (x[i + k] - mu);
    return (s[0] + s[1]) + (s[2] + s[3]);
}
static TQS__INLINE void tqs__layernorm_forward(double *y, double *mean, double *rstd, const double *u,
                                   const double *gamma, const double *beta, long R, int d) {
    long r;
    for (r = 0; r < R; r++) {
        const double *x = u + (size_t)r * d;
        double *yr = y + (size_t)r * d, mu = tqs__sum4(x, d) / d, rs = 1.0 / sqrt(tqs__sumsq4(x, mu, d) / d + TQS__LN_EPS);
        int i;
        for (i = 0; i < d; i++) yr[i] = (x[i] - mu) * rs * gamma[i] + beta[i];
        mean[r] = mu; rstd[r] = rs;
    }
}

/* exp(x) without branches or calls, so that loops over arrays vectorise
 * (libm's exp is a scalar call, and GELU needs one per hidden unit):
 * x = k ln 2 + r with k = round(x / ln 2), |r| <= ln 2 / 2, exp(r) by its
 * Taylor series to degree 13 (truncation below 1e-17 relative), and 2^k put
 * straight into the exponent bits. k is rounded by adding 1.5 * 2^52, which
 * also leaves k in the low bits. Below -708 the result is exp(-708) (normal,
 * tiny); x is capped at 710, where k = 1024 makes 2^k the bit pattern of +inf,
 * so from 1023.5 ln 2 = 709.44 on the result is +inf (exp overflows at
 * 709.78); a NaN stays NaN. Measured within 1 ulp of libm's exp (tests/test_math.c). No branch,
 * not even a final overflow test: GCC threads such a test through the clamps
 * into separate paths, and a loop with paths does not vectorise. Always
 * inlined: a call inside a loop stops it vectorising. */
static TQS__INLINE double tqs__expv(double x0) {
    const double shift = 6755399441055744.0; /* 1.5 * 2^52 */
    double kd, r, p, scale, x = x0;
    uint64_t bits;
    x = x < -708.0 ? -708.0 : x;
    x = x > 710.0 ? 710.0 : x;
    kd = x * 1.4426950408889634 + shift;     /* log2(e) */
    memcpy(&bits, &kd, sizeof bits);
    kd -= shift;
    r = x - kd * 0.6931471803691238 - kd * 1.9082149292705877e-10; /* ln 2, high and low parts */
    p = 1.0 / 6227020800.0;                  /* 1/13! */
    p = p * r + 1.0 / 479001600.0;  p = p * r + 1.0 / 39916800.0;  p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;     p = p * r + 1.0 / 40320.0;     p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;        p = p * r + 1.0 / 120.0;       p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;          p = p * r + 0.5;               p = p * r + 1.0;
    p = p * r + 1.0;
    bits = (bits + 1023) << 52;              /* the low bits of bits hold k */
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* log(x) for x > 0 without branches or calls (as tqs__expv, so that loops
 * vectorise): x = 2^k m with m in [sqrt(1/2), sqrt(2)), taken from the bits,
 * log m = 2 atanh f = 2 (f + f^3/3 + f^5/5 + ...) with f = (m - 1)/(m + 1),
 * |f| <= 0.1716, 12 terms (the next below 1e-19 relative); log x =
 * k ln 2 + log m with ln 2 in two parts. x below the smallest normal number
 * (2.2e-308, zero included) is taken as it, so the result is -708.4 rather
 * than -inf; NaN stays NaN, +inf gives about 709.8. Measured within 2 ulp of
 * libm's log (tests/test_math.c). */
static TQS__INLINE double tqs__logv(double x0) {
    double x = x0 < 2.2250738585072014e-308 ? 2.2250738585072014e-308 : x0, m, f, s, p, kd, r;
    uint64_t bits;
    int64_t k;
    x = x > 1.7976931348623157e308 ? 1.7976931348623157e308 : x;
    memcpy(&bits, &x, sizeof bits);
    k = (int64_t)(bits >> 52) - 1023;
    bits = (bits & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;   /* m in [1, 2) */
    memcpy(&m, &bits, sizeof m);
    kd = (double)k + (m > 1.4142135623730951 ? 1.0 : 0.0);
    m = m > 1.4142135623730951 ? 0.5 * m : m;
    f = (m - 1.0) / (m + 1.0);
    s = f * f;
    p = 1.0 / 23;  p = p * s + 1.0 / 21;  p = p * s + 1.0 / 19;  p = p * s + 1.0 / 17;
    p = p * s + 1.0 / 15;  p = p * s + 1.0 / 13;  p = p * s + 1.0 / 11;  p = p * s + 1.0 / 9;
    p = p * s + 1.0 / 7;   p = p * s + 1.0 / 5;   p = p * s + 1.0 / 3;
    r = kd * 0.6931471803691238 + (2.0 * f + 2.0 * f * s * p + kd * 1.9082149292705877e-10);
    return x0 != x0 ? x0 : r;   /* NaN stays NaN (its bits read as a number above) */
}

/* sin(x) and cos(x) without branches or calls: x = k pi/2 + r with
 * |r| <= pi/4, pi/2 in three parts of which the first two have 26
 * significant bits (k pi/2 exact for |k| < 2^27, so accurate for |x| up to
 * about 1e8), sin r and cos r by their Taylor series to degree 17 and 18
 * (truncation below 1e-16 relative at pi/4), then the quadrant k mod 4
 * picks and signs them. Measured within 2 ulp of libm (away from zeros of
 * the result, where the error is absolute, below 2.3e-16; tests/test_math.c). */
static TQS__INLINE void tqs__sincosv(double x, double *sin_out, double *cos_out) {
    const double shift = 6755399441055744.0; /* 1.5 * 2^52 */
    double kd = x * 0.6366197723675814 + shift, r, r2, ps, pc, sr, cr;
    uint64_t bits;
    int q;
    memcpy(&bits, &kd, sizeof bits);
    kd -= shift;
    q = (int)(bits & 3);
    r = x - kd * 1.5707963109016418;
    r = r - kd * 1.5893254712295857e-08;
    r = r - kd * 6.123233995736766e-17;
    r2 = r * r;
    ps = 1.0 / 355687428096000.0;   /* 1/17! */
    ps = ps * r2 - 1.0 / 1307674368000.0;  ps = ps * r2 + 1.0 / 6227020800.0;  ps = ps * r2 - 1.0 / 39916800.0;
    ps = ps * r2 + 1.0 / 362880.0;  ps = ps * r2 - 1.0 / 5040.0;  ps = ps * r2 + 1.0 / 120.0;  ps = ps * r2 - 1.0 / 6.0;
    sr = r + r * r2 * ps;
    pc = -1.0 / 6402373705728000.0; /* -1/18! */
    pc = pc * r2 + 1.0 / 20922789888000.0;  pc = pc * r2 - 1.0 / 87178291200.0;  pc = pc * r2 + 1.0 / 479001600.0;
    pc = pc * r2 - 1.0 / 3628800.0;  pc = pc * r2 + 1.0 / 40320.0;  pc = pc * r2 - 1.0 / 720.0;  pc = pc * r2 + 1.0 / 24.0;
    cr = 1.0 - 0.5 * r2 + r2 * r2 * pc;
    *sin_out = q == 0 ? sr : q == 1 ? cr : q == 2 ? -sr : -cr;
    *cos_out = q == 0 ? cr : q == 1 ? -sr : q == 2 ? -cr : sr;
}

/* atan2(y, x) without branches or calls (and without sqrt, whose errno
 * check stops GCC vectorising): z = min(|x|, |y|) / max(|x|, |y|) in [0, 1]
 * is brought near the nearest of the angles 0, pi/8, pi/4 by
 * atan z = k pi/8 + atan w, w = (z - tan(k pi/8)) / (1 + z tan(k pi/8)),
 * |w| <= tan(pi/16) = 0.199, where the Taylor series of atan to degree 27
 * is below 1e-19 relative; then the octant: pi/2 - t where |y| > |x|,
 * pi - t where x < 0, and the sign of y. (Few selects: with more, GCC
 * stops if-converting the loops this is inlined into.) atan2(+-0, x < 0) =
 * +-pi and atan2(0, 0) = 0 as libm's (atan2(0, -0) gives 0, not pi);
 * infinities are not handled (the callers' arguments are finite). Measured
 * within 2 ulp of libm's atan2 (tests/test_math.c). */
static TQS__INLINE double tqs__atan2v(double y, double x) {
    double ax = fabs(x), ay = fabs(y), big = ax > ay ? ax : ay, small = ax > ay ? ay : ax;
    double z = small / (big > 0 ? big : 1.0), c, kd, w, sq, p, t;   /* (no division inside a condition: one that could trap keeps its branch) */
    c = z > 0.6681786379192989 ? 1.0 : z > 0.198912367379658 ? 0.41421356237309503 : 0.0;
    kd = c == 1.0 ? 2.0 : c > 0 ? 1.0 : 0.0;
    w = (z - c) / (1.0 + z * c);
    sq = w * w;
    p = 1.0 / 27;  p = 1.0 / 25 - p * sq;  p = 1.0 / 23 - p * sq;  p = 1.0 / 21 - p * sq;  p = 1.0 / 19 - p * sq;
    p = 1.0 / 17 - p * sq;  p = 1.0 / 15 - p * sq;  p = 1.0 / 13 - p * sq;  p = 1.0 / 11 - p * sq;  p = 1.0 / 9 - p * sq;
    p = 1.0 / 7 - p * sq;  p = 1.0 / 5 - p * sq;  p = 1.0 / 3 - p * sq;
    t = kd * 0.39269908169872414 + (w - w * sq * p);
    t = ay > ax ? 1.5707963267948966 - t : t;
    t = x < 0 ? 3.141592653589793 - t : t;
    return copysign(t, y);
}

#define TQS__GELU_C 0.7978845608028654 /* sqrt(2/pi) */
/* GELU, tanh form: gelu(u) = u (1 + tanh z)/2 with z = C (u + 0.044715 u^3).
 * Since (1 + tanh z)/2 = sigma(2z) = 1/(1 + exp(-2z)), one exp does it.
 * gelu'(u) = sigma + u 2 sigma (1 - sigma) C (1 + 3 0.044715 u^2). */
static TQS__INLINE double tqs__gelu(double u) {
    return u / (1.0 + tqs__expv(-2.0 * TQS__GELU_C * (u + 0.044715 * u * u * u)));
}
static TQS__INLINE double tqs__gelu_grad(double u) {
    double sg = 1.0 / (1.0 + tqs__expv(-2.0 * TQS__GELU_C * (u + 0.044715 * u * u * u)));
    return sg + 2.0 * u * sg * (1.0 - sg) * TQS__GELU_C * (1.0 + 3 * 0.044715 * u * u);
}

/* g = gelu(h) elementwise: a loop the compiler vectorises (TQS__VECTORISE).
 * It runs through TQS__TWO_TARGETS below, whose functions are not inlined:
 * GCC 12 does not vectorise it inlined into the forward pass. */
static TQS__VECTORISE TQS__INLINE void tqs__gelu_forward_loop(double *g, const double *h, long n) {
    long i;
    for (i = 0; i < n; i++) g[i] = tqs__gelu(h[i]);
}

/* d0 *= gelu'(h) and d1 *= gelu'(h): both cotangents of n hidden units. */
static TQS__VECTORISE TQS__INLINE void tqs__gelu_backward_loop(double *d0, double *d1, const double *h, long n) {
    long i;
    for (i = 0; i < n; i++) {
        double gp = tqs__gelu_grad(h[i]);
        d0[i] *= gp; d1[i] *= gp;
    }
}

TQS__TWO_TARGETS(tqs__gelu_forward, (double *g, const double *h, long n), (g, h, n))
TQS__TWO_TARGETS(tqs__gelu_backward, (double *d0, double *d1, const double *h, long n), (d0, d1, h, n))

/* The softmax of standard attention over rows r < nr (nr <= 4) of n scores
 * each, in place: a[r n + Q] = exp(a[r n + Q] - mx[r]) / sum_Q' exp(...).
 * A function of its own for the reason GELU has one: inlined into the
 * forward pass its loops stayed scalar, and the n^2 h exponentials and
 * divisions per layer took most of a standard-attention forward pass. Each
 * row's sum runs over Q in order, the rows side by side. */
static TQS__VECTORISE TQS__INLINE void tqs__softmax_rows_loop(double *a, const double *mx, int nr, int n) {
    double sum[4] = {0, 0, 0, 0};
    int r, Q;
    for (r = 0; r < nr; r++)
        for (Q = 0; Q < n; Q++) a[(size_t)r * n + Q] = tqs__expv(a[(size_t)r * n + Q] - mx[r]);
    for (Q = 0; Q < n; Q++)
        for (r = 0; r < nr; r++) sum[r] += a[(size_t)r * n + Q];
    for (r = 0; r < nr; r++)
        for (Q = 0; Q < n; Q++) a[(size_t)r * n + Q] /= sum[r];
}
TQS__TWO_TARGETS(tqs__softmax_rows, (double *a, const double *mx, int nr, int n), (a, mx, nr, n))

/* e = exp(-2 w t) for w = re + i im, t = sign(Re w) (so |e| <= 1: never
 * overflows), of logcosh and tanh below. */
static TQS__INLINE void tqs__exp_m2wt(double re, double im, double *er, double *ei) {
    double mag = tqs__expv(-2.0 * fabs(re)), c, sn;
    tqs__sincosv(-2.0 * copysign(1.0, re) * im, &sn, &c);
    *er = mag * c; *ei = mag * sn;
}

/* tanh(w) = t (1 - e)/(1 + e), the derivative of logcosh(w). */
static TQS__INLINE tqs_complex tqs__tanh(double re, double im) {
    double t = copysign(1.0, re), er, ei, opr, opi, den, nr, ni;
    tqs_complex out;
    tqs__exp_m2wt(re, im, &er, &ei);
    opr = 1.0 + er; opi = ei; den = opr * opr + opi * opi; nr = 1.0 - er; ni = -ei;
    out.re = t * (nr * opr + ni * opi) / den;
    out.im = t * (ni * opr - nr * opi) / den;
    return out;
}

/* logcosh(w) = w t + log(1 + exp(-2 w t)) - log 2, t = sign(Re w) (the
 * exponential never overflows), of n complex numbers w = re + i im, into
 * out_re, out_im (out and in distinct): loops that vectorise (no calls; run
 * through TQS__TWO_TARGETS below). */
static TQS__VECTORISE TQS__INLINE void tqs__logcosh_many_loop(double *out_re, double *out_im, const double *re, const double *im, long n) {
    long i;
    /* two loops: GCC if-converts (and so vectorises) each half, not the whole in one */
    for (i = 0; i < n; i++) {   /* 1 + e */
        tqs__exp_m2wt(re[i], im[i], out_re + i, out_im + i);
        out_re[i] += 1.0;
    }
    for (i = 0; i < n; i++) {
        double opr = out_re[i], opi = out_im[i];
        out_re[i] = fabs(re[i]) + 0.5 * tqs__logv(opr * opr + opi * opi) - 0.6931471805599453;
        out_im[i] = copysign(1.0, re[i]) * im[i] + tqs__atan2v(opi, opr);
    }
}
TQS__TWO_TARGETS(tqs__logcosh_many, (double *out_re, double *out_im, const double *re, const double *im, long n),
                 (out_re, out_im, re, im, n))

/* out = scale exp(lre) (cos lim, sin lim) for n terms (the phases of sums
 * of amplitudes), vectorised as tqs__logcosh_many. */
static TQS__VECTORISE TQS__INLINE void tqs__phase_terms_loop(double *out_re, double *out_im, const double *scale,
                                                             const double *lre, const double *lim, long n) {
    long i;
    for (i = 0; i < n; i++) {
        double mag = scale[i] * tqs__expv(lre[i]), c, sn;
        tqs__sincosv(lim[i], &sn, &c);
        out_re[i] = mag * c; out_im[i] = mag * sn;
    }
}
TQS__TWO_TARGETS(tqs__phase_terms, (double *out_re, double *out_im, const double *scale, const double *lre, const double *lim, long n),
                 (out_re, out_im, scale, lre, lim, n))

/* The attention mixing of one sample, a_P = sum_Q A_mu[P][Q] v_Q for the
 * head mu of each channel, for both kinds: standard attention passes its
 * per-sample weights, factored attention its weights alpha_mu(P - Q), which
 * are the same for every sample (made once by
 * tqs__factored_attention_matrices). Per head that is a matrix product,
 * a[:, head] (n, dh) = A_mu (n, n) v[:, head] (n, dh), amat (h, n, n)
 * holding the h matrices, and each 8 rows x 8 channels of a is one call
 * of tqs__tile (as in the linear layers; a direct loop over (P, Q, c) ran
 * at a third of the tile's rate).
 * A group of 8 channels that would run past the row (the end of a head
 * narrower than 8) is computed over the last 8 channels of the row and only
 * the head's channels are stored. Each output is 0 + sum_Q in the order
 * Q = 0, 1, ..., whatever the tiling. */
static void tqs__factored_attention_matrices(const tqs_vit *m, const tqs_vit_layer_offsets *L, double *amat) {
    int n = m->n, h = m->cfg.h, mu, PQ;
    const double *alpha = m->params + L->alpha;
    for (mu = 0; mu < h; mu++)
        for (PQ = 0; PQ < n * n; PQ++) amat[(size_t)mu * n * n + PQ] = alpha[(size_t)mu * n + m->disp[PQ]];
}
static TQS__INLINE void tqs__attention_mix_forward(double *a, const double *v, const double *amat, int n, int d, int h) {
    int dh = d / h, mu, P0, c0, r, c;
    for (mu = 0; mu < h; mu++) {
        const double *A = amat + (size_t)mu * n * n;
        int c_end = (mu + 1) * dh;
        if (d < TQS__T) {   /* narrower than one tile: directly */
            int P, Q;
            for (P = 0; P < n; P++)
                for (c = mu * dh; c < c_end; c++) {
                    double acc = 0.0;
                    for (Q = 0; Q < n; Q++) acc += A[(size_t)P * n + Q] * v[(size_t)Q * d + c];
                    a[(size_t)P * d + c] = acc;
                }
            continue;
        }
        for (P0 = 0; P0 < n; P0 += TQS__T) {
            int nr = n - P0 < TQS__T ? n - P0 : TQS__T;
            const double *rows[TQS__T];
            for (r = 0; r < TQS__T; r++) rows[r] = A + (size_t)(P0 + (r < nr ? r : nr - 1)) * n;
            for (c0 = mu * dh; c0 < c_end; c0 += TQS__T) {
                int cs = c0 + TQS__T <= d ? c0 : d - TQS__T, ce = c0 + TQS__T < c_end ? c0 + TQS__T : c_end;
                double acc[TQS__T * TQS__T];
                memset(acc, 0, sizeof acc);
                if (nr < TQS__T / 2) {   /* a last tile of 1-3 rows (n = 9, 25 patches): those rows alone, as the tile sums them */
                    int Q;
                    for (r = 0; r < nr; r++)
                        for (Q = 0; Q < n; Q++) {
                            double x = rows[r][Q];
                            for (c = 0; c < TQS__T; c++) acc[r * TQS__T + c] += x * v[(size_t)Q * d + cs + c];
                        }
                } else
                    tqs__tile(acc, rows, 1, v + cs, d, n);
                for (r = 0; r < nr; r++)
                    if (cs == c0 && ce == c0 + TQS__T) memcpy(a + (size_t)(P0 + r) * d + c0, acc + r * TQS__T, sizeof(double) * TQS__T);
                    else for (c = c0; c < ce; c++) a[(size_t)(P0 + r) * d + c] = acc[r * TQS__T + c - cs];
            }
        }
    }
}

/* Standard attention of one sample: weights att (h, n, n) = softmax over Q of
 * q_P.k_Q / sqrt(dh) + pos_mu(P - Q), and a (n, d) = att v per head. */
static TQS__INLINE void tqs__standard_attention_forward(const tqs_vit *m, const tqs_vit_layer_offsets *L, double *a, double *att,
                                            const double *q, const double *k, const double *v) {
    /* The weights of every head, four query rows at a time (their softmax
     * through tqs__softmax_rows), then a = A v by tqs__attention_mix_forward:
     * the same sums in the same order as row by row, so the same bits. */
    const double *p = m->params;
    int n = m->n, d = m->cfg.d, h = m->cfg.h, dh = m->dh, mu, P0, Q, c, r;
    double scale = 1.0 / sqrt((double)dh);
    for (mu = 0; mu < h; mu++) {
        const double *pos = p + L->pos + (size_t)mu * n;
        for (P0 = 0; P0 < n; P0 += 4) {
            int nr = n - P0 < 4 ? n - P0 : 4;
            double mx[4];
            for (r = 0; r < nr; r++) {
                int P = P0 + r;
                const double *qP = q + (size_t)P * d + mu * dh;
                double *A = att + ((size_t)mu * n + P) * n;
                mx[r] = -HUGE_VAL;
                for (Q = 0; Q < n; Q++) {
                    const double *kQ = k + (size_t)Q * d + mu * dh;
                    double sc = 0;
                    for (c = 0; c < dh; c++) sc += qP[c] * kQ[c];
                    A[Q] = sc * scale + pos[m->disp[P * n + Q]];
                    if (A[Q] > mx[r]) mx[r] = A[Q];
                }
            }
            tqs__softmax_rows(att + ((size_t)mu * n + P0) * n, mx, nr, n);
        }
    }
    tqs__attention_mix_forward(a, v, att, n, d, h);
}

static int tqs__vit_check_call(const tqs_vit *m, const tqs_vit_ws *ws, const void *out, const int8_t *configs, int B) {
    if (!m || !m->params || !ws || !ws->block || !out || !configs)
        return tqs__fail(TQS_EINVAL, "model: null pointer or uninitialised model/workspace");
    if (B < 0 || B > ws->max_batch)
        return tqs__fail(TQS_EINVAL, "model: batch %d outside [0, %d] of the workspace", B, ws->max_batch);
    return TQS_OK;
}

/* One token's embedding x = b_e + sum_e W_e s_e over the b*b spins of its
 * patch, a direct loop over the d outputs (W_e transposed in weT (bb, padded
 * d): it vectorises), the sum in the order e = 0, 1, ... Spins are +-1, so
 * every product is exact and the sum is the same with or without a fused
 * multiply-add. */
static TQS__INLINE void tqs__embed_token(double *x /* (d) */, const double *spin /* (bb) */, const double *weT,
                                         const double *be, int bb, int d) {
    long pd = tqs__padded(d);
    int o, e;
    for (o = 0; o < d; o++) x[o] = be[o];
    for (e = 0; e < bb; e++) {
        const double *w = weT + e * pd;
        for (o = 0; o < d; o++) x[o] += w[o] * spin[e];
    }
}

/* What every sample's forward pass shares: the transposed weights and the
 * factored attention matrices of every layer. They are remade only when the
 * parameters differ from the copy they were made from, so that the many
 * small batches of the sampler do not pay for them every time. */
static void tqs__vit_prepare(const tqs_vit *m, tqs_vit_ws *ws) {
    const double *p = m->params;
    int d = m->cfg.d, fd = m->cfg.ff * d, nl = m->cfg.n_layers, n = m->n, l;
    const size_t *off = ws->wt_off;
    if (ws->prepared && !memcmp(ws->prepared_params, p, sizeof(double) * m->n_params)) return;
    memcpy(ws->prepared_params, p, sizeof(double) * m->n_params);
    ws->prepared = 1;
    for (l = 0; l < nl; l++) {
        const tqs_vit_layer_offsets *L = &m->layer[l];
        const size_t *o = off + l * TQS__WT_PER_LAYER;
        tqs__transpose_padded(ws->wt + o[TQS__WT_V], p + L->Wv, d, d);
        if (m->cfg.attention == TQS_ATTN_STANDARD) {
            tqs__transpose_padded(ws->wt + o[TQS__WT_Q], p + L->Wq, d, d);
            tqs__transpose_padded(ws->wt + o[TQS__WT_K], p + L->Wk, d, d);
        } else
            tqs__factored_attention_matrices(m, L, ws->amat + (size_t)l * m->cfg.h * n * n);
        tqs__transpose_padded(ws->wt + o[TQS__WT_O], p + L->Wo, d, d);
        tqs__transpose_padded(ws->wt + o[TQS__WT_1], p + L->W1, d, fd);
        tqs__transpose_padded(ws->wt + o[TQS__WT_2], p + L->W2, fd, d);
    }
    tqs__transpose_padded(ws->wt + off[nl * TQS__WT_PER_LAYER], p + m->Wr, d, d);
    tqs__transpose_padded(ws->wt + off[nl * TQS__WT_PER_LAYER + 1], p + m->Wi, d, d);
    tqs__transpose_padded(ws->wt + off[nl * TQS__WT_PER_LAYER + 2], p + m->We, m->cfg.b * m->cfg.b, d);
    if (ws->emb) {   /* every pattern of a small patch: bit e of the pattern set is spin e up */
        int bb = m->cfg.b * m->cfg.b, pat, e;
        for (pat = 0; pat < 1 << bb; pat++) {
            double spin[4];
            for (e = 0; e < bb; e++) spin[e] = (pat >> e) & 1 ? 1.0 : -1.0;
            tqs__embed_token(ws->emb + (size_t)pat * d, spin, ws->wt + off[nl * TQS__WT_PER_LAYER + 2], p + m->be, bb, d);
        }
    }
}

/* Patches and embedding of R tokens (R / n samples from configs): each
 * token's row copied from the table of patch patterns (emb, b <= 2), or
 * made by tqs__embed_token (the same sums either way). */
static TQS__INLINE void tqs__embedding_forward(double *x /* (R, d) */, const int8_t *configs /* (R / n, N) */,
                                               const tqs_vit *m, const double *weT, const double *emb, long R) {
    int n = m->n, d = m->cfg.d, bb = m->cfg.b * m->cfg.b, e;
    long r;
    for (r = 0; r < R; r++) {
        const int8_t *cfg = configs + (size_t)(r / n) * m->N;
        const int *sites = m->patch_site + (size_t)(r % n) * bb;
        double *xr = x + (size_t)r * d;
        if (emb) {
            int pat = 0;
            for (e = 0; e < bb; e++) pat |= (cfg[sites[e]] > 0) << e;
            memcpy(xr, emb + (size_t)pat * d, sizeof(double) * (size_t)d);
        } else {
            double spin[256];   /* (b <= 16 is checked) */
            for (e = 0; e < bb; e++) spin[e] = cfg[sites[e]];
            tqs__embed_token(xr, spin, weT, m->params + m->be, bb, d);
        }
    }
}

/* out += in, elementwise (the residual connections). */
static TQS__INLINE void tqs__residual_add(double *out, const double *in, long n) {
    long i;
    for (i = 0; i < n; i++) out[i] += in[i];
}

/* Output head of B samples whose activations sit at w0 in ws:
 * z = LN_h(sum_P x_P), r = LN_r(W_r z + b_r), m = LN_i(W_i z + b_i),
 * log psi = sum_a logcosh(r_a + i m_a) into logpsi[0 .. B-1] (if not NULL). */
static TQS__INLINE void tqs__head_forward(const tqs_vit *m, tqs_vit_ws *ws, tqs_complex *logpsi, long w0, long B) {
    const double *p = m->params, *wt = ws->wt;
    const size_t *off = ws->wt_off + m->cfg.n_layers * TQS__WT_PER_LAYER;
    int n = m->n, d = m->cfg.d;
    size_t nd = (size_t)n * d, o_d = (size_t)w0 * d;
    long s;
    for (s = 0; s < B; s++) {
        const double *x = ws->x[m->cfg.n_layers] + (size_t)(w0 + s) * nd;
        double *xs = ws->xs + o_d + (size_t)s * d;
        int P, i;
        for (i = 0; i < d; i++) xs[i] = 0;
        for (P = 0; P < n; P++) for (i = 0; i < d; i++) xs[i] += x[(size_t)P * d + i];
    }
    tqs__layernorm_forward(ws->z + o_d, ws->muh + w0, ws->rsh + w0, ws->xs + o_d, p + m->lnh_g, p + m->lnh_b, B, d);
    tqs__linear_forward(ws->rp + o_d, ws->z + o_d, wt + off[0], p + m->br, B, d, d);
    tqs__linear_forward(ws->mp + o_d, ws->z + o_d, wt + off[1], p + m->bi, B, d, d);
    tqs__layernorm_forward(ws->r + o_d, ws->mur + w0, ws->rsr + w0, ws->rp + o_d, p + m->lnr_g, p + m->lnr_b, B, d);
    tqs__layernorm_forward(ws->m + o_d, ws->mui + w0, ws->rsi + w0, ws->mp + o_d, p + m->lni_g, p + m->lni_b, B, d);
    for (s = 0; s < B && logpsi; s++) {   /* the terms in blocks of 64, then summed in the order a = 0, 1, ... */
        tqs_complex acc = {0.0, 0.0};
        double lre[64], lim[64];
        int a0, a;
        for (a0 = 0; a0 < d; a0 += 64) {
            int na = d - a0 < 64 ? d - a0 : 64;
            tqs__logcosh_many(lre, lim, ws->r + o_d + (size_t)s * d + a0, ws->m + o_d + (size_t)s * d + a0, na);
            for (a = 0; a < na; a++) { acc.re += lre[a]; acc.im += lim[a]; }
        }
        logpsi[s] = acc;
    }
}

/* The forward pass of samples s0 <= s < s1, keeping every activation in ws
 * at the places of samples w0, w0 + 1, ... (w0 = s0 for the backward pass,
 * which reads them; a thread's own small window for a forward pass alone,
 * which then stays in cache). Samples are independent, so the threads each
 * take a range of samples through all layers (no synchronisation inside). */
static TQS__VECTORISE TQS__INLINE void tqs__vit_forward_range_loop(const tqs_vit *m, tqs_vit_ws *ws, tqs_complex *logpsi,
                                                            const int8_t *configs, long s0, long s1, long w0) {
    const double *p = m->params, *wt = ws->wt;
    const size_t *off = ws->wt_off;
    int n = m->n, d = m->cfg.d, fd = m->cfg.ff * d, N = m->N, h = m->cfg.h, l;
    int std = m->cfg.attention == TQS_ATTN_STANDARD;
    long B = s1 - s0, R = B * n, s;
    size_t nd = (size_t)n * d, o_nd = (size_t)w0 * nd, o_n = (size_t)w0 * n;
    if (B <= 0) return;
    /* 1-2. patches and embedding */
    tqs__embedding_forward(ws->x[0] + o_nd, configs + (size_t)s0 * N, m, wt + off[m->cfg.n_layers * TQS__WT_PER_LAYER + 2], ws->emb, R);
    /* 3. encoder blocks */
    for (l = 0; l < m->cfg.n_layers; l++) {
        const tqs_vit_layer_offsets *L = &m->layer[l];
        const size_t *o = off + l * TQS__WT_PER_LAYER;
        double *x = ws->x[l] + o_nd, *y1 = ws->y1[l] + o_nd, *v = ws->v[l] + o_nd, *a = ws->a[l] + o_nd;
        double *xm = ws->xm[l] + o_nd, *y2 = ws->y2[l] + o_nd, *xn = ws->x[l + 1] + o_nd;
        double *h1 = ws->h1[l] + (size_t)w0 * n * fd, *g = ws->g[l] + (size_t)w0 * n * fd;
        tqs__layernorm_forward(y1, ws->mu1[l] + o_n, ws->rs1[l] + o_n, x, p + L->ln1_g, p + L->ln1_b, R, d);
        tqs__linear_forward(v, y1, wt + o[TQS__WT_V], p + L->bv, R, d, d);
        if (std) {
            tqs__linear_forward(ws->q[l] + o_nd, y1, wt + o[TQS__WT_Q], p + L->bq, R, d, d);
            tqs__linear_forward(ws->k[l] + o_nd, y1, wt + o[TQS__WT_K], p + L->bk, R, d, d);
        }
        for (s = 0; s < B; s++) {
            size_t so = (size_t)s * nd;
            if (std)
                tqs__standard_attention_forward(m, L, a + so, ws->att[l] + (size_t)(w0 + s) * h * n * n,
                                                ws->q[l] + o_nd + so, ws->k[l] + o_nd + so, v + so);
            else
                tqs__attention_mix_forward(a + so, v + so, ws->amat + (size_t)l * h * n * n, n, d, h);
        }
        tqs__linear_forward(xm, a, wt + o[TQS__WT_O], p + L->bo, R, d, d);
        tqs__residual_add(xm, x, R * d);
        tqs__layernorm_forward(y2, ws->mu2[l] + o_n, ws->rs2[l] + o_n, xm, p + L->ln2_g, p + L->ln2_b, R, d);
        tqs__linear_forward(h1, y2, wt + o[TQS__WT_1], p + L->b1, R, d, fd);
        tqs__gelu_forward(g, h1, R * fd);
        tqs__linear_forward(xn, g, wt + o[TQS__WT_2], p + L->b2, R, fd, d);
        tqs__residual_add(xn, xm, R * d);
    }
    /* 4. output head */
    tqs__head_forward(m, ws, logpsi ? logpsi + s0 : NULL, w0, B);
    /* 5. the fixed sign: Marshall's (-1)^{n_A(s)} adds pi to Im log psi when n_A is odd */
    if (m->cfg.sign_rule == TQS_SIGN_MARSHALL && logpsi)
        for (s = s0; s < s1; s++)
            if (tqs_marshall_parity(configs + (size_t)s * N, m->cfg.Lx, m->cfg.Ly)) logpsi[s].im += 3.14159265358979323846;
}
TQS__TWO_TARGETS(tqs__vit_forward_range, (const tqs_vit *m, tqs_vit_ws *ws, tqs_complex *logpsi, const int8_t *configs, long s0, long s1, long w0),
                 (m, ws, logpsi, configs, s0, s1, w0))

/* Multiply-adds of one forward pass (the dense products; what decides
 * whether a batch is worth a parallel region). */
static double tqs__vit_work(const tqs_vit *m) {
    double n = m->n, d = m->cfg.d, f = m->cfg.ff, bb = (double)m->cfg.b * m->cfg.b;
    double att = m->cfg.attention == TQS_ATTN_STANDARD ? 2 * n * d * d + 2 * n * n * d : n * n * d;
    return n * bb * d + m->cfg.n_layers * (2 * n * d * d + att + 2 * n * d * f * d) + 2 * d * d;
}

/* Chunks of samples handed to the threads: about 16 per thread, so that a
 * thread slowed down by another process takes fewer, each at least 8
 * tokens' worth of samples (one row tile of the dense products), and none
 * with more activations than TQS__CHUNK_BYTES, so that a chunk's layer
 * outputs are still in cache when the next layer reads them. One thread
 * too: a whole batch of 256 tutorial-model samples through each layer at
 * once (12 MB of activations) ran 4x slower per sample than chunks of 16. */
#define TQS__CHUNK_BYTES (1 << 20)
static long tqs__sample_chunks(const tqs_vit *m, long B, int threads) {
    long per = (8 + m->n - 1) / m->n, c = threads <= 1 ? 1 : 16 * (long)threads;
    double bytes = 8.0 * (double)(tqs__vit_ws_doubles(m, 2) - tqs__vit_ws_doubles(m, 1)); /* one sample's activations */
    long cap = (long)(TQS__CHUNK_BYTES / bytes), by_cache;
    if (cap < per) cap = per;
    by_cache = (B + cap - 1) / cap;
    if (c < by_cache) c = by_cache;
    if (c > (B + per - 1) / per) c = (B + per - 1) / per;
    return c < 1 ? 1 : c;
}

static void tqs__vit_forward(const tqs_vit *m, tqs_vit_ws *ws, tqs_complex *logpsi, const int8_t *configs, int B) {
    int par = tqs_get_threads() > 1 && tqs__par_adaptive((double)B * tqs__vit_work(m));
    long nc = tqs__sample_chunks(m, B, par ? tqs_get_threads() : 1);
    double t0 = par ? tqs__now() : 0, finish[TQS__MAX_TEAM];
    int team = 1;
    tqs__vit_prepare(m, ws);
    /* samples are independent: chunk c is samples [B c / nc, B (c + 1) / nc);
     * each thread keeps the activations of its chunks in a window of its own
     * (thread t at samples t w, ..., where the workspace has room for them all) */
    TQS__OMP(parallel if (par))
    {
        long c, w = (B + nc - 1) / nc, tid = 0, nth = 1;
#ifdef _OPENMP
        tid = omp_get_thread_num(); nth = omp_get_num_threads();
#endif
        TQS__OMP(for schedule(dynamic, 1) nowait)
        for (c = 0; c < nc; c++) {
            long s0 = B * c / nc;
            tqs__vit_forward_range(m, ws, logpsi, configs, s0, B * (c + 1) / nc, nth * w <= ws->max_batch ? tid * w : s0);
        }
        tqs__par_finished(finish, &team);
    }
    if (par) tqs__par_report(t0, tqs__now(), finish, team, nc);
}

TQSDEF int tqs_vit_forward(const tqs_vit *m, tqs_vit_ws *ws, tqs_complex *logpsi, const int8_t *configs, int B) {
    int rc = tqs__vit_check_call(m, ws, logpsi, configs, B);
    if (rc) return rc;
    if (B > 0) tqs__vit_forward(m, ws, logpsi, configs, B);
    return TQS_OK;
}

TQSDEF int tqs_vit_attention(const tqs_vit *m, tqs_vit_ws *ws, double *out, const int8_t *config) {
    tqs_complex lp;
    size_t hnn;
    int l, rc = tqs__vit_check_call(m, ws, out, config, 1);
    if (rc) return rc;
    tqs__vit_forward(m, ws, &lp, config, 1);
    hnn = (size_t)m->cfg.h * m->n * m->n;
    for (l = 0; l < m->cfg.n_layers; l++) {
        double *A = out + (size_t)l * hnn;
        if (m->cfg.attention == TQS_ATTN_STANDARD) memcpy(A, ws->att[l], sizeof(double) * hnn);
        else tqs__factored_attention_matrices(m, &m->layer[l], A);
    }
    return TQS_OK;
}

/* ===================================================================== */
/* Backward                                                              */
/* ===================================================================== */
/* One sample, C = 2 cotangents (d Re log psi, d Im log psi) carried side by
 * side; parameter gradients of cotangent c are written to grad + c*stride (a
 * row of the Jacobian; every parameter is used once, so each gradient is
 * stored once and the rows need no zeroing), input gradients are accumulated
 * into din (C, T, I).
 *   y = W x + b:  dx += W^T dy,  dW = dy x^T,  db = dy  (summed over tokens)
 * Both products go through the 8 x 8 register tile; each entry is summed in
 * the same order as by plain loops (tokens for dW, outputs for dx). */
static TQS__INLINE void tqs__linear_backward(double *din, double *grad, size_t stride, size_t offW, size_t offb,
                                 const double *dout, const double *in, const double *W, int T, int I, int O) {
    const double *rows[TQS__T];
    double acc[TQS__T * TQS__T];
    int c, t, o, r, j, nfull = I / TQS__T * TQS__T, i0, i, o0, t0;
    for (c = 0; c < 2; c++) {
        const double *dy = dout + (size_t)c * T * O;
        double *dW = grad + c * stride + offW, *db = grad + c * stride + offb;
        for (o = 0; o < O; o++) db[o] = 0.0;
        for (t = 0; t < T; t++) for (o = 0; o < O; o++) db[o] += dy[(size_t)t * O + o];
        /* dW (O, I) = dy^T x: tiles of 8 outputs x 8 inputs summed over tokens */
        for (o0 = 0; o0 < O; o0 += TQS__T) {
            int nr = O - o0 < TQS__T ? O - o0 : TQS__T;
            for (r = 0; r < TQS__T; r++) rows[r] = dy + o0 + (r < nr ? r : nr - 1);
            for (i0 = 0; i0 < nfull; i0 += TQS__T) {
                memset(acc, 0, sizeof acc);
                tqs__tile(acc, rows, O, in + i0, I, T);
                for (r = 0; r < nr; r++) memcpy(dW + (size_t)(o0 + r) * I + i0, acc + r * TQS__T, sizeof(double) * TQS__T);
            }
            for (r = 0; r < nr; r++)            /* the last I % 8 inputs */
                for (i = nfull; i < I; i++) {
                    double sum = 0.0;
                    for (t = 0; t < T; t++) sum += dy[(size_t)t * O + o0 + r] * in[(size_t)t * I + i];
                    dW[(size_t)(o0 + r) * I + i] = sum;
                }
        }
    }
    if (!din) return;
    /* din (2T, I) += dout (2T, O) W: both cotangents as one product */
    for (t0 = 0; t0 < 2 * T; t0 += TQS__T) {
        int nr = 2 * T - t0 < TQS__T ? 2 * T - t0 : TQS__T;
        for (r = 0; r < TQS__T; r++) rows[r] = dout + (size_t)(t0 + (r < nr ? r : nr - 1)) * O;
        for (i0 = 0; i0 < nfull; i0 += TQS__T) {
            for (r = 0; r < TQS__T; r++)
                for (j = 0; j < TQS__T; j++) acc[r * TQS__T + j] = din[(size_t)(t0 + (r < nr ? r : nr - 1)) * I + i0 + j];
            tqs__tile(acc, rows, 1, W + i0, I, O);
            for (r = 0; r < nr; r++)
                for (j = 0; j < TQS__T; j++) din[(size_t)(t0 + r) * I + i0 + j] = acc[r * TQS__T + j];
        }
        for (r = 0; r < nr; r++)
            for (i = nfull; i < I; i++) {
                double sum = din[(size_t)(t0 + r) * I + i];
                for (o = 0; o < O; o++) sum += rows[r][o] * W[(size_t)o * I + i];
                din[(size_t)(t0 + r) * I + i] = sum;
            }
    }
}

/* LayerNorm backward for T rows, both cotangents: with xhat = (u - mean) rstd,
 *   du = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),  dxhat = dy gamma */
static TQS__INLINE void tqs__layernorm_backward(double *du, double *grad, size_t stride, size_t offg, size_t offb,
                                    const double *dy, const double *u, const double *mean, const double *rstd,
                                    const double *gamma, int T, int d) {
    int c, t, i;
    for (c = 0; c < 2; c++) {
        double *dg = grad + c * stride + offg, *db = grad + c * stride + offb;
        for (i = 0; i < d; i++) dg[i] = db[i] = 0.0;
        for (t = 0; t < T; t++) {
            const double *dyt = dy + ((size_t)c * T + t) * d, *ut = u + (size_t)t * d;
            double *dut = du + ((size_t)c * T + t) * d, m1 = 0, m2 = 0;
            for (i = 0; i < d; i++) {
                double xh = (ut[i] - mean[t]) * rstd[t], dxh = dyt[i] * gamma[i];
                dg[i] += dyt[i] * xh; db[i] += dyt[i];
                m1 += dxh; m2 += dxh * xh;
            }
            m1 /= d; m2 /= d;
            for (i = 0; i < d; i++) {
                double xh = (ut[i] - mean[t]) * rstd[t];
                dut[i] += rstd[t] * (dyt[i] * gamma[i] - m1 - xh * m2);
            }
        }
    }
}

/* Attention backward of one sample for both cotangents: da (2, n, d) in;
 * dv, dq, dk (2, n, d) accumulated; alpha or pos gradients to grad. */
static TQS__INLINE void tqs__attention_backward(const tqs_vit *m, const tqs_vit_layer_offsets *L, double *dv, double *dq,
                                    double *dk, double *grad, size_t stride, double *dA, const double *da,
                                    const double *att, const double *q, const double *k, const double *v) {
    const double *p = m->params;
    int n = m->n, d = m->cfg.d, h = m->cfg.h, dh = m->dh, mu, P, Q, c, cc;
    size_t nd = (size_t)n * d;
    double scale = 1.0 / sqrt((double)dh);
    for (cc = 0; cc < 2; cc++) {
        const double *daC = da + cc * nd;
        double *dvC = dv + cc * nd, *g = grad + cc * stride;
        for (mu = 0; mu < h; mu++) {
            if (m->cfg.attention == TQS_ATTN_FACTORED) {
                const double *alpha = p + L->alpha + (size_t)mu * n;
                double *dalpha = g + L->alpha + (size_t)mu * n;
                memset(dalpha, 0, sizeof(double) * (size_t)n);
                for (P = 0; P < n; P++) {
                    const double *daP = daC + (size_t)P * d + mu * dh;
                    for (Q = 0; Q < n; Q++) {
                        const double *vQ = v + (size_t)Q * d + mu * dh;
                        double *dvQ = dvC + (size_t)Q * d + mu * dh, w = alpha[m->disp[P * n + Q]], s = 0;
                        for (c = 0; c < dh; c++) { s += daP[c] * vQ[c]; dvQ[c] += w * daP[c]; }
                        dalpha[m->disp[P * n + Q]] += s;
                    }
                }
            } else {
                double *dqC = dq + cc * nd, *dkC = dk + cc * nd, *dpos = g + L->pos + (size_t)mu * n;
                memset(dpos, 0, sizeof(double) * (size_t)n);
                for (P = 0; P < n; P++) {
                    const double *A = att + ((size_t)mu * n + P) * n, *daP = daC + (size_t)P * d + mu * dh;
                    const double *qP = q + (size_t)P * d + mu * dh;
                    double *dqP = dqC + (size_t)P * d + mu * dh, dot = 0;
                    for (Q = 0; Q < n; Q++) { /* dA_PQ = da_P . v_Q;  dv_Q += A_PQ da_P */
                        const double *vQ = v + (size_t)Q * d + mu * dh;
                        double *dvQ = dvC + (size_t)Q * d + mu * dh, s = 0;
                        for (c = 0; c < dh; c++) { s += daP[c] * vQ[c]; dvQ[c] += A[Q] * daP[c]; }
                        dA[Q] = s; dot += A[Q] * s;
                    }
                    for (Q = 0; Q < n; Q++) { /* softmax: dS = A (dA - sum A dA) */
                        const double *kQ = k + (size_t)Q * d + mu * dh;
                        double *dkQ = dkC + (size_t)Q * d + mu * dh, dS = A[Q] * (dA[Q] - dot);
                        dpos[m->disp[P * n + Q]] += dS;
                        dS *= scale;
                        for (c = 0; c < dh; c++) { dqP[c] += dS * kQ[c]; dkQ[c] += dS * qP[c]; }
                    }
                }
            }
        }
    }
}

static TQS__VECTORISE TQS__INLINE void tqs__vit_backward_sample_loop(const tqs_vit *m, const tqs_vit_ws *ws, double *grad,
                                                                   size_t stride, double *scratch, const int8_t *config, int s) {
    const double *p = m->params;
    int n = m->n, d = m->cfg.d, fd = m->cfg.ff * d, bb = m->cfg.b * m->cfg.b, l, c, a, P, e;
    size_t nd = (size_t)n * d, so = (size_t)s * nd, sfd = (size_t)s * n * fd;
    int std = m->cfg.attention == TQS_ATTN_STANDARD;
    /* scratch: (2, n, d) each: dx dxm dy dv dq dk da; (2, n, fd) dh; (2, d) x6; (n) dA */
    double *dx = scratch, *dxm = dx + 2 * nd, *dy = dxm + 2 * nd, *dv = dy + 2 * nd, *dq = dv + 2 * nd;
    double *dk = dq + 2 * nd, *da = dk + 2 * nd, *dh = da + 2 * nd, *dr = dh + 2 * (size_t)n * fd;
    double *dmm = dr + 2 * d, *drp = dmm + 2 * d, *dmp = drp + 2 * d, *dz = dmp + 2 * d, *dxs = dz + 2 * d;
    double *dA = dxs + 2 * d;
    /* head: d log psi / d r_a and d m_a for the Re (c=0) and Im (c=1) parts */
    for (a = 0; a < d; a++) {
        tqs_complex th = tqs__tanh(ws->r[(size_t)s * d + a], ws->m[(size_t)s * d + a]);
        dr[a] = th.re;      dmm[a] = -th.im;     /* Re: d/dr = Re tanh, d/dm = -Im tanh */
        dr[d + a] = th.im;  dmm[d + a] = th.re;  /* Im: d/dr = Im tanh, d/dm =  Re tanh */
    }
    memset(drp, 0, sizeof(double) * 8 * d); /* drp dmp dz dxs */
    tqs__layernorm_backward(drp, grad, stride, m->lnr_g, m->lnr_b, dr, ws->rp + (size_t)s * d,
                            ws->mur + s, ws->rsr + s, p + m->lnr_g, 1, d);
    tqs__layernorm_backward(dmp, grad, stride, m->lni_g, m->lni_b, dmm, ws->mp + (size_t)s * d,
                            ws->mui + s, ws->rsi + s, p + m->lni_g, 1, d);
    tqs__linear_backward(dz, grad, stride, m->Wr, m->br, drp, ws->z + (size_t)s * d, p + m->Wr, 1, d, d);
    tqs__linear_backward(dz, grad, stride, m->Wi, m->bi, dmp, ws->z + (size_t)s * d, p + m->Wi, 1, d, d);
    tqs__layernorm_backward(dxs, grad, stride, m->lnh_g, m->lnh_b, dz, ws->xs + (size_t)s * d,
                            ws->muh + s, ws->rsh + s, p + m->lnh_g, 1, d);
    for (c = 0; c < 2; c++) for (P = 0; P < n; P++)  /* x_P all feed the sum */
        memcpy(dx + c * nd + (size_t)P * d, dxs + (size_t)c * d, sizeof(double) * d);
    for (l = m->cfg.n_layers - 1; l >= 0; l--) {
        const tqs_vit_layer_offsets *L = &m->layer[l];
        /* x_out = xm + W2 gelu(h1) + b2, h1 = W1 LN2(xm) + b1 */
        memset(dh, 0, sizeof(double) * 2 * (size_t)n * fd);
        tqs__linear_backward(dh, grad, stride, L->W2, L->b2, dx, ws->g[l] + sfd, p + L->W2, n, fd, d);
        tqs__gelu_backward(dh, dh + (size_t)n * fd, ws->h1[l] + sfd, (long)n * fd);
        memset(dy, 0, sizeof(double) * 2 * nd);
        tqs__linear_backward(dy, grad, stride, L->W1, L->b1, dh, ws->y2[l] + so, p + L->W1, n, d, fd);
        memcpy(dxm, dx, sizeof(double) * 2 * nd);
        tqs__layernorm_backward(dxm, grad, stride, L->ln2_g, L->ln2_b, dy, ws->xm[l] + so,
                                ws->mu2[l] + (size_t)s * n, ws->rs2[l] + (size_t)s * n, p + L->ln2_g, n, d);
        /* xm = x + W_o a + b_o */
        memset(da, 0, sizeof(double) * 2 * nd);
        tqs__linear_backward(da, grad, stride, L->Wo, L->bo, dxm, ws->a[l] + so, p + L->Wo, n, d, d);
        memset(dv, 0, sizeof(double) * 6 * nd); /* dv dq dk */
        tqs__attention_backward(m, L, dv, dq, dk, grad, stride, dA, da,
                                std ? ws->att[l] + (size_t)s * m->cfg.h * n * n : NULL,
                                std ? ws->q[l] + so : NULL, std ? ws->k[l] + so : NULL, ws->v[l] + so);
        memset(dy, 0, sizeof(double) * 2 * nd);
        tqs__linear_backward(dy, grad, stride, L->Wv, L->bv, dv, ws->y1[l] + so, p + L->Wv, n, d, d);
        if (std) {
            tqs__linear_backward(dy, grad, stride, L->Wq, L->bq, dq, ws->y1[l] + so, p + L->Wq, n, d, d);
            tqs__linear_backward(dy, grad, stride, L->Wk, L->bk, dk, ws->y1[l] + so, p + L->Wk, n, d, d);
        }
        memcpy(dx, dxm, sizeof(double) * 2 * nd);
        tqs__layernorm_backward(dx, grad, stride, L->ln1_g, L->ln1_b, dy, ws->x[l] + so,
                                ws->mu1[l] + (size_t)s * n, ws->rs1[l] + (size_t)s * n, p + L->ln1_g, n, d);
    }
    /* embedding: x_P = W_e p_P + b_e */
    for (c = 0; c < 2; c++) {
        double *dW = grad + c * stride + m->We, *db = grad + c * stride + m->be;
        memset(dW, 0, sizeof(double) * (size_t)d * bb);
        memset(db, 0, sizeof(double) * (size_t)d);
        for (P = 0; P < n; P++) {
            const double *g = dx + c * nd + (size_t)P * d;
            const int *sites = m->patch_site + (size_t)P * bb;
            double spin[256];                /* the patch as doubles (b <= 16 is checked) */
            for (e = 0; e < bb; e++) spin[e] = config[sites[e]];
            for (a = 0; a < d; a++) {
                db[a] += g[a];
                for (e = 0; e < bb; e++) dW[(size_t)a * bb + e] += g[a] * spin[e];
            }
        }
    }
}

TQS__TWO_TARGETS(tqs__vit_backward_sample, (const tqs_vit *m, const tqs_vit_ws *ws, double *grad, size_t stride,
                                            double *scratch, const int8_t *config, int s),
                 (m, ws, grad, stride, scratch, config, s))

TQSDEF int tqs_vit_jacobian(const tqs_vit *m, tqs_vit_ws *ws, double *jac, tqs_complex *logpsi,
                            const int8_t *configs, int B) {
    int rc = tqs__vit_check_call(m, ws, jac, configs, B);
    if (rc) return rc;
    if (!ws->with_backward || !ws->scratch)
        return tqs__fail(TQS_EINVAL, "jacobian: the workspace was made without backward scratch");
    if (B == 0) return TQS_OK;
    tqs__vit_prepare(m, ws);
    /* each thread: the forward pass of its range of samples, then their
     * backward passes (which write every entry of their two rows) */
    {
        int par = ws->n_slots > 1 && tqs__par_adaptive(5.0 * B * tqs__vit_work(m));
        long nc = tqs__sample_chunks(m, B, par ? ws->n_slots : 1);
        double t0 = par ? tqs__now() : 0, finish[TQS__MAX_TEAM];
        int team = 1;
        TQS__OMP(parallel num_threads(ws->n_slots) if (par))
        {
            long c;
            int slot = 0;
#ifdef _OPENMP
            slot = omp_get_thread_num();
#endif
            TQS__OMP(for schedule(dynamic, 1) nowait)
            for (c = 0; c < nc; c++) {
                long s0 = B * c / nc, s1 = B * (c + 1) / nc, s;
                tqs__vit_forward_range(m, ws, logpsi, configs, s0, s1, s0);
                for (s = s0; s < s1; s++)
                    tqs__vit_backward_sample(m, ws, jac + 2 * (size_t)s * m->n_params, m->n_params,
                                             ws->scratch + (size_t)slot * ws->slot_size, configs + (size_t)s * m->N, (int)s);
            }
            tqs__par_finished(finish, &team);
        }
        if (par) tqs__par_report(t0, tqs__now(), finish, team, nc);
    }
    return TQS_OK;
}

/* ===================================================================== */
/* Sampler                                                               */
/* ===================================================================== */
TQSDEF int tqs_vit_logpsi_fn(void *ctx, tqs_complex *out, const int8_t *configs, int B) {
    tqs_vit_amplitude *a = (tqs_vit_amplitude *)ctx;
    return tqs_vit_forward(a->model, a->ws, out, configs, B);
}

TQSDEF tqs_amplitude tqs_vit_amplitude_make(tqs_vit_amplitude *holder, const tqs_vit *model, tqs_vit_ws *ws) {
    tqs_amplitude amp;
    holder->model = model; holder->ws = ws;
    amp.fn = tqs_vit_logpsi_fn; amp.ctx = holder; amp.max_batch = ws ? ws->max_batch : 0;
    return amp;
}

/* Evaluates B configurations in chunks of the amplitude's max_batch. */
static int tqs__amp_eval(const tqs_amplitude *amp, tqs_complex *out, const int8_t *configs, long B, int N) {
    long s;
    for (s = 0; s < B; s += amp->max_batch) {
        int n = (int)(B - s < amp->max_batch ? B - s : amp->max_batch);
        int rc = amp->fn(amp->ctx, out + s, configs + (size_t)s * N, n);
        if (rc) return rc;
    }
    return TQS_OK;
}

TQSDEF int tqs_sampler_init(tqs_sampler *S, const tqs_lattice *lat, int n_chains, uint64_t seed) {
    static const int moves[6][2] = {{1, 0}, {0, 1}, {1, 1}, {1, -1}, {2, 0}, {0, 2}};
    int N, c, i, k, np = 0;
    unsigned char *seen;
    if (!S || !lat || !lat->N) return tqs__fail(TQS_EINVAL, "sampler: null pointer or empty lattice");
    memset(S, 0, sizeof *S);
    if (n_chains < 1 || n_chains > (1 << 24)) return tqs__fail(TQS_EINVAL, "sampler: chains must be in [1, 2^24] (got %d)", n_chains);
    N = lat->N;
    S->N = N; S->n_chains = n_chains;
    S->pairs = (int *)tqs__alloc(sizeof(int) * 12 * (size_t)N);
    seen = (unsigned char *)tqs__calloc((size_t)N * N);
    S->state = (int8_t *)tqs__alloc((size_t)n_chains * N);
    S->prop = (int8_t *)tqs__alloc((size_t)n_chains * N);
    S->logpsi = (tqs_complex *)tqs__calloc(sizeof(tqs_complex) * n_chains);
    S->prop_logpsi = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * n_chains);
    S->prop_chain = (int *)tqs__alloc(sizeof(int) * 2 * (size_t)n_chains);
    S->rng = (tqs_rng *)tqs__alloc(sizeof(tqs_rng) * n_chains);
    S->accepted = (uint64_t *)tqs__calloc(sizeof(uint64_t) * n_chains);
    S->proposed = (uint64_t *)tqs__calloc(sizeof(uint64_t) * n_chains);
    if (!S->pairs || !seen || !S->state || !S->prop || !S->logpsi || !S->prop_logpsi || !S->prop_chain ||
        !S->rng || !S->accepted || !S->proposed) {
        TQS_FREE(seen); tqs_sampler_free(S);
        return tqs__fail(TQS_ENOMEM, "sampler: out of memory for %d chains", n_chains);
    }
    /* each unordered pair once (on 4-site sides +2 and -2 coincide) */
    for (i = 0; i < N; i++) for (k = 0; k < 6; k++) {
        int j = tqs_site(lat, i / lat->Ly + moves[k][0], i % lat->Ly + moves[k][1]);
        int a = i < j ? i : j, b = i < j ? j : i;
        if (a == b || seen[(size_t)a * N + b]) continue;
        seen[(size_t)a * N + b] = 1;
        S->pairs[2 * np] = a; S->pairs[2 * np + 1] = b; np++;
    }
    TQS_FREE(seen);
    S->n_pairs = np;
    S->power = 2.0;
    for (c = 0; c < n_chains; c++) {
        tqs_rng_seed(&S->rng[c], seed, (uint64_t)c);
        tqs_random_config(S->state + (size_t)c * N, N, &S->rng[c]);
    }
    return TQS_OK;
}

TQSDEF void tqs_sampler_free(tqs_sampler *S) {
    if (!S) return;
    TQS_FREE(S->pairs); TQS_FREE(S->state); TQS_FREE(S->prop); TQS_FREE(S->logpsi); TQS_FREE(S->prop_logpsi);
    TQS_FREE(S->prop_chain); TQS_FREE(S->rng); TQS_FREE(S->accepted); TQS_FREE(S->proposed);
    memset(S, 0, sizeof *S);
}

TQSDEF void tqs_sampler_invalidate(tqs_sampler *S) { if (S) S->have_logpsi = 0; }

/* Spin of ordered pattern k at (x, y): Neel, flipped Neel, stripes along x, along y. */
static int8_t tqs__pattern_spin(int k, int x, int y) {
    int bit = k < 2 ? (x + y + k) % 2 : k < 4 ? (x + k) % 2 : (y + k) % 2;
    return (int8_t)(bit ? 1 : -1);
}

TQSDEF int tqs_sampler_start_ordered(tqs_sampler *S, const tqs_lattice *lat, const tqs_amplitude *amp) {
    enum { K = 6 };
    tqs_complex plp[K];
    int N, M, k, c, x, y, rc, n_eval, mag[K];
    if (!S || !S->state || !lat || !amp || !amp->fn || amp->max_batch < 1)
        return tqs__fail(TQS_EINVAL, "sampler: null pointer or amplitude without batch size");
    N = S->N; M = S->n_chains;
    if (lat->N != N) return tqs__fail(TQS_EINVAL, "sampler: the lattice has %d sites, the chains %d", lat->N, N);
    /* the patterns' log psi, through the proposal buffer (room for M configurations) */
    for (k = 0; k < K; k += n_eval) {
        int j;
        n_eval = K - k < M ? K - k : M;
        for (j = 0; j < n_eval; j++) {
            mag[k + j] = 0;
            for (x = 0; x < lat->Lx; x++) for (y = 0; y < lat->Ly; y++) {
                int8_t sp = tqs__pattern_spin(k + j, x, y);
                S->prop[(size_t)j * N + tqs_site(lat, x, y)] = sp;
                mag[k + j] += sp;
            }
        }
        if ((rc = tqs__amp_eval(amp, plp + k, S->prop, n_eval, N)) != 0) return rc;
    }
    if ((rc = tqs__amp_eval(amp, S->logpsi, S->state, M, N)) != 0) return rc;
    S->have_logpsi = 1;
    for (c = 0; c < M; c++) {
        int8_t *st = S->state + (size_t)c * N;
        double w[K + 1], top = S->logpsi[c].re, u, acc = 0;
        int m = 0, i, pick = -1;
        for (i = 0; i < N; i++) m += st[i];
        for (k = 0; k < K; k++) if (mag[k] == m && plp[k].re > top) top = plp[k].re;
        w[K] = exp(S->power * (S->logpsi[c].re - top));   /* the chain's own configuration */
        acc = w[K];
        for (k = 0; k < K; k++) { w[k] = mag[k] == m ? exp(S->power * (plp[k].re - top)) : 0.0; acc += w[k]; }
        u = tqs_rng_uniform(&S->rng[c]) * acc;
        for (k = 0; k < K && pick < 0; k++) { if (u < w[k]) pick = k; else u -= w[k]; }
        if (pick < 0) continue;   /* stays */
        for (x = 0; x < lat->Lx; x++) for (y = 0; y < lat->Ly; y++) st[tqs_site(lat, x, y)] = tqs__pattern_spin(pick, x, y);
        S->logpsi[c] = plp[pick];
    }
    return TQS_OK;
}

/* One proposal for every chain, evaluated in one batch (the threads share
 * that). Each chain draws its pair and its acceptance number from its own
 * stream, in the same order whatever the threads. The per-chain loops are a
 * few operations per chain: serial, since threads writing neighbouring
 * chains' states and counters would share cache lines and cost more. */
/* The Metropolis test of chain c's proposal cfg (log psi lp) with uniform u:
 * accept with min(1, |psi'/psi|^p) = min(1, exp(p Re(log psi' - log psi))),
 * p = 2 for |psi|^2; on acceptance the chain takes cfg. Returns 1 if accepted. */
static int tqs__sampler_accept(tqs_sampler *S, int c, const int8_t *cfg, tqs_complex lp, double u) {
    double log_ratio = S->power * (lp.re - S->logpsi[c].re);
    if (!(log_ratio >= 0 || u < exp(log_ratio))) return 0;
    memcpy(S->state + (size_t)c * S->N, cfg, (size_t)S->N);
    S->logpsi[c] = lp;
    return 1;
}

static int tqs__sampler_step(tqs_sampler *S, const tqs_amplitude *amp) {
    int N = S->N, M = S->n_chains, n_prop = 0, c, rc;
    int *pair_of = S->prop_chain + M; /* second half: chosen pair per chain (-1: none) */
    for (c = 0; c < M; c++) {
        int p = (int)tqs_rng_below(&S->rng[c], (uint64_t)S->n_pairs);
        const int8_t *st = S->state + (size_t)c * N;
        pair_of[c] = st[S->pairs[2 * p]] != st[S->pairs[2 * p + 1]] ? p : -1;
    }
    for (c = 0; c < M; c++) if (pair_of[c] >= 0) { /* compact: only real moves are evaluated */
        int8_t *pr = S->prop + (size_t)n_prop * N;
        int i = S->pairs[2 * pair_of[c]], j = S->pairs[2 * pair_of[c] + 1];
        memcpy(pr, S->state + (size_t)c * N, (size_t)N);
        pr[i] = (int8_t)-pr[i]; pr[j] = (int8_t)-pr[j];
        S->prop_chain[n_prop++] = c;
    }
    rc = tqs__amp_eval(amp, S->prop_logpsi, S->prop, n_prop, N);
    if (rc) return rc;
    for (c = 0; c < n_prop; c++) {
        int ch = S->prop_chain[c];
        double u = tqs_rng_uniform(&S->rng[ch]);
        S->proposed[ch]++;
        S->accepted[ch] += (uint64_t)tqs__sampler_accept(S, ch, S->prop + (size_t)c * N, S->prop_logpsi[c], u);
    }
    return TQS_OK;
}

/* One symmetry move for every chain, in one batch; draws from each chain's
 * stream in chain order (the element, then the acceptance number). */
static int tqs__sampler_symmetry_move(tqs_sampler *S, const tqs_amplitude *amp) {
    int N = S->N, M = S->n_chains, c, i, rc;
    for (c = 0; c < M; c++) {
        int g = (int)tqs_rng_below(&S->rng[c], (uint64_t)S->n_moves);
        const int *perm = S->move_perm + (size_t)g * N;
        const int8_t *st = S->state + (size_t)c * N;
        int8_t *pr = S->prop + (size_t)c * N, sign = (int8_t)(S->move_flip && S->move_flip[g] ? -1 : 1);
        for (i = 0; i < N; i++) pr[i] = (int8_t)(sign * st[perm[i]]);
    }
    if ((rc = tqs__amp_eval(amp, S->prop_logpsi, S->prop, M, N)) != 0) return rc;
    for (c = 0; c < M; c++) {
        double u = tqs_rng_uniform(&S->rng[c]);
        S->move_proposed++;
        S->move_accepted += (uint64_t)tqs__sampler_accept(S, c, S->prop + (size_t)c * N, S->prop_logpsi[c], u);
    }
    return TQS_OK;
}

TQSDEF int tqs_sampler_set_moves(tqs_sampler *S, const int *perm, const int8_t *flip, int n) {
    int g, i;
    if (!S || !S->state || n < 0 || (n > 0 && !perm)) return tqs__fail(TQS_EINVAL, "sampler: null pointer or negative move count");
    for (g = 0; g < n; g++) {   /* each element must permute the sites */
        unsigned char *seen = (unsigned char *)S->prop;   /* (N bytes of the proposal buffer) */
        memset(seen, 0, (size_t)S->N);
        for (i = 0; i < S->N; i++) {
            int j = perm[(size_t)g * S->N + i];
            if (j < 0 || j >= S->N || seen[j]) return tqs__fail(TQS_EINVAL, "sampler: symmetry move %d is not a permutation of the %d sites", g, S->N);
            seen[j] = 1;
        }
    }
    S->n_moves = n; S->move_perm = n ? perm : NULL; S->move_flip = n ? flip : NULL;
    return TQS_OK;
}

TQSDEF int tqs_sampler_run(tqs_sampler *S, const tqs_amplitude *amp, int n_per_chain, int sweeps_between,
                           int thermalize, int8_t *samples, tqs_complex *logpsi) {
    int N, M, k, c, rc;
    long step;
    if (!S || !S->state || !amp || !amp->fn || amp->max_batch < 1 || (n_per_chain > 0 && !samples))
        return tqs__fail(TQS_EINVAL, "sampler: null pointer or amplitude without batch size");
    if (n_per_chain < 0 || sweeps_between < 0 || thermalize < 0)
        return tqs__fail(TQS_EINVAL, "sampler: negative sample or sweep count");
    N = S->N; M = S->n_chains;
    memset(S->accepted, 0, sizeof(uint64_t) * M);
    memset(S->proposed, 0, sizeof(uint64_t) * M);
    S->move_accepted = S->move_proposed = 0;
    if (!S->have_logpsi) {
        if ((rc = tqs__amp_eval(amp, S->logpsi, S->state, M, N)) != 0) return rc;
        S->have_logpsi = 1;
    }
    for (step = 0; step < (long)thermalize * N; step++)
        if ((rc = tqs__sampler_step(S, amp)) != 0) return rc;
    for (k = 0; k < n_per_chain; k++) {
        for (step = 0; step < (long)sweeps_between * N; step++)
            if ((rc = tqs__sampler_step(S, amp)) != 0) return rc;
        if (S->n_moves && (rc = tqs__sampler_symmetry_move(S, amp)) != 0) return rc;
        for (c = 0; c < M; c++) {
            memcpy(samples + ((size_t)c * n_per_chain + k) * N, S->state + (size_t)c * N, (size_t)N);
            if (logpsi) logpsi[(size_t)c * n_per_chain + k] = S->logpsi[c];
        }
    }
    return TQS_OK;
}

TQSDEF double tqs_sampler_acceptance(const tqs_sampler *S, int c) {
    uint64_t a = 0, p = 0;
    int i;
    if (!S || !S->accepted || c >= S->n_chains) return NAN;
    if (c >= 0) { a = S->accepted[c]; p = S->proposed[c]; }
    else for (i = 0; i < S->n_chains; i++) { a += S->accepted[i]; p += S->proposed[i]; }
    return p ? (double)a / (double)p : 0.0;
}

/* ===================================================================== */
/* Local energy                                                          */
/* ===================================================================== */
TQSDEF int tqs_eloc_ws_init(tqs_eloc_ws *ws, const tqs_hamiltonian *H, int chunk) {
    int N;
    if (!ws || !H || !H->lat.N) return tqs__fail(TQS_EINVAL, "local energy: null pointer");
    memset(ws, 0, sizeof *ws);
    if (chunk < 1) return tqs__fail(TQS_EINVAL, "local energy: chunk must be >= 1 (got %d)", chunk);
    N = H->lat.N;
    ws->N = N; ws->chunk = chunk; ws->max_conn = tqs_hamiltonian_max_connected(H);
    ws->batch = (int8_t *)tqs__alloc((size_t)chunk * N);
    ws->owner = (int *)tqs__alloc(sizeof(int) * chunk);
    ws->mel = (double *)tqs__alloc(sizeof(double) * chunk);
    ws->lp = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * chunk);
    ws->flips = (int *)tqs__alloc(sizeof(int) * 2 * (size_t)ws->max_conn);
    ws->mels = (double *)tqs__alloc(sizeof(double) * ws->max_conn);
    if (!ws->batch || !ws->owner || !ws->mel || !ws->lp || !ws->flips || !ws->mels) {
        tqs_eloc_ws_free(ws);
        return tqs__fail(TQS_ENOMEM, "local energy: out of memory");
    }
    return TQS_OK;
}

TQSDEF void tqs_eloc_ws_free(tqs_eloc_ws *ws) {
    if (!ws) return;
    TQS_FREE(ws->batch); TQS_FREE(ws->owner); TQS_FREE(ws->mel); TQS_FREE(ws->lp);
    TQS_FREE(ws->flips); TQS_FREE(ws->mels);
    memset(ws, 0, sizeof *ws);
}

/* Adds H_ss' psi(s')/psi(s) of the n gathered connections to their owners. */
static int tqs__eloc_flush(tqs_complex *eloc, const tqs_amplitude *amp, tqs_eloc_ws *ws,
                           const tqs_complex *logpsi, int n, long first) {
    int k, k0, rc;
    if (n == 0) return TQS_OK;
    rc = tqs__amp_eval(amp, ws->lp, ws->batch, n, ws->N);
    if (rc) return rc;
    for (k0 = 0; k0 < n; k0 += 64) {   /* the terms in blocks, vectorised; summed in a fixed order: deterministic */
        int nk = n - k0 < 64 ? n - k0 : 64;
        double lre[64], lim[64], tre[64], tim[64];
        for (k = 0; k < nk; k++) {
            const tqs_complex *ls = logpsi + first + ws->owner[k0 + k];
            lre[k] = ws->lp[k0 + k].re - ls->re; lim[k] = ws->lp[k0 + k].im - ls->im;
        }
        tqs__phase_terms(tre, tim, ws->mel + k0, lre, lim, nk);
        for (k = 0; k < nk; k++) {
            long s = first + ws->owner[k0 + k];
            eloc[s].re += tre[k]; eloc[s].im += tim[k];
        }
    }
    return TQS_OK;
}

TQSDEF int tqs_local_energy(tqs_complex *eloc, const tqs_hamiltonian *H, const tqs_amplitude *amp,
                            tqs_eloc_ws *ws, const int8_t *configs, const tqs_complex *logpsi, long B) {
    int N, fill = 0, rc, K, k, chunk;
    long s, first = 0;
    if (!eloc || !H || !amp || !amp->fn || !ws || !ws->batch || (B > 0 && (!configs || !logpsi)))
        return tqs__fail(TQS_EINVAL, "local energy: null pointer");
    if (ws->N != H->lat.N) return tqs__fail(TQS_EINVAL, "local energy: workspace made for another lattice");
    N = ws->N;
    chunk = ws->chunk < amp->max_batch ? ws->chunk : amp->max_batch;
    if (chunk < 1) return tqs__fail(TQS_EINVAL, "local energy: amplitude without batch size");
    for (s = 0; s < B; s++) {
        const int8_t *st = configs + (size_t)s * N;
        eloc[s].re = tqs_hamiltonian_diagonal(H, st);
        eloc[s].im = 0.0;
        K = tqs_hamiltonian_connected(H, st, ws->flips, ws->mels);
        for (k = 0; k < K; k++) {
            int8_t *dst;
            if (fill == chunk) {
                if ((rc = tqs__eloc_flush(eloc, amp, ws, logpsi, fill, first)) != 0) return rc;
                fill = 0; first = s;
            }
            if (fill == 0) first = s;
            dst = ws->batch + (size_t)fill * N;
            memcpy(dst, st, (size_t)N);
            dst[ws->flips[2 * k]] = st[ws->flips[2 * k + 1]];
            dst[ws->flips[2 * k + 1]] = st[ws->flips[2 * k]];
            ws->owner[fill] = (int)(s - first);
            ws->mel[fill] = ws->mels[k];
            fill++;
        }
    }
    return tqs__eloc_flush(eloc, amp, ws, logpsi, fill, first);
}

/* ===================================================================== */
/* Statistics                                                            */
/* ===================================================================== */
/* The clip's centre (the weighted mean) and width (c weighted mean absolute
 * deviations), over all M local energies. */
static void tqs__clip_bounds(double *m_re, double *m_im, double *width, const tqs_complex *e, const double *w, long M, double c) {
    double mr = 0, mi = 0, dev = 0;
    long s;
    for (s = 0; s < M; s++) { double ws = w ? w[s] : 1.0 / (double)M; mr += ws * e[s].re; mi += ws * e[s].im; }
    for (s = 0; s < M; s++) dev += (w ? w[s] : 1.0 / (double)M) * hypot(e[s].re - mr, e[s].im - mi);
    *m_re = mr; *m_im = mi; *width = c * dev;
}
/* One local energy clipped (1 if moved); unmoved ones stay bit for bit. */
static int tqs__clip_one(tqs_complex *e, double m_re, double m_im, double width) {
    double r = hypot(e->re - m_re, e->im - m_im);
    if (!(r > width)) return 0;
    e->re = m_re + width * ((e->re - m_re) / r);
    e->im = m_im + width * ((e->im - m_im) / r);
    return 1;
}
TQSDEF long tqs_clip_local_energies(tqs_complex *out, const tqs_complex *eloc, const double *weights, long M, double c) {
    double mr, mi, width;
    long s, moved = 0;
    if (!out || !eloc) return tqs__fail(TQS_EINVAL, "clip: null pointer"), -1;
    if (M < 1 || !(c > 0)) return tqs__fail(TQS_EINVAL, "clip: need samples (M = %ld) and c > 0 (got %g)", M, c), -1;
    tqs__clip_bounds(&mr, &mi, &width, eloc, weights, M, c);
    for (s = 0; s < M; s++) { out[s] = eloc[s]; moved += tqs__clip_one(&out[s], mr, mi, width); }
    return moved;
}

TQSDEF int tqs_statistics(tqs_stats *st, const double *x, int n_chains, int n_per_chain) {
    long n, i;
    int c, t, W, L = n_per_chain;
    double mean = 0, var = 0, c0, tau = 0.5;
    if (!st || !x) return tqs__fail(TQS_EINVAL, "statistics: null pointer");
    if (n_chains < 1 || n_per_chain < 1) return tqs__fail(TQS_EINVAL, "statistics: no samples");
    n = (long)n_chains * n_per_chain;
    for (i = 0; i < n; i++) mean += x[i];
    mean /= (double)n;
    for (i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    c0 = var / (double)n;
    var = n > 1 ? var / (double)(n - 1) : 0.0;
    /* tau = 1/2 + sum_{t=1..W} rho(t), smallest W with W >= 5 tau (Sokal) */
    if (c0 > 0 && L > 1) {
        for (W = 1; W < L / 2 + 1 && W < L; W++) {
            double ct = 0;
            for (c = 0; c < n_chains; c++) {
                const double *xc = x + (size_t)c * L;
                double sum = 0;
                for (t = 0; t + W < L; t++) sum += (xc[t] - mean) * (xc[t + W] - mean);
                ct += sum / (double)(L - W);
            }
            tau += ct / n_chains / c0;
            if (W >= 5 * tau) break;
        }
        if (tau < 0.5 / (double)n) tau = 0.5 / (double)n; /* strongly anti-correlated noise: keep it positive */
    }
    st->mean = mean;
    st->variance = var;
    st->tau = tau;
    st->error = sqrt(var * 2.0 * tau / (double)n);
    /* split-R-hat: every chain cut in two halves of length h */
    st->rhat = NAN;
    if (L >= 4) {
        int h = L / 2, m = 2 * n_chains, j;
        double Wm = 0, Bv = 0, gm = 0;
        for (j = 0; j < m; j++) {
            const double *xc = x + (size_t)(j / 2) * L + (j % 2) * (L - h);
            double mu = 0, v = 0;
            for (t = 0; t < h; t++) mu += xc[t];
            mu /= h;
            for (t = 0; t < h; t++) v += (xc[t] - mu) * (xc[t] - mu);
            Wm += v / (h - 1);
            gm += mu; Bv += mu * mu;
        }
        Wm /= m; gm /= m;
        Bv = (Bv / m - gm * gm) * m / (m - 1);   /* variance of the chain means = B/h */
        if (Wm > 0) st->rhat = sqrt(((h - 1.0) / h * Wm + Bv) / Wm);
        else st->rhat = Bv > 0 ? HUGE_VAL : 1.0;
    }
    return TQS_OK;
}

/* ===================================================================== */
/* Observables                                                           */
/* ===================================================================== */
#define TQS__OBS_W(N) (7 * (N) + 2)   /* estimators per configuration (the layout: tqs__obs_walk) */
#define TQS__OBS_BLOCK 64              /* configurations per batched amplitude call, at most */

TQSDEF void tqs_observables_free(tqs_observables *o) {
    if (!o) return;
    TQS_FREE(o->corr); TQS_FREE(o->corr_err); TQS_FREE(o->sq); TQS_FREE(o->sq_err);
    TQS_FREE(o->dimer[0]); TQS_FREE(o->dimer[1]); TQS_FREE(o->dimer_err[0]); TQS_FREE(o->dimer_err[1]);
    TQS_FREE(o->ref); TQS_FREE(o->rbond); TQS_FREE(o->conf); TQS_FREE(o->lp); TQS_FREE(o->vals); TQS_FREE(o->col);
    TQS_FREE(o->cosq); TQS_FREE(o->mean); TQS_FREE(o->block);
    memset(o, 0, sizeof *o);
}

/* The index of the displacement (dx, dy), periodic. */
static int tqs__obs_disp(const tqs_observables *o, int dx, int dy) {
    return ((dx % o->Lx + o->Lx) % o->Lx) * o->Ly + (dy % o->Ly + o->Ly) % o->Ly;
}

TQSDEF int tqs_observables_init(tqs_observables *o, const tqs_lattice *lat, const int *ref_sites, int n_ref, long max_samples) {
    int N, i, r, q, d, W;
    if (!o || !lat || !lat->N) return tqs__fail(TQS_EINVAL, "observables: null pointer or empty lattice");
    memset(o, 0, sizeof *o);
    N = lat->N;
    W = TQS__OBS_W(N);
    if (!ref_sites) n_ref = N;
    if (n_ref < 1 || n_ref > N || max_samples < 1) return tqs__fail(TQS_EINVAL, "observables: %d reference sites, %ld samples", n_ref, max_samples);
    if ((double)max_samples * W * sizeof(double) > 0.25 * (double)SIZE_MAX)
        return tqs__fail(TQS_ETOOBIG, "observables: %ld samples of %d sites is too many", max_samples, N);
    o->Lx = lat->Lx; o->Ly = lat->Ly; o->N = N; o->n_ref = n_ref; o->max_samples = max_samples;
    o->max_conf = 4 * N + 3 * n_ref * N;
    o->cap = (long)TQS__OBS_BLOCK * 7 * N;
    if (o->cap < o->max_conf) o->cap = o->max_conf;
    o->corr = (double *)tqs__calloc(sizeof(double) * N); o->corr_err = (double *)tqs__calloc(sizeof(double) * N);
    o->sq = (double *)tqs__calloc(sizeof(double) * N); o->sq_err = (double *)tqs__calloc(sizeof(double) * N);
    for (i = 0; i < 2; i++) { o->dimer[i] = (double *)tqs__calloc(sizeof(double) * N); o->dimer_err[i] = (double *)tqs__calloc(sizeof(double) * N); }
    o->ref = (int *)tqs__alloc(sizeof(int) * n_ref);
    o->rbond = (signed char *)tqs__calloc((size_t)N);
    o->conf = (int8_t *)tqs__alloc((size_t)o->cap * N);
    o->lp = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * (size_t)o->cap);
    o->vals = (double *)tqs__alloc(sizeof(double) * W * (size_t)max_samples);
    o->col = (double *)tqs__alloc(sizeof(double) * (size_t)max_samples);
    o->cosq = (double *)tqs__alloc(sizeof(double) * (size_t)N * N);
    o->mean = (double *)tqs__calloc(sizeof(double) * W);
    o->block = (double *)tqs__alloc(sizeof(double) * W * TQS__OBS_BLOCK);
    if (!o->mean || !o->block || !o->corr || !o->corr_err || !o->sq || !o->sq_err || !o->dimer[0] || !o->dimer[1] || !o->dimer_err[0] ||
        !o->dimer_err[1] || !o->ref || !o->rbond || !o->conf || !o->lp || !o->vals || !o->col || !o->cosq) {
        tqs_observables_free(o);
        return tqs__fail(TQS_ENOMEM, "observables: out of memory for %ld samples", max_samples);
    }
    for (i = 0; i < n_ref; i++) {
        o->ref[i] = ref_sites ? ref_sites[i] : i;
        if (o->ref[i] < 0 || o->ref[i] >= N) { int bad = o->ref[i]; tqs_observables_free(o); return tqs__fail(TQS_EINVAL, "observables: reference site %d outside the lattice", bad); }
    }
    /* the displacements that are bonds (distinct for L >= 4): 1 + d: +e_d, 3 + d: -e_d,
     * 5 + d: +f_d, 7 + d: -f_d, with e_0 = (1, 0), e_1 = (0, 1), f_0 = (1, 1), f_1 = (1, -1) */
    for (d = 0; d < 2; d++) {
        o->rbond[tqs__obs_disp(o, 1 - d, d)] = (signed char)(1 + d);
        o->rbond[tqs__obs_disp(o, d - 1, -d)] = (signed char)(3 + d);
        o->rbond[tqs__obs_disp(o, 1, 1 - 2 * d)] = (signed char)(5 + d);
        o->rbond[tqs__obs_disp(o, -1, 2 * d - 1)] = (signed char)(7 + d);
    }
    for (q = 0; q < N; q++) for (r = 0; r < N; r++) {
        double ph = 2.0 * 3.14159265358979323846 * ((double)(q / lat->Ly) * (r / lat->Ly) / lat->Lx + (double)(q % lat->Ly) * (r % lat->Ly) / lat->Ly);
        o->cosq[(size_t)q * N + r] = cos(ph);
    }
    return TQS_OK;
}

/* The site i moved by the displacement r (an index dx Ly + dy). */
static int tqs__obs_shift(const tqs_observables *o, int i, int r) {
    int x = (i / o->Ly + r / o->Ly) % o->Lx, y = (i % o->Ly + r % o->Ly) % o->Ly;
    return x * o->Ly + y;
}

/* One moved configuration, P_ij s or P_kl P_ij s (k < 0: one exchange):
 * pass 0 lists it in row *m of conf, pass 1 reads psi(moved)/psi(s) from
 * row *m of lp; either way the row advances. */
static void tqs__obs_row(tqs_observables *o, const int8_t *s, tqs_complex ls, int i, int j, int k, int l, int pass, long *m,
                         double *re, double *im) {
    if (!pass) {
        int8_t *c = o->conf + (size_t)*m * o->N, t;
        memcpy(c, s, (size_t)o->N);
        t = c[i]; c[i] = c[j]; c[j] = t;
        if (k >= 0) { t = c[k]; c[k] = c[l]; c[l] = t; }
        *re = *im = 0;
    } else {
        double mag = exp(o->lp[*m].re - ls.re), ph = o->lp[*m].im - ls.im;
        *re = mag * cos(ph); *im = mag * sin(ph);
    }
    (*m)++;
}

/* The estimators of one configuration s (log psi ls), W = 7N + 2 of them in v
 * (pass 1; pass 0 only lists the moved configurations, v unused), with the
 * reference sites refs[0 .. nr):
 *   v[r]             C_s(r) = (1/nr) sum_{i ref} (S_i . S_{i+r})_s
 *   v[N + 2a + o]    (D_b)_s, b = (a, a + e_o), every site a
 *   v[3N + o N + r]  (1/nr) sum_{i ref} (D_b D_{b+r})_s, b = (i, i + e_o)
 *   v[5N + 2a + d]   (S_a . S_{a+f_d})_s, every site a
 *   v[7N], v[7N + 1] sum over the nearest (next-nearest) bonds of Im psi(P_b s)/psi(s) / 2
 * Bonds first, then the pairs of C (a pair that is a bond reuses it), then
 * the products; both passes walk the same order. */
static void tqs__obs_walk(tqs_observables *o, const int8_t *s, tqs_complex ls, double *v, const int *refs, int nr, int pass, long *m) {
    int N = o->N, a, k, oo, r, e[4];
    double re, im;
    e[0] = tqs__obs_disp(o, 1, 0); e[1] = tqs__obs_disp(o, 0, 1); e[2] = tqs__obs_disp(o, 1, 1); e[3] = tqs__obs_disp(o, 1, -1);
    /* the 4N bonds, S_a.S_b = (R(P_ab s) - 1/2)/2: what the local energy evaluates */
    if (pass) v[7 * N] = v[7 * N + 1] = 0;
    for (a = 0; a < N; a++) for (k = 0; k < 4; k++) {
        int j = tqs__obs_shift(o, a, e[k]), x = k < 2 ? N + 2 * a + k : 5 * N + 2 * a + k - 2;
        if (s[a] == s[j]) { if (pass) v[x] = 0.25; continue; }
        tqs__obs_row(o, s, ls, a, j, -1, -1, pass, m, &re, &im);
        if (pass) { v[x] = 0.5 * (re - 0.5); v[7 * N + k / 2] += 0.5 * im; }
    }
    /* C_s(r); S_i . S_i = 3/4 (the exchange form holds for i != j) */
    if (pass) { v[0] = 0.75; for (r = 1; r < N; r++) v[r] = 0; }
    for (k = 0; k < nr; k++) for (r = 1; r < N; r++) {
        int i = refs[k], j = tqs__obs_shift(o, i, r), c = o->rbond[r];
        if (c) {
            if (pass) {
                int d = (c - 1) % 2, kind = (c - 1) / 2;   /* bond from i (+e, +f) or from j (-e, -f) */
                v[r] += v[(kind < 2 ? N : 5 * N) + 2 * (kind % 2 ? j : i) + d] / nr;
            }
            continue;
        }
        if (s[i] == s[j]) { if (pass) v[r] += 0.25 / nr; continue; }
        tqs__obs_row(o, s, ls, i, j, -1, -1, pass, m, &re, &im);
        if (pass) v[r] += 0.5 * (re - 0.5) / nr;
    }
    /* (D_b D_b')_s = (R(P_b' P_b s) - R(P_b s)/2 - R(P_b' s)/2 + 1/4)/4; R(P_b s) = 2 D_b + 1/2 */
    if (pass) for (r = 0; r < 2 * N; r++) v[3 * N + r] = 0;
    for (oo = 0; oo < 2; oo++) for (k = 0; k < nr; k++) for (r = 0; r < N; r++) {
        int i = refs[k], i2 = tqs__obs_shift(o, i, e[oo]), j = tqs__obs_shift(o, i, r), j2 = tqs__obs_shift(o, j, e[oo]);
        double r1 = pass ? 2 * v[N + 2 * i + oo] + 0.5 : 0, r2 = pass ? 2 * v[N + 2 * j + oo] + 0.5 : 0, r12;
        int m1 = s[i] != s[i2], m2;
        /* s1 = P_b s, then whether P_b' moves s1 */
        int8_t si = s[i], si2 = s[i2], sj, sj2;
        sj = j == i ? si2 : j == i2 ? si : s[j];
        sj2 = j2 == i ? si2 : j2 == i2 ? si : s[j2];
        m2 = sj != sj2;
        if (!m1 || !m2) {   /* one of the exchanges changes nothing: a single ratio */
            if (pass) {
                r12 = !m1 ? r2 : r1;
                if (!m1 && !m2) r12 = 1.0;
                v[3 * N + oo * N + r] += 0.25 * (r12 - 0.5 * r1 - 0.5 * r2 + 0.25) / nr;
            }
            continue;
        }
        /* both move: P_b' P_b s = s only when b' is b itself (two different
         * exchanges that both move spins never cancel) */
        if ((j == i && j2 == i2) || (j == i2 && j2 == i)) {
            if (pass) v[3 * N + oo * N + r] += 0.25 * (1.0 - 0.5 * r1 - 0.5 * r2 + 0.25) / nr;
            continue;
        }
        tqs__obs_row(o, s, ls, i, i2, j, j2, pass, m, &re, &im);
        if (pass) v[3 * N + oo * N + r] += 0.25 * (re - 0.5 * r1 - 0.5 * r2 + 0.25) / nr;
    }
}

/* The estimators of configurations [0, n). weights NULL: samples, each with
 * one reference site drawn from a hash of its index, into vals; else exact
 * weights, every reference site, summed into mean. The moved configurations
 * of up to TQS__OBS_BLOCK configurations go to the amplitude in one batched
 * call and are read back in the same order. */
static int tqs__obs_run(tqs_observables *o, const tqs_amplitude *amp, const int8_t *configs, const tqs_complex *logpsi,
                        const double *weights, long n) {
    int N = o->N, W = TQS__OBS_W(N), c, rc, pass;
    long per_max = weights ? o->max_conf : 7L * N, t = 0;
    while (t < n) {
        long start = t, end = n, m = 0, u;
        for (pass = 0; pass < 2; pass++) {
            int nb = 0;
            m = 0;
            for (u = start; u < end; u++) {
                const int *refs = o->ref;
                int nr = o->n_ref;
                double *v = NULL;
                if (weights && weights[u] == 0.0) continue;
                if (!pass && (nb == TQS__OBS_BLOCK || m + per_max > o->cap)) { end = u; break; }
                if (!weights) { uint64_t h = (uint64_t)u; refs = o->ref + tqs__splitmix64(&h) % (uint64_t)o->n_ref; nr = 1; }
                if (pass) v = weights ? o->block + (size_t)nb * W : o->vals + (size_t)u * W;
                tqs__obs_walk(o, configs + (size_t)u * N, logpsi[u], v, refs, nr, pass, &m);
                if (pass && weights) for (c = 0; c < W; c++) o->mean[c] += weights[u] * v[c];
                nb++;
            }
            if (!pass) {
                if (m && (rc = tqs__amp_eval(amp, o->lp, o->conf, m, N)) != 0) return rc;
                o->n_amplitudes += m;
            } else o->n_configs += nb;
        }
        t = end;
    }
    return TQS_OK;
}

/* The observables from the means of the estimators (mb: the bond part): the
 * connected dimer correlation of orientation oo at r, and its linearisation
 * around the means for one configuration's values x:
 * x_P - (1/n_ref) sum_k (m_{b_k + r} x_{b_k} + m_{b_k} x_{b_k + r}). */
static double tqs__obs_dimer_lin(const tqs_observables *o, const double *x, const double *mb, int oo, int r) {
    int N = o->N, k;
    double d = x[3 * N + oo * N + r];
    for (k = 0; k < o->n_ref; k++) {
        int i = o->ref[k], j = tqs__obs_shift(o, i, r);
        d -= (mb[2 * j + oo] * x[N + 2 * i + oo] + mb[2 * i + oo] * x[N + 2 * j + oo]) / o->n_ref;
    }
    return d;
}
static double tqs__obs_dimer_sign(const tqs_observables *o, int oo, int r) {
    int d = oo == 0 ? r / o->Ly : r % o->Ly;   /* cos(Q_o . r), Q_0 = (pi, 0), Q_1 = (0, pi) */
    return d % 2 ? -1.0 : 1.0;
}
/* The average over the N bonds of one kind (first: N or 5N, orientation oo) in x. */
static double tqs__obs_bond_avg(const tqs_observables *o, const double *x, int first, int oo) {
    double t = 0;
    int k;
    for (k = 0; k < o->N; k++) t += x[first + 2 * k + oo];
    return t / o->N;
}
/* From the means of the estimators: C, S(q), the bonds, the connected dimer
 * correlations and their structure factors. */
static void tqs__obs_finish_means(tqs_observables *o, const double *mean) {
    int N = o->N, r, q, oo, k;
    const double *mb = mean + N;
    for (r = 0; r < N; r++) o->corr[r] = mean[r];
    for (q = 0; q < N; q++) { double t = 0; for (r = 0; r < N; r++) t += o->cosq[(size_t)q * N + r] * mean[r]; o->sq[q] = t; }
    for (oo = 0; oo < 2; oo++) {
        double sf = 0;
        o->bond[oo] = tqs__obs_bond_avg(o, mean, N, oo);
        o->diag[oo] = tqs__obs_bond_avg(o, mean, 5 * N, oo);
        for (r = 0; r < N; r++) {
            double d = mean[3 * N + oo * N + r];
            for (k = 0; k < o->n_ref; k++) { int i = o->ref[k], j = tqs__obs_shift(o, i, r); d -= mb[2 * i + oo] * mb[2 * j + oo] / o->n_ref; }
            o->dimer[oo][r] = d;
            sf += tqs__obs_dimer_sign(o, oo, r) * d;
        }
        o->dimer_sq[oo] = sf;
    }
}

TQSDEF int tqs_observables_sampled(tqs_observables *o, const tqs_amplitude *amp, const int8_t *samples,
                                   const tqs_complex *logpsi, int n_chains, int n_per_chain) {
    long M, s;
    int N, W, c, rc, q, oo, r;
    tqs_stats st = {0, 0, 0, 0, 0};
    double *mean;
    if (!o || !o->vals || !amp || !amp->fn || !samples || !logpsi) return tqs__fail(TQS_EINVAL, "observables: null pointer");
    M = (long)n_chains * n_per_chain;
    if (n_chains < 1 || n_per_chain < 1 || M > o->max_samples)
        return tqs__fail(TQS_EINVAL, "observables: %d x %d samples (room for %ld)", n_chains, n_per_chain, o->max_samples);
    N = o->N; W = TQS__OBS_W(N);
    o->n_configs = 0; o->n_amplitudes = 0; o->n_chains = n_chains; o->n_per_chain = n_per_chain;
    if ((rc = tqs__obs_run(o, amp, samples, logpsi, NULL, M)) != 0) { o->n_configs = 0; return rc; }
    /* the means; C(r)'s errors over the chains */
    mean = o->mean;
    for (c = 0; c < W; c++) mean[c] = 0;
    for (s = 0; s < M; s++) for (c = 0; c < W; c++) mean[c] += o->vals[(size_t)W * s + c];
    for (c = 0; c < W; c++) mean[c] /= (double)M;
    for (r = 0; r < N; r++) {
        for (s = 0; s < M; s++) o->col[s] = o->vals[(size_t)W * s + r];
        tqs_statistics(&st, o->col, n_chains, n_per_chain);
        o->corr_err[r] = st.error;
    }
    tqs__obs_finish_means(o, mean);
    /* errors of the combinations: each a linear estimator per sample (the
     * dimer ones linearised around the means) through tqs_statistics */
    for (q = 0; q < N; q++) {
        for (s = 0; s < M; s++) {
            const double *x = o->vals + (size_t)W * s;
            double t = 0;
            for (r = 0; r < N; r++) t += o->cosq[(size_t)q * N + r] * x[r];
            o->col[s] = t;
        }
        tqs_statistics(&st, o->col, n_chains, n_per_chain);
        o->sq_err[q] = st.error;
    }
    for (oo = 0; oo < 2; oo++) {
        for (s = 0; s < M; s++) o->col[s] = tqs__obs_bond_avg(o, o->vals + (size_t)W * s, N, oo);
        tqs_statistics(&st, o->col, n_chains, n_per_chain);
        o->bond_err[oo] = st.error;
        for (s = 0; s < M; s++) o->col[s] = tqs__obs_bond_avg(o, o->vals + (size_t)W * s, 5 * N, oo);
        tqs_statistics(&st, o->col, n_chains, n_per_chain);
        o->diag_err[oo] = st.error;
        for (r = 0; r < N; r++) {
            for (s = 0; s < M; s++) o->col[s] = tqs__obs_dimer_lin(o, o->vals + (size_t)W * s, mean + N, oo, r);
            tqs_statistics(&st, o->col, n_chains, n_per_chain);
            o->dimer_err[oo][r] = st.error;
        }
        for (s = 0; s < M; s++) {
            double t = 0;
            for (r = 0; r < N; r++) t += tqs__obs_dimer_sign(o, oo, r) * tqs__obs_dimer_lin(o, o->vals + (size_t)W * s, mean + N, oo, r);
            o->col[s] = t;
        }
        tqs_statistics(&st, o->col, n_chains, n_per_chain);
        o->dimer_sq_err[oo] = st.error;
    }
    return TQS_OK;
}

TQSDEF int tqs_observables_weighted(tqs_observables *o, const tqs_amplitude *amp, const int8_t *configs,
                                    const tqs_complex *logpsi, const double *weights, long n) {
    int N, c, rc, q, oo, r;
    if (!o || !o->vals || !amp || !amp->fn || !configs || !logpsi || !weights || n < 1) return tqs__fail(TQS_EINVAL, "observables: null pointer or no configurations");
    N = o->N;
    for (c = 0; c < TQS__OBS_W(N); c++) o->mean[c] = 0;
    o->n_configs = 0; o->n_amplitudes = 0; o->n_chains = o->n_per_chain = 0;
    if ((rc = tqs__obs_run(o, amp, configs, logpsi, weights, n)) != 0) { o->n_configs = 0; return rc; }
    tqs__obs_finish_means(o, o->mean);
    for (q = 0; q < N; q++) o->corr_err[q] = o->sq_err[q] = 0;
    for (oo = 0; oo < 2; oo++) {
        o->bond_err[oo] = o->diag_err[oo] = o->dimer_sq_err[oo] = 0;
        for (r = 0; r < N; r++) o->dimer_err[oo][r] = 0;
    }
    return TQS_OK;
}

/* E_loc(s) of one configuration's estimators x: J1 and J2 times the sums of the bonds'. */
static void tqs__obs_eloc(const tqs_observables *o, const double *x, double J1, double J2, double *re, double *im) {
    int N = o->N, k;
    double s1 = 0, s2 = 0;
    for (k = 0; k < 2 * N; k++) { s1 += x[N + k]; s2 += x[5 * N + k]; }
    *re = J1 * s1 + J2 * s2;
    *im = J1 * x[7 * N] + J2 * x[7 * N + 1];
}

TQSDEF int tqs_observables_energy(tqs_observables *o, double J1, double J2, tqs_stats *st, double *imag) {
    long M, s;
    double im, sum_im = 0;
    if (!o || !o->vals || !st) return tqs__fail(TQS_EINVAL, "observables: null pointer");
    if (o->n_configs == 0) return tqs__fail(TQS_EINVAL, "observables: no configurations measured yet");
    if (o->n_chains == 0) {   /* exact weights: the means */
        memset(st, 0, sizeof *st);
        tqs__obs_eloc(o, o->mean, J1, J2, &st->mean, &im);
        st->variance = st->tau = st->rhat = NAN;
        if (imag) *imag = im;
        return TQS_OK;
    }
    M = (long)o->n_chains * o->n_per_chain;
    for (s = 0; s < M; s++) { tqs__obs_eloc(o, o->vals + (size_t)TQS__OBS_W(o->N) * s, J1, J2, &o->col[s], &im); sum_im += im; }
    if (imag) *imag = sum_im / (double)M;
    return tqs_statistics(st, o->col, o->n_chains, o->n_per_chain);
}

/* ===================================================================== */
/* Exact enumeration                                                     */
/* ===================================================================== */
/* ---- several processes (tqs_comm): the collectives, one process when NULL ---- */
static int tqs__comm_n(const tqs_comm *c) { return c && c->size > 1 ? c->size : 1; }
static int tqs__comm_check(const tqs_comm *c) {
    if (tqs__comm_n(c) == 1) return TQS_OK;
    if (!c->sum || !c->allgather || !c->alltoall || c->rank < 0 || c->rank >= c->size)
        return tqs__fail(TQS_EINVAL, "comm: rank %d of %d, or a missing callback", c->rank, c->size);
    return TQS_OK;
}
static int tqs__comm_sum(const tqs_comm *c, double *x, long n) {
    if (tqs__comm_n(c) == 1 || n == 0) return TQS_OK;
    return c->sum(c->ctx, x, n) ? tqs__fail(TQS_ECOMM, "comm: the sum of %ld values over %d processes failed", n, c->size) : TQS_OK;
}
static int tqs__comm_allgather(const tqs_comm *c, const void *send, void *recv, size_t bytes) {
    if (tqs__comm_n(c) == 1) { if (bytes && recv != send) memmove(recv, send, bytes); return TQS_OK; }
    return c->allgather(c->ctx, send, recv, bytes) ? tqs__fail(TQS_ECOMM, "comm: an allgather of %zu bytes failed", bytes) : TQS_OK;
}
static int tqs__comm_alltoall(const tqs_comm *c, const void *send, void *recv, size_t bytes) {
    if (tqs__comm_n(c) == 1) { if (bytes && recv != send) memmove(recv, send, bytes); return TQS_OK; }
    return c->alltoall(c->ctx, send, recv, bytes) ? tqs__fail(TQS_ECOMM, "comm: an all-to-all of %zu bytes per process failed", bytes) : TQS_OK;
}
/* Every process's value of x must be the same (a check on the callers;
 * allocates, so for set-up only). */
static int tqs__comm_same(const tqs_comm *c, double x, const char *what) {
    double *all;
    int rc, r;
    if (tqs__comm_n(c) == 1) return TQS_OK;
    if (!(all = (double *)tqs__alloc(sizeof(double) * (size_t)c->size))) return tqs__fail(TQS_ENOMEM, "comm: out of memory");
    rc = tqs__comm_allgather(c, &x, all, sizeof x);
    for (r = 0; r < c->size && !rc; r++)
        if (all[r] != x) rc = tqs__fail(TQS_ECOMM, "comm: %s differs between the processes (%g on process %d, %g on %d)", what, x, c->rank, all[r], r);
    TQS_FREE(all);
    return rc;
}
/* The sum over processes of the lower triangle of an n x n matrix, packed in
 * place (row i moves to offset i(i+1)/2) so that half the matrix travels. */
static int tqs__comm_sum_lower(const tqs_comm *c, double *A, long n) {
    long i;
    int rc;
    if (tqs__comm_n(c) == 1) return TQS_OK;
    for (i = 1; i < n; i++) memmove(A + i * (i + 1) / 2, A + (size_t)i * n, sizeof(double) * (size_t)(i + 1));
    rc = tqs__comm_sum(c, A, n * (n + 1) / 2);
    for (i = n - 1; i >= 1; i--) memmove(A + (size_t)i * n, A + i * (i + 1) / 2, sizeof(double) * (size_t)(i + 1));
    return rc;
}
TQSDEF int tqs_enumeration_init(tqs_enumeration *E, const tqs_lattice *lat, int b) {
    int rc, N, t, nt, tx, ty, i;
    size_t r, dim;
    int *perm = NULL;
    if (!E || !lat) return tqs__fail(TQS_EINVAL, "enumeration: null pointer");
    memset(E, 0, sizeof *E);
    if (b < 0 || (b > 0 && (lat->Lx % b || lat->Ly % b)))
        return tqs__fail(TQS_EINVAL, "enumeration: b = %d must be 0 or divide Lx and Ly", b);
    N = lat->N;
    if ((rc = tqs_basis_init(&E->basis, N)) != 0) return rc;
    dim = E->basis.dim;
    nt = b ? (lat->Lx / b) * (lat->Ly / b) : 1;
    E->slot = (uint32_t *)tqs__alloc(sizeof(uint32_t) * dim);
    perm = (int *)tqs__alloc(sizeof(int) * (size_t)nt * N);
    if (!E->slot || !perm) { TQS_FREE(perm); tqs_enumeration_free(E); return tqs__fail(TQS_ENOMEM, "enumeration: out of memory"); }
    for (t = 0, tx = 0; tx < (b ? lat->Lx / b : 1); tx++) for (ty = 0; ty < (b ? lat->Ly / b : 1); ty++, t++)
        for (i = 0; i < N; i++) perm[t * N + i] = tqs_site(lat, i / lat->Ly + tx * b, i % lat->Ly + ty * b);
    /* representative = the smallest state of the orbit; states are sorted,
     * so a representative is met before the rest of its orbit */
    for (r = 0; r < dim; r++) {
        uint32_t st = E->basis.states[r], best = st;
        for (t = 1; t < nt; t++) {
            uint32_t moved = 0, rest = st;
            while (rest) { int a = tqs__ctz(rest); rest &= rest - 1; moved |= 1u << perm[t * N + a]; }
            if (moved < best) best = moved;
        }
        E->slot[r] = best == st ? (uint32_t)E->n++ : E->slot[tqs_basis_index(&E->basis, best)];
    }
    TQS_FREE(perm);
    E->mult = (double *)tqs__calloc(sizeof(double) * (size_t)E->n);
    E->configs = (int8_t *)tqs__alloc((size_t)E->n * (size_t)N);
    E->logpsi = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * (size_t)E->n);
    E->weights = (double *)tqs__alloc(sizeof(double) * (size_t)E->n);
    E->eloc = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * (size_t)E->n);
    E->n_slots = tqs_get_threads();
    E->flips = (int *)tqs__alloc(sizeof(int) * 8 * (size_t)N * (size_t)E->n_slots);
    E->mels = (double *)tqs__alloc(sizeof(double) * 4 * (size_t)N * (size_t)E->n_slots);
    if (!E->mult || !E->configs || !E->logpsi || !E->weights || !E->eloc || !E->flips || !E->mels) {
        tqs_enumeration_free(E);
        return tqs__fail(TQS_ENOMEM, "enumeration: out of memory");
    }
    for (r = 0; r < dim; r++) {
        uint32_t k = E->slot[r];
        if (E->mult[k] == 0) tqs_bits_to_config(E->configs + (size_t)k * N, E->basis.states[r], N);
        E->mult[k] += 1;
    }
    return TQS_OK;
}

TQSDEF void tqs_enumeration_free(tqs_enumeration *E) {
    if (!E) return;
    tqs_basis_free(&E->basis);
    TQS_FREE(E->slot); TQS_FREE(E->mult);
    TQS_FREE(E->configs); TQS_FREE(E->logpsi); TQS_FREE(E->weights); TQS_FREE(E->eloc);
    TQS_FREE(E->flips); TQS_FREE(E->mels); TQS_FREE(E->stage); TQS_FREE(E->gather);
    memset(E, 0, sizeof *E);
}

TQSDEF int tqs_enumeration_split(tqs_enumeration *E, const tqs_comm *comm) {
    int np = tqs__comm_n(comm), rc;
    if (!E || !E->configs) return tqs__fail(TQS_EINVAL, "enumeration: null pointer");
    if ((rc = tqs__comm_check(comm)) != 0) return rc;
    TQS_FREE(E->stage); TQS_FREE(E->gather);
    E->stage = E->gather = NULL;
    E->comm = np > 1 ? comm : NULL;
    E->block = (E->n + np - 1) / np;
    E->first = np > 1 ? comm->rank * E->block : 0;
    if (np == 1) return TQS_OK;
    E->stage = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * (size_t)E->block);
    E->gather = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * (size_t)E->block * np);
    if (!E->stage || !E->gather) return tqs__fail(TQS_ENOMEM, "enumeration: out of memory for the split");
    return tqs__comm_same(comm, (double)E->n, "enumeration: the number of entries");
}

/* With a split: this process's block of x (E->stage), then every block into x. */
static int tqs__enumeration_gather(tqs_enumeration *E, tqs_complex *x) {
    long lo = E->first, cnt = E->n - lo < E->block ? E->n - lo : E->block, i;
    int rc;
    if (cnt < 0) cnt = 0;
    for (i = 0; i < E->block; i++) { if (i < cnt) E->stage[i] = x[lo + i]; else E->stage[i].re = E->stage[i].im = 0; }
    if ((rc = tqs__comm_allgather(E->comm, E->stage, E->gather, sizeof(tqs_complex) * (size_t)E->block)) != 0) return rc;
    memcpy(x, E->gather, sizeof(tqs_complex) * (size_t)E->n);
    return TQS_OK;
}

TQSDEF int tqs_enumeration_evaluate(tqs_enumeration *E, const tqs_hamiltonian *H, const tqs_amplitude *amp) {
    size_t r, dim;
    double mx = -HUGE_VAL, z = 0, en = 0, var = 0;
    long lo = 0, hi;
    int rc;
    if (!E || !E->configs || !H || !amp) return tqs__fail(TQS_EINVAL, "enumeration: null pointer");
    if (E->basis.N != H->lat.N) return tqs__fail(TQS_EINVAL, "enumeration: made for %d sites, Hamiltonian has %d", E->basis.N, H->lat.N);
    dim = (size_t)E->n;
    hi = (long)dim;
    if (E->comm) { lo = E->first < hi ? E->first : hi; hi = lo + E->block < hi ? lo + E->block : hi; }
    if ((rc = tqs__amp_eval(amp, E->logpsi + lo, E->configs + (size_t)lo * E->basis.N, hi - lo, E->basis.N)) != 0) return rc;
    if (E->comm && (rc = tqs__enumeration_gather(E, E->logpsi)) != 0) return rc;
    for (r = 0; r < dim; r++) if (E->logpsi[r].re > mx) mx = E->logpsi[r].re;
    for (r = 0; r < dim; r++) { E->weights[r] = E->mult[r] * exp(2.0 * (E->logpsi[r].re - mx)); z += E->weights[r]; }
    if (!(z > 0) || !isfinite(z)) return tqs__fail(TQS_ENUMERIC, "enumeration: |psi|^2 is not normalisable");
    for (r = 0; r < dim; r++) E->weights[r] /= z;
    /* every connected configuration is itself in the basis: its log psi is
     * already known, found by ranking, so no further amplitude evaluation */
    {
        long rr;
        int N = E->basis.N;
        TQS__OMP(parallel for schedule(guided) num_threads(E->n_slots) if (tqs__par(8.0 * N * (double)(hi - lo))))
        for (rr = lo; rr < hi; rr++) {
            int slot = 0, K, k;
            const int8_t *st = E->configs + (size_t)rr * N;
            uint32_t bits = tqs_config_to_bits(st, N);
            int *flips;
            double *mels;
            tqs_complex acc;
#ifdef _OPENMP
            slot = omp_get_thread_num();
#endif
            if (E->weights[rr] == 0.0) { E->eloc[rr].re = E->eloc[rr].im = 0; continue; }  /* psi = 0 (e.g. projected out) */
            flips = E->flips + (size_t)slot * 8 * N;
            mels = E->mels + (size_t)slot * 4 * N;
            K = tqs_hamiltonian_connected(H, st, flips, mels);
            acc.re = tqs_hamiltonian_diagonal(H, st); acc.im = 0;
            for (k = 0; k < K; k++) {
                size_t j = E->slot[tqs_basis_index(&E->basis, bits ^ (1u << flips[2 * k]) ^ (1u << flips[2 * k + 1]))];
                double dre = E->logpsi[j].re - E->logpsi[rr].re, dph = E->logpsi[j].im - E->logpsi[rr].im;
                double mag = mels[k] * exp(dre);
                acc.re += mag * cos(dph); acc.im += mag * sin(dph);
            }
            E->eloc[rr] = acc;
        }
    }
    if (E->comm && (rc = tqs__enumeration_gather(E, E->eloc)) != 0) return rc;
    for (r = 0; r < dim; r++) en += E->weights[r] * E->eloc[r].re;
    for (r = 0; r < dim; r++) {
        double dr = E->eloc[r].re - en, di = E->eloc[r].im;
        var += E->weights[r] * (dr * dr + di * di);
    }
    E->energy = en;
    E->variance = var;
    if (!isfinite(en)) return tqs__fail(TQS_ENUMERIC, "enumeration: non-finite energy");
    return TQS_OK;
}

/* ===================================================================== */
/* Linear algebra and stochastic reconfiguration                         */
/* ===================================================================== */
/* sum_i a[i] b[i] in 8 interleaved partial sums (lane j takes the i with
 * i mod 8 = j), added in a fixed order at the end: a vectorised loop instead
 * of one chain of dependent additions, and the same result on every call. */
static TQS__VECTORISE TQS__INLINE void tqs__dot8_into_loop(double *out, const double *a, const double *b, long n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s;
    long i, n8 = n / 8 * 8;
    int j;
    for (i = 0; i < n8; i += 8)
        for (j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    *out = s;
}
TQS__TWO_TARGETS(tqs__dot8_into, (double *out, const double *a, const double *b, long n), (out, a, b, n))
static double tqs__dot8(const double *a, const double *b, long n) {
    double s;
    tqs__dot8_into(&s, a, b, n);
    return s;
}

#define TQS__KB 256   /* rows of A per packed block */

/* The symmetric rank-k kernel behind X^T X, X X^T and the Cholesky update:
 *   C[i][j] += sign * sum_k a_k[i] a_k[j],   k < nk, i, j < n,
 * where a_k[i] = X[k*ldx + i] (rows of X are the a_k) or, with transpose,
 * a_k[i] = X[i*ldx + k] (rows of X are the n vectors). Each block of KB
 * values of k is packed into panels of 8 columns stored [k][8]; each 8 x 8
 * tile of C is one tqs__tile call on two panels. Only tiles touching the
 * wanted triangle are computed, spread over threads by rows of tiles; each entry is summed by one thread in a
 * fixed order. upper: entries (i, j >= i) are added to C[i][j]; otherwise
 * entries (i, j <= i), the lower triangle. Either way a thread owns whole
 * rows of C, so no two threads write to one cache line of a row.
 * buf holds KB * 8 * ceil(n/8) doubles. */
/* Values of k packed per block: fewer when n is large, to bound the buffer. */
static long tqs__syrk_kb(long n) { return n > 32768 ? 64 : TQS__KB; }

/* Rows 8i .. 8i+7 of C against every panel of the wanted triangle (below).
 * A function of its own so that, under run-time dispatch, the AVX2 copy has
 * the tile inlined with its strides as constants. */
#define TQS__SYRK_ROW(TILE)                                                                    \
    {                                                                                          \
        const double *a = buf + (size_t)i * kb * TQS__T, *rows[TQS__T];                        \
        long pj, pj0 = upper ? i : 0, pj1 = upper ? npan : i + 1;                              \
        int ii, jj;                                                                            \
        for (ii = 0; ii < TQS__T; ii++) rows[ii] = a + ii;                                     \
        for (pj = pj0; pj < pj1; pj++) {                                                       \
            double acc[TQS__T * TQS__T];                                                       \
            memset(acc, 0, sizeof acc);                                                        \
            TILE(acc, rows, TQS__T, buf + (size_t)pj * kb * TQS__T, TQS__T, kb);               \
            for (ii = 0; ii < TQS__T && i * TQS__T + ii < n; ii++)                             \
                for (jj = 0; jj < TQS__T && pj * TQS__T + jj < n; jj++) {                      \
                    long r = i * TQS__T + ii, c = pj * TQS__T + jj;                            \
                    if (upper ? c < r : c > r) continue;                                       \
                    C[(size_t)r * ldc + c] += sign * acc[ii * TQS__T + jj];                    \
                }                                                                              \
        }                                                                                      \
    }
#define TQS__SYRK_ROW_PARAMS (double *C, long ldc, const double *buf, long n, long npan, long kb, long i, double sign, int upper)
#ifdef TQS__DISPATCH
static TQS__AVX2 TQS__NOINLINE void tqs__syrk_row_avx2 TQS__SYRK_ROW_PARAMS TQS__SYRK_ROW(tqs__tile_avx2_body)
static TQS__NOINLINE void tqs__syrk_row_base TQS__SYRK_ROW_PARAMS TQS__SYRK_ROW(tqs__tile_base)
static void tqs__syrk_row TQS__SYRK_ROW_PARAMS {
    if (tqs__have_avx2()) tqs__syrk_row_avx2(C, ldc, buf, n, npan, kb, i, sign, upper);
    else tqs__syrk_row_base(C, ldc, buf, n, npan, kb, i, sign, upper);
}
#else
static void tqs__syrk_row TQS__SYRK_ROW_PARAMS TQS__SYRK_ROW(tqs__tile_base)
#endif

static void tqs__syrk(double *C, long ldc, const double *X, long ldx, long n, long nk, int transpose,
                      double sign, int upper, double *buf) {
    long npan = (n + TQS__T - 1) / TQS__T, KB = tqs__syrk_kb(n), k0, i;
    for (k0 = 0; k0 < nk; k0 += KB) {
        long kb = nk - k0 < KB ? nk - k0 : KB, p;
        TQS__OMP(parallel for schedule(guided) if (tqs__par(8.0 * n * kb)))   /* strided copies: ~8 multiply-adds' time each */
        for (p = 0; p < npan; p++) {
            double *dst = buf + (size_t)p * kb * TQS__T;
            long k, jj;
            for (jj = 0; jj < TQS__T; jj++) {
                long col = p * TQS__T + jj;
                if (col >= n) { for (k = 0; k < kb; k++) dst[k * TQS__T + jj] = 0.0; continue; }
                if (transpose) { const double *src = X + (size_t)col * ldx + k0; for (k = 0; k < kb; k++) dst[k * TQS__T + jj] = src[k]; }
                else for (k = 0; k < kb; k++) dst[k * TQS__T + jj] = X[(size_t)(k0 + k) * ldx + col];
            }
        }
        TQS__OMP(parallel for schedule(dynamic, 1) if (tqs__par(0.5 * (double)n * n * kb)))
        for (i = 0; i < npan; i++) tqs__syrk_row(C, ldc, buf, n, npan, kb, i, sign, upper);
    }
}

static size_t tqs__syrk_buf_size(long n) {
    return (size_t)tqs__syrk_kb(n) * TQS__T * (size_t)((n + TQS__T - 1) / TQS__T);
}

/* The lower triangle of the Gram matrix (all the Cholesky reads), with a
 * caller's packing buffer (tqs__syrk_buf_size doubles); the zeroing is
 * shared by the threads. */
static void tqs__gram_lower(double *C, const double *X, long R, long P, int transpose, double *buf) {
    long n = transpose ? R : P, i;
    TQS__OMP(parallel for schedule(guided) if (tqs__par(1.0 * (double)n * n)))
    for (i = 0; i < n; i++) memset(C + (size_t)i * n, 0, sizeof(double) * (size_t)(i + 1));
    tqs__syrk(C, n, X, P, n, transpose ? P : R, transpose, 1.0, 0, buf);
}

TQSDEF int tqs_gram(double *C, const double *X, long R, long P, int transpose) {
    long n = transpose ? R : P, i;
    double *buf;
    if (!C || !X || R < 0 || P < 0) return tqs__fail(TQS_EINVAL, "gram: bad arguments");
    buf = (double *)tqs__alloc(sizeof(double) * tqs__syrk_buf_size(n));
    if (!buf && n) return tqs__fail(TQS_ENOMEM, "gram: out of memory for the packing buffer");
    tqs__gram_lower(C, X, R, P, transpose, buf);
    TQS_FREE(buf);
    TQS__OMP(parallel for schedule(guided) if (tqs__par(4.0 * (double)n * n)))   /* strided: column reads */
    for (i = 0; i < n; i++) { /* mirror into the upper triangle */
        long j;
        for (j = 0; j < i; j++) C[(size_t)j * n + i] = C[(size_t)i * n + j];
    }
    return TQS_OK;
}

#ifndef TQS__NB
#define TQS__NB 128   /* Cholesky block width */
#endif
#define TQS__PR 32    /* panel rows solved together (vector lanes) */

/* Panel solve of the blocked Cholesky for rows r0 .. r0+nr-1 (nr <= TQS__PR):
 * x = a L11^{-T} for each row a, i.e. x_j = (a_j - sum_{k<j} L_jk x_k) / L_jj.
 * Row by row this is a chain of dependent dot products (scalar speed); with
 * the rows packed as columns of t, each step is one multiply-add over
 * TQS__PR independent rows, which vectorises. Each x_j is summed over k in
 * increasing order, the same whatever the chunking or the threads. */
static TQS__VECTORISE TQS__INLINE void tqs__cholesky_panel_loop(double *A, long n, long k0, long nb, long r0, long nr) {
    double t[TQS__NB][TQS__PR]; /* t[j][r] = A[r0 + r][k0 + j] */
    long j, k, r;
    for (j = 0; j < nb; j++)
        for (r = 0; r < TQS__PR; r++) t[j][r] = r < nr ? A[(size_t)(r0 + r) * n + k0 + j] : 0.0;
    for (j = 0; j < nb; j++) {
        const double *Lj = A + (size_t)(k0 + j) * n + k0; /* row j of L11 */
        double acc[TQS__PR];
        for (r = 0; r < TQS__PR; r++) acc[r] = t[j][r];
        for (k = 0; k < j; k++) {
            double l = Lj[k];
            for (r = 0; r < TQS__PR; r++) acc[r] -= l * t[k][r];
        }
        for (r = 0; r < TQS__PR; r++) t[j][r] = acc[r] / Lj[j];
    }
    for (r = 0; r < nr; r++)
        for (j = 0; j < nb; j++) A[(size_t)(r0 + r) * n + k0 + j] = t[j][r];
}
TQS__TWO_TARGETS(tqs__cholesky_panel, (double *A, long n, long k0, long nb, long r0, long nr), (A, n, k0, nb, r0, nr))

/* Right-looking blocked Cholesky: factor the TQS__NB-wide diagonal block,
 * solve the panel below it (chunks of TQS__PR rows in parallel), then the
 * trailing update A22 -= L21 L21^T with the rank-k kernel above. Only the
 * lower triangle is read and written. */
static int tqs__cholesky_with(double *A, long n, double *buf) {
    long k0, i;
    for (k0 = 0; k0 < n; k0 += TQS__NB) {
        long nb = n - k0 < TQS__NB ? n - k0 : TQS__NB, j, end = k0 + nb, nchunk = (n - end + TQS__PR - 1) / TQS__PR;
        for (j = k0; j < end; j++) { /* diagonal block, unblocked (serial: its dot products vectorised) */
            const double *Aj = A + (size_t)j * n + k0;
            double d = A[(size_t)j * n + j] - tqs__dot8(Aj, Aj, j - k0);
            if (!(d > 0) || !isfinite(d))
                return tqs__fail(TQS_ENOTPD, "cholesky: pivot %ld is %g (matrix not positive definite)", j, d);
            d = sqrt(d);
            A[(size_t)j * n + j] = d;
            for (i = j + 1; i < end; i++)
                A[(size_t)i * n + j] = (A[(size_t)i * n + j] - tqs__dot8(A + (size_t)i * n + k0, Aj, j - k0)) / d;
        }
        /* panel: L21 = A21 L11^{-T} */
        TQS__OMP(parallel for schedule(guided) if (tqs__par(0.5 * (double)(n - end) * nb * nb)))
        for (i = 0; i < nchunk; i++) {
            long r0 = end + i * TQS__PR;
            tqs__cholesky_panel(A, n, k0, nb, r0, n - r0 < TQS__PR ? n - r0 : TQS__PR);
        }
        if (end < n) /* A22 -= L21 L21^T, lower triangle */
            tqs__syrk(A + (size_t)end * n + end, n, A + (size_t)end * n + k0, n, n - end, nb, 1, -1.0, 0, buf);
    }
    return TQS_OK;
}

TQSDEF int tqs_cholesky(double *A, long n) {
    double *buf;
    int rc;
    if (!A || n < 0) return tqs__fail(TQS_EINVAL, "cholesky: bad arguments");
    buf = (double *)tqs__alloc(sizeof(double) * tqs__syrk_buf_size(n));
    if (!buf && n) return tqs__fail(TQS_ENOMEM, "cholesky: out of memory");
    rc = tqs__cholesky_with(A, n, buf);
    TQS_FREE(buf);
    return rc;
}

TQSDEF int tqs_cholesky_solve(const double *L, double *b, long n) {
    long i, k;
    if (!L || !b || n < 0) return tqs__fail(TQS_EINVAL, "cholesky_solve: null pointer or n < 0");
    for (i = 0; i < n; i++) /* L y = b */
        b[i] = (b[i] - tqs__dot8(L + (size_t)i * n, b, i)) / L[(size_t)i * n + i];
    for (i = n - 1; i >= 0; i--) { /* L^T x = y, by rows of L (contiguous) rather than its columns */
        const double *Li = L + (size_t)i * n;
        double xi = b[i] / Li[i];
        b[i] = xi;
        for (k = 0; k < i; k++) b[k] -= Li[k] * xi;
    }
    return TQS_OK;
}

TQSDEF const char *tqs_solver_name(int solver) {
    switch (solver) {
    case TQS_SOLVER_AUTO: return "auto";
    case TQS_SOLVER_PARAMETER: return "parameter";
    case TQS_SOLVER_SAMPLE: return "sample";
    case TQS_SOLVER_CG: return "cg";
    default: return "unknown";
    }
}

/* y = X v (R entries), one row per iteration. */
static void tqs__matvec(double *y, const double *X, const double *v, long R, long P) {
    long r;
    TQS__OMP(parallel for schedule(guided) if (tqs__par((double)R * P)))
    for (r = 0; r < R; r++) y[r] = tqs__dot8(X + (size_t)r * P, v, P);
}

/* y = X^T u (P entries): each thread owns a range of columns and sums the
 * rows in order, so the result does not depend on the threads. */
static TQS__VECTORISE TQS__INLINE void tqs__matvec_t_columns_loop(double *y, const double *X, const double *u, long R,
                                                                  long P, long c0, long c1) {
    long r, c;
    for (c = c0; c < c1; c++) y[c] = 0;
    for (r = 0; r < R; r++) {
        const double *x = X + (size_t)r * P;
        double ur = u[r];
        for (c = c0; c < c1; c++) y[c] += ur * x[c];
    }
}
TQS__TWO_TARGETS(tqs__matvec_t_columns, (double *y, const double *X, const double *u, long R, long P, long c0, long c1),
                 (y, X, u, R, P, c0, c1))
static void tqs__matvec_t(double *y, const double *X, const double *u, long R, long P) {
    long nblk = (P + 511) / 512, blk;
    TQS__OMP(parallel for schedule(guided) if (tqs__par((double)R * P)))
    for (blk = 0; blk < nblk; blk++)
        tqs__matvec_t_columns(y, X, u, R, P, blk * 512, blk * 512 + 512 < P ? blk * 512 + 512 : P);
}

TQSDEF int tqs_sr_apply(double *y, const double *X, const double *v, double shift, long R, long P, double *tmp) {
    long k;
    if (!y || !X || !v || !tmp || R < 0 || P < 0) return tqs__fail(TQS_EINVAL, "sr_apply: null pointer or negative size");
    tqs__matvec(tmp, X, v, R, P);
    tqs__matvec_t(y, X, tmp, R, P);
    for (k = 0; k < P; k++) y[k] += shift * v[k];
    return TQS_OK;
}

/* Householder: for k = 0 .. n-3 the reflection H = I - beta v v^T (v zero
 * above k + 1) maps column k below the diagonal onto a multiple of e_{k+1};
 * A <- H A H on the trailing block (A - v q^T - q v^T with p = beta A v,
 * q = p - (beta/2)(p.v) v), and g <- H g. Then T = Q^T A Q is tridiagonal
 * and U = Q Z, Z the tridiagonal's eigenvectors: U^T g = Z^T (Q^T g). */
TQSDEF int tqs_symmetric_eigen(double *w, double *A, double *g, long n) {
    long i, j, k;
    double *v, *p, *e, *z = NULL;
    int rc;
    if (!w || !A || n <= 0 || n > 2147483647) return tqs__fail(TQS_EINVAL, "symmetric_eigen: null pointer or bad size");
    v = (double *)tqs__alloc(sizeof(double) * 3 * (size_t)n);
    if (g) z = (double *)tqs__alloc(sizeof(double) * (size_t)n * (size_t)n);
    if (!v || (g && !z)) { TQS_FREE(v); TQS_FREE(z); return tqs__fail(TQS_ENOMEM, "symmetric_eigen: out of memory (n = %ld)", n); }
    p = v + n; e = p + n;
    for (k = 0; k + 2 < n; k++) {
        double alpha = 0, norm, beta, pv = 0;
        for (i = k + 1; i < n; i++) alpha += A[(size_t)i * n + k] * A[(size_t)i * n + k];
        norm = sqrt(alpha);
        if (norm == 0) continue;
        alpha = A[(size_t)(k + 1) * n + k] > 0 ? -norm : norm;   /* the sign that avoids cancellation */
        for (i = k + 1; i < n; i++) v[i] = A[(size_t)i * n + k];
        v[k + 1] -= alpha;
        beta = 0;
        for (i = k + 1; i < n; i++) beta += v[i] * v[i];
        if (beta == 0) continue;
        beta = 2.0 / beta;
        TQS__OMP(parallel for schedule(static) if (tqs__par((double)(n - k) * (n - k))))
        for (i = k + 1; i < n; i++) {
            double t = 0;
            long jj;
            for (jj = k + 1; jj < n; jj++) t += A[(size_t)i * n + jj] * v[jj];
            p[i] = beta * t;
        }
        for (i = k + 1; i < n; i++) pv += p[i] * v[i];
        for (i = k + 1; i < n; i++) p[i] -= 0.5 * beta * pv * v[i];
        TQS__OMP(parallel for schedule(static) if (tqs__par((double)(n - k) * (n - k))))
        for (i = k + 1; i < n; i++) {
            long jj;
            for (jj = k + 1; jj < n; jj++) A[(size_t)i * n + jj] -= v[i] * p[jj] + p[i] * v[jj];
        }
        A[(size_t)(k + 1) * n + k] = A[(size_t)k * n + k + 1] = alpha;
        for (i = k + 2; i < n; i++) A[(size_t)i * n + k] = A[(size_t)k * n + i] = 0;
        if (g) {
            double t = 0;
            for (i = k + 1; i < n; i++) t += v[i] * g[i];
            for (i = k + 1; i < n; i++) g[i] -= beta * t * v[i];
        }
    }
    for (i = 0; i < n; i++) { w[i] = A[(size_t)i * n + i]; e[i] = i + 1 < n ? A[(size_t)(i + 1) * n + i] : 0; }
    rc = tqs_tridiag_eigen(w, e, z, (int)n);
    if (rc == 0 && g) {
        for (j = 0; j < n; j++) {
            double t = 0;
            for (i = 0; i < n; i++) t += z[(size_t)i * n + j] * g[i];
            v[j] = t;
        }
        memcpy(g, v, sizeof(double) * (size_t)n);
    }
    TQS_FREE(v); TQS_FREE(z);
    return rc;
}

TQSDEF int tqs_sr_spectrum(double *lambda, double *share, const double *X, const double *f, long R, long P) {
    double *T, *g = NULL, f2 = 0;
    long i;
    int rc;
    if (!lambda || !X || (share && !f) || R <= 0 || P <= 0) return tqs__fail(TQS_EINVAL, "sr_spectrum: null pointer or bad size");
    T = (double *)tqs__alloc(sizeof(double) * (size_t)R * (size_t)R);
    if (!T) return tqs__fail(TQS_ENOMEM, "sr_spectrum: out of memory for the %ld x %ld matrix", R, R);
    if ((rc = tqs_gram(T, X, R, P, 1)) != 0) { TQS_FREE(T); return rc; }
    if (share) {
        for (i = 0; i < R; i++) f2 += f[i] * f[i];
        if (f2 == 0) { TQS_FREE(T); return tqs__fail(TQS_EINVAL, "sr_spectrum: f is zero (no variance to split)"); }
        g = share;
        memcpy(g, f, sizeof(double) * (size_t)R);
    }
    rc = tqs_symmetric_eigen(lambda, T, g, R);
    if (rc == 0 && share) for (i = 0; i < R; i++) share[i] = share[i] * share[i] / f2;
    TQS_FREE(T);
    return rc;
}

/* y = (X^T X + shift) v over the rows of every process (tmp: R entries). */
static int tqs__sr_apply_all(double *y, const double *X, const double *v, double shift, long R, long P, double *tmp,
                             const tqs_comm *c) {
    long k;
    int rc;
    tqs__matvec(tmp, X, v, R, P);
    tqs__matvec_t(y, X, tmp, R, P);
    if ((rc = tqs__comm_sum(c, y, P)) != 0) return rc;
    for (k = 0; k < P; k++) y[k] += shift * v[k];
    return TQS_OK;
}

TQSDEF int tqs_sr_ws_init(tqs_sr_ws *ws, long R, long P, const tqs_sr_options *opt) {
    tqs_sr_options o;
    long nv;
    double limit;
    if (!ws) return tqs__fail(TQS_EINVAL, "sr: null workspace");
    memset(ws, 0, sizeof *ws);
    if (R < 1 || P < 1) return tqs__fail(TQS_EINVAL, "sr: empty problem (%ld x %ld)", R, P);
    if (opt) o = *opt; else memset(&o, 0, sizeof o);
    limit = o.memory_limit > 0 ? o.memory_limit : 4e9;
    ws->R = R; ws->P = P; ws->solver = o.solver;
    if (o.solver < TQS_SOLVER_AUTO || o.solver > TQS_SOLVER_CG) return tqs__fail(TQS_EINVAL, "sr: unknown solver %d", o.solver);
    {   /* every process must bring as many rows, and the same P, solver and limit */
        int rc = tqs__comm_check(o.comm), np = tqs__comm_n(o.comm);
        if (!rc) rc = tqs__comm_same(o.comm, (double)R, "sr: the number of rows");
        if (!rc) rc = tqs__comm_same(o.comm, (double)P + 1e9 * o.solver, "sr: the parameter count or solver");
        if (!rc) rc = tqs__comm_same(o.comm, limit, "sr: the memory limit");
        if (rc) return rc;
        ws->comm = np > 1 ? o.comm : NULL;
        ws->R_all = R * np; ws->Ps = (P + np - 1) / np;
    }
    if (o.solver == TQS_SOLVER_AUTO) {
        double n = P <= ws->R_all ? (double)P : (double)ws->R_all;
        ws->solver = n * n * 8.0 <= limit ? (P <= ws->R_all ? TQS_SOLVER_PARAMETER : TQS_SOLVER_SAMPLE) : TQS_SOLVER_CG;
    }
    if (ws->solver == TQS_SOLVER_PARAMETER || ws->solver == TQS_SOLVER_SAMPLE) {
        double n = ws->solver == TQS_SOLVER_PARAMETER ? (double)P : (double)ws->R_all;
        if (n * n * 8.0 > limit)
            return tqs__fail(TQS_ETOOBIG, "sr: the %s solver needs a %.0f x %.0f matrix (%.3g GB), above the %.3g GB limit; use the cg solver or fewer %s",
                             tqs_solver_name(ws->solver), n, n, n * n * 8e-9, limit * 1e-9,
                             ws->solver == TQS_SOLVER_PARAMETER ? "parameters" : "samples");
        ws->mat = (double *)tqs__alloc(sizeof(double) * (size_t)n * (size_t)n);
        ws->pack = (double *)tqs__alloc(sizeof(double) * tqs__syrk_buf_size((long)n));
        if (!ws->mat || !ws->pack) { tqs_sr_ws_free(ws); return tqs__fail(TQS_ENOMEM, "sr: out of memory for a %.0f x %.0f matrix", n, n); }
        if (ws->comm && ws->solver == TQS_SOLVER_SAMPLE) {
            ws->xsend = (double *)tqs__alloc(sizeof(double) * (size_t)ws->R_all * (size_t)ws->Ps);
            ws->xcols = (double *)tqs__alloc(sizeof(double) * (size_t)ws->R_all * (size_t)ws->Ps);
            if (!ws->xsend || !ws->xcols) { tqs_sr_ws_free(ws); return tqs__fail(TQS_ENOMEM, "sr: out of memory for the slices of X"); }
        }
    }
    nv = ws->R_all > P + tqs__comm_n(ws->comm) ? ws->R_all : P + tqs__comm_n(ws->comm);
    ws->v1 = (double *)tqs__alloc(sizeof(double) * (size_t)nv);
    ws->v2 = (double *)tqs__alloc(sizeof(double) * (size_t)nv);
    ws->v3 = (double *)tqs__alloc(sizeof(double) * (size_t)nv);
    ws->v4 = (double *)tqs__alloc(sizeof(double) * (size_t)nv);
    ws->v5 = (double *)tqs__alloc(sizeof(double) * (size_t)nv);
    if (!ws->v1 || !ws->v2 || !ws->v3 || !ws->v4 || !ws->v5) { tqs_sr_ws_free(ws); return tqs__fail(TQS_ENOMEM, "sr: out of memory"); }
    return TQS_OK;
}

TQSDEF void tqs_sr_ws_free(tqs_sr_ws *ws) {
    if (!ws) return;
    TQS_FREE(ws->mat); TQS_FREE(ws->pack); TQS_FREE(ws->v1); TQS_FREE(ws->v2); TQS_FREE(ws->v3); TQS_FREE(ws->v4); TQS_FREE(ws->v5);
    TQS_FREE(ws->xsend); TQS_FREE(ws->xcols);
    memset(ws, 0, sizeof *ws);
}


/* Conjugate gradient on (X^T X + shift) x = b, with the true residual
 * recomputed every 25 iterations against drift. */
static int tqs__cg(double *x, const double *X, const double *b, double shift, long R, long P,
                   double tol, int max_iter, tqs_sr_ws *ws, tqs_sr_info *info) {
    const tqs_comm *c = ws->comm;   /* X^T X v summed over the processes: one sum of P values per product */
    int rc;
    double *r = ws->v3, *p = ws->v4, *Ap = ws->v5, *tmp = ws->v1;
    double bn = sqrt(tqs__dot8(b, b, P)), rs, rs_new;
    long k;
    int it = 0;
    for (k = 0; k < P; k++) { x[k] = 0; r[k] = b[k]; p[k] = b[k]; }
    rs = tqs__dot8(r, r, P);
    if (bn == 0) { info->cg_iterations = 0; info->cg_residual = 0; return TQS_OK; }
    while (sqrt(rs) > tol * bn && it < max_iter) {
        double alpha, pAp;
        if ((rc = tqs__sr_apply_all(Ap, X, p, shift, R, P, tmp, c)) != 0) return rc;
        pAp = tqs__dot8(p, Ap, P);
        if (!(pAp > 0)) break;
        alpha = rs / pAp;
        for (k = 0; k < P; k++) { x[k] += alpha * p[k]; r[k] -= alpha * Ap[k]; }
        it++;
        if (it % 25 == 0) { /* true residual */
            if ((rc = tqs__sr_apply_all(Ap, X, x, shift, R, P, tmp, c)) != 0) return rc;
            for (k = 0; k < P; k++) r[k] = b[k] - Ap[k];
        }
        rs_new = tqs__dot8(r, r, P);
        for (k = 0; k < P; k++) p[k] = r[k] + (rs_new / rs) * p[k];
        rs = rs_new;
    }
    if ((rc = tqs__sr_apply_all(Ap, X, x, shift, R, P, tmp, c)) != 0) return rc;   /* report the true residual */
    for (k = 0; k < P; k++) r[k] = b[k] - Ap[k];
    info->cg_iterations = it;
    info->cg_residual = sqrt(tqs__dot8(r, r, P)) / bn;
    return TQS_OK;
}

TQSDEF int tqs_sr_solve(double *delta, const double *X, const double *f, double shift,
                        const tqs_sr_options *opt, tqs_sr_ws *ws, tqs_sr_info *info) {
    return tqs_sr_solve_prior(delta, X, f, shift, NULL, opt, ws, info);
}

/* The n x n matrix A A^T (transpose) or A^T A of A (rows x cols), summed
 * over the processes of c (NULL: one), plus the shift, factored. A
 * non-positive pivot (rounding can make S indefinite when the shift is
 * tiny): rebuild and retry with ten times the shift, at most 6 times; every
 * process sees the same pivots, so all retry together. */
static int tqs__sr_factor(tqs_sr_ws *ws, const double *A, long rows, long cols, int transpose, const tqs_comm *c, tqs_sr_info *info) {
    long n = transpose ? rows : cols, i;
    int rc, attempt;
    for (attempt = 0;; attempt++) {
        double s = info->shift;
        tqs__gram_lower(ws->mat, A, rows, cols, transpose, ws->pack);
        if ((rc = tqs__comm_sum_lower(c, ws->mat, n)) != 0) return rc;
        for (i = 0; i < n; i++) ws->mat[(size_t)i * n + i] += s;
        rc = tqs__cholesky_with(ws->mat, n, ws->pack);
        if (rc == 0) return TQS_OK;
        if (rc != TQS_ENOTPD || attempt == 6) return rc;
        info->shift_retries++;
        info->shift = s > 0 ? 10 * s : 1e-10;
    }
}

/* SR over the rows of several processes (each holds R of the R_all rows of X
 * and f; every one ends with the same delta). Per process, with np processes:
 *  parameter: S = sum_r X_r^T X_r and b = sum_r X_r^T f_r, one sum each
 *             (P(P+1)/2 and P values); every process then factors S itself.
 *  cg:        b as above, then one sum of P values per product X^T X v.
 *  sample:    an all-to-all gives each process every row's entries of its
 *             slice of Ps = P/np parameters (it sends and receives R_all Ps
 *             values); K = sum over slices of X_q X_q^T is one sum of
 *             R_all(R_all+1)/2 values; each process factors K, solves
 *             y = (K + shift)^{-1} (f - X p) (f gathered: R_all values),
 *             forms its slice X_q^T y and an allgather joins the slices.
 *             Memory: X_r (R P), the slices 2 R_all Ps, K R_all^2 doubles:
 *             no process holds all of X.
 * The sums run over the processes in the callback's order, so the result
 * differs from one process's by rounding only. */
static int tqs__sr_solve_split(double *delta, const double *X, const double *f, const double *prior,
                               const tqs_sr_options *o, tqs_sr_ws *ws, tqs_sr_info *info) {
    const tqs_comm *c = ws->comm;
    int np = c->size, rc, sample = ws->solver == TQS_SOLVER_SAMPLE;
    long R = ws->R, P = ws->P, RA = ws->R_all, Ps = ws->Ps, i, q, r;
    if (!sample) {   /* b = X^T f over every process's rows */
        tqs__matvec_t(ws->v2, X, f, R, P);
        if ((rc = tqs__comm_sum(c, ws->v2, P)) != 0) return rc;
        if (ws->solver == TQS_SOLVER_CG) {
            if (prior) for (i = 0; i < P; i++) ws->v2[i] += info->shift * prior[i];
            return tqs__cg(delta, X, ws->v2, info->shift, R, P, o->cg_tol > 0 ? o->cg_tol : 1e-8,
                           o->cg_max_iter > 0 ? o->cg_max_iter : 1000, ws, info);
        }
    } else {   /* the slices: to process q the entries [q Ps, (q+1) Ps) of each row, zero-padded */
        for (q = 0; q < np; q++) {
            long k0 = q * Ps, k1 = k0 + Ps < P ? k0 + Ps : P, w = k1 > k0 ? k1 - k0 : 0;
            for (r = 0; r < R; r++) {
                double *dst = ws->xsend + ((size_t)q * R + r) * Ps;
                if (w) memcpy(dst, X + (size_t)r * P + k0, sizeof(double) * (size_t)w);
                for (i = w; i < Ps; i++) dst[i] = 0.0;
            }
        }
        /* from process p, rows p R .. (p+1) R: the global row order */
        if ((rc = tqs__comm_alltoall(c, ws->xsend, ws->xcols, sizeof(double) * (size_t)R * Ps)) != 0) return rc;
    }
    if ((rc = sample ? tqs__sr_factor(ws, ws->xcols, RA, Ps, 1, c, info) : tqs__sr_factor(ws, X, R, P, 0, c, info)) != 0) return rc;
    if (!sample) {
        for (i = 0; i < P; i++) delta[i] = ws->v2[i] + (prior ? info->shift * prior[i] : 0.0);
        return tqs_cholesky_solve(ws->mat, delta, P);
    }
    /* y = (K + shift)^{-1} (f - X p), with f and X p gathered from every process */
    if ((rc = tqs__comm_allgather(c, f, ws->v3, sizeof(double) * (size_t)R)) != 0) return rc;
    if (prior) {
        tqs__matvec(ws->v1, X, prior, R, P);
        if ((rc = tqs__comm_allgather(c, ws->v1, ws->v4, sizeof(double) * (size_t)R)) != 0) return rc;
        for (i = 0; i < RA; i++) ws->v3[i] -= ws->v4[i];
    }
    tqs_cholesky_solve(ws->mat, ws->v3, RA);
    /* this process's slice of X^T y, then every slice */
    tqs__matvec_t(ws->v1, ws->xcols, ws->v3, RA, Ps);
    if ((rc = tqs__comm_allgather(c, ws->v1, ws->v5, sizeof(double) * (size_t)Ps)) != 0) return rc;
    for (i = 0; i < P; i++) delta[i] = ws->v5[i] + (prior ? prior[i] : 0.0);
    return TQS_OK;
}

/* With a prior p (SPRING's mu * previous update, or NULL for 0):
 *   delta = argmin |X delta - f|^2 + shift |delta - p|^2
 *         = (S + shift)^{-1} (X^T f + shift p)              (parameter, CG)
 *         = p + X^T (X X^T + shift)^{-1} (f - X p)          (sample space)
 * the two being equal by X^T (X X^T + shift)^{-1} = (S + shift)^{-1} X^T. */
TQSDEF int tqs_sr_solve_prior(double *delta, const double *X, const double *f, double shift, const double *prior,
                              const tqs_sr_options *opt, tqs_sr_ws *ws, tqs_sr_info *info) {
    tqs_sr_options o;
    tqs_sr_info local;
    long R, P, i;
    int rc;
    if (!delta || !X || !f || !ws || !ws->v1) return tqs__fail(TQS_EINVAL, "sr: null pointer");
    if (!(shift >= 0) || !isfinite(shift)) return tqs__fail(TQS_EINVAL, "sr: the diagonal shift must be finite and >= 0");
    if (opt) o = *opt; else memset(&o, 0, sizeof o);
    if (!info) info = &local;
    memset(info, 0, sizeof *info);
    R = ws->R; P = ws->P;
    info->solver = ws->solver;
    info->shift = shift;
    if (ws->comm) return tqs__sr_solve_split(delta, X, f, prior, &o, ws, info);
    /* b = X^T f, the (half) energy gradient */
    tqs__matvec_t(ws->v2, X, f, R, P);
    if (ws->solver == TQS_SOLVER_CG) {
        if (prior) for (i = 0; i < P; i++) ws->v2[i] += shift * prior[i];
        return tqs__cg(delta, X, ws->v2, shift, R, P, o.cg_tol > 0 ? o.cg_tol : 1e-8,
                       o.cg_max_iter > 0 ? o.cg_max_iter : 1000, ws, info);
    }
    if ((rc = tqs__sr_factor(ws, X, R, P, ws->solver == TQS_SOLVER_SAMPLE, NULL, info)) != 0) return rc;
    if (ws->solver == TQS_SOLVER_PARAMETER) {   /* (with the shift finally used) */
        for (i = 0; i < P; i++) delta[i] = ws->v2[i] + (prior ? info->shift * prior[i] : 0.0);
        tqs_cholesky_solve(ws->mat, delta, P);
    } else { /* delta = p + X^T (X X^T + shift)^{-1} (f - X p) */
        if (prior) {
            tqs__matvec(ws->v3, X, prior, R, P);
            for (i = 0; i < R; i++) ws->v3[i] = f[i] - ws->v3[i];
        } else
            memcpy(ws->v3, f, sizeof(double) * (size_t)R);
        tqs_cholesky_solve(ws->mat, ws->v3, R);
        tqs__matvec_t(delta, X, ws->v3, R, P);
        if (prior) for (i = 0; i < P; i++) delta[i] += prior[i];
    }
    return TQS_OK;
}

/* ===================================================================== */
/* The optimisation driver                                               */
/* ===================================================================== */
/* The defaults come from the training study (examples/README.md): one
 * sample per chain decorrelates best, SPRING's momentum (up to 36 sites)
 * and the trust region keep sampled SR stable at lr 0.05, decaying tenfold
 * over the run. */
TQSDEF void tqs_vmc_options_defaults(tqs_vmc_options *o) {
    if (o->n_samples <= 0) o->n_samples = 1024;
    if (o->n_chains <= 0) o->n_chains = o->n_samples < 1024 ? o->n_samples : 1024;
    if (o->sweeps <= 0) o->sweeps = 1;
    if (o->thermalize < 0) o->thermalize = 0;
    else if (o->thermalize == 0) o->thermalize = 20;
    if (o->n_steps <= 0) o->n_steps = 500;
    if (!(o->lr > 0)) o->lr = 0.05;
    if (!(o->lr_final > 0)) o->lr_final = 0.1 * o->lr;
    if (!(o->diag_shift > 0)) o->diag_shift = 1e-3;
    if (!(o->diag_shift_final > 0)) o->diag_shift_final = o->diag_shift;
    if (o->max_distance == 0) o->max_distance = 0.05;
    /* momentum: by the lattice (tqs_vmc_init) */
    if (o->rollback == 0) o->rollback = -1;   /* off: measured to cost more than it saved (examples/README.md) */
    if (o->clip_local_energy == 0) o->clip_local_energy = -1;   /* off: on 10x10 it raised the variance and did not undo a stall */
    if (o->jac_batch < 0) o->jac_batch = 0;   /* 0: chosen by tqs__vmc_batch */
    if (!(o->sample_power > 0)) o->sample_power = 0;   /* by the lattice: tqs_vmc_init */
}

TQSDEF double tqs_vmc_default_sample_power(int n_sites) { return n_sites <= 24 ? 1.0 : 2.0; }
TQSDEF double tqs_vmc_default_momentum(int n_sites) { return n_sites <= 36 ? 0.9 : -1.0; }

/* Configurations per batch of the local energy (passes = 1) and of the
 * Jacobian (passes = 5): enough that each parallel region has at least
 * 8 TQS_PAR_MIN_WORK of work (fewer, longer regions are what a shared
 * machine needs, see tqs__par), at least lo and at most 4096. The batch
 * size does not change any result: every configuration is computed alone. */
static int tqs__vmc_batch(const tqs_vit *m, int lo, double passes) {
    double want = 8.0 * (double)TQS_PAR_MIN_WORK / (passes * tqs__vit_work(m));
    int b = want > 4096 ? 4096 : (int)ceil(want);
    return b < lo ? lo : b;
}

/* The sampler's symmetry moves for psi_sym over G: the whole group of G's
 * kind, every translation (b = 0) rather than G's b*b, since psi_sym over the
 * b*b is also invariant under the patch translations the model has. */
static int tqs__vmc_symmetry_moves(tqs_vmc *v, const tqs_symmetry *G) {
    int rc;
    v->moves = (struct tqs_symmetry *)tqs__calloc(sizeof *v->moves);
    if (!v->moves) return tqs__fail(TQS_ENOMEM, "vmc: out of memory for the symmetry moves");
    rc = G->translations_only ? tqs_symmetry_init_translations(v->moves, G->Lx, G->Ly, 0)
       : G->no_flip ? tqs_symmetry_init_point(v->moves, G->Lx, G->Ly, 0) : tqs_symmetry_init(v->moves, G->Lx, G->Ly, 0);
    if (!rc) rc = tqs_sampler_set_moves(&v->sampler, v->moves->perm, v->moves->flip, v->moves->n);
    return rc;
}

TQSDEF int tqs_vmc_init(tqs_vmc *v, const tqs_hamiltonian *H, tqs_vit *model, const tqs_vmc_options *opt) {
    tqs_vmc_options o;
    int rc, N, fwd_batch, np;
    long P;
    if (!v || !H || !model || !model->params) return tqs__fail(TQS_EINVAL, "vmc: null pointer or empty model");
    memset(v, 0, sizeof *v);
    if (opt) o = *opt; else memset(&o, 0, sizeof o);
    tqs_vmc_options_defaults(&o);
    N = H->lat.N;
    if (o.sample_power == 0) o.sample_power = o.exact ? 2.0 : tqs_vmc_default_sample_power(N);
    if (o.momentum == 0) o.momentum = tqs_vmc_default_momentum(N);
    if ((rc = tqs__comm_check(o.comm)) != 0) return rc;
    np = tqs__comm_n(o.comm);
    if (np > 1) {   /* the processes must run the same problem (their rows of X are checked by the SR set-up) */
        if ((rc = tqs__comm_same(o.comm, (double)o.n_samples + 1e7 * o.n_chains, "vmc: the number of samples or chains")) != 0 ||
            (rc = tqs__comm_same(o.comm, (double)(o.seed % 4294967291u) + 4294967296.0 * o.exact, "vmc: the seed or exact")) != 0 ||
            (rc = tqs__comm_same(o.comm, (double)model->n_params, "vmc: the model's parameter count")) != 0)
            return rc;
        if (!o.exact && o.n_chains % np)
            return tqs__fail(TQS_EINVAL, "vmc: %d chains cannot be shared equally by %d processes", o.n_chains, np);
    }
    v->comm = np > 1 ? o.comm : NULL;
    if (model->cfg.Lx != H->lat.Lx || model->cfg.Ly != H->lat.Ly)
        return tqs__fail(TQS_EINVAL, "vmc: the model is for %dx%d, the Hamiltonian for %dx%d",
                         model->cfg.Lx, model->cfg.Ly, H->lat.Lx, H->lat.Ly);
    if (!(o.momentum < 1)) return tqs__fail(TQS_EINVAL, "vmc: momentum %g is not below 1", o.momentum);
    if (isnan(o.max_distance)) return tqs__fail(TQS_EINVAL, "vmc: max_distance is NaN");
    if (o.schedule != TQS_SCHEDULE_EXP && o.schedule != TQS_SCHEDULE_COSINE) return tqs__fail(TQS_EINVAL, "vmc: unknown schedule %d", o.schedule);
    if (o.note && strlen(o.note) >= TQS_NOTE_MAX) return tqs__fail(TQS_EINVAL, "vmc: the note is longer than %d characters", TQS_NOTE_MAX - 1);
    if (o.warmup < 0 || o.warmup >= o.n_steps) return tqs__fail(TQS_EINVAL, "vmc: warm-up of %d steps in a run of %d", o.warmup, o.n_steps);
    if (!(o.sample_power <= 2.0)) return tqs__fail(TQS_EINVAL, "vmc: sample_power %g is not in (0, 2]", o.sample_power);
    if (o.exact && o.sample_power != 2.0) return tqs__fail(TQS_EINVAL, "vmc: sample_power %g with exact enumeration (nothing is sampled)", o.sample_power);
    if (!o.exact && o.n_chains > o.n_samples)
        return tqs__fail(TQS_EINVAL, "vmc: more chains (%d) than samples (%d)", o.n_chains, o.n_samples);
    if (o.exact && N > TQS_ED_MAX_SITES)
        return tqs__fail(TQS_ETOOBIG, "vmc: exact enumeration needs N <= %d (got %d)", TQS_ED_MAX_SITES, N);
    v->H = H; v->model = model; v->opt = o;
    P = (long)model->n_params;
    if (o.exact) {
        if ((rc = tqs_enumeration_init(&v->en, &H->lat, model->cfg.b)) != 0) return rc;
        if ((rc = tqs_enumeration_split(&v->en, v->comm)) != 0) { tqs_vmc_free(v); return rc; }
        v->M = (int)v->en.block; v->per_chain = v->M; v->M_all = (int)v->en.n; v->first = v->en.first;
        v->M_rows = v->en.n - v->first < v->M ? (int)(v->en.n - v->first) : v->M;
        if (v->M_rows < 0) v->M_rows = 0;
    } else {
        int c, local = o.n_chains / np;
        v->per_chain = (o.n_samples + o.n_chains - 1) / o.n_chains;
        v->M = v->per_chain * local; v->M_rows = v->M; v->M_all = v->M * np;
        v->first = (long)(np > 1 ? o.comm->rank : 0) * local;
        if ((rc = tqs_sampler_init(&v->sampler, &H->lat, local, o.seed)) != 0) return rc;
        v->sampler.power = o.sample_power;
        for (c = 0; c < local && v->first; c++) {   /* chain first + c: its stream and starting configuration */
            tqs_rng_seed(&v->sampler.rng[c], o.seed, (uint64_t)(v->first + c));
            tqs_random_config(v->sampler.state + (size_t)c * N, N, &v->sampler.rng[c]);
        }
    }
    v->R = 2L * v->M;
    if (o.jac_batch == 0) o.jac_batch = tqs__vmc_batch(model, 32, 5.0);
    if (o.jac_batch > v->M) o.jac_batch = v->M;
    if (o.symmetry) {   /* a Jacobian call holds whole samples: their n configurations g s */
        const tqs_symmetry *G = o.symmetry;
        if (!G->perm || G->Lx != H->lat.Lx || G->Ly != H->lat.Ly || (G->b != 0 && G->b != model->cfg.b))
            return tqs__fail(TQS_EINVAL, "vmc: the symmetry group is not for this lattice and patch");
        v->sym_per_call = o.jac_batch / G->n > 0 ? o.jac_batch / G->n : 1;
        o.jac_batch = v->sym_per_call * G->n;
    }
    v->opt.jac_batch = o.jac_batch;
    fwd_batch = o.exact ? 1024 : (o.n_chains > 256 ? o.n_chains : 256);
    if (fwd_batch < tqs__vmc_batch(model, 0, 1.0)) fwd_batch = tqs__vmc_batch(model, 0, 1.0);
    {   /* refuse before allocating: the Jacobian X, the SR matrix (if the
         * solver forms one) and the activations of the two workspaces */
        double jac = (double)v->R * P * 8.0, m = (double)(v->R < P ? v->R : P), mat = 8.0 * m * m, limit;
        double srlim = o.sr.memory_limit > 0 ? o.sr.memory_limit : 4e9, act, total;
        if (o.sr.solver == TQS_SOLVER_CG || (o.sr.solver == TQS_SOLVER_AUTO && mat > srlim)) mat = 0;
        else if (o.sr.solver == TQS_SOLVER_PARAMETER) mat = 8.0 * P * P;
        else if (o.sr.solver == TQS_SOLVER_SAMPLE) mat = 8.0 * v->R * v->R;
        act = 8.0 * (tqs__vit_ws_doubles(model, fwd_batch) + tqs__vit_ws_doubles(model, o.jac_batch));
        if (o.symmetry) act += 16.0 * o.jac_batch * (double)P;   /* the rows of the g s */
        total = jac + 2 * mat + act;   /* the matrix and its packing/factor copy */
        limit = o.memory_limit > 0 ? o.memory_limit : 32e9;
        if (total > limit) {
            int M = v->M;
            tqs_vmc_free(v);
            return tqs__fail(TQS_ETOOBIG, "vmc: needs about %.3g GB (Jacobian %d samples x %ld parameters %.3g GB, SR matrix %.3g GB), "
                             "more than the limit %.3g GB; use fewer samples, the cg solver or a smaller model",
                             total * 1e-9, M, P, jac * 1e-9, 2 * mat * 1e-9, limit * 1e-9);
        }
    }
    rc = tqs_vit_ws_init(&v->fwd_ws, model, fwd_batch, 0);
    if (!rc) rc = tqs_vit_ws_init(&v->jac_ws, model, o.jac_batch, 1);
    if (!rc) { v->amp = tqs_vit_amplitude_make(&v->holder, model, &v->fwd_ws); rc = tqs_eloc_ws_init(&v->eloc_ws, H, v->fwd_ws.max_batch); }
    if (!rc && o.symmetry) {
        tqs_amplitude plain = v->amp;
        size_t T = (size_t)v->sym_per_call * o.symmetry->n;
        v->sym_amp = (struct tqs_symmetric_amplitude *)tqs__calloc(sizeof *v->sym_amp);
        v->sym_cfgs = (int8_t *)tqs__alloc(T * N);
        v->sym_lp = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * T);
        v->sym_jac = (double *)tqs__alloc(sizeof(double) * 2 * T * (size_t)P);
        v->sym_w = (double *)tqs__alloc(sizeof(double) * 2 * T);
        if (!v->sym_amp || !v->sym_cfgs || !v->sym_lp || !v->sym_jac || !v->sym_w) rc = tqs__fail(TQS_ENOMEM, "vmc: out of memory for the symmetric Jacobian");
        else rc = tqs_symmetric_amplitude_init(v->sym_amp, &v->amp, o.symmetry, &plain);
        if (!rc && !o.exact) rc = tqs__vmc_symmetry_moves(v, o.symmetry);
    }
    o.sr.comm = v->comm;
    v->opt.sr.comm = v->comm;
    if (!rc) rc = tqs_sr_ws_init(&v->sr_ws, v->R, P, &o.sr);
    if (rc) { tqs_vmc_free(v); return rc; }
    if (v->comm && !o.exact) {
        v->eloc_all = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * (size_t)v->M_all);
        v->e_all = (double *)tqs__alloc(sizeof(double) * (size_t)v->M_all);
        if (!v->eloc_all || !v->e_all) { tqs_vmc_free(v); return tqs__fail(TQS_ENOMEM, "vmc: out of memory"); }
    }
    if (!o.exact && o.sample_power != 2.0 && !(v->lw_all = (double *)tqs__alloc(sizeof(double) * (size_t)v->M_all))) {
        tqs_vmc_free(v); return tqs__fail(TQS_ENOMEM, "vmc: out of memory");
    }
    v->samples = o.exact ? NULL : (int8_t *)tqs__alloc((size_t)v->M * N);
    v->logpsi = o.exact ? NULL : (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * v->M);
    v->eloc = o.exact ? NULL : (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * v->M);
    v->X = (double *)tqs__alloc(sizeof(double) * (size_t)v->R * (size_t)P);
    v->f = (double *)tqs__alloc(sizeof(double) * (size_t)v->R);
    v->delta = (double *)tqs__alloc(sizeof(double) * (size_t)P);
    v->work = (double *)tqs__alloc(sizeof(double) * (size_t)(v->R > P ? v->R : P));
    v->prior = (double *)tqs__calloc(sizeof(double) * (size_t)P);
    v->best = (double *)tqs__alloc(sizeof(double) * (size_t)P);
    v->lr_scale = 1;
    v->weights = (double *)tqs__alloc(sizeof(double) * v->M);
    if ((!o.exact && (!v->samples || !v->logpsi || !v->eloc)) || !v->X || !v->f || !v->delta || !v->work || !v->prior || !v->best || !v->weights) {
        tqs_vmc_free(v);
        return tqs__fail(TQS_ENOMEM, "vmc: out of memory (Jacobian %.3g GB)", (double)v->R * P * 8e-9);
    }
    return TQS_OK;
}

TQSDEF void tqs_vmc_free(tqs_vmc *v) {
    if (!v) return;
    tqs_sampler_free(&v->sampler); tqs_enumeration_free(&v->en);
    tqs_vit_ws_free(&v->fwd_ws); tqs_vit_ws_free(&v->jac_ws); tqs_eloc_ws_free(&v->eloc_ws); tqs_sr_ws_free(&v->sr_ws);
    TQS_FREE(v->samples); TQS_FREE(v->logpsi); TQS_FREE(v->eloc);
    TQS_FREE(v->X); TQS_FREE(v->f); TQS_FREE(v->delta); TQS_FREE(v->work); TQS_FREE(v->prior); TQS_FREE(v->weights); TQS_FREE(v->best);
    if (v->sym_amp) tqs_symmetric_amplitude_free(v->sym_amp);
    TQS_FREE(v->sym_amp); TQS_FREE(v->sym_cfgs); TQS_FREE(v->sym_lp); TQS_FREE(v->sym_jac); TQS_FREE(v->sym_w);
    if (v->moves) tqs_symmetry_free(v->moves);
    TQS_FREE(v->moves);
    TQS_FREE(v->eloc_all); TQS_FREE(v->e_all); TQS_FREE(v->lw_all);
    memset(v, 0, sizeof *v);
}

/* Exponential interpolation from a to b over the run: a (b/a)^(t/(T-1)). */
/* From a at step 0 to b at step T - 1: exponential (a (b/a)^x) or cosine
 * (b + (a - b)(1 + cos(pi x))/2), x = t/(T - 1). */
static double tqs__schedule(double a, double b, long t, int T, int kind) {
    double x = T > 1 ? (double)t / (double)(T - 1) : 1.0;
    if (x > 1) x = 1;
    if (kind == TQS_SCHEDULE_COSINE) return b + (a - b) * 0.5 * (1.0 + cos(3.14159265358979323846 * x));
    return a * pow(b / a, x);
}
/* The learning rate of step t: a linear warm-up to lr over opt.warmup steps,
 * then the schedule over the remaining steps. */
static double tqs__lr_at(const tqs_vmc_options *o, long t) {
    if (t < o->warmup) return o->lr * (double)(t + 1) / (double)(o->warmup + 1);
    return tqs__schedule(o->lr, o->lr_final, t - o->warmup, o->n_steps - o->warmup, o->schedule);
}

/* The chains are thermalised at the start of a run (unless tqs_vmc_set_chains
 * gave them), from ordered starts (tqs_sampler_start_ordered), and whenever
 * they sampled another power (an evaluation's |psi|^2 after training on
 * |psi|^1). *sweeps: how many sweeps of the amplitude the sampling should
 * begin with. With psi_sym every proposal costs the group's n
 * passes, so the chains first walk opt.thermalize sweeps on the plain
 * |psi|^p (one pass a proposal; psi_sym is its projection, so the plain
 * model's typical configurations are a good start) and then a quarter of
 * them on psi_sym: on 4x4 with 32 elements the thermalisation costs 5 sweeps
 * of psi_sym instead of 20 (examples/README.md, "The symmetrised wave
 * function"). */
static int tqs__vmc_thermalize(tqs_vmc *v, double p, int *sweeps) {
    int rc = TQS_OK, first = v->step == 0 && !v->chains_ready;
    const tqs_amplitude *plain = v->sym_amp ? &v->sym_amp->inner : &v->amp;
    *sweeps = 0;
    if (!first && v->sampler.power == p) return TQS_OK;
    v->sampler.power = p;
    v->chains_ready = 1;
    *sweeps = v->opt.thermalize;
    if (*sweeps == 0) return TQS_OK;   /* (no thermalisation: the chains as they are) */
    if (v->sym_amp) tqs_sampler_invalidate(&v->sampler);   /* its log psi are of the other amplitude */
    if (first) rc = tqs_sampler_start_ordered(&v->sampler, &v->H->lat, plain);
    if (!rc && v->sym_amp) {
        rc = tqs_sampler_run(&v->sampler, plain, 0, 0, *sweeps, NULL, NULL);
        tqs_sampler_invalidate(&v->sampler);
        *sweeps = *sweeps / 4 > 2 ? *sweeps / 4 : 2;
    }
    return rc;
}

/* Samples (or enumerates) and computes local energies and statistics. */
static int tqs__vmc_measure(tqs_vmc *v, tqs_step_info *info, int8_t **cfgs, tqs_complex **lp, tqs_complex **el) {
    int rc, i;
    double t0 = tqs__seconds(), t1;
    memset(info, 0, sizeof *info);
    if (v->opt.exact) {
        tqs_enumeration *E = &v->en;
        if ((rc = tqs_enumeration_evaluate(E, v->H, &v->amp)) != 0) return rc;
        info->seconds[0] = tqs__seconds() - t0;  /* amplitudes and local energies together */
        info->energy = E->energy; info->variance = E->variance;
        info->error = 0; info->tau = 0.5; info->rhat = 1; info->acceptance = 1;
        for (i = 0; i < (int)E->n; i++) info->energy_imag += E->weights[i] * E->eloc[i].im;
        *cfgs = E->configs + (size_t)v->first * v->H->lat.N; *lp = E->logpsi + v->first; *el = E->eloc + v->first;
        for (i = 0; i < v->M; i++) v->weights[i] = i < v->M_rows ? E->weights[v->first + i] : 0.0;
        v->el_all = E->eloc; v->w_all = E->weights;
        return TQS_OK;
    } else {
        tqs_stats st;
        double *e = v->comm ? v->e_all : v->work, p = v->opt.sample_power, emean = 0, var = 0;
        int therm;
        if ((rc = tqs__vmc_thermalize(v, p, &therm)) != 0) return rc;
        rc = tqs_sampler_run(&v->sampler, &v->amp, v->per_chain, v->opt.sweeps, therm, v->samples, v->logpsi);
        if (rc) return rc;
        t1 = tqs__seconds();
        info->seconds[0] = t1 - t0;
        if ((rc = tqs_local_energy(v->eloc, v->H, &v->amp, &v->eloc_ws, v->samples, v->logpsi, v->M)) != 0) return rc;
        info->seconds[1] = tqs__seconds() - t1;
        for (i = 0; i < v->M; i++) v->weights[i] = 1.0 / v->M_all;
        v->w_all = NULL;
        if (v->comm) {   /* every process's local energies, in the order of the chains */
            double ap[2] = {0, 0};
            if ((rc = tqs__comm_allgather(v->comm, v->eloc, v->eloc_all, sizeof(tqs_complex) * (size_t)v->M)) != 0) return rc;
            for (i = 0; i < v->sampler.n_chains; i++) { ap[0] += (double)v->sampler.accepted[i]; ap[1] += (double)v->sampler.proposed[i]; }
            if ((rc = tqs__comm_sum(v->comm, ap, 2)) != 0) return rc;
            info->acceptance = ap[1] > 0 ? ap[0] / ap[1] : 0.0;
            v->el_all = v->eloc_all;
        } else {
            info->acceptance = tqs_sampler_acceptance(&v->sampler, -1);
            v->el_all = v->eloc;
        }
        if (v->lw_all) {
            /* Samples of |psi|^p, p < 2: E = sum_s w_s E_loc(s) with the self-normalised
             * weights w_s = |psi(s)|^(2-p) / sum |psi|^(2-p); every process forms the
             * same w_all from the gathered log |psi|, in chain order */
            double mx = -HUGE_VAL, sum = 0;
            double *mine = v->comm ? e : v->lw_all;   /* this process's log weights, gathered into lw_all */
            for (i = 0; i < v->M; i++) mine[i] = (2.0 - p) * v->logpsi[i].re;
            if (v->comm && (rc = tqs__comm_allgather(v->comm, mine, v->lw_all, sizeof(double) * (size_t)v->M)) != 0) return rc;
            for (i = 0; i < v->M_all; i++) if (v->lw_all[i] > mx) mx = v->lw_all[i];
            for (i = 0; i < v->M_all; i++) sum += (v->lw_all[i] = exp(v->lw_all[i] - mx));
            for (i = 0; i < v->M_all; i++) v->lw_all[i] /= sum;
            for (i = 0; i < v->M; i++) v->weights[i] = v->lw_all[(size_t)v->first * v->per_chain + i];
            v->w_all = v->lw_all;
            for (i = 0; i < v->M_all; i++) { emean += v->lw_all[i] * v->el_all[i].re; info->ess += v->lw_all[i] * v->lw_all[i]; }
            info->ess = 1.0 / info->ess;
            /* the error of the weighted mean is that of the plain mean of
             * y_s = M w_s (E_loc(s) - E) + E (the estimator linearised in the
             * weights); tau and R-hat of its chains likewise */
            for (i = 0; i < v->M_all; i++) {
                double d = v->el_all[i].re - emean;
                var += v->lw_all[i] * d * d;
                e[i] = (double)v->M_all * v->lw_all[i] * d + emean;
            }
        } else {
            for (i = 0; i < v->M_all; i++) e[i] = v->el_all[i].re;
            info->ess = v->M_all;
        }
        tqs_statistics(&st, e, v->opt.n_chains, v->per_chain);
        for (i = 0; i < v->M_all; i++) info->energy_imag += v->w_all ? v->w_all[i] * v->el_all[i].im : v->el_all[i].im / v->M_all;
        info->energy = v->lw_all ? emean : st.mean; info->error = st.error; info->variance = v->lw_all ? var : st.variance;
        info->tau = st.tau; info->rhat = st.rhat;
        *cfgs = v->samples; *lp = v->logpsi; *el = v->eloc;
        return TQS_OK;
    }
}

/* The Jacobian of log psi_sym, rows 2s (Re) and 2s+1 (Im) of X:
 *   O_sym(s) = sum_g w_g O(g s),  w_g = chi(g) psi(g s) / psi_sym(s)  (complex),
 * (O = O_re + i O_im, the two rows of the plain Jacobian), so
 *   Re O_sym = sum_g (Re w_g O_re - Im w_g O_im),  Im O_sym = sum_g (Re w_g O_im + Im w_g O_re).
 * The g s of sym_per_call samples form one Jacobian call. */
static void tqs__symmetry_element(const tqs_symmetry *G, int g, int8_t *out, const int8_t *in);
static int tqs__vmc_symmetric_jacobian(tqs_vmc *v, const int8_t *cfgs, const tqs_complex *lp) {
    const tqs_symmetry *G = v->opt.symmetry;
    int n = G->n, N = G->N, rc;
    long P = (long)v->model->n_params, s0;
    for (s0 = 0; s0 < v->M_rows; s0 += v->sym_per_call) {
        long cnt = v->M_rows - s0 < v->sym_per_call ? v->M_rows - s0 : v->sym_per_call, t, nblk = (P + 511) / 512, blk;
        for (t = 0; t < cnt * n; t++)
            tqs__symmetry_element(G, (int)(t % n), v->sym_cfgs + (size_t)t * N, cfgs + (size_t)(s0 + t / n) * N);
        if ((rc = tqs_vit_jacobian(v->model, &v->jac_ws, v->sym_jac, v->sym_lp, v->sym_cfgs, (int)(cnt * n))) != 0) return rc;
        for (t = 0; t < cnt * n; t++) {
            const tqs_complex *ls = lp + s0 + t / n;
            double mag = isfinite(ls->re) ? G->chi[t % n] * exp(v->sym_lp[t].re - ls->re) : 0.0, ph = v->sym_lp[t].im - ls->im;
            v->sym_w[2 * t] = mag * cos(ph); v->sym_w[2 * t + 1] = mag * sin(ph);
        }
        TQS__OMP(parallel for schedule(guided) if (tqs__par(4.0 * cnt * n * P)))
        for (blk = 0; blk < nblk; blk++) {   /* blocks of parameters; every sum in the order of g */
            long k0 = blk * 512, k1 = k0 + 512 < P ? k0 + 512 : P, s, k;
            int g;
            for (s = 0; s < cnt; s++) {
                double *xr = v->X + 2 * (size_t)(s0 + s) * P, *xi = xr + P;
                for (k = k0; k < k1; k++) xr[k] = xi[k] = 0.0;
                for (g = 0; g < n; g++) {
                    size_t e = (size_t)s * n + g;
                    const double *ore = v->sym_jac + 2 * e * P, *oim = ore + P;
                    double wr = v->sym_w[2 * e], wi = v->sym_w[2 * e + 1];
                    for (k = k0; k < k1; k++) { xr[k] += wr * ore[k] - wi * oim[k]; xi[k] += wr * oim[k] + wi * ore[k]; }
                }
            }
        }
    }
    return TQS_OK;
}

TQSDEF int tqs_vmc_set_steps(tqs_vmc *v, int n_steps) {
    if (!v || !v->X) return tqs__fail(TQS_EINVAL, "vmc: not initialised");
    if (n_steps < v->step || n_steps < 1 || n_steps <= v->opt.warmup)
        return tqs__fail(TQS_EINVAL, "vmc: a run of %d steps: %ld are done, and the warm-up has %d", n_steps, v->step, v->opt.warmup);
    v->opt.n_steps = n_steps;
    return TQS_OK;
}

TQSDEF int tqs_vmc_set_chains(tqs_vmc *v, const int8_t *states) {
    int c, i, N;
    if (!v || !v->X || !states) return tqs__fail(TQS_EINVAL, "vmc: not initialised, or no configurations");
    if (v->opt.exact) return tqs__fail(TQS_EINVAL, "vmc: exact enumeration has no chains");
    if (v->step > 0) return tqs__fail(TQS_EINVAL, "vmc: the chains can be set before the first step only (%ld done)", v->step);
    N = v->H->lat.N;
    for (c = 0; c < v->sampler.n_chains; c++) {
        const int8_t *s = states + (size_t)c * N, *t = v->sampler.state + (size_t)c * N;
        int m = 0;
        for (i = 0; i < N; i++) {
            if (s[i] != 1 && s[i] != -1) return tqs__fail(TQS_EINVAL, "vmc: chain %d: spin %d is %d, not +1 or -1", c, i, s[i]);
            m += s[i] - t[i];
        }
        if (m) return tqs__fail(TQS_EINVAL, "vmc: chain %d: the magnetisation differs from the chain's (moves conserve it)", c);
    }
    memcpy(v->sampler.state, states, (size_t)v->sampler.n_chains * N);
    tqs_sampler_invalidate(&v->sampler);
    v->sampler.power = v->opt.sample_power;
    v->chains_ready = 1;
    return TQS_OK;
}

/* What a run trains (model files and checkpoints record it): 0 psi itself,
 * psi_sym over 1 tqs_symmetry_init's group, 2 the translations alone,
 * 3 tqs_symmetry_init_point's group. */
static int tqs__symmetry_kind(const tqs_symmetry *G) {
    return G ? (G->translations_only ? 2 : G->no_flip ? 3 : 1) : 0;
}

/* opt.rollback: keeps the parameters of the lowest energy so far, and when
 * this step's energy has risen far above it (an update that threw the state
 * up, as SR's first steps on psi_sym sometimes do: examples/README.md,
 * "One command at every coupling") goes back to them with half the learning
 * rate. The test needs both: rollback error bars, so that noise does not
 * trigger it (the lowest of many noisy estimates lies a few bars low), and
 * 2% of the energy, so that the ordinary ups and downs of SR do not. The
 * chains, which followed the thrown-up state, are thermalised again at once
 * (a checkpoint after this step holds the complete state). Every process
 * decides the same: the energy and its error are of all samples. The step
 * after a rollback measures the restored state again and takes that as its
 * best, so that a best estimate that came out too low by chance cannot keep
 * rolling the run back. */
static int tqs__vmc_thermalize(tqs_vmc *v, double p, int *sweeps);
static int tqs__vmc_rollback(tqs_vmc *v, tqs_step_info *info) {
    size_t P = v->model->n_params;
    double rise = info->energy - v->best_energy;
    int sweeps;
    if (v->opt.exact || !(v->opt.rollback > 0)) return TQS_OK;
    if (v->have_best && rise > v->opt.rollback * sqrt(info->error * info->error + v->best_error * v->best_error) &&
        rise > 0.02 * fabs(v->best_energy)) {
        memcpy(v->model->params, v->best, sizeof(double) * P);
        memset(v->prior, 0, sizeof(double) * P);
        v->lr_scale *= 0.5; v->rollbacks++;
        v->have_best = 0;   /* the next step measures the best again: a lucky low estimate cannot hold the run */
        info->rolled_back = 1;
        info->lr = v->lr_scale * tqs__lr_at(&v->opt, v->step + 1);
        v->step++;
        tqs_sampler_invalidate(&v->sampler);
        v->sampler.power = 0;   /* (no power: tqs__vmc_thermalize walks the chains again) */
        return tqs__vmc_thermalize(v, v->opt.sample_power, &sweeps);
    }
    if (!v->have_best || info->energy < v->best_energy) {
        memcpy(v->best, v->model->params, sizeof(double) * P);
        v->best_energy = info->energy; v->best_error = info->error; v->have_best = 1;
    }
    return TQS_OK;
}

TQSDEF int tqs_vmc_step(tqs_vmc *v, tqs_step_info *info) {
    tqs_step_info local;
    int8_t *cfgs;
    tqs_complex *lp, *el;
    long P, r, k, s;
    int rc, N;
    double emean_re = 0, emean_im = 0, *Omean, t0, clip_re = 0, clip_im = 0, clip_width = 0;
    if (!v || !v->X) return tqs__fail(TQS_EINVAL, "vmc: not initialised");
    if (v->step >= v->opt.n_steps)   /* past the end the schedules would stay at their final values, unnoticed */
        return tqs__fail(TQS_EINVAL, "vmc: all %d steps of the run are done (tqs_vmc_options.n_steps sets the length of "
                         "the learning-rate and shift schedules; raise it to go on)", v->opt.n_steps);
    if (!info) info = &local;
    P = (long)v->model->n_params; N = v->H->lat.N;
    if ((rc = tqs__vmc_measure(v, info, &cfgs, &lp, &el)) != 0) return rc;
    info->step = v->step;
    info->lr = v->lr_scale * tqs__lr_at(&v->opt, v->step);
    info->diag_shift = tqs__schedule(v->opt.diag_shift, v->opt.diag_shift_final, v->step, v->opt.n_steps, v->opt.schedule);
    if (!isfinite(info->energy)) { /* nothing to learn from: keep the parameters */
        info->rejected = 1; v->step++;
        tqs_sampler_invalidate(&v->sampler);
        return TQS_OK;
    }
    if ((rc = tqs__vmc_rollback(v, info)) != 0 || info->rolled_back) return rc;
    /* Jacobian rows 2s (Re) and 2s+1 (Im), in batches */
    t0 = tqs__seconds();
    if (v->sym_amp) { if ((rc = tqs__vmc_symmetric_jacobian(v, cfgs, lp)) != 0) return rc; }
    else for (s = 0; s < v->M_rows; s += v->opt.jac_batch) {
        int B = (int)(v->M_rows - s < v->opt.jac_batch ? v->M_rows - s : v->opt.jac_batch);
        if ((rc = tqs_vit_jacobian(v->model, &v->jac_ws, v->X + 2 * (size_t)s * P, NULL, cfgs + (size_t)s * N, B)) != 0) return rc;
    }
    if (v->M_rows < v->M)   /* the end of the last block of a split enumeration: no samples, zero rows */
        memset(v->X + 2 * (size_t)v->M_rows * P, 0, sizeof(double) * 2 * (size_t)(v->M - v->M_rows) * (size_t)P);
    /* centre with the weights and scale rows by sqrt(w):
     * X = sqrt(w_s) (O(s) - <O>), f = sqrt(w_s) (E_loc(s) - <E>); <E> over
     * every sample, <O> summed over the processes */
    Omean = v->delta; /* used as scratch before the solve writes it */
    for (s = 0; s < v->M_all; s++) {
        double w = v->w_all ? v->w_all[s] : 1.0 / v->M_all;
        emean_re += w * v->el_all[s].re; emean_im += w * v->el_all[s].im;
    }
    for (r = 0; r < 2; r++) {
        long nblk = (P + 511) / 512, blk;
        TQS__OMP(parallel for schedule(guided) if (tqs__par((double)v->M * P)))
        for (blk = 0; blk < nblk; blk++) { /* blocks of parameters; samples in a fixed order */
            long k0 = blk * 512, k1 = k0 + 512 < P ? k0 + 512 : P, kk, ss;
            for (kk = k0; kk < k1; kk++) Omean[kk] = 0;
            for (ss = 0; ss < v->M; ss++) {
                const double *row = v->X + (2 * (size_t)ss + r) * P;
                double w = v->weights[ss];
                for (kk = k0; kk < k1; kk++) Omean[kk] += w * row[kk];
            }
        }
        if ((rc = tqs__comm_sum(v->comm, Omean, P)) != 0) return rc;
        TQS__OMP(parallel for schedule(guided) if (tqs__par((double)v->M * P)))
        for (s = 0; s < v->M; s++) {
            double *row = v->X + (2 * (size_t)s + r) * P, sw = sqrt(v->weights[s]);
            long kk;
            for (kk = 0; kk < P; kk++) row[kk] = sw * (row[kk] - Omean[kk]);
        }
    }
    if (v->opt.clip_local_energy > 0) {
        /* f from the clipped local energies, centred on their own mean; every
         * process clips the gathered ones alike */
        tqs__clip_bounds(&clip_re, &clip_im, &clip_width, v->el_all, v->w_all, v->M_all, v->opt.clip_local_energy);
        emean_re = emean_im = 0;
        for (s = 0; s < v->M_all; s++) {
            double w = v->w_all ? v->w_all[s] : 1.0 / v->M_all;
            tqs_complex e = v->el_all[s];
            info->clipped += tqs__clip_one(&e, clip_re, clip_im, clip_width);
            emean_re += w * e.re; emean_im += w * e.im;
        }
    }
    for (s = 0; s < v->M; s++) {
        double sw = sqrt(v->weights[s]);
        tqs_complex e = el[s];
        if (v->opt.clip_local_energy > 0) tqs__clip_one(&e, clip_re, clip_im, clip_width);
        v->f[2 * s] = s < v->M_rows ? sw * (e.re - emean_re) : 0.0;
        v->f[2 * s + 1] = s < v->M_rows ? sw * (e.im - emean_im) : 0.0;
    }
    info->seconds[2] = tqs__seconds() - t0;
    t0 = tqs__seconds();
    rc = tqs_sr_solve_prior(v->delta, v->X, v->f, info->diag_shift, v->opt.momentum > 0 ? v->prior : NULL,
                            &v->opt.sr, &v->sr_ws, &info->sr);
    if (rc && rc != TQS_ENOTPD) return rc;
    for (k = 0; k < P && !rc; k++) if (!isfinite(v->delta[k])) rc = TQS_ENUMERIC;
    if (rc) info->rejected = 1;
    else {
        /* length of the step in the metric S: |X delta| = sqrt(delta^T S delta) */
        double q = 0, scale = 1;
        tqs__matvec(v->work, v->X, v->delta, v->R, P);
        for (r = 0; r < v->R; r++) q += v->work[r] * v->work[r];
        if ((rc = tqs__comm_sum(v->comm, &q, 1)) != 0) return rc;
        info->distance = info->lr * sqrt(q);
        if (v->opt.max_distance > 0 && info->distance > v->opt.max_distance) {
            scale = v->opt.max_distance / info->distance;
            info->capped = 1;
        }
        for (k = 0; k < P; k++) v->model->params[k] -= scale * info->lr * v->delta[k];
        for (k = 0; k < P && v->opt.momentum > 0; k++) v->prior[k] = v->opt.momentum * scale * v->delta[k];
        v->model->J1 = v->H->J1; v->model->J2 = v->H->J2;   /* what the model file records */
        v->model->trained_symmetry = tqs__symmetry_kind(v->opt.symmetry);
    }
    info->seconds[3] = tqs__seconds() - t0;
    tqs_sampler_invalidate(&v->sampler);
    v->step++;
    return TQS_OK;
}

static int tqs__vmc_evaluate(tqs_vmc *v, int n_samples, tqs_step_info *info, tqs_observables *o) {
    tqs_step_info local;
    int rc, per, M, i, np;
    int8_t *cfgs;
    tqs_complex *lp, *el, *el_all;
    double *e;
    tqs_stats st;
    if (!v || !v->X) return tqs__fail(TQS_EINVAL, "vmc: not initialised");
    if (!info) info = &local;
    np = tqs__comm_n(v->comm);
    if (o && np > 1) return tqs__fail(TQS_EINVAL, "evaluate: observables are measured on one process only");
    if (o && v->opt.exact && o->n_ref != v->H->lat.N)
        return tqs__fail(TQS_EINVAL, "evaluate: exact observables over orbit representatives need every site as reference (ref_sites NULL)");
    if (v->opt.exact) {
        rc = tqs__vmc_measure(v, info, &cfgs, &lp, &el);
        if (!rc && o) rc = tqs_observables_weighted(o, &v->amp, v->en.configs, v->en.logpsi, v->en.weights, v->en.n);
        return rc;
    }
    if (n_samples < v->opt.n_chains) return tqs__fail(TQS_EINVAL, "evaluate: fewer samples (%d) than chains (%d)", n_samples, v->opt.n_chains);
    per = (n_samples + v->opt.n_chains - 1) / v->opt.n_chains;
    M = per * v->sampler.n_chains;   /* this process's chains; all of them: np M */
    if (o && M > o->max_samples) return tqs__fail(TQS_EINVAL, "evaluate: %d samples, the observables have room for %ld", M, o->max_samples);
    cfgs = (int8_t *)tqs__alloc((size_t)M * v->H->lat.N);
    lp = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * M);
    el = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * M);
    el_all = np > 1 ? (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * (size_t)M * np) : el;
    e = (double *)tqs__alloc(sizeof(double) * (size_t)M * np);
    rc = (!cfgs || !lp || !el || !el_all || !e) ? tqs__fail(TQS_ENOMEM, "evaluate: out of memory for %d samples", M) : 0;
    if (!rc) {   /* |psi|^2, whatever power the training samples (thermalised again if it was another) */
        int therm;
        rc = tqs__vmc_thermalize(v, 2.0, &therm);
        if (!rc) rc = tqs_sampler_run(&v->sampler, &v->amp, per, v->opt.sweeps, therm, cfgs, lp);
    }
    if (!rc && !o) rc = tqs_local_energy(el, v->H, &v->amp, &v->eloc_ws, cfgs, lp, M);
    if (!rc && o && (rc = tqs_observables_sampled(o, &v->amp, cfgs, lp, v->opt.n_chains, per)) == 0)
        for (i = 0; i < M; i++)
            tqs__obs_eloc(o, o->vals + (size_t)TQS__OBS_W(o->N) * i, v->H->J1, v->H->J2, &el[i].re, &el[i].im);
    if (!rc && np > 1) rc = tqs__comm_allgather(v->comm, el, el_all, sizeof(tqs_complex) * (size_t)M);
    if (!rc) {
        double ap[2] = {0, 0};
        for (i = 0; i < M * np; i++) e[i] = el_all[i].re;
        tqs_statistics(&st, e, v->opt.n_chains, per);
        for (i = 0; i < v->sampler.n_chains; i++) { ap[0] += (double)v->sampler.accepted[i]; ap[1] += (double)v->sampler.proposed[i]; }
        rc = tqs__comm_sum(v->comm, ap, 2);
        memset(info, 0, sizeof *info);
        info->step = v->step;
        info->energy = st.mean; info->error = st.error; info->variance = st.variance;
        info->tau = st.tau; info->rhat = st.rhat; info->acceptance = ap[1] > 0 ? ap[0] / ap[1] : 0.0;
        info->ess = (double)M * np;
        for (i = 0; i < M * np; i++) info->energy_imag += el_all[i].im / (M * np);
    }
    TQS_FREE(cfgs); TQS_FREE(lp); TQS_FREE(el); TQS_FREE(e);
    if (np > 1) TQS_FREE(el_all);
    return rc;
}
TQSDEF int tqs_vmc_evaluate(tqs_vmc *v, int n_samples, tqs_step_info *info) { return tqs__vmc_evaluate(v, n_samples, info, NULL); }
TQSDEF int tqs_vmc_evaluate_observables(tqs_vmc *v, int n_samples, tqs_step_info *info, tqs_observables *o) {
    if (!o) return tqs__fail(TQS_EINVAL, "evaluate: null observables");
    return tqs__vmc_evaluate(v, n_samples, info, o);
}

/* ===================================================================== */
/* File I/O                                                              */
/* ===================================================================== */
TQSDEF uint32_t tqs_crc32(uint32_t crc, const void *data, size_t len) {
    /* zlib's CRC-32: reflected polynomial 0xEDB88320, bit by bit (small and
     * fast enough for model files) */
    const unsigned char *b = (const unsigned char *)data;
    size_t i;
    int k;
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= b[i];
        for (k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* Little-endian writers into a byte buffer. */
static unsigned char *tqs__put_u32(unsigned char *p, uint32_t v) {
    int k;
    for (k = 0; k < 4; k++) *p++ = (unsigned char)(v >> (8 * k));
    return p;
}
static unsigned char *tqs__put_u64(unsigned char *p, uint64_t v) {
    int k;
    for (k = 0; k < 8; k++) *p++ = (unsigned char)(v >> (8 * k));
    return p;
}
static unsigned char *tqs__put_f64(unsigned char *p, double x) {
    uint64_t v;
    memcpy(&v, &x, 8);
    return tqs__put_u64(p, v);
}
static uint32_t tqs__get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t tqs__get_u64(const unsigned char *p) {
    return (uint64_t)tqs__get_u32(p) | (uint64_t)tqs__get_u32(p + 4) << 32;
}
static double tqs__get_f64(const unsigned char *p) {
    uint64_t v = tqs__get_u64(p);
    double x;
    memcpy(&x, &v, 8);
    return x;
}

TQSDEF int tqs_write_file_atomic(const char *path, const void *buf, size_t len) {
    char *tmp;
    size_t plen;
    FILE *f;
    int ok;
    if (!path || (!buf && len)) return tqs__fail(TQS_EINVAL, "write: null path or buffer");
    plen = strlen(path);
    tmp = (char *)tqs__alloc(plen + 5);
    if (!tmp) return tqs__fail(TQS_ENOMEM, "write: out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    f = fopen(tmp, "wb");
    if (!f) { int rc = tqs__fail(TQS_EIO, "cannot create '%s'", tmp); TQS_FREE(tmp); return rc; }
    ok = fwrite(buf, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (ok) {
#ifdef _WIN32
        remove(path); /* rename does not replace on Windows */
#endif
        ok = rename(tmp, path) == 0;
    }
    if (!ok) {
        remove(tmp);
        TQS_FREE(tmp);
        return tqs__fail(TQS_EIO, "could not write '%s' (disk full or not writable?); any previous file is unchanged", path);
    }
    TQS_FREE(tmp);
    return TQS_OK;
}

TQSDEF int tqs_read_file(const char *path, unsigned char **buf, size_t *len, size_t max_len) {
    FILE *f;
    unsigned char *b = NULL;
    size_t cap = 0, n = 0;
    if (!path || !buf || !len) return tqs__fail(TQS_EINVAL, "read: null argument");
    *buf = NULL; *len = 0;
    f = fopen(path, "rb");
    if (!f) return tqs__fail(TQS_EIO, "cannot open '%s'", path);
    for (;;) { /* grow as data arrives: never trust a size before reading it */
        size_t got;
        if (n == cap) {
            size_t ncap = cap ? 2 * cap : 65536;
            unsigned char *nb;
            if (cap >= max_len + 1) { TQS_FREE(b); fclose(f); return tqs__fail(TQS_EFORMAT, "'%s' is larger than %zu bytes", path, max_len); }
            if (ncap > max_len + 1) ncap = max_len + 1;
            nb = (unsigned char *)tqs__alloc(ncap);
            if (!nb) { TQS_FREE(b); fclose(f); return tqs__fail(TQS_ENOMEM, "out of memory reading '%s'", path); }
            if (n) memcpy(nb, b, n);
            TQS_FREE(b);
            b = nb; cap = ncap;
        }
        got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) { TQS_FREE(b); fclose(f); return tqs__fail(TQS_EIO, "error reading '%s'", path); }
    fclose(f);
    if (n > max_len) { TQS_FREE(b); return tqs__fail(TQS_EFORMAT, "'%s' is larger than %zu bytes", path, max_len); }
    *buf = b; *len = n;
    return TQS_OK;
}

#define TQS__MODEL_HEADER_V1 52   /* magic 8 + version 4 + 8 int32 + uint64 */
#define TQS__MODEL_HEADER 72      /* version 2: and float64 J1, J2, int32 trained_symmetry */
#define TQS__MODEL_HEADER_V3 76   /* version 3: and int32 sign_rule */

/* Serialises a model into a fresh buffer (the model file format). */
static int tqs__vit_to_bytes(const tqs_vit *m, unsigned char **out, size_t *out_len) {
    int version = m->cfg.sign_rule ? 3 : 2;
    size_t header = version == 3 ? TQS__MODEL_HEADER_V3 : TQS__MODEL_HEADER, len = header + 8 * m->n_params + 4, i;
    unsigned char *buf = (unsigned char *)tqs__alloc(len), *p;
    const int32_t hp[8] = {m->cfg.Lx, m->cfg.Ly, m->cfg.b, m->cfg.d, m->cfg.h, m->cfg.n_layers, m->cfg.ff, m->cfg.attention};
    int k;
    if (!buf) return tqs__fail(TQS_ENOMEM, "save: out of memory");
    for (i = 0; i < m->n_params; i++)
        if (!isfinite(m->params[i])) { TQS_FREE(buf); return tqs__fail(TQS_ENUMERIC, "save: parameter %zu is not finite; refusing to write it", i); }
    memcpy(buf, "TQSMODEL", 8);
    p = tqs__put_u32(buf + 8, (uint32_t)version);
    for (k = 0; k < 8; k++) p = tqs__put_u32(p, (uint32_t)hp[k]);
    p = tqs__put_u64(p, (uint64_t)m->n_params);
    p = tqs__put_f64(p, isfinite(m->J1) && isfinite(m->J2) ? m->J1 : NAN);
    p = tqs__put_f64(p, isfinite(m->J1) && isfinite(m->J2) ? m->J2 : NAN);
    p = tqs__put_u32(p, (uint32_t)m->trained_symmetry);
    if (version == 3) p = tqs__put_u32(p, (uint32_t)m->cfg.sign_rule);
    for (i = 0; i < m->n_params; i++) p = tqs__put_f64(p, m->params[i]);
    p = tqs__put_u32(p, tqs_crc32(0, buf, len - 4));
    TQS_ASSERT((size_t)(p - buf) == len);
    *out = buf; *out_len = len;
    return TQS_OK;
}

TQSDEF int tqs_vit_save(const tqs_vit *m, const char *path) {
    unsigned char *buf;
    size_t len;
    int rc;
    if (!m || !m->params || !path) return tqs__fail(TQS_EINVAL, "save: null model or path");
    if ((rc = tqs__vit_to_bytes(m, &buf, &len)) != 0) return tqs__fail_in_file(rc, path);
    rc = tqs_write_file_atomic(path, buf, len);
    TQS_FREE(buf);
    return rc;
}

TQSDEF int tqs_vit_from_bytes(tqs_vit *m, const unsigned char *buf, size_t len) {
    tqs_vit_config c;
    uint32_t version;
    uint64_t count;
    size_t i, expected, header;
    double J1 = NAN, J2 = NAN;
    int rc, trained_symmetry = 0;
    if (!m) return tqs__fail(TQS_EINVAL, "load: null model");
    memset(m, 0, sizeof *m);
    m->J1 = m->J2 = NAN;
    if (!buf || len < 8 || memcmp(buf, "TQSMODEL", 8))
        return tqs__fail(TQS_EFORMAT, "not a tqs model file (bad magic)");
    if (len < 12)
        return tqs__fail(TQS_EFORMAT, "model file truncated: %zu bytes, the header alone is %d", len, TQS__MODEL_HEADER_V1 + 4);
    version = tqs__get_u32(buf + 8);
    if (version < 1 || version > 3) return tqs__fail(TQS_EFORMAT, "model file version %u, this library reads versions 1 to 3", version);
    header = version == 1 ? TQS__MODEL_HEADER_V1 : version == 2 ? TQS__MODEL_HEADER : TQS__MODEL_HEADER_V3;
    if (len < header + 4)
        return tqs__fail(TQS_EFORMAT, "model file truncated: %zu bytes, the header alone is %zu", len, header + 4);
    c.Lx = (int32_t)tqs__get_u32(buf + 12); c.Ly = (int32_t)tqs__get_u32(buf + 16);
    c.b = (int32_t)tqs__get_u32(buf + 20); c.d = (int32_t)tqs__get_u32(buf + 24);
    c.h = (int32_t)tqs__get_u32(buf + 28); c.n_layers = (int32_t)tqs__get_u32(buf + 32);
    c.ff = (int32_t)tqs__get_u32(buf + 36); c.attention = (int32_t)tqs__get_u32(buf + 40);
    c.sign_rule = version == 3 ? (int32_t)tqs__get_u32(buf + 72) : TQS_SIGN_NONE;
    if (version == 3 && c.sign_rule == TQS_SIGN_NONE)   /* one file per model: no sign rule is version 2 */
        return tqs__fail(TQS_EFORMAT, "model file of version 3 without a sign rule");
    if ((rc = tqs_vit_config_check(&c)) != 0) {
        char msg[sizeof tqs__errbuf];
        memcpy(msg, tqs__errbuf, sizeof msg);
        return tqs__fail(TQS_EFORMAT, "model file has bad hyper-parameters (%s)", msg);
    }
    count = tqs__get_u64(buf + 44);
    expected = tqs_vit_param_count(&c);
    if (count != (uint64_t)expected)
        return tqs__fail(TQS_EFORMAT, "model file says %llu parameters, its hyper-parameters imply %zu",
                         (unsigned long long)count, expected);
    if (len != header + 8 * expected + 4)
        return tqs__fail(TQS_EFORMAT, "model file is %zu bytes, expected %zu (truncated or padded)",
                         len, header + 8 * expected + 4);
    if (tqs_crc32(0, buf, len - 4) != tqs__get_u32(buf + len - 4))
        return tqs__fail(TQS_EFORMAT, "model file is corrupt (CRC mismatch)");
    if (version >= 2) {
        J1 = tqs__get_f64(buf + 52); J2 = tqs__get_f64(buf + 60);
        if (isfinite(J1) != isfinite(J2) || (isfinite(J1) && (fabs(J1) > 1e6 || fabs(J2) > 1e6)))
            return tqs__fail(TQS_EFORMAT, "model file has bad couplings (J1 %g, J2 %g)", J1, J2);
        trained_symmetry = (int)tqs__get_u32(buf + 68);
        if (trained_symmetry < 0 || trained_symmetry > 3)
            return tqs__fail(TQS_EFORMAT, "model file has a bad trained symmetry (%d; 0-3)", trained_symmetry);
    }
    if ((rc = tqs__vit_alloc(m, &c)) != 0) return rc;
    m->J1 = J1; m->J2 = J2; m->trained_symmetry = trained_symmetry;
    for (i = 0; i < expected; i++) {
        m->params[i] = tqs__get_f64(buf + header + 8 * i);
        if (!isfinite(m->params[i])) {
            tqs_vit_free(m);
            return tqs__fail(TQS_EFORMAT, "model file has a non-finite parameter (index %zu)", i);
        }
    }
    return TQS_OK;
}

TQSDEF int tqs_vit_load(tqs_vit *m, const char *path) {
    unsigned char *buf;
    size_t len;
    int rc;
    if (!m) return tqs__fail(TQS_EINVAL, "load: null model");
    memset(m, 0, sizeof *m);
    rc = tqs_read_file(path, &buf, &len, (size_t)1 << 34);
    if (rc) return rc;
    rc = tqs_vit_from_bytes(m, buf, len);
    TQS_FREE(buf);
    return tqs__fail_in_file(rc, path);
}

TQSDEF int tqs_parse_configs(const char *text, size_t len, int N, int8_t **configs, long *count) {
    size_t pos = 0;
    long n = 0, cap = 0, line = 0;
    int8_t *cf = NULL;
    if (!configs || !count || (!text && len) || N < 1 || N > (1 << 20)) return tqs__fail(TQS_EINVAL, "configurations: bad arguments");
    *configs = NULL; *count = 0;
    while (pos < len) {
        size_t end = pos;
        int k = 0;
        line++;
        while (end < len && text[end] != '\n') end++;
        while (pos < end && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\r')) pos++;
        if (pos < end && text[pos] != '#') {
            if (n == cap) {
                int8_t *nc;
                if (cap > (1L << 26) / N) { TQS_FREE(cf); return tqs__fail(TQS_ETOOBIG, "configurations: more than %ld lines", cap); }
                cap = cap ? 2 * cap : 256;
                nc = (int8_t *)tqs__alloc((size_t)cap * (size_t)N);
                if (!nc) { TQS_FREE(cf); return tqs__fail(TQS_ENOMEM, "configurations: out of memory"); }
                if (cf) { memcpy(nc, cf, (size_t)n * (size_t)N); TQS_FREE(cf); }
                cf = nc;
            }
            while (pos < end) {
                int sign = 1;
                if (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\r') { pos++; continue; }
                if (text[pos] == '+' || text[pos] == '-') { sign = text[pos] == '-' ? -1 : 1; pos++; }
                if (pos >= end || text[pos] != '1' || (pos + 1 < end && text[pos + 1] != ' ' && text[pos + 1] != '\t' && text[pos + 1] != '\r')) {
                    TQS_FREE(cf);
                    return tqs__fail(TQS_EFORMAT, "configurations: line %ld: entry %d is not +1 or -1", line, k + 1);
                }
                pos++;
                if (k < N) cf[(size_t)n * N + k] = (int8_t)sign;
                k++;
            }
            if (k != N) { TQS_FREE(cf); return tqs__fail(TQS_EFORMAT, "configurations: line %ld: %d spins, expected N = %d", line, k, N); }
            n++;
        }
        pos = end + 1;
    }
    *configs = cf; *count = n;
    return TQS_OK;
}

/* With several processes: whether any failed (the same answer on all). A
 * process that did not fail itself reports `msg`. */
static int tqs__comm_agree(const tqs_comm *c, int rc, const char *msg) {
    double failed = rc != 0;
    if (tqs__comm_n(c) == 1) return rc;
    if (tqs__comm_sum(c, &failed, 1)) return TQS_ECOMM;
    if (failed > 0 && rc == 0) return tqs__fail(TQS_ECOMM, "%s", msg);
    return rc;
}

/* The run record of a version-3 checkpoint: the options that decide the
 * trajectory, one table for writing, reading and comparing them. */
enum { TQS__F_INT, TQS__F_DBL, TQS__F_U64 };
typedef struct tqs__run_field { const char *key; int kind; size_t off; } tqs__run_field;
#define TQS__RF(key, kind, member) {key, kind, offsetof(tqs_vmc_options, member)}
static const tqs__run_field tqs__run_fields[] = {
    TQS__RF("n_samples", TQS__F_INT, n_samples), TQS__RF("n_chains", TQS__F_INT, n_chains),
    TQS__RF("sweeps", TQS__F_INT, sweeps), TQS__RF("thermalize", TQS__F_INT, thermalize),
    TQS__RF("exact", TQS__F_INT, exact), TQS__RF("n_steps", TQS__F_INT, n_steps),
    TQS__RF("lr", TQS__F_DBL, lr), TQS__RF("lr_final", TQS__F_DBL, lr_final),
    TQS__RF("diag_shift", TQS__F_DBL, diag_shift), TQS__RF("diag_shift_final", TQS__F_DBL, diag_shift_final),
    TQS__RF("schedule", TQS__F_INT, schedule), TQS__RF("warmup", TQS__F_INT, warmup),
    TQS__RF("solver", TQS__F_INT, sr.solver), TQS__RF("cg_tol", TQS__F_DBL, sr.cg_tol),
    TQS__RF("cg_max_iter", TQS__F_INT, sr.cg_max_iter), TQS__RF("seed", TQS__F_U64, seed),
    TQS__RF("max_distance", TQS__F_DBL, max_distance), TQS__RF("momentum", TQS__F_DBL, momentum),
    TQS__RF("sample_power", TQS__F_DBL, sample_power),  /* absent (older files): 2 */
    TQS__RF("rollback", TQS__F_DBL, rollback),          /* absent (older files): not compared (NAN) */
    TQS__RF("clip_local_energy", TQS__F_DBL, clip_local_energy)   /* absent (older files): off (-1) */
};
#define TQS__N_RUN_FIELDS (sizeof tqs__run_fields / sizeof tqs__run_fields[0])

/* "key value" lines: J1, J2, the fields, the symmetry, then the note. */
static char *tqs__run_record(const tqs_vmc *v, size_t *len) {
    const tqs_symmetry *G = v->opt.symmetry;
    size_t cap = 4096 + (v->opt.note ? strlen(v->opt.note) : 0), n = 0, f;
    char *r = (char *)tqs__alloc(cap);
    const char *o = (const char *)&v->opt;
    int k;
    if (!r) return NULL;
    n += (size_t)snprintf(r + n, cap - n, "J1 %.17g\nJ2 %.17g\n", v->H->J1, v->H->J2);
    for (f = 0; f < TQS__N_RUN_FIELDS; f++) {
        const tqs__run_field *F = &tqs__run_fields[f];
        if (F->kind == TQS__F_INT) n += (size_t)snprintf(r + n, cap - n, "%s %d\n", F->key, *(const int *)(o + F->off));
        else if (F->kind == TQS__F_DBL) n += (size_t)snprintf(r + n, cap - n, "%s %.17g\n", F->key, *(const double *)(o + F->off));
        else n += (size_t)snprintf(r + n, cap - n, "%s %llu\n", F->key, (unsigned long long)*(const uint64_t *)(o + F->off));
    }
    if (!G) n += (size_t)snprintf(r + n, cap - n, "symmetry none 0\n");
    else {
        n += (size_t)snprintf(r + n, cap - n, "symmetry %s %d\ncharacters %.17g %.17g %.17g",
                              G->translations_only ? "translations" : G->no_flip ? "point" : "full", G->b, G->chi_x, G->chi_y, G->chi_flip);
        for (k = 0; k < 8; k++) n += (size_t)snprintf(r + n, cap - n, " %.17g", G->chi_point[k]);
        n += (size_t)snprintf(r + n, cap - n, "\n");
    }
    n += (size_t)snprintf(r + n, cap - n, "note %s", v->opt.note ? v->opt.note : "");
    *len = n;
    return r;
}

/* The value of line "key value" in a run record (text starts with '\n'), or NULL. */
static char *tqs__record_value(char *text, const char *key) {
    char look[40], *p;
    snprintf(look, sizeof look, "\n%s ", key);
    p = strstr(text, look);
    return p ? p + strlen(look) : NULL;
}

/* Reads a run record into info (has_run set); TQS_EFORMAT if a line is missing or malformed. */
static int tqs__run_record_parse(tqs_checkpoint_info *ci, const char *rec, size_t len) {
    char *text = (char *)tqs__alloc(len + 2), *p, *end, kind[16];
    size_t f;
    int rc = TQS_OK, k, used;
    char *o = (char *)&ci->opt;
    if (!text) return tqs__fail(TQS_ENOMEM, "checkpoint: out of memory");
    text[0] = '\n';   /* every line, the first too, starts after a newline */
    memcpy(text + 1, rec, len); text[len + 1] = 0;
    p = strstr(text, "\nnote ");
    if (!p) { rc = tqs__fail(TQS_EFORMAT, "checkpoint: its run record has no note line"); goto done; }
    *p = 0;   /* the note is the rest, whatever it holds */
    if (strlen(p + 6) >= TQS_NOTE_MAX) { rc = tqs__fail(TQS_EFORMAT, "checkpoint: its note is too long"); goto done; }
    strcpy(ci->note, p + 6);
    memset(&ci->opt, 0, sizeof ci->opt);
    if (!(p = tqs__record_value(text, "J1")) || sscanf(p, "%lf", &ci->J1) != 1 ||
        !(p = tqs__record_value(text, "J2")) || sscanf(p, "%lf", &ci->J2) != 1) {
        rc = tqs__fail(TQS_EFORMAT, "checkpoint: its run record has no couplings"); goto done;
    }
    for (f = 0; f < TQS__N_RUN_FIELDS; f++) {
        const tqs__run_field *F = &tqs__run_fields[f];
        if (!(p = tqs__record_value(text, F->key)) && !strcmp(F->key, "sample_power")) { ci->opt.sample_power = 2.0; continue; }
        if (!p && !strcmp(F->key, "rollback")) { ci->opt.rollback = NAN; continue; }
        if (!p && !strcmp(F->key, "clip_local_energy")) { ci->opt.clip_local_energy = -1; continue; }
        if (!p) { rc = tqs__fail(TQS_EFORMAT, "checkpoint: its run record has no %s", F->key); goto done; }
        if (F->kind == TQS__F_INT) *(int *)(o + F->off) = (int)strtol(p, &end, 10);
        else if (F->kind == TQS__F_DBL) *(double *)(o + F->off) = strtod(p, &end);
        else *(uint64_t *)(o + F->off) = (uint64_t)strtoull(p, &end, 10);
        if (end == p || *end != '\n') { rc = tqs__fail(TQS_EFORMAT, "checkpoint: its run record's %s is malformed", F->key); goto done; }
    }
    if (!(p = tqs__record_value(text, "symmetry")) || sscanf(p, "%15s %d", kind, &ci->symmetry_b) != 2) {
        rc = tqs__fail(TQS_EFORMAT, "checkpoint: its run record has no symmetry"); goto done;
    }
    ci->symmetry = !strcmp(kind, "full") ? 1 : !strcmp(kind, "translations") ? 2 : !strcmp(kind, "point") ? 3 : 0;
    if (ci->symmetry) {
        p = tqs__record_value(text, "characters");
        if (!p || sscanf(p, "%lf %lf %lf%n", &ci->chi_x, &ci->chi_y, &ci->chi_flip, &used) != 3) {
            rc = tqs__fail(TQS_EFORMAT, "checkpoint: its run record has no characters"); goto done;
        }
        p += used;
        for (k = 0; k < 8; k++) {
            ci->chi_point[k] = strtod(p, &end);
            if (end == p) { rc = tqs__fail(TQS_EFORMAT, "checkpoint: its run record's characters are malformed"); goto done; }
            p = end;
        }
    }
    ci->has_run = 1;
done:
    TQS_FREE(text);
    return rc;
}

/* The run v against a checkpoint's record: the first difference, by name. */
static int tqs__run_record_check(const tqs_vmc *v, const tqs_checkpoint_info *ci) {
    const tqs_symmetry *G = v->opt.symmetry;
    const char *a = (const char *)&v->opt, *b = (const char *)&ci->opt;
    size_t f;
    int k, sym = tqs__symmetry_kind(G);
    static const char *const sym_name[4] = {"psi", "psi_sym (full group)", "psi_sym (translations)", "psi_sym (translations and point group)"};
    if (v->H->J1 != ci->J1 || v->H->J2 != ci->J2)
        return tqs__fail(TQS_EINVAL, "checkpoint: its run has J1 %g, J2 %g; this run J1 %g, J2 %g", ci->J1, ci->J2, v->H->J1, v->H->J2);
    for (f = 0; f < TQS__N_RUN_FIELDS; f++) {
        const tqs__run_field *F = &tqs__run_fields[f];
        if (F->kind == TQS__F_INT && *(const int *)(a + F->off) != *(const int *)(b + F->off))
            return tqs__fail(TQS_EINVAL, "checkpoint: its run has %s %d, this run %d", F->key, *(const int *)(b + F->off), *(const int *)(a + F->off));
        if (F->kind == TQS__F_DBL && *(const double *)(a + F->off) != *(const double *)(b + F->off) && !isnan(*(const double *)(b + F->off)))
            return tqs__fail(TQS_EINVAL, "checkpoint: its run has %s %.15g, this run %.15g", F->key, *(const double *)(b + F->off),
                             *(const double *)(a + F->off));
        if (F->kind == TQS__F_U64 && *(const uint64_t *)(a + F->off) != *(const uint64_t *)(b + F->off))
            return tqs__fail(TQS_EINVAL, "checkpoint: its run has %s %llu, this run %llu", F->key,
                             (unsigned long long)*(const uint64_t *)(b + F->off), (unsigned long long)*(const uint64_t *)(a + F->off));
    }
    if (sym != ci->symmetry || (G && G->b != ci->symmetry_b))
        return tqs__fail(TQS_EINVAL, "checkpoint: its run trains %s, this run %s", sym_name[ci->symmetry & 3], sym_name[sym]);
    if (G) {
        int same = G->chi_x == ci->chi_x && G->chi_y == ci->chi_y && G->chi_flip == ci->chi_flip;
        for (k = 0; k < 8; k++) same &= G->chi_point[k] == ci->chi_point[k];
        if (!same) return tqs__fail(TQS_EINVAL, "checkpoint: its run's psi_sym is in another symmetry sector");
    }
    return TQS_OK;
}

/* One file whatever the number of processes: every chain's state and stream
 * gathered, written by process 0; every process returns its outcome. */
TQSDEF int tqs_vmc_save_checkpoint(const tqs_vmc *v, const char *path) {
    unsigned char *mbuf = NULL, *buf = NULL, *p, *states;
    char *rec = NULL;
    tqs_rng *rngs;
    size_t mlen, len, np_ = 0, rlen = 0, nb = 0;
    int rc = 0, c, k, L, M, N, np, root;
    char msg[160];
    if (!v || !v->model || !path) return tqs__fail(TQS_EINVAL, "checkpoint: null argument");
    np = tqs__comm_n(v->comm); root = np == 1 || v->comm->rank == 0;
    L = v->opt.exact ? 0 : v->sampler.n_chains; M = L * np; N = v->H->lat.N;
    states = v->opt.exact ? NULL : (unsigned char *)v->sampler.state; rngs = v->opt.exact ? NULL : v->sampler.rng;
    if (np > 1 && M) {   /* every chain, in order */
        states = (unsigned char *)tqs__alloc((size_t)M * N);
        rngs = (tqs_rng *)tqs__alloc(sizeof(tqs_rng) * (size_t)M);
        if (!states || !rngs) rc = tqs__fail(TQS_ENOMEM, "checkpoint: out of memory");
        rc = tqs__comm_agree(v->comm, rc, "checkpoint: another process ran out of memory");
        if (!rc) rc = tqs__comm_allgather(v->comm, v->sampler.state, states, (size_t)L * N);
        if (!rc) rc = tqs__comm_allgather(v->comm, v->sampler.rng, rngs, sizeof(tqs_rng) * (size_t)L);
    }
    if (!rc && root) {
        if ((rc = tqs__vit_to_bytes(v->model, &mbuf, &mlen)) != 0) rc = tqs__fail_in_file(rc, path);
        np_ = v->opt.momentum > 0 ? v->model->n_params : 0;   /* SPRING's prior follows the model */
        if (!rc && !(rec = tqs__run_record(v, &rlen))) rc = tqs__fail(TQS_ENOMEM, "checkpoint: out of memory");
        nb = v->have_best ? v->model->n_params : 0;   /* opt.rollback's state */
        len = 8 + 4 + 8 + 4 + 4 + (size_t)M * N + (size_t)M * 32 + 8 + (rc ? 0 : mlen) + 8 + 8 * np_ + 8 + rlen
            + 4 + 4 + 8 + 8 + 8 + 8 + 8 * nb + 4;
        if (!rc && !(buf = (unsigned char *)tqs__alloc(len))) rc = tqs__fail(TQS_ENOMEM, "checkpoint: out of memory");
        if (!rc) {
            memcpy(buf, "TQSCKPT1", 8);
            p = tqs__put_u32(buf + 8, 4);
            p = tqs__put_u64(p, (uint64_t)v->step);
            p = tqs__put_u32(p, (uint32_t)M);
            p = tqs__put_u32(p, (uint32_t)N);
            if (M) memcpy(p, states, (size_t)M * N);
            p += (size_t)M * N;
            for (c = 0; c < M; c++) for (k = 0; k < 4; k++) p = tqs__put_u64(p, rngs[c].s[k]);
            p = tqs__put_u64(p, (uint64_t)mlen);
            memcpy(p, mbuf, mlen); p += mlen;
            {
                size_t i;
                p = tqs__put_u64(p, (uint64_t)np_);
                for (i = 0; i < np_; i++) p = tqs__put_f64(p, v->prior[i]);
            }
            p = tqs__put_u64(p, (uint64_t)rlen);
            memcpy(p, rec, rlen); p += rlen;
            {
                size_t i;
                p = tqs__put_u32(p, (uint32_t)v->have_best);
                p = tqs__put_u32(p, (uint32_t)v->rollbacks);
                p = tqs__put_f64(p, v->lr_scale);
                p = tqs__put_f64(p, v->best_energy);
                p = tqs__put_f64(p, v->best_error);
                p = tqs__put_u64(p, (uint64_t)nb);
                for (i = 0; i < nb; i++) p = tqs__put_f64(p, v->best[i]);
            }
            p = tqs__put_u32(p, tqs_crc32(0, buf, len - 4));
            TQS_ASSERT((size_t)(p - buf) == len);
            rc = tqs_write_file_atomic(path, buf, len);
        }
    }
    if (np > 1) {
        snprintf(msg, sizeof msg, "checkpoint: process 0 could not write '%.100s'", path);
        rc = tqs__comm_agree(v->comm, rc, msg);
        if (M) { TQS_FREE(states); TQS_FREE(rngs); }
    }
    TQS_FREE(mbuf); TQS_FREE(buf); TQS_FREE(rec);
    return rc;
}

/* The sections of a checkpoint file, checked for consistency (magic,
 * version, lengths, CRC, spins) but not yet against a run. */
typedef struct tqs__ckpt {
    uint32_t version, M, N;
    uint64_t step, mlen, np, rlen, nb;
    const unsigned char *spins, *rngs, *model, *prior, *rec, *rollback;   /* rollback: version 4 */
} tqs__ckpt;
static int tqs__ckpt_parse(tqs__ckpt *c, const unsigned char *buf, size_t len, const tqs_vmc *v) {
    size_t fixed, at, i;
    memset(c, 0, sizeof *c);
    if (!buf || len < 8 || memcmp(buf, "TQSCKPT1", 8)) return tqs__fail(TQS_EFORMAT, "not a tqs checkpoint (bad magic)");
    if (len < 8 + 4 + 8 + 4 + 4 + 8 + 4) return tqs__fail(TQS_EFORMAT, "checkpoint truncated (%zu bytes)", len);
    c->version = tqs__get_u32(buf + 8);
    if (c->version < 1 || c->version > 4) return tqs__fail(TQS_EFORMAT, "checkpoint version %u, this library reads versions 1 to 4", c->version);
    c->step = tqs__get_u64(buf + 12);
    c->M = tqs__get_u32(buf + 20); c->N = tqs__get_u32(buf + 24);
    if (c->N == 0 || c->N > (1u << 22)) return tqs__fail(TQS_EFORMAT, "checkpoint is for %u sites", c->N);
    if (v) {   /* the run it is loaded into, first: the clearest message */
        int total = v->opt.exact ? 0 : v->sampler.n_chains * tqs__comm_n(v->comm);
        if ((int)c->N != v->H->lat.N) return tqs__fail(TQS_EFORMAT, "checkpoint is for %u sites, this run has %d", c->N, v->H->lat.N);
        if (c->M != (uint32_t)total)
            return tqs__fail(TQS_EFORMAT, "checkpoint has %u chains, this run has %d%s", c->M, total, v->opt.exact ? " (exact enumeration)" : "");
    }
    if ((uint64_t)c->M * (c->N + 32) > len) return tqs__fail(TQS_EFORMAT, "checkpoint truncated (%zu bytes)", len);
    fixed = 28 + (size_t)c->M * c->N + (size_t)c->M * 32;
    if (len < fixed + 8 + 4) return tqs__fail(TQS_EFORMAT, "checkpoint truncated (%zu bytes)", len);
    c->mlen = tqs__get_u64(buf + fixed);
    if (c->mlen > len - fixed - 8 - 4) return tqs__fail(TQS_EFORMAT, "checkpoint length does not match its sections (model, prior, run record; truncated?)");
    at = fixed + 8 + (size_t)c->mlen;   /* after the model */
    if (c->version >= 2) {   /* the prior: (u64 count, doubles) */
        if (len - at < 8 + 4) return tqs__fail(TQS_EFORMAT, "checkpoint length does not match its sections (model, prior, run record; truncated?)");
        c->np = tqs__get_u64(buf + at);
        if (c->np > (len - at - 8 - 4) / 8) return tqs__fail(TQS_EFORMAT, "checkpoint's momentum section does not match the model (%llu values, truncated?)",
                                                            (unsigned long long)c->np);
        c->prior = buf + at + 8;
        at += 8 + 8 * (size_t)c->np;
    }
    if (c->version >= 3) {   /* the run record */
        if (len - at < 8 + 4) return tqs__fail(TQS_EFORMAT, "checkpoint truncated before its run record");
        c->rlen = tqs__get_u64(buf + at);
        if (c->rlen > len - at - 8 - 4) return tqs__fail(TQS_EFORMAT, "checkpoint's run record is truncated");
        c->rec = buf + at + 8;
        at += 8 + (size_t)c->rlen;
    }
    if (c->version >= 4) {   /* the rollback's state: u32 have_best, u32 rollbacks, f64 lr_scale, best energy,
                                its error, u64 count, the best parameters */
        if (len - at < 40 + 4) return tqs__fail(TQS_EFORMAT, "checkpoint truncated before its rollback section");
        c->nb = tqs__get_u64(buf + at + 32);
        if (c->nb > (len - at - 40 - 4) / 8) return tqs__fail(TQS_EFORMAT, "checkpoint's rollback section is truncated");
        c->rollback = buf + at;
        at += 40 + 8 * (size_t)c->nb;
    }
    if (at + 4 != len) return tqs__fail(TQS_EFORMAT, "checkpoint length does not match its sections (model, prior, run record; truncated?)");
    if (tqs_crc32(0, buf, len - 4) != tqs__get_u32(buf + len - 4)) return tqs__fail(TQS_EFORMAT, "checkpoint is corrupt (CRC mismatch)");
    if (c->step > (uint64_t)1 << 40) return tqs__fail(TQS_EFORMAT, "checkpoint step %llu is absurd", (unsigned long long)c->step);
    c->spins = buf + 28; c->rngs = buf + 28 + (size_t)c->M * c->N; c->model = buf + fixed + 8;
    for (i = 0; i < (size_t)c->M * c->N; i++)
        if (c->spins[i] != 1 && c->spins[i] != 0xFF) return tqs__fail(TQS_EFORMAT, "checkpoint has a spin that is not +1 or -1");
    return TQS_OK;
}

/* Checks a checkpoint against the run (rc_in: a failure before, such as
 * reading the file); with several processes every one then learns whether
 * any failed, and only if none did does each take its slice of the chains. */
static int tqs__vmc_checkpoint_use(tqs_vmc *v, const unsigned char *buf, size_t len, int rc_in) {
    tqs__ckpt c;
    tqs_vit m;
    tqs_checkpoint_info *ci = NULL;
    const unsigned char *p;
    size_t i;
    int rc = rc_in, ch, k, L = v->opt.exact ? 0 : v->sampler.n_chains;
    memset(&m, 0, sizeof m);
    if (rc) goto agree;
    if ((rc = tqs__ckpt_parse(&c, buf, len, v)) != 0) goto agree;
    if (c.np && c.np != v->model->n_params) {
        rc = tqs__fail(TQS_EFORMAT, "checkpoint's momentum section does not match the model (%llu values, truncated?)", (unsigned long long)c.np);
        goto agree;
    }
    if (c.rollback && (tqs__get_u32(c.rollback) > 1 || (tqs__get_u32(c.rollback) ? c.nb != v->model->n_params : c.nb != 0) ||
                       !(tqs__get_f64(c.rollback + 8) > 0 && tqs__get_f64(c.rollback + 8) <= 1))) {
        rc = tqs__fail(TQS_EFORMAT, "checkpoint's rollback section does not match the model (%llu values) or is malformed", (unsigned long long)c.nb);
        goto agree;
    }
    if ((rc = tqs_vit_from_bytes(&m, c.model, (size_t)c.mlen)) != 0) goto agree;
    if (memcmp(&m.cfg, &v->model->cfg, sizeof m.cfg)) {
        rc = tqs__fail(TQS_EFORMAT, "checkpoint model has other hyper-parameters than this run's model");
        goto agree;
    }
    if (c.rec) {   /* from version 3: the same run */
        if (!(ci = (tqs_checkpoint_info *)tqs__calloc(sizeof *ci))) { rc = tqs__fail(TQS_ENOMEM, "checkpoint: out of memory"); goto agree; }
        if ((rc = tqs__run_record_parse(ci, (const char *)c.rec, (size_t)c.rlen)) == 0) rc = tqs__run_record_check(v, ci);
        TQS_FREE(ci);
    }
agree:
    rc = tqs__comm_agree(v->comm, rc, "checkpoint: another process could not use it (its message names the problem)");
    if (rc) { if (m.params) tqs_vit_free(&m); return rc; }
    /* everything checked, on every process: now change the run */
    memcpy(v->model->params, m.params, sizeof(double) * m.n_params);
    v->model->J1 = m.J1; v->model->J2 = m.J2; v->model->trained_symmetry = m.trained_symmetry;
    if (c.step > 0) {   /* trained in this run */
        v->model->J1 = v->H->J1; v->model->J2 = v->H->J2;
        v->model->trained_symmetry = tqs__symmetry_kind(v->opt.symmetry);
    }
    tqs_vit_free(&m);
    v->step = (long)c.step;
    p = c.spins + (size_t)v->first * c.N;   /* this process's chains */
    if (L) memcpy(v->sampler.state, p, (size_t)L * c.N);
    p = c.rngs + (size_t)v->first * 32;
    for (ch = 0; ch < L; ch++) for (k = 0; k < 4; k++) { v->sampler.rng[ch].s[k] = tqs__get_u64(p); p += 8; }
    for (i = 0; i < v->model->n_params; i++)   /* a file without momentum leaves no prior */
        v->prior[i] = c.np ? tqs__get_f64(c.prior + 8 * i) : 0.0;
    /* before version 4: no best yet (the run goes on as if it began here) */
    v->have_best = c.rollback ? (int)tqs__get_u32(c.rollback) : 0;
    v->rollbacks = c.rollback ? (int)tqs__get_u32(c.rollback + 4) : 0;
    v->lr_scale = c.rollback ? tqs__get_f64(c.rollback + 8) : 1.0;
    v->best_energy = c.rollback ? tqs__get_f64(c.rollback + 16) : 0.0;
    v->best_error = c.rollback ? tqs__get_f64(c.rollback + 24) : 0.0;
    for (i = 0; i < (size_t)c.nb; i++) v->best[i] = tqs__get_f64(c.rollback + 40 + 8 * i);
    tqs_sampler_invalidate(&v->sampler);
    return TQS_OK;
}

TQSDEF int tqs_vmc_checkpoint_info(tqs_checkpoint_info *ci, const char *path) {
    unsigned char *buf = NULL;
    size_t len = 0;
    tqs__ckpt c;
    tqs_vit m;
    int rc;
    if (!ci || !path) return tqs__fail(TQS_EINVAL, "checkpoint: null argument");
    memset(ci, 0, sizeof *ci);
    memset(&m, 0, sizeof m);
    rc = tqs_read_file(path, &buf, &len, (size_t)1 << 34);
    if (!rc) rc = tqs__ckpt_parse(&c, buf, len, NULL);
    if (!rc) rc = tqs_vit_from_bytes(&m, c.model, (size_t)c.mlen);
    if (!rc) {
        ci->version = (int)c.version; ci->step = (long)c.step; ci->n_chains = (int)c.M; ci->N = (int)c.N;
        ci->cfg = m.cfg;
        tqs_vit_free(&m);
        if (c.rec) rc = tqs__run_record_parse(ci, (const char *)c.rec, (size_t)c.rlen);
    }
    TQS_FREE(buf);
    return tqs__fail_in_file(rc, path);
}

TQSDEF int tqs_vmc_checkpoint_from_bytes(tqs_vmc *v, const unsigned char *buf, size_t len) {
    if (!v || !v->model) return tqs__fail(TQS_EINVAL, "checkpoint: null argument");
    return tqs__vmc_checkpoint_use(v, buf, len, TQS_OK);
}

TQSDEF int tqs_vmc_load_checkpoint(tqs_vmc *v, const char *path) {
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc;
    if (!v || !v->model || !path) return tqs__fail(TQS_EINVAL, "checkpoint: null argument");
    rc = tqs_read_file(path, &buf, &len, (size_t)1 << 34);
    rc = tqs__vmc_checkpoint_use(v, buf, len, rc);
    TQS_FREE(buf);
    return tqs__fail_in_file(rc, path);
}

/* ===================================================================== */
/* Exact diagonalisation                                                 */
/* ===================================================================== */
/* Combinatorial ranking: a state with up spins at sites p_1 < p_2 < ... has
 * rank sum_k binomial(p_k, k), a bijection onto 0..binomial(N, N/2)-1 that
 * is increasing in the state's value. The sum splits into the low nlo bits
 * (a table over their 2^nlo patterns) and the high bits (a table over their
 * patterns, for each count of up spins among the low bits). */
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
    if (!s || N > 32) return 0;
    for (i = 0; i < N; i++) if (s[i] > 0) b |= 1u << i;
    return b;
}

TQSDEF int tqs_bits_to_config(int8_t *s, uint32_t bits, int N) {
    int i;
    if (!s || N < 0 || N > 32) return tqs__fail(TQS_EINVAL, "bits_to_config: null pointer or N = %d outside [0, 32]", N);
    for (i = 0; i < N; i++) s[i] = (int8_t)((bits >> i & 1) ? 1 : -1);
    return TQS_OK;
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
TQSDEF int tqs_hamiltonian_apply(const tqs_hamiltonian *H, const tqs_basis *basis,
                                 double *out, const double *in) {
    int Lx, Ly, N, i;
    int partner[4][TQS_ED_MAX_SITES];
    double J[4];
    long r, dim;
    if (!H || !basis || !basis->states || !out || !in || out == in)
        return tqs__fail(TQS_EINVAL, "hamiltonian_apply: null pointer, empty basis or out == in");
    if (basis->N != H->lat.N) return tqs__fail(TQS_EINVAL, "hamiltonian_apply: basis of %d sites, Hamiltonian of %d", basis->N, H->lat.N);
    Lx = H->lat.Lx; Ly = H->lat.Ly; N = Lx * Ly; dim = (long)basis->dim;
    J[0] = J[1] = H->J1; J[2] = J[3] = H->J2;
    for (i = 0; i < N; i++) {
        int x = i / Ly, y = i % Ly;
        partner[0][i] = tqs_site(&H->lat, x + 1, y);
        partner[1][i] = tqs_site(&H->lat, x, y + 1);
        partner[2][i] = tqs_site(&H->lat, x + 1, y + 1);
        partner[3][i] = tqs_site(&H->lat, x + 1, y - 1);
    }
    TQS__OMP(parallel for schedule(guided) if (tqs__par(4.0 * N * (double)dim)))
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
    return TQS_OK;
}

static double tqs__dot(const double *a, const double *b, long n) {
    /* Fixed-order blocked sum: same result for any thread count. */
    double total = 0;
    long nb = (n + 4095) / 4096, blk;
    double *part;
    if (nb <= 1) return tqs__dot8(a, b, n);
    part = (double *)tqs__alloc(sizeof(double) * (size_t)nb);
    if (!part) return tqs__dot8(a, b, n);
    TQS__OMP(parallel for schedule(guided) if (tqs__par((double)n)))
    for (blk = 0; blk < nb; blk++) {
        long end = (blk + 1) * 4096 < n ? (blk + 1) * 4096 : n;
        part[blk] = tqs__dot8(a + blk * 4096, b + blk * 4096, end - blk * 4096);
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
    double anorm = 0;
    if (n <= 0) return tqs__fail(TQS_EINVAL, "tridiagonal eigensolver: n must be positive");
    if (z) {
        memset(z, 0, sizeof(double) * (size_t)n * (size_t)n);
        for (i = 0; i < n; i++) z[(size_t)i * n + i] = 1.0;
    }
    if (n == 1) return TQS_OK;
    e[n - 1] = 0.0;
    /* an off-diagonal is negligible below rounding relative to its neighbours
     * or to the whole matrix (as in EISPACK's tql2): without the latter a
     * cluster of eigenvalues near zero beside large ones (the null space of a
     * rank-deficient Gram matrix) never meets the relative test, since the
     * rotations leave errors of eps times the large ones in it */
    for (i = 0; i < n; i++) anorm = fmax(anorm, fabs(d[i]) + fabs(e[i]));
    for (l = 0; l < n; l++) {
        iter = 0;
        for (;;) {
            double g, r, s, c, p, f, b;
            for (m = l; m < n - 1; m++) {
                double dd = fabs(d[m]) + fabs(d[m + 1]);
                if (fabs(e[m]) <= 1e-16 * dd || fabs(e[m]) <= 2.220446049250313e-16 * anorm) break;   /* eps of double */
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


/* ===================================================================== */
/* Symmetrised wave function                                             */
/* ===================================================================== */
/* Where the point element p sends (x, y). */
static void tqs__point_map(const tqs_symmetry *G, int p, int *x, int *y) {
    int k, t;
    if (G->n_point == 8) {
        if (p >= 4) *x = -*x;
        for (k = 0; k < p % 4; k++) { t = *x; *x = -*y; *y = t; }
    } else {
        if (p & 1) *x = -*x;
        if (p & 2) *y = -*y;
    }
}

static void tqs__symmetry_perm(const tqs_symmetry *G, int *perm, int dx, int dy, int p) {
    int i;
    for (i = 0; i < G->N; i++) {
        int x = i / G->Ly, y = i % G->Ly;
        tqs__point_map(G, p, &x, &y);
        perm[i] = tqs__mod(x + dx, G->Lx) * G->Ly + tqs__mod(y + dy, G->Ly);
    }
}

TQSDEF int tqs_symmetry_init(tqs_symmetry *G, int Lx, int Ly, int b) {
    int nt, t, p, f, g;
    double ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    if (!G) return tqs__fail(TQS_EINVAL, "symmetry: null pointer");
    memset(G, 0, sizeof *G);
    if (Lx < 2 || Ly < 2 || Lx > 4096 || Ly > 4096 || (long)Lx * Ly > (1L << 20))
        return tqs__fail(TQS_EINVAL, "symmetry: lattice %dx%d out of range", Lx, Ly);
    if (b < 0 || (b > 0 && (Lx % b || Ly % b)))
        return tqs__fail(TQS_EINVAL, "symmetry: patch %d must divide Lx = %d and Ly = %d", b, Lx, Ly);
    G->Lx = Lx; G->Ly = Ly; G->N = Lx * Ly; G->b = b;
    G->n_point = Lx == Ly ? 8 : 4;
    G->n_full = G->N * G->n_point * 2;
    nt = b > 0 ? b * b : G->N;
    G->n = nt * G->n_point * 2;
    G->perm = (int *)tqs__alloc(sizeof(int) * (size_t)G->n * G->N);
    G->flip = (int8_t *)tqs__alloc((size_t)G->n);
    G->chi = (double *)tqs__alloc(sizeof(double) * (size_t)G->n);
    if (!G->perm || !G->flip || !G->chi) { tqs_symmetry_free(G); return tqs__fail(TQS_ENOMEM, "symmetry: out of memory"); }
    /* element g = (t, p, f) in that order; translations (dx, dy) < (b, b) */
    for (t = 0, g = 0; t < nt; t++)
        for (p = 0; p < G->n_point; p++)
            for (f = 0; f < 2; f++, g++) {
                int dx = b > 0 ? t / b : t / Ly, dy = b > 0 ? t % b : t % Ly;
                tqs__symmetry_perm(G, G->perm + (size_t)g * G->N, dx, dy, p);
                G->flip[g] = (int8_t)f;
            }
    return tqs_symmetry_set_characters(G, 1, 1, ones, 1);
}

TQSDEF int tqs_symmetry_init_translations(tqs_symmetry *G, int Lx, int Ly, int b) {
    int rc = tqs_symmetry_init(G, Lx, Ly, b), t, nt;
    if (rc) return rc;
    nt = G->n / (2 * G->n_point);
    for (t = 0; t < nt; t++) {   /* element (t, identity, no flip) is g = 2 n_point t */
        memmove(G->perm + (size_t)t * G->N, G->perm + (size_t)t * 2 * G->n_point * G->N, sizeof(int) * (size_t)G->N);
        G->flip[t] = 0;
    }
    G->n = nt;
    G->translations_only = 1;
    return tqs_symmetry_set_characters(G, G->chi_x, G->chi_y, G->chi_point, G->chi_flip);
}

TQSDEF int tqs_symmetry_init_point(tqs_symmetry *G, int Lx, int Ly, int b) {
    int rc = tqs_symmetry_init(G, Lx, Ly, b), k, nk;
    if (rc) return rc;
    nk = G->n / 2;
    for (k = 0; k < nk; k++) {   /* element (t, p, no flip) is g = 2 k */
        memmove(G->perm + (size_t)k * G->N, G->perm + (size_t)2 * k * G->N, sizeof(int) * (size_t)G->N);
        G->flip[k] = 0;
    }
    G->n = nk;
    G->no_flip = 1;
    return tqs_symmetry_set_characters(G, G->chi_x, G->chi_y, G->chi_point, G->chi_flip);
}

TQSDEF void tqs_symmetry_free(tqs_symmetry *G) {
    if (!G) return;
    TQS_FREE(G->perm); TQS_FREE(G->flip); TQS_FREE(G->chi);
    memset(G, 0, sizeof *G);
}

TQSDEF int tqs_symmetry_apply(const tqs_symmetry *G, int8_t *out, const int8_t *in, int dx, int dy, int p, int f) {
    int i;
    if (!G || !G->perm || !out || !in || out == in || p < 0 || p >= G->n_point)
        return tqs__fail(TQS_EINVAL, "symmetry_apply: null pointer, out == in or point element %d outside [0, %d)", p, G ? G->n_point : 0);
    for (i = 0; i < G->N; i++) {
        int x = i / G->Ly, y = i % G->Ly;
        tqs__point_map(G, p, &x, &y);
        out[i] = (int8_t)(f ? -in[tqs__mod(x + dx, G->Lx) * G->Ly + tqs__mod(y + dy, G->Ly)]
                            :  in[tqs__mod(x + dx, G->Lx) * G->Ly + tqs__mod(y + dy, G->Ly)]);
    }
    return TQS_OK;
}

static double tqs__ipow(double c, int k) { double r = 1; while (k-- > 0) r *= c; return r; }

TQSDEF int tqs_symmetry_set_characters(tqs_symmetry *G, double chi_x, double chi_y, const double *chi_point, double chi_flip) {
    int p, g;
    if (!G || !G->perm || !chi_point) return tqs__fail(TQS_EINVAL, "symmetry: null pointer");
    if (fabs(chi_x) != 1 || fabs(chi_y) != 1 || fabs(chi_flip) != 1 || chi_point[0] != 1)
        return tqs__fail(TQS_EINVAL, "symmetry: characters must be +1 or -1 (and +1 for the identity)");
    for (p = 0; p < G->n_point; p++) {
        /* a one-dimensional representation of the point group: C4v is made of
         * the quarter turn r (p = 1) and the mirror m (p = 4), p = 4 m + k is r^k m;
         * C2v of the two mirrors (p = 1, 2) */
        double want = G->n_point == 8 ? tqs__ipow(chi_point[1], p % 4) * (p >= 4 ? chi_point[4] : 1.0)
                                      : (p & 1 ? chi_point[1] : 1.0) * (p & 2 ? chi_point[2] : 1.0);
        if (fabs(chi_point[p]) != 1 || chi_point[p] != want)
            return tqs__fail(TQS_EINVAL, "symmetry: point-group characters are not a one-dimensional representation");
    }
    if (G->b > 0 && (tqs__ipow(chi_x, G->b) != 1 || tqs__ipow(chi_y, G->b) != 1))
        return tqs__fail(TQS_EINVAL, "symmetry: the sector (chi_x %+g, chi_y %+g) is odd under translations by the patch %d, "
                         "which the ViT cannot represent", chi_x, chi_y, G->b);
    G->chi_x = chi_x; G->chi_y = chi_y; G->chi_flip = chi_flip;
    for (p = 0; p < 8; p++) G->chi_point[p] = p < G->n_point ? chi_point[p] : 0.0;
    for (g = 0; g < G->n; g++) {
        int t = G->translations_only ? g : G->no_flip ? g / G->n_point : g / (2 * G->n_point);
        int pp = G->translations_only ? 0 : G->no_flip ? g % G->n_point : (g / 2) % G->n_point;
        int f = G->translations_only || G->no_flip ? 0 : g % 2;
        int dx = G->b > 0 ? t / G->b : t / G->Ly, dy = G->b > 0 ? t % G->b : t % G->Ly;
        G->chi[g] = tqs__ipow(chi_x, dx) * tqs__ipow(chi_y, dy) * chi_point[pp] * (f ? chi_flip : 1.0);
    }
    return TQS_OK;
}

TQSDEF double tqs_symmetry_expectation(const tqs_symmetry *G, const tqs_basis *basis, const double *psi,
                                       int dx, int dy, int p, int f) {
    /* sum_s psi(s) psi(g s) / sum_s psi(s)^2, serially (fixed order) */
    int8_t s[32], gs[32];
    double num = 0, den = 0;
    size_t r;
    if (!G || !G->perm || !basis || !basis->states || !psi || basis->N != G->N || p < 0 || p >= G->n_point) return NAN;
    for (r = 0; r < basis->dim; r++) {
        tqs_bits_to_config(s, basis->states[r], G->N);
        tqs_symmetry_apply(G, gs, s, dx, dy, p, f);
        num += psi[r] * psi[tqs_basis_index(basis, tqs_config_to_bits(gs, G->N))];
        den += psi[r] * psi[r];
    }
    return num / den;
}

/* The generators, in the order the two character routines use:
 * 0 = unit x translation, 1 = unit y translation, 2 = flip, 3.. = point p = 1.. */
static void tqs__generator(int k, int *dx, int *dy, int *p, int *f) {
    *dx = k == 0; *dy = k == 1; *f = k == 2; *p = k >= 3 ? k - 2 : 0;
}

static int tqs__set_from_expectations(tqs_symmetry *G, const double *ex, int ng) {
    double chi_point[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int k;
    for (k = 3; k < ng; k++) chi_point[k - 2] = ex[k] >= 0 ? 1.0 : -1.0;
    return tqs_symmetry_set_characters(G, ex[0] >= 0 ? 1.0 : -1.0, ex[1] >= 0 ? 1.0 : -1.0, chi_point, ex[2] >= 0 ? 1.0 : -1.0);
}

TQSDEF int tqs_symmetry_characters_exact(tqs_symmetry *G, const tqs_basis *basis, const double *psi, double tol, double *worst) {
    double ex[11], w = 0;
    int k, ng, dx, dy, p, f;
    if (!G || !G->perm || !basis || !psi) return tqs__fail(TQS_EINVAL, "symmetry: null pointer");
    if (basis->N != G->N) return tqs__fail(TQS_EINVAL, "symmetry: basis of %d sites for a %d-site lattice", basis->N, G->N);
    ng = 2 + G->n_point;
    for (k = 0; k < ng; k++) {
        tqs__generator(k, &dx, &dy, &p, &f);
        ex[k] = tqs_symmetry_expectation(G, basis, psi, dx, dy, p, f);
        if (fabs(fabs(ex[k]) - 1.0) > w) w = fabs(fabs(ex[k]) - 1.0);
    }
    if (worst) *worst = w;
    if (!(w <= tol))
        return tqs__fail(TQS_ENUMERIC, "symmetry: the state is not an eigenvector of every generator (| |<g>| - 1 | = %.2e)", w);
    return tqs__set_from_expectations(G, ex, ng);
}

TQSDEF int tqs_symmetry_characters_sampled(tqs_symmetry *G, const tqs_amplitude *amp, const int8_t *samples,
                                           const tqs_complex *logpsi, int M, double *expect, double *error) {
    double ex[10], er[10];
    int k, ng, dx, dy, p, f, s, rc = TQS_OK;
    int8_t *buf;
    tqs_complex *lp;
    if (!G || !G->perm || !amp || !amp->fn || !samples || !logpsi || M < 2)
        return tqs__fail(TQS_EINVAL, "symmetry: null pointer or fewer than 2 samples");
    buf = (int8_t *)tqs__alloc((size_t)M * G->N);
    lp = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * (size_t)M);
    if (!buf || !lp) { TQS_FREE(buf); TQS_FREE(lp); return tqs__fail(TQS_ENOMEM, "symmetry: out of memory for %d samples", M); }
    ng = 2 + G->n_point;
    for (k = 0; k < ng && !rc; k++) {
        double acc = 0, acc2 = 0;
        if ((G->translations_only && k >= 2) || (G->no_flip && k == 2)) {   /* not summed by this group: not needed */
            ex[k] = 1.0; er[k] = 0.0;
            if (expect) expect[k] = 1.0;
            if (error) error[k] = 0.0;
            continue;
        }
        tqs__generator(k, &dx, &dy, &p, &f);
        for (s = 0; s < M; s++) tqs_symmetry_apply(G, buf + (size_t)s * G->N, samples + (size_t)s * G->N, dx, dy, p, f);
        if ((rc = tqs__amp_eval(amp, lp, buf, M, G->N)) != 0) break;
        /* psi(g s)/psi(s) = exp(lp' - lp); its mean over |psi|^2 is <psi|g|psi>/<psi|psi> */
        for (s = 0; s < M; s++) {
            double r = exp(lp[s].re - logpsi[s].re) * cos(lp[s].im - logpsi[s].im);
            acc += r; acc2 += r * r;
        }
        ex[k] = acc / M;
        er[k] = sqrt(fmax(acc2 / M - ex[k] * ex[k], 0.0) / (M - 1));
        if (expect) expect[k] = ex[k];
        if (error) error[k] = er[k];
    }
    TQS_FREE(buf); TQS_FREE(lp);
    if (rc) return rc;
    for (k = 0; k < ng; k++)
        if (!(fabs(ex[k]) >= 3 * er[k]))
            return tqs__fail(TQS_ENUMERIC, "symmetry: <g> = %.3g +- %.2g for generator %d: the sector is not determined by the samples",
                             ex[k], er[k], k);
    return tqs__set_from_expectations(G, ex, ng);
}

TQSDEF int tqs_symmetry_set_marshall(tqs_symmetry *G) {
    static const double ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    if (!G || !G->perm) return tqs__fail(TQS_EINVAL, "symmetry: null pointer");
    if (!G->translations_only || G->Lx % 2 || G->Ly % 2)
        return tqs__fail(TQS_EINVAL, "symmetry: Marshall's sector needs the translations alone on an even lattice (%dx%d%s)",
                         G->Lx, G->Ly, G->translations_only ? "" : ", a group with the point group");
    return tqs_symmetry_set_characters(G, 1, 1, ones, 1);   /* (-1)^(N/2) = +1 */
}

TQSDEF int tqs_symmetry_characters_ground_state(tqs_symmetry *G, const tqs_hamiltonian *H) {
    tqs_lanczos_options lo;
    tqs_ed_result ed;
    tqs_basis basis;
    int rc;
    if (!G || !G->perm || !H) return tqs__fail(TQS_EINVAL, "symmetry: null pointer");
    if (H->lat.N != G->N) return tqs__fail(TQS_EINVAL, "symmetry: %d sites, the Hamiltonian has %d", G->N, H->lat.N);
    memset(&lo, 0, sizeof lo);
    lo.want_vector = 1;
    if ((rc = tqs_exact_ground_state(&ed, H, &lo)) != 0) return rc;
    if ((rc = tqs_basis_init(&basis, G->N)) == 0) {
        /* Lanczos residual < 1e-10: <g> within ~1e-9 of +-1 in a nondegenerate sector */
        rc = tqs_symmetry_characters_exact(G, &basis, ed.vector, 1e-6, NULL);
        tqs_basis_free(&basis);
    }
    tqs_ed_result_free(&ed);
    return rc;
}

/* out = g in for the element of index g of the table (perm, flip). */
static void tqs__symmetry_element(const tqs_symmetry *G, int g, int8_t *out, const int8_t *in) {
    const int *perm = G->perm + (size_t)g * G->N;
    int i;
    if (G->flip[g]) for (i = 0; i < G->N; i++) out[i] = (int8_t)-in[perm[i]];
    else for (i = 0; i < G->N; i++) out[i] = in[perm[i]];
}

static int tqs__symmetric_logpsi_fn(void *ctx, tqs_complex *out, const int8_t *configs, int B) {
    tqs_symmetric_amplitude *sa = (tqs_symmetric_amplitude *)ctx;
    const tqs_symmetry *G = sa->G;
    int N = G->N, n = G->n, s0, rc;
    for (s0 = 0; s0 < B; s0 += sa->chunk) {
        int cnt = B - s0 < sa->chunk ? B - s0 : sa->chunk, s;
        long t;
        TQS__OMP(parallel for schedule(guided) if (tqs__par((double)cnt * n * N)))
        for (t = 0; t < (long)cnt * n; t++)
            tqs__symmetry_element(G, (int)(t % n), sa->buf + (size_t)t * N, configs + (size_t)(s0 + t / n) * N);
        if ((rc = tqs__amp_eval(&sa->inner, sa->lp, sa->buf, (long)cnt * n, N)) != 0) return rc;
        for (s = 0; s < cnt; s++) {
            /* log sum_g chi(g) exp(lp_g), shifted by the largest Re lp_g */
            const tqs_complex *l = sa->lp + (size_t)s * n;
            double mx = -HUGE_VAL, re = 0, im = 0;
            int g, g0;
            for (g = 0; g < n; g++) if (l[g].re > mx) mx = l[g].re;
            if (mx == -HUGE_VAL) { out[s0 + s].re = -HUGE_VAL; out[s0 + s].im = 0; continue; }
            for (g0 = 0; g0 < n; g0 += 64) {   /* the terms in blocks, vectorised; summed in the order g = 0, 1, ... */
                int ng = n - g0 < 64 ? n - g0 : 64;
                double lre[64], lim[64], tre[64], tim[64];
                for (g = 0; g < ng; g++) { lre[g] = l[g0 + g].re - mx; lim[g] = l[g0 + g].im; }
                tqs__phase_terms(tre, tim, G->chi + g0, lre, lim, ng);
                for (g = 0; g < ng; g++) { re += tre[g]; im += tim[g]; }
            }
            out[s0 + s].re = mx + 0.5 * log(re * re + im * im);  /* -inf if the sum vanishes (callers test isfinite) */
            out[s0 + s].im = atan2(im, re);
        }
    }
    return TQS_OK;
}

TQSDEF int tqs_symmetric_amplitude_init(tqs_symmetric_amplitude *sa, tqs_amplitude *out,
                                        const tqs_symmetry *G, const tqs_amplitude *inner) {
    size_t T;
    if (!sa || !out || !G || !G->perm || !inner || !inner->fn || inner->max_batch < 1)
        return tqs__fail(TQS_EINVAL, "symmetric amplitude: null pointer or amplitude without batch size");
    memset(sa, 0, sizeof *sa);
    sa->G = G; sa->inner = *inner;
    sa->chunk = inner->max_batch / G->n > 0 ? inner->max_batch / G->n : 1;
    T = (size_t)sa->chunk * G->n;
    sa->buf = (int8_t *)tqs__alloc(T * G->N);
    sa->lp = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * T);
    if (!sa->buf || !sa->lp) { tqs_symmetric_amplitude_free(sa); return tqs__fail(TQS_ENOMEM, "symmetric amplitude: out of memory"); }
    out->fn = tqs__symmetric_logpsi_fn; out->ctx = sa; out->max_batch = inner->max_batch;
    return TQS_OK;
}

TQSDEF void tqs_symmetric_amplitude_free(tqs_symmetric_amplitude *sa) {
    if (!sa) return;
    TQS_FREE(sa->buf); TQS_FREE(sa->lp);
    memset(sa, 0, sizeof *sa);
}

/* ===================================================================== */
/* Attention analysis                                                    */
/* ===================================================================== */
TQSDEF int tqs_vit_attention_stats(const tqs_vit *m, tqs_vit_ws *ws, double *dep, double *mean, double *std,
                                   const int8_t *configs, int K) {
    size_t nm, nn, i;
    int s, lh, nlh, rc = TQS_OK;
    double *A, *mn, *sd;
    if (!m || !m->params || !ws || !configs || K < 1) return tqs__fail(TQS_EINVAL, "attention stats: null pointer or no configurations");
    nn = (size_t)m->n * m->n; nlh = m->cfg.n_layers * m->cfg.h; nm = (size_t)nlh * nn;
    A = (double *)tqs__alloc(sizeof(double) * nm);
    mn = mean ? mean : (double *)tqs__alloc(sizeof(double) * nm);
    sd = std ? std : (double *)tqs__alloc(sizeof(double) * nm);
    if (!A || !mn || !sd) { rc = tqs__fail(TQS_ENOMEM, "attention stats: out of memory"); goto done; }
    /* two passes (mean, then deviations): no cancellation in the variance */
    for (i = 0; i < nm; i++) mn[i] = sd[i] = 0;
    if (dep) for (lh = 0; lh < nlh; lh++) dep[lh] = 0;
    for (s = 0; s < K && !rc; s++) {
        if ((rc = tqs_vit_attention(m, ws, A, configs + (size_t)s * m->N)) != 0) break;
        for (i = 0; i < nm; i++) mn[i] += A[i] / K;
    }
    for (s = 0; s < K && !rc; s++) {
        if ((rc = tqs_vit_attention(m, ws, A, configs + (size_t)s * m->N)) != 0) break;
        for (lh = 0; lh < nlh; lh++) {
            double dev = 0, nrm = 0;
            for (i = (size_t)lh * nn; i < (size_t)(lh + 1) * nn; i++) {
                double e = A[i] - mn[i];
                dev += e * e; nrm += mn[i] * mn[i];
                sd[i] += e * e / K;
            }
            if (dep) dep[lh] += (nrm > 0 ? sqrt(dev / nrm) : 0.0) / K;
        }
    }
    if (!rc) for (i = 0; i < nm; i++) sd[i] = sqrt(sd[i]);
done:
    TQS_FREE(A);
    if (!mean) TQS_FREE(mn);
    if (!std) TQS_FREE(sd);
    return rc;
}

TQSDEF int tqs_vit_displacement_map(const tqs_vit *m, double *out, const double *map) {
    int n, PQ;
    if (!m || !m->disp || !out || !map) return tqs__fail(TQS_EINVAL, "displacement_map: null pointer or empty model");
    n = m->n;
    for (PQ = 0; PQ < n; PQ++) out[PQ] = 0;
    for (PQ = 0; PQ < n * n; PQ++) out[m->disp[PQ]] += map[PQ] / n;
    return TQS_OK;
}

/* ===================================================================== */
/* The recipe: plain training, then psi_sym                              */
/* ===================================================================== */
TQSDEF int tqs_symmetry_sector(tqs_symmetry *G, const tqs_hamiltonian *H, const tqs_amplitude *plain, int chains,
                               uint64_t seed, double *exact_energy) {
    tqs_sampler S;
    int per, rc, N;
    int8_t *cf;
    tqs_complex *lp;
    if (!G || !H || !plain || chains < 1) return tqs__fail(TQS_EINVAL, "symmetry_sector: null pointer or no chains");
    N = H->lat.N;
    if (exact_energy) *exact_energy = NAN;
    if (N <= TQS_ED_MAX_SITES) {   /* the Lanczos ground state's characters */
        tqs_lanczos_options lo;
        tqs_ed_result ed;
        tqs_basis basis;
        memset(&lo, 0, sizeof lo);
        lo.want_vector = 1;
        if ((rc = tqs_exact_ground_state(&ed, H, &lo)) != 0) return rc;
        if ((rc = tqs_basis_init(&basis, N)) == 0) {
            rc = tqs_symmetry_characters_exact(G, &basis, ed.vector, 1e-6, NULL);
            tqs_basis_free(&basis);
        }
        if (exact_energy) *exact_energy = ed.energy;
        tqs_ed_result_free(&ed);
        return rc;
    }
    per = (4096 + chains - 1) / chains;
    cf = (int8_t *)tqs__alloc((size_t)per * chains * N);
    lp = (tqs_complex *)tqs__alloc(sizeof(tqs_complex) * (size_t)per * chains);
    if (!cf || !lp) { TQS_FREE(cf); TQS_FREE(lp); return tqs__fail(TQS_ENOMEM, "symmetry_sector: out of memory"); }
    if ((rc = tqs_sampler_init(&S, &H->lat, chains, seed + 1000)) == 0) {
        rc = tqs_sampler_start_ordered(&S, &H->lat, plain);
        if (!rc) rc = tqs_sampler_run(&S, plain, per, 2, 50, cf, lp);
        if (!rc) rc = tqs_symmetry_characters_sampled(G, plain, cf, lp, per * chains, NULL, NULL);
        tqs_sampler_free(&S);
    }
    TQS_FREE(cf); TQS_FREE(lp);
    return rc;
}

/* The plain phase's samples the measured recipes used: 512 up to 24 sites, 1024 above. */
static int tqs__recipe_plain_samples(int n_sites) { return n_sites <= 24 ? 512 : 1024; }

/* psi_sym's first learning rate: 0.1, measured on 4x4-6x6 (and 8x8); on
 * 10x10 0.05 ended as close or closer on each of seeds 1-3 (+1.82e-2,
 * +8.00e-2, +4.15e-2 against 0.1's +1.95e-2, +8.00e-2, +6.26e-2 in an hour),
 * so above 64 sites 0.05 (examples/README.md, "A smaller psi_sym step"). */
static double tqs__recipe_sym_lr(int n_sites) { return n_sites > 64 ? 0.05 : 0.1; }

TQSDEF void tqs_recipe_options_defaults(tqs_recipe_options *o, int n_sites) {
    if (!o) return;
    if (o->plain_steps == 0) o->plain_steps = 1500;
    if (o->sym_steps == 0) o->sym_steps = o->plain_steps >= 12 ? o->plain_steps / 6 : 2;
    if (o->plain.n_samples == 0) o->plain.n_samples = tqs__recipe_plain_samples(n_sites);
    if (o->sym.n_samples == 0) o->sym.n_samples = 512;
    if (o->sym.lr == 0) o->sym.lr = tqs__recipe_sym_lr(n_sites);
    if (o->sym.lr_final == 0) o->sym.lr_final = 0.01;
    if (o->sym.max_distance == 0) o->sym.max_distance = 0.1;
    if (o->sym.seed == 0) o->sym.seed = o->plain.seed;
    if (o->sym.exact == 0) o->sym.exact = o->plain.exact;
    if (o->sym.comm == NULL) o->sym.comm = o->plain.comm;
    if (o->sym.note == NULL) o->sym.note = o->plain.note;
    if (o->sym.memory_limit == 0) o->sym.memory_limit = o->plain.memory_limit;
    o->plain.n_steps = o->plain_steps;
    o->sym.n_steps = o->sym_steps;
    tqs_vmc_options_defaults(&o->plain);
    tqs_vmc_options_defaults(&o->sym);
}

/* The measured recipes (examples/README.md, "Time to accuracy"): 4x4 and
 * 4x6 with 512 plain samples, 6x6 with 1024; a third of the budget plain
 * up to 15 minutes, a quarter for an hour; from 2 hours on 6x6 the wider
 * model (d = 24: 2.2e-3 against d = 16's 2.8-2.9e-3) with a sixth plain.
 * On 4x6 up to 5 minutes the psi_sym phase does not pay for itself (its
 * start-up and few steps): in 5 minutes one plain phase ended at 1.7e-3 to
 * 2.7e-3 over seeds 1-3, the two phases at 2.1e-3 to 3.3e-2.
 * Larger lattices take 6x6's choices: not measured there. */
TQSDEF tqs_recipe_budget tqs_recipe_for_budget(int Lx, int Ly, double minutes) {
    tqs_recipe_budget b;
    int N = Lx * Ly;
    b.plain_samples = tqs__recipe_plain_samples(N);
    b.d = 16;
    b.group = TQS_RECIPE_POINT;
    b.plain_share = minutes < 30 ? 1.0 / 3.0 : 0.25;
    if (minutes > 0 && N > 16 && N <= 24 && minutes <= 5) { b.group = TQS_RECIPE_PLAIN; b.plain_share = 1; }
    if (N > 24 && minutes >= 90) { b.d = 24; b.plain_share = 1.0 / 6.0; }
    if (N > 36) b.group = TQS_RECIPE_TRANSLATIONS;
    return b;
}

TQSDEF int tqs_recipe_sign_rule(int Lx, int Ly, double J1, double J2) {
    return Lx * Ly > 36 && Lx % 2 == 0 && Ly % 2 == 0 && J1 > 0 && J2 <= 0.55 * J1 ? TQS_SIGN_MARSHALL : TQS_SIGN_NONE;
}

TQSDEF int tqs_recipe_init(tqs_recipe *r, const tqs_hamiltonian *H, tqs_vit *model, const tqs_recipe_options *opt) {
    tqs_recipe_options o;
    int rc;
    if (!r || !H || !model) return tqs__fail(TQS_EINVAL, "recipe: null pointer");
    memset(r, 0, sizeof *r);
    if (opt) o = *opt; else memset(&o, 0, sizeof o);
    if (o.plain_steps < 0 || o.sym_steps < 0 || o.group < 0 || o.group > TQS_RECIPE_PLAIN)
        return tqs__fail(TQS_EINVAL, "recipe: negative steps or an unknown group %d", o.group);
    if (o.skip_plain && o.group == TQS_RECIPE_PLAIN) return tqs__fail(TQS_EINVAL, "recipe: no plain phase and no psi_sym phase");
    tqs_recipe_options_defaults(&o, H->lat.N);
    o.plain.symmetry = NULL;
    r->H = H; r->model = model; r->opt = o;
    if ((rc = tqs_vmc_init(&r->vmc, H, model, &r->opt.plain)) != 0) { memset(r, 0, sizeof *r); return rc; }
    return TQS_OK;
}

/* From the plain run to psi_sym: the group, its sector (the characters
 * given, or tqs_symmetry_sector from the plain model), then the psi_sym run
 * from the same parameters. */
static int tqs__recipe_begin_sym(tqs_recipe *r, const tqs_checkpoint_info *ck) {
    const tqs_lattice *lat = &r->H->lat;
    int b = r->model->cfg.b, rc;
    rc = r->opt.group == TQS_RECIPE_FULL ? tqs_symmetry_init(&r->group, lat->Lx, lat->Ly, b)
       : r->opt.group == TQS_RECIPE_TRANSLATIONS ? tqs_symmetry_init_translations(&r->group, lat->Lx, lat->Ly, b)
                                                 : tqs_symmetry_init_point(&r->group, lat->Lx, lat->Ly, b);
    if (rc) return rc;
    r->have_group = 1;
    rc = ck ? tqs_symmetry_set_characters(&r->group, ck->chi_x, ck->chi_y, ck->chi_point, ck->chi_flip)
            : tqs_symmetry_sector(&r->group, r->H, &r->vmc.amp, r->opt.sym.n_chains, r->opt.sym.seed, NULL);
    if (rc == TQS_ENUMERIC && r->opt.group != TQS_RECIPE_TRANSLATIONS) {
        /* no one-dimensional sector of the point group: the momentum alone */
        tqs_symmetry_free(&r->group);
        r->have_group = 0;
        if ((rc = tqs_symmetry_init_translations(&r->group, lat->Lx, lat->Ly, b)) != 0) return rc;
        r->have_group = 1;
        rc = tqs_symmetry_sector(&r->group, r->H, &r->vmc.amp, r->opt.sym.n_chains, r->opt.sym.seed, NULL);
        if (!rc || (rc == TQS_ENUMERIC && lat->N > TQS_ED_MAX_SITES)) { r->opt.group = TQS_RECIPE_TRANSLATIONS; r->sector_fallback = 1; }
    }
    /* Above the exact sizes, samples that leave the translations' sector open
     * come from a plain model far from the ground state, whose sector on an
     * even lattice is known: Marshall's (tqs_symmetry_set_marshall). */
    if (rc == TQS_ENUMERIC && lat->N > TQS_ED_MAX_SITES && lat->Lx % 2 == 0 && lat->Ly % 2 == 0
        && (rc = tqs_symmetry_set_marshall(&r->group)) == 0) {   /* (the group is the translations by now) */
        r->sector_marshall = 1;
    }
    if (rc == TQS_ENUMERIC) { r->sector_fallback = 2; r->phase = 2; return TQS_OK; }   /* the plain model stays */
    if (rc) return rc;
    tqs_vmc_free(&r->vmc);
    r->opt.sym.symmetry = &r->group;
    if ((rc = tqs_vmc_init(&r->vmc, r->H, r->model, &r->opt.sym)) != 0) { r->phase = 2; return rc; }
    r->phase = 1;
    return TQS_OK;
}

TQSDEF int tqs_recipe_next_phase(tqs_recipe *r) {
    if (!r || !r->model) return tqs__fail(TQS_EINVAL, "recipe: not initialised");
    if (r->phase == 0 && r->opt.group != TQS_RECIPE_PLAIN) return tqs__recipe_begin_sym(r, NULL);
    r->phase = 2;
    return TQS_OK;
}

TQSDEF int tqs_recipe_step(tqs_recipe *r, tqs_step_info *info) {
    int rc;
    if (!r || !r->model) return tqs__fail(TQS_EINVAL, "recipe: not initialised");
    if (r->phase == 0 && (r->opt.skip_plain || r->vmc.step >= r->vmc.opt.n_steps) && (rc = tqs_recipe_next_phase(r)) != 0) return rc;
    if (r->phase == 1 && r->vmc.step >= r->vmc.opt.n_steps) r->phase = 2;   /* (shortened by tqs_vmc_set_steps) */
    if (r->phase == 2) return tqs__fail(TQS_EINVAL, "recipe: every step of its phases is done");
    if ((rc = tqs_vmc_step(&r->vmc, info)) != 0) return rc;
    /* the last step of all: done (the plain phase's last step leaves the
     * switch to the next call, so that its run can still be checkpointed) */
    if (r->vmc.step >= r->vmc.opt.n_steps && (r->phase == 1 || r->opt.group == TQS_RECIPE_PLAIN)) r->phase = 2;
    return TQS_OK;
}

TQSDEF int tqs_recipe_load_checkpoint(tqs_recipe *r, const char *path) {
    tqs_checkpoint_info *ck;
    int rc, kind;
    static const int kinds[3] = {3, 1, 2};   /* the checkpoint's symmetry code of each TQS_RECIPE_ group */
    if (!r || !r->model || !path) return tqs__fail(TQS_EINVAL, "recipe: not initialised, or no path");
    if (!(ck = (tqs_checkpoint_info *)TQS_MALLOC(sizeof *ck))) return tqs__fail(TQS_ENOMEM, "recipe: out of memory");
    rc = tqs_vmc_checkpoint_info(ck, path);
    kind = rc == 0 && ck->has_run ? ck->symmetry : 0;
    if (!rc && kind == 2 && r->phase == 0 && r->opt.group != TQS_RECIPE_PLAIN && kinds[r->opt.group] != kind) {
        r->opt.group = TQS_RECIPE_TRANSLATIONS;   /* a run that fell back to the translations (sector_fallback 1) */
        r->sector_fallback = 1;
    }
    if (!rc && kind && (r->opt.group == TQS_RECIPE_PLAIN || kinds[r->opt.group] != kind))
        rc = tqs__fail(TQS_EINVAL, "recipe: '%s' is a checkpoint of psi_sym over another group than this recipe's", path);
    else if (!rc && !kind && (r->phase != 0 || r->opt.skip_plain))
        rc = tqs__fail(TQS_EINVAL, "recipe: '%s' is a checkpoint of a plain run, and this recipe has no plain phase to continue", path);
    if (!rc && kind && r->phase == 0) rc = tqs__recipe_begin_sym(r, ck);
    TQS_FREE(ck);
    if (rc) return rc;
    return tqs_vmc_load_checkpoint(&r->vmc, path);
}

TQSDEF int tqs_recipe_evaluate(tqs_recipe *r, int n_samples, tqs_step_info *info) {
    if (!r || !r->model) return tqs__fail(TQS_EINVAL, "recipe: not initialised");
    return tqs_vmc_evaluate(&r->vmc, n_samples, info);
}

TQSDEF void tqs_recipe_free(tqs_recipe *r) {
    if (!r) return;
    if (r->model) tqs_vmc_free(&r->vmc);
    if (r->have_group) tqs_symmetry_free(&r->group);
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
