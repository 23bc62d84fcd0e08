#!/bin/sh
# tests/summary.sh LOG... - one line per test program from the logs that the
# Makefile's run rule writes (the program's output, then "exit status N"):
# its "N passed, N failed" line, every FAIL line, and a crash or a missing
# summary as a failure. Last, the total "N passed, N failed"; exit status 1
# when anything failed.
total_p=0; total_f=0
for log in "$@"; do
    name=${log#build/}; name=${name%.log}
    if [ ! -f "$log" ]; then
        printf '%-24s no log: not run\n' "$name"; total_f=$((total_f + 1)); continue
    fi
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    status=$(sed -n 's/^exit status //p' "$log" | tail -n 1)
    case "$name" in
    */bench-quick)   # the benchmark's smoke run: it must finish cleanly
        if [ "$status" = 0 ]; then line="1 passed, 0 failed"; else line="0 passed, 1 failed"; fi ;;
    esac
    if [ -z "$line" ]; then line="0 passed, 1 failed"; fi
    p=${line%% passed*}; f=${line#* passed, }; f=${f%% failed*}
    if [ "$status" != 0 ] && [ "$f" = 0 ]; then f=1; line="$line (exit status $status: crashed)"; fi
    printf '%-24s %s\n' "$name" "$line"
    grep '^FAIL' "$log" | sed 's/^/    /'
    if [ "$f" != 0 ] && ! grep -q '^FAIL' "$log"; then tail -n 15 "$log" | sed 's/^/    | /'; fi
    total_p=$((total_p + p)); total_f=$((total_f + f))
done
echo "$total_p passed, $total_f failed"
[ "$total_f" = 0 ]
