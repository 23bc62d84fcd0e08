/* tour.c - the API in ten calls (README.md quotes this file whole): train
 * the default ViT on the 4x4 J1-J2 model at J2 = 0.5, then compare with
 * exact diagonalisation. Zero options are the tuned defaults that
 * examples/ground_state uses too, so this trains as `make run` does.
 *   cc -O2 -fopenmp tour.c -lm && ./a.out [steps]     (no steps: the default, 500) */
#define TQS_IMPLEMENTATION
#include "tqs.h"   /* beside this file, or found with -I */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    tqs_hamiltonian H;              /* lattice + couplings */
    tqs_vit_config cfg = {0};       /* zero means default: 2x2 patches, d = 16, 2 heads, 2 layers */
    tqs_vit model;                  /* the wave function; every parameter in model.params */
    tqs_vmc_options opt = {0};      /* zero means default: 1024 samples, 500 steps, SR with SPRING */
    tqs_vmc vmc;                    /* sampler, workspaces, the SR solver: allocated once */
    tqs_step_info info;             /* what a step measured: energies are of the whole lattice */
    tqs_ed_result ed;               /* exact diagonalisation */
    int N;

    if (tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5)) goto fail;              /* 1 */
    N = H.lat.N;
    cfg.Lx = 4; cfg.Ly = 4;
    if (tqs_vit_init(&model, &cfg, 1)) goto fail;                         /* 2 */
    opt.n_steps = argc > 1 ? atoi(argv[1]) : 0;                           /* 3 */
    opt.seed = 1;
    if (tqs_vmc_init(&vmc, &H, &model, &opt)) goto fail;                  /* 4 */
    while (vmc.step < vmc.opt.n_steps) {
        if (tqs_vmc_step(&vmc, &info)) goto fail;                         /* 5 */
        if (info.step % 50 == 0 || vmc.step == vmc.opt.n_steps)
            printf("step %4ld  E/N = %.12g +- %.2g\n", info.step, info.energy / N, info.error / N);
    }
    if (tqs_vmc_evaluate(&vmc, 16384, &info)) goto fail;                  /* 6 */
    if (tqs_vit_save(&model, "tour.tqs")) goto fail;                      /* 7 */
    if (tqs_vmc_save_checkpoint(&vmc, "tour.ckpt")) goto fail;            /* 8 */
    if (tqs_exact_ground_state(&ed, &H, NULL)) goto fail;                 /* 9 */
    printf("E/N = %.6f +- %.6f   exact %.6f   relative error %.2e\n", info.energy / N, info.error / N,
           ed.energy / N, (info.energy - ed.energy) / -ed.energy);
    tqs_ed_result_free(&ed);                                              /* 10 */
    tqs_vmc_free(&vmc);
    tqs_vit_free(&model);
    tqs_hamiltonian_free(&H);
    return 0;
fail:
    fprintf(stderr, "tour: %s\n", tqs_last_error());                      /* 10 */
    return 1;
}
