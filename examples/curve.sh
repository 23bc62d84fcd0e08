#!/bin/sh
# The curve of error against time of a training run, from its --log file(s):
#   examples/curve.sh REF LOG [LOG2 ...]
# REF is the reference E/N (-0.498886 on 8x8, -0.4976921 on 10x10 at J2 = 0.5);
# LOG2 ... continue LOG (the logs of a run resumed in slices, in order; rows
# that repeat a step already read are skipped). For every doubling of the
# time from 1 minute on, and at the end, it prints the step reached, the mean
# training energy of the 20 steps up to there and its relative difference to
# REF. The time is the sum of the steps' seconds (the log's `seconds`
# column): the thermalisation, the sector search between the phases and the
# final evaluation are not in it.
[ $# -ge 2 ] || { echo "usage: examples/curve.sh REF LOG [LOG2 ...]" >&2; exit 2; }
ref=$1; shift
for f in "$@"; do [ -r "$f" ] || { echo "curve.sh: cannot read $f" >&2; exit 2; }; done
awk -F, -v ref="$ref" '
function report(   i, n, s) {
    n = cnt < 20 ? cnt : 20; s = 0
    for (i = 0; i < n; i++) s += win[(cnt - 1 - i) % 20]
    printf "%9.1f %7d %12.6f %+11.2e\n", t / 60, step, s / n, (s / n - ref) / -ref
}
BEGIN { print "  minutes    step  E/N (mean of 20)  relative"; next_t = 60; last = -1 }
$1 == "step" { next }
{
    if ($1 + 0 <= last) next
    last = $1 + 0; step = $1; t += $10; win[cnt % 20] = $2; cnt++
    if (t >= next_t) { report(); while (next_t <= t) next_t *= 2 }
}
END { if (cnt) report() }' "$@"
