#!/bin/sh
# bench/compare.sh NAME=BINARY ... : runs "BINARY $BENCH_ARGS --json" for
# each build (BENCH_ARGS defaults to --quick; e.g. BENCH_ARGS="--only small"
# for longer, steadier measurements of one group) and prints the rows side by
# side (the same rows in the same order), one value column per build, then
# each build's ratio of time to the first's (above 1: slower than the
# first). Used by make bench-portable.
set -e
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
for spec in "$@"; do
    n=$((n + 1))
    echo "${spec%%=*}" > "$tmp/$n.name"
    "${spec#*=}" ${BENCH_ARGS:---quick} --json > "$tmp/$n.json"
    echo "${spec%%=*}: $(sed -n 's/.*"kernel":"\([^"]*\)".*/\1/p' "$tmp/$n.json")"
done
# one row per line: {"group":"G","what":"W","threads":T,"value":V,"unit":"U"...}
awk -v n="$n" -v dir="$tmp" '
function field(line, key,   r) {
    if (match(line, "\"" key "\":\"[^\"]*\"")) return substr(line, RSTART + length(key) + 4, RLENGTH - length(key) - 5)
    if (match(line, "\"" key "\":[^,}]*")) return substr(line, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
    return ""
}
BEGIN {
    for (k = 1; k <= n; k++) {
        getline name[k] < (dir "/" k ".name")
        f = dir "/" k ".json"; r = 0
        while ((getline line < f) > 0) {
            if (line !~ /"group":/) continue
            sub(/^.*"rows":\[/, "", line)
            r++
            if (k == 1) { lab[r] = sprintf("%-14s %-44s %2s", field(line, "group"), field(line, "what"), field(line, "threads")); unit[r] = field(line, "unit") }
            val[k, r] = field(line, "value") + 0
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
