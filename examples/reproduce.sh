#!/bin/sh
# examples/reproduce.sh - the paper's claims, measured on this machine (make reproduce).
#   PROFILE=quick (default)  about 80 minutes on 2 cores (4x4: 1,500 steps, then 250 of psi_sym): examples/results/
#   PROFILE=long             about 2 hours on 2 cores (2.1 h measured, examples/results/long/):
#                            adds symmetrised training; writes examples/results/long/
#   PROFILE=sizes            the third claim on four sizes: standard attention on 4x4, 6x6, 8x8 and 10x10,
#                            200 steps each, seeds 1-3 (SIZES_STEPS=n, SIZES_SEEDS="1 2" for others):
#                            examples/results/sizes/
#   PROFILE=smoke            about 2 minutes (one thread, 2026-12-06), to check the script itself (numbers meaningless)
#   TABLE_ONLY=1             no training: table.md from the runs finished so far
# Factored and standard attention on 4x4 and 6x6 at J2 = 0.5, the same model,
# samples and steps for both, 3 seeds each. Every run is checkpointed: an
# interrupted `make reproduce` started again skips the runs that finished and
# resumes the one that was stopped. Writes, per run TAG = LxL-ATT-sSEED:
#   TAG.csv / TAG.json          training log and final evaluation (plain and symmetrised E/N)
#   TAG-sym.csv / -sym.json     the symmetrised training that follows it (quick: 4x4 only), and its evaluation
#   TAG-exact.json              (4x4) the plain model without sampling noise (model exact)
#   TAG-attention.json          input dependence of the trained model's attention (standard:
#                               TAG-init-attention.json at initialisation; the log's last column during training)
# and table.md (median and range over the seeds), energy-LxL.svg (all seeds'
# curves, with the exact value), LxL-standard-s1[-init]-mean/-std.svg (attention maps).
set -eu
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-quick}
MODEL="--d 16 --heads 2 --layers 2 --ff 2"
SEEDS="1 2 3"
SYM_STEPS4=0; SYM_STEPS6=0; SYM_EVAL=0; SYMF=""   # symmetrised training after the plain run (0: none)
# (the evaluation of psi_sym samples |psi_sym|^2: 64 forward passes per
# amplitude, so SYM_SAMPLES costs as much as about 64 times as many plain ones)
case "$PROFILE" in
# quick: then, on 4x4, make run's second phase at a fixed step count (psi_sym over
# the point group, larger steps); long: the symmetrised training of the first long runs
quick) OUT=${OUT:-examples/results}; SAMPLES=512; STEPS4=1500; STEPS6=150; EVAL=4096; SYM_SAMPLES=256
       SYM_STEPS4=250; SYM4="point"; SYM_EVAL=4096; SYMF="--samples 512 --lr 0.1 --lr-final 0.01 --max-distance 0.1" ;;
long)  OUT=${OUT:-examples/results/long}; SAMPLES=1024; STEPS4=400; STEPS6=200; EVAL=16384; SYM_SAMPLES=512
       SYM_STEPS4=20; SYM4="full"; SYM_STEPS6=40; SYM6="translations"; SYM_EVAL=4096 ;;
# sizes: the same training on every lattice (the optimiser given in full: the
# program's default momentum changes at 36 sites), the input dependence logged
# every 10 steps; plain training only (--plain: the program's default, the
# recipe, would add a psi_sym phase), the paper's ViT without a sign prior
# (the program's default gives 8x8 and 10x10 Marshall's) and no symmetrisation
sizes) OUT=${OUT:-examples/results/sizes}; SAMPLES=1024; STEPS4=${SIZES_STEPS:-200}; SEEDS=${SIZES_SEEDS:-$SEEDS}; EVAL=4096; SYM_SAMPLES=0; ATT_LOG=10 ;;
smoke) OUT=${OUT:-build/reproduce-smoke}; SAMPLES=64; STEPS4=3; STEPS6=2; EVAL=64; SYM_SAMPLES=64; SYM_EVAL=64
       SYM_STEPS4=2; SYM4="point"; SYM_STEPS6=2; SYM6="translations"; SEEDS="1 2" ;;
*) echo "reproduce.sh: PROFILE must be quick, long, sizes or smoke, not '$PROFILE'" >&2; exit 2 ;;
esac
# the program's defaults are the optimiser (SR with momentum, step cap, lr
# decay); the training samples |psi|^1, reweighted (examples/README.md,
# "Samples of |psi|^1"), the evaluations |psi|^2
TRAIN="--samples $SAMPLES --sample-power 1"
EVALF="--eval-samples $EVAL --symmetrize --sym-samples $SYM_SAMPLES"
if [ "$PROFILE" = sizes ]; then TRAIN="$TRAIN --momentum 0 --plain --sign none"; EVALF="--eval-samples $EVAL"; fi
SYMF="${SYMF:---samples $SYM_SAMPLES --lr 0.01 --lr-final 0.002 --max-distance 0.05} --sample-power 1"
mkdir -p "$OUT"

field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1" 2>/dev/null; }
done_json() { [ -f "$1" ] && grep -q '"energy_per_site"' "$1"; }
# ground_state with checkpoints: skipped when its JSON is complete, resumed
# from its checkpoint when one exists. $1 = output prefix, the rest = flags.
train() {
    P=$1; shift
    WANT=""; PREV=""; for A in "$@"; do [ "$PREV" = --steps ] && WANT=$A; PREV=$A; done
    if done_json "$P.json"; then
        # a run kept from a profile with other step counts says so (its numbers are not this profile's)
        HAVE=$(field "$P.json" steps | head -n 1)
        if [ "$HAVE" != "$WANT" ]; then echo "== $P: kept from an earlier run of $HAVE steps, not $WANT: delete $P.* to train it again" >&2
        else echo "== $P: done before, kept" >&2; fi
        return 0
    fi
    RES=""
    [ -f "$P.ckpt" ] && RES="--resume $P.ckpt" && echo "== $P: resuming from $P.ckpt" >&2
    [ -n "$RES" ] || echo "== $P" >&2
    # exit status 1 with a JSON line: only the symmetrisation failed (its fields are null)
    ./examples/ground_state "$@" $RES --log "$P.csv" --save "$P.tqs" --checkpoint "$P.ckpt" --checkpoint-every 25 \
        --json --quiet > "$P.json.tmp" || grep -q energy_per_site "$P.json.tmp" || return 1
    mv "$P.json.tmp" "$P.json"
}

# every run of one attention kind on lattice L, one seed after the other
runs() {   # runs ATT
    ATT=$1
    for SEED in $SEEDS; do
        TAG="$OUT/${L}x${L}-$ATT-s$SEED"
        EXTRA=""
        if [ "$ATT" = standard ]; then
            # the same initial model ground_state starts from (same seed)
            if [ ! -f "$TAG-init-attention.json" ]; then
                ./examples/model init -o "$TAG-init.tqs" --L "$L" $MODEL --attention standard --seed "$SEED" > /dev/null
                SVG=""; [ "$SEED" = 1 ] && SVG="--svg $TAG-init"
                ./examples/attention "$TAG-init.tqs" --samples 1024 $SVG --json > "$TAG-init-attention.json"
            fi
            EXTRA="--attention-log ${ATT_LOG:-25}"
        fi
        train "$TAG" --L "$L" --J2 0.5 --attention "$ATT" $MODEL $TRAIN $EVALF --steps "$STEPS" --seed "$SEED" $EXTRA
        if [ ! -f "$TAG-attention.json" ]; then
            SVG=""; [ "$ATT" = standard ] && [ "$SEED" = 1 ] && SVG="--svg $TAG"
            ./examples/attention "$TAG.tqs" --samples 1024 --json $SVG > "$TAG-attention.json"
        fi
        # 4x4: the trained model summed over the whole basis, against the exact
        # ground state, without sampling noise: its error, and how much of it
        # lies outside the ground state's symmetry sector
        if [ "$L" = 4 ] && ! done_json "$TAG-exact.json"; then
            ./examples/model exact "$TAG.tqs" --json > "$TAG-exact.json.tmp" || { echo "reproduce.sh: model exact $TAG.tqs failed" >&2; exit 1; }
            mv "$TAG-exact.json.tmp" "$TAG-exact.json"
        fi
        if [ "$SYM_STEPS" -gt 0 ]; then
            # (a model whose samples do not determine its symmetry sector is refused: noted, not fatal)
            # (its evaluation samples psi_sym itself: SYM_EVAL samples cost as much as ~64 SYM_EVAL plain ones on 4x4)
            train "$TAG-sym" --L "$L" --J2 0.5 --init "$TAG.tqs" --sym-train "$SYM" $SYMF --eval-samples "$SYM_EVAL" --steps "$SYM_STEPS" \
                --seed "$((SEED + 100))" || echo "reproduce.sh: $TAG-sym failed (above); its table entry is -" >&2
        fi
    done
}

# The two attention kinds train side by side, each on half the cores (JOBS=1:
# one after the other on all of them); the results are the same to the bit
# either way, since a run's numbers do not depend on its thread count.
NPROC=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
JOBS=${JOBS:-2}; [ "$NPROC" -ge 2 ] || JOBS=1
THREADS=$NPROC; [ "$JOBS" -ge 2 ] && THREADS=$((NPROC / 2))
# both "CMD1" "CMD2" WHAT: the two commands side by side on half the cores
# each (JOBS=1: one after the other); WHAT names them if one fails
both() {
    if [ "$JOBS" -ge 2 ]; then
        (OMP_NUM_THREADS=$THREADS; export OMP_NUM_THREADS; $1) & P1=$!
        (OMP_NUM_THREADS=$THREADS; export OMP_NUM_THREADS; $2) & P2=$!
        S1=0; wait "$P1" || S1=$?
        S2=0; wait "$P2" || S2=$?
        if [ "$S1" != 0 ] || [ "$S2" != 0 ]; then echo "reproduce.sh: $3 failed (above)" >&2; exit 1; fi
    else
        $1; $2
    fi
}
# TABLE_ONLY=1: no training, only table.md from the runs that finished ("-" where a seed is missing)
LATTICES="4 6"; { [ "${TABLE_ONLY:-0}" = 1 ] || [ "$PROFILE" = sizes ]; } && LATTICES=""
for L in $LATTICES; do
    if [ "$L" = 4 ]; then STEPS=$STEPS4; SYM=${SYM4:-}; SYM_STEPS=$SYM_STEPS4; else STEPS=$STEPS6; SYM=${SYM6:-}; SYM_STEPS=$SYM_STEPS6; fi
    both "runs factored" "runs standard" "a ${L}x${L} run"
    LOGS=""
    for ATT in factored standard; do for SEED in $SEEDS; do LOGS="$LOGS $OUT/${L}x${L}-$ATT-s$SEED.csv"; done; done
    ./examples/ground_state --L "$L" --J2 0.5 --plot "$OUT/energy-${L}x${L}.svg" $LOGS
done

# median and range (smallest to largest) over the seeds of a JSON field, so
# that how far a seed lies from the others reads off the entry; a seed
# without the value (not run yet, or a symmetrisation that failed) is left
# out and the count said: "(2 of 3 seeds)"; "-" when none has it
stat() {   # stat FIELD FORMAT FILES...
    F=$1; FMT=$2; shift 2
    for J in "$@"; do V=$(field "$J" "$F" | head -n 1); echo "${V:-null}"; done | awk -v f="$FMT" '
        { t++; if ($1 != "" && $1 != "null") x[++n] = $1 + 0 }
        END { if (n == 0) { printf "-"; exit }
              for (i = 2; i <= n; i++) for (j = i; j > 1 && x[j - 1] > x[j]; j--) { y = x[j]; x[j] = x[j - 1]; x[j - 1] = y }
              m = (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
              printf f, m; if (n > 1) printf(" (" f " to " f ")", x[1], x[n])
              if (n < t) printf(" (%d of %d seeds)", n, t) }'
}
files() { for SEED in $SEEDS; do printf '%s ' "$OUT/$1-s$SEED$2"; done; }

# PROFILE=sizes: standard attention alone on four lattices, the 10x10 runs
# beside those of the three smaller ones; then one figure,
# input-dependence.svg (seed 1 of each lattice), and table.md
if [ "$PROFILE" = sizes ]; then
    SYM_STEPS=0; STEPS=$STEPS4
    sizes_runs() { for L in "$@"; do runs standard; done; }
    [ "${TABLE_ONLY:-0}" = 1 ] || both "sizes_runs 10" "sizes_runs 4 6 8" "a run"
    LOGS=""; for L in 4 6 8 10; do [ -f "$OUT/${L}x${L}-standard-s1.csv" ] && LOGS="$LOGS $OUT/${L}x${L}-standard-s1.csv"; done
    # shellcheck disable=SC2086
    [ -n "$LOGS" ] && ./examples/attention --plot "$OUT/input-dependence.svg" $LOGS
    {
        echo "| lattice | parameters | s/step | E/N | rel. error | input dependence: init -> trained |"
        echo "|---|---|---|---|---|---|"
        for L in 4 6 8 10; do
            T="${L}x${L}-standard"
            J=$(files "$T" .json)
            # shellcheck disable=SC2086
            REL=$(stat relative_error %.2e $J); [ "$REL" = - ] && REL="$(stat relative_to_reference %+.2e $J) (to the best published)"
            # shellcheck disable=SC2086
            printf '| %sx%s | %s | %s | %s | %s | %s -> %s |\n' "$L" "$L" "$(field "$OUT/$T-s1.json" params)" "$(stat seconds_per_step %.2f $J)" \
                "$(stat energy_per_site %.5f $J)" "$REL" "$(stat input_dependence %.3f $(files "$T" -init-attention.json))" \
                "$(stat input_dependence %.3f $(files "$T" -attention.json))"
        done
        echo
        echo "PROFILE=sizes: standard attention, J2 = 0.5; $MODEL, patch 2; $TRAIN, the default learning rate and step cap; $STEPS4 steps on every lattice;"
        echo "evaluation: $EVALF; input dependence of the trained model on 1024 samples. Each entry: median (smallest to largest) over seeds $SEEDS."
        [ "$JOBS" -ge 2 ] && echo "Runs: 10x10 beside 4x4, 6x6 and 8x8 one after the other, $THREADS thread(s) each (s/step as measured so)."
        echo "Measured on: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(getconf _NPROCESSORS_ONLN) cores, $(date -u +%Y-%m-%d)."
    } > "$OUT/table.md"
    cat "$OUT/table.md"
    exit 0
fi

{
    SYM_STEPS=$((SYM_STEPS4 + SYM_STEPS6))
    echo "| lattice | attention | parameters | s/step | E/N | rel. error | symmetrised: rel. error |$( [ "$SYM_STEPS" -gt 0 ] && echo " after symmetrised training: rel. error |") input dependence: init -> trained |"
    echo "|---|---|---|---|---|---|---|$( [ "$SYM_STEPS" -gt 0 ] && echo "---|")---|"
    for L in 4 6; do
        for ATT in factored standard; do
            T="${L}x${L}-$ATT"
            J=$(files "$T" .json)
            if [ "$ATT" = standard ]; then
                DEP="$(stat input_dependence %.3f $(files "$T" -init-attention.json)) -> $(stat input_dependence %.3f $(files "$T" -attention.json))"
            else
                DEP="0 (by construction)"
            fi
            SYMCOL=""
            [ "$SYM_STEPS" -gt 0 ] && SYMCOL=" $(stat relative_error %.2e $(files "$T" -sym.json)) |"
            # shellcheck disable=SC2086
            printf '| %sx%s | %s | %s | %s | %s | %s | %s |%s %s |\n' "$L" "$L" "$ATT" "$(field "$OUT/$T-s1.json" params)" \
                "$(stat seconds_per_step %.2f $J)" "$(stat energy_per_site %.5f $J)" "$(stat relative_error %.2e $J)" \
                "$(stat sym_relative_error %.2e $J)" "$SYMCOL" "$DEP"
        done
    done
    echo
    echo "PROFILE=$PROFILE: J2 = 0.5; $MODEL, patch 2; $TRAIN and the program's default optimiser; $STEPS4 steps (4x4), $STEPS6 (6x6);"
    [ "$SYM_STEPS" -gt 0 ] && echo "then symmetrised training: $SYM_STEPS4 steps on 4x4 ($SYM4 group)$( [ "$SYM_STEPS6" -gt 0 ] && echo ", $SYM_STEPS6 on 6x6 ($SYM6)" || echo ", none on 6x6"), $SYMF, evaluated on $SYM_EVAL samples of psi_sym;"
    [ "$JOBS" -ge 2 ] && echo "Runs: the two attention kinds side by side, $THREADS thread(s) each (s/step as measured so)."
    echo "evaluation: $EVALF. Each entry: median (smallest to largest) over seeds $SEEDS (relative errors of E/N against exact)."
    echo "Exact E/N: 4x4 from the library's Lanczos, 6x6 the published value -0.503810."
    echo
    echo "The 4x4 plain models without sampling noise (\`model exact\`: each summed over the whole basis against the exact ground state;"
    echo "the part in the ground state's symmetry sector is what the symmetrised column estimates from samples):"
    echo
    echo "| attention | rel. error | weight in the ground state's sector | that part: rel. error |"
    echo "|---|---|---|---|"
    for ATT in factored standard; do
        X=$(files "4x4-$ATT" -exact.json)
        # shellcheck disable=SC2086
        printf '| %s | %s | %s | %s |\n' "$ATT" "$(stat relative_error %.2e $X)" "$(stat sector_weight %.4f $X)" \
            "$(stat sector_relative_error %.2e $X)"
    done
    echo
    echo "Measured on: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(getconf _NPROCESSORS_ONLN) cores, $(date -u +%Y-%m-%d)."
} > "$OUT/table.md"
cat "$OUT/table.md"
