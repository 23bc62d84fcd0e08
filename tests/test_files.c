/* Files under failure: a writer killed at random moments, a full disk, a
 * missing directory, a non-finite model. POSIX (fork, kill, setrlimit). */
#define _POSIX_C_SOURCE 200809L
#define TQS_IMPLEMENTATION
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

int main(void) {
    mkdir("build", 0777);
    mkdir(DIR, 0777);
#ifdef TQS_TEST_SHORT
    test_kill(30);
#else
    test_kill(200);
#endif
    test_full_disk();
    return test_summary();
}
