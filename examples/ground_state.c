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
static int json_log_init(json_log *j, long cap) {
    memset(j, 0, sizeof *j);
    j->cap = cap > 0 ? cap : 1;
    j->it = (double *)calloc((size_t)j->cap * 7, sizeof(double));
    if (!j->it) return 1;
    j->re = j->it + j->cap; j->im = j->re + j->cap; j->sigma = j->im + j->cap; j->var = j->sigma + j->cap;
    j->rhat = j->var + j->cap; j->tau = j->rhat + j->cap;
    return 0;
}
static void json_log_add(json_log *j, const tqs_step_info *in) {
    if (j->n >= j->cap) return;
    j->it[j->n] = (double)in->step; j->re[j->n] = in->energy; j->im[j->n] = in->energy_imag; j->sigma[j->n] = in->error;
    j->var[j->n] = in->variance; j->rhat[j->n] = in->rhat; j->tau[j->n] = in->tau - 0.5;
    j->n++;
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
 * tqs_vmc_options_defaults): one definition for the programs and the API. */
static void print_usage(void) {
    tqs_vit_config c;
    tqs_vmc_options o;
    memset(&c, 0, sizeof c); memset(&o, 0, sizeof o);
    tqs_vit_config_defaults(&c); tqs_vmc_options_defaults(&o);
    printf("usage: ground_state [flags]\n"
           "  the most accurate protocol measured (examples/README.md, \"Time to accuracy\"; make run; tqs_recipe):\n"
           "  a plain phase, then psi_sym over the point group in the ground state's sector, trained on from it:\n"
           "    ground_state --samples 512 --time-limit T1 --save p.tqs     (T1: a third of the budget on 4x4)\n"
           "    ground_state --init p.tqs --sym-train point --samples 512 --lr 0.1 --lr-final 0.01 --max-distance 0.1 --time-limit T2\n"
           "  lattice   --L n | --Lx n --Ly n (4; with --init or --resume: the model's)   --J1 x (1)   --J2 x (0.5; with --init: the model's)\n"
           "  model     --patch b (%d)  --d n (%d)  --heads n (%d)  --layers n (%d)  --ff n (%d)\n"
           "            --attention factored|standard (factored)  --init MODEL (start from a model file: its lattice, shape and couplings)\n",
           c.b, c.d, c.h, c.n_layers, c.ff);
    printf("  sampling  --samples n (%d)  --chains n (samples, at most 1024)  --sweeps n (%d)  --thermalize n (%d)\n"
           "            --sample-power p (%g up to 24 sites, %g above: training samples |psi|^p, reweighted; below 2\n"
           "                             they also visit where |psi| is small)\n"
           "            --exact (enumerate the Sz=0 basis instead, N <= 24)\n"
           "  time      --time-limit MINUTES (the number of steps, and so the schedules, from the measured time\n"
           "                             per step, so that the run and its evaluation end within MINUTES)\n",
           o.n_samples, o.sweeps, o.thermalize, tqs_vmc_default_sample_power(24), tqs_vmc_default_sample_power(25));
    printf("  SR        --steps n (%d)  --lr x (%g)  --lr-final x (lr/%g)  --diag-shift x (%g)  --diag-shift-final x (= shift)\n"
           "            --solver auto|parameter|sample|cg (auto)  --max-distance x (%g; 0: off; cap on lr*sqrt(d^T S d))\n"
           "            --momentum x (%g; 0: off; SPRING, the solve pulled towards x times the last update)\n"
           "            --schedule exp|cosine (exp: of lr and shift, to their final values)  --warmup n (0: steps of linear lr warm-up)\n",
           o.n_steps, o.lr, o.lr / o.lr_final, o.diag_shift, o.max_distance, o.momentum);
    printf("  output    --log FILE.csv  --save MODEL  --checkpoint FILE  --checkpoint-every k (50)\n"
           "            --resume FILE (continue the run in FILE: it keeps the run's flags; output flags may be added,\n"
           "                             a flag that changes the run is refused)\n"
           "            --stop-at k (end this invocation after step k with its checkpoint, exit status 3: a long run\n"
           "                             in slices of a batch queue; --resume FILE continues it)\n"
           "            --eval-samples n (16384)  --print-every k  --json  --quiet\n"
           "            --json-log FILE (per step, NetKet's JsonLog layout for \"Energy\": iters, Mean, Sigma, Variance, R_hat, TauCorr)\n"
           "  physics   --observables (after training, on the evaluation's samples: C(r), S(q), dimer correlations;\n"
           "                             printed, in --json, of psi_sym too with --symmetrize)  --obs-svg PREFIX (PREFIX-sq.svg, -corr.svg)\n"
           "  paper     --symmetrize (also evaluate psi_sym, projected on the ground state's sector)  --sym-samples n (1024)\n"
           "            --sym-train full|point|translations (train psi_sym itself: the whole group; the b*b translations\n"
           "                             inside a patch and the point group, without the flip; or those translations alone)\n"
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

static int run(int argc, char **argv, const tqs_comm *comm) {
    tqs_vit_config cfg;
    tqs_vmc_options opt;
    tqs_hamiltonian H;
    tqs_vit model;
    tqs_vmc vmc;
    tqs_step_info info;
    const char *att = "factored", *solver = "auto", *log_path = NULL, *save = NULL, *init = NULL;
    const char *ckpt = NULL, *resume = NULL, *plot = NULL, *sym_train = NULL, *schedule = "exp";
    tqs_symmetry sym_group;
    const char **logs = NULL;   /* CSV logs to plot (argv's positional arguments) */
    double J1 = 1.0, J2 = 0.5, t_start, t_train = 0, exact = NAN, time_limit = 0, t_begin = now();
    double t_avg = 0;            /* --time-limit: the recent time per step, for re-planning */
    double t_therm = 0;          /* --time-limit with --sample-power: the evaluation thermalises its chains to |psi|^2 again */
    int max_steps = 0;           /* --time-limit: the most steps a re-plan may grow the run to */
    int i, seed = 1, threads = 0, exact_mode = 0, json = 0, quiet = 0, ckpt_every = 50, eval_samples = 16384;
    int print_every = 0, rc, status = 0, N, max_rejected = 5, rejected_run = 0, symmetrize = 0, sym_samples = 1024, att_every = 0, n_logs = 0;
    int given_b = 0, given_d = 0, given_h = 0, given_layers = 0, given_ff = 0, given_att = 0, given_lattice = 0;   /* for --init, --resume */
    int given_J1 = 0, given_J2 = 0, warm = 0;    /* --init: else the model's couplings; warm: other ones */
    char couplings_msg[256] = "";                /* --init: what was decided, printed once the flags are checked */
    symmetry_check symcheck;                     /* the trained plain state against the lattice's symmetries */
    double max_distance = NAN, momentum = NAN;   /* NAN: not given (the library's default); 0: off */
    int thermalize = -1;                         /* -1: not given */
    tqs_checkpoint_info *ck = NULL;              /* --resume: the run it continues */
    char **eargv = NULL, *note = NULL, *stored = NULL, steps_arg[32];
    int observables = 0, have_obs = 0, have_sym_obs = 0, stop_at = 0, steps_flag = -1;   /* --steps 0: evaluate only */
    const char *obs_svg_prefix = NULL, *json_log_path = NULL;
    tqs_observables obs, sym_obs;
    json_log jlog;
    double *hist_x = NULL, *hist_y = NULL, *hist_e = NULL, *dep = NULL, dep_avg = NAN;
    int8_t *dep_buf = NULL;
    tqs_vit_ws att_ws;
    long done_here = 0;
    int ckpt_failed = 0;
    char ckpt_rescue[512];
    FILE *log = NULL;

    flags_prog = "ground_state";
    memset(&symcheck, 0, sizeof symcheck);
    /* zero: the library's defaults (tqs_vit_config_defaults, tqs_vmc_options_defaults) */
    memset(&cfg, 0, sizeof cfg); memset(&opt, 0, sizeof opt);
    cfg.Lx = cfg.Ly = 4;
    /* --resume FILE: the checkpoint keeps the flags of its run (tqs_vmc_options.note);
     * they come first, then its step count, then the flags given now, so that an
     * output flag given now wins and a flag that changes the run is refused when
     * the checkpoint is loaded (tqs_vmc_load_checkpoint compares the runs) */
    for (i = 1; i + 1 < argc; i++) if (!strcmp(argv[i], "--resume")) resume = argv[i + 1];
    for (i = 1; i < argc && resume; i++)
        if (!strcmp(argv[i], "--time-limit")) flags_die("--time-limit: a resumed run keeps the step count of the run it continues");
    if (resume) {
        int n_stored = 0, k;
        char *q;
        ck = (tqs_checkpoint_info *)malloc(sizeof *ck);
        if (!ck) { fprintf(stderr, "ground_state: out of memory\n"); return 1; }
        if (tqs_vmc_checkpoint_info(ck, resume)) { fprintf(stderr, "ground_state: --resume: %s\n", tqs_last_error()); return 2; }
        if (ck->has_run) {
            stored = (char *)malloc(strlen(ck->note) + 1);
            eargv = (char **)malloc(sizeof(char *) * ((size_t)argc + strlen(ck->note) / 2 + 4));
            if (!stored || !eargv) { fprintf(stderr, "ground_state: out of memory\n"); return 1; }
            strcpy(stored, ck->note);
            eargv[0] = argv[0];
            for (q = stored; *stored && q; ) {   /* one argument per line */
                eargv[1 + n_stored++] = q;
                q = strchr(q, '\n');
                if (q) *q++ = 0;
            }
            snprintf(steps_arg, sizeof steps_arg, "%d", ck->opt.n_steps);
            eargv[1 + n_stored++] = (char *)"--steps"; eargv[1 + n_stored++] = steps_arg;
            for (k = 1; k < argc; k++) eargv[n_stored + k] = argv[k];
            argc += n_stored; argv = eargv;
        }
    }
    if (!(logs = (const char **)calloc((size_t)argc, sizeof(char *)))) { fprintf(stderr, "ground_state: out of memory\n"); return 1; }
    for (i = 1; i < argc; i++) {
        given_b |= !strcmp(argv[i], "--patch"); given_d |= !strcmp(argv[i], "--d"); given_h |= !strcmp(argv[i], "--heads");
        given_layers |= !strcmp(argv[i], "--layers"); given_ff |= !strcmp(argv[i], "--ff"); given_att |= !strcmp(argv[i], "--attention");
        given_lattice |= !strcmp(argv[i], "--L") || !strcmp(argv[i], "--Lx") || !strcmp(argv[i], "--Ly");
        given_J1 |= !strcmp(argv[i], "--J1"); given_J2 |= !strcmp(argv[i], "--J2");
        if (flags_lattice(argc, argv, &i, &cfg.Lx, &cfg.Ly) || flags_real(argc, argv, &i, "--J1", &J1, -1e3, 1e3) ||
            flags_real(argc, argv, &i, "--J2", &J2, -1e3, 1e3) || flags_int(argc, argv, &i, "--patch", &cfg.b, 1, 16) ||
            flags_int(argc, argv, &i, "--d", &cfg.d, 1, 4096) || flags_int(argc, argv, &i, "--heads", &cfg.h, 1, 4096) ||
            flags_int(argc, argv, &i, "--layers", &cfg.n_layers, 1, 64) || flags_int(argc, argv, &i, "--ff", &cfg.ff, 1, 64) ||
            flags_str(argc, argv, &i, "--attention", &att) || flags_str(argc, argv, &i, "--init", &init) ||
            flags_int(argc, argv, &i, "--samples", &opt.n_samples, 1, 1 << 24) ||
            flags_int(argc, argv, &i, "--chains", &opt.n_chains, 1, 1 << 20) ||
            flags_int(argc, argv, &i, "--sweeps", &opt.sweeps, 1, 1 << 20) ||
            flags_int(argc, argv, &i, "--thermalize", &thermalize, 0, 1 << 20) ||
            flags_bool(argv, i, "--exact", &exact_mode) ||
            flags_int(argc, argv, &i, "--steps", &steps_flag, 0, 100000000) ||
            flags_real(argc, argv, &i, "--lr", &opt.lr, 1e-12, 1e3) || flags_real(argc, argv, &i, "--lr-final", &opt.lr_final, 1e-12, 1e3) ||
            flags_real(argc, argv, &i, "--diag-shift", &opt.diag_shift, 1e-14, 1e6) ||
            flags_real(argc, argv, &i, "--diag-shift-final", &opt.diag_shift_final, 1e-14, 1e6) ||
            flags_str(argc, argv, &i, "--solver", &solver) ||
            flags_real(argc, argv, &i, "--max-distance", &max_distance, 0, 1e6) ||
            flags_real(argc, argv, &i, "--momentum", &momentum, 0, 0.999) ||
            flags_real(argc, argv, &i, "--sample-power", &opt.sample_power, 0.05, 2) ||
            flags_real(argc, argv, &i, "--time-limit", &time_limit, 0.01, 1e6) ||
            flags_str(argc, argv, &i, "--schedule", &schedule) || flags_int(argc, argv, &i, "--warmup", &opt.warmup, 0, 100000000) ||
            flags_str(argc, argv, &i, "--log", &log_path) ||
            flags_str(argc, argv, &i, "--save", &save) || flags_str(argc, argv, &i, "--checkpoint", &ckpt) ||
            flags_int(argc, argv, &i, "--checkpoint-every", &ckpt_every, 1, 100000000) ||
            flags_str(argc, argv, &i, "--resume", &resume) || flags_int(argc, argv, &i, "--stop-at", &stop_at, 1, 100000000) ||
            flags_int(argc, argv, &i, "--eval-samples", &eval_samples, 1, 1 << 26) ||
            flags_int(argc, argv, &i, "--print-every", &print_every, 1, 100000000) ||
            flags_bool(argv, i, "--json", &json) || flags_bool(argv, i, "--quiet", &quiet) ||
            flags_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            flags_int(argc, argv, &i, "--threads", &threads, 1, 1024) ||
            flags_bool(argv, i, "--symmetrize", &symmetrize) || flags_str(argc, argv, &i, "--sym-train", &sym_train) ||
            flags_int(argc, argv, &i, "--sym-samples", &sym_samples, 16, 1 << 24) ||
            flags_int(argc, argv, &i, "--attention-log", &att_every, 1, 100000000) ||
            flags_int(argc, argv, &i, "--max-rejected", &max_rejected, 1, 100000000) || flags_str(argc, argv, &i, "--plot", &plot) ||
            flags_bool(argv, i, "--observables", &observables) ||
            flags_str(argc, argv, &i, "--obs-svg", &obs_svg_prefix) || flags_str(argc, argv, &i, "--json-log", &json_log_path)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { print_usage(); return 0; }
        if (argv[i][0] == '-') flags_die("unknown flag '%s' (try --help)", argv[i]);
        logs[n_logs++] = argv[i];   /* a CSV log to plot */
    }
    /* every rule checked before anything is allocated or written */
    if (init && tqs_vit_load(&model, init)) { fprintf(stderr, "ground_state: --init: %s\n", tqs_last_error()); return 2; }
    if (init)   /* the couplings the model was trained at, unless the flags say otherwise (then: a warm start, said) */
        warm = flags_model_couplings(couplings_msg, sizeof couplings_msg, &J1, &J2, given_J1, given_J2, model.J1, model.J2,
                                     "--init", "a warm start");
    if (init || ck) {   /* the lattice of the model file or the checkpoint, unless the flags say otherwise */
        const tqs_vit_config *mc = init ? &model.cfg : &ck->cfg;
        if (given_lattice && (mc->Lx != cfg.Lx || mc->Ly != cfg.Ly))
            flags_die("%s: the model is for %dx%d, the flags say %dx%d", init ? "--init" : "--resume", mc->Lx, mc->Ly, cfg.Lx, cfg.Ly);
        cfg.Lx = mc->Lx; cfg.Ly = mc->Ly;
    }
    if (!isnan(max_distance)) opt.max_distance = max_distance > 0 ? max_distance : -1;   /* the library's "off" */
    if (!isnan(momentum)) opt.momentum = momentum > 0 ? momentum : -1;
    if (thermalize >= 0) opt.thermalize = thermalize > 0 ? thermalize : -1;
    if (steps_flag >= 0) opt.n_steps = steps_flag > 0 ? steps_flag : 1;   /* (a run of one step, none of them taken) */
    tqs_vit_config_defaults(&cfg);
    tqs_vmc_options_defaults(&opt);
    flags_check_lattice(cfg.Lx, cfg.Ly);
    if (!strcmp(att, "factored")) cfg.attention = TQS_ATTN_FACTORED;
    else if (!strcmp(att, "standard")) cfg.attention = TQS_ATTN_STANDARD;
    else flags_die("--attention: must be factored or standard (got '%s')", att);
    if (!strcmp(solver, "auto")) opt.sr.solver = TQS_SOLVER_AUTO;
    else if (!strcmp(solver, "parameter")) opt.sr.solver = TQS_SOLVER_PARAMETER;
    else if (!strcmp(solver, "sample")) opt.sr.solver = TQS_SOLVER_SAMPLE;
    else if (!strcmp(solver, "cg")) opt.sr.solver = TQS_SOLVER_CG;
    else flags_die("--solver: must be auto, parameter, sample or cg (got '%s')", solver);
    if (cfg.Lx % cfg.b || cfg.Ly % cfg.b) flags_die("--patch: %d must divide Lx = %d and Ly = %d", cfg.b, cfg.Lx, cfg.Ly);
    if (cfg.d % cfg.h) flags_die("--heads: %d must divide --d %d", cfg.h, cfg.d);
    N = cfg.Lx * cfg.Ly;
    if (exact_mode && N > TQS_ED_MAX_SITES) flags_die("--exact: needs N <= %d sites (got %dx%d)", TQS_ED_MAX_SITES, cfg.Lx, cfg.Ly);
    if (exact_mode && opt.sample_power > 0 && opt.sample_power != 2) flags_die("--sample-power: nothing is sampled with --exact");
    if (!exact_mode && opt.n_chains > opt.n_samples) flags_die("--chains: %d chains for %d samples; need chains <= samples", opt.n_chains, opt.n_samples);
    if (!exact_mode && opt.n_chains > eval_samples) flags_die("--eval-samples: %d is fewer than --chains %d", eval_samples, opt.n_chains);
    if (n_logs && !plot) flags_die("unexpected argument '%s' (CSV logs are plotted with --plot FILE.svg)", logs[0]);
    if (att_every && cfg.attention != TQS_ATTN_STANDARD && !init)
        flags_die("--attention-log: needs --attention standard (factored attention does not depend on the input)");
    if (sym_train && strcmp(sym_train, "full") && strcmp(sym_train, "translations") && strcmp(sym_train, "point"))
        flags_die("--sym-train: must be full, point or translations (got '%s')", sym_train);
    if (!strcmp(schedule, "exp")) opt.schedule = TQS_SCHEDULE_EXP;
    else if (!strcmp(schedule, "cosine")) opt.schedule = TQS_SCHEDULE_COSINE;
    else flags_die("--schedule: must be exp or cosine (got '%s')", schedule);
    if (opt.warmup > 0 && opt.warmup >= opt.n_steps && time_limit <= 0) flags_die("--warmup: %d steps in a run of --steps %d", opt.warmup, opt.n_steps);
    if (sym_train && symmetrize) flags_die("--symmetrize: the --sym-train run's energies are already those of psi_sym");
    if (symmetrize && !exact_mode && (opt.n_chains < 32 ? opt.n_chains : 32) > sym_samples)
        flags_die("--sym-samples: %d is fewer than the %d chains of the symmetrised evaluation", sym_samples, opt.n_chains < 32 ? opt.n_chains : 32);
    if (obs_svg_prefix && !observables) flags_die("--obs-svg: needs --observables");
    if (stop_at && !ckpt) flags_die("--stop-at: needs --checkpoint FILE (or --resume FILE of a run that has one) to continue from");
    opt.exact = exact_mode; opt.seed = (uint64_t)seed;
    if (!(note = (char *)malloc(TQS_NOTE_MAX)) || build_note(note, TQS_NOTE_MAX, argc, argv))
        flags_die("the flags are too long to keep in a checkpoint (at most %d characters)", TQS_NOTE_MAX - 1);
    if (init && (!given_J1 || !given_J2)) {   /* couplings taken from the model: a --resume must find them in the note */
        size_t n = strlen(note);
        int k = snprintf(note + n, TQS_NOTE_MAX - n, "%s--J1\n%.17g\n--J2\n%.17g", n ? "\n" : "", J1, J2);
        if (k < 0 || (size_t)k >= TQS_NOTE_MAX - n) flags_die("the flags are too long to keep in a checkpoint (at most %d characters)", TQS_NOTE_MAX - 1);
    }
    opt.note = note;
    opt.memory_limit = 0.8 * flags_physical_memory();   /* tqs_vmc_init refuses plans above it */
    if (!init && 3.0 * 8.0 * (double)tqs_vit_param_count(&cfg) > opt.memory_limit)
        flags_die("--d/--layers/--ff: %.3g parameters need %.3g GB with their buffers, more than this machine's %.3g GB; use a smaller model",
                  (double)tqs_vit_param_count(&cfg), 24e-9 * (double)tqs_vit_param_count(&cfg), flags_physical_memory() * 1e-9);
    if (threads) tqs_set_threads(threads);
    opt.comm = comm;
    if (!is_root) {   /* the other processes compute; process 0 alone prints and writes */
        quiet = 1; json = 0; log_path = NULL; save = NULL; plot = NULL; att_every = 0; json_log_path = NULL; obs_svg_prefix = NULL;
    }
    /* every output path, before any work: a run must not end with nowhere to put its result */
    flags_check_output("--log", log_path); flags_check_output("--save", save);
    flags_check_output("--checkpoint", ckpt); flags_check_output("--plot", plot); flags_check_output("--json-log", json_log_path);
    if (obs_svg_prefix) {
        char probe[1024];
        snprintf(probe, sizeof probe, "%s-sq.svg", obs_svg_prefix);
        flags_check_output("--obs-svg", probe);
    }

    if (tqs_hamiltonian_init(&H, cfg.Lx, cfg.Ly, J1, J2)) flags_die("%s", tqs_last_error());
    if (n_logs) {   /* plot only */
        char title[128];
        snprintf(title, sizeof title, "%dx%d J1-J2, J2 = %g", cfg.Lx, cfg.Ly, J2);
        status = plot_logs(plot, logs, n_logs, exact_per_site(&H, J1, J2), title);
        tqs_hamiltonian_free(&H); free(logs);
        return status ? 1 : 0;
    }
    if (init || ck) {
        /* a model flag given with --init or --resume must agree with the model, or it would be silently ignored */
        {
            const tqs_vit_config *mc = init ? &model.cfg : &ck->cfg;
            const char *from = init ? "--init" : "--resume";
            if (given_b && mc->b != cfg.b) flags_die("%s: the model has --patch %d, the flags say %d", from, mc->b, cfg.b);
            if (given_d && mc->d != cfg.d) flags_die("%s: the model has --d %d, the flags say %d", from, mc->d, cfg.d);
            if (given_h && mc->h != cfg.h) flags_die("%s: the model has --heads %d, the flags say %d", from, mc->h, cfg.h);
            if (given_layers && mc->n_layers != cfg.n_layers)
                flags_die("%s: the model has --layers %d, the flags say %d", from, mc->n_layers, cfg.n_layers);
            if (given_ff && mc->ff != cfg.ff) flags_die("%s: the model has --ff %d, the flags say %d", from, mc->ff, cfg.ff);
            if (given_att && mc->attention != cfg.attention)
                flags_die("%s: the model has --attention %s, the flags say %s", from, mc->attention ? "standard" : "factored",
                          cfg.attention ? "standard" : "factored");
        }
        if (init) cfg = model.cfg;
        else {   /* the checkpoint's parameters replace these when it is loaded */
            cfg = ck->cfg;
            if (tqs_vit_init(&model, &cfg, (uint64_t)seed)) flags_die("%s", tqs_last_error());
        }
    } else if (tqs_vit_init(&model, &cfg, (uint64_t)seed)) flags_die("%s", tqs_last_error());
    if (tqs_vmc_init(&vmc, &H, &model, &opt)) {
        fprintf(stderr, "ground_state: %s\n", tqs_last_error());
        return 2;
    }
    memset(&sym_group, 0, sizeof sym_group);
    if (sym_train) {   /* the sector from the plain model (or exactly), then the run on psi_sym */
        rc = !strcmp(sym_train, "full") ? tqs_symmetry_init(&sym_group, cfg.Lx, cfg.Ly, cfg.b)
           : !strcmp(sym_train, "point") ? tqs_symmetry_init_point(&sym_group, cfg.Lx, cfg.Ly, cfg.b)
                                         : tqs_symmetry_init_translations(&sym_group, cfg.Lx, cfg.Ly, cfg.b);
        if (!rc && ck && ck->has_run && ck->symmetry)   /* a resumed run keeps its sector */
            rc = tqs_symmetry_set_characters(&sym_group, ck->chi_x, ck->chi_y, ck->chi_point, ck->chi_flip);
        else if (!rc) rc = find_sector(&sym_group, &H, &vmc.amp, opt.n_chains, (uint64_t)seed, &exact);
        tqs_vmc_free(&vmc);
        opt.symmetry = &sym_group;
        if (rc || tqs_vmc_init(&vmc, &H, &model, &opt)) {
            fprintf(stderr, "ground_state: --sym-train: %s\n", tqs_last_error());
            return 2;
        }
        if (!quiet) print_sector(&sym_group, "--sym-train: training psi_sym");
    }
    /* the exact energy the report compares with (Lanczos: 16 s on 4x6, done
     * once with the sector's for --sym-train) is part of a timed run's
     * budget, so it is computed before the plan */
    if (time_limit > 0 && isnan(exact)) exact = exact_per_site(&H, J1, J2);
    if (time_limit > 0) {   /* three steps timed on a copy of the parameters, then the run sized */
        size_t np = model.n_params;
        double *keep = (double *)malloc(sizeof(double) * np), t_step = 0, t_first = 0, t_eval, left;
        int8_t *chains = NULL;   /* the trial's chains, thermalised: the run starts from them */
        tqs_vmc_options cal = opt;
        tqs_step_info ci;
        int k, steps;
        if (!keep) { fprintf(stderr, "ground_state: --time-limit: out of memory\n"); return 1; }
        memcpy(keep, model.params, sizeof(double) * np);
        tqs_vmc_free(&vmc);
        cal.n_steps = 3; cal.warmup = 0;
        if (tqs_vmc_init(&vmc, &H, &model, &cal)) { fprintf(stderr, "ground_state: %s\n", tqs_last_error()); return 2; }
        for (k = 0; k < 3; k++) {   /* the first includes thermalisation: the last two are timed */
            double t0 = now();
            if (tqs_vmc_step(&vmc, &ci)) { fprintf(stderr, "ground_state: --time-limit: %s\n", tqs_last_error()); return 1; }
            if (k) t_step += 0.5 * (now() - t0);
            else t_first = now() - t0;
        }
        /* the final evaluation: eval_samples fresh samples and their local energies */
        t_eval = exact_mode ? t_step : (ci.seconds[0] + ci.seconds[1]) * (double)eval_samples / vmc.M;
        if (!exact_mode && vmc.opt.sample_power != 2 && t_first > t_step) t_therm = t_first - t_step;
        t_eval += t_therm;
        if (!exact_mode && !(chains = (int8_t *)malloc((size_t)vmc.sampler.n_chains * N))) {
            fprintf(stderr, "ground_state: --time-limit: out of memory\n"); return 1;
        }
        if (chains) memcpy(chains, vmc.sampler.state, (size_t)vmc.sampler.n_chains * N);
        tqs_vmc_free(&vmc);
        memcpy(model.params, keep, sizeof(double) * np);
        free(keep);
        /* the run starts from the trial's thermalised chains (set below) */
        left = 60.0 * time_limit - (now() - t_begin) - t_eval - 0.02 * 60.0 * time_limit;
        steps = left > t_step ? (int)(left / t_step) : 1;
        if (comm && comm->size > 1) {   /* process 0's count, so that every process runs as many steps */
            double x = comm->rank == 0 ? steps : 0;
            if (comm->sum(comm->ctx, &x, 1)) { fprintf(stderr, "ground_state: --time-limit: communication failed\n"); return 1; }
            steps = (int)x;
        }
        opt.n_steps = steps;
        t_avg = t_step; max_steps = 2 * steps + 16;
        if (tqs_vmc_init(&vmc, &H, &model, &opt)) { fprintf(stderr, "ground_state: %s\n", tqs_last_error()); return 2; }
        if (chains && tqs_vmc_set_chains(&vmc, chains)) { fprintf(stderr, "ground_state: --time-limit: %s\n", tqs_last_error()); return 1; }
        free(chains);
        if (!quiet)
            fprintf(stderr, "--time-limit %g min: %.3f s per step, %.1f s for the evaluation: %d steps planned "
                    "(re-planned every step from the measured times)\n", time_limit, t_step, t_eval, steps);
        /* what the run cannot shorten (the reference energy, the sector, the
         * timing steps, the evaluation) may already exceed the budget: then
         * the run takes one step and ends late, and says so */
        if (left < t_step) {
            double spent = now() - t_begin;
            fprintf(stderr, "ground_state: --time-limit %g min: %.1f s spent before the first step and %.1f s for the "
                    "evaluation leave no time to train: 1 step, about %.0f s in all\n", time_limit, spent, t_eval,
                    spent + t_step + t_eval);
        }
    }
    if (resume && tqs_vmc_load_checkpoint(&vmc, resume)) {
        fprintf(stderr, "ground_state: --resume: %s\n", tqs_last_error());
        return 2;
    }
    if (log_path && vmc.step > 0 && trim_log(log_path, vmc.step)) {
        fprintf(stderr, "ground_state: --log: cannot rewrite '%s' up to the checkpoint's step %ld\n", log_path, (long)vmc.step);
        return 2;
    }
    if (log_path) {
        log = fopen(log_path, vmc.step > 0 ? "a" : "w");
        if (!log) { fprintf(stderr, "ground_state: --log: cannot open '%s'\n", log_path); return 2; }
        if (vmc.step == 0) fprintf(log, "step,energy_per_site,error,variance_per_site,acceptance,rhat,lr,diag_shift,solver,seconds,input_dependence\n");
    }
    if (json_log_path) {
        if (json_log_init(&jlog, (max_steps > opt.n_steps ? max_steps : opt.n_steps) + 1)) { fprintf(stderr, "ground_state: --json-log: out of memory\n"); return 1; }
        if (vmc.step > 0 && json_log_resume(&jlog, json_log_path, vmc.step)) {
            fprintf(stderr, "ground_state: --json-log: '%s' is not a log this program wrote\n", json_log_path);
            return 2;
        }
    }
    if (att_every && model.cfg.attention != TQS_ATTN_STANDARD) flags_die("--attention-log: the --init model has factored attention");
    if (att_every) {
        dep = (double *)malloc(sizeof(double) * model.cfg.n_layers * model.cfg.h);
        dep_buf = (int8_t *)malloc((size_t)256 * N);
        if (!dep || !dep_buf || tqs_vit_ws_init(&att_ws, &model, 1, 0)) { fprintf(stderr, "ground_state: --attention-log: out of memory\n"); return 1; }
    }
    if (plot && !log_path) {   /* this run's curve, kept in memory */
        size_t cap = (size_t)(max_steps > opt.n_steps ? max_steps : opt.n_steps) + 1;
        hist_x = (double *)malloc(sizeof(double) * cap); hist_y = (double *)malloc(sizeof(double) * cap);
        hist_e = (double *)malloc(sizeof(double) * cap);
        if (!hist_x || !hist_y || !hist_e) { fprintf(stderr, "ground_state: --plot: out of memory for %d steps\n", opt.n_steps); return 1; }
    }
    if (!print_every) print_every = opt.n_steps <= 100 ? 1 : opt.n_steps / 100;
    if (couplings_msg[0] && is_root && (warm || !quiet)) fprintf(stderr, "%s\n", couplings_msg);
    if (!quiet)
        fprintf(stderr, "%dx%d J2=%g, %s ViT d=%d h=%d layers=%d: %zu parameters, %s, solver %s, %d thread%s\n",
                cfg.Lx, cfg.Ly, J2, cfg.attention ? "standard" : "factored", cfg.d, cfg.h, cfg.n_layers, model.n_params,
                exact_mode ? "exact enumeration" : "sampling", tqs_solver_name(vmc.sr_ws.solver), tqs_get_threads(),
                tqs_get_threads() == 1 ? "" : "s");
    if (!quiet && plot)
        fprintf(stderr, "--plot: no LOG.csv arguments were given, so this run trains and then plots its own curve to '%s'\n", plot);
    signal(SIGINT, on_sigint);
    t_start = now();
    while (vmc.step < opt.n_steps && steps_flag != 0) {
        double t0 = now(), dt;
        if ((rc = tqs_vmc_step(&vmc, &info)) != 0) {
            fprintf(stderr, "ground_state: step %ld failed: %s\n", vmc.step, tqs_last_error());
            status = 1;
            break;
        }
        dt = now() - t0;
        t_train += dt;
        if (hist_x) { hist_x[done_here] = (double)info.step; hist_y[done_here] = info.energy / N; hist_e[done_here] = info.error / N; }
        done_here++;
        /* on the step's samples, with the parameters after its update */
        if (att_every) dep_avg = info.step % att_every == 0 ? attention_dependence(&vmc, &att_ws, dep_buf, dep) : NAN;
        if (time_limit > 0 && vmc.step < opt.n_steps && done_here > 1) {
            /* re-plan the rest from the recent time per step (it changes as the
             * state does) and the evaluation's estimated time, so that the run
             * and its evaluation end within the budget; the schedules follow.
             * Not after the first step: its sampling includes the thermalisation,
             * which would inflate both estimates (the calibration's plan holds) */
            double t_eval = exact_mode ? t_avg : (info.seconds[0] + info.seconds[1]) * (double)eval_samples / vmc.M + t_therm;
            double left = 60.0 * time_limit - (now() - t_begin) - t_eval - 0.01 * 60.0 * time_limit, plan;
            t_avg = 0.8 * t_avg + 0.2 * dt;
            plan = (double)vmc.step + (left > 0 ? floor(left / t_avg) : 0);
            if (plan > max_steps) plan = max_steps;
            if (comm && comm->size > 1) {   /* process 0's plan, on every process */
                double x = comm->rank == 0 ? plan : 0;
                if (comm->sum(comm->ctx, &x, 1)) { fprintf(stderr, "ground_state: communication failed\n"); status = 1; break; }
                plan = x;
            }
            if ((int)plan != opt.n_steps && (int)plan > opt.warmup && tqs_vmc_set_steps(&vmc, (int)plan) == 0) opt.n_steps = (int)plan;
        }
        if (comm && comm->size > 1) {   /* an interrupt on any process stops every one after the same step */
            double x = interrupted;
            if (comm->sum(comm->ctx, &x, 1)) { fprintf(stderr, "ground_state: communication failed\n"); status = 1; break; }
            interrupted = x > 0;
        }
        if (log) {
            fprintf(log, "%ld,%.12g,%.6g,%.6g,%.4f,%.4f,%.6g,%.6g,%s,%.4f,", info.step, info.energy / N, info.error / N,
                    info.variance / N, info.acceptance, info.rhat, info.lr, info.diag_shift, tqs_solver_name(info.sr.solver), dt);
            if (isfinite(dep_avg)) fprintf(log, "%.6g", dep_avg);
            fprintf(log, "\n");
            fflush(log);
        }
        if (json_log_path) {
            json_log_add(&jlog, &info);
            if ((info.step % print_every == 0 || vmc.step == opt.n_steps || interrupted) && json_log_write(&jlog, json_log_path))
                fprintf(stderr, "ground_state: --json-log: cannot write '%s'\n", json_log_path);
        }
        if (!quiet && (info.step % print_every == 0 || vmc.step == opt.n_steps || info.rejected || info.sr.shift_retries)) {
            double per_step = t_train / (double)done_here;
            char depstr[32] = "", rhat[16] = "-";   /* (split-R-hat needs 4 samples per chain) */
            if (isfinite(dep_avg)) snprintf(depstr, sizeof depstr, "  att.dep %.4f", dep_avg);
            if (!isnan(info.rhat)) snprintf(rhat, sizeof rhat, "%.3f", info.rhat);
            char ess[32] = "";   /* with --sample-power: the effective number of samples of the weights */
            if (!exact_mode && vmc.opt.sample_power != 2) snprintf(ess, sizeof ess, "  ess %.0f", info.ess);
            fprintf(stderr, "step %5ld  E/N %.6f +- %.6f  var/N %.5f  acc %.3f%s  Rhat %s  dist %.3g%s%s  %.3fs/step  left %.0fs%s%s\n",
                    info.step, info.energy / N, info.error / N, info.variance / N, info.acceptance, ess, rhat,
                    info.distance, info.capped ? " (capped)" : "", depstr, dt,
                    (opt.n_steps - vmc.step) * per_step,
                    info.rejected ? "  REJECTED (non-finite update)" : "",
                    info.sr.shift_retries ? "  (shift raised after a non-positive pivot)" : "");
        }
        /* a rejected step (non-finite energy or update) leaves the parameters
         * unchanged; several in a row end the run with the last good state */
        rejected_run = info.rejected ? rejected_run + 1 : 0;
        if (rejected_run >= max_rejected) {
            fprintf(stderr, "ground_state: %d consecutive steps rejected (non-finite energy or update) at step %ld; "
                    "stopping with the parameters of the last good step%s\n", rejected_run, info.step,
                    ckpt ? " (checkpoint written)" : "");
            if (ckpt) save_or_rescue(write_checkpoint, &vmc, ckpt, "--checkpoint", "ckpt", NULL);
            status = 1;
            break;
        }
        if (ckpt && (vmc.step % ckpt_every == 0 || vmc.step == opt.n_steps || interrupted || vmc.step == stop_at)) {
            /* a checkpoint that cannot be written ends nothing: it goes to another
             * file, named on stderr, which later checkpoints then use */
            const char *alt = NULL;
            if (save_or_rescue(write_checkpoint, &vmc, ckpt, "--checkpoint", "ckpt", &alt)) {
                if (alt) { snprintf(ckpt_rescue, sizeof ckpt_rescue, "%s", alt); ckpt = ckpt_rescue; }   /* (alt is reused) */
                else ckpt = NULL;
                ckpt_failed = 1;
            }
        }
        if (interrupted) { fprintf(stderr, "ground_state: interrupted after step %ld%s\n", info.step, ckpt ? ", checkpoint written" : ""); status = 130; break; }
        if (stop_at && vmc.step == stop_at && vmc.step < opt.n_steps) {   /* this invocation's share of the run */
            if (!quiet) fprintf(stderr, "ground_state: --stop-at %d: stopped%s; --resume continues the run\n", stop_at, ckpt ? " with its checkpoint" : "");
            status = 3; break;
        }
    }
    if (log) fclose(log);
    if (json_log_path && jlog.n && json_log_write(&jlog, json_log_path)) {
        fprintf(stderr, "ground_state: --json-log: cannot write '%s'\n", json_log_path);
        status = 1;
    }
    if (status == 0) {
        tqs_step_info sym;
        int have_sym = 0, one_process = !comm || comm->size == 1;
        /* --observables: of the evaluation's own samples, its energy from the
         * same amplitudes (--exact: over the enumeration, whose orbit
         * representatives need every site as reference). Over MPI they are
         * measured apart, on as many fresh samples. */
        if (observables && one_process) {
            long room = (long)((eval_samples + opt.n_chains - 1) / opt.n_chains) * opt.n_chains;
            if (exact_mode ? tqs_observables_init(&obs, &H.lat, NULL, 0, 1) : obs_init(&obs, &H.lat, cfg.b, room)) {
                fprintf(stderr, "ground_state: --observables: %s\n", tqs_last_error());
                status = 1;
            } else have_obs = 1;
        }
        if (status == 0 && (have_obs ? tqs_vmc_evaluate_observables(&vmc, eval_samples, &info, &obs) : tqs_vmc_evaluate(&vmc, eval_samples, &info))) {
            fprintf(stderr, "ground_state: evaluation: %s\n", tqs_last_error());
            status = 1;
        }
        /* a failed symmetrisation (e.g. an undetermined sector) still reports the
         * plain results, and then exits with status 1 */
        if (status == 0 && symmetrize)
            have_sym = !evaluate_symmetrized(&vmc, &H, sym_samples, (uint64_t)seed, &sym, quiet, observables ? &sym_obs : NULL);
        have_sym_obs = have_sym && observables;
        if (status == 0 && observables && !one_process) {
            if (exact_mode ? obs_enumeration(&obs, &H.lat, &vmc.amp, &vmc.en)
                           : obs_measure(&obs, &H.lat, cfg.b, &vmc.amp, eval_samples, opt.n_chains, (uint64_t)seed)) {
                fprintf(stderr, "ground_state: --observables: %s\n", tqs_last_error());
                status = 1;
            } else have_obs = 1;
        }
        if (isnan(exact)) exact = exact_per_site(&H, J1, J2);
        /* a plain state is checked against the Hamiltonian's symmetries (psi_sym has them by construction) */
        if (status == 0 && is_root && !sym_train) check_symmetry(&symcheck, &H, &vmc.amp, cfg.b, opt.n_chains, (uint64_t)seed);
        if (status == 0 && is_root) {
            double e = info.energy / N, err = info.error / N, var = info.variance / N, vscore = N * info.variance / (info.energy * info.energy);
            double rel = isfinite(exact) ? fabs((e - exact) / exact) : NAN, secs = now() - t_start;
            double per_step = done_here > 0 ? t_train / (double)done_here : 0.0;
            double se = have_sym ? sym.energy / N : NAN, serr = have_sym ? sym.error / N : NAN;
            double svs = have_sym ? N * sym.variance / (sym.energy * sym.energy) : NAN, srel = isfinite(exact) ? fabs((se - exact) / exact) : NAN;
            if (json) {
                printf("{\"Lx\":%d,\"Ly\":%d,\"J1\":%.10g,\"J2\":%.10g,\"attention\":\"%s\",\"params\":%zu,\"samples\":%d,\"steps\":%d,"
                       "\"seconds_per_step\":%.4g,\"energy_per_site\":%.10g,\"error\":%.4g,\"variance_per_site\":%.6g,\"v_score\":%.6g,",
                       cfg.Lx, cfg.Ly, J1, J2, cfg.attention ? "standard" : "factored", model.n_params,
                       exact_mode ? (int)vmc.en.basis.dim : eval_samples, steps_flag == 0 ? 0 : opt.n_steps, per_step, e, err, var, vscore);
                if (isfinite(exact)) printf("\"exact_per_site\":%.10g,\"relative_error\":%.4g,", exact, rel);
                else printf("\"exact_per_site\":null,\"relative_error\":null,");
                if (have_sym) {
                    printf("\"sym_energy_per_site\":%.10g,\"sym_error\":%.4g,\"sym_v_score\":%.6g,", se, serr, svs);
                    if (isfinite(srel)) printf("\"sym_relative_error\":%.4g,", srel); else printf("\"sym_relative_error\":null,");
                } else if (symmetrize) printf("\"sym_energy_per_site\":null,\"sym_error\":null,\"sym_v_score\":null,\"sym_relative_error\":null,");
                if (have_obs) { printf("\"observables\":"); obs_json(stdout, &obs); printf(","); }
                if (have_sym_obs) { printf("\"sym_observables\":"); obs_json(stdout, &sym_obs); printf(","); }
                if (symcheck.done)
                    printf("\"symmetry_check\":{\"generator\":\"%s\",\"expect\":%.6g,\"error\":%.3g,\"broken\":%s,\"wrong_sector\":%s},",
                           symcheck.name, symcheck.g, symcheck.err, symcheck.broken ? "true" : "false", symcheck.wrong_sector ? "true" : "false");
                printf("\"seconds\":%.2f}\n", secs);
            } else {
                printf("E/N = %.6f +- %.6f  (%s)\n", e, err, exact_mode ? "exact enumeration" : "fresh samples");
                printf("variance/N = %.6f   V-score = %.4g\n", var, vscore);
                if (isfinite(exact))   /* Lanczos to ten digits, or the published six-digit 6x6 value */
                    printf("exact E/N = %.*f   relative error = %.2e\n", N <= TQS_ED_MAX_SITES ? 10 : 6, exact, rel);
                if (have_sym) {
                    printf("symmetrised: E/N = %.6f +- %.6f   V-score = %.4g", se, serr, svs);
                    if (isfinite(srel)) printf("   relative error = %.2e", srel);
                    printf("\n");
                }
                printf("%ld steps in %.1f s (%.3f s/step)\n", done_here, t_train, per_step);
                if (have_obs) obs_print(stdout, &obs, "observables");
                if (have_sym_obs) obs_print(stdout, &sym_obs, "observables of psi_sym");
            }
            if (symcheck.wrong_sector)
                fprintf(stderr, "ground_state: the trained state is in another symmetry sector than the exact ground state: "
                        "<%s> = %.3f +- %.3f, the opposite sign; train psi_sym in the ground state's sector: --save this model, "
                        "then --init MODEL --sym-train point\n", symcheck.name, symcheck.g, symcheck.err);
            else if (symcheck.broken)
                fprintf(stderr, "ground_state: the trained state breaks the lattice's symmetry: <%s> = %.3f +- %.3f (1 in a state "
                        "of one sector: about %.0f%% of it lies in other sectors); train psi_sym from it: --save this model, then "
                        "--init MODEL --sym-train point\n", symcheck.name, symcheck.g, symcheck.err, 50 * (1 - fabs(symcheck.g)));
            else if (symcheck.done && !quiet)
                fprintf(stderr, "symmetry check: the state keeps the lattice's symmetries (worst <%s> = %.4f +- %.4f)\n",
                        symcheck.name, symcheck.g, symcheck.err);
        }
        if (status == 0 && symmetrize && !have_sym) status = 1;
        /* the model last, after the results are printed; if it cannot be written
         * where asked it goes to another file, named on stderr */
        if (save && save_or_rescue(write_model, &model, save, "--save", "tqs", NULL)) status = 1;
        if (have_obs && obs_svg_prefix) {
            char t[128];
            snprintf(t, sizeof t, "%dx%d, J2 = %g", cfg.Lx, cfg.Ly, J2);
            if (obs_svg(obs_svg_prefix, have_sym_obs ? &sym_obs : &obs, t)) { fprintf(stderr, "ground_state: --obs-svg: %s\n", plot_last_error()); status = 1; }
        }
        if (plot) {   /* after the results are printed: a failed plot loses nothing else */
            char title[128], full_title[256];
            snprintf(title, sizeof title, "%dx%d J1-J2, J2 = %g, %s ViT", cfg.Lx, cfg.Ly, J2, cfg.attention ? "standard" : "factored");
            if (log_path) { if (plot_logs(plot, &log_path, 1, exact, title)) status = 1; }
            else {
                plot_series ps;
                plot_options po;
                double lo = exact, hi = done_here > 0 ? hist_y[done_here / 10] : NAN;
                for (i = 0; i < done_here; i++) if (!(hist_y[i] >= lo)) lo = hist_y[i];
                ps.label = "this run"; ps.x = hist_x; ps.y = hist_y; ps.err = hist_e; ps.n = (int)done_here;
                memset(&po, 0, sizeof po);
                po.title = title; po.xlabel = "optimisation step"; po.ylabel = "energy per site E/N";
                if (isfinite(exact)) { po.ref = exact; po.ref_label = "exact"; }
                if (isfinite(lo) && hi > lo) {   /* as in plot_logs */
                    po.ymin = lo - 0.03 * (hi - lo); po.ymax = hi;
                    po.title = clip_title(full_title, sizeof full_title, title, &ps, 1, hi);
                }
                if (plot_line_svg(plot, &ps, 1, &po)) { fprintf(stderr, "ground_state: --plot: %s\n", plot_last_error()); status = 1; }
            }
        }
    }
    if (ckpt_failed && status == 0) status = 1;   /* the run finished, but not everything went where asked */
    if (att_every) tqs_vit_ws_free(&att_ws);
    if (have_obs) tqs_observables_free(&obs);
    if (have_sym_obs) tqs_observables_free(&sym_obs);
    if (json_log_path) free(jlog.it);
    free(dep); free(dep_buf); free(hist_x); free(hist_y); free(hist_e); free(logs);
    free(ck); free(eargv); free(stored); free(note);
    tqs_vmc_free(&vmc);
    tqs_symmetry_free(&sym_group);
    tqs_vit_free(&model);
    tqs_hamiltonian_free(&H);
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
