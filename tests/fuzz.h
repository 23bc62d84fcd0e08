/* tests/fuzz.h - shared by the libFuzzer targets (after tqs.h). */
#ifndef TQS_FUZZ_H
#define TQS_FUZZ_H
#include <stdlib.h>
#include <string.h>

/* Most mutations break the CRC-32 at the end of a file and are refused at
 * once; to reach the parser behind it, the targets also try every input with
 * its last four bytes replaced by the right CRC of the rest (size >= 4). */
static uint8_t *with_fixed_crc(const uint8_t *data, size_t size) {
    uint8_t *c = (uint8_t *)malloc(size);
    uint32_t crc;
    memcpy(c, data, size);
    crc = tqs_crc32(0, c, size - 4);
    c[size - 4] = (uint8_t)crc; c[size - 3] = (uint8_t)(crc >> 8); c[size - 2] = (uint8_t)(crc >> 16); c[size - 1] = (uint8_t)(crc >> 24);
    return c;
}
#endif
