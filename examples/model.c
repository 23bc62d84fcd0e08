/* model.c - create, inspect and evaluate ViT model files.
 *   ./examples/model init -o OUT [--L n | --Lx n --Ly n] [--patch b] [--d d] [--heads h]
 *                          [--layers l] [--ff f] [--attention factored|standard] [--seed s]
 *   ./examples/model info MODEL
 *   ./examples/model eval MODEL [CONFIGS | --random K [--seed S]] [--symmetrize [--J2 x]]
 *   ./examples/model observables MODEL [--samples K] [--seed S] [--symmetrize [--J2 x]] [--json] [--svg PREFIX]
 *   ./examples/model exact MODEL [--J2 x] [--json]
 *   ./examples/model metric MODEL [--samples M] [--sample-power p] [--shift eps] [--seed S] [--J2 x] [--json]
 * eval reads one configuration per line (N integers +1/-1 in site order, from
 * CONFIGS or standard input) and prints "Re Im" of log psi per line.
 * --symmetrize evaluates psi_sym instead, in the symmetry sector of the exact
 * ground state of the J1-J2 model at J2 (N <= 24), or, for larger lattices,
 * the sector estimated from 4096 samples of the model.
 * exact (N <= 24) compares the model with the exact ground state, summed
 * over the basis: what a stalled run is (examples/README.md). metric gives
 * the spectrum of SR's metric S from M samples, and the share of the local
 * energy's variance along its modes: what a step can reach. */
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "flags.h"
#include "observables.h"

static int cmd_init(int argc, char **argv) {
    tqs_vit_config c;
    tqs_vit m;
    const char *out = NULL, *att = "factored";
    int i, seed = 1;
    memset(&c, 0, sizeof c);
    c.Lx = c.Ly = 4;   /* the rest: the library's defaults (tqs_vit_config_defaults), as ground_state's */
    for (i = 2; i < argc; i++) {
        if (flags_str(argc, argv, &i, "-o", &out) || flags_lattice(argc, argv, &i, &c.Lx, &c.Ly) ||
            flags_int(argc, argv, &i, "--patch", &c.b, 1, 16) || flags_int(argc, argv, &i, "--d", &c.d, 1, 4096) ||
            flags_int(argc, argv, &i, "--heads", &c.h, 1, 4096) || flags_int(argc, argv, &i, "--layers", &c.n_layers, 1, 64) ||
            flags_int(argc, argv, &i, "--ff", &c.ff, 1, 64) || flags_str(argc, argv, &i, "--attention", &att) ||
            flags_int(argc, argv, &i, "--seed", &seed, 0, 2147483647)) continue;
        flags_die("init: unknown flag '%s'", argv[i]);
    }
    if (!out) flags_die("init: -o OUT is required");
    flags_check_output("-o", out);
    flags_check_lattice(c.Lx, c.Ly);
    tqs_vit_config_defaults(&c);
    if (!strcmp(att, "factored")) c.attention = TQS_ATTN_FACTORED;
    else if (!strcmp(att, "standard")) c.attention = TQS_ATTN_STANDARD;
    else flags_die("--attention: must be 'factored' or 'standard' (got '%s')", att);
    if (c.Lx % c.b || c.Ly % c.b) flags_die("--patch: %d must divide Lx = %d and Ly = %d", c.b, c.Lx, c.Ly);
    if (c.d % c.h) flags_die("--heads: %d must divide --d %d", c.h, c.d);
    if (tqs_vit_init(&m, &c, (uint64_t)seed)) flags_die("%s", tqs_last_error());
    if (tqs_vit_save(&m, out)) { fprintf(stderr, "model: %s\n", tqs_last_error()); tqs_vit_free(&m); return 1; }
    printf("wrote %s: %zu parameters\n", out, m.n_params);
    tqs_vit_free(&m);
    return 0;
}

static int cmd_info(const tqs_vit *m) {
    const tqs_vit_config *c = &m->cfg;
    printf("lattice %dx%d, patch %d (%d tokens), d %d, heads %d, layers %d, ff %d, attention %s%s\n",
           c->Lx, c->Ly, c->b, m->n, c->d, c->h, c->n_layers, c->ff, c->attention ? "standard" : "factored",
           c->sign_rule == TQS_SIGN_MARSHALL ? ", times Marshall's sign" : "");
    printf("parameters %zu\n", m->n_params);
    if (isfinite(m->J1) && isfinite(m->J2)) {
        static const char *what[4] = {"psi itself", "psi_sym over the full group", "psi_sym over the translations",
                                      "psi_sym over the translations and point group"};
        printf("trained at J1 %g, J2 %g: %s\n", m->J1, m->J2, what[m->trained_symmetry & 3]);
    }
    else printf("trained at: not recorded (untrained, or a file of version 1)\n");
    return 0;
}

/* Reads the whole input, then parses every configuration before evaluating
 * any, so a bad line writes nothing. */
static int read_configs(FILE *f, const char *name, int N, int8_t **out, long *count) {
    size_t len = 0, cap = 0, k;
    char *text = NULL;
    int rc;
    for (;;) {
        if (len == cap) {
            char *nt = (char *)realloc(text, cap = cap ? 2 * cap : 65536);
            if (!nt) { free(text); fprintf(stderr, "model: %s: out of memory\n", name); return 1; }
            text = nt;
        }
        k = fread(text + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    rc = tqs_parse_configs(text, len, N, out, count);
    free(text);
    if (rc) fprintf(stderr, "model: %s: %s\n", name, tqs_last_error());
    return rc != 0;
}

/* chains * per samples of |psi|^2 (chain-major) and their log psi: ordered
 * starts, 50 sweeps to thermalise, 2 between samples. */
static int draw_samples(const tqs_lattice *lat, const tqs_amplitude *amp, int chains, int per, uint64_t seed,
                        int8_t *cf, tqs_complex *lp) {
    tqs_sampler S;
    int rc = tqs_sampler_init(&S, lat, chains, seed);
    if (rc) return rc;
    rc = tqs_sampler_start_ordered(&S, lat, amp) || tqs_sampler_run(&S, amp, per, 2, 50, cf, lp);
    tqs_sampler_free(&S);
    return rc;
}

/* Characters of the sector psi_sym is projected on (see the top of the file). */
static int sector(tqs_symmetry *G, const tqs_vit *m, tqs_amplitude *amp, double J2) {
    tqs_hamiltonian H;
    int rc;
    if (tqs_hamiltonian_init(&H, m->cfg.Lx, m->cfg.Ly, 1.0, J2)) return 1;
    if (m->N <= TQS_ED_MAX_SITES) rc = tqs_symmetry_characters_ground_state(G, &H);
    else {
        int8_t *cf = (int8_t *)malloc((size_t)4096 * m->N);
        tqs_complex *lp = (tqs_complex *)malloc(sizeof(tqs_complex) * 4096);
        rc = !cf || !lp || draw_samples(&H.lat, amp, 16, 256, 1, cf, lp) || tqs_symmetry_characters_sampled(G, amp, cf, lp, 4096, NULL, NULL);
        free(cf); free(lp);
    }
    tqs_hamiltonian_free(&H);
    return rc;
}

/* The J2 a subcommand works at (J1 = 1): --J2 if given, else the one the
 * model was trained at (model files of version 2), else 0.5. A coupling
 * other than the model's is said in one line. */
static double model_J2(const tqs_vit *m, int argc, char **argv, const char *cmd) {
    char msg[256];
    double J1 = 1.0, J2 = 0.5;
    int i, given = 0;
    for (i = 3; i + 1 < argc; i++) if (!strcmp(argv[i], "--J2")) { given = 1; J2 = flags_double("--J2", argv[i + 1], -1e3, 1e3); }
    if (flags_model_couplings(msg, sizeof msg, &J1, &J2, 1, given, m->J1, m->J2, cmd, "not the model's couplings"))
        fprintf(stderr, "%s\n", msg);
    return J2;
}

static int cmd_eval(const tqs_vit *m, int argc, char **argv) {
    const char *file = NULL;
    int i, K = -1, seed = 1, N = m->N, j, symmetrize = 0, rc = 0;
    long count = 0, s;
    double J2 = 0.5;
    int8_t *cf = NULL;
    tqs_vit_ws ws;
    tqs_complex lp[256];
    tqs_vit_amplitude holder;
    tqs_amplitude amp, sym_amp;
    tqs_symmetry G;
    tqs_symmetric_amplitude sa;
    for (i = 3; i < argc; i++) {
        if (flags_int(argc, argv, &i, "--random", &K, 1, 100000000) || flags_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            flags_bool(argv, i, "--symmetrize", &symmetrize) || flags_real(argc, argv, &i, "--J2", &J2, -1e3, 1e3)) continue;
        if (argv[i][0] == '-' && argv[i][1]) flags_die("eval: unknown flag '%s'", argv[i]);
        if (file) flags_die("eval: more than one configuration file given");
        file = argv[i];
    }
    if (symmetrize) J2 = model_J2(m, argc, argv, "eval");
    if (K > 0) {
        tqs_rng rng;
        if (file) flags_die("eval: give either CONFIGS or --random, not both");
        cf = (int8_t *)malloc((size_t)K * N);
        if (!cf) { fprintf(stderr, "model: out of memory for %d configurations\n", K); return 1; }
        tqs_rng_seed(&rng, (uint64_t)seed, 0);
        for (s = 0; s < K; s++) tqs_random_config(cf + (size_t)s * N, N, &rng);
        count = K;
    } else {
        FILE *f = file && strcmp(file, "-") ? fopen(file, "r") : stdin;
        if (!f) { fprintf(stderr, "model: cannot open '%s'\n", file); return 1; }
        if (read_configs(f, file ? file : "stdin", N, &cf, &count)) { if (f != stdin) fclose(f); return 1; }
        if (f != stdin) fclose(f);
    }
    if (tqs_vit_ws_init(&ws, m, 256, 0)) { fprintf(stderr, "model: %s\n", tqs_last_error()); free(cf); return 1; }
    amp = tqs_vit_amplitude_make(&holder, m, &ws);
    if (symmetrize) {
        if (tqs_symmetry_init(&G, m->cfg.Lx, m->cfg.Ly, m->cfg.b) || sector(&G, m, &amp, J2) ||
            tqs_symmetric_amplitude_init(&sa, &sym_amp, &G, &amp)) {
            fprintf(stderr, "model: --symmetrize: %s\n", tqs_last_error());
            tqs_vit_ws_free(&ws); free(cf);
            return 1;
        }
    }
    for (s = 0; s < count; s += 256) {
        int B = (int)(count - s < 256 ? count - s : 256), b;
        if (symmetrize ? sym_amp.fn(sym_amp.ctx, lp, cf + (size_t)s * N, B) : tqs_vit_forward(m, &ws, lp, cf + (size_t)s * N, B)) {
            fprintf(stderr, "model: %s\n", tqs_last_error());
            rc = 1;
            break;
        }
        for (b = 0; b < B; b++) {
            if (K > 0) for (j = 0; j < N; j++) printf("%d ", cf[(size_t)(s + b) * N + j]);
            printf("%.17g %.17g\n", lp[b].re, lp[b].im);
        }
    }
    if (symmetrize) { tqs_symmetric_amplitude_free(&sa); tqs_symmetry_free(&G); }
    tqs_vit_ws_free(&ws);
    free(cf);
    return rc;
}

/* How far the model's phase follows Marshall's sign, on samples of |psi|^2:
 * |<exp(i (arg psi(s) - pi n_A(s)))>|, n_A the up spins on the sublattice
 * x + y even; 1 when arg psi = pi n_A + a constant on every sample. */
static int cmd_sign(const tqs_vit *m, int argc, char **argv) {
    int i, K = 4096, seed = 1, chains = 16, per, N = m->N, k, rc;
    double re = 0, im = 0;
    tqs_vit_ws ws;
    tqs_vit_amplitude holder;
    tqs_amplitude amp;
    tqs_lattice lat;
    int8_t *cf;
    tqs_complex *lp;
    for (i = 3; i < argc; i++) {
        if (flags_int(argc, argv, &i, "--samples", &K, 16, 1 << 24) || flags_int(argc, argv, &i, "--seed", &seed, 0, 2147483647)) continue;
        flags_die("sign: unknown flag '%s'", argv[i]);
    }
    per = (K + chains - 1) / chains; K = per * chains;
    cf = (int8_t *)malloc((size_t)K * N); lp = (tqs_complex *)malloc(sizeof(tqs_complex) * (size_t)K);
    if (!cf || !lp) { free(cf); free(lp); fprintf(stderr, "model: out of memory\n"); return 1; }
    if (tqs_lattice_init(&lat, m->cfg.Lx, m->cfg.Ly) || tqs_vit_ws_init(&ws, m, 256, 0)) { fprintf(stderr, "model: %s\n", tqs_last_error()); free(cf); free(lp); return 1; }
    amp = tqs_vit_amplitude_make(&holder, m, &ws);
    rc = draw_samples(&lat, &amp, chains, per, (uint64_t)seed, cf, lp);
    if (rc) fprintf(stderr, "model: sign: %s\n", tqs_last_error());
    else {
        for (k = 0; k < K; k++) {
            double ph = lp[k].im - 3.14159265358979323846 * tqs_marshall_parity(cf + (size_t)k * N, m->cfg.Lx, m->cfg.Ly);
            re += cos(ph); im += sin(ph);
        }
        printf("Marshall's sign: |<exp(i (arg psi - pi n_A))>| = %.4f over %d samples of |psi|^2 (1: the phase is Marshall's sign "
               "on every sample)\n", sqrt(re * re + im * im) / K, K);
    }
    tqs_vit_ws_free(&ws); tqs_lattice_free(&lat);
    free(cf); free(lp);
    return rc != 0;
}

/* C(r), S(q) and the dimer correlations of the model (or of psi_sym) from
 * fresh samples of |psi|^2 (examples/observables.h). */
static int cmd_observables(const tqs_vit *m, int argc, char **argv) {
    int i, K = 4096, seed = 1, symmetrize = 0, json = 0, rc;
    double J2 = 0.5;
    const char *svg = NULL;
    tqs_vit_ws ws;
    tqs_vit_amplitude holder;
    tqs_amplitude amp, sym_amp;
    tqs_symmetry G;
    tqs_symmetric_amplitude sa;
    tqs_observables o;
    tqs_lattice lat;
    for (i = 3; i < argc; i++) {
        if (flags_int(argc, argv, &i, "--samples", &K, 16, 1 << 24) || flags_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            flags_bool(argv, i, "--symmetrize", &symmetrize) || flags_real(argc, argv, &i, "--J2", &J2, -1e3, 1e3) ||
            flags_bool(argv, i, "--json", &json) || flags_str(argc, argv, &i, "--svg", &svg)) continue;
        flags_die("observables: unknown flag '%s'", argv[i]);
    }
    if (symmetrize) J2 = model_J2(m, argc, argv, "observables");
    if (svg) { char probe[1024]; snprintf(probe, sizeof probe, "%s-sq.svg", svg); flags_check_output("--svg", probe); }
    if (tqs_lattice_init(&lat, m->cfg.Lx, m->cfg.Ly) || tqs_vit_ws_init(&ws, m, 256, 0)) { fprintf(stderr, "model: %s\n", tqs_last_error()); return 1; }
    amp = tqs_vit_amplitude_make(&holder, m, &ws);
    if (symmetrize && (tqs_symmetry_init(&G, m->cfg.Lx, m->cfg.Ly, m->cfg.b) || sector(&G, m, &amp, J2) ||
                       tqs_symmetric_amplitude_init(&sa, &sym_amp, &G, &amp))) {
        fprintf(stderr, "model: --symmetrize: %s\n", tqs_last_error());
        tqs_vit_ws_free(&ws); tqs_lattice_free(&lat);
        return 1;
    }
    rc = obs_measure(&o, &lat, m->cfg.b, symmetrize ? &sym_amp : &amp, K, 16, (uint64_t)seed);
    if (rc) fprintf(stderr, "model: observables: %s\n", tqs_last_error());
    else {
        if (json) { obs_json(stdout, &o); printf("\n"); }
        else obs_print(stdout, &o, symmetrize ? "observables of psi_sym" : "observables");
        if (svg) {
            char t[128];
            snprintf(t, sizeof t, "%dx%d %s", m->cfg.Lx, m->cfg.Ly, symmetrize ? "psi_sym" : "model");
            if (obs_svg(svg, &o, t)) { fprintf(stderr, "model: --svg: %s\n", plot_last_error()); rc = 1; }
        }
        tqs_observables_free(&o);
    }
    if (symmetrize) { tqs_symmetric_amplitude_free(&sa); tqs_symmetry_free(&G); }
    tqs_vit_ws_free(&ws); tqs_lattice_free(&lat);
    return rc ? 1 : 0;
}

/* Compares the model with the exact ground state (N <= 24), summing over the
 * whole Sz = 0 basis: no sampling. What a stalled or converged run is:
 *   E/N of psi and its relative error;
 *   |<psi0|psi>|^2, the overlap with the Lanczos ground state psi0;
 *   the weight |P psi|^2 / |psi|^2 of psi in psi0's symmetry sector (P the
 *   projector sum_g chi(g) g / |G| over the full group, chi psi0's characters),
 *   E/N and the exact variance of P psi, the part of psi in that sector, and
 *   the same for the projections over the translations and translations + flip;
 *   the weights of psi in each lattice momentum (the translations' projectors);
 *   <g> = <psi|g|psi> / <psi|psi> of the generators (real part). */
typedef struct { double re, im; } cplx;

/* out = H in for a complex vector (H is real: its real and imaginary parts apart). */
static int apply_h(const tqs_hamiltonian *H, const tqs_basis *B, cplx *out, const cplx *in, double *t0, double *t1) {
    size_t r;
    int part, rc = 0;
    for (part = 0; part < 2 && !rc; part++) {
        for (r = 0; r < B->dim; r++) t0[r] = part ? in[r].im : in[r].re;
        rc = tqs_hamiltonian_apply(H, B, t1, t0);
        for (r = 0; r < B->dim; r++) { if (part) out[r].im = t1[r]; else out[r].re = t1[r]; }
    }
    return rc;
}
static double dot_re(const cplx *a, const cplx *b, size_t n) {   /* Re <a|b> */
    double s = 0;
    size_t r;
    for (r = 0; r < n; r++) s += a[r].re * b[r].re + a[r].im * b[r].im;
    return s;
}

/* Is element g of the full group (tqs_symmetry_init, b = 0) in the group of
 * level lev: 0 the translations, 1 and the flip, 2 everything, 3 the
 * translations and the point group without the flip. */
static int in_level(const tqs_symmetry *G, int g, int lev) {
    int point = (g / 2) % G->n_point, flip = G->flip[g];
    return lev == 2 || (lev == 0 && point == 0 && !flip) || (lev == 1 && point == 0) || (lev == 3 && !flip);
}

static int cmd_exact(const tqs_vit *m, int argc, char **argv) {
    double J2 = 0.5, norm, E, E0, ov_re = 0, ov_im = 0, *t0 = NULL, *t1 = NULL, mx = -1e300;
    int i, json = 0, N = m->N, Lx = m->cfg.Lx, Ly = m->cfg.Ly, rc = 1, g, kx, ky, k, lev;
    size_t r, dim;
    tqs_hamiltonian H;
    tqs_basis B;
    tqs_ed_result ed;
    tqs_lanczos_options lo;
    tqs_symmetry G;
    tqs_vit_ws ws;
    tqs_complex *lp = NULL;
    cplx *psi = NULL, *Ppsi = NULL, *Hv = NULL;
    uint32_t *tidx = NULL;    /* (N, dim): the index of T_t s, t = dx Ly + dy */
    int8_t cf[256 * 32], gs[32];
    double ex[11], wk[24 * 24], w_lev[4], E_lev[4], V_lev[4] = {NAN, NAN, NAN, NAN};
    for (i = 3; i < argc; i++) {
        if (flags_real(argc, argv, &i, "--J2", &J2, -1e3, 1e3) || flags_bool(argv, i, "--json", &json)) continue;
        flags_die("exact: unknown flag '%s'", argv[i]);
    }
    J2 = model_J2(m, argc, argv, "exact");
    if (N > TQS_ED_MAX_SITES) flags_die("exact: %d sites, the exact ground state needs N <= %d", N, TQS_ED_MAX_SITES);
    memset(&ed, 0, sizeof ed); memset(&G, 0, sizeof G); memset(&B, 0, sizeof B);
    memset(&lo, 0, sizeof lo);
    lo.want_vector = 1;
    if (tqs_hamiltonian_init(&H, Lx, Ly, 1.0, J2)) { fprintf(stderr, "model: %s\n", tqs_last_error()); return 1; }
    if (tqs_basis_init(&B, N) || tqs_vit_ws_init(&ws, m, 256, 0)) { fprintf(stderr, "model: %s\n", tqs_last_error()); tqs_basis_free(&B); tqs_hamiltonian_free(&H); return 1; }
    dim = B.dim;
    lp = (tqs_complex *)malloc(sizeof(tqs_complex) * dim);
    psi = (cplx *)malloc(sizeof(cplx) * dim); Ppsi = (cplx *)malloc(sizeof(cplx) * dim); Hv = (cplx *)malloc(sizeof(cplx) * dim);
    t0 = (double *)malloc(sizeof(double) * dim); t1 = (double *)malloc(sizeof(double) * dim);
    tidx = (uint32_t *)malloc(sizeof(uint32_t) * dim * (size_t)N);
    if (!lp || !psi || !Ppsi || !Hv || !t0 || !t1 || !tidx) { fprintf(stderr, "model: exact: out of memory for a basis of %zu states\n", dim); goto done; }
    /* psi on the whole basis, scaled by its largest amplitude */
    for (r = 0; r < dim; r += 256) {
        int nb = (int)(dim - r < 256 ? dim - r : 256), b;
        for (b = 0; b < nb; b++) tqs_bits_to_config(cf + (size_t)b * N, B.states[r + b], N);
        if (tqs_vit_forward(m, &ws, lp + r, cf, nb)) { fprintf(stderr, "model: %s\n", tqs_last_error()); goto done; }
    }
    for (r = 0; r < dim; r++) if (lp[r].re > mx) mx = lp[r].re;
    for (r = 0, norm = 0; r < dim; r++) {
        double a = exp(lp[r].re - mx);
        psi[r].re = a * cos(lp[r].im); psi[r].im = a * sin(lp[r].im);
        norm += a * a;
    }
    if (apply_h(&H, &B, Hv, psi, t0, t1)) { fprintf(stderr, "model: %s\n", tqs_last_error()); goto done; }
    E = dot_re(psi, Hv, dim) / norm;
    /* psi0's characters from the vector at hand (Lanczos residual < 1e-10: <g> within ~1e-9 of +-1) */
    if (tqs_exact_ground_state(&ed, &H, &lo) || tqs_symmetry_init(&G, Lx, Ly, 0) ||
        tqs_symmetry_characters_exact(&G, &B, ed.vector, 1e-6, NULL)) {
        fprintf(stderr, "model: %s\n", tqs_last_error()); goto done;
    }
    E0 = ed.energy;
    for (r = 0; r < dim; r++) { ov_re += ed.vector[r] * psi[r].re; ov_im += ed.vector[r] * psi[r].im; }
    /* P psi for groups with psi0's characters: the translations (lev 0),
     * with the flip (1), the full group (2), the translations and the point
     * group without the flip (3, what --sym-train point trains); the table
     * of translated indices on the way */
    for (lev = 0; lev < 4; lev++) {
        int cnt = 0;
        for (g = 0; g < G.n; g++) cnt += in_level(&G, g, lev);
        for (r = 0; r < dim; r++) Ppsi[r].re = Ppsi[r].im = 0;
        for (r = 0; r < dim; r++) {
            tqs_bits_to_config(cf, B.states[r], N);
            for (g = 0; g < G.n; g++) {
                const int *pm = G.perm + (size_t)g * N;
                size_t q;
                int j;
                if (!in_level(&G, g, lev)) continue;
                for (j = 0; j < N; j++) gs[j] = (int8_t)(G.flip[g] ? -cf[pm[j]] : cf[pm[j]]);
                q = tqs_basis_index(&B, tqs_config_to_bits(gs, N));
                Ppsi[r].re += G.chi[g] * psi[q].re / cnt; Ppsi[r].im += G.chi[g] * psi[q].im / cnt;
                if (lev == 0) tidx[(size_t)(g / (2 * G.n_point)) * dim + r] = (uint32_t)q;
            }
        }
        w_lev[lev] = dot_re(Ppsi, Ppsi, dim) / norm;
        E_lev[lev] = NAN;
        if (w_lev[lev] > 1e-300) {
            if (apply_h(&H, &B, Hv, Ppsi, t0, t1)) { fprintf(stderr, "model: %s\n", tqs_last_error()); goto done; }
            E_lev[lev] = dot_re(Ppsi, Hv, dim) / (w_lev[lev] * norm);
            /* <H^2> - <H>^2 of the projected state: what sampling would
             * measure if it reached every configuration */
            V_lev[lev] = dot_re(Hv, Hv, dim) / (w_lev[lev] * norm) - E_lev[lev] * E_lev[lev];
        }
    }
    for (k = 0; k < 2 + G.n_point; k++) {   /* generators: Tx, Ty, flip, point elements 1.. */
        int dx = k == 0, dy = k == 1, f = k == 2, p = k >= 3 ? k - 2 : 0;
        double num = 0;
        for (r = 0; r < dim; r++) {
            size_t q;
            tqs_bits_to_config(cf, B.states[r], N);
            tqs_symmetry_apply(&G, gs, cf, dx, dy, p, f);
            q = tqs_basis_index(&B, tqs_config_to_bits(gs, N));
            num += psi[r].re * psi[q].re + psi[r].im * psi[q].im;
        }
        ex[k] = num / norm;
    }
    /* momentum weights: |P_k psi|^2 / |psi|^2, P_k = (1/N) sum_t e^{-i k.t} T_t */
    for (kx = 0; kx < Lx; kx++)
        for (ky = 0; ky < Ly; ky++) {
            double w = 0, cs[24], sn[24];
            int t;
            for (t = 0; t < N; t++) {
                double ph = -2 * 3.14159265358979323846 * ((double)kx * (t / Ly) / Lx + (double)ky * (t % Ly) / Ly);
                cs[t] = cos(ph); sn[t] = sin(ph);
            }
            for (r = 0; r < dim; r++) {
                double a = 0, b = 0;
                for (t = 0; t < N; t++) {
                    const cplx *z = psi + tidx[(size_t)t * dim + r];
                    a += z->re * cs[t] - z->im * sn[t]; b += z->re * sn[t] + z->im * cs[t];
                }
                w += (a * a + b * b) / ((double)N * N);
            }
            wk[kx * Ly + ky] = w / norm;
        }
    {
        double ovl = (ov_re * ov_re + ov_im * ov_im) / norm, best = -1;
        int bk = 0;
        const char *gname[11] = {"Tx", "Ty", "flip", "p1", "p2", "p3", "p4", "p5", "p6", "p7"};
        /* a psi_sym-trained model: psi_sym is the state it stands for, so its numbers lead */
        static const int sym_lev[4] = {-1, 2, 0, 3};
        static const char *sym_name[4] = {"", "the full group", "the translations", "the translations and point group"};
        int sl = m->trained_symmetry >= 1 && m->trained_symmetry <= 3 ? sym_lev[m->trained_symmetry] : -1;
        for (k = 0; k < Lx * Ly; k++) if (wk[k] > best) { best = wk[k]; bk = k; }
        if (json) {
            printf("{");
            if (sl >= 0)
                printf("\"trained_symmetry\":%d,\"sym_energy_per_site\":%.10f,\"sym_relative_error\":%.6e,\"sym_variance_per_site\":%.6e,",
                       m->trained_symmetry, E_lev[sl] / N, fabs((E_lev[sl] - E0) / E0), V_lev[sl] / N);
            printf("\"energy_per_site\":%.10f,\"exact_energy_per_site\":%.10f,\"relative_error\":%.6e,\"overlap\":%.6e,"
                   "\"sector_weight\":%.6e,\"sector_energy_per_site\":%.10f,\"sector_relative_error\":%.6e,"
                   "\"momentum_weights\":[",
                   E / N, E0 / N, fabs((E - E0) / E0), ovl, w_lev[2], E_lev[2] / N, fabs((E_lev[2] - E0) / E0));
            for (k = 0; k < Lx * Ly; k++) printf("%s%.6e", k ? "," : "", wk[k]);
            printf("],\"projected_weights\":[%.6e,%.6e,%.6e],\"projected_energies_per_site\":[%.10f,%.10f,%.10f]",
                   w_lev[0], w_lev[1], w_lev[2], E_lev[0] / N, E_lev[1] / N, E_lev[2] / N);
            printf(",\"projected_variances_per_site\":[%.6e,%.6e,%.6e]", V_lev[0] / N, V_lev[1] / N, V_lev[2] / N);
            printf(",\"generators\":[");
            for (k = 0; k < 2 + G.n_point; k++) printf("%s%.6f", k ? "," : "", ex[k]);
            printf("]}\n");
        } else {
            if (sl >= 0)
                printf("psi_sym (trained, over %s): E/N %.8f   (exact %.8f, relative error %.3e, variance/N %.3e)\n"
                       "  and its plain psi below\n", sym_name[m->trained_symmetry], E_lev[sl] / N, E0 / N,
                       fabs((E_lev[sl] - E0) / E0), V_lev[sl] / N);
            printf("E/N of the model          %.8f   (exact %.8f, relative error %.3e)\n", E / N, E0 / N, fabs((E - E0) / E0));
            printf("overlap |<psi0|psi>|^2    %.6f\n", ovl);
            printf("weight in psi0's sector   %.6f   (E/N of that part %.8f)\n", w_lev[2], E_lev[2] / N);
            printf("projected with psi0's characters: weight, E/N, relative error of E/N, variance/N\n");
            printf("  translations              %.6f  %.8f  %.3e  %.3e\n", w_lev[0], E_lev[0] / N, fabs((E_lev[0] - E0) / E0), V_lev[0] / N);
            printf("  translations and flip     %.6f  %.8f  %.3e  %.3e\n", w_lev[1], E_lev[1] / N, fabs((E_lev[1] - E0) / E0), V_lev[1] / N);
            printf("  full group                %.6f  %.8f  %.3e  %.3e\n", w_lev[2], E_lev[2] / N, fabs((E_lev[2] - E0) / E0), V_lev[2] / N);
            printf("  translations, point group %.6f  %.8f  %.3e  %.3e\n", w_lev[3], E_lev[3] / N, fabs((E_lev[3] - E0) / E0), V_lev[3] / N);
            printf("largest momentum weight   %.6f   at k = 2 pi (%d/%d, %d/%d)\n", best, bk / Ly, Lx, bk % Ly, Ly);
            printf("momentum weights (kx Ly + ky, k = 2 pi (kx/Lx, ky/Ly)):");
            for (k = 0; k < Lx * Ly; k++) printf(" %.4f", wk[k]);
            printf("\n");
            printf("<g> of psi / of psi0     ");
            for (k = 0; k < 2 + G.n_point; k++) printf(" %s %+.3f/%+.0f", gname[k], ex[k],
                                                        k == 0 ? G.chi_x : k == 1 ? G.chi_y : k == 2 ? G.chi_flip : G.chi_point[k - 2]);
            printf("\n");
        }
    }
    rc = 0;
done:
    free(lp); free(psi); free(Ppsi); free(Hv); free(t0); free(t1); free(tidx);
    tqs_ed_result_free(&ed); tqs_symmetry_free(&G); tqs_vit_ws_free(&ws); tqs_basis_free(&B); tqs_hamiltonian_free(&H);
    return rc;
}

/* The spectrum of the SR metric S at the model, from one step's samples
 * (tqs_sr_spectrum): how the local energy's variance splits over S's modes,
 * and how much of it a step with shift eps reaches, sum_k share_k lambda_k /
 * (lambda_k + eps). A run that stalls with variance left has it in modes S
 * barely sees. The model in memory takes one step of lr 1e-12; nothing is saved. */
static int cmd_metric(tqs_vit *m, int argc, char **argv) {
    int i, k, M = 512, seed = 1, json = 0, rc = 1, nd = 0, above = 0, distinct = 0;
    double J2 = 0.5, power = 0, eps = 1e-3, *lam = NULL, *share = NULL, reach = 0, null_share = 0, lmax;
    double d_lo[12], d_share[12];
    int d_modes[12];
    tqs_hamiltonian H;
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    for (i = 3; i < argc; i++) {
        if (flags_int(argc, argv, &i, "--samples", &M, 8, 4096) || flags_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            flags_real(argc, argv, &i, "--J2", &J2, -1e3, 1e3) || flags_real(argc, argv, &i, "--sample-power", &power, 0.01, 2) ||
            flags_real(argc, argv, &i, "--shift", &eps, 1e-12, 1e3) || flags_bool(argv, i, "--json", &json)) continue;
        flags_die("metric: unknown flag '%s'", argv[i]);
    }
    J2 = model_J2(m, argc, argv, "metric");
    if (tqs_hamiltonian_init(&H, m->cfg.Lx, m->cfg.Ly, 1.0, J2)) { fprintf(stderr, "model: %s\n", tqs_last_error()); return 1; }
    memset(&o, 0, sizeof o);
    o.n_samples = M; o.n_chains = M; o.n_steps = 1; o.lr = 1e-12; o.thermalize = 50;
    o.sample_power = power; o.seed = (uint64_t)seed;   /* 0: the training's default for the lattice */
    if (tqs_vmc_init(&v, &H, m, &o)) { fprintf(stderr, "model: %s\n", tqs_last_error()); tqs_hamiltonian_free(&H); return 1; }
    lam = (double *)malloc(sizeof(double) * (size_t)v.R);
    share = (double *)malloc(sizeof(double) * (size_t)v.R);
    if (!lam || !share) { fprintf(stderr, "model: out of memory\n"); goto done; }
    if (tqs_vmc_step(&v, &info) || tqs_sr_spectrum(lam, share, v.X, v.f, v.R, m->n_params)) {
        fprintf(stderr, "model: metric: %s\n", tqs_last_error());
        goto done;
    }
    lmax = lam[v.R - 1];
    {   /* distinct configurations among the samples: S has at most twice as many nonzero modes */
        int N = m->N, a, b2, same;
        for (a = 0; a < M; a++) {
            for (b2 = 0, same = 0; b2 < a && !same; b2++) same = !memcmp(v.samples + (size_t)a * N, v.samples + (size_t)b2 * N, (size_t)N);
            distinct += !same;
        }
    }
    /* decades below lambda_max, the last one everything under 1e-10 lambda_max */
    for (nd = 0; nd < 11; nd++) { d_lo[nd] = lmax * pow(10.0, -(nd + 1)); d_modes[nd] = 0; d_share[nd] = 0; }
    d_lo[10] = 0;
    for (k = 0; k < v.R; k++) {
        int d = 0;
        while (d < 10 && lam[k] < d_lo[d]) d++;
        d_modes[d]++; d_share[d] += share[k];
        reach += share[k] * (lam[k] > 0 ? lam[k] / (lam[k] + eps) : 0);
        if (lam[k] > eps) above++;
        if (lam[k] < 1e-10 * lmax) null_share += share[k];
    }
    if (json) {
        printf("{\"samples\":%d,\"distinct\":%d,\"sample_power\":%g,\"energy_per_site\":%.8g,\"variance_per_site\":%.6g,\"parameters\":%ld,"
               "\"lambda_max\":%.6g,\"shift\":%g,\"modes_above_shift\":%d,\"reachable_share\":%.6g,\"null_share\":%.6g,\"decades\":[",
               M, distinct, v.opt.sample_power, info.energy / m->N, info.variance / m->N, (long)m->n_params, lmax, eps, above, reach, null_share);
        for (nd = 0; nd < 11; nd++) printf("%s{\"from\":%.4g,\"modes\":%d,\"share\":%.6g}", nd ? "," : "", d_lo[nd], d_modes[nd], d_share[nd]);
        printf("]}\n");
    } else {
        printf("SR metric S of the model from %d samples of |psi|^%g (%d distinct): E/N %.6f, var/N %.5g, %ld parameters, %ld modes (2M)\n",
               M, v.opt.sample_power, distinct, info.energy / m->N, info.variance / m->N, (long)m->n_params, v.R);
        printf("  eigenvalues from        modes   share of var(E_loc)\n");
        for (nd = 0; nd < 11; nd++)
            if (d_modes[nd]) {
                if (nd < 10) printf("  >= %-18.1e %6d   %.4f\n", d_lo[nd], d_modes[nd], d_share[nd]);
                else printf("  below %-15.1e %6d   %.4f\n", d_lo[9], d_modes[nd], d_share[nd]);
            }
        printf("  lambda_max %.4g; %d modes above the shift %g; a step reaches %.4f of the variance; %.4f in modes below 1e-10 lambda_max\n",
               lmax, above, eps, reach, null_share);
    }
    rc = 0;
done:
    free(lam); free(share);
    tqs_vmc_free(&v); tqs_hamiltonian_free(&H);
    return rc;
}

int main(int argc, char **argv) {
    tqs_vit m;
    int rc;
    flags_prog = "model";
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        tqs_vit_config d;   /* the defaults, from the library */
        memset(&d, 0, sizeof d);
        tqs_vit_config_defaults(&d);
        printf("usage: model init -o OUT [--L n|--Lx n --Ly n (4)] [--patch b (%d)] [--d d (%d)] [--heads h (%d)] [--layers l (%d)]\n"
               "                  [--ff f (%d)] [--attention factored|standard (factored)] [--seed s (1)]\n", d.b, d.d, d.h, d.n_layers, d.ff);
        printf("       model info MODEL\n"
               "       model eval MODEL [CONFIGS | --random K [--seed S (1)]] [--symmetrize [--J2 x (the model's, else 0.5)]]\n"
               "       model observables MODEL [--samples K (4096)] [--seed S (1)] [--symmetrize [--J2 x (the model's, else 0.5)]] [--json] [--svg PREFIX]\n"
               "       model exact MODEL [--J2 x (the model's, else 0.5)] [--json]   (N <= 24: against the exact ground state, no sampling)\n"
               "       model metric MODEL [--samples M (512)] [--sample-power p (as training)] [--shift eps (1e-3)] [--seed S (1)]\n"
               "                          [--J2 x (the model's, else 0.5)] [--json]   (the spectrum of SR's metric S, and the share of the energy variance a step reaches)\n"
               "       model sign MODEL [--samples K (4096)] [--seed S (1)]   (how far the phase of psi follows Marshall's sign)\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "init")) return cmd_init(argc, argv);
    if (strcmp(argv[1], "info") && strcmp(argv[1], "eval") && strcmp(argv[1], "observables") && strcmp(argv[1], "exact") &&
        strcmp(argv[1], "metric") && strcmp(argv[1], "sign"))
        flags_die("unknown command '%s' (init, info, eval, observables, exact, metric or sign)", argv[1]);
    if (argc < 3) flags_die("%s: MODEL is required", argv[1]);
    if (!strcmp(argv[1], "info") && argc > 3) flags_die("info: unexpected argument '%s'", argv[3]);
    if (tqs_vit_load(&m, argv[2])) { fprintf(stderr, "model: %s\n", tqs_last_error()); return 1; }
    rc = !strcmp(argv[1], "info") ? cmd_info(&m) : !strcmp(argv[1], "eval") ? cmd_eval(&m, argc, argv)
       : !strcmp(argv[1], "exact") ? cmd_exact(&m, argc, argv) : !strcmp(argv[1], "metric") ? cmd_metric(&m, argc, argv)
       : !strcmp(argv[1], "sign") ? cmd_sign(&m, argc, argv) : cmd_observables(&m, argc, argv);
    tqs_vit_free(&m);
    return rc;
}
