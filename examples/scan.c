/* scan.c - the J1-J2 phase diagram in one command: train at J2 = from, from
 * + step, ... to, each point by the recipe (tqs_recipe: a plain phase started
 * from the previous point's model, then psi_sym over the point group in the
 * point's sector), and measure E/N, the Neel and stripe structure factors and
 * the columnar dimer structure factor on fresh samples; beside them the exact
 * values (Lanczos ground state, N <= 24). Writes PREFIX.csv, PREFIX-energy.svg, PREFIX-order.svg.
 *   ./examples/scan --L 4 --from 0 --to 1 --step 0.1 --prefix build/scan
 *   ./examples/scan --help */
#define _POSIX_C_SOURCE 200809L
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "flags.h"
#include "observables.h"

static const char *usage =
    "usage: scan [flags]\n"
    "  --L n | --Lx n --Ly n (4)   --from x (0)  --to x (1)  --step x (0.1)   J2 values (J1 = 1)\n"
    "  --d n (16) --heads n (2) --layers n (2) --ff n (2) --patch b (2)       the factored ViT\n"
    "  --samples n (1024; psi_sym: at most 512)  --steps n (300: the first point)  --steps-next n (100: each later one, warm-started)\n"
    "  --sym-steps n (a sixth of the point's plain steps: psi_sym over the point group after each plain phase)\n"
    "  --plain (no psi_sym phase: the plain model at each point)\n"
    "  --eval-samples n (8192; the observables too)  --seed n (1)  --threads n\n"
    "  --prefix P (scan): P.csv, P-energy.svg, P-order.svg\n";

/* Exact E/N and observables of the ground state. */
static int exact_point(const tqs_hamiltonian *H, double *e, tqs_observables *o) {
    tqs_lanczos_options lo;
    tqs_ed_result ed;
    int rc;
    memset(&lo, 0, sizeof lo);
    lo.want_vector = 1;
    if ((rc = tqs_exact_ground_state(&ed, H, &lo)) != 0) return rc;
    *e = ed.energy / H->lat.N;
    rc = obs_ground_state(o, H, &ed);
    tqs_ed_result_free(&ed);
    return rc;
}

int main(int argc, char **argv) {
    tqs_vit_config cfg;
    tqs_vit model;
    tqs_vmc_options opt;
    double from = 0, to = 1, step = 0.1, *x, *y[8], *ey[8];
    int i, n_pts, p, steps = 300, steps_next = 100, sym_steps = 0, plain_only = 0, samples = 1024, eval_samples = 8192, seed = 1, threads = 0;
    const char *prefix = "scan";
    char path[1024];
    FILE *csv;
    flags_prog = "scan";
    memset(&cfg, 0, sizeof cfg);
    cfg.Lx = cfg.Ly = 4; cfg.b = 2; cfg.d = 16; cfg.h = 2; cfg.n_layers = 2; cfg.ff = 2; cfg.attention = TQS_ATTN_FACTORED;
    for (i = 1; i < argc; i++) {
        if (flags_lattice(argc, argv, &i, &cfg.Lx, &cfg.Ly) || flags_real(argc, argv, &i, "--from", &from, -10, 10) ||
            flags_real(argc, argv, &i, "--to", &to, -10, 10) || flags_real(argc, argv, &i, "--step", &step, 1e-3, 10) ||
            flags_int(argc, argv, &i, "--d", &cfg.d, 1, 4096) || flags_int(argc, argv, &i, "--heads", &cfg.h, 1, 4096) ||
            flags_int(argc, argv, &i, "--layers", &cfg.n_layers, 1, 64) || flags_int(argc, argv, &i, "--ff", &cfg.ff, 1, 64) ||
            flags_int(argc, argv, &i, "--patch", &cfg.b, 1, 16) || flags_int(argc, argv, &i, "--samples", &samples, 16, 1 << 24) ||
            flags_int(argc, argv, &i, "--steps", &steps, 1, 1000000) || flags_int(argc, argv, &i, "--steps-next", &steps_next, 1, 1000000) ||
            flags_int(argc, argv, &i, "--eval-samples", &eval_samples, 16, 1 << 24) ||
            flags_int(argc, argv, &i, "--sym-steps", &sym_steps, 1, 1000000) || flags_bool(argv, i, "--plain", &plain_only) ||
            flags_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            flags_int(argc, argv, &i, "--threads", &threads, 1, 1024) || flags_str(argc, argv, &i, "--prefix", &prefix)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage, stdout); return 0; }
        flags_die("unknown flag '%s' (try --help)", argv[i]);
    }
    flags_check_lattice(cfg.Lx, cfg.Ly);
    if (cfg.Lx % cfg.b || cfg.Ly % cfg.b) flags_die("--patch: %d must divide Lx = %d and Ly = %d", cfg.b, cfg.Lx, cfg.Ly);
    if (cfg.d % cfg.h) flags_die("--heads: %d must divide --d %d", cfg.h, cfg.d);
    if (to < from) flags_die("--to: %g is below --from %g", to, from);
    n_pts = (int)floor((to - from) / step + 1e-9) + 1;
    if (n_pts > 1000) flags_die("--step: %d points; at most 1000", n_pts);
    snprintf(path, sizeof path, "%s.csv", prefix); flags_check_output("--prefix", path);
    if (threads) tqs_set_threads(threads);
    memset(&opt, 0, sizeof opt);   /* the plain phase: ground_state's defaults but the samples */
    opt.n_samples = samples; opt.n_chains = samples < 1024 ? samples : 1024;
    opt.memory_limit = 0.8 * flags_physical_memory();
    x = (double *)calloc((size_t)n_pts, sizeof(double));
    for (i = 0; i < 8; i++) { y[i] = (double *)calloc((size_t)n_pts, sizeof(double)); ey[i] = (double *)calloc((size_t)n_pts, sizeof(double)); }
    if (tqs_vit_init(&model, &cfg, (uint64_t)seed)) flags_die("%s", tqs_last_error());
    if (!(csv = fopen(path, "w"))) flags_die("--prefix: cannot write '%s'", path);
    fprintf(csv, "J2,energy_per_site,error,exact_energy_per_site,S_pipi,S_pipi_err,exact_S_pipi,S_stripe,S_stripe_err,exact_S_stripe,"
                 "dimer_S,dimer_S_err,exact_dimer_S\n");
    for (p = 0; p < n_pts; p++) {
        tqs_hamiltonian H;
        tqs_recipe r;
        tqs_recipe_options ro;
        tqs_step_info info;
        tqs_observables o, ex;
        double J2 = from + p * step, e_exact = NAN;
        int N = cfg.Lx * cfg.Ly, qn, qx, qy, have_ex = 0;
        x[p] = J2;
        if (tqs_hamiltonian_init(&H, cfg.Lx, cfg.Ly, 1.0, J2)) flags_die("%s", tqs_last_error());
        /* the recipe at each point (tqs_recipe): the plain phase warm-started
         * from the previous point's model, then psi_sym in this point's
         * sector; the point group is summed, so S(pi,0) = S(0,pi) */
        memset(&ro, 0, sizeof ro);
        ro.plain = opt;
        ro.plain_steps = p ? steps_next : steps;
        ro.plain.lr = p ? 0.02 : 0.05; ro.plain.lr_final = 0.005;
        ro.plain.seed = (uint64_t)seed + 17 * (uint64_t)p;
        ro.sym_steps = sym_steps;   /* 0: the recipe's, a sixth of the plain steps */
        ro.sym.n_samples = samples < 512 ? samples : 512;   /* the recipe's 512, or fewer with --samples */
        ro.group = plain_only ? TQS_RECIPE_PLAIN : TQS_RECIPE_POINT;
        if (tqs_recipe_init(&r, &H, &model, &ro)) { fprintf(stderr, "scan: %s\n", tqs_last_error()); return 2; }
        while (r.phase < 2)
            if (tqs_recipe_step(&r, &info)) { fprintf(stderr, "scan: J2 = %g: %s\n", J2, tqs_last_error()); return 1; }
        /* the observables of the evaluation's samples, its energy from the same amplitudes */
        if (obs_init(&o, &H.lat, cfg.b, (long)((eval_samples + r.vmc.opt.n_chains - 1) / r.vmc.opt.n_chains) * r.vmc.opt.n_chains) ||
            tqs_vmc_evaluate_observables(&r.vmc, eval_samples, &info, &o)) {
            fprintf(stderr, "scan: J2 = %g: %s\n", J2, tqs_last_error()); return 1;
        }
        if (N <= TQS_ED_MAX_SITES) have_ex = exact_point(&H, &e_exact, &ex) == 0;
        qn = obs_index(&o, cfg.Lx / 2, cfg.Ly / 2); qx = obs_index(&o, cfg.Lx / 2, 0); qy = obs_index(&o, 0, cfg.Ly / 2);
        /* per site: E/N; the structure factors as m^2 = S/N; stripe and dimer averaged over x and y */
        y[0][p] = info.energy / N; ey[0][p] = info.error / N; y[1][p] = e_exact;
        y[2][p] = o.sq[qn] / N; ey[2][p] = o.sq_err[qn] / N;
        y[3][p] = 0.5 * (o.sq[qx] + o.sq[qy]) / N; ey[3][p] = 0.5 * (o.sq_err[qx] + o.sq_err[qy]) / N;
        y[4][p] = 0.5 * (o.dimer_sq[0] + o.dimer_sq[1]) / N; ey[4][p] = 0.5 * (o.dimer_sq_err[0] + o.dimer_sq_err[1]) / N;
        y[5][p] = have_ex ? ex.sq[qn] / N : NAN; y[6][p] = have_ex ? 0.5 * (ex.sq[qx] + ex.sq[qy]) / N : NAN;
        y[7][p] = have_ex ? 0.5 * (ex.dimer_sq[0] + ex.dimer_sq[1]) / N : NAN;
        fprintf(csv, "%.6g,%.10g,%.4g,%.10g,%.8g,%.4g,%.8g,%.8g,%.4g,%.8g,%.8g,%.4g,%.8g\n", J2, y[0][p], ey[0][p], y[1][p], y[2][p], ey[2][p],
                y[5][p], y[3][p], ey[3][p], y[6][p], y[4][p], ey[4][p], y[7][p]);
        fflush(csv);
        printf("J2 = %.3f  E/N %.6f +- %.6f (exact %.6f)  m2_Neel %.4f (exact %.4f)  m2_stripe %.4f (%.4f)  dimer %.4f (%.4f)\n", J2, y[0][p],
               ey[0][p], y[1][p], y[2][p], y[5][p], y[3][p], y[6][p], y[4][p], y[7][p]);
        fflush(stdout);
        tqs_observables_free(&o);
        if (have_ex) tqs_observables_free(&ex);
        tqs_recipe_free(&r); tqs_hamiltonian_free(&H);
    }
    fclose(csv);
    {
        plot_series s[6];
        plot_options po;
        char title[128];
        static const char *labels[6] = {"ViT: S(pi,pi)/N", "ViT: stripe S/N", "ViT: dimer S_D/N", "exact: S(pi,pi)/N", "exact: stripe S/N",
                                        "exact: dimer S_D/N"};
        int n_ex = cfg.Lx * cfg.Ly <= TQS_ED_MAX_SITES;
        memset(&po, 0, sizeof po);
        snprintf(title, sizeof title, "%dx%d J1-J2: energy per site", cfg.Lx, cfg.Ly);
        po.title = title; po.xlabel = "J2 / J1"; po.ylabel = "E/N";
        s[0].label = "ViT (fresh samples)"; s[0].x = x; s[0].y = y[0]; s[0].err = ey[0]; s[0].n = n_pts;
        s[1].label = "exact (Lanczos)"; s[1].x = x; s[1].y = y[1]; s[1].err = NULL; s[1].n = n_pts;
        snprintf(path, sizeof path, "%s-energy.svg", prefix);
        if (plot_line_svg(path, s, n_ex ? 2 : 1, &po)) { fprintf(stderr, "scan: %s\n", plot_last_error()); return 1; }
        for (i = 0; i < 6; i++) {
            s[i].label = labels[i]; s[i].x = x; s[i].n = n_pts;
            s[i].y = i < 3 ? y[2 + i] : y[5 + i - 3]; s[i].err = i < 3 ? ey[2 + i] : NULL;
        }
        snprintf(title, sizeof title, "%dx%d J1-J2: order parameters (structure factor / N)", cfg.Lx, cfg.Ly);
        po.ylabel = "S / N";
        snprintf(path, sizeof path, "%s-order.svg", prefix);
        if (plot_line_svg(path, s, n_ex ? 6 : 3, &po)) { fprintf(stderr, "scan: %s\n", plot_last_error()); return 1; }
    }
    printf("wrote %s.csv, %s-energy.svg, %s-order.svg\n", prefix, prefix, prefix);
    tqs_vit_free(&model);
    free(x);
    for (i = 0; i < 8; i++) { free(y[i]); free(ey[i]); }
    return 0;
}
