/* steps.c - seconds per optimisation step by phase on 4x4 to 10x10, through
 * the public API only, so that any commit's tqs.h can be timed in the same
 * session (the ratios of examples/README.md, "8x8 and 10x10"):
 *   git show COMMIT:tqs.h > /tmp/c/tqs.h
 *   cc -O3 -march=native -ffp-contract=fast -fopenmp -I/tmp/c bench/steps.c -o /tmp/c/steps -lm && /tmp/c/steps 2
 * The default model, 1024 samples, the library's default chains, plain SR
 * (as bench's step rows), the mean of steps 3-8; the argument is the
 * thread count (default 2). */
#define TQS_IMPLEMENTATION
#include "tqs.h"
#include <stdio.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
int main(int argc, char **argv) {
    int Ls[4] = {4, 6, 8, 10}, k, j, i, th = argc > 1 ? atoi(argv[1]) : 2;
    tqs_set_threads(th);
    for (k = 0; k < 4; k++) {
        tqs_vit_config c; tqs_vit m; tqs_hamiltonian H; tqs_vmc v; tqs_vmc_options o; tqs_step_info info;
        double ph[4] = {0, 0, 0, 0}, t;
        memset(&c, 0, sizeof c); c.Lx = c.Ly = Ls[k]; tqs_vit_config_defaults(&c);
        tqs_vit_init(&m, &c, 1); tqs_hamiltonian_init(&H, Ls[k], Ls[k], 1.0, 0.5);
        memset(&o, 0, sizeof o); o.n_samples = 1024; o.lr = 0.01; o.diag_shift = 0.05; o.n_steps = 8; o.momentum = -1; o.max_distance = -1;
        if (tqs_vmc_init(&v, &H, &m, &o)) { printf("%s\n", tqs_last_error()); return 1; }
        tqs_vmc_step(&v, &info); tqs_vmc_step(&v, &info);
        t = now();
        for (i = 0; i < 6; i++) { tqs_vmc_step(&v, &info); for (j = 0; j < 4; j++) ph[j] += info.seconds[j] / 6; }
        t = (now() - t) / 6;
        printf("%dx%d th %d: step %.3f  sampling %.3f  local energy %.3f  Jacobian %.3f  SR %.3f\n", Ls[k], Ls[k], th, t, ph[0], ph[1], ph[2], ph[3]);
        fflush(stdout);
        tqs_vmc_free(&v); tqs_vit_free(&m); tqs_hamiltonian_free(&H);
    }
    return 0;
}
