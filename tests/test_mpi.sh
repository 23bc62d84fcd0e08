#!/bin/sh
# tests/test_mpi.sh - the MPI programs as a user runs them (make test-mpi,
# after build/mpi/test_mpi): two processes against one, a checkpoint of two
# resumed by one, and failures on one process that must end the whole job
# with the message (a timeout would mean a hang). Prints "N passed, N failed".
cd "$(dirname "$0")/.."
MPIRUN=${MPIRUN:-mpirun}
FLAGS="--oversubscribe"
[ "$(id -u)" = 0 ] && FLAGS="$FLAGS --allow-run-as-root"
D=build/mpi/sh
rm -rf "$D"; mkdir -p "$D"
pass=0; fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL tests/test_mpi.sh: $1"; }
mpi() { OMP_NUM_THREADS=1 timeout 120 "$MPIRUN" $FLAGS -np 2 "$@"; }

# energies of two CSV logs equal to 1e-10 relative, step by step (see
# tests/test_mpi.c for why: only the order of a few sums differs)
same_energies() {
    awk -F, 'NR == FNR { if (FNR > 1) e[$1] = $2; next }
             FNR > 1 { n++; d = $2 - e[$1]; if (d < 0) d = -d; s = e[$1] < 0 ? -e[$1] : e[$1]; if (!($1 in e) || d > 1e-10 * s) bad++ }
             END { exit (n > 0 && bad == 0) ? 0 : 1 }' "$1" "$2"
}

BASE="./examples/ground_state --d 8 --samples 256 --chains 16 --lr 0.05 --lr-final 0.05 --diag-shift 0.01 --eval-samples 256 --threads 1 --quiet --seed 4"
MBASE=$(echo "$BASE" | sed 's|./examples/ground_state|./examples/ground_state_mpi|')

# 1. two processes = one process, through the default recipe: 6 plain steps,
# then 2 psi_sym steps (steps / 6, at least 2) over the point group
$BASE --steps 6 --log $D/one.csv > $D/one.out 2>&1 || bad "one-process run failed"
mpi $MBASE --steps 6 --log $D/two.csv > $D/two.out 2>&1 || bad "two-process run failed: $(tail -n 3 $D/two.out)"
if same_energies $D/one.csv $D/two.csv; then ok; else bad "energies of 2 processes differ from 1 process"; fi
if [ "$(grep -c '^[0-9]' $D/two.csv)" = 8 ]; then ok; else bad "the two-process log has not 6 + 2 steps"; fi

# 1b. 1 used 4x4's default training samples, |psi|^1, whose weights are formed
# from every process's gathered log|psi|; the same with |psi|^2 samples (no weights)
$BASE --steps 6 --sample-power 2 --log $D/one-p2.csv > $D/one-p2.out 2>&1 || bad "one-process --sample-power 2 run failed"
mpi $MBASE --steps 6 --sample-power 2 --log $D/two-p2.csv > $D/two-p2.out 2>&1 || bad "two-process --sample-power 2 run failed: $(tail -n 3 $D/two-p2.out)"
if same_energies $D/one-p2.csv $D/two-p2.csv && ! same_energies $D/one.csv $D/one-p2.csv; then ok
else bad "--sample-power 2: energies of 2 processes differ from 1 process (or equal those of |psi|^1)"; fi

# 2. a checkpoint written by two processes, resumed by one: stopped in the
# plain phase (step 3) and in the psi_sym phase (step 7)
for at in 3 7; do
    rm -f $D/two.ckpt $D/resumed.csv
    mpi $MBASE --steps 6 --checkpoint $D/two.ckpt --log $D/resumed.csv --stop-at $at > $D/ck.out 2>&1
    st=$?; [ $st = 3 ] || bad "two-process run stopped at step $at exited with status $st (not 3): $(tail -n 2 $D/ck.out)"
    ./examples/ground_state --resume $D/two.ckpt > $D/res.out 2>&1 || bad "resume by one process failed: $(tail -n 2 $D/res.out)"
    if same_energies $D/one.csv $D/resumed.csv && [ "$(grep -c '^[0-9]' $D/resumed.csv)" = 8 ]; then ok
    else bad "2-process checkpoint (stopped at step $at) + 1-process resume differs from the 1-process run"; fi
done

# 3. a process that fails ends every process, with its message, and no hang
mpi ./build/mpi/test_mpi --fail 1 > $D/fail.out 2>&1
st=$?
if [ $st -ne 0 ] && [ $st -ne 124 ] && grep -q "process 1 fails on purpose" $D/fail.out; then ok
else bad "a failing process: status $st (124 = hang), output: $(head -c 300 $D/fail.out)"; fi

# 4. an output path nobody can write: refused before any step, the whole job ends
mpi $MBASE --steps 100000 --save /nonexistent_dir/m.tqs > $D/save.out 2>&1
st=$?
if [ $st -ne 0 ] && [ $st -ne 124 ] && grep -q -- "--save" $D/save.out; then ok
else bad "a bad --save: status $st (124 = hang), output: $(head -c 300 $D/save.out)"; fi

# 5. chains that two processes cannot share equally: a clear refusal
mpi $MBASE --steps 2 --chains 15 > $D/chains.out 2>&1
st=$?
if [ $st -ne 0 ] && [ $st -ne 124 ] && grep -q "cannot be shared equally" $D/chains.out; then ok
else bad "15 chains on 2 processes: status $st, output: $(head -c 300 $D/chains.out)"; fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
