/* Files under failure: a writer killed at random moments, a full disk, a
 * missing directory, a non-finite model, corrupt checkpoints. POSIX (fork,
 * kill, setrlimit). */
#define _POSIX_C_SOURCE 200809L
#include "../tqs.h"
#include "test.h"
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIR "build/test_files"

static void make_model(tqs_vit *m, int d, uint64_t seed) {
    tqs_vit_config c;
    memset(&c, 0, sizeof c);
    c.Lx = c.Ly = 4; c.b = 2; c.d = d; c.h = 2; c.n_layers = 2; c.ff = 2; c.attention = TQS_ATTN_FACTORED;
    tqs_vit_init(m, &c, seed);
}

/* 1 if the file at path loads and equals a or b bitwise, 0 otherwise. */
static int loads_as_one_of(const char *path, const tqs_vit *a, const tqs_vit *b) {
    tqs_vit m;
    int ok;
    if (tqs_vit_load(&m, path)) return 0;
    ok = (m.n_params == a->n_params && !memcmp(m.params, a->params, 8 * a->n_params)) ||
         (m.n_params == b->n_params && !memcmp(m.params, b->params, 8 * b->n_params));
    tqs_vit_free(&m);
    return ok;
}

/* A child saves two different models in turn, as fast as it can, to one path;
 * the parent kills it (SIGKILL) after a random delay, many times. Whatever the
 * moment, the file left behind must load and be one of the two models. */
static void test_kill(int rounds) {
    tqs_vit a, b;
    tqs_rng rng;
    int r, bad = 0;
    make_model(&a, 16, 1); make_model(&b, 32, 2);   /* different sizes: a torn file cannot pass */
    CHECK_EQ(tqs_vit_save(&a, DIR "/kill.tqs"), 0);
    tqs_rng_seed(&rng, 42, 0);
    for (r = 0; r < rounds; r++) {
        pid_t pid = fork();
        struct timespec ts;
        if (pid == 0) {
            long k;
            for (k = 0;; k++) tqs_vit_save(k % 2 ? &a : &b, DIR "/kill.tqs");
        }
        ts.tv_sec = 0; ts.tv_nsec = (long)(tqs_rng_uniform(&rng) * 20e6);   /* 0-20 ms: hundreds of writes */
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        bad += !loads_as_one_of(DIR "/kill.tqs", &a, &b);
    }
    printf("  writer killed %d times at random moments: %d files left unloadable or torn\n", rounds, bad);
    CHECK_EQ(bad, 0);
    tqs_vit_free(&a); tqs_vit_free(&b);
}

/* A full disk, simulated by a file-size limit (writes past it fail with
 * EFBIG): saving a large model over a small one fails with a message, and
 * the small one is intact. */
static void test_full_disk(void) {
    tqs_vit small, big;
    pid_t pid;
    int status = -1;
    make_model(&small, 8, 3); make_model(&big, 64, 4);
    CHECK_EQ(tqs_vit_save(&small, DIR "/full.tqs"), 0);
    pid = fork();
    if (pid == 0) {
        struct rlimit rl;
        signal(SIGXFSZ, SIG_IGN);           /* get EFBIG instead of being killed */
        rl.rlim_cur = rl.rlim_max = 64 * 1024;
        setrlimit(RLIMIT_FSIZE, &rl);
        _exit(tqs_vit_save(&big, DIR "/full.tqs") == TQS_EIO && strstr(tqs_last_error(), "previous file is unchanged") ? 0 : 1);
    }
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(loads_as_one_of(DIR "/full.tqs", &small, &small));
    /* no directory: an error, nothing created */
    CHECK_EQ(tqs_vit_save(&small, DIR "/no/such/dir/m.tqs"), TQS_EIO);
    /* a non-finite parameter: refused, the previous file kept */
    big.params[5] = NAN;
    CHECK_EQ(tqs_vit_save(&big, DIR "/full.tqs"), TQS_ENUMERIC);
    CHECK(loads_as_one_of(DIR "/full.tqs", &small, &small));
    tqs_vit_free(&small); tqs_vit_free(&big);
}

/* Every corruption of a checkpoint is refused with its own message, and the
 * run it was loaded into keeps its parameters and step. */
static void test_checkpoint_corruption(void) {
    tqs_hamiltonian H;
    tqs_vit m;
    tqs_vmc v;
    tqs_vmc_options o;
    tqs_step_info info;
    unsigned char *buf, *bad;
    size_t len;
    double *before;
    long step;
    int ok = 1;
    struct { size_t at; unsigned char value; int truncate; const char *message; } cases[] = {
        {0, 'X', 0, "magic"},           /* bad magic */
        {8, 7, 0, "version"},           /* version 7 */
        {20, 99, 0, "chains"},          /* chain count */
        {24, 17, 0, "sites"},           /* site count */
        {0, 0, 40, "truncated"},        /* cut short */
        {100, 0, 0, "CRC"},             /* one byte flipped (set below) */
        {8, 2, 0, "sections"},          /* version 2: its sections end before the file does */
    };
    size_t k;
    tqs_hamiltonian_init(&H, 4, 4, 1, 0.5);
    make_model(&m, 8, 5);
    test_plain_options(&o);
    o.n_samples = 32; o.n_chains = 8; o.lr = 0.05; o.diag_shift = 0.05;
    tqs_vmc_init(&v, &H, &m, &o);
    tqs_vmc_step(&v, &info);
    CHECK_EQ(tqs_vmc_save_checkpoint(&v, DIR "/run.ckpt"), 0);
    CHECK_EQ(tqs_read_file(DIR "/run.ckpt", &buf, &len, 1 << 24), 0);
    tqs_vmc_step(&v, &info);    /* the run moves on; a refused load must not pull it back */
    before = (double *)malloc(8 * m.n_params);
    memcpy(before, m.params, 8 * m.n_params);
    step = v.step;
    bad = (unsigned char *)malloc(len);
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n = len;
        int rc;
        memcpy(bad, buf, len);
        if (cases[k].truncate) n = (size_t)cases[k].truncate;
        else if (k == 5) bad[cases[k].at] ^= 0x40;
        else bad[cases[k].at] = cases[k].value;
        rc = tqs_vmc_checkpoint_from_bytes(&v, bad, n);
        if (rc != TQS_EFORMAT || !strstr(tqs_last_error(), cases[k].message)) {
            printf("  corruption %zu: rc %d, '%s' (wanted '%s')\n", k, rc, tqs_last_error(), cases[k].message);
            ok = 0;
        }
        ok &= !memcmp(before, m.params, 8 * m.n_params) && v.step == step;
    }
    printf("  checkpoint: magic, version, chains, sites, truncation, CRC and sections that do not fit the version each refused by name; the run untouched\n");
    CHECK(ok);
    CHECK_EQ(tqs_vmc_checkpoint_from_bytes(&v, buf, len), 0);   /* the intact file still loads */
    CHECK_EQ(v.step, 1);
    free(buf); free(bad); free(before);
    tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
}

/* The run record of a checkpoint: tqs_vmc_checkpoint_info gives back the
 * options, couplings, sector and note exactly (doubles printed with 17
 * digits round-trip); a run that differs in any recorded option refuses the
 * file, naming the option, and is left untouched; one that agrees loads it. */
static void test_checkpoint_run(void) {
    tqs_hamiltonian H, H2;
    tqs_vit m;
    tqs_vmc v, w;
    tqs_vmc_options o, o2;
    tqs_symmetry G;
    tqs_checkpoint_info *ci = (tqs_checkpoint_info *)malloc(sizeof *ci);
    double *before;
    int k, untouched = 1, same_sector;
    struct { const char *key; int which; } changes[] = {
        {"n_steps", 0}, {"lr", 1}, {"lr_final", 2}, {"diag_shift", 3}, {"momentum", 4}, {"max_distance", 5},
        {"seed", 6}, {"solver", 7}, {"schedule", 8}, {"warmup", 9}, {"sweeps", 10}, {"J2", 11}, {"psi", 12},
        {"translations and point group", 13}, {"sample_power", 14}, {"clip_local_energy", 15},
    };
    tqs_symmetry Gp;   /* the same sector summed over another group */
    tqs_hamiltonian_init(&H, 4, 4, 1, 0.45);
    make_model(&m, 8, 5);
    tqs_symmetry_init_translations(&G, 4, 4, 2);
    {   double pt[8] = {1, -1, 1, -1, 1, -1, 1, -1};   /* some sector: only stored and compared here */
        tqs_symmetry_set_characters(&G, -1, 1, pt, -1);
        tqs_symmetry_init_point(&Gp, 4, 4, 2);
        tqs_symmetry_set_characters(&Gp, -1, 1, pt, -1); }
    memset(&o, 0, sizeof o);
    o.n_samples = 32; o.n_chains = 8; o.n_steps = 7; o.lr = 0.1 / 3; o.seed = 12345678901234ull; o.warmup = 2;
    o.schedule = TQS_SCHEDULE_COSINE; o.sr.solver = TQS_SOLVER_CG; o.symmetry = &G; o.note = "--flag\nvalue with spaces\nnote 2";
    CHECK_EQ(tqs_vmc_init(&v, &H, &m, &o), 0);
    CHECK_EQ(tqs_vmc_step(&v, NULL), 0);
    CHECK_EQ(tqs_vmc_save_checkpoint(&v, DIR "/rec.ckpt"), 0);
    CHECK_EQ(tqs_vmc_checkpoint_info(ci, DIR "/rec.ckpt"), 0);
    CHECK(ci->version == 4 && ci->has_run && ci->step == 1 && ci->n_chains == 8 && ci->N == 16 && ci->opt.rollback == -1 && ci->opt.clip_local_energy == -1);
    CHECK(!memcmp(&ci->cfg, &m.cfg, sizeof m.cfg));
    CHECK(ci->J1 == 1 && ci->J2 == 0.45 && ci->opt.lr == 0.1 / 3 && ci->opt.lr_final == v.opt.lr_final && ci->opt.seed == o.seed);
    CHECK(ci->opt.n_steps == 7 && ci->opt.warmup == 2 && ci->opt.schedule == TQS_SCHEDULE_COSINE && ci->opt.sr.solver == TQS_SOLVER_CG);
    CHECK(ci->opt.momentum == 0.9 && ci->opt.max_distance == 0.05 && ci->opt.diag_shift == v.opt.diag_shift && ci->opt.sr.cg_tol == v.opt.sr.cg_tol);
    CHECK(ci->opt.sample_power == 1.0 && v.opt.sample_power == 1.0);   /* the default on 4x4, resolved and stored */
    {   /* a version-3 file written before the record had sample_power: read as 2 */
        tqs_checkpoint_info *old = (tqs_checkpoint_info *)malloc(sizeof *old);
        CHECK_EQ(tqs_vmc_checkpoint_info(old, "tests/corpus/checkpoint/run4x4-v3.ckpt"), 0);
        CHECK(old->version == 3 && old->has_run && old->opt.sample_power == 2.0 && old->opt.clip_local_energy == -1);   /* (no clip then) */
        free(old);
    }
    same_sector = ci->symmetry == 2 && ci->symmetry_b == 2 && ci->chi_x == -1 && ci->chi_y == 1 && ci->chi_flip == -1;
    for (k = 0; k < 8; k++) same_sector &= ci->chi_point[k] == G.chi_point[k];
    CHECK(same_sector);
    CHECK(!strcmp(ci->note, o.note));
    /* every recorded difference refused by name */
    before = (double *)malloc(8 * m.n_params);
    for (k = 0; k < (int)(sizeof changes / sizeof changes[0]); k++) {
        int rc;
        o2 = o;
        tqs_hamiltonian_init(&H2, 4, 4, 1, changes[k].which == 11 ? 0.5 : 0.45);
        switch (changes[k].which) {
        case 0: o2.n_steps = 8; break;            case 1: o2.lr = 0.1 / 3 + 1e-17; break;
        case 2: o2.lr_final = 0.5; break;         case 3: o2.diag_shift = 1e-2; break;
        case 4: o2.momentum = -1; break;          case 5: o2.max_distance = -1; break;
        case 6: o2.seed = 1; break;               case 7: o2.sr.solver = TQS_SOLVER_PARAMETER; break;
        case 8: o2.schedule = TQS_SCHEDULE_EXP; break;  case 9: o2.warmup = 1; break;
        case 10: o2.sweeps = 2; break;            case 12: o2.symmetry = NULL; break;
        case 13: o2.symmetry = &Gp; break;        case 14: o2.sample_power = 1.5; break;
        case 15: o2.clip_local_energy = 5; break;
        default: break;
        }
        CHECK_EQ(tqs_vmc_init(&w, &H2, &m, &o2), 0);
        memcpy(before, m.params, 8 * m.n_params);
        rc = tqs_vmc_load_checkpoint(&w, DIR "/rec.ckpt");
        if (rc != TQS_EINVAL || !strstr(tqs_last_error(), changes[k].key)) {
            printf("  changed %s: rc %d, '%s'\n", changes[k].key, rc, tqs_last_error());
            CHECK(0);
        }
        untouched &= !memcmp(before, m.params, 8 * m.n_params) && w.step == 0;
        tqs_vmc_free(&w); tqs_hamiltonian_free(&H2);
    }
    CHECK(untouched);
    /* the same run (another note) loads */
    o2 = o; o2.note = NULL;
    CHECK_EQ(tqs_vmc_init(&w, &H, &m, &o2), 0);
    CHECK_EQ(tqs_vmc_load_checkpoint(&w, DIR "/rec.ckpt"), 0);
    CHECK_EQ(w.step, 1);
    printf("  checkpoint run record: options, couplings, sector and note read back exactly; %d kinds of difference refused by name\n",
           (int)(sizeof changes / sizeof changes[0]));
    tqs_vmc_free(&w); tqs_vmc_free(&v); tqs_symmetry_free(&G); tqs_symmetry_free(&Gp); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    free(before); free(ci);
}

int main(void) {
    mkdir("build", 0777);
    mkdir(DIR, 0777);
#ifdef TQS_TEST_SHORT
    test_kill(30);
#else
    test_kill(200);
#endif
    test_full_disk();
    test_checkpoint_corruption();
    test_checkpoint_run();
    return test_summary();
}
