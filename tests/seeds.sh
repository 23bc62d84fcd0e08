#!/bin/sh
# tests/seeds.sh [N] - the statistical checks tested themselves (not part of
# make test: about 13 minutes for N = 20 on 2 cores).
#
# 1. The four programs with statistical checks (test_obs, test_vmc, test_sr,
#    test_sym) run under N other random streams, TQS_TEST_SEED = 1..N (every
#    seed those checks use shifted by 1000 K; tests/test.h): each must pass
#    for every seed, since each bound is set for a false-alarm rate of about
#    1e-3 or less.
# 2. The same programs at the committed seeds with every error bar the checks
#    compare with halved and doubled (TQS_TEST_ERROR_SCALE = 0.5, 2): test_obs
#    and test_vmc must fail both ways (their error bars against the spread of
#    40 runs); the FAIL lines of each are printed.
# Logs in build/seeds/. Exit status 1 if a seed fails or a wrong error bar
# passes test_obs or test_vmc.
cd "$(dirname "$0")/.." || exit 1
# one job, run by this script itself: --job seed K PROG or --job scale F PROG
if [ "$1" = --job ]; then
    log=build/seeds/$4.$2$3.log
    if [ "$2" = seed ]; then TQS_TEST_SEED=$3 ./build/test/$4 > "$log" 2>&1
    else TQS_TEST_ERROR_SCALE=$3 ./build/test/$4 > "$log" 2>&1; fi
    echo "exit status $?" >> "$log"
    exit 0
fi
N=${1:-20}
PROGS="test_obs test_vmc test_sr test_sym"
make -s $(for p in $PROGS; do printf 'build/test/%s ' "$p"; done) || exit 1
mkdir -p build/seeds
rm -f build/seeds/*.log
{
    for k in $(seq 1 "$N"); do for p in $PROGS; do echo "seed $k $p"; done; done
    for f in 0.5 2; do for p in $PROGS; do echo "scale $f $p"; done; done
} | xargs -P "$(nproc 2>/dev/null || echo 2)" -L 1 ./tests/seeds.sh --job

status=0
echo "== $N seeds (TQS_TEST_SEED=1..$N)"
for p in $PROGS; do
    bad=""; checks=0
    for k in $(seq 1 "$N"); do
        log=build/seeds/$p.seed$k.log
        line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
        checks=$((checks + ${line%% passed*}))
        grep -q '^exit status 0$' "$log" || bad="$bad $k"
    done
    if [ -z "$bad" ]; then printf '%-9s passed for every seed (%d checks in all)\n' "$p" "$checks"
    else printf '%-9s FAILED for seeds:%s\n' "$p" "$bad"; status=1
        for k in $bad; do grep '^FAIL' build/seeds/$p.seed$k.log | sed "s/^/    seed $k: /"; done
    fi
done
for f in 0.5 2; do
    echo "== every error bar times $f (TQS_TEST_ERROR_SCALE=$f)"
    for p in $PROGS; do
        log=build/seeds/$p.scale$f.log
        if grep -q '^exit status 0$' "$log"; then
            printf '%-9s passes\n' "$p"
            case $p in test_obs|test_vmc) status=1; echo "    expected to fail: its error-bar checks did not notice" ;; esac
        else
            printf '%-9s fails:\n' "$p"; grep '^FAIL' "$log" | sed 's/^/    /'
        fi
    done
done
exit $status
