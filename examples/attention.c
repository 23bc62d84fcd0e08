/* attention.c - how much do the attention weights of a trained ViT depend on
 * the input configuration?
 *   ./examples/attention MODEL [--samples K] [--seed S] [--svg PREFIX] [--json]
 * Draws K configurations from |psi|^2, reads the attention weights A(s) of
 * every layer and head, and reports the input dependence
 *   D = mean_s ||A(s) - mean A||_F / ||mean A||_F
 * (0 for factored attention, by construction). --svg writes PREFIX-mean.svg
 * and PREFIX-std.svg: the mean and the standard deviation over samples as
 * functions of the displacement between query and key patch.
 *   ./examples/attention --plot OUT.svg LOG.csv...
 * plots the input dependence that ground_state --attention-log logged during
 * training, one curve per log (make reproduce PROFILE=sizes: four lattices). */
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "flags.h"
#include "plot.h"

/* The displacement-averaged map of each layer and head, rolled so that the
 * zero displacement sits in the middle: out (n_layers * h, gx, gy). */
static void displacement_maps(const tqs_vit *m, double *out, const double *maps) {
    int gx = m->gx, gy = m->gy, lh, i, j;
    double *tmp = (double *)malloc(sizeof(double) * m->n);
    for (lh = 0; lh < m->cfg.n_layers * m->cfg.h; lh++) {
        tqs_vit_displacement_map(m, tmp, maps + (size_t)lh * m->n * m->n);
        for (i = 0; i < gx; i++) for (j = 0; j < gy; j++)
            out[(size_t)lh * m->n + ((i + gx / 2) % gx) * gy + (j + gy / 2) % gy] = tmp[i * gy + j];
    }
    free(tmp);
}

/* --plot OUT.svg LOG.csv...: the input dependence that ground_state
 * --attention-log wrote in each log (its input_dependence column, filled on
 * the logged steps) against the step, one curve per log, labelled by its
 * file name: the paper's third claim is a trend with the lattice size, so
 * the logs of several lattices go on one figure. */
static int read_dependence(const char *path, plot_series *s) {
    FILE *f = fopen(path, "r");
    char line[1024], *tok;
    int col = -1, k, cap = 0, lineno = 1;
    double *x = NULL, *y = NULL;
    s->label = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    s->x = s->y = s->err = NULL; s->n = 0;
    if (!f) { fprintf(stderr, "attention: --plot: cannot open '%s'\n", path); return 1; }
    if (fgets(line, sizeof line, f))
        for (k = 0, tok = strtok(line, ",\r\n"); tok; k++, tok = strtok(NULL, ",\r\n")) if (!strcmp(tok, "input_dependence")) col = k;
    if (col < 0) {
        fprintf(stderr, "attention: --plot: '%s' has no input_dependence column (a ground_state --log of a run with --attention-log)\n", path);
        fclose(f); return 1;
    }
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        double step = strtod(line, &end), d;
        lineno++;
        for (k = 0; k < col && p; k++) if ((p = strchr(p, ',')) != NULL) p++;
        if (end == line || !p) { fprintf(stderr, "attention: --plot: %s:%d: not a log line\n", path, lineno); fclose(f); free(x); free(y); return 1; }
        d = strtod(p, &end);
        if (end == p) continue;   /* a step whose attention was not logged: the field is empty */
        if (s->n == cap) {
            double *nx, *ny;
            cap = cap ? 2 * cap : 256;
            nx = (double *)realloc(x, sizeof(double) * cap); if (nx) x = nx;
            ny = (double *)realloc(y, sizeof(double) * cap); if (ny) y = ny;
            if (!nx || !ny) { fprintf(stderr, "attention: --plot: out of memory\n"); fclose(f); free(x); free(y); return 1; }
        }
        x[s->n] = step; y[s->n] = d; s->n++;
    }
    fclose(f);
    s->x = x; s->y = y;
    if (!s->n) { fprintf(stderr, "attention: --plot: '%s' has no logged input dependence (a run with --attention-log)\n", path); free(x); free(y); return 1; }
    return 0;
}

static int plot_dependence(const char *svg, char **logs, int n_logs) {
    plot_series *s = (plot_series *)calloc((size_t)n_logs, sizeof *s);
    plot_options o;
    int k, rc = 0;
    if (!s) { fprintf(stderr, "attention: --plot: out of memory\n"); return 1; }
    for (k = 0; k < n_logs && !rc; k++) rc = read_dependence(logs[k], &s[k]);
    memset(&o, 0, sizeof o);
    o.title = "standard attention: input dependence during training";
    o.xlabel = "optimisation step"; o.ylabel = "D = mean ||A(s) - mean A|| / ||mean A||";
    if (!rc && plot_line_svg(svg, s, n_logs, &o)) { fprintf(stderr, "attention: --plot: %s\n", plot_last_error()); rc = 1; }
    for (k = 0; k < n_logs; k++) { free((void *)s[k].x); free((void *)s[k].y); }
    free(s);
    return rc;
}

int main(int argc, char **argv) {
    const char *path = NULL, *svg = NULL;
    int i, K = 1024, seed = 1, json = 0, chains = 16, nlh, l, mu;
    tqs_vit m;
    tqs_vit_ws ws;
    tqs_vit_amplitude holder;
    tqs_amplitude amp;
    tqs_lattice lat;
    tqs_sampler S;
    int8_t *cf;
    tqs_complex *lp;
    double *dep, *mean, *sd, avg = 0;

    flags_prog = "attention";
    if (argc >= 2 && !strcmp(argv[1], "--plot")) {
        if (argc < 4) flags_die("--plot: needs OUT.svg and at least one LOG.csv (try --help)");
        flags_check_output("--plot", argv[2]);
        return plot_dependence(argv[2], argv + 3, argc - 3);
    }
    for (i = 1; i < argc; i++) {
        if (flags_int(argc, argv, &i, "--samples", &K, 16, 1 << 20) || flags_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            flags_str(argc, argv, &i, "--svg", &svg) || flags_bool(argv, i, "--json", &json)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: attention MODEL [--samples K (1024)] [--seed S (1)] [--svg PREFIX] [--json]\n"
                   "       attention --plot OUT.svg LOG.csv... (the input dependence logged by ground_state --attention-log,\n"
                   "                 against the step, one curve per log)\n");
            return 0;
        }
        if (argv[i][0] == '-') flags_die("unknown flag '%s' (try --help)", argv[i]);
        if (path) flags_die("more than one MODEL given ('%s' and '%s')", path, argv[i]);
        path = argv[i];
    }
    if (!path) flags_die("MODEL is required (try --help)");
    if (svg) {   /* both SVG files checked before any work */
        char name[4096];
        snprintf(name, sizeof name, "%s-mean.svg", svg); flags_check_output("--svg", name);
        snprintf(name, sizeof name, "%s-std.svg", svg); flags_check_output("--svg", name);
    }
    if (tqs_vit_load(&m, path)) { fprintf(stderr, "attention: %s\n", tqs_last_error()); return 1; }
    nlh = m.cfg.n_layers * m.cfg.h;
    K = (K + chains - 1) / chains * chains;
    cf = (int8_t *)malloc((size_t)K * m.N); lp = (tqs_complex *)malloc(sizeof(tqs_complex) * K);
    dep = (double *)malloc(sizeof(double) * nlh);
    mean = (double *)malloc(sizeof(double) * nlh * m.n * m.n); sd = (double *)malloc(sizeof(double) * nlh * m.n * m.n);
    if (!cf || !lp || !dep || !mean || !sd) { fprintf(stderr, "attention: out of memory for %d samples\n", K); return 1; }
    if (tqs_vit_ws_init(&ws, &m, 256, 0) || tqs_lattice_init(&lat, m.cfg.Lx, m.cfg.Ly) || tqs_sampler_init(&S, &lat, chains, (uint64_t)seed)) {
        fprintf(stderr, "attention: %s\n", tqs_last_error());
        return 1;
    }
    amp = tqs_vit_amplitude_make(&holder, &m, &ws);
    /* samples two sweeps apart after 50 sweeps of thermalisation from ordered starts */
    if (tqs_sampler_start_ordered(&S, &lat, &amp) || tqs_sampler_run(&S, &amp, K / chains, 2, 50, cf, lp) || tqs_vit_attention_stats(&m, &ws, dep, mean, sd, cf, K)) {
        fprintf(stderr, "attention: %s\n", tqs_last_error());
        return 1;
    }
    for (i = 0; i < nlh; i++) avg += dep[i] / nlh;
    if (json) {
        printf("{\"model\":\"%s\",\"attention\":\"%s\",\"samples\":%d,\"input_dependence\":%.6g,\"per_head\":[", path,
               m.cfg.attention ? "standard" : "factored", K, avg);
        for (i = 0; i < nlh; i++) printf("%s%.6g", i ? "," : "", dep[i]);
        printf("]}\n");
    } else {
        printf("%s: %dx%d, %s attention, %d layers x %d heads, %d samples of |psi|^2 (acceptance %.2f)\n", path, m.cfg.Lx, m.cfg.Ly,
               m.cfg.attention ? "standard" : "factored", m.cfg.n_layers, m.cfg.h, K, tqs_sampler_acceptance(&S, -1));
        if (!m.cfg.attention) printf("factored attention depends on positions only: the same weights for every input\n");
        printf("input dependence  mean_s ||A(s) - mean A||_F / ||mean A||_F\n");
        for (l = 0; l < m.cfg.n_layers; l++) {
            printf("  layer %d:", l + 1);
            for (mu = 0; mu < m.cfg.h; mu++) printf("  head %d %.4f", mu + 1, dep[l * m.cfg.h + mu]);
            printf("\n");
        }
        printf("  average %.4f\n", avg);
    }
    if (svg) {
        size_t len = strlen(svg) + 16;
        char *name = (char *)malloc(len), **labels = (char **)malloc(sizeof(char *) * nlh), title[160];
        double *maps = (double *)malloc(sizeof(double) * nlh * m.n);
        plot_heat_options axes;   /* row r is the displacement r - gx/2 in patches, zero outlined */
        memset(&axes, 0, sizeof axes);
        axes.xlabel = "displacement y (patches)"; axes.ylabel = "displacement x (patches)";
        axes.row0 = m.gx / 2; axes.col0 = m.gy / 2;
        axes.mark = 1; axes.mark_row = m.gx / 2; axes.mark_col = m.gy / 2;
        axes.mark_label = "zero displacement (a patch attending to itself)";
        for (l = 0; l < m.cfg.n_layers; l++) for (mu = 0; mu < m.cfg.h; mu++) {
            labels[l * m.cfg.h + mu] = (char *)malloc(48);
            snprintf(labels[l * m.cfg.h + mu], 48, "layer %d head %d", l + 1, mu + 1);
        }
        displacement_maps(&m, maps, mean);
        snprintf(name, len, "%s-mean.svg", svg);
        snprintf(title, sizeof title, "%dx%d %s attention: mean weight vs displacement", m.cfg.Lx, m.cfg.Ly,
                 m.cfg.attention ? "standard" : "factored");
        if (plot_heat_maps(name, title, maps, nlh, m.gx, m.gy, (const char *const *)labels, "weight", &axes)) {
            fprintf(stderr, "attention: %s\n", plot_last_error()); return 1;
        }
        displacement_maps(&m, maps, sd);
        snprintf(name, len, "%s-std.svg", svg);
        snprintf(title, sizeof title, "%dx%d %s attention: std over %d samples vs displacement", m.cfg.Lx, m.cfg.Ly,
                 m.cfg.attention ? "standard" : "factored", K);
        if (plot_heat_maps(name, title, maps, nlh, m.gx, m.gy, (const char *const *)labels, "std", &axes)) {
            fprintf(stderr, "attention: %s\n", plot_last_error()); return 1;
        }
        for (i = 0; i < nlh; i++) free(labels[i]);
        free(labels); free(maps); free(name);
    }
    tqs_sampler_free(&S); tqs_lattice_free(&lat); tqs_vit_ws_free(&ws); tqs_vit_free(&m);
    free(cf); free(lp); free(dep); free(mean); free(sd);
    return 0;
}
