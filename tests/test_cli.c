/* The example programs as a user meets them: every bad flag refused with one
 * line naming it and exit status 2 with nothing written; logs bitwise equal
 * with 1 and 2 threads and across a checkpoint/resume; a run whose steps keep
 * failing stops with its last good state. Runs the binaries built by make
 * (from the repository root). POSIX (system, wait status). */
#define _POSIX_C_SOURCE 200809L
#include "../tqs.h"
#include "test.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define D "build/test_cli"

static int exists(const char *path) { struct stat st; return stat(path, &st) == 0; }

/* Runs cmd with stderr to D/err.txt; returns the exit status (-1 on a signal). */
static int run(const char *cmd) {
    char full[2048];
    int st;
    snprintf(full, sizeof full, "%s > " D "/out.txt 2> " D "/err.txt", cmd);
    st = system(full);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path, size_t *len) {
    unsigned char *buf = NULL;
    size_t n = 0;
    if (tqs_read_file(path, &buf, &n, 1 << 26)) return NULL;
    if (len) *len = n;
    buf = (unsigned char *)realloc(buf, n + 1);
    buf[n] = 0;
    return (char *)buf;
}

/* A bad invocation: exit status 2, exactly one line on stderr that contains
 * `needle` (the flag), and none of the output files created. */
static void refused(const char *args, const char *needle) {
    char cmd[1024], *err;
    int st, lines = 0;
    const char *p;
    remove(D "/x.csv"); remove(D "/x.tqs"); remove(D "/x.ckpt"); remove(D "/x.svg");
    snprintf(cmd, sizeof cmd, "%s --log " D "/x.csv --save " D "/x.tqs --checkpoint " D "/x.ckpt", args);
    st = run(cmd);
    err = slurp(D "/err.txt", NULL);
    for (p = err; p && *p; p++) lines += *p == '\n';
    if (st != 2 || lines != 1 || !err || !strstr(err, needle) || exists(D "/x.csv") || exists(D "/x.tqs") || exists(D "/x.ckpt"))
        printf("  %s\n    -> status %d, %d lines: %s", args, st, lines, err ? err : "(none)\n");
    CHECK_EQ(st, 2);
    CHECK_EQ(lines, 1);
    CHECK(err && strstr(err, needle));
    CHECK(!exists(D "/x.csv") && !exists(D "/x.tqs") && !exists(D "/x.ckpt"));
    free(err);
}

/* Same as refused() for programs without output flags. */
static void refused_plain(const char *cmd, const char *needle, int status) {
    char *err;
    int st = run(cmd), lines = 0;
    const char *p;
    err = slurp(D "/err.txt", NULL);
    for (p = err; p && *p; p++) lines += *p == '\n';
    if (st != status || lines != 1 || !err || !strstr(err, needle))
        printf("  %s\n    -> status %d, %d lines: %s", cmd, st, lines, err ? err : "(none)\n");
    CHECK_EQ(st, status);
    CHECK_EQ(lines, 1);
    CHECK(err && strstr(err, needle));
    free(err);
}

static void test_flags(void) {
    const char *G = "./examples/ground_state --quiet --steps 1";
    char a[512];
#define GS(extra, needle) do { snprintf(a, sizeof a, "%s %s", G, extra); refused(a, needle); } while (0)
    GS("--d abc", "--d");                              /* not a number */
    GS("--d 0", "--d");                                /* out of range */
    GS("--steps 99999999999999999999", "--steps");     /* overflow */
    GS("--lr nan", "--lr");
    GS("--lr -1", "--lr");
    GS("--J2 1e999", "--J2");
    GS("--bogus", "unknown flag");
    GS("--d 10 --heads 4", "--heads");                 /* d not divisible by heads */
    GS("--L 6 --patch 4", "--patch");                  /* Lx not divisible by the patch */
    GS("--Lx 5", "--Lx");                              /* odd */
    GS("--L 2", "--L:");                               /* too small: the message names the flag typed */
    GS("--L 5", "--L: must be even");                  /* (it once said --Lx) */
    GS("--L 6 --exact", "--exact");                    /* too large to enumerate */
    GS("--chains 64 --samples 32", "--chains");        /* more chains than samples */
    GS("--attention foo", "--attention");
    GS("--solver foo", "--solver");
    GS("--attention-log 5", "--attention-log");        /* factored attention */
    GS("--resume " D "/no_such.ckpt", "--resume");
    GS("--init " D "/no_such.tqs", "--init");
    GS("--L 32 --d 64 --samples 100000 --chains 64", "GB");   /* more memory than the machine has */
    GS("extra_argument", "extra_argument");
    GS("--momentum 1", "--momentum");                  /* SPRING needs mu < 1 */
    GS("--sample-power 3", "--sample-power");          /* above |psi|^2 */
    GS("--sample-power 1 --exact", "--sample-power");  /* nothing is sampled */
    GS("--sym-train rotations", "--sym-train");
    GS("--sym-train full --symmetrize", "--symmetrize");
    GS("--obs-svg " D "/o", "--obs-svg: needs --observables");
    GS("--time-limit 1 --resume " D "/no_such.ckpt", "--time-limit");
    refused_plain("./examples/ground_state --steps 1 --lr", "--lr needs a value", 2);   /* missing value (last flag) */
    refused_plain("./examples/model init --d 8", "-o", 2);
    refused_plain("./examples/model init -o " D "/m.tqs --d 8 --heads 3", "--heads", 2);
    refused_plain("./examples/model frobnicate", "unknown command", 2);
    refused_plain("./examples/exact --L 8", "24 sites", 2);
    refused_plain("./examples/exact --J2 x", "--J2", 2);
    refused_plain("./examples/attention", "MODEL", 2);
    refused_plain("./examples/attention " D "/no_such.tqs", "no_such", 1);
    CHECK(!exists(D "/m.tqs"));
#undef GS
}

/* Removes the last column (seconds per step, a timing) from every line. */
static void drop_timing(char *csv) {
    char *line = csv, *out = csv;
    while (*line) {
        char *end = strchr(line, '\n'), *cut;
        size_t n;
        if (!end) end = line + strlen(line);
        /* the seconds column is the 10th of 11: remove it */
        cut = line;
        {
            int commas = 0;
            char *p, *start = NULL, *stop = NULL;
            for (p = line; p < end; p++) if (*p == ',') { commas++; if (commas == 9) start = p; if (commas == 10) stop = p; }
            if (start && stop) {
                n = (size_t)(start - line); memmove(out, line, n); out += n;
                n = (size_t)(end - stop); memmove(out, stop, n); out += n;
            } else { n = (size_t)(end - cut); memmove(out, cut, n); out += n; }
        }
        if (*end == '\n') *out++ = '\n', end++;
        line = end;
    }
    *out = 0;
}

static int same_logs(const char *a, const char *b) {
    char *x = slurp(a, NULL), *y = slurp(b, NULL);
    int same;
    if (!x || !y) { free(x); free(y); return 0; }
    drop_timing(x); drop_timing(y);
    same = !strcmp(x, y);
    free(x); free(y);
    return same;
}

static void test_determinism(void) {
    const char *base = "./examples/ground_state --plain --quiet --d 8 --heads 2 --samples 128 --chains 8 --lr 0.05 --lr-final 0.05 --diag-shift 0.05 "
                       "--eval-samples 64 --seed 9";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --steps 6 --threads 1 --log " D "/t1.csv", base);
    CHECK_EQ(run(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s --steps 6 --threads 2 --log " D "/t2.csv", base);
    CHECK_EQ(run(cmd), 0);
    CHECK(same_logs(D "/t1.csv", D "/t2.csv"));
    /* the same 6-step run stopped after step 3 (--stop-at: exit status 3, its
     * checkpoint written), then continued by --resume FILE alone: the
     * checkpoint keeps the run's flags, its log path among them */
    remove(D "/r.csv");
    snprintf(cmd, sizeof cmd, "%s --steps 6 --threads 1 --checkpoint " D "/r.ckpt --log " D "/r.csv --stop-at 3", base);
    CHECK_EQ(run(cmd), 3);
    CHECK_EQ(run("./examples/ground_state --resume " D "/r.ckpt"), 0);
    CHECK(same_logs(D "/t1.csv", D "/r.csv"));
    /* a run stopped after its checkpoint had logged steps 3-5 already (the
     * whole 6-step log stands in for it): resuming must not repeat them; an
     * output flag given now (--log) replaces the stored one */
    CHECK_EQ(run("cp " D "/t1.csv " D "/r2.csv"), 0);
    CHECK_EQ(run("cp " D "/r.ckpt " D "/r3.ckpt"), 0);
    snprintf(cmd, sizeof cmd, "%s --steps 6 --threads 1 --checkpoint " D "/r3.ckpt --stop-at 3", base);
    CHECK_EQ(run(cmd), 3);
    CHECK_EQ(run("./examples/ground_state --resume " D "/r3.ckpt --log " D "/r2.csv"), 0);
    CHECK(same_logs(D "/t1.csv", D "/r2.csv"));
    /* a checkpoint moved elsewhere and resumed without --checkpoint goes on
     * writing its checkpoints to the file it was resumed from, not to the
     * path its run was started with */
    remove(D "/r5.ckpt"); remove(D "/r6.ckpt");
    snprintf(cmd, sizeof cmd, "%s --steps 6 --threads 1 --checkpoint " D "/r5.ckpt --stop-at 2", base);
    CHECK_EQ(run(cmd), 3);
    CHECK_EQ(rename(D "/r5.ckpt", D "/r6.ckpt"), 0);
    CHECK_EQ(run("./examples/ground_state --resume " D "/r6.ckpt --stop-at 4"), 3);
    CHECK(!exists(D "/r5.ckpt"));
    {
        tqs_checkpoint_info ci;
        CHECK(tqs_vmc_checkpoint_info(&ci, D "/r6.ckpt") == 0 && ci.step == 4);
    }
    /* a flag that changes the run is refused, one line, naming it; so is one
     * that contradicts the checkpoint's model or lattice */
    snprintf(cmd, sizeof cmd, "%s --steps 6 --checkpoint " D "/r4.ckpt --stop-at 2", base);
    CHECK_EQ(run(cmd), 3);
    refused_plain("./examples/ground_state --resume " D "/r4.ckpt --lr 0.01", "its run has lr 0.05, this run 0.01", 2);
    refused_plain("./examples/ground_state --resume " D "/r4.ckpt --steps 7", "n_steps 6", 2);
    refused_plain("./examples/ground_state --resume " D "/r4.ckpt --J2 0.4", "J2 0.5", 2);
    refused_plain("./examples/ground_state --resume " D "/r4.ckpt --momentum 0", "momentum", 2);
    refused_plain("./examples/ground_state --resume " D "/r4.ckpt --sample-power 2", "sample_power", 2);   /* 1 on 4x4 */
    refused_plain("./examples/ground_state --resume " D "/r4.ckpt --d 16", "--d 8", 2);
    refused_plain("./examples/ground_state --resume " D "/r4.ckpt --L 6", "4x4", 2);
    refused_plain("./examples/ground_state --resume " D "/r4.ckpt --time-limit 1", "--time-limit", 2);
    /* symmetric training (psi_sym over the translations) stopped and resumed:
     * the checkpoint keeps the sector, so the resumed steps are the same */
    {
        const char *sym = "./examples/ground_state --quiet --init " D "/p.tqs --sym-train translations --samples 64 --steps 6 "
                          "--eval-samples 64 --threads 1";
        snprintf(cmd, sizeof cmd, "./examples/ground_state --plain --quiet --d 8 --samples 64 --steps 5 --eval-samples 64 --save " D "/p.tqs");
        CHECK_EQ(run(cmd), 0);
        snprintf(cmd, sizeof cmd, "%s --log " D "/s1.csv", sym);
        CHECK_EQ(run(cmd), 0);
        remove(D "/s2.csv");
        snprintf(cmd, sizeof cmd, "%s --log " D "/s2.csv --checkpoint " D "/s2.ckpt --stop-at 3", sym);
        CHECK_EQ(run(cmd), 3);
        CHECK_EQ(run("./examples/ground_state --resume " D "/s2.ckpt"), 0);
        CHECK(same_logs(D "/s1.csv", D "/s2.csv"));
    }
    /* the test can fail: a different seed gives a different log */
    snprintf(cmd, sizeof cmd, "%s --steps 6 --seed 10 --log " D "/t3.csv", base);
    CHECK_EQ(run(cmd), 0);
    CHECK(!same_logs(D "/t1.csv", D "/t3.csv"));
    printf("  logs: 1 thread = 2 threads = checkpoint + resume (timing column aside)\n");
}

/* Fault injection: output weights near the largest double make W_r z overflow
 * to inf, so every amplitude and energy is NaN. Every step must be rejected
 * with the parameters unchanged, the run must stop after --max-rejected steps
 * with status 1 and a message, and its checkpoint must hold the original,
 * finite parameters. */
static void test_faults(void) {
    tqs_vit m, back;
    tqs_vit_config c;
    tqs_hamiltonian H;
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    size_t k;
    int same, st, finite;
    char *err;
    memset(&c, 0, sizeof c);
    c.Lx = c.Ly = 4; c.b = 2; c.d = 8; c.h = 2; c.n_layers = 1; c.ff = 2;
    tqs_vit_init(&m, &c, 1);
    for (k = 0; k < (size_t)c.d * c.d; k++) m.params[m.Wr + k] = 1.5e308;
    CHECK_EQ(tqs_vit_save(&m, D "/huge.tqs"), 0);          /* finite: may be saved */
    /* library level: a rejected step leaves the parameters bitwise unchanged */
    tqs_hamiltonian_init(&H, 4, 4, 1, 0.5);
    test_plain_options(&o);
    o.n_samples = 64; o.n_chains = 8; o.lr = 0.1; o.diag_shift = 0.05;
    tqs_vit_load(&back, D "/huge.tqs");
    CHECK_EQ(tqs_vmc_init(&v, &H, &back, &o), 0);
    CHECK_EQ(tqs_vmc_step(&v, &info), 0);
    CHECK(info.rejected && !isfinite(info.energy));
    CHECK(!memcmp(back.params, m.params, 8 * m.n_params));
    tqs_vmc_free(&v); tqs_vit_free(&back);
    /* program level */
    remove(D "/f.ckpt");
    st = run("./examples/ground_state --plain --quiet --init " D "/huge.tqs --samples 64 --chains 8 --steps 20 --max-rejected 3 "
             "--checkpoint " D "/f.ckpt --log " D "/f.csv");
    err = slurp(D "/err.txt", NULL);
    CHECK_EQ(st, 1);
    CHECK(err && strstr(err, "3 consecutive steps rejected"));
    {
        tqs_vmc_options o2;
        memset(&o2, 0, sizeof o2);   /* the program's run: its flags, the rest the library's defaults */
        o2.n_samples = 64; o2.n_chains = 8; o2.n_steps = 20; o2.seed = 1;
        tqs_vit_load(&back, D "/huge.tqs");
        CHECK_EQ(tqs_vmc_init(&v, &H, &back, &o2), 0);
        CHECK_EQ(tqs_vmc_load_checkpoint(&v, D "/f.ckpt"), 0);
        for (k = 0, finite = 1; k < back.n_params; k++) finite &= isfinite(back.params[k]) != 0;
        same = !memcmp(back.params, m.params, 8 * m.n_params);
        CHECK(finite && same);
        CHECK_EQ(v.step, 3);
        tqs_vmc_free(&v); tqs_vit_free(&back);
    }
    printf("  non-finite energies: steps rejected, parameters unchanged, stopped after 3 with the last good checkpoint\n");
    free(err);
    tqs_hamiltonian_free(&H); tqs_vit_free(&m);
}

/* Every output path is checked before any work: refused with status 2 and
 * one line naming the flag (refused() also checks that nothing was written
 * and, with exactly one line on stderr, that no training started). A save
 * that still fails at the end prints the results first and writes the model
 * to a fallback file that the message names. --init with a contradicting
 * model flag is refused naming both values. */
static void test_outputs(void) {
    const char *G = "./examples/ground_state --quiet --steps 1";
    char a[512], *err, *out, *q, name[512];
    int st, n;
    tqs_vit m;
#define GS(extra, needle) do { snprintf(a, sizeof a, "%s %s", G, extra); refused(a, needle); } while (0)
    /* (refused() adds its own --log, --save and --checkpoint after these, and
     * the last of a flag counts: those three are given alone here) */
    refused_plain("./examples/ground_state --quiet --save /no_such_dir/m.tqs", "--save: cannot create files next to '/no_such_dir/m.tqs'", 2);
    refused_plain("./examples/ground_state --quiet --checkpoint /no_such_dir/c.ckpt", "--checkpoint: cannot create files", 2);
    refused_plain("./examples/ground_state --quiet --log /no_such_dir/l.csv", "--log: cannot create files", 2);
    refused_plain("./examples/ground_state --quiet --save " D, "--save: cannot write", 2);   /* a directory */
    GS("--plot /no_such_dir/p.svg", "--plot: cannot create files");
    GS("--json-log /no_such_dir/j.json", "--json-log: cannot create files");
    GS("--observables --obs-svg /no_such_dir/o", "--obs-svg: cannot create files");
    refused_plain("./examples/model init -o /no_such_dir/m.tqs", "-o: cannot create files", 2);
    refused_plain("./examples/attention " D "/no_such.tqs --svg /no_such_dir/att", "--svg: cannot create files", 2);
    /* --init against contradicting model flags */
    CHECK_EQ(run("./examples/model init -o " D "/i.tqs --d 16 --heads 2"), 0);
    GS("--init " D "/i.tqs --d 8", "--init: the model has --d 16, the flags say 8");
    GS("--init " D "/i.tqs --heads 4", "--init: the model has --heads 2, the flags say 4");
    GS("--init " D "/i.tqs --attention standard", "--init: the model has --attention factored, the flags say standard");
    CHECK_EQ(run("./examples/ground_state --plain --quiet --steps 1 --samples 64 --eval-samples 64 --init " D "/i.tqs --d 16 --heads 2"), 0);
    /* a save that fails only at the end: PATH.tmp is a directory, which the
     * check before the run takes for a leftover, but the saver cannot replace */
    remove(D "/late.tqs");
    mkdir(D "/late.tqs.tmp", 0777);
    st = run("./examples/ground_state --plain --quiet --steps 2 --samples 64 --eval-samples 64 --save " D "/late.tqs");
    out = slurp(D "/out.txt", NULL);
    err = slurp(D "/err.txt", NULL);
    CHECK_EQ(st, 1);
    CHECK(out && strstr(out, "E/N = "));                      /* the results were printed */
    q = err ? strstr(err, "written to '") : NULL;
    CHECK(q != NULL);
    if (q) {
        n = 0;
        q += strlen("written to '");
        while (q[n] && q[n] != '\'' && n < (int)sizeof name - 1) { name[n] = q[n]; n++; }
        name[n] = 0;
        CHECK_EQ(tqs_vit_load(&m, name), 0);                   /* the rescued model is complete */
        if (m.params) tqs_vit_free(&m);
        remove(name);
    }
    if (!q) printf("  late save failure: status %d, stderr: %s", st, err ? err : "(none)\n");
    rmdir(D "/late.tqs.tmp");
    free(out); free(err);
    /* the CSV log's variance column is per site, as its header says */
    out = slurp(D "/t1.csv", NULL);
    CHECK(out && !strncmp(out, "step,energy_per_site,error,variance_per_site,", 44));
    free(out);
    /* exact.c has the other programs' default J2 */
    CHECK_EQ(run("./examples/exact --L 4"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strstr(out, "J2=0.5"));
    free(out);
    printf("  output paths refused before any work; a late save failure rescued to %s\n", q ? "a named file" : "(nothing)");
#undef GS
}

/* --time-limit plans the run from three timed steps and re-plans it after
 * every step; the run's length (JSON "steps") is the steps it took (rows of
 * its log). (How close it ends to the budget is measured, not tested: see
 * examples/README.md.) */
static long csv_energies(const char *path, double *x, long cap);
static double json_scalar(const char *text, const char *key);
static void test_time_limit(void) {
    char *out, *err, *p;
    int steps = -1, planned = -2;
    double rows[4096];
    long n;
    remove(D "/tl.csv");
    CHECK_EQ(run("./examples/ground_state --plain --d 8 --heads 2 --layers 1 --samples 64 --chains 8 --eval-samples 64 "
                 "--time-limit 0.02 --json --print-every 1000 --log " D "/tl.csv"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    CHECK(out && err);
    if (out && (p = strstr(out, "\"steps\":"))) steps = atoi(p + 8);
    if (err && (p = strstr(err, "s for the evaluation: "))) planned = atoi(p + 22);
    n = csv_energies(D "/tl.csv", rows, 4096);
    printf("  --time-limit 0.02 (1.2 s): %d steps planned first, %d taken\n", planned, steps);
    CHECK(steps >= 1 && planned >= 1);
    CHECK_EQ(n, steps);
    free(out); free(err);
    /* a budget smaller than its fixed costs, on any machine: the same run with
     * one step is timed first (its "seconds": mostly the evaluation of E
     * samples, E / 64 times a step's 64), and the budget is a quarter of
     * that, so the evaluation alone exceeds it by construction however fast
     * the machine; the run takes one step and says it will end late. E starts
     * at 65,536 and doubles until a quarter of the run is at least the
     * smallest --time-limit (0.01 minutes), so a fast machine keeps it valid. */
    {
        char cmd[512];
        double whole = -1;
        long E;
        for (E = 65536; E <= 4194304; E *= 2) {
            snprintf(cmd, sizeof cmd, "./examples/ground_state --plain --d 8 --heads 2 --layers 1 --samples 64 --chains 8 "
                     "--eval-samples %ld --steps 1 --json --print-every 1000", E);
            CHECK_EQ(run(cmd), 0);
            out = slurp(D "/out.txt", NULL);
            whole = out ? json_scalar(out, "seconds") : -1;
            free(out);
            if (!(whole > 0) || whole / 4 / 60 >= 0.012) break;
        }
        CHECK(whole > 0);
        snprintf(cmd, sizeof cmd, "./examples/ground_state --plain --d 8 --heads 2 --layers 1 --samples 64 --chains 8 "
                 "--eval-samples %ld --time-limit %.6f --json --print-every 1000", E, whole / 4 / 60);
        CHECK_EQ(run(cmd), 0);
    }
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    steps = -1;
    if (out && (p = strstr(out, "\"steps\":"))) steps = atoi(p + 8);
    CHECK_EQ(steps, 1);
    CHECK(err && strstr(err, "leave no time to train: 1 step") != NULL);
    printf("  --time-limit of a quarter of the one-step run with E evaluation samples: %d step, the warning %s\n", steps,
           err && strstr(err, "leave no time") ? "printed" : "missing");
    free(out); free(err);
}

/* tqs_vmc_step past opt.n_steps is refused (its schedules have ended);
 * tqs_vmc_set_steps changes the run's length. */
static void test_step_limit(void) {
    tqs_vit m;
    tqs_vit_config c;
    tqs_hamiltonian H;
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    memset(&c, 0, sizeof c);
    c.Lx = c.Ly = 4; c.b = 2; c.d = 8; c.h = 2; c.n_layers = 1; c.ff = 2;
    tqs_vit_init(&m, &c, 1);
    tqs_hamiltonian_init(&H, 4, 4, 1, 0.5);
    test_plain_options(&o);
    o.n_samples = 32; o.n_chains = 8; o.n_steps = 2;
    CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), 0);
    CHECK_EQ(tqs_vmc_step(&v, &info), 0);
    CHECK_EQ(tqs_vmc_step(&v, &info), 0);
    CHECK_EQ(tqs_vmc_step(&v, &info), TQS_EINVAL);
    CHECK(strstr(tqs_last_error(), "all 2 steps") != NULL);
    CHECK_EQ(v.step, 2);
    /* a longer run: one more step, whose schedules end at the new length
     * (exponential lr 0.05 -> 0.005: step 2 of 3 is the final value) */
    CHECK_EQ(tqs_vmc_set_steps(&v, 1), TQS_EINVAL);   /* fewer than done */
    CHECK_EQ(tqs_vmc_set_steps(&v, 3), 0);
    CHECK_EQ(tqs_vmc_step(&v, &info), 0);
    CHECK_NEAR(info.lr, v.opt.lr_final, 1e-15);
    CHECK_EQ(tqs_vmc_step(&v, &info), TQS_EINVAL);
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

/* --json-log: NetKet's layout, and its numbers are the CSV log's (the CSV
 * has E/N to 12 digits, the JSON the total to 12: equal to 1e-10
 * relative); a resumed run continues it without repeating steps; and
 * --observables adds its arrays to --json. */
static long json_numbers(const char *text, const char *key, double *x, long cap) {
    char pat[64];
    const char *p;
    long k = 0;
    snprintf(pat, sizeof pat, "\"%s\":[", key);
    if (!(p = strstr(text, pat))) return -1;
    p += strlen(pat);
    while (*p && *p != ']' && k < cap) {
        char *end;
        if (!strncmp(p, "null", 4)) { x[k++] = NAN; p += 4; }
        else { x[k++] = strtod(p, &end); if (end == p) return -1; p = end; }
        if (*p == ',') p++;
    }
    return k;
}
/* A number "key":x of a JSON text (NAN when missing). */
static double json_scalar(const char *text, const char *key) {
    char pat[64];
    const char *p;
    snprintf(pat, sizeof pat, "\"%s\":", key);
    if (!text || !(p = strstr(text, pat))) return NAN;
    return strtod(p + strlen(pat), NULL);
}
/* Column col (0: step, 1: E/N, ..., 6: lr) of a ground_state log's rows. */
static long csv_column(const char *path, int col, double *x, long cap) {
    char *t = slurp(path, NULL), *p;
    long k = 0;
    if (!t) return -1;
    p = strchr(t, '\n');
    while (p && p[1] && k < cap) {
        const char *f = p + 1;
        char *end;
        int c;
        for (c = 0; c < col && f; c++) { f = strchr(f, ','); if (f) f++; }
        if (!f) break;
        x[k] = strtod(f, &end);
        if (end == f) break;
        k++;
        p = strchr(p + 1, '\n');
    }
    free(t);
    return k;
}
static long csv_energies(const char *path, double *x, long cap) { return csv_column(path, 1, x, cap); }
static void test_json_log(void) {
    const char *base = "./examples/ground_state --plain --quiet --d 8 --heads 2 --samples 128 --chains 8 --lr 0.05 --lr-final 0.05 --diag-shift 0.05 "
                       "--eval-samples 64 --seed 9";
    char cmd[1024], *t;
    double e[16], csv[16], e2[16], it[16];
    long n, m, k, worst_k = -1;
    double worst = 0;
    snprintf(cmd, sizeof cmd, "%s --steps 6 --log " D "/j.csv --json-log " D "/j.json", base);
    CHECK_EQ(run(cmd), 0);
    t = slurp(D "/j.json", NULL);
    CHECK(t != NULL);
    if (!t) return;
    CHECK(!strncmp(t, "{\"Energy\":{\"iters\":[", 20));
    CHECK(strstr(t, "\"Mean\":{\"real\":[") && strstr(t, "\"imag\":[") && strstr(t, "\"Sigma\":[") && strstr(t, "\"Variance\":[") &&
          strstr(t, "\"R_hat\":[") && strstr(t, "\"TauCorr\":["));
    n = json_numbers(t, "real", e, 16);
    CHECK_EQ(json_numbers(t, "iters", it, 16), 6);
    free(t);
    m = csv_energies(D "/j.csv", csv, 16);
    CHECK_EQ(n, 6);
    CHECK_EQ(m, 6);
    for (k = 0; k < n && k < m; k++) {
        double d = fabs(e[k] / 16 - csv[k]) / fabs(csv[k]);
        if (d > worst) { worst = d; worst_k = k; }
        CHECK_EQ((long)it[k], k);
    }
    CHECK_BELOW(worst, 1e-10);
    /* resumed from step 3 with the whole log present: still 6 entries, the same */
    snprintf(cmd, sizeof cmd, "%s --steps 6 --checkpoint " D "/j.ckpt --stop-at 3", base);
    CHECK_EQ(run(cmd), 3);
    CHECK_EQ(run("./examples/ground_state --resume " D "/j.ckpt --json-log " D "/j.json"), 0);
    t = slurp(D "/j.json", NULL);
    CHECK(t && json_numbers(t, "real", e2, 16) == 6);
    for (k = 0; k < 6 && t; k++) CHECK(fabs(e2[k] - e[k]) <= 1e-10 * fabs(e[k]));
    free(t);
    /* --observables in --json; measured on the evaluation's samples, whose
     * energy then comes from the observables' bonds: the same energy as
     * without them (the same terms in another order: rounding ~1e-15, printed
     * to 10 digits) */
    snprintf(cmd, sizeof cmd, "%s --steps 2 --json", base);
    CHECK_EQ(run(cmd), 0);
    t = slurp(D "/out.txt", NULL);
    e2[0] = json_scalar(t, "energy_per_site");
    CHECK(isfinite(e2[0]));
    free(t);
    snprintf(cmd, sizeof cmd, "%s --steps 2 --observables --json", base);
    CHECK_EQ(run(cmd), 0);
    t = slurp(D "/out.txt", NULL);
    CHECK(t && strstr(t, "\"observables\":{") && strstr(t, "\"C\":[") && strstr(t, "\"S\":[") && strstr(t, "\"dimer_x\":["));
    if (t) CHECK_EQ(json_numbers(t, "C", e, 16), 16);
    if (t) CHECK_NEAR(e[0], 0.75, 1e-12);
    if (t) CHECK_NEAR(json_scalar(t, "energy_per_site"), e2[0], 1e-9);
    free(t);
    printf("  --json-log: NetKet's keys, energies = the CSV's (worst %.2g at step %ld), resumed without repeats; --observables in --json\n",
           worst, worst_k);
}

/* examples/scan: two warm-started points, the CSV and the figures; its exact
 * columns against the library's Lanczos ground state and its observables
 * (printed to 10 and 8 digits); the trained energies not below the exact
 * ones by more than 5 error bars (the variational principle: a failure
 * would mean a wrong energy, not bad luck, ~3e-7 per point). */
static void test_scan(void) {
    static const double j2s[2] = {0.4, 0.5};
    char *t, *p;
    int k, rows = 0;
    double m2_exact[2] = {NAN, NAN};
    CHECK_EQ(run("./examples/scan --L 4 --from 0.4 --to 0.5 --step 0.1 --d 8 --samples 64 --steps 3 --steps-next 2 --eval-samples 256 "
                 "--threads 1 --prefix " D "/scan"), 0);
    CHECK(exists(D "/scan-energy.svg") && exists(D "/scan-order.svg"));
    t = slurp(D "/scan.csv", NULL);
    CHECK(t && !strncmp(t, "J2,energy_per_site,error,exact_energy_per_site,S_pipi,", 54));
    for (p = t ? strchr(t, '\n') : NULL, k = 0; p && p[1] && k < 2; p = strchr(p + 1, '\n'), k++) {
        double v[13];
        int n = sscanf(p + 1, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                       &v[8], &v[9], &v[10], &v[11], &v[12]);
        tqs_hamiltonian H;
        tqs_lanczos_options lo;
        tqs_ed_result ed;
        CHECK_EQ(n, 13);
        if (n != 13) break;
        rows++;
        CHECK_NEAR(v[0], j2s[k], 1e-12);
        tqs_hamiltonian_init(&H, 4, 4, 1.0, j2s[k]);
        memset(&lo, 0, sizeof lo);
        CHECK_EQ(tqs_exact_ground_state(&ed, &H, &lo), 0);
        CHECK_NEAR(v[3], ed.energy / 16, 1e-9);
        CHECK(v[1] >= v[3] - 5 * v[2]);
        CHECK(v[6] > 0 && v[6] < 0.75 && isfinite(v[4]) && isfinite(v[7]) && isfinite(v[10]));
        m2_exact[k] = v[6];
        tqs_ed_result_free(&ed); tqs_hamiltonian_free(&H);
    }
    CHECK_EQ(rows, 2);
    free(t);
    /* the Neel m^2 of the exact 4x4 ground state at J2 = 0.5, through exact --observables */
    CHECK_EQ(run("./examples/exact --L 4 --J2 0.5 --observables --json"), 0);
    t = slurp(D "/out.txt", NULL);
    if (t && strstr(t, "\"S_pipi\":")) CHECK_NEAR(m2_exact[1], strtod(strstr(t, "\"S_pipi\":") + 9, NULL) / 16, 1e-7);
    else CHECK(0);
    /* Marshall's sign: broken by the frustration at J2 = 0.5 (measured
     * 0.9745); exact at J2 = 0 (Marshall's theorem), to the Lanczos vector's
     * accuracy: a residual below 1e-10 moves weights by ~1e-10 */
    CHECK(t && strstr(t, "\"marshall_sign\":") && strtod(strstr(t, "\"marshall_sign\":") + 16, NULL) < 0.99);
    free(t);
    CHECK_EQ(run("./examples/exact --L 4 --J2 0 --observables --json"), 0);
    t = slurp(D "/out.txt", NULL);
    if (t && strstr(t, "\"marshall_sign\":")) CHECK_NEAR(strtod(strstr(t, "\"marshall_sign\":") + 16, NULL), 1.0, 1e-8);
    else CHECK(0);
    free(t);
    refused_plain("./examples/scan --from 0.5 --to 0.4", "--to", 2);
    printf("  scan: two warm-started points, exact columns = Lanczos, energies above the exact ones\n");
}

/* One definition of the defaults and of the recipe: the tour (tqs_recipe,
 * zero options but the step counts) and ground_state's two phases take the
 * same steps, bit for bit (the printed E/N to 12 digits); README quotes the
 * tour whole, so the quote is checked against the file; --init takes the
 * lattice from the model file. */
static void test_defaults_and_tour(void) {
    char *readme = slurp("README.md", NULL), *tour = slurp("examples/tour.c", NULL), *out;
    double csv[4], csv2[4], one[8], e0 = NAN, e2 = NAN, s0 = NAN, s1 = NAN;
    long n, n2, n_one;
    tqs_vmc_options o;
    tqs_vit_config c;
    CHECK(readme && tour && strstr(readme, tour) != NULL);   /* README's code block is the file */
    free(readme); free(tour);
    memset(&o, 0, sizeof o); memset(&c, 0, sizeof c);
    tqs_vmc_options_defaults(&o); tqs_vit_config_defaults(&c);
    CHECK(o.n_samples == 1024 && o.n_chains == 1024 && o.n_steps == 500 && o.lr == 0.05 && o.lr_final == 0.1 * 0.05 &&
          o.max_distance == 0.05 && c.b == 2 && c.d == 16 && c.h == 2 && c.n_layers == 2 && c.ff == 2);
    /* the sample power and the momentum depend on the lattice: left 0 here; the power 1 up
     * to 24 sites, 2 above; the momentum 0.9 up to 36 sites, off above */
    CHECK(o.sample_power == 0 && tqs_vmc_default_sample_power(24) == 1 && tqs_vmc_default_sample_power(25) == 2);
    CHECK(o.momentum == 0 && tqs_vmc_default_momentum(36) == 0.9 && tqs_vmc_default_momentum(37) < 0);
    {   /* and tqs_vmc_init resolves them for its lattice (6x6: 0.9; 8x8: off, plain SR) */
        int L;
        for (L = 6; L <= 8; L += 2) {
            tqs_vit m;
            tqs_hamiltonian H;
            tqs_vmc v;
            tqs_vmc_options vo;
            tqs_vit_config vc;
            memset(&vo, 0, sizeof vo); memset(&vc, 0, sizeof vc);
            vc.Lx = vc.Ly = L; vo.n_samples = 16;
            tqs_vit_config_defaults(&vc);
            CHECK_EQ(tqs_vit_init(&m, &vc, 1), 0);
            CHECK_EQ(tqs_hamiltonian_init(&H, L, L, 1.0, 0.5), 0);
            CHECK_EQ(tqs_vmc_init(&v, &H, &m, &vo), 0);
            CHECK(v.opt.momentum == (L == 6 ? 0.9 : -1.0) && v.opt.sample_power == 2.0);
            tqs_vmc_free(&v); tqs_hamiltonian_free(&H); tqs_vit_free(&m);
        }
    }
    tqs_vmc_options_defaults(&o);   /* idempotent: "off" stays off */
    o.momentum = -1; tqs_vmc_options_defaults(&o); CHECK(o.momentum == -1);
    /* the tour's recipe (tqs_recipe, 3 plain steps and 2 of psi_sym) against
     * ground_state's default, the recipe in one command, and against its two
     * phases as two commands: every printed energy the same */
    CHECK_EQ(run("(cd " D " && ../../examples/tour 3 2 > tour.out)"), 0);
    CHECK_EQ(run("./examples/ground_state --quiet --steps 3 --sym-steps 2 --seed 1 --eval-samples 1024 --log " D "/one.csv"), 0);
    n_one = csv_energies(D "/one.csv", one, 8);
    CHECK_EQ(run("./examples/ground_state --plain --quiet --samples 512 --steps 3 --seed 1 --eval-samples 1024 --save " D "/tp.tqs "
                 "--log " D "/tour.csv"), 0);
    CHECK_EQ(run("./examples/ground_state --quiet --init " D "/tp.tqs --sym-train point --samples 512 --lr 0.1 --lr-final 0.01 "
                 "--max-distance 0.1 --steps 2 --seed 1 --eval-samples 1024 --log " D "/tour2.csv"), 0);
    out = slurp(D "/tour.out", NULL);
    n = csv_energies(D "/tour.csv", csv, 4);
    n2 = csv_energies(D "/tour2.csv", csv2, 4);
    if (out) {
        const char *p = strstr(out, "plain   step    0  E/N = "), *q = strstr(out, "plain   step    2  E/N = ");
        const char *p2 = strstr(out, "psi_sym step    0  E/N = "), *q2 = strstr(out, "psi_sym step    1  E/N = ");
        if (p) e0 = atof(p + 25);
        if (q) e2 = atof(q + 25);
        if (p2) s0 = atof(p2 + 25);
        if (q2) s1 = atof(q2 + 25);
    }
    CHECK_EQ(n, 3);
    CHECK_EQ(n2, 2);
    /* both print 12 significant digits of the same double */
    CHECK(n == 3 && e0 == csv[0] && e2 == csv[2]);
    CHECK(n2 == 2 && s0 == csv2[0] && s1 == csv2[1]);
    CHECK(n_one == 5 && one[0] == csv[0] && one[2] == csv[2] && one[3] == csv2[0] && one[4] == csv2[1]);
    CHECK(exists(D "/tour.tqs") && exists(D "/tour.ckpt"));
    free(out);
    /* the tour as README tells a newcomer to use it: tour.c beside a copied
     * tqs.h in an empty folder, compiled by the command in its comment */
    CHECK_EQ(run("(rm -rf " D "/pasted && mkdir " D "/pasted && cp examples/tour.c tqs.h " D "/pasted/ && "
                 "cd " D "/pasted && ${CC:-cc} -O2 -fopenmp tour.c -lm && ./a.out 1 1)"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strstr(out, "psi_sym step    0  E/N = ") && strstr(out, "relative error"));
    free(out);
    /* --init MODEL: the lattice from the file; a contradicting --L refused */
    CHECK_EQ(run("./examples/model init -o " D "/six.tqs --L 6 --d 4 --heads 1 --layers 1 > /dev/null"), 0);
    CHECK_EQ(run("./examples/ground_state --plain --quiet --init " D "/six.tqs --steps 1 --samples 32 --eval-samples 32 --json"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strstr(out, "\"Lx\":6,\"Ly\":6"));
    free(out);
    refused_plain("./examples/ground_state --init " D "/six.tqs --L 4 --steps 1", "the model is for 6x6, the flags say 4x4", 2);
    /* --steps 0: the model evaluated, not trained (zero steps is not the default's 500) */
    CHECK_EQ(run("./examples/ground_state --quiet --init " D "/six.tqs --steps 0 --samples 32 --eval-samples 32 --json --save " D "/six0.tqs"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strstr(out, "\"steps\":0,"));
    free(out);
    {
        tqs_vit a, b2;
        memset(&a, 0, sizeof a); memset(&b2, 0, sizeof b2);
        CHECK(tqs_vit_load(&a, D "/six.tqs") == 0 && tqs_vit_load(&b2, D "/six0.tqs") == 0 && a.n_params == b2.n_params &&
              !memcmp(a.params, b2.params, 8 * a.n_params));   /* untrained: the same parameters */
        tqs_vit_free(&a); tqs_vit_free(&b2);
    }
    /* examples/README.md quotes every program's --help: the quotes are the programs' output */
    {
        const char *progs[5] = {"ground_state", "model", "exact", "attention", "scan"};
        char *doc = slurp("examples/README.md", NULL), cmd[128];
        int k, same = doc != NULL;
        for (k = 0; k < 5; k++) {
            snprintf(cmd, sizeof cmd, "./examples/%s --help", progs[k]);
            CHECK_EQ(run(cmd), 0);
            out = slurp(D "/out.txt", NULL);
            if (!out || !doc || !strstr(doc, out)) { printf("  examples/README.md does not quote '%s --help'\n", progs[k]); same = 0; }
            free(out);
        }
        CHECK(same);
        free(doc);
    }
    printf("  defaults: the tour's recipe = ground_state --steps 3 --sym-steps 2 = its two phases as two commands (E/N %.12g, %.12g; psi_sym %.12g, %.12g); "
           "--init takes the model's 6x6 lattice\n", e0, e2, s0, s1);
}

/* model exact: the model against the exact ground state by summing over the
 * basis. Its E/N must equal ground_state's exact enumeration of the same
 * model (two independent sums over the basis: rounding, 1e-10 of a number
 * of order 0.1); the momentum weights are the squared norms of the
 * projections onto orthogonal sectors and so sum to 1 (rounding, 1e-10); the
 * overlap with psi0 cannot exceed the weight in psi0's sector (psi0 lies in
 * it); a b = 1 ViT is translation invariant by construction, so all its
 * weight is at k = 0 and <Tx> = <Ty> = 1, and its projection over the
 * translations is the model itself, whose variance <H^2> - <H>^2 (from H
 * applied to the vector) must equal the variance ground_state --exact sums
 * from the local energies (6 significant digits printed: 1e-5 relative). */
static void json_array(const char *text, const char *key, double *x, int cap, int *n) {
    char pat[64];
    const char *p;
    char *end;
    *n = 0;
    snprintf(pat, sizeof pat, "\"%s\":[", key);
    if (!text || !(p = strstr(text, pat))) return;
    p += strlen(pat);
    while (*n < cap && *p && *p != ']') {
        x[(*n)++] = strtod(p, &end);
        if (end == p) break;
        p = *end == ',' ? end + 1 : end;
    }
}
static void test_model_exact(void) {
    char *out;
    double wk[16], gen[11], var[3], e_model, e_gs, sum = 0;
    int nk, ng, nv, k;
    CHECK_EQ(run("./examples/model init -o " D "/ex2.tqs --seed 3"), 0);
    CHECK_EQ(run("./examples/model exact " D "/ex2.tqs --json"), 0);
    out = slurp(D "/out.txt", NULL);
    e_model = json_scalar(out, "energy_per_site");
    json_array(out, "momentum_weights", wk, 16, &nk);
    CHECK_EQ(nk, 16);
    for (k = 0; k < nk; k++) sum += wk[k];
    CHECK_NEAR(sum, 1.0, 1e-10);
    CHECK(json_scalar(out, "overlap") <= json_scalar(out, "sector_weight") + 1e-12);
    /* the 4x4 J2 = 0.5 ground state (tests/test_ed.c, tests/reference_energies.py), printed to 10 decimals */
    CHECK_NEAR(json_scalar(out, "exact_energy_per_site"), -0.5286202095, 1e-9);
    /* the sector part's error, from its E/N (printed to 10 decimals, the error to 7 digits) */
    CHECK_NEAR(json_scalar(out, "sector_relative_error"),
               fabs(json_scalar(out, "sector_energy_per_site") / json_scalar(out, "exact_energy_per_site") - 1),
               1e-6 * json_scalar(out, "sector_relative_error") + 1e-9);
    free(out);
    CHECK_EQ(run("./examples/ground_state --quiet --init " D "/ex2.tqs --exact --steps 0 --json"), 0);
    out = slurp(D "/out.txt", NULL);
    e_gs = json_scalar(out, "energy_per_site");
    free(out);
    CHECK_NEAR(e_model, e_gs, 1e-9);   /* ground_state prints 10 decimals */
    CHECK_EQ(run("./examples/model init -o " D "/ex1.tqs --patch 1 --seed 3"), 0);
    CHECK_EQ(run("./examples/model exact " D "/ex1.tqs --json"), 0);
    out = slurp(D "/out.txt", NULL);
    json_array(out, "momentum_weights", wk, 16, &nk);
    json_array(out, "generators", gen, 11, &ng);
    json_array(out, "projected_variances_per_site", var, 3, &nv);
    CHECK(nk == 16 && ng == 10 && nv == 3);   /* Tx, Ty, flip and the 7 point elements of C4v besides the identity */
    CHECK_NEAR(wk[0], 1.0, 1e-10);
    CHECK_NEAR(gen[0], 1.0, 1e-10);
    CHECK_NEAR(gen[1], 1.0, 1e-10);
    free(out);
    CHECK_EQ(run("./examples/ground_state --quiet --init " D "/ex1.tqs --exact --steps 0 --json"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK_NEAR(var[0], json_scalar(out, "variance_per_site"), 1e-5 * var[0]);
    free(out);
    CHECK_EQ(run("./examples/model init -o " D "/ex6.tqs --L 6 --d 4 --heads 1 --layers 1"), 0);
    refused_plain("./examples/model exact " D "/ex6.tqs", "N <= 24", 2);
    refused_plain("./examples/model exact " D "/ex1.tqs --J3 1", "--J3", 2);
}

/* model metric: the spectrum of S from one step's samples. The step's E/N
 * must equal ground_state's first step from the same chains (seed, chains,
 * 50 thermalisation sweeps; both print 8 significant digits or more: 1e-7);
 * S = X^T X has at most 2 nonzero modes per distinct configuration (a row Re,
 * Im each), so the modes above the shift cannot exceed twice the distinct
 * samples; the shares sum to 1 (11 numbers of 6 digits: 1e-5); a step
 * reaches at most all of the variance. */
/* A psi_sym-trained model (the file records it): model exact leads with
 * psi_sym's numbers, and its energy (the projection built in model.c)
 * equals the library's symmetric amplitude enumerated by ground_state
 * --exact, both exact sums printed to 10 decimals. */
static void test_model_exact_sym(void) {
    char *out, *first_line;
    double e_model, e_gs;
    CHECK_EQ(run("./examples/ground_state --plain --d 8 --heads 2 --layers 1 --steps 10 --samples 128 --quiet --save " D "/symp.tqs"), 0);
    CHECK_EQ(run("./examples/ground_state --init " D "/symp.tqs --sym-train point --steps 2 --samples 128 --quiet --save " D "/syms.tqs"), 0);
    CHECK_EQ(run("./examples/model exact " D "/syms.tqs"), 0);
    out = slurp(D "/out.txt", NULL);
    first_line = out ? strtok(out, "\n") : NULL;
    CHECK(first_line && strstr(first_line, "psi_sym (trained, over the translations and point group): E/N"));
    free(out);
    CHECK_EQ(run("./examples/model exact " D "/syms.tqs --json"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strncmp(out, "{\"trained_symmetry\":3,", 22) == 0);
    e_model = json_scalar(out, "sym_energy_per_site");
    free(out);
    CHECK_EQ(run("./examples/ground_state --init " D "/syms.tqs --sym-train point --exact --steps 0 --json --quiet"), 0);
    out = slurp(D "/out.txt", NULL);
    e_gs = json_scalar(out, "energy_per_site");
    free(out);
    printf("  model exact of a psi_sym-trained model: psi_sym first, E/N %.10f (ground_state --exact %.10f)\n", e_model, e_gs);
    CHECK_NEAR(e_model, e_gs, 1e-9);
}

static void test_model_metric(void) {
    char *out;
    double e_metric, e_gs[2], total = 0, x[32];
    int n, k;
    CHECK_EQ(run("./examples/model metric " D "/ex2.tqs --samples 64 --json"), 0);
    out = slurp(D "/out.txt", NULL);
    e_metric = json_scalar(out, "energy_per_site");
    CHECK(json_scalar(out, "distinct") >= 2 && json_scalar(out, "distinct") <= 64);
    CHECK(json_scalar(out, "modes_above_shift") <= 2 * json_scalar(out, "distinct"));
    CHECK(json_scalar(out, "reachable_share") > 0 && json_scalar(out, "reachable_share") <= 1 + 1e-6);
    {   /* the decades' shares: every "share": in the array */
        const char *p = out ? strstr(out, "\"decades\":[") : NULL;
        n = 0;
        while (p && (p = strstr(p, "\"share\":")) && n < 32) { x[n++] = strtod(p + 8, NULL); p += 8; }
        for (k = 0; k < n; k++) total += x[k];
        CHECK_EQ(n, 11);
        CHECK_NEAR(total, 1.0, 1e-5);
    }
    free(out);
    CHECK_EQ(run("./examples/ground_state --plain --quiet --init " D "/ex2.tqs --steps 1 --samples 64 --chains 64 --thermalize 50 "
                 "--lr 1e-12 --eval-samples 64 --log " D "/metric.csv"), 0);
    CHECK_EQ(csv_energies(D "/metric.csv", e_gs, 2), 1);
    CHECK_NEAR(e_metric, e_gs[0], 1e-7);
    refused_plain("./examples/model metric " D "/ex2.tqs --samples 0", "--samples", 2);
    refused_plain("./examples/model metric " D "/ex2.tqs --shift", "--shift", 2);
}

/* 8x8 and 10x10 at J2 = 0.5 have no exact energy here; the report compares
 * with the best published variational one, signed (an upper bound: a run may
 * end below it). The difference is recomputed from the printed energy (10
 * significant digits); the JSON prints the difference to 6, a relative
 * rounding of at most 5e-6, so 1e-5 of it covers both. */
static void test_reference_energy(void) {
    char *out;
    double e, ref;
    CHECK_EQ(run("./examples/ground_state --plain --L 8 --d 8 --heads 2 --layers 1 --samples 64 --steps 1 --eval-samples 64 --json --quiet"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strstr(out, "\"exact_per_site\":null") && strstr(out, "Nomura"));
    e = json_scalar(out, "energy_per_site"); ref = json_scalar(out, "reference_per_site");
    CHECK_NEAR(ref, -0.498886, 0);
    CHECK_NEAR(json_scalar(out, "relative_to_reference"), (e - ref) / 0.498886, 1e-5 * fabs((e - ref) / 0.498886));
    free(out);
    CHECK_EQ(run("./examples/ground_state --plain --L 8 --J2 0.4 --d 8 --heads 2 --layers 1 --samples 64 --steps 1 --eval-samples 64 --json --quiet"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && !strstr(out, "reference"));   /* none at J2 = 0.4 */
    free(out);
}

/* --sign marshall: in the JSON and the model file, refused when an --init
 * model says otherwise; the default by lattice and J2; model sign on models
 * whose answer is known. */
static void test_sign_rule(void) {
    char *out, *err;
    /* --sign marshall: in the JSON, kept in the model file, and an --init
     * that says otherwise is refused by name */
    CHECK_EQ(run("./examples/ground_state --plain --sign marshall --d 8 --heads 2 --layers 1 --samples 64 --chains 8 --steps 1 "
                 "--eval-samples 64 --json --quiet --save " D "/sign.tqs"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strstr(out, "\"sign\":\"marshall\""));
    free(out);
    CHECK_EQ(run("./examples/model info " D "/sign.tqs"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strstr(out, "attention factored, times Marshall's sign"));
    free(out);
    CHECK_EQ(run("./examples/ground_state --plain --init " D "/sign.tqs --sign none --steps 1 --quiet"), 2);
    err = slurp(D "/err.txt", NULL);
    CHECK(err && strstr(err, "--init: the model has --sign marshall, the flags say none"));
    free(err);
    {   /* model sign: every parameter 0 makes log psi = 0 on every
         * configuration, so with the rule the phase is exactly pi n_A: 1.0000;
         * without it the |psi|^2 samples are uniform and <(-1)^n_A> is 0
         * within 1/sqrt(4096) = 0.016 per independent sample; below 0.2
         * leaves a factor 12 for the chains' correlation */
        tqs_vit z;
        tqs_vit_config zc;
        double v = -1;
        memset(&zc, 0, sizeof zc);
        zc.Lx = zc.Ly = 4; zc.d = 8; zc.sign_rule = TQS_SIGN_MARSHALL;
        tqs_vit_init(&z, &zc, 1);
        memset(z.params, 0, sizeof(double) * z.n_params);
        CHECK_EQ(tqs_vit_save(&z, D "/zero-sign.tqs"), 0);
        z.cfg.sign_rule = TQS_SIGN_NONE;
        CHECK_EQ(tqs_vit_save(&z, D "/zero.tqs"), 0);
        tqs_vit_free(&z);
        CHECK_EQ(run("./examples/model sign " D "/zero-sign.tqs"), 0);
        out = slurp(D "/out.txt", NULL);
        CHECK(out && strstr(out, "Marshall's sign: |<exp(i (arg psi - pi n_A))>| = 1.0000 over 4096 samples"));
        free(out);
        CHECK_EQ(run("./examples/model sign " D "/zero.tqs"), 0);
        out = slurp(D "/out.txt", NULL);
        CHECK(out && sscanf(strstr(out, "= ") ? strstr(out, "= ") + 2 : "", "%lf", &v) == 1 && v >= 0 && v < 0.2);
        free(out);
    }
    {   /* without --sign, a new model takes tqs_recipe_sign_rule's: Marshall's on
         * 8x8 at J2 = 0.5, none at J2 = 0.6 or on 4x4 */
        static const char *const cases[3][2] = { { "--L 8", "marshall" }, { "--L 8 --J2 0.6", "none" }, { "--L 4", "none" } };
        char cmd[512], want[64];
        int k;
        for (k = 0; k < 3; k++) {
            snprintf(cmd, sizeof cmd, "./examples/ground_state %s --plain --d 8 --heads 2 --layers 1 --samples 64 --chains 8 "
                     "--steps 1 --eval-samples 64 --json --quiet", cases[k][0]);
            snprintf(want, sizeof want, "\"sign\":\"%s\"", cases[k][1]);
            CHECK_EQ(run(cmd), 0);
            out = slurp(D "/out.txt", NULL);
            CHECK(out && strstr(out, want));
            free(out);
        }
        /* a model from a file keeps its own: an 8x8 one without the sign stays without */
        CHECK_EQ(run("./examples/model init -o " D "/m8.tqs --L 8 --d 8 --heads 2 --layers 1"), 0);
        CHECK_EQ(run("./examples/ground_state --plain --init " D "/m8.tqs --samples 64 --chains 8 --steps 1 --eval-samples 64 "
                     "--json --quiet"), 0);
        out = slurp(D "/out.txt", NULL);
        CHECK(out && strstr(out, "\"sign\":\"none\""));
        free(out);
    }
    CHECK_EQ(run("./examples/ground_state --sign minus --steps 1 --quiet"), 2);
    err = slurp(D "/err.txt", NULL);
    CHECK(err && strstr(err, "--sign: must be none or marshall (got 'minus')"));
    free(err);
}

/* The couplings travel with the model: --init without --J2 continues at the
 * J2 the model was trained at (its exact energy is that coupling's), a
 * different --J2 is a warm start said in one line, and a model file of
 * version 1 (no couplings recorded) says so and uses the default. */
static void test_init_couplings(void) {
    char *out, *err;
    unsigned char *buf = NULL, *v1;
    size_t len = 0;
    CHECK_EQ(run("./examples/ground_state --plain --J2 0.6 --d 8 --heads 2 --layers 1 --samples 64 --chains 8 --steps 2 "
                 "--eval-samples 64 --quiet --save " D "/j06.tqs"), 0);
    CHECK_EQ(run("./examples/ground_state --plain --init " D "/j06.tqs --samples 64 --chains 8 --steps 1 --eval-samples 64 --json"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    CHECK_NEAR(json_scalar(out, "J2"), 0.6, 0);
    /* the exact energy of the 4x4 lattice at J2 = 0.6 (Lanczos, tests/reference_energies.py 4 4 0.6), 10 decimals */
    CHECK_NEAR(json_scalar(out, "exact_per_site"), -0.5258958220, 1e-9);
    CHECK(err && strstr(err, "--init: at the couplings the model was trained at, J1 = 1, J2 = 0.6") != NULL);
    free(out); free(err);
    CHECK_EQ(run("./examples/model info " D "/j06.tqs"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strstr(out, "trained at J1 1, J2 0.6: psi itself") && !strstr(out, "Marshall"));
    free(out);
    CHECK_EQ(run("./examples/ground_state --plain --init " D "/j06.tqs --J2 0.5 --samples 64 --chains 8 --steps 1 --eval-samples 64 --json --quiet"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    CHECK_NEAR(json_scalar(out, "J2"), 0.5, 0);
    CHECK(err && strstr(err, "--init: a warm start: the model was trained at J1 = 1, J2 = 0.6, this run is at J1 = 1, J2 = 0.5") != NULL);
    free(out); free(err);
    /* the same model as a version 1 file: no couplings recorded */
    CHECK_EQ(tqs_read_file(D "/j06.tqs", &buf, &len, 1 << 24), 0);
    if (buf && len > 76) {   /* version 2 has 20 bytes more: J1, J2 and the trained symmetry after byte 52 */
        FILE *f;
        uint32_t crc;
        v1 = (unsigned char *)malloc(len - 20);
        memcpy(v1, buf, 52); memcpy(v1 + 52, buf + 72, len - 76);
        v1[8] = 1; v1[9] = v1[10] = v1[11] = 0;
        crc = tqs_crc32(0, v1, len - 24);
        v1[len - 24] = (unsigned char)crc; v1[len - 23] = (unsigned char)(crc >> 8);
        v1[len - 22] = (unsigned char)(crc >> 16); v1[len - 21] = (unsigned char)(crc >> 24);
        f = fopen(D "/j06-v1.tqs", "wb");
        if (f) { fwrite(v1, 1, len - 20, f); fclose(f); }
        free(v1);
    }
    free(buf);
    CHECK_EQ(run("./examples/ground_state --plain --init " D "/j06-v1.tqs --samples 64 --chains 8 --steps 1 --eval-samples 64 --json"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    CHECK_NEAR(json_scalar(out, "J2"), 0.5, 0);
    CHECK(err && strstr(err, "the model records no couplings (untrained, or a file of version 1): J1 = 1, J2 = 0.5") != NULL);
    printf("  --init: the model's J2 = 0.6 taken, a different --J2 said to be a warm start, a version 1 file said to record none\n");
    free(out); free(err);
}

/* Wrong physics is not silent: a plain state is checked against the
 * lattice's symmetries after training. A random ViT breaks them (its
 * <g> far from +-1): said in one line and in --json; the uniform state (every
 * parameter zero: log psi constant) is in one sector, |<g>| = 1 exactly. */
static void test_symmetry_check(void) {
    tqs_vit m;
    tqs_vit_config c;
    char *out, *err, *p;
    memset(&c, 0, sizeof c);
    c.Lx = c.Ly = 4; c.d = 8; c.h = 2; c.n_layers = 1;
    CHECK_EQ(run("./examples/model init -o " D "/rnd.tqs --d 8 --heads 2 --layers 1 --seed 5 > /dev/null"), 0);
    CHECK_EQ(run("./examples/ground_state --init " D "/rnd.tqs --steps 0 --eval-samples 256 --chains 16 --samples 16 --json"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    CHECK(out && strstr(out, "\"symmetry_check\":{") && strstr(out, "\"broken\":true"));
    CHECK(err && strstr(err, "ground_state: the trained state breaks the lattice's symmetry: <") && strstr(err, "--sym-train point"));
    free(out); free(err);
    CHECK_EQ(tqs_vit_init(&m, &c, 1), 0);
    memset(m.params, 0, sizeof(double) * m.n_params);
    CHECK_EQ(tqs_vit_save(&m, D "/uniform.tqs"), 0);
    tqs_vit_free(&m);
    CHECK_EQ(run("./examples/ground_state --init " D "/uniform.tqs --steps 0 --eval-samples 256 --chains 16 --samples 16 --json"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    CHECK(out && (p = strstr(out, "\"symmetry_check\":{")) && strstr(p, "\"expect\":1,") && strstr(p, "\"broken\":false"));
    CHECK(err && strstr(err, "symmetry check: the state keeps the lattice's symmetries") && !strstr(err, "breaks"));
    printf("  symmetry check: a random ViT said to break the lattice's symmetry, the uniform state not\n");
    free(out); free(err);
}

/* The default is the recipe, in one command: stopped in either phase and
 * resumed, its log (both phases numbered in one sequence) is the same as
 * without a stop; by the clock both phases are planned, one line each, and
 * the JSON's step counts add up to the log's rows; a model trained as
 * psi_sym given to --init continues as psi_sym; flags of the recipe's second
 * phase are refused for a single phase. */
static void test_recipe_command(void) {
    const char *A = "./examples/ground_state --quiet --d 8 --heads 2 --samples 64 --chains 8 --sym-samples 64 --eval-samples 64 "
                    "--steps 4 --sym-steps 3 --seed 4";
    char cmd[1024], *out, *err;
    double rows[4096];
    long n;
    int k;
    snprintf(cmd, sizeof cmd, "%s --log " D "/rc0.csv", A);
    CHECK_EQ(run(cmd), 0);
    CHECK_EQ(csv_energies(D "/rc0.csv", rows, 64), 7);
    for (k = 0; k < 2; k++) {   /* stopped after step 2 (plain) and after step 6 (psi_sym) */
        const char *stop = k ? "6" : "2";
        snprintf(cmd, sizeof cmd, "%s --log " D "/rc%d.csv --checkpoint " D "/rc%d.ckpt --stop-at %s", A, k + 1, k + 1, stop);
        remove(D "/rc1.csv"); remove(D "/rc2.csv");
        CHECK_EQ(run(cmd), 3);
        snprintf(cmd, sizeof cmd, "./examples/ground_state --resume " D "/rc%d.ckpt", k + 1);
        CHECK_EQ(run(cmd), 0);
        snprintf(cmd, sizeof cmd, D "/rc%d.csv", k + 1);
        CHECK(same_logs(D "/rc0.csv", cmd));
    }
    /* by the clock: 3 s for both phases */
    CHECK_EQ(run("./examples/ground_state --d 8 --heads 2 --layers 1 --samples 64 --chains 8 --sym-samples 64 --eval-samples 64 "
                 "--time-limit 0.05 --json --print-every 1000 --log " D "/rct.csv"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    n = csv_energies(D "/rct.csv", rows, 4096);
    CHECK(err && strstr(err, "phase 1 of 2: plain ViT") && strstr(err, "phase 2 of 2: psi_sym, 32 terms"));
    CHECK(out && json_scalar(out, "plain_steps") >= 1 && json_scalar(out, "sym_steps") >= 1 &&
          json_scalar(out, "plain_steps") + json_scalar(out, "sym_steps") == json_scalar(out, "steps") && json_scalar(out, "steps") == n);
    CHECK(out && strstr(out, "\"state\":\"psi_sym\",\"group\":\"point\""));
    printf("  the recipe by the clock (3 s): %.0f plain + %.0f psi_sym steps, %ld log rows\n", out ? json_scalar(out, "plain_steps") : -1,
           out ? json_scalar(out, "sym_steps") : -1, n);
    free(out); free(err);
    /* the same run stopped in its plain phase and resumed (a long run over
     * several sessions): the resumed invocation, which takes no --time-limit,
     * still plans psi_sym by the clock, for the budget's share the checkpoint
     * carries (2/3 of 3 s); without it the psi_sym phase would have no steps */
    remove(D "/rcr.csv");
    CHECK_EQ(run("./examples/ground_state --d 8 --heads 2 --layers 1 --samples 64 --chains 8 --sym-samples 64 --eval-samples 64 "
                 "--time-limit 0.05 --json --print-every 1000 --log " D "/rcr.csv --checkpoint " D "/rcr.ckpt --stop-at 1"), 3);
    CHECK_EQ(run("./examples/ground_state --resume " D "/rcr.ckpt --json --print-every 1000"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    n = csv_energies(D "/rcr.csv", rows, 4096);
    CHECK(err && strstr(err, "phase 2 of 2: psi_sym, 32 terms") && strstr(strstr(err, "phase 2 of 2"), "steps planned by the clock"));
    CHECK(out && json_scalar(out, "plain_steps") >= 1 && json_scalar(out, "sym_steps") >= 1 &&
          json_scalar(out, "plain_steps") + json_scalar(out, "sym_steps") == n);
    printf("  the timed recipe stopped in its plain phase and resumed: %.0f plain + %.0f psi_sym steps by the clock\n",
           out ? json_scalar(out, "plain_steps") : -1, out ? json_scalar(out, "sym_steps") : -1);
    free(out); free(err);
    /* --init of a psi_sym model: psi_sym again, over its group */
    snprintf(cmd, sizeof cmd, "%s --save " D "/rcs.tqs", A);
    CHECK_EQ(run(cmd), 0);
    CHECK_EQ(run("./examples/ground_state --init " D "/rcs.tqs --samples 64 --chains 8 --steps 1 --eval-samples 64 --json"), 0);
    out = slurp(D "/out.txt", NULL);
    CHECK(out && strstr(out, "\"plain_steps\":0,\"sym_steps\":1,\"state\":\"psi_sym\",\"group\":\"point\""));
    free(out);
    /* a ground state in no one sector (J1 = J2 = 0: H = 0, every state is a
     * ground state, and the Lanczos vector is no eigenvector of the group):
     * one line says so, the plain model is the result, the JSON stays JSON
     * (its E = 0 makes the V-score 0/0: null) */
    CHECK_EQ(run("./examples/ground_state --J1 0 --J2 0 --d 8 --heads 2 --samples 64 --chains 8 --sym-samples 64 "
                 "--eval-samples 64 --steps 3 --sym-steps 2 --json --quiet"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    CHECK(err && strstr(err, "no one-dimensional sector of --group point") && strstr(err, "no psi_sym phase"));
    CHECK(out && strstr(out, "\"plain_steps\":3,\"sym_steps\":0,\"state\":\"psi\"") && strstr(out, "\"v_score\":null") && !strstr(out, "nan"));
    free(out); free(err);
    /* the same with a budget (--time-limit 0.2: 12 s, a third of it planned
     * plain): the psi_sym phase's two thirds go to the plain phase, planned
     * again to the deadline, so the run ends with about 3x the steps the
     * plain phase had taken when no sector was found (its last progress line,
     * before the message); 1.5x leaves room for the machine's speed changing */
    CHECK_EQ(run("./examples/ground_state --J1 0 --J2 0 --d 8 --heads 2 --samples 64 --chains 8 --sym-samples 64 "
                 "--eval-samples 64 --time-limit 0.2 --threads 1 --print-every 100000 --json"), 0);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    {
        const char *m = err ? strstr(err, "no psi_sym phase; the plain phase goes on for the rest of the budget") : NULL, *p = m;
        long before = -1;
        while (p && p > err && strncmp(p, "\nstep ", 6)) p--;
        if (p && p > err) before = atol(p + 6) + 1;
        CHECK(m != NULL);
        CHECK(out && strstr(out, "\"sym_steps\":0,\"state\":\"psi\""));
        CHECK(before > 0 && json_scalar(out ? out : "", "plain_steps") > 1.5 * before);
        if (!(before > 0 && json_scalar(out ? out : "", "plain_steps") > 1.5 * before))
            printf("  %ld plain steps when no sector was found, %g at the end\n", before, json_scalar(out ? out : "", "plain_steps"));
    }
    free(out); free(err);
    /* --symmetrize of that plain state finds no sector either: exit status 1
     * (psi_sym's numbers are missing), but the trained model, the log and the
     * plain JSON are written, so the model can be analysed or trained on */
    remove(D "/nosec.tqs"); remove(D "/nosec.csv");
    CHECK_EQ(run("./examples/ground_state --plain --symmetrize --J1 0 --J2 0 --d 8 --heads 2 --samples 64 --chains 8 --sym-samples 64 "
                 "--eval-samples 64 --steps 3 --json --quiet --save " D "/nosec.tqs --log " D "/nosec.csv"), 1);
    out = slurp(D "/out.txt", NULL); err = slurp(D "/err.txt", NULL);
    CHECK(err && strstr(err, "--symmetrize: symmetry"));
    CHECK(out && strstr(out, "\"energy_per_site\":0,") && strstr(out, "\"sym_energy_per_site\":null"));
    {
        tqs_vit m;
        CHECK_EQ(tqs_vit_load(&m, D "/nosec.tqs"), 0);
        CHECK_EQ((long)m.n_params, (long)json_scalar(out ? out : "", "params"));
        tqs_vit_free(&m);
    }
    CHECK_EQ(csv_energies(D "/nosec.csv", rows, 4096), 3);
    free(out); free(err);
    /* --sym-warmup 2: psi_sym's lr rises as lr (t + 1) / 3 over its first two
     * steps, then its schedule (constant here); the plain phase's is untouched.
     * The log prints lr with %g, 6 digits: equal to 1e-5 relative */
    snprintf(cmd, sizeof cmd, "./examples/ground_state --quiet --d 8 --heads 2 --samples 64 --chains 8 --sym-samples 64 --eval-samples 64 "
             "--seed 4 --steps 3 --lr 0.04 --lr-final 0.04 --sym-steps 4 --sym-warmup 2 --sym-lr 0.09 --sym-lr-final 0.09 --log " D "/rcw.csv");
    CHECK_EQ(run(cmd), 0);
    {
        double want[7] = {0.04, 0.04, 0.04, 0.03, 0.06, 0.09, 0.09};
        int ok = csv_column(D "/rcw.csv", 6, rows, 64) == 7;
        for (k = 0; ok && k < 7; k++) ok = fabs(rows[k] - want[k]) <= 1e-5 * want[k];
        CHECK(ok);
        if (!ok) for (k = 0; k < 7; k++) printf("  step %d: lr %g, want %g\n", k, rows[k], want[k]);
    }
    refused_plain("./examples/ground_state --sym-steps 3 --sym-warmup 3", "--sym-warmup: 3 steps in a psi_sym phase of --sym-steps 3", 2);
    refused_plain("./examples/ground_state --plain --sym-warmup 2", "this run is a single plain phase", 2);
    refused_plain("./examples/ground_state --plain --sym-steps 3", "this run is a single plain phase", 2);
    refused_plain("./examples/ground_state --plain --sym-train point", "--plain", 2);
    refused_plain("./examples/ground_state --group nine", "--group: must be auto, point, full, translations or plain", 2);
    refused_plain("./examples/ground_state --plain-share 0.5", "--plain-share: a share of --time-limit", 2);
    refused_plain("./examples/ground_state --samples 64 --eval-samples 64", "fewer than the psi_sym phase's 512 chains", 2);
    printf("  the recipe in one command: stopped in either phase and resumed, the same log; --init of psi_sym continues it; "
           "--sym-warmup ramps psi_sym's lr alone\n");
}

/* attention --plot: one curve per log through the steps whose input
 * dependence was logged (counted here from the CSV itself: the non-empty
 * last fields), and a log without any refused in one line, no file written. */
static void test_attention_plot(void) {
    char *csv, *svg, *p, *path;
    int logged = 0, points = 0, lines = 0;
    CHECK_EQ(run("./examples/ground_state --plain --attention standard --d 8 --heads 2 --layers 1 --samples 64 --steps 7 "
                 "--attention-log 3 --eval-samples 64 --quiet --log " D "/att.csv"), 0);
    csv = slurp(D "/att.csv", NULL);
    for (p = csv ? strchr(csv, '\n') : NULL; p && p[1]; p = strchr(p + 1, '\n')) {
        char *eol = strchr(p + 1, '\n');
        if (eol && eol[-1] != ',') logged++;
    }
    CHECK(logged >= 3);   /* steps 0, 3, 6 at least */
    remove(D "/att.svg");
    CHECK_EQ(run("./examples/attention --plot " D "/att.svg " D "/att.csv"), 0);
    svg = slurp(D "/att.svg", NULL);
    path = svg ? strstr(svg, "stroke-width=\"1.6\" d=\"") : NULL;   /* the curve (no error band is drawn) */
    for (p = path; p && *p != '/'; p++) points += *p == 'M' || *p == 'L';
    CHECK_EQ(points, logged);
    CHECK(svg && strstr(svg, "att.csv"));   /* the legend names the log */
    free(csv); free(svg);
    CHECK_EQ(run("./examples/ground_state --plain --d 8 --heads 2 --layers 1 --samples 64 --steps 2 --eval-samples 64 --quiet --log " D "/fac.csv"), 0);
    remove(D "/att.svg");
    CHECK_EQ(run("./examples/attention --plot " D "/att.svg " D "/fac.csv"), 1);
    svg = slurp(D "/err.txt", NULL);
    for (p = svg; p && *p; p++) lines += *p == '\n';
    CHECK(svg && lines == 1 && strstr(svg, "no logged input dependence") && !exists(D "/att.svg"));
    free(svg);
    refused_plain("./examples/attention --plot " D "/att.svg", "LOG.csv", 2);
    printf("  attention --plot: %d logged steps, %d points drawn; a log without any refused, no file written\n", logged, points);
}

/* examples/curve.sh, the curve of error against time of the large-lattice
 * runs: a log of 30 steps of 10 s each whose energies are known, split in
 * two files that overlap (a resumed run's logs), against the values by hand:
 * at 60 s step 5, mean of steps 0-5; at 120 s step 11, mean of steps 0-11;
 * at 240 s step 23, mean of steps 4-23; at the end step 29, mean of 10-29.
 * E_k = -0.4 - 0.001 k, so a mean over steps a..b is -0.4 - 0.0005 (a + b). */
static void test_curve(void) {
    FILE *f = fopen(D "/c1.csv", "w"), *g = fopen(D "/c2.csv", "w");
    char *out;
    int k;
    if (!f || !g) { CHECK(0); if (f) fclose(f); if (g) fclose(g); return; }
    fprintf(f, "step,energy_per_site,error,variance_per_site,acceptance,rhat,lr,diag_shift,solver,seconds,input_dependence\n");
    fprintf(g, "step,energy_per_site,error,variance_per_site,acceptance,rhat,lr,diag_shift,solver,seconds,input_dependence\n");
    for (k = 0; k < 30; k++) {
        if (k < 18) fprintf(f, "%d,%.6f,0.001,0.01,0.5,nan,0.05,0.001,sample,10,\n", k, -0.4 - 0.001 * k);
        if (k >= 15) fprintf(g, "%d,%.6f,0.001,0.01,0.5,nan,0.05,0.001,sample,10,\n", k, -0.4 - 0.001 * k);
    }
    fclose(f); fclose(g);
    CHECK_EQ(run("./examples/curve.sh -0.5 " D "/c1.csv " D "/c2.csv"), 0);
    out = slurp(D "/out.txt", NULL);
    /* minutes, step, mean, relative (mean + 0.5) / 0.5 */
    CHECK(out && strstr(out, "      1.0       5    -0.402500   +1.95e-01"));
    CHECK(out && strstr(out, "      2.0      11    -0.405500   +1.89e-01"));
    CHECK(out && strstr(out, "      4.0      23    -0.413500   +1.73e-01"));
    CHECK(out && strstr(out, "      5.0      29    -0.419500   +1.61e-01"));
    if (out && !strstr(out, "      5.0      29    -0.419500")) printf("%s", out);
    free(out);
    refused_plain("./examples/curve.sh -0.5 " D "/no_such.csv", "no_such.csv", 2);
}

int main(void) {
    mkdir("build", 0777);
    mkdir(D, 0777);
    if (!exists("examples/ground_state")) { printf("run from the repository root after make\n0 passed, 1 failed\n"); return 1; }
    test_flags();
    test_determinism();
    test_defaults_and_tour();
    test_recipe_command();
    test_json_log();
    test_outputs();
    test_step_limit();
    test_time_limit();
    test_faults();
    test_scan();
    test_model_exact();
    test_model_metric();
    test_model_exact_sym();
    test_init_couplings();
    test_sign_rule();
    test_reference_energy();
    test_symmetry_check();
    test_attention_plot();
    test_curve();
    return test_summary();
}
