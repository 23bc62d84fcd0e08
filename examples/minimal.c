/* minimal.c - the shortest complete program: train a small factored ViT on
 * the 4x4 J1-J2 model (J2 = 0.5) by VMC with stochastic reconfiguration.
 *   cc -O2 -fopenmp minimal.c -lm && ./a.out */
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include <stdio.h>

int main(void) {
    tqs_hamiltonian H;           /* lattice + couplings */
    tqs_vit model;               /* the wave function */
    tqs_vit_config cfg = {0};
    tqs_vmc_options opt = {0};   /* zero means default */
    tqs_vmc vmc;                 /* sampler, workspaces, SR */
    tqs_step_info info;
    int step, N;

    if (tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5)) goto fail;
    N = H.lat.N;                 /* 16 sites: the energies in tqs_step_info are totals */

    cfg.Lx = 4; cfg.Ly = 4;      /* lattice */
    cfg.b = 2;                   /* 2x2 patches: 4 tokens */
    cfg.d = 8; cfg.h = 2;        /* embedding dimension, heads */
    cfg.n_layers = 2; cfg.ff = 2;
    cfg.attention = TQS_ATTN_FACTORED;
    if (tqs_vit_init(&model, &cfg, 1)) goto fail;

    opt.n_samples = 512;         /* per step, over 16 Markov chains */
    opt.n_chains = 16;
    opt.n_steps = 100;
    opt.lr = 0.05;               /* SR learning rate and diagonal shift */
    opt.diag_shift = 1e-2;
    opt.seed = 1;
    if (tqs_vmc_init(&vmc, &H, &model, &opt)) goto fail;

    for (step = 0; step < opt.n_steps; step++) {
        if (tqs_vmc_step(&vmc, &info)) goto fail;
        if (step % 10 == 0)
            printf("step %3d  E/N = %.5f +- %.5f\n", step, info.energy / N, info.error / N);
    }
    if (tqs_vmc_evaluate(&vmc, 8192, &info)) goto fail;
    printf("final    E/N = %.5f +- %.5f   (exact -0.52862)\n", info.energy / N, info.error / N);

    tqs_vmc_free(&vmc);
    tqs_vit_free(&model);
    tqs_hamiltonian_free(&H);
    return 0;
fail:
    fprintf(stderr, "minimal: %s\n", tqs_last_error());
    return 1;
}
