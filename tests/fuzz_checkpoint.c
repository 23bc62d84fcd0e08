/* libFuzzer target: the checkpoint loader must refuse every malformed file
 * with an error and leave the run untouched when it does. The run it loads
 * into: 4x4, patch 2, d 4, 1 head, 1 layer, ff 1, 4 chains (the shape of the
 * seed corpus in tests/corpus/checkpoint). */
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "fuzz.h"
#include <stdlib.h>

static tqs_hamiltonian H;
static tqs_vit model;
static tqs_vmc vmc;
static double *saved;


static void try_checkpoint(const uint8_t *data, size_t size) {
    memcpy(saved, model.params, sizeof(double) * model.n_params);
    if (tqs_vmc_checkpoint_from_bytes(&vmc, data, size) != TQS_OK) {
        /* refused: the parameters must be untouched */
        if (memcmp(saved, model.params, sizeof(double) * model.n_params)) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!saved) {
        tqs_vit_config c = {4, 4, 2, 4, 1, 1, 1, TQS_ATTN_FACTORED, TQS_SIGN_NONE};
        tqs_vmc_options o;
        memset(&o, 0, sizeof o);
        o.n_samples = 8; o.n_chains = 4;
        if (tqs_hamiltonian_init(&H, 4, 4, 1, 0.5) || tqs_vit_init(&model, &c, 1) || tqs_vmc_init(&vmc, &H, &model, &o)) abort();
        saved = (double *)malloc(sizeof(double) * model.n_params);
    }
    try_checkpoint(data, size);
    if (size >= 4) {
        uint8_t *c = with_fixed_crc(data, size);
        try_checkpoint(c, size);
        free(c);
    }
    return 0;
}
