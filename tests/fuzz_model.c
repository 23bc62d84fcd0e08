/* libFuzzer target: the model loader must refuse every malformed file with an
 * error (never crash, never read out of bounds), and a model it accepts must
 * evaluate without crashing. `make fuzz` builds and runs it. */
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include "fuzz.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void try_model(const uint8_t *data, size_t size) {
    tqs_vit m;
    if (tqs_vit_from_bytes(&m, data, size) == TQS_OK) {
        /* accepted: small enough to evaluate one configuration */
        if (m.N <= 64 && m.n_params < 200000) {
            tqs_vit_ws ws;
            int8_t s[64];
            tqs_complex lp;
            tqs_rng r;
            tqs_rng_seed(&r, 1, 0);
            tqs_random_config(s, m.N, &r);
            if (tqs_vit_ws_init(&ws, &m, 1, 0) == TQS_OK) {
                tqs_vit_forward(&m, &ws, &lp, s, 1);
                tqs_vit_ws_free(&ws);
            }
        }
        tqs_vit_free(&m);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    try_model(data, size);
    if (size >= 4) {
        uint8_t *c = with_fixed_crc(data, size);
        try_model(c, size);
        free(c);
    }
    return 0;
}
