# tqs.h - build the examples, run the tests, train the default model.
#   make          build the examples
#   make run      train the default model (4x4, J2 = 0.5) and report its energy
#   make test     build every test three ways (OpenMP; no OpenMP with the plain-C kernels; sanitizers), the kernel tests a fourth (-O2, 2-wide vectors), and run them
#   make reproduce  the paper's comparisons (about 9 minutes), written to examples/results/
#   make bench    the benchmark suite (a few minutes; bench/bench --quick is part of make test)
#   make bench-portable  the quick bench built with the Makefile's flags, plain -O2, and plain C, side by side
#   make fuzz     libFuzzer on the three parsers (needs clang; FUZZ_TIME=60 seconds each)
#   make memcheck valgrind on the tests and a short training run
#   make clean
CC ?= cc
MARCH := $(shell $(CC) -march=native -x c -c /dev/null -o /dev/null >/dev/null 2>&1 && echo -march=native)
CFLAGS ?= -O3 $(MARCH) -ffp-contract=fast
WARN = -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror
OPENMP ?= -fopenmp
SANITIZE = -DTQS_TEST_SHORT -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS = -lm

EXAMPLES = examples/exact examples/model examples/ground_state examples/minimal examples/attention examples/scan
TESTS = test_ed test_vit test_vmc test_sr test_sym test_obs test_files test_cli
MODES = omp noomp san

all: $(EXAMPLES)

examples/%: examples/%.c tqs.h examples/flags.h examples/observables.h
	$(CC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)

bench/bench: bench/bench.c tqs.h examples/flags.h
	$(CC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)
# The header as someone dropping it into a project builds it: plain -O2, no
# -march (AVX2 kernels chosen at run time), and the plain-C fallback.
bench/bench-O2: bench/bench.c tqs.h examples/flags.h
	$(CC) -O2 $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)
bench/bench-O2-plain: bench/bench.c tqs.h examples/flags.h
	$(CC) -O2 -DTQS_NO_VECTOR_EXT $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)

build/omp/%: tests/%.c tqs.h tests/test.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)
build/noomp/%: tests/%.c tqs.h tests/test.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DTQS_TEST_SHORT -DTQS_NO_VECTOR_EXT $(WARN) -I. $< -o $@ $(LDLIBS)
build/san/%: tests/%.c tqs.h tests/test.h
	@mkdir -p $(@D)
	$(CC) $(SANITIZE) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)
# The kernels of a baseline build without run-time dispatch (2-wide vectors on
# x86-64 and AArch64), against the model's reference and the dense solvers;
# the sanitizer build (no -march) runs the run-time AVX2 choice where the
# processor has it, the omp build the 4-wide kernels, noomp the plain-C ones.
build/base/%: tests/%.c tqs.h tests/test.h
	@mkdir -p $(@D)
	$(CC) -O2 -DTQS_TEST_SHORT -DTQS_NO_DISPATCH $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)

RUNS = $(foreach m,$(MODES),$(addprefix $(m)/,$(TESTS))) base/test_vit base/test_sr
TEST_BINS = $(addprefix build/,$(RUNS))

# Every test program prints "N passed, N failed" last; a crash counts as a failure.
test: $(EXAMPLES) $(TEST_BINS) bench/bench
	@rm -f build/summary; \
	for r in $(RUNS); do \
	  echo "== $$r"; \
	  if ./build/$$r > build/$$r.log 2>&1; then :; else echo "1 crashed" >> build/summary; fi; \
	  grep -v ' passed, ' build/$$r.log; grep ' passed, ' build/$$r.log | tail -n 1 | tee -a build/summary; \
	done; \
	echo "== bench --quick (a smoke run: the benchmark must keep working)"; \
	if ./bench/bench --quick > build/bench-quick.log 2>&1; then echo "1 passed, 0 failed" >> build/summary; \
	else cat build/bench-quick.log; echo "1 crashed" >> build/summary; fi; \
	awk '/ passed, /{p+=$$1; f+=$$3} / crashed/{f+=$$1} END{printf "%d passed, %d failed\n", p, f; exit (f>0)}' build/summary

# The main job: train the default model (see README) and report its energy.
# The paper's method: sampled SR on the b = 2 ViT (the program's defaults),
# then psi_sym trained over the translations the patches break; about 3 minutes.
run: examples/ground_state
	@mkdir -p build
	./examples/ground_state --samples 512 --time-limit 1.6 --save build/run.tqs --print-every 50
	./examples/ground_state --init build/run.tqs --sym-train translations --samples 512 --time-limit 1.25 \
	  --lr 0.01 --lr-final 0.002 --eval-samples 4096 --print-every 10

# The paper's claims on this machine: PROFILE=quick (default, about 18
# minutes, examples/results/) or PROFILE=long (about 2 hours, resumable,
# examples/results/long/); see examples/reproduce.sh
PROFILE ?= quick
reproduce: $(EXAMPLES)
	PROFILE=$(PROFILE) ./examples/reproduce.sh

# Optional: the programs over MPI (Open MPI or MPICH; tqs.h itself stays
# libc + libm). make test-mpi runs two processes of one thread each.
MPICC ?= mpicc
MPIRUN ?= mpirun
MPIRUN_FLAGS ?= --oversubscribe $(shell [ "$$(id -u)" = 0 ] && echo --allow-run-as-root)
mpi: examples/ground_state_mpi build/mpi/test_mpi bench/bench_mpi
bench/bench_mpi: bench/bench_mpi.c tqs.h examples/flags.h examples/mpi.h
	$(MPICC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)
# Strong scaling on this machine: 1 process x 2 threads, then 2 processes x 1 thread
bench-mpi: bench/bench_mpi
	OMP_NUM_THREADS=2 $(MPIRUN) $(MPIRUN_FLAGS) --bind-to none -np 1 ./bench/bench_mpi $(BENCH_MPI_ARGS)
	OMP_NUM_THREADS=1 $(MPIRUN) $(MPIRUN_FLAGS) --bind-to none -np 2 ./bench/bench_mpi $(BENCH_MPI_ARGS)
examples/ground_state_mpi: examples/ground_state.c tqs.h examples/flags.h examples/mpi.h
	$(MPICC) $(CFLAGS) $(WARN) $(OPENMP) -DTQS_MPI -I. $< -o $@ $(LDLIBS)
build/mpi/test_mpi: tests/test_mpi.c tqs.h tests/test.h examples/mpi.h
	@mkdir -p $(@D)
	$(MPICC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)
test-mpi: mpi
	OMP_NUM_THREADS=1 $(MPIRUN) $(MPIRUN_FLAGS) -np 2 ./build/mpi/test_mpi
	OMP_NUM_THREADS=1 $(MPIRUN) $(MPIRUN_FLAGS) -np 4 ./build/mpi/test_mpi
	./tests/test_mpi.sh

bench: bench/bench
	./bench/bench

# The quick bench of three builds side by side: the Makefile's flags, plain
# -O2 (run-time dispatch), and plain -O2 with the plain-C kernels.
bench-portable: bench/bench bench/bench-O2 bench/bench-O2-plain
	./bench/compare.sh makefile=./bench/bench O2=./bench/bench-O2 O2-plain-C=./bench/bench-O2-plain

# libFuzzer targets (clang with its fuzzer runtime): model loader, checkpoint
# loader, configuration parser. FUZZ_TIME seconds each; new inputs go to
# build/fuzz/NAME.corpus, the seeds are in tests/corpus/.
FUZZ_TIME ?= 60
FUZZERS = fuzz_model fuzz_checkpoint fuzz_configs
build/fuzz/%: tests/%.c tqs.h tests/fuzz.h
	@mkdir -p $(@D)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. $< -o $@ -lm
fuzz: $(addprefix build/fuzz/,$(FUZZERS))
	@for f in $(FUZZERS); do \
	  mkdir -p build/fuzz/$$f.corpus; \
	  echo "== $$f ($(FUZZ_TIME) s)"; \
	  ./build/fuzz/$$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 build/fuzz/$$f.corpus tests/corpus/$${f#fuzz_} \
	    > build/fuzz/$$f.log 2>&1 || { tail -n 40 build/fuzz/$$f.log; exit 1; }; \
	  grep -E "^Done|stat::number_of_executed_units|NEW_FUNC" build/fuzz/$$f.log | grep -v NEW_FUNC | head -n 2; \
	done

# valgrind memcheck (no OpenMP: its thread pool confuses the leak checker):
# two test programs in their short versions, and the example programs on small
# inputs, which between them run every part of the library (sampler, local
# energy, SR, checkpoint and resume, symmetrisation, attention, plots, parsing).
# Under valgrind code runs ~50x slower, so the longer test programs are left to
# the sanitizer build of make test (ASan's leak checker included).
VG = valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=all --show-leak-kinds=all -q
MEMCHECK_TESTS = test_ed test_vit
VG_PROGS = ground_state model attention exact
build/vg/%: tests/%.c tqs.h tests/test.h
	@mkdir -p $(@D)
	$(CC) -DTQS_TEST_SHORT -O1 -g $(WARN) -I. $< -o $@ $(LDLIBS)
build/vg/prog_%: examples/%.c tqs.h examples/flags.h
	@mkdir -p $(@D)
	$(CC) -O1 -g $(WARN) -I. $< -o $@ $(LDLIBS)
memcheck: $(addprefix build/vg/,$(MEMCHECK_TESTS)) $(addprefix build/vg/prog_,$(VG_PROGS))
	@for t in $(MEMCHECK_TESTS); do echo "== valgrind $$t"; $(VG) ./build/vg/$$t > build/vg/$$t.log 2>&1 || { cat build/vg/$$t.log; exit 1; }; tail -n 1 build/vg/$$t.log; done
	@echo "== valgrind ground_state: 3 steps with a checkpoint, resumed to 5, plot, symmetrised evaluation, observables of both"
	@rm -f build/vg/run.csv build/vg/run.ckpt
	@$(VG) ./build/vg/prog_ground_state --quiet --d 8 --heads 2 --samples 32 --chains 8 --steps 3 --eval-samples 32 \
	  --checkpoint build/vg/run.ckpt --log build/vg/run.csv > /dev/null
	@$(VG) ./build/vg/prog_ground_state --quiet --d 8 --heads 2 --samples 32 --chains 8 --steps 5 --eval-samples 32 \
	  --resume build/vg/run.ckpt --log build/vg/run.csv --save build/vg/run.tqs --symmetrize --sym-samples 16 --plot build/vg/run.svg \
	  --observables --obs-svg build/vg/obs > /dev/null
	@echo "== valgrind ground_state --exact (with --observables), standard attention, --attention-log"
	@$(VG) ./build/vg/prog_ground_state --quiet --exact --attention standard --d 4 --heads 1 --layers 1 --ff 1 --steps 2 --attention-log 1 \
	  --observables > /dev/null
	@echo "== valgrind attention, model eval (configurations file, --symmetrize), exact"
	@$(VG) ./build/vg/prog_attention build/vg/run.tqs --samples 32 --svg build/vg/att > /dev/null
	@printf '1 -1 1 -1 1 -1 1 -1 -1 1 -1 1 -1 1 -1 1\n' > build/vg/configs.txt
	@$(VG) ./build/vg/prog_model eval build/vg/run.tqs build/vg/configs.txt --symmetrize > /dev/null
	@$(VG) ./build/vg/prog_model eval build/vg/run.tqs --random 4 > /dev/null
	@$(VG) ./build/vg/prog_exact --L 4 --J2 0.5 > /dev/null
	@echo "memcheck: clean"

clean:
	rm -rf build $(EXAMPLES) examples/ground_state_mpi bench/bench bench/bench-O2 bench/bench-O2-plain bench/bench_mpi

.PHONY: all test clean run reproduce bench bench-portable fuzz memcheck mpi test-mpi bench-mpi
.SECONDARY:
