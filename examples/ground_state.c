/* ground_state.c - train the ViT on the J1-J2 model by VMC + SR and report
 * an energy with its error bar, variance, V-score and relative error.
 *   ./examples/ground_state                 (4x4, J2 = 0.5, small factored ViT)
 *   ./examples/ground_state --help          (every flag) */
#define _POSIX_C_SOURCE 200809L
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "flags.h"
#include <signal.h>
#include <time.h>

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

static const char *usage =
    "usage: ground_state [flags]\n"
    "  lattice   --L n | --Lx n --Ly n (4)   --J1 x (1)   --J2 x (0.5)\n"
    "  model     --patch b (2)  --d n (8)  --heads n (1)  --layers n (2)  --ff n (4)\n"
    "            --attention factored|standard (factored)  --init MODEL (start from a model file)\n"
    "  sampling  --samples n (1024)  --chains n (16)  --sweeps n (1)  --thermalize n (20)\n"
    "            --exact (enumerate the Sz=0 basis instead, N <= 24)\n"
    "  SR        --steps n (500)  --lr x (0.03)  --lr-final x (= lr)  --diag-shift x (0.01)  --diag-shift-final x (= shift)\n"
    "            --solver auto|parameter|sample|cg (auto)  --max-distance x (0: off; cap on lr*sqrt(d^T S d))\n"
    "  output    --log FILE.csv  --save MODEL  --checkpoint FILE  --checkpoint-every k (50)  --resume FILE\n"
    "            --eval-samples n (16384)  --print-every k  --json  --quiet\n"
    "  other     --seed n (1)  --threads n  --help\n";

int main(int argc, char **argv) {
    tqs_vit_config cfg;
    tqs_vmc_options opt;
    tqs_hamiltonian H;
    tqs_vit model;
    tqs_vmc vmc;
    tqs_step_info info;
    const char *att = "factored", *solver = "auto", *log_path = NULL, *save = NULL, *init = NULL;
    const char *ckpt = NULL, *resume = NULL;
    double J1 = 1.0, J2 = 0.5, t_start, t_train = 0, exact = NAN;
    int i, seed = 1, threads = 0, exact_mode = 0, json = 0, quiet = 0, ckpt_every = 50, eval_samples = 16384;
    int print_every = 0, rc, status = 0, N;
    long done_here = 0;
    FILE *log = NULL;

    flags_prog = "ground_state";
    memset(&cfg, 0, sizeof cfg); memset(&opt, 0, sizeof opt);
    cfg.Lx = cfg.Ly = 4; cfg.b = 2; cfg.d = 8; cfg.h = 1; cfg.n_layers = 2; cfg.ff = 4;
    opt.n_samples = 1024; opt.n_chains = 16; opt.sweeps = 1; opt.thermalize = 20; opt.n_steps = 500;
    opt.lr = 0.03; opt.lr_final = -1; opt.diag_shift = 0.01; opt.diag_shift_final = -1;
    for (i = 1; i < argc; i++) {
        if (flags_lattice(argc, argv, &i, &cfg.Lx, &cfg.Ly) || flags_real(argc, argv, &i, "--J1", &J1, -1e3, 1e3) ||
            flags_real(argc, argv, &i, "--J2", &J2, -1e3, 1e3) || flags_int(argc, argv, &i, "--patch", &cfg.b, 1, 16) ||
            flags_int(argc, argv, &i, "--d", &cfg.d, 1, 4096) || flags_int(argc, argv, &i, "--heads", &cfg.h, 1, 4096) ||
            flags_int(argc, argv, &i, "--layers", &cfg.n_layers, 1, 64) || flags_int(argc, argv, &i, "--ff", &cfg.ff, 1, 64) ||
            flags_str(argc, argv, &i, "--attention", &att) || flags_str(argc, argv, &i, "--init", &init) ||
            flags_int(argc, argv, &i, "--samples", &opt.n_samples, 1, 1 << 24) ||
            flags_int(argc, argv, &i, "--chains", &opt.n_chains, 1, 1 << 20) ||
            flags_int(argc, argv, &i, "--sweeps", &opt.sweeps, 1, 1 << 20) ||
            flags_int(argc, argv, &i, "--thermalize", &opt.thermalize, 0, 1 << 20) ||
            flags_bool(argv, i, "--exact", &exact_mode) ||
            flags_int(argc, argv, &i, "--steps", &opt.n_steps, 0, 100000000) ||
            flags_real(argc, argv, &i, "--lr", &opt.lr, 1e-12, 1e3) || flags_real(argc, argv, &i, "--lr-final", &opt.lr_final, 1e-12, 1e3) ||
            flags_real(argc, argv, &i, "--diag-shift", &opt.diag_shift, 1e-14, 1e6) ||
            flags_real(argc, argv, &i, "--diag-shift-final", &opt.diag_shift_final, 1e-14, 1e6) ||
            flags_str(argc, argv, &i, "--solver", &solver) ||
            flags_real(argc, argv, &i, "--max-distance", &opt.max_distance, 0, 1e6) || flags_str(argc, argv, &i, "--log", &log_path) ||
            flags_str(argc, argv, &i, "--save", &save) || flags_str(argc, argv, &i, "--checkpoint", &ckpt) ||
            flags_int(argc, argv, &i, "--checkpoint-every", &ckpt_every, 1, 100000000) ||
            flags_str(argc, argv, &i, "--resume", &resume) ||
            flags_int(argc, argv, &i, "--eval-samples", &eval_samples, 1, 1 << 26) ||
            flags_int(argc, argv, &i, "--print-every", &print_every, 1, 100000000) ||
            flags_bool(argv, i, "--json", &json) || flags_bool(argv, i, "--quiet", &quiet) ||
            flags_int(argc, argv, &i, "--seed", &seed, 0, 2147483647) ||
            flags_int(argc, argv, &i, "--threads", &threads, 1, 1024)) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(usage, stdout); return 0; }
        flags_die("unknown flag '%s' (try --help)", argv[i]);
    }
    /* every rule checked before anything is allocated or written */
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
    if (!exact_mode && opt.n_chains > opt.n_samples) flags_die("--chains: %d chains for %d samples; need chains <= samples", opt.n_chains, opt.n_samples);
    if (!exact_mode && opt.n_chains > eval_samples) flags_die("--eval-samples: %d is fewer than --chains %d", eval_samples, opt.n_chains);
    if (opt.lr_final < 0) opt.lr_final = opt.lr;
    if (opt.diag_shift_final < 0) opt.diag_shift_final = opt.diag_shift;
    opt.exact = exact_mode; opt.seed = (uint64_t)seed;
    if (threads) tqs_set_threads(threads);

    if (tqs_hamiltonian_init(&H, cfg.Lx, cfg.Ly, J1, J2)) flags_die("%s", tqs_last_error());
    if (init) {
        if (tqs_vit_load(&model, init)) { fprintf(stderr, "ground_state: --init: %s\n", tqs_last_error()); return 2; }
        if (model.cfg.Lx != cfg.Lx || model.cfg.Ly != cfg.Ly)
            flags_die("--init: the model is for %dx%d, the lattice is %dx%d", model.cfg.Lx, model.cfg.Ly, cfg.Lx, cfg.Ly);
        cfg = model.cfg;
    } else if (tqs_vit_init(&model, &cfg, (uint64_t)seed)) flags_die("%s", tqs_last_error());
    if (tqs_vmc_init(&vmc, &H, &model, &opt)) {
        fprintf(stderr, "ground_state: %s\n", tqs_last_error());
        return 2;
    }
    if (resume && tqs_vmc_load_checkpoint(&vmc, resume)) {
        fprintf(stderr, "ground_state: --resume: %s\n", tqs_last_error());
        return 2;
    }
    if (log_path) {
        log = fopen(log_path, vmc.step > 0 ? "a" : "w");
        if (!log) { fprintf(stderr, "ground_state: --log: cannot open '%s'\n", log_path); return 2; }
        if (vmc.step == 0) fprintf(log, "step,energy_per_site,error,variance,acceptance,rhat,lr,diag_shift,solver,seconds\n");
    }
    if (!print_every) print_every = opt.n_steps <= 100 ? 1 : opt.n_steps / 100;
    if (!quiet)
        fprintf(stderr, "%dx%d J2=%g, %s ViT d=%d h=%d layers=%d: %zu parameters, %s, solver %s, %d threads\n",
                cfg.Lx, cfg.Ly, J2, cfg.attention ? "standard" : "factored", cfg.d, cfg.h, cfg.n_layers, model.n_params,
                exact_mode ? "exact enumeration" : "sampling", tqs_solver_name(vmc.sr_ws.solver), tqs_get_threads());
    signal(SIGINT, on_sigint);
    t_start = now();
    while (vmc.step < opt.n_steps) {
        double t0 = now(), dt;
        if ((rc = tqs_vmc_step(&vmc, &info)) != 0) {
            fprintf(stderr, "ground_state: step %ld failed: %s\n", vmc.step, tqs_last_error());
            status = 1;
            break;
        }
        dt = now() - t0;
        t_train += dt;
        done_here++;
        if (log) {
            fprintf(log, "%ld,%.12g,%.6g,%.6g,%.4f,%.4f,%.6g,%.6g,%s,%.4f\n", info.step, info.energy / N, info.error / N,
                    info.variance, info.acceptance, info.rhat, info.lr, info.diag_shift, tqs_solver_name(info.sr.solver), dt);
            fflush(log);
        }
        if (!quiet && (info.step % print_every == 0 || vmc.step == opt.n_steps || info.rejected || info.sr.shift_retries)) {
            double per_step = t_train / (double)done_here;
            fprintf(stderr, "step %5ld  E/N %.6f +- %.6f  var/N %.5f  acc %.3f  Rhat %.3f  dist %.3g%s  %.3fs/step  left %.0fs%s%s\n",
                    info.step, info.energy / N, info.error / N, info.variance / N, info.acceptance, info.rhat,
                    info.distance, info.capped ? " (capped)" : "", dt,
                    (opt.n_steps - vmc.step) * per_step,
                    info.rejected ? "  REJECTED (non-finite update)" : "",
                    info.sr.shift_retries ? "  (shift raised after a non-positive pivot)" : "");
        }
        if (ckpt && (vmc.step % ckpt_every == 0 || vmc.step == opt.n_steps || interrupted)) {
            if (tqs_vmc_save_checkpoint(&vmc, ckpt)) { fprintf(stderr, "ground_state: %s\n", tqs_last_error()); status = 1; break; }
        }
        if (interrupted) { fprintf(stderr, "ground_state: interrupted after step %ld%s\n", info.step, ckpt ? ", checkpoint written" : ""); status = 130; break; }
    }
    if (log) fclose(log);
    if (status == 0) {
        if (save && tqs_vit_save(&model, save)) { fprintf(stderr, "ground_state: --save: %s\n", tqs_last_error()); status = 1; }
        if (tqs_vmc_evaluate(&vmc, eval_samples, &info)) { fprintf(stderr, "ground_state: evaluation: %s\n", tqs_last_error()); status = 1; }
        if (N <= TQS_ED_MAX_SITES) {
            tqs_ed_result ed;
            if (tqs_exact_ground_state(&ed, &H, NULL) == 0) { exact = ed.energy / N; tqs_ed_result_free(&ed); }
        } else if (cfg.Lx == 6 && cfg.Ly == 6 && J1 == 1.0) exact = table_6x6(J2);
        if (status == 0) {
            double e = info.energy / N, err = info.error / N, var = info.variance / N, vscore = N * info.variance / (info.energy * info.energy);
            double rel = isfinite(exact) ? fabs((e - exact) / exact) : NAN, secs = now() - t_start;
            if (json) {
                printf("{\"Lx\":%d,\"Ly\":%d,\"J1\":%.10g,\"J2\":%.10g,\"attention\":\"%s\",\"params\":%zu,\"samples\":%d,\"steps\":%d,"
                       "\"energy_per_site\":%.10g,\"error\":%.4g,\"variance_per_site\":%.6g,\"v_score\":%.6g,",
                       cfg.Lx, cfg.Ly, J1, J2, cfg.attention ? "standard" : "factored", model.n_params,
                       exact_mode ? (int)vmc.en.basis.dim : eval_samples, opt.n_steps, e, err, var, vscore);
                if (isfinite(exact)) printf("\"exact_per_site\":%.10g,\"relative_error\":%.4g,", exact, rel);
                else printf("\"exact_per_site\":null,\"relative_error\":null,");
                printf("\"seconds\":%.2f}\n", secs);
            } else {
                printf("E/N = %.6f +- %.6f  (%s)\n", e, err, exact_mode ? "exact enumeration" : "fresh samples");
                printf("variance/N = %.6f   V-score = %.4g\n", var, vscore);
                if (isfinite(exact)) printf("exact E/N = %.10f   relative error = %.2e\n", exact, rel);
                printf("%d steps in %.1f s (%.3f s/step)\n", opt.n_steps, secs, vmc.step > 0 ? t_train / (double)vmc.step : 0.0);
            }
        }
    }
    tqs_vmc_free(&vmc);
    tqs_vit_free(&model);
    tqs_hamiltonian_free(&H);
    return status;
}
