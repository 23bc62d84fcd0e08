/* ground_state.c - train the ViT on the J1-J2 model by VMC + SR and report
 * an energy with its error bar, variance, V-score and relative error.
 *   ./examples/ground_state                 (4x4, J2 = 0.5, small factored ViT)
 *   ./examples/ground_state --help          (every flag)
 *   mpirun -np R ./examples/ground_state_mpi --threads T ...   (make mpi: the same run shared by R
 *                                           processes; process 0 prints and writes every file) */
#define _POSIX_C_SOURCE 200809L
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "flags.h"
#include "observables.h"
#include <signal.h>
#include <time.h>
#ifdef TQS_MPI
#include "mpi.h"
#endif

static int is_root = 1;   /* the process that prints and writes (process 0 of several) */
static volatile sig_atomic_t interrupted = 0;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Published exact energies per site of the 6x6 periodic lattice (J1 = 1). */
static double table_6x6(double J2) {
    static const double j2[4] = {0.0, 0.4, 0.5, 0.6}, e[4] = {-0.678872, -0.529745, -0.503810, -0.493239};
    int k;
    for (k = 0; k < 4; k++) if (fabs(J2 - j2[k]) < 1e-12) return e[k];
    return NAN;
}

/* Exact E/N for the reference line: Lanczos (N <= 24) or the published 6x6 table. */
static double exact_per_site(const tqs_hamiltonian *H, double J1, double J2) {
    tqs_ed_result ed;
    double e = NAN;
    if (H->lat.N <= TQS_ED_MAX_SITES) {
        if (tqs_exact_ground_state(&ed, H, NULL) == 0) { e = ed.energy / H->lat.N; tqs_ed_result_free(&ed); }
    } else if (H->lat.Lx == 6 && H->lat.Ly == 6 && J1 == 1.0) e = table_6x6(J2);
    return e;
}

/* The best published variational energies per site where no exact one
 * exists: the two benchmark lattices at J2 = 0.5 (J1 = 1, periodic). An
 * upper bound, not the exact energy, so the report gives the signed
 * relative difference (negative: below it). NAN elsewhere. */
static double reference_per_site(const tqs_hamiltonian *H, double J1, double J2, const char **source) {
    if (J1 != 1.0 || fabs(J2 - 0.5) > 1e-12) return NAN;
    if (H->lat.Lx == 8 && H->lat.Ly == 8) { *source = "RBM + pairing, Nomura & Imada 2021"; return -0.498886; }
    if (H->lat.Lx == 10 && H->lat.Ly == 10) { *source = "ResNet + MinSR, Chen & Heyl 2024"; return -0.4976921; }
    return NAN;
}

/* A resumed run continues its log, but a run that was stopped after its last
 * checkpoint logged steps that the resumed run repeats: keep the header and
 * the rows before `step` (PATH.tmp, then rename, so the log is never half
 * written). A missing log is not an error: the resumed run starts one. */
static int trim_log(const char *path, long step) {
    char tmp[4096], line[1024];
    FILE *in = fopen(path, "r"), *out;
    int ok = 1;
    if (!in) return 0;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(out = fopen(tmp, "w"))) { fclose(in); return 1; }
    if (fgets(line, sizeof line, in)) fputs(line, out);   /* the header */
    while (fgets(line, sizeof line, in)) {
        char *end;
        long k = strtol(line, &end, 10);
        if (end == line || k >= step) break;
        if (fputs(line, out) == EOF) ok = 0;
    }
    fclose(in);
    if (fclose(out) != 0 || !ok || rename(tmp, path) != 0) { remove(tmp); return 1; }
    return 0;
}

/* Reads step, energy_per_site and error from a CSV log written by --log. */
static int read_log(const char *path, double **x, double **y, double **err, int *n) {
    FILE *f = fopen(path, "r");
    char line[1024];
    int cap = 0, lineno = 1;
    *x = *y = *err = NULL; *n = 0;
    if (!f) { fprintf(stderr, "ground_state: --plot: cannot open '%s'\n", path); return 1; }
    if (!fgets(line, sizeof line, f) || strncmp(line, "step,energy_per_site,error,", 27)) {
        fprintf(stderr, "ground_state: --plot: '%s' is not a ground_state log (no step,energy_per_site,error header)\n", path);
        fclose(f); return 1;
    }
    while (fgets(line, sizeof line, f)) {
        double a, b, c;
        lineno++;
        if (sscanf(line, "%lf,%lf,%lf", &a, &b, &c) != 3) {
            fprintf(stderr, "ground_state: --plot: %s:%d: not three numbers\n", path, lineno);
            fclose(f); return 1;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            *x = (double *)realloc(*x, sizeof(double) * cap); *y = (double *)realloc(*y, sizeof(double) * cap);
            *err = (double *)realloc(*err, sizeof(double) * cap);
            if (!*x || !*y || !*err) { fprintf(stderr, "ground_state: --plot: out of memory\n"); fclose(f); return 1; }
        }
        (*x)[*n] = a; (*y)[*n] = b; (*err)[*n] = c; (*n)++;
    }
    fclose(f);
    return 0;
}

/* The title, plus how many points lie above ymax (the plots start their y
 * range a tenth of the way into the run, so that the converged part shows). */
static const char *clip_title(char *buf, size_t size, const char *title, const plot_series *s, int n, double ymax) {
    long above = 0;
    int k, i;
    for (k = 0; k < n; k++) for (i = 0; i < s[k].n; i++) above += s[k].y[i] > ymax;
    if (!above) return title;
    snprintf(buf, size, "%s (%ld early point%s above the range)", title, above, above == 1 ? "" : "s");
    return buf;
}

/* Plots the logs (labels: their file names) with the exact value as a dashed line. */
static int plot_logs(const char *svg, const char *const *logs, int n_logs, double exact, const char *title) {
    plot_series *s = (plot_series *)calloc((size_t)n_logs, sizeof *s);
    plot_options o;
    char full_title[256];
    int k, rc = 0;
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    for (k = 0; k < n_logs && !rc; k++) {
        double *x, *y, *e;
        int i;
        rc = read_log(logs[k], &x, &y, &e, &s[k].n);
        s[k].x = x; s[k].y = y; s[k].err = e; s[k].label = strrchr(logs[k], '/') ? strrchr(logs[k], '/') + 1 : logs[k];
        for (i = 0; !rc && i < s[k].n; i++) if (y[i] < lo) lo = y[i];
        if (!rc && s[k].n > 0 && y[s[k].n / 10] > hi) hi = y[s[k].n / 10];
    }
    memset(&o, 0, sizeof o);
    o.title = title; o.xlabel = "optimisation step"; o.ylabel = "energy per site E/N";
    if (isfinite(exact)) { o.ref = exact; o.ref_label = "exact"; }
    /* the interesting range: from just below the lowest point (or the exact value)
     * to where the curves are a tenth of the way into the run; the title says
     * how many early points that leaves out */
    if (isfinite(lo) && hi > lo) {
        double bottom = isfinite(exact) && exact < lo ? exact : lo;
        o.ymin = bottom - 0.03 * (hi - bottom); o.ymax = hi;
        o.title = clip_title(full_title, sizeof full_title, title, s, n_logs, hi);
    }
    if (!rc && plot_line_svg(svg, s, n_logs, &o)) { fprintf(stderr, "ground_state: --plot: %s\n", plot_last_error()); rc = 1; }
    for (k = 0; k < n_logs; k++) { free((void *)s[k].x); free((void *)s[k].y); free((void *)s[k].err); }
    free(s);
    return rc;
}

/* Input dependence of the attention (average over layers and heads) on up to
 * 256 configurations of the current step: the samples, or, for exact
 * enumeration, configurations drawn from the weights by systematic resampling. */
static double attention_dependence(tqs_vmc *v, tqs_vit_ws *ws, int8_t *buf, double *dep) {
    const tqs_vit *m = v->model;
    int K = v->M < 256 ? v->M : 256, k, nlh = m->cfg.n_layers * m->cfg.h;
    double avg = 0;
    if (v->opt.exact) {
        double c = 0;
        long r = 0;
        for (k = 0; k < K; k++) {
            double u = (k + 0.5) / K;
            while (r < v->en.n - 1 && c + v->en.weights[r] < u) c += v->en.weights[r++];
            memcpy(buf + (size_t)k * m->N, v->en.configs + (size_t)r * m->N, (size_t)m->N);
        }
    } else memcpy(buf, v->samples, (size_t)K * m->N);
    if (tqs_vit_attention_stats(m, ws, dep, NULL, NULL, buf, K)) return NAN;
    for (k = 0; k < nlh; k++) avg += dep[k] / nlh;
    return avg;
}

/* The sector psi_sym is projected on (tqs_symmetry_sector: the exact ground
 * state's for N <= 24, its E/N into *exact if given; else the one samples of
 * the plain model show). */
static int find_sector(tqs_symmetry *G, const tqs_hamiltonian *H, const tqs_amplitude *plain, int chains, uint64_t seed,
                       double *exact) {
    double e0;
    int rc = tqs_symmetry_sector(G, H, plain, chains, seed, &e0);
    if (exact && !isnan(e0)) *exact = e0 / H->lat.N;
    return rc;
}

static void print_sector(const tqs_symmetry *G, const char *what) {
    int p;
    fprintf(stderr, "%s over %d of %d group elements (%s): chi_x %+g chi_y %+g flip %+g point", what, G->n, G->n_full,
            G->N <= TQS_ED_MAX_SITES ? "sector of the exact ground state" : "sector estimated from samples", G->chi_x, G->chi_y, G->chi_flip);
    for (p = 0; p < G->n_point && !G->translations_only; p++) fprintf(stderr, " %+g", G->chi_point[p]);
    fprintf(stderr, "%s\n", G->translations_only ? " (translations only: the point group and flip are not summed)"
                            : G->no_flip ? " (the flip is not summed)" : "");
}

/* The name of symmetry generator k of tqs_symmetry_characters_sampled. */
static const char *generator_name(const tqs_symmetry *G, int k) {
    static const char *c4v[8] = {"identity", "quarter turn", "half turn", "three-quarter turn", "mirror x",
                                 "anti-diagonal mirror", "mirror y", "diagonal mirror"};
    static const char *c2v[4] = {"identity", "mirror x", "mirror y", "half turn"};
    if (k == 0) return "unit translation along x";
    if (k == 1) return "unit translation along y";
    if (k == 2) return "spin flip";
    return G->n_point == 8 ? c4v[k - 2] : c2v[k - 2];
}

/* Does the trained state keep the Hamiltonian's symmetries? From 2048
 * samples of |psi|^2 (two sweeps apart), <g> = <psi|g|psi>/<psi|psi> of
 * each generator g (unit translations, spin flip, the point group): a state
 * of one symmetry sector has |<g>| = 1 for every g, and a mixture with
 * weight w in sectors of the other character of g has |<g>| = 1 - 2w. The
 * worst generator is reported; broken when 1 - |<g>| > 0.05 (more than
 * 2.5% of the state outside one sector) and 4 standard errors. On N <= 16
 * the characters are also compared with the exact ground state's: a state
 * wholly in another sector is broken too. */
typedef struct symmetry_check { int done, broken, wrong_sector, k; double g, err; char name[48]; } symmetry_check;
static void check_symmetry(symmetry_check *out, const tqs_hamiltonian *H, const tqs_amplitude *amp, int b, int chains, uint64_t seed) {
    tqs_symmetry G, Gx;
    tqs_sampler S;
    int per, M, k, ng;
    int8_t *cf = NULL;
    tqs_complex *lp = NULL;
    double ex[10], er[10], worst = -1;
    memset(out, 0, sizeof *out);
    if (chains > 64) chains = 64;
    per = (2048 + chains - 1) / chains; M = per * chains;
    if (tqs_symmetry_init(&G, H->lat.Lx, H->lat.Ly, b)) return;
    cf = (int8_t *)malloc((size_t)M * H->lat.N); lp = (tqs_complex *)malloc(sizeof(tqs_complex) * M);
    if (cf && lp && tqs_sampler_init(&S, &H->lat, chains, seed + 3000) == 0) {
        int rc = tqs_sampler_start_ordered(&S, &H->lat, amp);
        if (!rc) rc = tqs_sampler_run(&S, amp, per, 2, 50, cf, lp);
        if (!rc) rc = tqs_symmetry_characters_sampled(&G, amp, cf, lp, M, ex, er);
        out->done = rc == 0 || rc == TQS_ENUMERIC;   /* (an undetermined sign still fills the expectations) */
        tqs_sampler_free(&S);
    }
    free(cf); free(lp);
    ng = 2 + G.n_point;
    if (out->done) {
        for (k = 0; k < ng; k++) {
            double defect = 1 - fabs(ex[k]);
            if (defect > worst) { worst = defect; out->k = k; out->g = ex[k]; out->err = er[k]; }
        }
        snprintf(out->name, sizeof out->name, "%s", generator_name(&G, out->k));
        out->broken = worst > 0.05 && worst > 4 * out->err;
        if (H->lat.N <= 16 && tqs_symmetry_init(&Gx, H->lat.Lx, H->lat.Ly, b) == 0) {
            if (tqs_symmetry_characters_ground_state(&Gx, H) == 0) {
                for (k = 0; k < ng; k++) {
                    double chi = k == 0 ? Gx.chi_x : k == 1 ? Gx.chi_y : k == 2 ? Gx.chi_flip : Gx.chi_point[k - 2];
                    if (ex[k] * chi < 0 && fabs(ex[k]) > 4 * er[k] && !out->wrong_sector) {
                        out->wrong_sector = out->broken = 1; out->k = k; out->g = ex[k]; out->err = er[k];
                        snprintf(out->name, sizeof out->name, "%s", generator_name(&G, k));
                    }
                }
            }
            tqs_symmetry_free(&Gx);
        }
    }
    tqs_symmetry_free(&G);
}

/* Energy of psi_sym: exact enumeration over the whole basis, or sampling. */
static int evaluate_symmetrized(tqs_vmc *v, tqs_hamiltonian *H, int n_samples, uint64_t seed, tqs_step_info *out, int quiet,
                                tqs_observables *obs) {
    tqs_symmetry G;
    tqs_symmetric_amplitude sa;
    tqs_amplitude amp;
    tqs_sampler S;
    /* at most 32 chains: each proposal costs the group's 64 forward passes,
     * so 50 sweeps of thermalisation on a thousand chains would cost more
     * than the samples themselves */
    int rc, chains = v->opt.n_chains < 32 ? v->opt.n_chains : 32, per, i, N = H->lat.N, M;
    int8_t *cf = NULL;
    tqs_complex *lp = NULL, *el = NULL;
    double *e = NULL;
    tqs_stats st;
    if ((rc = tqs_symmetry_init(&G, H->lat.Lx, H->lat.Ly, v->model->cfg.b)) != 0) return rc;
    per = (n_samples + chains - 1) / chains; M = per * chains;
    cf = (int8_t *)malloc((size_t)M * N); lp = (tqs_complex *)malloc(sizeof(tqs_complex) * M);
    el = (tqs_complex *)malloc(sizeof(tqs_complex) * M); e = (double *)malloc(sizeof(double) * M);
    if (!cf || !lp || !el || !e) { fprintf(stderr, "ground_state: --symmetrize: out of memory for %d samples\n", M); rc = TQS_ENOMEM; goto done; }
    memset(&S, 0, sizeof S);
    if ((rc = tqs_sampler_init(&S, &H->lat, chains, seed + 1000)) != 0) goto done;
    if ((rc = find_sector(&G, H, &v->amp, chains, seed, NULL)) != 0) goto done_sampler;
    if (!quiet) print_sector(&G, "symmetrising");
    if ((rc = tqs_symmetric_amplitude_init(&sa, &amp, &G, &v->amp)) != 0) goto done_sampler;
    memset(out, 0, sizeof *out);
    if (v->opt.exact) {
        tqs_enumeration E;
        if ((rc = tqs_enumeration_init(&E, &H->lat, 0)) == 0) {
            if ((rc = tqs_enumeration_evaluate(&E, H, &amp)) == 0) { out->energy = E.energy; out->variance = E.variance; }
            tqs_enumeration_free(&E);
        }
        /* the observables of psi_sym from as many fresh samples */
        if (!rc && obs) rc = obs_measure(obs, &H->lat, v->model->cfg.b, &amp, n_samples, chains, seed + 2000);
    } else {
        rc = tqs_sampler_start_ordered(&S, &H->lat, &amp);   /* (random starts form domains on large lattices) */
        if (!rc) rc = tqs_sampler_run(&S, &amp, per, v->opt.sweeps, 50, cf, lp);
        if (!rc && obs) {   /* the observables of these samples, and the energy from their bonds: one pass of psi_sym for both */
            if ((rc = obs_init(obs, &H->lat, v->model->cfg.b, M)) == 0) {
                if ((rc = tqs_observables_sampled(obs, &amp, cf, lp, chains, per)) == 0) rc = tqs_observables_energy(obs, H->J1, H->J2, &st, NULL);
                if (rc) tqs_observables_free(obs);
            }
        } else if (!rc && (rc = tqs_local_energy(el, H, &amp, &v->eloc_ws, cf, lp, M)) == 0) {
            for (i = 0; i < M; i++) e[i] = el[i].re;
            tqs_statistics(&st, e, chains, per);
        }
        if (!rc) {
            out->energy = st.mean; out->error = st.error; out->variance = st.variance; out->rhat = st.rhat;
            out->acceptance = tqs_sampler_acceptance(&S, -1);
        }
    }
    tqs_symmetric_amplitude_free(&sa);
done_sampler:
    tqs_sampler_free(&S);
done:
    tqs_symmetry_free(&G);
    if (rc && cf && lp && el && e) fprintf(stderr, "ground_state: --symmetrize: %s\n", tqs_last_error());
    free(cf); free(lp); free(el); free(e);
    return rc;
}

/* A file that could not be written where asked (the disk filled up, the
 * directory went away during the run): written again under a name in the
 * current directory, then in the temporary directory, so that a long run's
 * result is not lost. Returns the name used, or NULL. */
static const char *write_fallback(int (*write)(const void *, const char *), const void *what, const char *ext) {
    static char name[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(name, sizeof name, "ground_state-rescued-%ld.%s", (long)time(NULL), ext);
    if (write(what, name) == 0) return name;
    snprintf(name, sizeof name, "%s/ground_state-rescued-%ld.%s", tmp && *tmp ? tmp : "/tmp", (long)time(NULL), ext);
    if (write(what, name) == 0) return name;
    return NULL;
}
static int write_model(const void *m, const char *path) { return tqs_vit_save((const tqs_vit *)m, path); }
static int write_checkpoint(const void *v, const char *path) { return tqs_vmc_save_checkpoint((const tqs_vmc *)v, path); }

/* Saves with write(); on failure says why and where the file went instead.
 * Returns 0 when saved where asked. */
static int save_or_rescue(int (*write)(const void *, const char *), const void *what, const char *path, const char *flag,
                          const char *ext, const char **rescued) {
    const char *alt;
    if (write(what, path) == 0) return 0;
    if (is_root) fprintf(stderr, "ground_state: %s: %s\n", flag, tqs_last_error());
    alt = write_fallback(write, what, ext);
    if (!is_root) {}
    else if (alt) fprintf(stderr, "ground_state: %s: written to '%s' instead\n", flag, alt);
    else fprintf(stderr, "ground_state: %s: no other place could be written either\n", flag);
    if (rescued) *rescued = alt;
    return 1;
}

/* --json-log: NetKet's JsonLog layout for an "Energy" observable (totals, not
 * per site, as NetKet's; TauCorr = tau - 1/2, NetKet's convention for the
 * same error; R_hat null when undefined), rewritten atomically. */
typedef struct json_log { long n, cap; double *it, *re, *im, *sigma, *var, *rhat, *tau; } json_log;
static int json_log_reserve(json_log *j, long cap) {
    double **f[7];
    int k;
    if (cap <= j->cap) return 0;
    f[0] = &j->it; f[1] = &j->re; f[2] = &j->im; f[3] = &j->sigma; f[4] = &j->var; f[5] = &j->rhat; f[6] = &j->tau;
    for (k = 0; k < 7; k++) {
        double *p = (double *)realloc(*f[k], sizeof(double) * (size_t)cap);
        if (!p) return 1;
        *f[k] = p;
    }
    j->cap = cap;
    return 0;
}
static void json_log_free(json_log *j) {
    free(j->it); free(j->re); free(j->im); free(j->sigma); free(j->var); free(j->rhat); free(j->tau);
    memset(j, 0, sizeof *j);
}
static int json_log_add(json_log *j, const tqs_step_info *in, long step) {
    if (j->n >= j->cap && json_log_reserve(j, 2 * j->cap + 1024)) return 1;
    j->it[j->n] = (double)step; j->re[j->n] = in->energy; j->im[j->n] = in->energy_imag; j->sigma[j->n] = in->error;
    j->var[j->n] = in->variance; j->rhat[j->n] = in->rhat; j->tau[j->n] = in->tau - 0.5;
    j->n++;
    return 0;
}
static size_t json_log_array(char *out, size_t room, const char *key, const double *x, long n, int integer) {
    size_t k = (size_t)snprintf(out, room, "\"%s\":[", key);
    long i;
    for (i = 0; i < n && k < room; i++) {
        if (!isfinite(x[i])) k += (size_t)snprintf(out + k, room - k, "%snull", i ? "," : "");
        else if (integer) k += (size_t)snprintf(out + k, room - k, "%s%.0f", i ? "," : "", x[i]);
        else k += (size_t)snprintf(out + k, room - k, "%s%.12g", i ? "," : "", x[i]);
    }
    if (k < room) k += (size_t)snprintf(out + k, room - k, "]");
    return k;
}
static int json_log_write(const json_log *j, const char *path) {
    size_t room = (size_t)j->n * 7 * 24 + 256, k;
    char *buf = (char *)malloc(room);
    int rc;
    if (!buf) return 1;
    k = (size_t)snprintf(buf, room, "{\"Energy\":{");
    k += json_log_array(buf + k, room - k, "iters", j->it, j->n, 1);
    k += (size_t)snprintf(buf + k, room - k, ",\"Mean\":{");
    k += json_log_array(buf + k, room - k, "real", j->re, j->n, 0);
    k += (size_t)snprintf(buf + k, room - k, ",");
    k += json_log_array(buf + k, room - k, "imag", j->im, j->n, 0);
    k += (size_t)snprintf(buf + k, room - k, "},");
    k += json_log_array(buf + k, room - k, "Sigma", j->sigma, j->n, 0);
    k += (size_t)snprintf(buf + k, room - k, ",");
    k += json_log_array(buf + k, room - k, "Variance", j->var, j->n, 0);
    k += (size_t)snprintf(buf + k, room - k, ",");
    k += json_log_array(buf + k, room - k, "R_hat", j->rhat, j->n, 0);
    k += (size_t)snprintf(buf + k, room - k, ",");
    k += json_log_array(buf + k, room - k, "TauCorr", j->tau, j->n, 0);
    k += (size_t)snprintf(buf + k, room - k, "}}\n");
    rc = k >= room ? 1 : tqs_write_file_atomic(path, buf, k);
    free(buf);
    return rc;
}
/* A resumed run: the entries of an existing log before the checkpoint's step
 * (our own file, so a small reader: each array after its key). */
static int json_log_read_array(const char *text, const char *key, double *x, long cap, long *n) {
    char pat[64];
    const char *p;
    long k = 0;
    snprintf(pat, sizeof pat, "\"%s\":[", key);
    if (!(p = strstr(text, pat))) return 1;
    p += strlen(pat);
    while (*p && *p != ']' && k < cap) {
        char *end;
        if (!strncmp(p, "null", 4)) { x[k++] = NAN; p += 4; }
        else { x[k++] = strtod(p, &end); if (end == p) return 1; p = end; }
        if (*p == ',') p++;
    }
    *n = k;
    return 0;
}
static int json_log_resume(json_log *j, const char *path, long step) {
    unsigned char *buf = NULL;
    size_t len;
    long n[7], i, keep = 0;
    int bad;
    if (tqs_read_file(path, &buf, &len, (size_t)1 << 30)) return 0;   /* none yet: start one */
    buf = (unsigned char *)realloc(buf, len + 1); buf[len] = 0;
    if (json_log_reserve(j, step + 1024)) { free(buf); return 1; }   /* (at most one entry per step) */
    bad = json_log_read_array((char *)buf, "iters", j->it, j->cap, &n[0]) || json_log_read_array((char *)buf, "real", j->re, j->cap, &n[1]) ||
          json_log_read_array((char *)buf, "imag", j->im, j->cap, &n[2]) || json_log_read_array((char *)buf, "Sigma", j->sigma, j->cap, &n[3]) ||
          json_log_read_array((char *)buf, "Variance", j->var, j->cap, &n[4]) || json_log_read_array((char *)buf, "R_hat", j->rhat, j->cap, &n[5]) ||
          json_log_read_array((char *)buf, "TauCorr", j->tau, j->cap, &n[6]);
    free(buf);
    for (i = 1; i < 7 && !bad; i++) if (n[i] != n[0]) bad = 1;
    if (bad) return 1;
    while (keep < n[0] && j->it[keep] < (double)step) keep++;
    j->n = keep;
    return 0;
}

/* --help; the defaults printed are the library's (tqs_vit_config_defaults,
 * tqs_vmc_options_defaults, tqs_recipe_options_defaults, tqs_recipe_for_budget):
 * one definition for the programs and the API. */
static const char *sign_name(int rule) { return rule == TQS_SIGN_MARSHALL ? "marshall" : "none"; }

static void print_usage(void) {
    tqs_vit_config c;
    tqs_vmc_options o;
    tqs_recipe_options r, r10;   /* the recipe's defaults on 4x4 and on 10x10 */
    memset(&c, 0, sizeof c); memset(&o, 0, sizeof o); memset(&r, 0, sizeof r); memset(&r10, 0, sizeof r10);
    tqs_vit_config_defaults(&c); tqs_vmc_options_defaults(&o); tqs_recipe_options_defaults(&r, 16);
    tqs_recipe_options_defaults(&r10, 100);
    printf("usage: ground_state [flags]\n"
           "  By default the recipe: a plain phase, then psi_sym (the ViT summed over the translations inside a patch\n"
           "  and the point group) in the ground state's sector, trained on from it (examples/README.md, \"Time to accuracy\"):\n"
           "    ground_state --J2 0.6 --time-limit 3     (the budget split as measured: a third plain up to 30 min, a quarter\n"
           "                                              beyond; 6x6 from 90 min: d = 24 and a sixth; 4x6 up to 5 min: plain only)\n"
           "    ground_state --steps %d                 (%d plain steps, then psi_sym: --sym-steps, default steps / 6 = %d)\n"
           "  phases    --plain (one plain phase)   --sym-train full|point|translations (one psi_sym phase, e.g. from --init)\n"
           "            --group auto|point|full|translations|plain (the recipe's psi_sym: auto = point; translations\n"
           "            above 36 sites; plain: none, the whole budget plain, as where no sector is found)\n"
           "            --plain-share f (of --time-limit)  --sym-steps n  --sym-samples n (%d)  --sym-lr x (%g;\n"
           "            %g above 64 sites)  --sym-lr-final x (%g)  --sym-max-distance x (%g)  --sym-warmup n (0)\n"
           "            --sym-time-limit MINUTES (psi_sym's; default: the rest)\n",
           r.plain_steps, r.plain_steps, r.sym_steps, r.sym.n_samples, r.sym.lr, r10.sym.lr, r.sym.lr_final, r.sym.max_distance);
    printf("  lattice   --L n | --Lx n --Ly n (4; with --init or --resume: the model's)   --J1 x (1)   --J2 x (0.5; with --init: the model's)\n"
           "  model     --patch b (%d)  --d n (%d)  --heads n (%d)  --layers n (%d)  --ff n (%d)\n"
           "            --attention factored|standard (factored)  --sign none|marshall (marshall above 36 sites on even\n"
           "                             lattices where J1 > 0 and J2 <= 0.55 J1, none otherwise; marshall: the output times\n"
           "                             (-1)^(up spins on the sublattice x + y even), Marshall's sign, a fixed prior)\n"
           "            --init MODEL (start from a model file: its lattice, shape, sign and\n"
           "                             couplings; a psi_sym model continues as psi_sym over its group)\n",
           c.b, c.d, c.h, c.n_layers, c.ff);
    printf("  sampling  --samples n (%d up to 24 sites, %d above: the plain phase; with --sym-train: psi_sym's, %d)\n"
           "            --chains n (samples, at most 1024)  --sweeps n (%d)  --thermalize n (%d)\n"
           "            --sample-power p (%g up to 24 sites, %g above: training samples |psi|^p, reweighted; below 2\n"
           "                             they also visit where |psi| is small)\n"
           "            --exact (enumerate the Sz=0 basis instead, N <= 24)\n"
           "  time      --time-limit MINUTES (the number of steps, and so the schedules, from the measured time\n"
           "                             per step, so that the run and its evaluation end within MINUTES)\n",
           tqs_recipe_for_budget(4, 4, 0).plain_samples, tqs_recipe_for_budget(6, 6, 0).plain_samples, r.sym.n_samples,
           o.sweeps, o.thermalize, tqs_vmc_default_sample_power(24), tqs_vmc_default_sample_power(25));
    printf("  SR        --steps n (%d)  --lr x (%g)  --lr-final x (lr/%g)  --diag-shift x (%g)  --diag-shift-final x (= shift)\n"
           "            --solver auto|parameter|sample|cg (auto)  --max-distance x (%g; 0: off; cap on lr*sqrt(d^T S d))\n"
           "            --momentum x (%g up to 36 sites, off above; 0: off; SPRING, the solve pulled towards x times the last update)\n"
           "            --schedule exp|cosine (exp: of lr and shift, to their final values)  --warmup n (0: steps of linear lr warm-up)\n"
           "            --rollback x (0: off, the default; e.g. 5: a step whose E rose x error bars and 2%% above the run's\n"
           "                             lowest goes back to that lowest state, with half the learning rate from then on)\n"
           "            --clip c (0: off, the default; the SR force's local energies clipped to c mean absolute\n"
           "                             deviations of their mean; the energy itself is never clipped)\n"
           "            (--steps, --lr, --lr-final, --max-distance, --warmup: the plain phase, or --sym-train's; the rest: both phases)\n",
           r.plain_steps, o.lr, o.lr / o.lr_final, o.diag_shift, o.max_distance, tqs_vmc_default_momentum(36));
    printf("  output    --log FILE.csv  --save MODEL  --checkpoint FILE  --checkpoint-every k (50)\n"
           "            --resume FILE (continue the run in FILE, in either phase, writing its checkpoints to FILE: it keeps\n"
           "                             the run's flags; output flags may be added, a flag that changes the run is refused)\n"
           "            --stop-at k (end this invocation after step k of the run, both phases counted, with its checkpoint,\n"
           "                             exit status 3: a long run in slices of a batch queue; --resume FILE continues it)\n"
           "            --eval-samples n (16384; with --time-limit: fewer, down to 4096, if\n"
           "                             they would take more than a tenth of the budget)  --print-every k  --json  --quiet\n"
           "            --json-log FILE (per step, NetKet's JsonLog layout for \"Energy\": iters, Mean, Sigma, Variance, R_hat, TauCorr)\n"
           "  physics   --observables (after training, on the evaluation's samples: C(r), S(q), dimer correlations;\n"
           "                             printed, in --json, of psi_sym too with --symmetrize)  --obs-svg PREFIX (PREFIX-sq.svg, -corr.svg)\n"
           "  paper     --symmetrize (a single plain phase, then also psi_sym evaluated, projected on the ground state's\n"
           "                             sector, from --sym-samples n (1024))\n"
           "            --attention-log k (input dependence of the attention every k steps, standard attention)\n"
           "            --plot FILE.svg (E/N per step with error band and exact line; with LOG.csv arguments:\n"
           "                             plot those logs only, for the lattice and J2 given, and exit)\n"
           "  other     --seed n (1)  --threads n  --max-rejected k (5: stop after k rejected steps in a row)  --help\n");
}

/* The flags a checkpoint keeps (tqs_vmc_options.note), one per line: those
 * of argv but --resume, --init and --time-limit (a resumed run takes its
 * model and step count from the checkpoint) and --stop-at, each flag's last occurrence
 * only. A flag's value is the next argument unless that starts with "--". */
static int build_note(char *out, size_t cap, int argc, char **argv) {
    size_t n = 0;
    int i, j;
    out[0] = 0;
    for (i = 1; i < argc; i++) {
        int has_value = i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0, later = 0;
        if (!strcmp(argv[i], "--resume") || !strcmp(argv[i], "--init") || !strcmp(argv[i], "--time-limit") || !strcmp(argv[i], "--stop-at")) {
            i += has_value; continue;
        }
        for (j = i + 1 + has_value; j < argc && !later; j++) later = !strcmp(argv[j], argv[i]);
        if (!later) {
            int k = snprintf(out + n, cap - n, "%s%s%s%s", n ? "\n" : "", argv[i], has_value ? "\n" : "", has_value ? argv[i + 1] : "");
            if (k < 0 || (size_t)k >= cap - n) return 1;
            n += (size_t)k;
        }
        i += has_value;
    }
    return 0;
}

/* ===================================================================== */
/* The options: every flag, parsed once                                  */
/* ===================================================================== */
enum { MODE_RECIPE, MODE_PLAIN, MODE_SYM };   /* plain then psi_sym (default); --plain; --sym-train alone */

typedef struct gs_options {
    tqs_vit_config cfg;
    tqs_vmc_options train;       /* the training flags as given (zero: the recipe's default) */
    double sym_lr, sym_lr_final, sym_max_distance;   /* the recipe's psi_sym phase (0: its default) */
    double J1, J2, time_limit, plain_share, sym_minutes;
    double max_distance, momentum, rollback;   /* NAN: not given; 0: off */
    int mode, steps, sym_steps;  /* -1: not given; --steps 0 evaluates only */
    int sym_warmup;              /* the psi_sym phase's steps of linear lr warm-up (0: none) */
    int thermalize;              /* -1: not given */
    int seed, threads, exact, json, quiet, print_every, max_rejected, eval_samples, ckpt_every, stop_at;
    int observables, symmetrize, sym_samples, att_every, n_logs;
    const char *att, *sign, *solver, *schedule, *init, *resume, *sym_train, *group;
    const char *log_path, *save, *ckpt, *plot, *json_log_path, *obs_svg_prefix;
    const char **logs;           /* CSV logs to plot (positional arguments) */
    int given_b, given_d, given_h, given_layers, given_ff, given_att, given_sign, given_lattice, given_J1, given_J2, given_sym_samples, given_eval;
    /* --resume: the checkpoint, and the argument list rebuilt from its flags */
    tqs_checkpoint_info *ck;
    char **eargv, *stored, steps_arg[32];
    int argc; char **argv;       /* the arguments, with a checkpoint's flags first */
} gs_options;

/* --resume FILE: the checkpoint keeps the flags of its run (tqs_vmc_options.note);
 * they come first, then its step count (--sym-steps for the recipe's psi_sym
 * phase, --steps otherwise), then the flags given now, so that an output flag
 * given now wins and a flag that changes the run is refused when the
 * checkpoint is loaded (tqs_vmc_load_checkpoint compares the runs). */
static int resume_argv(gs_options *o, int *argc, char ***argv) {
    int n = 0, k, i, recipe = 1;
    char *q;
    for (i = 1; i + 1 < *argc; i++) if (!strcmp((*argv)[i], "--resume")) o->resume = (*argv)[i + 1];
    if (!o->resume) return 0;
    for (i = 1; i < *argc; i++)
        if (!strcmp((*argv)[i], "--time-limit")) flags_die("--time-limit: a resumed run keeps the step count of the run it continues");
    if (!(o->ck = (tqs_checkpoint_info *)malloc(sizeof *o->ck))) flags_die("out of memory");
    if (tqs_vmc_checkpoint_info(o->ck, o->resume)) { fprintf(stderr, "ground_state: --resume: %s\n", tqs_last_error()); return 2; }
    if (!o->ck->has_run) return 0;
    o->stored = (char *)malloc(strlen(o->ck->note) + 1);
    o->eargv = (char **)malloc(sizeof(char *) * ((size_t)*argc + strlen(o->ck->note) / 2 + 6));
    if (!o->stored || !o->eargv) flags_die("out of memory");
    strcpy(o->stored, o->ck->note);
    o->eargv[0] = (*argv)[0];
    for (q = o->stored; *o->stored && q; ) {   /* one argument per line */
        o->eargv[1 + n++] = q;
        q = strchr(q, '\n');
        if (q) *q++ = 0;
    }
    for (k = 0; k < n; k++) recipe &= strcmp(o->eargv[1 + k], "--plain") && strcmp(o->eargv[1 + k], "--sym-train") &&
                                      strcmp(o->eargv[1 + k], "--symmetrize");
    snprintf(o->steps_arg, sizeof o->steps_arg, "%d", o->ck->opt.n_steps);
    o->eargv[1 + n++] = (char *)(recipe && o->ck->symmetry ? "--sym-steps" : "--steps");
    o->eargv[1 + n++] = o->steps_arg;
    /* the run continues the file it was resumed from (not the path it was
     * started with, perhaps elsewhere), unless --checkpoint is given now */
    for (i = 1; i < *argc && strcmp((*argv)[i], "--checkpoint"); i++) {}
    if (i == *argc) { o->eargv[1 + n++] = (char *)"--checkpoint"; o->eargv[1 + n++] = (char *)o->resume; }
    for (k = 1; k < *argc; k++) o->eargv[n + k] = (*argv)[k];
    *argc += n; *argv = o->eargv;
    return 0;
}

static int parse_flags(gs_options *o, int argc, char **argv) {
    int i, plain = 0, rc;
    tqs_vmc_options *t = &o->train;
    memset(o, 0, sizeof *o);
    o->cfg.Lx = o->cfg.Ly = 4;
    o->J1 = 1.0; o->J2 = 0.5; o->steps = o->sym_steps = o->thermalize = -1;
    o->max_distance = o->momentum = o->rollback = o->sym_max_distance = NAN;
    o->seed = 1; o->ckpt_every = 50; o->eval_samples = 16384; o->max_rejected = 5; o->sym_samples = 1024;
    o->att = "factored"; o->sign = NULL; o->solver = "auto"; o->schedule = "exp";
    if ((rc = resume_argv(o, &argc, &argv)) != 0) return rc;
    o->argc = argc; o->argv = argv;
    if (!(o->logs = (const char **)calloc((size_t)argc, sizeof(char *)))) flags_die("out of memory");
    for (i = 1; i < argc; i++) {
        o->given_b |= !strcmp(argv[i], "--patch"); o->given_d |= !strcmp(argv[i], "--d"); o->given_h |= !strcmp(argv[i], "--heads");
        o->given_layers |= !strcmp(argv[i], "--layers"); o->given_ff |= !strcmp(argv[i], "--ff"); o->given_att |= !strcmp(argv[i], "--attention");
        o->given_sign |= !strcmp(argv[i], "--sign");
        o->given_lattice |= !strcmp(argv[i], "--L") || !strcmp(argv[i], "--Lx") || !strcmp(argv[i], "--Ly");
        o->given_J1 |= !strcmp(argv[i], "--J1"); o->given_J2 |= !strcmp(argv[i], "--J2");
        o->given_sym_samples |= !strcmp(argv[i], "--sym-samples"); o->given_eval |= !strcmp(argv[i], "--eval-samples");
        if (flags_lattice(argc, argv, &i, &o->cfg.Lx, &o->cfg.Ly) || flags_real(argc, argv, &i, "--J1", &o->J1, -1e3, 1e3) ||
            flags_real(argc, argv, &i, "--J2", &o->J2, -1e3, 1e3) || flags_int(argc, argv, &i, "--patch", &o->cfg.b, 1, 16) ||
            flags_int(argc, argv, &i, "--d", &o->cfg.d, 1, 4096) || flags_int(argc, argv, &i, "--heads", &o->cfg.h, 1, 4096) ||
            flags_int(argc, argv, &i, "--layers", &o->cfg.n_layers, 1, 64) || flags_int(argc, argv, &i, "--ff", &o->cfg.ff, 1, 64) ||
            flags_str(argc, argv, &i, "--attention", &o->att) || flags_str(argc, argv, &i, "--sign", &o->sign) ||
            flags_str(argc, argv, &i, "--init", &o->init) ||
            flags_bool(argv, i, "--plain", &plain) || flags_str(argc, argv, &i, "--sym-train", &o->sym_train) ||
            flags_str(argc, argv, &i, "--group", &o->group) ||
            flags_int(argc, argv, &i, "--samples", &t->n_samples, 1, 1 << 24) ||
            flags_int(argc, argv, &i, "--chains", &t->n_chains, 1, 1 << 20) ||
            flags_int(argc, argv, &i, "--sweeps", &t->sweeps, 1, 1 << 20) ||
            flags_int(argc, argv, &i, "--thermalize", &o->thermalize, 0, 1 << 20) ||
            flags_bool(argv, i, "--exact", &o->exact) ||
            flags_int(argc, argv, &i, "--steps", &o->steps, 0, 100000000) ||
            flags_int(argc, argv, &i, "--sym-steps", &o->sym_steps, 1, 100000000) ||
            flags_real(argc, argv, &i, "--lr", &t->lr, 1e-12, 1e3) || flags_real(argc, argv, &i, "--lr-final", &t->lr_final, 1e-12, 1e3) ||
            flags_real(argc, argv, &i, "--sym-lr", &o->sym_lr, 1e-12, 1e3) ||
            flags_real(argc, argv, &i, "--sym-lr-final", &o->sym_lr_final, 1e-12, 1e3) ||
            flags_real(argc, argv, &i, "--sym-max-distance", &o->sym_max_distance, 0, 1e6) ||
            flags_int(argc, argv, &i, "--sym-warmup", &o->sym_warmup, 0, 100000000) ||
            flags_real(argc, argv, &i, "--diag-shift", &t->diag_shift, 1e-14, 1e6) ||
            flags_real(argc, argv, &i, "--diag-shift-final", &t->diag_shift_final, 1e-14, 1e6) ||
            flags_str(argc, argv, &i, "--solver", &o->solver) ||
            flags_real(argc, argv, &i, "--max-distance", &o->max_distance, 0, 1e6) ||
            flags_real(argc, argv, &i, "--momentum", &o->momentum, 0, 0.999) ||
            flags_real(argc, argv, &i, "--rollback", &o->rollback, 0, 1e6) ||
            flags_real(argc, argv, &i, "--sample-power", &t->sample_power, 0.05, 2) ||
            flags_real(argc, argv, &i, "--clip", &t->clip_local_energy, 0, 1e6) ||
            flags_real(argc, argv, &i, "--time-limit", &o->time_limit, 0.01, 1e6) ||
            flags_real(argc, argv, &i, "--plain-share", &o->plain_share, 0.01, 0.99) ||
            flags_real(argc, argv, &i, "--sym-time-limit", &o->sym_minutes, 0.01, 1e6) ||
            flags_str(argc, argv, &i, "--schedule", &o->schedule) || flags_int(argc, argv, &i, "--warmup", &t->warmup, 0, 100000000) ||
            flags_str(argc, argv, &i, "--log", &o->log_path) ||
            flags_str(argc, argv, &i, "--save", &o->save) || flags_str(argc, argv, &i, "--checkpoint", &o->ckpt) ||
            flags_int(argc, argv, &i, "--checkpoint-every", &o->ckpt_every, 1, 100000000) ||
            flags_str(argc, argv, &i, "--resume", &o->resume) || flags_int(argc, argv, &i, "--stop-at", &o->stop_at, 1, 100000000) ||
            flags_int(argc, argv, &i, "--eval-samples", &o->eval_samples, 1, 1 << 26) ||
            flags_int(argc, argv, &i, "--print-every", &o->print_every, 1, 100000000) ||
            flags_bool(argv, i, "--json", &o->json) || flags_bool(argv, i, "--quiet", &o->quiet) ||
            flags_int(argc, argv, &i, "--seed", &o->seed, 0, 2147483647) ||
            flags_int(argc, argv, &i, "--threads", &o->threads, 1, 1024) ||
            flags_bool(argv, i, "--symmetrize", &o->symmetrize) ||
            flags_int(argc, argv, &i, "--sym-samples", &o->sym_samples, 16, 1 << 24) ||
            flags_int(argc, argv, &i, "--attention-log", &o->att_every, 1, 100000000) ||
            flags_int(argc, argv, &i, "--max-rejected", &o->max_rejected, 1, 100000000) || flags_str(argc, argv, &i, "--plot", &o->plot) ||
            flags_bool(argv, i, "--observables", &o->observables) ||
            flags_str(argc, argv, &i, "--obs-svg", &o->obs_svg_prefix) || flags_str(argc, argv, &i, "--json-log", &o->json_log_path)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { print_usage(); exit(0); }
        if (argv[i][0] == '-') flags_die("unknown flag '%s' (try --help)", argv[i]);
        o->logs[o->n_logs++] = argv[i];   /* a CSV log to plot */
    }
    if (plain && o->sym_train) flags_die("--plain: a single plain phase, and --sym-train a single psi_sym phase: give one");
    o->mode = plain || o->symmetrize ? MODE_PLAIN : o->sym_train ? MODE_SYM : MODE_RECIPE;
    return 0;
}

/* ===================================================================== */
/* Set-up: the rules, the model, the phases' options                      */
/* ===================================================================== */
typedef struct gs {
    gs_options o;
    const tqs_comm *comm;
    tqs_hamiltonian H;
    tqs_vit model;
    tqs_recipe_options ro;       /* the phases, from the flags (tqs_recipe_init fills the rest) */
    tqs_recipe r;
    char *note, couplings_msg[256];
    int warm, N;
    double t_begin, t_start, t_train, exact;
    double ref;                  /* reference_per_site (NAN: none), from ref_source */
    const char *ref_source;
    /* --time-limit: the phase's deadline, the recent time per step, the evaluation's estimate */
    double deadline, t_avg, t_eval, t_therm;
    int max_steps;
    long done_here, offset;      /* steps taken here; the plain phase's steps before psi_sym's (the log's numbering) */
    int print_every, rejected_run, rollbacks;   /* rollbacks: steps undone (tqs_vmc_options.rollback), both phases */
    double phase_seconds; long phase_steps;   /* this phase's steps taken here and their time (the time left) */
    FILE *log;
    json_log jlog;
    double *hist_x, *hist_y, *hist_e; long hist_cap;   /* --plot without a log: this run's curve */
    double *dep, dep_avg; int8_t *dep_buf; tqs_vit_ws att_ws;   /* --attention-log */
    const char *ckpt; char ckpt_rescue[512]; int ckpt_failed;
    symmetry_check symcheck;
} gs;

static int group_code(const char *name) {
    return !strcmp(name, "point") ? TQS_RECIPE_POINT : !strcmp(name, "full") ? TQS_RECIPE_FULL
         : !strcmp(name, "translations") ? TQS_RECIPE_TRANSLATIONS : !strcmp(name, "plain") ? TQS_RECIPE_PLAIN : -1;
}
static const char *group_flag(int code) {
    return code == TQS_RECIPE_FULL ? "full" : code == TQS_RECIPE_TRANSLATIONS ? "translations" : code == TQS_RECIPE_PLAIN ? "plain" : "point";
}

/* Appends "\nflag\nvalue" to the checkpoint's note (what a --resume must know
 * that the flags did not say). */
static void note_add(char *note, const char *flag, const char *value) {
    size_t n = strlen(note);
    int k = snprintf(note + n, TQS_NOTE_MAX - n, "%s%s\n%s", n ? "\n" : "", flag, value);
    if (k < 0 || (size_t)k >= TQS_NOTE_MAX - n) flags_die("the flags are too long to keep in a checkpoint (at most %d characters)", TQS_NOTE_MAX - 1);
}

/* The model's shape from --init's file or --resume's checkpoint: a model
 * flag given beside it must agree, or it would be silently ignored. */
static void model_from_file(gs *g) {
    gs_options *o = &g->o;
    const tqs_vit_config *mc = o->init ? &g->model.cfg : &o->ck->cfg;
    const char *from = o->init ? "--init" : "--resume";
    if (o->given_lattice && (mc->Lx != o->cfg.Lx || mc->Ly != o->cfg.Ly))
        flags_die("%s: the model is for %dx%d, the flags say %dx%d", from, mc->Lx, mc->Ly, o->cfg.Lx, o->cfg.Ly);
    if (o->given_b && mc->b != o->cfg.b) flags_die("%s: the model has --patch %d, the flags say %d", from, mc->b, o->cfg.b);
    if (o->given_d && mc->d != o->cfg.d) flags_die("%s: the model has --d %d, the flags say %d", from, mc->d, o->cfg.d);
    if (o->given_h && mc->h != o->cfg.h) flags_die("%s: the model has --heads %d, the flags say %d", from, mc->h, o->cfg.h);
    if (o->given_layers && mc->n_layers != o->cfg.n_layers)
        flags_die("%s: the model has --layers %d, the flags say %d", from, mc->n_layers, o->cfg.n_layers);
    if (o->given_ff && mc->ff != o->cfg.ff) flags_die("%s: the model has --ff %d, the flags say %d", from, mc->ff, o->cfg.ff);
    if (o->given_att && o->cfg.attention != mc->attention)
        flags_die("%s: the model has --attention %s, the flags say %s", from, mc->attention ? "standard" : "factored",
                  o->cfg.attention ? "standard" : "factored");
    if (o->given_sign && o->cfg.sign_rule != mc->sign_rule)
        flags_die("%s: the model has --sign %s, the flags say %s", from, sign_name(mc->sign_rule), sign_name(o->cfg.sign_rule));
    o->cfg = *mc;
}

/* The training flags, resolved (solver, schedule, "off" values), shared by both phases. */
static tqs_vmc_options training_options(gs *g) {
    gs_options *o = &g->o;
    tqs_vmc_options t = o->train;
    if (!strcmp(o->solver, "auto")) t.sr.solver = TQS_SOLVER_AUTO;
    else if (!strcmp(o->solver, "parameter")) t.sr.solver = TQS_SOLVER_PARAMETER;
    else if (!strcmp(o->solver, "sample")) t.sr.solver = TQS_SOLVER_SAMPLE;
    else if (!strcmp(o->solver, "cg")) t.sr.solver = TQS_SOLVER_CG;
    else flags_die("--solver: must be auto, parameter, sample or cg (got '%s')", o->solver);
    if (!strcmp(o->schedule, "exp")) t.schedule = TQS_SCHEDULE_EXP;
    else if (!strcmp(o->schedule, "cosine")) t.schedule = TQS_SCHEDULE_COSINE;
    else flags_die("--schedule: must be exp or cosine (got '%s')", o->schedule);
    if (!isnan(o->max_distance)) t.max_distance = o->max_distance > 0 ? o->max_distance : -1;   /* the library's "off" */
    if (!isnan(o->momentum)) t.momentum = o->momentum > 0 ? o->momentum : -1;
    if (!isnan(o->rollback)) t.rollback = o->rollback > 0 ? o->rollback : -1;
    if (o->thermalize >= 0) t.thermalize = o->thermalize > 0 ? o->thermalize : -1;
    t.exact = o->exact; t.seed = (uint64_t)o->seed;
    t.note = g->note; t.comm = g->comm;
    t.memory_limit = 0.8 * flags_physical_memory();   /* tqs_vmc_init refuses plans above it */
    return t;
}

/* The phases from the flags: the recipe (plain, then psi_sym over --group),
 * --plain's single plain phase, or --sym-train's single psi_sym phase. In
 * the recipe the training flags set the plain phase and both phases'
 * sampling and SR; --sym-samples, --sym-lr, --sym-lr-final and
 * --sym-max-distance the psi_sym phase's own (zero: the recipe's). */
static void phase_options(gs *g) {
    gs_options *o = &g->o;
    tqs_recipe_options *ro = &g->ro;
    tqs_vmc_options t = training_options(g);
    tqs_recipe_budget b = tqs_recipe_for_budget(o->cfg.Lx, o->cfg.Ly, o->time_limit);
    int placeholder = t.warmup + 1;   /* --time-limit: the steps are planned once timed */
    memset(ro, 0, sizeof *ro);
    ro->group = o->mode == MODE_PLAIN ? TQS_RECIPE_PLAIN : group_code(o->mode == MODE_SYM ? o->sym_train : o->group);
    if (o->mode == MODE_RECIPE && !strcmp(o->group, "auto")) ro->group = b.group;
    ro->skip_plain = o->mode == MODE_SYM;
    ro->plain = t;   /* (with --sym-train: the model's plain amplitude, whose samples may fix the sector) */
    if (o->mode == MODE_SYM) ro->sym = t;
    if (o->mode == MODE_RECIPE) {   /* what psi_sym shares with the plain phase, and its own flags */
        ro->sym = t;
        ro->sym.n_samples = o->given_sym_samples ? o->sym_samples : 0;
        ro->sym.lr = o->sym_lr; ro->sym.lr_final = o->sym_lr_final; ro->sym.warmup = o->sym_warmup;
        ro->sym.max_distance = isnan(o->sym_max_distance) ? 0 : o->sym_max_distance > 0 ? o->sym_max_distance : -1;
    }
    if (o->mode != MODE_SYM) ro->plain_steps = o->time_limit > 0 ? placeholder : o->steps > 0 ? o->steps : o->steps == 0 ? 1 : 0;
    if (o->mode == MODE_SYM) ro->sym_steps = o->time_limit > 0 ? placeholder : o->steps > 0 ? o->steps : o->steps == 0 ? 1 : 0;
    else if (o->sym_steps > 0) ro->sym_steps = o->sym_steps;
    else if (o->time_limit > 0 || o->sym_minutes > 0) ro->sym_steps = (o->sym_warmup > t.warmup ? o->sym_warmup : t.warmup) + 1;
    tqs_recipe_options_defaults(ro, o->cfg.Lx * o->cfg.Ly);
}

/* Every rule checked, and the model made, before anything is written: a
 * run must not end with nowhere to put its result. Returns 0, or 2 (a file
 * that cannot be read), after which nothing is left to free but g->o. */
static int set_up(gs *g) {
    gs_options *o = &g->o;
    tqs_recipe_budget b;
    int N;
    if (o->init && tqs_vit_load(&g->model, o->init)) { fprintf(stderr, "ground_state: --init: %s\n", tqs_last_error()); return 2; }
    if (o->init)   /* the couplings the model was trained at, unless the flags say otherwise (then: a warm start, said) */
        g->warm = flags_model_couplings(g->couplings_msg, sizeof g->couplings_msg, &o->J1, &o->J2, o->given_J1, o->given_J2,
                                        g->model.J1, g->model.J2, "--init", "a warm start");
    if (o->init && o->mode == MODE_RECIPE && g->model.trained_symmetry && !o->ck) {
        /* a psi_sym model continues as psi_sym over its group, not from a plain phase */
        o->mode = MODE_SYM;
        o->sym_train = g->model.trained_symmetry == 1 ? "full" : g->model.trained_symmetry == 2 ? "translations" : "point";
    }
    if (!strcmp(o->att, "factored")) o->cfg.attention = TQS_ATTN_FACTORED;
    else if (!strcmp(o->att, "standard")) o->cfg.attention = TQS_ATTN_STANDARD;
    else flags_die("--attention: must be factored or standard (got '%s')", o->att);
    if (!o->sign) o->cfg.sign_rule = tqs_recipe_sign_rule(o->cfg.Lx, o->cfg.Ly, o->J1, o->J2);   /* (a model file keeps its own) */
    else if (!strcmp(o->sign, "none")) o->cfg.sign_rule = TQS_SIGN_NONE;
    else if (!strcmp(o->sign, "marshall")) o->cfg.sign_rule = TQS_SIGN_MARSHALL;
    else flags_die("--sign: must be none or marshall (got '%s')", o->sign);
    if (o->init || o->ck) model_from_file(g);
    b = tqs_recipe_for_budget(o->cfg.Lx, o->cfg.Ly, o->time_limit);
    if (!o->init && !o->ck && !o->given_d && o->mode == MODE_RECIPE) o->cfg.d = b.d;   /* the width the budget affords */
    tqs_vit_config_defaults(&o->cfg);
    flags_check_lattice(o->cfg.Lx, o->cfg.Ly);
    if (o->cfg.Lx % o->cfg.b || o->cfg.Ly % o->cfg.b) flags_die("--patch: %d must divide Lx = %d and Ly = %d", o->cfg.b, o->cfg.Lx, o->cfg.Ly);
    if (o->cfg.d % o->cfg.h) flags_die("--heads: %d must divide --d %d", o->cfg.h, o->cfg.d);
    g->N = N = o->cfg.Lx * o->cfg.Ly;
    if (!o->group) o->group = "auto";
    if (strcmp(o->group, "auto") && group_code(o->group) < 0) flags_die("--group: must be auto, point, full, translations or plain (got '%s')", o->group);
    if (o->sym_train && (group_code(o->sym_train) < 0 || group_code(o->sym_train) == TQS_RECIPE_PLAIN)) flags_die("--sym-train: must be full, point or translations (got '%s')", o->sym_train);
    if (o->mode != MODE_RECIPE && (o->sym_steps > 0 || o->sym_lr > 0 || o->sym_lr_final > 0 || !isnan(o->sym_max_distance) || o->sym_warmup > 0 || o->plain_share > 0 || o->sym_minutes > 0))
        flags_die("--sym-steps, --sym-lr, --sym-lr-final, --sym-max-distance, --sym-warmup, --plain-share, --sym-time-limit: the recipe's psi_sym phase; "
                  "this run is a single %s phase", o->mode == MODE_PLAIN ? "plain" : "psi_sym");
    if (o->plain_share > 0 && o->time_limit <= 0) flags_die("--plain-share: a share of --time-limit");
    if (o->exact && N > TQS_ED_MAX_SITES) flags_die("--exact: needs N <= %d sites (got %dx%d)", TQS_ED_MAX_SITES, o->cfg.Lx, o->cfg.Ly);
    if (o->exact && o->train.sample_power > 0 && o->train.sample_power != 2) flags_die("--sample-power: nothing is sampled with --exact");
    if (o->n_logs && !o->plot) flags_die("unexpected argument '%s' (CSV logs are plotted with --plot FILE.svg)", o->logs[0]);
    if (o->att_every && o->cfg.attention != TQS_ATTN_STANDARD)
        flags_die("--attention-log: needs --attention standard (factored attention does not depend on the input)");
    if (o->sym_train && o->symmetrize) flags_die("--symmetrize: the --sym-train run's energies are already those of psi_sym");
    if (o->obs_svg_prefix && !o->observables) flags_die("--obs-svg: needs --observables");
    if (o->stop_at && !o->ckpt) flags_die("--stop-at: needs --checkpoint FILE (or --resume FILE of a run that has one) to continue from");
    if (!(g->note = (char *)malloc(TQS_NOTE_MAX)) || build_note(g->note, TQS_NOTE_MAX, g->o.argc, g->o.argv))
        flags_die("the flags are too long to keep in a checkpoint (at most %d characters)", TQS_NOTE_MAX - 1);
    if (o->init && (!o->given_J1 || !o->given_J2)) {   /* couplings taken from the model: a --resume must find them in the note */
        char v[32];
        snprintf(v, sizeof v, "%.17g", o->J1); note_add(g->note, "--J1", v);
        snprintf(v, sizeof v, "%.17g", o->J2); note_add(g->note, "--J2", v);
    }
    if (o->init && o->mode == MODE_SYM && !strstr(g->note, "--sym-train")) note_add(g->note, "--sym-train", o->sym_train);
    phase_options(g);
    if (o->mode == MODE_RECIPE && o->time_limit > 0 && o->sym_minutes <= 0 && g->ro.group != TQS_RECIPE_PLAIN) {
        /* the psi_sym phase's share of the budget: a run resumed in the plain phase gets as long */
        char v[32];
        double share = o->plain_share > 0 ? o->plain_share : b.plain_share;
        o->sym_minutes = (1 - share) * o->time_limit;
        snprintf(v, sizeof v, "%.6g", o->sym_minutes); note_add(g->note, "--sym-time-limit", v);
    }
    {   /* both phases' sampling */
        const tqs_vmc_options *p = o->mode == MODE_SYM ? &g->ro.sym : &g->ro.plain, *s = &g->ro.sym;
        int chains = p->n_chains;
        if (!o->exact && chains > p->n_samples) flags_die("--chains: %d chains for %d samples; need chains <= samples", chains, p->n_samples);
        if (!o->exact && o->mode == MODE_RECIPE && s->n_chains > s->n_samples)
            flags_die("--chains: %d chains for the psi_sym phase's %d samples (--sym-samples)", s->n_chains, s->n_samples);
        if (!o->exact && chains > o->eval_samples) flags_die("--eval-samples: %d is fewer than --chains %d", o->eval_samples, chains);
        if (!o->exact && o->mode == MODE_RECIPE && g->ro.group != TQS_RECIPE_PLAIN && o->steps != 0 && s->n_chains > o->eval_samples)
            flags_die("--eval-samples: %d is fewer than the psi_sym phase's %d chains (--chains, --sym-samples)", o->eval_samples, s->n_chains);
        if (o->train.warmup > 0 && o->train.warmup >= p->n_steps && o->time_limit <= 0)
            flags_die("--warmup: %d steps in a run of --steps %d", o->train.warmup, p->n_steps);
        if (o->sym_warmup > 0 && o->sym_steps > 0 && o->sym_warmup >= o->sym_steps)
            flags_die("--sym-warmup: %d steps in a psi_sym phase of --sym-steps %d", o->sym_warmup, o->sym_steps);
        if (o->symmetrize && !o->exact && (chains < 32 ? chains : 32) > o->sym_samples)
            flags_die("--sym-samples: %d is fewer than the %d chains of the symmetrised evaluation", o->sym_samples, chains < 32 ? chains : 32);
    }
    if (!o->init && 3.0 * 8.0 * (double)tqs_vit_param_count(&o->cfg) > g->ro.plain.memory_limit)
        flags_die("--d/--layers/--ff: %.3g parameters need %.3g GB with their buffers, more than this machine's %.3g GB; use a smaller model",
                  (double)tqs_vit_param_count(&o->cfg), 24e-9 * (double)tqs_vit_param_count(&o->cfg), flags_physical_memory() * 1e-9);
    if (o->threads) tqs_set_threads(o->threads);
    if (!is_root) {   /* the other processes compute; process 0 alone prints and writes */
        o->quiet = 1; o->json = 0; o->log_path = NULL; o->save = NULL; o->plot = NULL; o->att_every = 0;
        o->json_log_path = NULL; o->obs_svg_prefix = NULL;
    }
    flags_check_output("--log", o->log_path); flags_check_output("--save", o->save);
    flags_check_output("--checkpoint", o->ckpt); flags_check_output("--plot", o->plot); flags_check_output("--json-log", o->json_log_path);
    if (o->obs_svg_prefix) {
        char probe[1024];
        snprintf(probe, sizeof probe, "%s-sq.svg", o->obs_svg_prefix);
        flags_check_output("--obs-svg", probe);
    }
    g->ckpt = o->ckpt;
    if (tqs_hamiltonian_init(&g->H, o->cfg.Lx, o->cfg.Ly, o->J1, o->J2)) flags_die("%s", tqs_last_error());
    if (o->n_logs) return 0;   /* plot only */
    if (!o->init && tqs_vit_init(&g->model, &o->cfg, (uint64_t)o->seed)) flags_die("%s", tqs_last_error());
    return 0;
}

/* ===================================================================== */
/* The phases: planned by the clock, stepped, logged                     */
/* ===================================================================== */
/* Process 0's value on every process (the plans must agree). */
static int agree(const tqs_comm *comm, double *x) {
    double y;
    if (!comm || comm->size == 1) return 0;
    y = comm->rank == 0 ? *x : 0;
    if (comm->sum(comm->ctx, &y, 1)) return 1;
    *x = y;
    return 0;
}

/* --time-limit: three steps of the phase about to start, timed on a copy of
 * the parameters (the first includes thermalisation; the last two are
 * timed), size the phase so that it ends by g->deadline, less the final
 * evaluation's estimated time when it is the last phase; the phase then
 * starts from the trial's thermalised chains. */
static int plan_phase(gs *g, int last) {
    tqs_vmc *v = &g->r.vmc, cal;
    tqs_vmc_options co = v->opt;
    size_t np = g->model.n_params;
    double *keep = (double *)malloc(sizeof(double) * np), t_step = 0, t_first = 0, left, x, per_sample;
    int8_t *chains = NULL;
    tqs_step_info ci;
    int k, steps, exact = v->opt.exact;
    if (!keep) { fprintf(stderr, "ground_state: --time-limit: out of memory\n"); return 1; }
    memcpy(keep, g->model.params, sizeof(double) * np);
    co.n_steps = 3; co.warmup = 0;
    if (tqs_vmc_init(&cal, &g->H, &g->model, &co)) { fprintf(stderr, "ground_state: %s\n", tqs_last_error()); free(keep); return 2; }
    for (k = 0; k < 3; k++) {
        double t0 = now();
        if (tqs_vmc_step(&cal, &ci)) { fprintf(stderr, "ground_state: --time-limit: %s\n", tqs_last_error()); return 1; }
        if (k) t_step += 0.5 * (now() - t0);
        else t_first = now() - t0;
    }
    /* the final evaluation: eval_samples fresh samples and their local energies,
     * after the chains thermalise to |psi|^2 again when training sampled another power */
    g->t_therm = !exact && cal.opt.sample_power != 2 && t_first > t_step ? t_first - t_step : 0;
    /* a sample's share of the evaluation: its sampling and local energy; with
     * --observables 1.6 times that (measured: 4096 samples of psi_sym on 4x4,
     * 12.4 s without, 19.9 s with) */
    per_sample = (ci.seconds[0] + ci.seconds[1]) / cal.M * (g->o.observables ? 1.6 : 1.0);
    if (last && !exact && !g->o.given_eval) {   /* the default evaluation: at most a tenth of the budget, at least 4096 samples */
        double budget = 60.0 * (g->o.time_limit > 0 ? g->o.time_limit : g->o.sym_minutes);
        while (g->o.eval_samples > 4096 && per_sample * g->o.eval_samples > 0.1 * budget) g->o.eval_samples /= 2;
    }
    g->t_eval = !last ? 0 : exact ? t_step : per_sample * g->o.eval_samples + g->t_therm;
    if (!exact && (chains = (int8_t *)malloc((size_t)cal.sampler.n_chains * g->N)) != NULL)
        memcpy(chains, cal.sampler.state, (size_t)cal.sampler.n_chains * g->N);
    tqs_vmc_free(&cal);
    memcpy(g->model.params, keep, sizeof(double) * np);
    free(keep);
    left = g->deadline - now() - g->t_eval;
    left -= 0.02 * left;
    steps = (int)v->step + (left > t_step ? (int)(left / t_step) : 1);   /* (steps done: a continued plain phase) */
    if (steps <= v->opt.warmup) steps = v->opt.warmup + 1;
    x = steps;
    if (agree(g->comm, &x)) { fprintf(stderr, "ground_state: --time-limit: communication failed\n"); free(chains); return 1; }
    steps = (int)x;
    if (tqs_vmc_set_steps(v, steps) || (chains && v->step == 0 && tqs_vmc_set_chains(v, chains))) {
        fprintf(stderr, "ground_state: --time-limit: %s\n", tqs_last_error()); free(chains); return 1;
    }
    free(chains);
    g->t_avg = t_step; g->max_steps = 2 * steps + 16;
    if (!g->o.quiet && last)
        fprintf(stderr, "  %.3f s per step, %.1f s for the evaluation: %d steps planned (re-planned every step from the measured times; "
                "%d evaluation samples)\n", t_step, g->t_eval, steps, g->o.eval_samples);
    else if (!g->o.quiet)
        fprintf(stderr, "  %.3f s per step: %d steps planned (re-planned every step from the measured times)\n", t_step, steps);
    if (left < t_step)   /* what the run cannot shorten already fills the budget: one step, late, and said */
        fprintf(stderr, "ground_state: --time-limit %g min: %.1f s spent before this phase's first step%s leave no time to train: 1 step\n",
                g->o.time_limit > 0 ? g->o.time_limit : g->o.sym_minutes, now() - g->t_begin, last ? " and the evaluation" : "");
    return 0;
}

/* One line that says what the phase does. */
static void print_phase(gs *g) {
    const tqs_vmc_options *p = &g->r.vmc.opt;
    int n = g->ro.group == TQS_RECIPE_PLAIN || g->ro.skip_plain ? 1 : 2, k = g->r.phase + 1 - g->ro.skip_plain;
    const char *terms = g->r.opt.group == TQS_RECIPE_FULL ? "translations, point group, spin flip"
                      : g->r.opt.group == TQS_RECIPE_TRANSLATIONS ? "the translations inside a patch"
                                                               : "the translations inside a patch, point group";
    if (g->o.quiet) return;
    fprintf(stderr, "phase %d of %d: ", k, n);
    if (g->r.phase == 0) fprintf(stderr, "plain ViT");
    else fprintf(stderr, "psi_sym, %d terms (%s), in the sector %s", g->r.group.n, terms,
                 g->N <= TQS_ED_MAX_SITES ? "of the exact ground state"
                 : g->r.sector_marshall ? "of Marshall's sign rule, chi_x = chi_y = +1 (the plain model's samples showed none)"
                                        : "the plain model's samples show");
    if (g->r.phase == 1 && !g->r.sector_marshall) {   /* the sector's characters: the translations', then the point group's */
        int q;
        fprintf(stderr, " (chi_x %+g, chi_y %+g", g->r.group.chi_x, g->r.group.chi_y);
        for (q = 0; q < g->r.group.n_point && !g->r.group.translations_only; q++) fprintf(stderr, q ? " %+g" : ", point %+g", g->r.group.chi_point[q]);
        fprintf(stderr, ")");
    }
    if (p->exact) fprintf(stderr, ", exact enumeration");
    else fprintf(stderr, ", %d samples of |psi|^%g", p->n_samples, p->sample_power);
    if (p->warmup > 0) fprintf(stderr, ", lr warm-up over %d steps", p->warmup);
    fprintf(stderr, ", lr %g -> %g", p->lr, p->lr_final);
    if (p->max_distance > 0) fprintf(stderr, ", max distance %g", p->max_distance);
    if (g->deadline > 0) fprintf(stderr, ", steps planned by the clock to %.0f s\n", g->deadline - g->t_begin);
    else fprintf(stderr, ", %d steps\n", p->n_steps);
}

/* No sector to train psi_sym in (on a large lattice: a plain model far from
 * converged, whose samples show none): the plain phase, not yet converged,
 * is the better use of the budget psi_sym had. It is planned again to the
 * deadline (its learning-rate schedule stretched over the longer phase),
 * and the checkpoint's note records that the run has no psi_sym phase, so a
 * resumed run ends where this one does. */
static int continue_plain(gs *g, double deadline) {
    g->r.phase = 0;
    g->phase_steps = 0; g->phase_seconds = 0;
    g->r.opt.group = g->ro.group = TQS_RECIPE_PLAIN;
    note_add(g->note, "--group", "plain");
    g->deadline = deadline;
    return plan_phase(g, 1);
}

/* The recipe's second phase: the sector, then psi_sym from the plain phase's
 * parameters (tqs_recipe_next_phase), planned for the rest of the budget. */
static int begin_psi_sym(gs *g) {
    gs_options *o = &g->o;
    long plain_done = g->r.vmc.step;
    int continued = g->r.sector_fallback == 2;   /* the plain phase that took psi_sym's budget has ended */
    double rest = o->sym_steps > 0 ? 0 : o->time_limit > 0 ? g->t_begin + 60.0 * o->time_limit - now() : 60.0 * o->sym_minutes;
    if (tqs_recipe_next_phase(&g->r)) { fprintf(stderr, "ground_state: the psi_sym phase: %s\n", tqs_last_error()); return 1; }
    if (continued) return 0;
    if (g->r.sector_fallback)   /* (said even with --quiet: the run does less than it was asked) */
        fprintf(stderr, "ground_state: the %s lies in no one-dimensional sector of --group %s (degenerate, or not determined): %s\n",
                g->N <= TQS_ED_MAX_SITES ? "exact ground state" : "plain model", group_flag(g->ro.group),
                g->r.sector_fallback == 1 ? "psi_sym over the translations alone"
                : rest > 0 ? "no psi_sym phase; the plain phase goes on for the rest of the budget"
                           : "no psi_sym phase; the plain model is the result");
    if (g->r.sector_fallback == 2 && rest > 0) return continue_plain(g, now() + rest);
    if (g->r.phase != 1) return 0;
    g->offset = g->ro.skip_plain ? 0 : plain_done;
    g->phase_steps = 0; g->phase_seconds = 0;
    g->deadline = o->sym_steps > 0 ? 0 : o->time_limit > 0 ? g->t_begin + 60.0 * o->time_limit
                : o->sym_minutes > 0 ? now() + 60.0 * o->sym_minutes : 0;
    if (g->deadline > 0 && isnan(g->exact)) g->exact = exact_per_site(&g->H, o->J1, o->J2);   /* (a timed --sym-train: within its budget) */
    if (o->mode == MODE_RECIPE && g->deadline > 0 && o->steps < 0) {   /* a resumed psi_sym checkpoint numbers its steps after these */
        char v[32];
        snprintf(v, sizeof v, "%ld", plain_done);
        note_add(g->note, "--steps", v);
    }
    print_phase(g);
    if (g->deadline > 0 && plan_phase(g, 1)) return 1;
    if (!o->print_every) g->print_every = g->r.vmc.opt.n_steps <= 100 ? 1 : g->r.vmc.opt.n_steps / 100;
    return 0;
}

/* Writes the checkpoint; one that cannot be written ends nothing: it goes to
 * another file, named on stderr, which later checkpoints then use. */
static void write_ckpt(gs *g) {
    const char *alt = NULL;
    if (!g->ckpt || !save_or_rescue(write_checkpoint, &g->r.vmc, g->ckpt, "--checkpoint", "ckpt", &alt)) return;
    if (alt) { snprintf(g->ckpt_rescue, sizeof g->ckpt_rescue, "%s", alt); g->ckpt = g->ckpt_rescue; }   /* (alt is reused) */
    else g->ckpt = NULL;
    g->ckpt_failed = 1;
}

/* --time-limit: re-plans the rest of the phase from the recent time per step
 * (it changes as the state does) and the evaluation's estimated time; the
 * schedules follow. Not after the first step: its sampling includes the
 * thermalisation, which would inflate both estimates. */
static int replan(gs *g, const tqs_step_info *info, double dt) {
    tqs_vmc *v = &g->r.vmc;
    int last = g->r.phase == 1 || g->ro.group == TQS_RECIPE_PLAIN;
    double t_eval = !last ? 0 : v->opt.exact ? g->t_avg
                  : (info->seconds[0] + info->seconds[1]) * (g->o.observables ? 1.6 : 1.0) * g->o.eval_samples / v->M + g->t_therm;
    double left = g->deadline - now() - t_eval - 0.01 * (g->deadline - g->t_begin), plan;
    g->t_avg = 0.8 * g->t_avg + 0.2 * dt;
    plan = (double)v->step + (left > 0 ? floor(left / g->t_avg) : 0);
    if (plan > g->max_steps) plan = g->max_steps;
    if (agree(g->comm, &plan)) return 1;
    if ((int)plan != v->opt.n_steps && (int)plan > v->opt.warmup) tqs_vmc_set_steps(v, (int)plan);
    return 0;
}

static int grow(double **a, long n) {
    double *p = (double *)realloc(*a, sizeof(double) * (size_t)n);
    if (!p) return 1;
    *a = p;
    return 0;
}

/* The progress line, the logs, the checkpoint, and whether to stop: 0 to go
 * on, else the exit status (1: rejected steps, 130: interrupted, 3: --stop-at). */
static int after_step(gs *g, const tqs_step_info *info, double dt) {
    gs_options *o = &g->o;
    tqs_vmc *v = &g->r.vmc;
    long step = g->offset + info->step, end = g->offset + v->opt.n_steps;   /* the log's numbering: both phases */
    int N = g->N, last = v->step == v->opt.n_steps;
    if (g->hist_x) {
        if (g->done_here >= g->hist_cap) {
            g->hist_cap = 2 * g->hist_cap + 1024;
            if (grow(&g->hist_x, g->hist_cap) || grow(&g->hist_y, g->hist_cap) || grow(&g->hist_e, g->hist_cap)) {
                fprintf(stderr, "ground_state: --plot: out of memory\n"); return 1;
            }
        }
        g->hist_x[g->done_here] = (double)step; g->hist_y[g->done_here] = info->energy / N; g->hist_e[g->done_here] = info->error / N;
    }
    g->done_here++; g->phase_steps++; g->phase_seconds += dt;
    /* on the step's samples, with the parameters after its update */
    if (o->att_every) g->dep_avg = info->step % o->att_every == 0 ? attention_dependence(v, &g->att_ws, g->dep_buf, g->dep) : NAN;
    if (g->deadline > 0 && !last && g->done_here > 1 && replan(g, info, dt)) { fprintf(stderr, "ground_state: communication failed\n"); return 1; }
    if (g->comm && g->comm->size > 1) {   /* an interrupt on any process stops every one after the same step */
        double x = interrupted;
        if (g->comm->sum(g->comm->ctx, &x, 1)) { fprintf(stderr, "ground_state: communication failed\n"); return 1; }
        interrupted = x > 0;
    }
    last = v->step == v->opt.n_steps;
    if (g->log) {
        fprintf(g->log, "%ld,%.12g,%.6g,%.6g,%.4f,%.4f,%.6g,%.6g,%s,%.4f,", step, info->energy / N, info->error / N,
                info->variance / N, info->acceptance, info->rhat, info->lr, info->diag_shift, tqs_solver_name(info->sr.solver), dt);
        if (isfinite(g->dep_avg)) fprintf(g->log, "%.6g", g->dep_avg);
        fprintf(g->log, "\n");
        fflush(g->log);
    }
    if (o->json_log_path) {
        if (json_log_add(&g->jlog, info, step)) { fprintf(stderr, "ground_state: --json-log: out of memory\n"); return 1; }
        if ((step % g->print_every == 0 || last || interrupted) && json_log_write(&g->jlog, o->json_log_path))
            fprintf(stderr, "ground_state: --json-log: cannot write '%s'\n", o->json_log_path);
    }
    g->rollbacks += info->rolled_back;
    if (!o->quiet && (step % g->print_every == 0 || last || info->rejected || info->rolled_back || info->sr.shift_retries)) {
        double per_step = g->phase_seconds / (double)g->phase_steps;
        char depstr[32] = "", rhat[16] = "-", ess[32] = "", clip[32] = "";   /* (split-R-hat needs 4 samples per chain) */
        if (isfinite(g->dep_avg)) snprintf(depstr, sizeof depstr, "  att.dep %.4f", g->dep_avg);
        if (!isnan(info->rhat)) snprintf(rhat, sizeof rhat, "%.3f", info->rhat);
        if (!v->opt.exact && v->opt.sample_power != 2) snprintf(ess, sizeof ess, "  ess %.0f", info->ess);   /* of the reweighting */
        if (v->opt.clip_local_energy > 0) snprintf(clip, sizeof clip, "  clipped %d", info->clipped);
        fprintf(stderr, "step %5ld  E/N %.6f +- %.6f  var/N %.5f  acc %.3f%s  Rhat %s  dist %.3g%s%s%s  %.3fs/step  left %.0fs%s%s\n",
                step, info->energy / N, info->error / N, info->variance / N, info->acceptance, ess, rhat,
                info->distance, info->capped ? " (capped)" : "", clip, depstr, dt, (double)(end - step - 1) * per_step,
                info->rejected ? "  REJECTED (non-finite update)"
                : info->rolled_back ? "  ROLLED BACK (E rose far above the run's lowest: back to that state, lr halved)" : "",
                info->sr.shift_retries ? "  (shift raised after a non-positive pivot)" : "");
    }
    /* a rejected step (non-finite energy or update) leaves the parameters
     * unchanged; several in a row end the run with the last good state */
    g->rejected_run = info->rejected ? g->rejected_run + 1 : 0;
    if (g->rejected_run >= o->max_rejected) {
        fprintf(stderr, "ground_state: %d consecutive steps rejected (non-finite energy or update) at step %ld; "
                "stopping with the parameters of the last good step%s\n", g->rejected_run, step, g->ckpt ? " (checkpoint written)" : "");
        if (g->ckpt) save_or_rescue(write_checkpoint, v, g->ckpt, "--checkpoint", "ckpt", NULL);
        return 1;
    }
    if (v->step % o->ckpt_every == 0 || last || interrupted || step + 1 == o->stop_at) write_ckpt(g);
    if (interrupted) { fprintf(stderr, "ground_state: interrupted after step %ld%s\n", step, g->ckpt ? ", checkpoint written" : ""); return 130; }
    if (o->stop_at && step + 1 == o->stop_at && !(last && g->r.phase == 2)) {   /* this invocation's share of the run */
        if (!o->quiet) fprintf(stderr, "ground_state: --stop-at %d: stopped%s; --resume continues the run\n", o->stop_at, g->ckpt ? " with its checkpoint" : "");
        return 3;
    }
    return 0;
}

static int train(gs *g) {
    tqs_step_info info;
    signal(SIGINT, on_sigint);
    g->t_start = now();
    while (g->r.phase < 2 && g->o.steps != 0) {
        double t0, dt;
        int rc;
        if (g->r.phase == 0 && (g->ro.skip_plain || g->r.vmc.step >= g->r.vmc.opt.n_steps)) {
            if (begin_psi_sym(g)) return 1;
            continue;
        }
        if (g->r.vmc.step >= g->r.vmc.opt.n_steps) {   /* a re-plan ended the psi_sym phase with this step */
            if (tqs_recipe_next_phase(&g->r)) return 1;
            continue;
        }
        t0 = now();
        if (tqs_recipe_step(&g->r, &info)) {
            fprintf(stderr, "ground_state: step %ld failed: %s\n", g->offset + g->r.vmc.step, tqs_last_error());
            return 1;
        }
        dt = now() - t0;
        g->t_train += dt;
        if ((rc = after_step(g, &info, dt)) != 0) return rc;
    }
    return 0;
}

/* ===================================================================== */
/* Evaluation and report                                                 */
/* ===================================================================== */
typedef struct gs_result {
    tqs_step_info info, sym;     /* the trained state's statistics; --symmetrize: psi_sym's */
    int have_sym, have_obs, have_sym_obs;
    tqs_observables obs, sym_obs;
} gs_result;

/* The trained state from fresh samples (or exactly); --observables of the
 * same samples, their energy from the same amplitudes (--exact: over the
 * enumeration). Over MPI the observables are measured apart, on as many
 * fresh samples. Returns the exit status. */
static int evaluate(gs *g, gs_result *res) {
    gs_options *o = &g->o;
    tqs_vmc *v = &g->r.vmc;
    int one_process = !g->comm || g->comm->size == 1, chains = v->opt.n_chains;
    memset(res, 0, sizeof *res);
    if (g->r.phase == 0 && g->ro.skip_plain && tqs_recipe_next_phase(&g->r)) {   /* --sym-train --steps 0: psi_sym of the model */
        fprintf(stderr, "ground_state: --sym-train: %s\n", tqs_last_error()); return 1;
    }
    if (o->observables && one_process) {
        long room = (long)((o->eval_samples + chains - 1) / chains) * chains;
        if (o->exact ? tqs_observables_init(&res->obs, &g->H.lat, NULL, 0, 1) : obs_init(&res->obs, &g->H.lat, g->o.cfg.b, room)) {
            fprintf(stderr, "ground_state: --observables: %s\n", tqs_last_error()); return 1;
        }
        res->have_obs = 1;
    }
    if (res->have_obs ? tqs_vmc_evaluate_observables(v, o->eval_samples, &res->info, &res->obs) : tqs_vmc_evaluate(v, o->eval_samples, &res->info)) {
        fprintf(stderr, "ground_state: evaluation: %s\n", tqs_last_error()); return 1;
    }
    /* a failed symmetrisation (e.g. an undetermined sector) still reports the
     * plain results, and then exits with status 1 */
    if (o->symmetrize)
        res->have_sym = !evaluate_symmetrized(v, &g->H, o->sym_samples, (uint64_t)o->seed, &res->sym, o->quiet, o->observables ? &res->sym_obs : NULL);
    res->have_sym_obs = res->have_sym && o->observables;
    if (o->observables && !one_process) {
        if (o->exact ? obs_enumeration(&res->obs, &g->H.lat, &v->amp, &v->en)
                     : obs_measure(&res->obs, &g->H.lat, o->cfg.b, &v->amp, o->eval_samples, chains, (uint64_t)o->seed)) {
            fprintf(stderr, "ground_state: --observables: %s\n", tqs_last_error()); return 1;
        }
        res->have_obs = 1;
    }
    if (isnan(g->exact)) g->exact = exact_per_site(&g->H, o->J1, o->J2);
    /* a plain state is checked against the Hamiltonian's symmetries (psi_sym has them by construction) */
    if (is_root && !v->opt.symmetry) check_symmetry(&g->symcheck, &g->H, &v->amp, o->cfg.b, chains, (uint64_t)o->seed);
    return 0;
}

/* "key":x, or "key":null where x is not a number JSON can hold (0/0, inf). */
static void json_number(const char *key, double x) {
    if (isfinite(x)) printf("\"%s\":%.6g,", key, x); else printf("\"%s\":null,", key);
}

static void report_json(gs *g, const gs_result *res) {
    gs_options *o = &g->o;
    const tqs_step_info *in = &res->info;
    const symmetry_check *sc = &g->symcheck;
    int N = g->N, sym = g->r.vmc.opt.symmetry != NULL;
    double e = in->energy / N, exact = g->exact, rel = isfinite(exact) ? fabs((e - exact) / exact) : NAN;
    long steps = o->steps == 0 ? 0 : g->offset + g->r.vmc.opt.n_steps;
    printf("{\"Lx\":%d,\"Ly\":%d,\"J1\":%.10g,\"J2\":%.10g,\"attention\":\"%s\",\"sign\":\"%s\",\"params\":%zu,\"samples\":%d,\"steps\":%ld,"
           "\"plain_steps\":%ld,\"sym_steps\":%ld,\"state\":\"%s\",",
           o->cfg.Lx, o->cfg.Ly, o->J1, o->J2, o->cfg.attention ? "standard" : "factored", sign_name(o->cfg.sign_rule), g->model.n_params,
           o->exact ? (int)g->r.vmc.en.basis.dim : o->eval_samples, steps, sym ? g->offset : steps, sym ? steps - g->offset : 0,
           sym ? "psi_sym" : "psi");
    if (sym) printf("\"group\":\"%s\",", group_flag(g->r.opt.group));
    printf("\"rollbacks\":%d,\"seconds_per_step\":%.4g,\"energy_per_site\":%.10g,\"error\":%.4g,\"variance_per_site\":%.6g,",
           g->rollbacks, g->done_here > 0 ? g->t_train / (double)g->done_here : 0.0, e, in->error / N, in->variance / N);
    json_number("v_score", N * in->variance / (in->energy * in->energy));   /* (null for E = 0) */
    if (isfinite(exact)) printf("\"exact_per_site\":%.10g,", exact); else printf("\"exact_per_site\":null,");
    json_number("relative_error", rel);
    if (isfinite(g->ref)) {   /* a published variational energy: the signed relative difference */
        printf("\"reference_per_site\":%.10g,\"reference\":\"%s\",", g->ref, g->ref_source);
        json_number("relative_to_reference", (e - g->ref) / fabs(g->ref));
    }
    if (res->have_sym) {
        double se = res->sym.energy / N, srel = isfinite(exact) ? fabs((se - exact) / exact) : NAN;
        printf("\"sym_energy_per_site\":%.10g,\"sym_error\":%.4g,", se, res->sym.error / N);
        json_number("sym_v_score", N * res->sym.variance / (res->sym.energy * res->sym.energy));
        json_number("sym_relative_error", srel);
        if (isfinite(g->ref)) json_number("sym_relative_to_reference", (se - g->ref) / fabs(g->ref));
    } else if (o->symmetrize) printf("\"sym_energy_per_site\":null,\"sym_error\":null,\"sym_v_score\":null,\"sym_relative_error\":null,");
    if (res->have_obs) { printf("\"observables\":"); obs_json(stdout, &res->obs); printf(","); }
    if (res->have_sym_obs) { printf("\"sym_observables\":"); obs_json(stdout, &res->sym_obs); printf(","); }
    if (sc->done)
        printf("\"symmetry_check\":{\"generator\":\"%s\",\"expect\":%.6g,\"error\":%.3g,\"broken\":%s,\"wrong_sector\":%s},",
               sc->name, sc->g, sc->err, sc->broken ? "true" : "false", sc->wrong_sector ? "true" : "false");
    printf("\"seconds\":%.2f}\n", now() - g->t_start);
}

static void report_text(gs *g, const gs_result *res) {
    const tqs_step_info *in = &res->info;
    int N = g->N, sym = g->r.vmc.opt.symmetry != NULL;
    double e = in->energy / N, exact = g->exact;
    printf("E/N = %.6f +- %.6f  (%s%s)\n", e, in->error / N, sym ? "psi_sym, " : "", g->o.exact ? "exact enumeration" : "fresh samples");
    printf("variance/N = %.6f   V-score = %.4g\n", in->variance / N, N * in->variance / (in->energy * in->energy));
    if (isfinite(exact))   /* Lanczos to ten digits, or the published six-digit 6x6 value */
        printf("exact E/N = %.*f   relative error = %.2e\n", N <= TQS_ED_MAX_SITES ? 10 : 6, exact, fabs((e - exact) / exact));
    else if (isfinite(g->ref))
        printf("reference E/N = %.7g (best published, variational: %s)   relative difference = %+.2e\n", g->ref, g->ref_source,
               (e - g->ref) / fabs(g->ref));
    if (res->have_sym) {
        double se = res->sym.energy / N;
        printf("symmetrised: E/N = %.6f +- %.6f   V-score = %.4g", se, res->sym.error / N, N * res->sym.variance / (res->sym.energy * res->sym.energy));
        if (isfinite(exact)) printf("   relative error = %.2e", fabs((se - exact) / exact));
        else if (isfinite(g->ref)) printf("   relative to the reference = %+.2e", (se - g->ref) / fabs(g->ref));
        printf("\n");
    }
    if (sym && g->offset > 0) printf("%ld plain + %ld psi_sym steps in %.1f s\n", g->offset, g->r.vmc.step, g->t_train);
    else printf("%ld steps in %.1f s (%.3f s/step)\n", g->done_here, g->t_train, g->done_here > 0 ? g->t_train / (double)g->done_here : 0.0);
    if (res->have_obs) obs_print(stdout, &res->obs, sym ? "observables of psi_sym" : "observables");
    if (res->have_sym_obs) obs_print(stdout, &res->sym_obs, "observables of psi_sym");
}

/* A plain state that breaks a symmetry of the Hamiltonian, said in one line with what to run instead. */
static void report_symmetry(const gs *g) {
    const symmetry_check *sc = &g->symcheck;
    if (sc->wrong_sector)
        fprintf(stderr, "ground_state: the trained state is in another symmetry sector than the exact ground state: "
                "<%s> = %.3f +- %.3f, the opposite sign; run without --plain (the recipe trains psi_sym in the ground "
                "state's sector), or --save this model and --init MODEL --sym-train point\n", sc->name, sc->g, sc->err);
    else if (sc->broken && g->r.sector_fallback == 2 && g->N > TQS_ED_MAX_SITES)   /* (no sector could be read from the samples) */
        fprintf(stderr, "ground_state: the trained state breaks the lattice's symmetry: <%s> = %.3f +- %.3f, and its samples "
                "showed no sector to train psi_sym in: it mixes sectors, likely far from the ground state (train longer)\n", sc->name, sc->g, sc->err);
    else if (sc->broken && g->r.sector_fallback == 2)   /* (the ground state itself is in no one sector) */
        fprintf(stderr, "ground_state: the trained state breaks the lattice's symmetry: <%s> = %.3f +- %.3f; the ground "
                "state is degenerate here (in no one sector), so such a mixture can be a ground state\n", sc->name, sc->g, sc->err);
    else if (sc->broken)
        fprintf(stderr, "ground_state: the trained state breaks the lattice's symmetry: <%s> = %.3f +- %.3f (1 in a state "
                "of one sector: about %.0f%% of it lies in other sectors); run without --plain (the recipe), or --save "
                "this model and --init MODEL --sym-train point\n", sc->name, sc->g, sc->err, 50 * (1 - fabs(sc->g)));
    else if (sc->done && !g->o.quiet)
        fprintf(stderr, "symmetry check: the state keeps the lattice's symmetries (worst <%s> = %.4f +- %.4f)\n", sc->name, sc->g, sc->err);
}

/* ===================================================================== */
/* Outputs                                                               */
/* ===================================================================== */
/* The per-step outputs, continued from the checkpoint's step when resumed. */
static int open_outputs(gs *g) {
    gs_options *o = &g->o;
    long step = g->offset + g->r.vmc.step;   /* steps already done */
    int N = g->N;
    if (o->log_path && step > 0 && trim_log(o->log_path, step)) {
        fprintf(stderr, "ground_state: --log: cannot rewrite '%s' up to the checkpoint's step %ld\n", o->log_path, step);
        return 2;
    }
    if (o->log_path) {
        if (!(g->log = fopen(o->log_path, step > 0 ? "a" : "w"))) { fprintf(stderr, "ground_state: --log: cannot open '%s'\n", o->log_path); return 2; }
        if (step == 0) fprintf(g->log, "step,energy_per_site,error,variance_per_site,acceptance,rhat,lr,diag_shift,solver,seconds,input_dependence\n");
    }
    if (o->json_log_path && step > 0 && json_log_resume(&g->jlog, o->json_log_path, step)) {
        fprintf(stderr, "ground_state: --json-log: '%s' is not a log this program wrote\n", o->json_log_path);
        return 2;
    }
    if (o->att_every && g->model.cfg.attention != TQS_ATTN_STANDARD) flags_die("--attention-log: the --init model has factored attention");
    if (o->att_every) {
        g->dep = (double *)malloc(sizeof(double) * g->model.cfg.n_layers * g->model.cfg.h);
        g->dep_buf = (int8_t *)malloc((size_t)256 * N);
        if (!g->dep || !g->dep_buf || tqs_vit_ws_init(&g->att_ws, &g->model, 1, 0)) { fprintf(stderr, "ground_state: --attention-log: out of memory\n"); return 1; }
    }
    if (o->plot && !o->log_path) {   /* this run's curve, kept in memory */
        g->hist_cap = 1024;
        g->hist_x = (double *)malloc(sizeof(double) * g->hist_cap); g->hist_y = (double *)malloc(sizeof(double) * g->hist_cap);
        g->hist_e = (double *)malloc(sizeof(double) * g->hist_cap);
        if (!g->hist_x || !g->hist_y || !g->hist_e) { fprintf(stderr, "ground_state: --plot: out of memory\n"); return 1; }
    }
    return 0;
}

/* --plot without logs: this run's curve, from its tenth step's energy down. */
static int plot_run(gs *g, const char *title) {
    plot_series ps;
    plot_options po;
    char full_title[256];
    double lo = isfinite(g->exact) ? g->exact : g->ref, hi = g->done_here > 0 ? g->hist_y[g->done_here / 10] : NAN;
    long i;
    for (i = 0; i < g->done_here; i++) if (!(g->hist_y[i] >= lo)) lo = g->hist_y[i];
    ps.label = "this run"; ps.x = g->hist_x; ps.y = g->hist_y; ps.err = g->hist_e; ps.n = (int)g->done_here;
    memset(&po, 0, sizeof po);
    po.title = title; po.xlabel = "optimisation step"; po.ylabel = "energy per site E/N";
    if (isfinite(g->exact)) { po.ref = g->exact; po.ref_label = "exact"; }
    else if (isfinite(g->ref)) { po.ref = g->ref; po.ref_label = "best published"; }
    if (isfinite(lo) && hi > lo) {   /* as in plot_logs */
        po.ymin = lo - 0.03 * (hi - lo); po.ymax = hi;
        po.title = clip_title(full_title, sizeof full_title, title, &ps, 1, hi);
    }
    if (plot_line_svg(g->o.plot, &ps, 1, &po)) { fprintf(stderr, "ground_state: --plot: %s\n", plot_last_error()); return 1; }
    return 0;
}

/* The files written after the results are printed: a failed one loses
 * nothing else (the model goes to another file, named on stderr). */
static int write_results(gs *g, const gs_result *res) {
    gs_options *o = &g->o;
    int status = 0;
    char t[128];
    if (o->save && save_or_rescue(write_model, &g->model, o->save, "--save", "tqs", NULL)) status = 1;
    if (res->have_obs && o->obs_svg_prefix) {
        snprintf(t, sizeof t, "%dx%d, J2 = %g", o->cfg.Lx, o->cfg.Ly, o->J2);
        if (obs_svg(o->obs_svg_prefix, res->have_sym_obs ? &res->sym_obs : &res->obs, t)) { fprintf(stderr, "ground_state: --obs-svg: %s\n", plot_last_error()); status = 1; }
    }
    if (o->plot) {
        snprintf(t, sizeof t, "%dx%d J1-J2, J2 = %g, %s ViT", o->cfg.Lx, o->cfg.Ly, o->J2, o->cfg.attention ? "standard" : "factored");
        if (o->log_path ? plot_logs(o->plot, &o->log_path, 1, g->exact, t) : plot_run(g, t)) status = 1;
    }
    return status;
}

/* ===================================================================== */
/* The run: parse, set up, phases, evaluation, report                    */
/* ===================================================================== */
static int start(gs *g) {
    gs_options *o = &g->o;
    int rc;
    if (tqs_recipe_init(&g->r, &g->H, &g->model, &g->ro)) { fprintf(stderr, "ground_state: %s\n", tqs_last_error()); return 2; }
    if (o->resume && tqs_recipe_load_checkpoint(&g->r, o->resume)) { fprintf(stderr, "ground_state: --resume: %s\n", tqs_last_error()); return 2; }
    if (g->r.phase == 1 && !g->ro.skip_plain) g->offset = g->ro.plain_steps;   /* resumed in psi_sym */
    if ((rc = open_outputs(g)) != 0) return rc;
    if (g->couplings_msg[0] && is_root && (g->warm || !o->quiet)) fprintf(stderr, "%s\n", g->couplings_msg);
    if (!o->quiet)
        fprintf(stderr, "%dx%d J2=%g, %s ViT%s d=%d h=%d layers=%d: %zu parameters, %s, solver %s, %d thread%s\n",
                o->cfg.Lx, o->cfg.Ly, o->J2, o->cfg.attention ? "standard" : "factored",
                o->cfg.sign_rule ? " times Marshall's sign" : "", o->cfg.d, o->cfg.h, o->cfg.n_layers,
                g->model.n_params, o->exact ? "exact enumeration" : "sampling", tqs_solver_name(g->r.vmc.sr_ws.solver),
                tqs_get_threads(), tqs_get_threads() == 1 ? "" : "s");
    if (!o->quiet && o->plot && !o->log_path)
        fprintf(stderr, "--plot: no LOG.csv arguments were given, so this run trains and then plots its own curve to '%s'\n", o->plot);
    g->print_every = o->print_every;
    if (g->r.phase == 0 && !g->ro.skip_plain && o->steps != 0) {
        /* the exact energy the report compares with (Lanczos: 16 s on 4x6) is
         * part of a timed run's budget, so it is computed before the plan */
        int last = g->ro.group == TQS_RECIPE_PLAIN;
        double share = last ? 1 : o->plain_share > 0 ? o->plain_share : tqs_recipe_for_budget(o->cfg.Lx, o->cfg.Ly, o->time_limit).plain_share;
        if (o->time_limit > 0 && !o->resume) {
            g->exact = exact_per_site(&g->H, o->J1, o->J2);
            g->deadline = g->t_begin + 60.0 * o->time_limit * share;
        }
        print_phase(g);
        if (g->deadline > 0 && (rc = plan_phase(g, last)) != 0) return rc;
    }
    if (!g->print_every) g->print_every = g->r.vmc.opt.n_steps <= 100 ? 1 : g->r.vmc.opt.n_steps / 100;
    return 0;
}

static int run(int argc, char **argv, const tqs_comm *comm) {
    gs *g = (gs *)calloc(1, sizeof *g);
    gs_result *res = (gs_result *)calloc(1, sizeof *res);
    int status;
    if (!g || !res) { fprintf(stderr, "ground_state: out of memory\n"); return 1; }
    flags_prog = "ground_state";
    g->t_begin = now(); g->comm = comm; g->exact = NAN; g->dep_avg = NAN;
    if ((status = parse_flags(&g->o, argc, argv)) != 0 || (status = set_up(g)) != 0) return status;
    g->ref = reference_per_site(&g->H, g->o.J1, g->o.J2, &g->ref_source);
    if (g->o.n_logs) {   /* plot those logs only */
        char title[128];
        snprintf(title, sizeof title, "%dx%d J1-J2, J2 = %g", g->o.cfg.Lx, g->o.cfg.Ly, g->o.J2);
        status = plot_logs(g->o.plot, g->o.logs, g->o.n_logs, exact_per_site(&g->H, g->o.J1, g->o.J2), title) ? 1 : 0;
    } else if ((status = start(g)) == 0 && (status = train(g)) == 0) {
        if (g->log) { fclose(g->log); g->log = NULL; }
        if (g->o.json_log_path && g->jlog.n && json_log_write(&g->jlog, g->o.json_log_path)) {
            fprintf(stderr, "ground_state: --json-log: cannot write '%s'\n", g->o.json_log_path);
            status = 1;
        }
        if (status == 0) status = evaluate(g, res);
        if (status == 0 && is_root) {
            if (g->o.json) report_json(g, res); else report_text(g, res);
            report_symmetry(g);
        }
        /* the trained model and its files are written even when --symmetrize
         * found no sector: only psi_sym's numbers are missing (exit status 1) */
        if (status == 0) status = write_results(g, res);
        if (status == 0 && g->o.symmetrize && !res->have_sym) status = 1;
        if (g->ckpt_failed && status == 0) status = 1;   /* the run finished, but not everything went where asked */
    }
    if (g->log) fclose(g->log);
    if (g->o.json_log_path && g->jlog.n && status != 0 && json_log_write(&g->jlog, g->o.json_log_path))
        fprintf(stderr, "ground_state: --json-log: cannot write '%s'\n", g->o.json_log_path);
    if (g->o.att_every && g->dep) tqs_vit_ws_free(&g->att_ws);
    if (res->have_obs) tqs_observables_free(&res->obs);
    if (res->have_sym_obs) tqs_observables_free(&res->sym_obs);
    json_log_free(&g->jlog);
    free(g->dep); free(g->dep_buf); free(g->hist_x); free(g->hist_y); free(g->hist_e);
    free(g->o.logs); free(g->o.ck); free(g->o.eargv); free(g->o.stored); free(g->note);
    tqs_recipe_free(&g->r);
    tqs_vit_free(&g->model);
    tqs_hamiltonian_free(&g->H);
    free(g); free(res);
    return status;
}

int main(int argc, char **argv) {
#ifdef TQS_MPI
    tqs_mpi mpi;
    const tqs_comm *comm = tqs_mpi_init(&mpi, &argc, &argv);
    int status;
    is_root = comm->rank == 0;
    status = run(argc, argv, comm);
    if (status == 3) { tqs_mpi_finalize(&mpi, 0); return 3; }   /* --stop-at: every process stopped after the same step */
    return tqs_mpi_finalize(&mpi, status);
#else
    return run(argc, argv, NULL);
#endif
}
