/* examples/observables.h - measuring and reporting tqs_observables in the
 * example programs (ground_state --observables, model observables): fresh
 * samples of a model, a printed summary, a JSON member, and two figures. */
#ifndef TQS_EXAMPLES_OBSERVABLES_H
#define TQS_EXAMPLES_OBSERVABLES_H
#include <stdio.h>
#include <string.h>
#include <math.h>
#include "plot.h"

/* Index of the momentum or displacement (kx, ky), periodic. */
static inline int obs_index(const tqs_observables *o, int kx, int ky) {
    return ((kx % o->Lx + o->Lx) % o->Lx) * o->Ly + (ky % o->Ly + o->Ly) % o->Ly;
}

/* Observables for max_samples samples of a model with patch size b,
 * averaged over the sites of patch 0 (the ViT is invariant under
 * translations by b; each sample uses one of them). */
static inline int obs_init(tqs_observables *o, const tqs_lattice *lat, int b, long max_samples) {
    int ref[64], n_ref = b * b, e;
    if (n_ref > 64) n_ref = 1;
    for (e = 0; e < n_ref; e++) ref[e] = n_ref == 1 ? 0 : tqs_patch_site(lat, b, 0, e);
    return tqs_observables_init(o, lat, ref, n_ref, max_samples);
}

/* Observables of amp from n_samples fresh samples of |amp|^2 (chains chains,
 * 2 sweeps apart after 50 of thermalisation). */
static inline int obs_measure(tqs_observables *o, const tqs_lattice *lat, int b, const tqs_amplitude *amp, int n_samples, int chains,
                       uint64_t seed) {
    tqs_sampler S;
    int per, rc;
    int8_t *samples;
    tqs_complex *lp;
    if (chains > n_samples) chains = n_samples;
    per = (n_samples + chains - 1) / chains;
    if ((rc = obs_init(o, lat, b, (long)chains * per)) != 0) return rc;
    samples = (int8_t *)malloc((size_t)chains * per * lat->N);
    lp = (tqs_complex *)malloc(sizeof(tqs_complex) * (size_t)chains * per);
    if (!samples || !lp) { free(samples); free(lp); tqs_observables_free(o); return TQS_ENOMEM; }
    rc = tqs_sampler_init(&S, lat, chains, seed ^ 0x0b5e7abcULL);
    if (!rc) rc = tqs_sampler_start_ordered(&S, lat, amp);   /* (random starts form domains on large lattices) */
    if (!rc) rc = tqs_sampler_run(&S, amp, per, 2, 50, samples, lp);
    if (!rc) rc = tqs_observables_sampled(o, amp, samples, lp, chains, per);
    tqs_sampler_free(&S);
    free(samples); free(lp);
    if (rc) tqs_observables_free(o);
    return rc;
}

/* Exactly, over an enumeration evaluated for amp (its weights and log psi):
 * its entries are orbit representatives, so every site is a reference site. */
static inline int obs_enumeration(tqs_observables *o, const tqs_lattice *lat, const tqs_amplitude *amp, const tqs_enumeration *E) {
    int rc = tqs_observables_init(o, lat, NULL, 0, 1);
    if (!rc && (rc = tqs_observables_weighted(o, amp, E->configs, E->logpsi, E->weights, E->n)) != 0) tqs_observables_free(o);
    return rc;
}

static inline void obs_print(FILE *f, const tqs_observables *o, const char *what) {
    int N = o->N, qn = obs_index(o, o->Lx / 2, o->Ly / 2), qx = obs_index(o, o->Lx / 2, 0), qy = obs_index(o, 0, o->Ly / 2);
    fprintf(f, "%s (%ld samples, %.1f amplitudes each):\n", what, o->n_configs, o->n_configs ? (double)o->n_amplitudes / o->n_configs : 0.0);
    fprintf(f, "  C(1,0) = %.5f +- %.5f   C(0,1) = %.5f +- %.5f   C(1,1) = %.5f +- %.5f   C(Lx/2,Ly/2) = %.5f +- %.5f\n",
            o->corr[obs_index(o, 1, 0)], o->corr_err[obs_index(o, 1, 0)], o->corr[obs_index(o, 0, 1)], o->corr_err[obs_index(o, 0, 1)],
            o->corr[obs_index(o, 1, 1)], o->corr_err[obs_index(o, 1, 1)], o->corr[qn], o->corr_err[qn]);
    fprintf(f, "  S(pi,pi) = %.4f +- %.4f (Neel m^2 = S/N = %.5f)   S(pi,0) = %.4f +- %.4f   S(0,pi) = %.4f +- %.4f\n",
            o->sq[qn], o->sq_err[qn], o->sq[qn] / N, o->sq[qx], o->sq_err[qx], o->sq[qy], o->sq_err[qy]);
    fprintf(f, "  bonds <S.S> x %.5f +- %.5f, y %.5f +- %.5f   columnar dimer S_D(pi,0) = %.4f +- %.4f, S_D(0,pi) = %.4f +- %.4f\n",
            o->bond[0], o->bond_err[0], o->bond[1], o->bond_err[1], o->dimer_sq[0], o->dimer_sq_err[0], o->dimer_sq[1], o->dimer_sq_err[1]);
}

static inline void obs_json_array(FILE *f, const char *key, const double *x, int n) {
    int i;
    fprintf(f, "\"%s\":[", key);
    for (i = 0; i < n; i++) fprintf(f, "%s%.8g", i ? "," : "", isfinite(x[i]) ? x[i] : 0.0);
    fprintf(f, "]");
}
/* One JSON object (no trailing newline): arrays indexed like sites (r = dx Ly + dy, q likewise). */
static inline void obs_json(FILE *f, const tqs_observables *o) {
    int qn = obs_index(o, o->Lx / 2, o->Ly / 2), qx = obs_index(o, o->Lx / 2, 0), qy = obs_index(o, 0, o->Ly / 2);
    fprintf(f, "{\"Lx\":%d,\"Ly\":%d,\"samples\":%ld,\"S_pipi\":%.8g,\"S_pipi_err\":%.4g,\"S_pi0\":%.8g,\"S_pi0_err\":%.4g,"
            "\"S_0pi\":%.8g,\"S_0pi_err\":%.4g,\"neel_m2\":%.8g,\"bond_x\":%.8g,\"bond_y\":%.8g,\"dimer_S_pi0\":%.8g,\"dimer_S_pi0_err\":%.4g,"
            "\"dimer_S_0pi\":%.8g,\"dimer_S_0pi_err\":%.4g,",
            o->Lx, o->Ly, o->n_configs, o->sq[qn], o->sq_err[qn], o->sq[qx], o->sq_err[qx], o->sq[qy], o->sq_err[qy], o->sq[qn] / o->N,
            o->bond[0], o->bond[1], o->dimer_sq[0], o->dimer_sq_err[0], o->dimer_sq[1], o->dimer_sq_err[1]);
    obs_json_array(f, "C", o->corr, o->N); fputc(',', f);
    obs_json_array(f, "C_err", o->corr_err, o->N); fputc(',', f);
    obs_json_array(f, "S", o->sq, o->N); fputc(',', f);
    obs_json_array(f, "S_err", o->sq_err, o->N); fputc(',', f);
    obs_json_array(f, "dimer_x", o->dimer[0], o->N); fputc(',', f);
    obs_json_array(f, "dimer_y", o->dimer[1], o->N); fputc('}', f);
}

/* PREFIX-sq.svg: S(q) on the momentum grid, (0,0) marked (kx, ky in units
 * of 2 pi / L); PREFIX-corr.svg: C(r) along x, along y and along the
 * diagonal, r = 0 .. L/2 (error bands). */
static inline int obs_svg(const char *prefix, const tqs_observables *o, const char *title) {
    char path[1024], t[256];
    double *map = (double *)malloc(sizeof(double) * o->N), x[3][64], y[3][64], e[3][64];
    plot_heat_options ho;
    plot_series ps[3];
    plot_options po;
    int kx, ky, k, n = 0, rc;
    if (!map) return plot__fail(TQS_ENOMEM, "S(q): out of memory");
    /* rows kx, columns ky, centred: row i is kx = i - Lx/2 */
    for (kx = 0; kx < o->Lx; kx++)
        for (ky = 0; ky < o->Ly; ky++) map[kx * o->Ly + ky] = o->sq[obs_index(o, kx - o->Lx / 2, ky - o->Ly / 2)];
    memset(&ho, 0, sizeof ho);
    ho.xlabel = "ky (2 pi / Ly)"; ho.ylabel = "kx (2 pi / Lx)"; ho.row0 = o->Lx / 2; ho.col0 = o->Ly / 2;
    ho.mark = 1; ho.mark_row = 0; ho.mark_col = 0; ho.mark_label = "(pi, pi)";
    snprintf(path, sizeof path, "%s-sq.svg", prefix);
    snprintf(t, sizeof t, "%s: spin structure factor S(q)", title);
    rc = plot_heat_maps(path, t, map, 1, o->Lx, o->Ly, NULL, "S(q)", &ho);
    free(map);
    if (rc) return rc;
    for (k = 0; k < 3; k++) {
        int max = k == 0 ? o->Lx / 2 : k == 1 ? o->Ly / 2 : (o->Lx < o->Ly ? o->Lx : o->Ly) / 2;
        for (n = 0; n <= max && n < 64; n++) {
            int r = k == 0 ? obs_index(o, n, 0) : k == 1 ? obs_index(o, 0, n) : obs_index(o, n, n);
            x[k][n] = k == 2 ? n * sqrt(2.0) : n; y[k][n] = o->corr[r]; e[k][n] = o->corr_err[r];
        }
        ps[k].x = x[k]; ps[k].y = y[k]; ps[k].err = e[k]; ps[k].n = n;
        ps[k].label = k == 0 ? "along x" : k == 1 ? "along y" : "along the diagonal";
    }
    memset(&po, 0, sizeof po);
    snprintf(t, sizeof t, "%s: spin correlations C(r)", title);
    po.title = t; po.xlabel = "distance |r|"; po.ylabel = "C(r) = <S_0 . S_r>";
    po.ref = 0; po.ref_label = "0";
    snprintf(path, sizeof path, "%s-corr.svg", prefix);
    return plot_line_svg(path, ps, 3, &po);
}

/* The Lanczos ground state as an amplitude: log of its entry (the sign as a phase pi). */
typedef struct obs_vec_amp { tqs_basis basis; const double *v; int N; } obs_vec_amp;
static inline int obs_vec_logpsi(void *ctx, tqs_complex *out, const int8_t *configs, int B) {
    obs_vec_amp *a = (obs_vec_amp *)ctx;
    int s;
    for (s = 0; s < B; s++) {
        double x = a->v[tqs_basis_index(&a->basis, tqs_config_to_bits(configs + (size_t)s * a->N, a->N))];
        out[s].re = x != 0 ? log(fabs(x)) : -HUGE_VAL;
        out[s].im = x < 0 ? 3.14159265358979323846 : 0.0;
    }
    return 0;
}
/* Observables of the exact ground state (ed from tqs_exact_ground_state with
 * want_vector): every basis state weighted by psi0^2 through the amplitude
 * interface; one reference site, since the ground state is invariant under
 * every translation. */
static inline int obs_ground_state(tqs_observables *o, const tqs_hamiltonian *H, const tqs_ed_result *ed) {
    obs_vec_amp va;
    tqs_amplitude amp;
    int8_t *cf;
    tqs_complex *lp;
    double *w;
    int N = H->lat.N, rc, ref = 0;
    size_t s;
    if (!ed->vector) return TQS_EINVAL;
    if ((rc = tqs_basis_init(&va.basis, N)) != 0) return rc;
    va.v = ed->vector; va.N = N;
    amp.fn = obs_vec_logpsi; amp.ctx = &va; amp.max_batch = 1 << 20;
    cf = (int8_t *)malloc(va.basis.dim * N); lp = (tqs_complex *)malloc(sizeof(tqs_complex) * va.basis.dim);
    w = (double *)malloc(sizeof(double) * va.basis.dim);
    rc = !cf || !lp || !w ? TQS_ENOMEM : 0;
    for (s = 0; s < va.basis.dim && !rc; s++) { tqs_bits_to_config(cf + s * N, va.basis.states[s], N); w[s] = ed->vector[s] * ed->vector[s]; }
    if (!rc) rc = obs_vec_logpsi(&va, lp, cf, (int)va.basis.dim);
    if (!rc) rc = tqs_observables_init(o, &H->lat, &ref, 1, 1);
    if (!rc) { rc = tqs_observables_weighted(o, &amp, cf, lp, w, (long)va.basis.dim); if (rc) tqs_observables_free(o); }
    free(cf); free(lp); free(w); tqs_basis_free(&va.basis);
    return rc;
}
#endif
