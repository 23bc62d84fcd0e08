#!/bin/sh
# tests/have_fuzzer.sh - exit 0 when clang can link a libFuzzer target.
d=$(mktemp -d) || exit 1
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$d/probe.c"
clang -fsanitize=fuzzer "$d/probe.c" -o "$d/probe" >/dev/null 2>&1; rc=$?
rm -rf "$d"
exit $rc
