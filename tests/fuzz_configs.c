/* libFuzzer target: the configuration parser of `model eval` must accept
 * exactly lines of N entries +1/-1 and refuse anything else with an error. */
#define TQS_IMPLEMENTATION
#include "../tqs.h"
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int8_t *cf = NULL;
    long n = 0, k;
    int N = size > 0 ? 1 + data[0] % 36 : 16;   /* the first byte picks N */
    if (tqs_parse_configs((const char *)data + (size > 0), size - (size > 0), N, &cf, &n) == TQS_OK) {
        for (k = 0; k < n * N; k++) if (cf[k] != 1 && cf[k] != -1) abort();
        free(cf);
    } else if (cf) abort();
    return 0;
}
