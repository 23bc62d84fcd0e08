#!/bin/sh
# bench/compare.sh NAME=BINARY ... : runs "BINARY $BENCH_ARGS --json" for
# each build (BENCH_ARGS defaults to --quick; e.g. BENCH_ARGS="--only small"
# for longer, steadier measurements of one group) and prints the rows side by
# side (the same rows in the same order), one value column per build, then
# each build's ratio of time to the first's (above 1: slower than the
# first). Used by make bench-portable.
# BENCH_REPEAT=K runs the builds K times in turn (A B C A B C ...) and keeps
# each row's best value: on a machine whose speed drifts (a shared VM), a
# build measured only early or only late would otherwise carry the drift.
set -e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rep=0
while [ "$rep" -lt "${BENCH_REPEAT:-1}" ]; do
    rep=$((rep + 1))
    n=0
    for spec in "$@"; do
        n=$((n + 1))
        echo "${spec%%=*}" > "$tmp/$n.name"
        "${spec#*=}" ${BENCH_ARGS:---quick} --json > "$tmp/$n.$rep.json"
        [ "$rep" -gt 1 ] || echo "${spec%%=*}: $(sed -n 's/.*"kernel":"\([^"]*\)".*/\1/p' "$tmp/$n.1.json")"
    done
done
# one row per line: {"group":"G","what":"W","threads":T,"value":V,"unit":"U"...}
awk -v n="$n" -v reps="$rep" -v dir="$tmp" '
function field(line, key,   r) {
    if (match(line, "\"" key "\":\"[^\"]*\"")) return substr(line, RSTART + length(key) + 4, RLENGTH - length(key) - 5)
    if (match(line, "\"" key "\":[^,}]*")) return substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
    return ""
}
BEGIN {
    for (k = 1; k <= n; k++) {
        getline name[k] < (dir "/" k ".name")
        for (rep = 1; rep <= reps; rep++) {
            f = dir "/" k "." rep ".json"; r = 0
            while ((getline line < f) > 0) {
                if (line !~ /"group":/) continue
                sub(/^.*"rows":\[/, "", line)
                r++
                if (k == 1 && rep == 1) { lab[r] = sprintf("%-14s %-44s %2s", field(line, "group"), field(line, "what"), field(line, "threads")); unit[r] = field(line, "unit") }
                v = field(line, "value") + 0
                # best of the repeats: the highest rate, the shortest time
                if (rep == 1 || (unit[r] ~ /\/s$/ ? v > val[k, r] : (unit[r] ~ /^s/ && v < val[k, r]))) val[k, r] = v
            }
            close(f)
        }
        rows = r
    }
    printf "%-63s", "group          measurement                                  th"
    for (k = 1; k <= n; k++) printf " %12s", name[k]
    printf "  %-12s time ratio to %s\n", "unit", name[1]
    for (r = 1; r <= rows; r++) {
        printf "%-63s", lab[r]
        for (k = 1; k <= n; k++) printf " %12.4g", val[k, r]
        printf "  %-12s", unit[r]
        rate = unit[r] ~ /\/s$/
        for (k = 2; k <= n; k++)
            if (val[1, r] > 0 && val[k, r] > 0 && unit[r] != "GB" && unit[r] != "count")
                printf " %6.2f", rate ? val[1, r] / val[k, r] : val[k, r] / val[1, r]
        printf "\n"
    }
}'
