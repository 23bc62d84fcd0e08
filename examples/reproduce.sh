#!/bin/sh
# examples/reproduce.sh - the paper's three claims, measured on this machine
# (run by `make reproduce`; about 9 minutes on 2 cores). Writes examples/results/:
#   table.md                   the results table (README shows it)
#   LxL-ATT.csv / .json        training log and final evaluation of each model
#   LxL-ATT-attention.json     input dependence of the trained model's attention
#   LxL-standard-init*         the same for the standard model at initialisation
#   energy-LxL.svg             E/N per step, factored vs standard, with the exact value
#   LxL-standard[-init]-mean.svg / -std.svg   attention maps (mean, std over samples)
set -eu
cd "$(dirname "$0")/.."
OUT=examples/results
mkdir -p "$OUT"
MODEL="--d 16 --heads 2 --layers 2 --ff 2"
# (the optimiser of the committed results: plain SR, exponential shift decay, constant lr)
TRAIN="--samples 512 --chains 16 --lr 0.05 --lr-final 0.05 --diag-shift 0.05 --diag-shift-final 0.01 --momentum 0 --max-distance 0 --seed 1"
EVAL="--eval-samples 8192 --symmetrize --sym-samples 1024"
STEPS=${STEPS:-400}

field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1"; }
# field formatted with a printf format, "-" when missing or null
fmt() { awk -v x="$(field "$1" "$2")" -v f="$3" 'BEGIN { if (x == "" || x == "null") printf "-"; else printf f, x }'; }

for L in 4 6; do
    for ATT in factored standard; do
        TAG="${L}x${L}-$ATT"
        EXTRA=""
        if [ "$ATT" = standard ]; then
            # the same initial model ground_state starts from (same seed)
            ./examples/model init -o "$OUT/$TAG-init.tqs" --L "$L" $MODEL --attention standard --seed 1 > /dev/null
            ./examples/attention "$OUT/$TAG-init.tqs" --samples 1024 --svg "$OUT/$TAG-init" --json > "$OUT/$TAG-init-attention.json"
            EXTRA="--attention-log 25"
        fi
        echo "== $TAG: $STEPS steps" >&2
        # exit status 1 with a JSON line: only the symmetrisation failed (its fields are null)
        ./examples/ground_state --L "$L" --J2 0.5 --attention "$ATT" $MODEL $TRAIN $EVAL --steps "$STEPS" \
            --log "$OUT/$TAG.csv" --save "$OUT/$TAG.tqs" --json --quiet $EXTRA > "$OUT/$TAG.json" || grep -q energy_per_site "$OUT/$TAG.json"
        ./examples/attention "$OUT/$TAG.tqs" --samples 1024 --json $( [ "$ATT" = standard ] && echo "--svg $OUT/$TAG" ) > "$OUT/$TAG-attention.json"
    done
    ./examples/ground_state --L "$L" --J2 0.5 --plot "$OUT/energy-${L}x${L}.svg" "$OUT/${L}x${L}-factored.csv" "$OUT/${L}x${L}-standard.csv"
done

{
    echo "| lattice | attention | parameters | s/step | E/N +- error | V-score | rel. error | symmetrised E/N +- error | rel. error (sym) | input dependence (init -> trained) |"
    echo "|---|---|---|---|---|---|---|---|---|---|"
    for L in 4 6; do
        for ATT in factored standard; do
            J="$OUT/${L}x${L}-$ATT.json"
            if [ "$ATT" = standard ]; then
                DEP="$(fmt "$OUT/${L}x${L}-standard-init-attention.json" input_dependence %.3f) -> $(fmt "$OUT/${L}x${L}-standard-attention.json" input_dependence %.3f)"
            else
                DEP="0 (by construction)"
            fi
            printf '| %sx%s | %s | %s | %s | %s +- %s | %s | %s | %s +- %s | %s | %s |\n' "$L" "$L" "$ATT" \
                "$(field "$J" params)" "$(fmt "$J" seconds_per_step %.2f)" "$(fmt "$J" energy_per_site %.5f)" "$(fmt "$J" error %.5f)" \
                "$(fmt "$J" v_score %.3g)" "$(fmt "$J" relative_error %.2e)" "$(fmt "$J" sym_energy_per_site %.5f)" "$(fmt "$J" sym_error %.5f)" \
                "$(fmt "$J" sym_relative_error %.2e)" "$DEP"
        done
    done
    echo
    echo "J2 = 0.5; $MODEL, patch 2; $TRAIN; $STEPS steps; evaluation: $EVAL."
    echo "Exact E/N: 4x4 from the library's Lanczos, 6x6 the published value -0.503810."
    echo "Measured on: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(nproc) cores, $(date -u +%Y-%m-%d)."
} > "$OUT/table.md"
cat "$OUT/table.md"
