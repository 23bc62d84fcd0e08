/* model.c - create, inspect and evaluate ViT model files.
 *   ./examples/model init -o OUT [--L n | --Lx n --Ly n] [--patch b] [--d d] [--heads h]
 *                          [--layers l] [--ff f] [--attention factored|standard] [--seed s]
 *   ./examples/model info MODEL
 *   ./examples/model eval MODEL [CONFIGS | --random K [--seed S]] [--symmetrize [--J2 x]]
 *   ./examples/model observables MODEL [--samples K] [--seed S] [--symmetrize [--J2 x]] [--json] [--svg PREFIX]
 * eval reads one configuration per line (N integers +1/-1 in site order, from
 * CONFIGS or standard input) and prints "Re Im" of log psi per line.
 * --symmetrize evaluates psi_sym instead, in the symmetry sector of the exact
 * ground state of the J1-J2 model at J2 (N <= 24), or, for larger lattices,
 * the sector estimated from 4096 samples of the model. */
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
    printf("lattice %dx%d, patch %d (%d tokens), d %d, heads %d, layers %d, ff %d, attention %s\n",
           c->Lx, c->Ly, c->b, m->n, c->d, c->h, c->n_layers, c->ff, c->attention ? "standard" : "factored");
    printf("parameters %zu\n", m->n_params);
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

/* Characters of the sector psi_sym is projected on (see the top of the file). */
static int sector(tqs_symmetry *G, const tqs_vit *m, tqs_amplitude *amp, double J2) {
    tqs_hamiltonian H;
    int rc;
    if (tqs_hamiltonian_init(&H, m->cfg.Lx, m->cfg.Ly, 1.0, J2)) return 1;
    if (m->N <= TQS_ED_MAX_SITES) rc = tqs_symmetry_characters_ground_state(G, &H);
    else {
        tqs_sampler S;
        int8_t *cf = (int8_t *)malloc((size_t)4096 * m->N);
        tqs_complex *lp = (tqs_complex *)malloc(sizeof(tqs_complex) * 4096);
        rc = !cf || !lp || tqs_sampler_init(&S, &H.lat, 16, 1);
        if (!rc) {
            rc = tqs_sampler_run(&S, amp, 256, 2, 50, cf, lp) || tqs_symmetry_characters_sampled(G, amp, cf, lp, 4096, NULL, NULL);
            tqs_sampler_free(&S);
        }
        free(cf); free(lp);
    }
    tqs_hamiltonian_free(&H);
    return rc;
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
               "       model eval MODEL [CONFIGS | --random K [--seed S (1)]] [--symmetrize [--J2 x (0.5)]]\n"
               "       model observables MODEL [--samples K (4096)] [--seed S (1)] [--symmetrize [--J2 x (0.5)]] [--json] [--svg PREFIX]\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "init")) return cmd_init(argc, argv);
    if (strcmp(argv[1], "info") && strcmp(argv[1], "eval") && strcmp(argv[1], "observables"))
        flags_die("unknown command '%s' (init, info, eval or observables)", argv[1]);
    if (argc < 3) flags_die("%s: MODEL is required", argv[1]);
    if (!strcmp(argv[1], "info") && argc > 3) flags_die("info: unexpected argument '%s'", argv[3]);
    if (tqs_vit_load(&m, argv[2])) { fprintf(stderr, "model: %s\n", tqs_last_error()); return 1; }
    rc = !strcmp(argv[1], "info") ? cmd_info(&m) : !strcmp(argv[1], "eval") ? cmd_eval(&m, argc, argv) : cmd_observables(&m, argc, argv);
    tqs_vit_free(&m);
    return rc;
}
