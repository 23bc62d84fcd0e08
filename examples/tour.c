/* tour.c - the API in a dozen calls (README.md quotes this file whole): the
 * recipe (plain SR on the default ViT, then psi_sym over the point group in
 * the ground state's sector) on the 4x4 J1-J2 model at J2 = 0.5, then a
 * comparison with exact diagonalisation. Zero options are the measured
 * defaults; the recipe takes the same steps as ground_state --steps P --sym-steps Q.
 *   cc -O2 -fopenmp tour.c -lm && ./a.out [plain_steps sym_steps]   (default 1500 250) */
#define TQS_IMPLEMENTATION
#include "tqs.h"   /* beside this file, or found with -I */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    tqs_hamiltonian H;              /* lattice + couplings */
    tqs_vit_config cfg = {0};       /* zero means default: 2x2 patches, d = 16, 2 heads, 2 layers */
    tqs_vit model;                  /* the wave function; every parameter in model.params */
    tqs_recipe_options opt = {0};   /* zero means default: 1500 plain steps, 250 of psi_sym, 512 samples */
    tqs_recipe recipe;              /* the two phases: a tqs_vmc run each (sampler, workspaces, SR) */
    tqs_step_info info;             /* what a step measured: energies are of the whole lattice */
    tqs_ed_result ed;               /* exact diagonalisation */
    int N;

    if (tqs_hamiltonian_init(&H, 4, 4, 1.0, 0.5)) goto fail;              /* 1 */
    N = H.lat.N;
    cfg.Lx = 4; cfg.Ly = 4;
    if (tqs_vit_init(&model, &cfg, 1)) goto fail;                         /* 2 */
    if (argc > 2) { opt.plain_steps = atoi(argv[1]); opt.sym_steps = atoi(argv[2]); }
    opt.plain.seed = 1;                                                   /* 3 */
    if (tqs_recipe_init(&recipe, &H, &model, &opt)) goto fail;            /* 4 */
    while (recipe.phase < 2) {
        if (tqs_recipe_step(&recipe, &info)) goto fail;                   /* 5: at the switch, the sector */
        if (info.step % 50 == 0 || recipe.vmc.step == recipe.vmc.opt.n_steps)   /* (and each phase's last) */
            printf("%s step %4ld  E/N = %.12g +- %.2g\n", recipe.vmc.opt.symmetry ? "psi_sym" : "plain  ", info.step,
                   info.energy / N, info.error / N);
    }
    if (tqs_recipe_evaluate(&recipe, 16384, &info)) goto fail;            /* 6 */
    if (tqs_vit_save(&model, "tour.tqs")) goto fail;                      /* 7: parameters, couplings, group */
    if (tqs_vmc_save_checkpoint(&recipe.vmc, "tour.ckpt")) goto fail;     /* 8 */
    if (tqs_exact_ground_state(&ed, &H, NULL)) goto fail;                 /* 9 */
    printf("E/N = %.6f +- %.6f   exact %.6f   relative error %.2e\n", info.energy / N, info.error / N,
           ed.energy / N, (info.energy - ed.energy) / -ed.energy);
    tqs_ed_result_free(&ed);                                              /* 10 */
    tqs_recipe_free(&recipe);
    tqs_vit_free(&model);
    tqs_hamiltonian_free(&H);
    return 0;
fail:
    fprintf(stderr, "tour: %s\n", tqs_last_error());
    return 1;
}
