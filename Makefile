# tqs.h - build the examples, run the tests, train the default model.
#   make            build the example programs
#   make run        train the default model (4x4, J2 = 0.5) and report its energy (about 3 minutes)
#   make test       the quick contract: every behaviour of the library and the programs, in the
#                   default build (about 5 minutes with the builds on 2 cores)
#   make check      make test, then the full matrix: the long tests (4x6 Lanczos, long trainings),
#                   no OpenMP with the plain-C kernels, sanitizers, the baseline-vector build,
#                   valgrind, the fuzzers, MPI (20 to 55 minutes; what .ci/run runs; tests/README.md)
#   make reproduce  the paper's comparisons (about 80 minutes), written to examples/results/
#   make bench      the benchmark suite (about 7 minutes; bench/README.md)
#   make bench-portable  the quick bench built with the Makefile's flags, plain -O2, and plain C, side by side
#   make bench-torch     the same ViT in PyTorch beside bench (optional: python3-torch)
#   make fuzz       libFuzzer on the three parsers (needs clang; FUZZ_TIME=60 seconds each)
#   make memcheck   valgrind on the tests and a short training run
#   make clean
# Builds and test runs use every core (-j); make -j1 runs one thing at a time.
CC ?= cc
MARCH := $(shell $(CC) -march=native -x c -c /dev/null -o /dev/null >/dev/null 2>&1 && echo -march=native)
CFLAGS ?= -O3 $(MARCH) -ffp-contract=fast
WARN = -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror
OPENMP ?= -fopenmp
SANITIZE = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS = -lm
NPROC := $(shell nproc 2>/dev/null || echo 2)
# Every core by default; set once, so the sub-makes of make check share the job server.
ifndef TQS_MAKE_JOBS
MAKEFLAGS += -j$(NPROC)
export TQS_MAKE_JOBS := $(NPROC)
endif

EXAMPLES = examples/exact examples/model examples/ground_state examples/minimal examples/attention examples/scan examples/tour
TESTS = test_ed test_math test_vit test_vmc test_sr test_sym test_obs test_files test_cli

all: $(EXAMPLES)

examples/%: examples/%.c tqs.h examples/flags.h examples/observables.h examples/plot.h
	$(CC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)

bench/bench: bench/bench.c tqs.h examples/flags.h
	$(CC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)
# The header as someone dropping it into a project builds it: plain -O2, no
# -march (AVX2 kernels chosen at run time), and the plain-C fallback.
bench/bench-O2: bench/bench.c tqs.h examples/flags.h
	$(CC) -O2 $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)
bench/bench-O2-plain: bench/bench.c tqs.h examples/flags.h
	$(CC) -O2 -DTQS_NO_VECTOR_EXT $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)

# ---- tests ------------------------------------------------------------------
# The library is compiled once per build, build/B/tqs.o (tqs.h compiled as C
# with TQS_IMPLEMENTATION, as a project using the header would), and linked
# into that build's test programs. The builds:
#   test   the Makefile's flags; the tests at their quick level (make test)
#   full   the same library; the tests with TQS_TEST_FULL: 4x6 Lanczos, the
#          6x4 sector, 4x6 observables, the momentum step on the enumeration
#   noomp  no OpenMP, plain-C kernels (TQS_NO_VECTOR_EXT)
#   san    AddressSanitizer + UBSan (no -march: the run-time AVX2 choice)
#   base   -O2 without run-time dispatch (2-wide vectors on x86-64 and AArch64)
# noomp, san and base build the tests with TQS_TEST_SHORT: the same checks on
# shorter runs, training thresholds left to the optimised builds.
LIBFLAGS_test = $(CFLAGS) $(OPENMP)
LIBFLAGS_noomp = $(CFLAGS) -DTQS_NO_VECTOR_EXT
LIBFLAGS_san = $(SANITIZE) $(OPENMP)
LIBFLAGS_base = -O2 -DTQS_NO_DISPATCH $(OPENMP)
LIBFLAGS_vg = -O1 -g
build/%/tqs.o: tqs.h
	@mkdir -p $(@D)
	$(CC) $(LIBFLAGS_$*) $(WARN) -x c -DTQS_IMPLEMENTATION -c tqs.h -o $@
TEST_DEPS = tqs.h tests/test.h examples/plot.h
build/test/%: tests/%.c build/test/tqs.o $(TEST_DEPS)
	$(CC) $(LIBFLAGS_test) $(WARN) -I. $< build/test/tqs.o -o $@ $(LDLIBS)
build/full/%: tests/%.c build/test/tqs.o $(TEST_DEPS)
	@mkdir -p $(@D)
	$(CC) $(LIBFLAGS_test) -DTQS_TEST_FULL $(WARN) -I. $< build/test/tqs.o -o $@ $(LDLIBS)
build/noomp/%: tests/%.c build/noomp/tqs.o $(TEST_DEPS)
	$(CC) $(LIBFLAGS_noomp) -DTQS_TEST_SHORT $(WARN) -I. $< build/noomp/tqs.o -o $@ $(LDLIBS)
build/san/%: tests/%.c build/san/tqs.o $(TEST_DEPS)
	$(CC) $(LIBFLAGS_san) -DTQS_TEST_SHORT $(WARN) -I. $< build/san/tqs.o -o $@ $(LDLIBS)
build/base/%: tests/%.c build/base/tqs.o $(TEST_DEPS)
	$(CC) $(LIBFLAGS_base) -DTQS_TEST_SHORT $(WARN) -I. $< build/base/tqs.o -o $@ $(LDLIBS)

# Running one test program: its output and exit status go to build/B/NAME.log
# (always run again); tests/summary.sh reads the logs in a fixed order. Each
# build's programs run side by side; the builds run one after another, since
# a test's scratch files (build/test_cli, ...) are shared by the builds.
build/%.log: build/% FORCE
	@./$< > $@.tmp 2>&1; echo "exit status $$?" >> $@.tmp; mv $@.tmp $@
build/test/test_cli.log: $(EXAMPLES)
build/test/bench-quick.log: bench/bench FORCE
	@./bench/bench --quick > $@.tmp 2>&1; echo "exit status $$?" >> $@.tmp; mv $@.tmp $@
FORCE:

# make test: the quick contract (every behaviour checked once, default build)
test: $(EXAMPLES) $(TESTS:%=build/test/%.log) build/test/bench-quick.log
	@./tests/summary.sh $(TESTS:%=build/test/%.log) build/test/bench-quick.log

# The rest of the matrix, one build at a time (make check runs them all).
# test_cli runs in make test alone: it tests the example programs, which are
# the same binaries whatever build the tests are, so running it again in the
# other builds repeated the same runs.
LIB_TESTS = $(filter-out test_cli,$(TESTS))
test-full: $(LIB_TESTS:%=build/full/%.log)
	@./tests/summary.sh $^
test-noomp: $(LIB_TESTS:%=build/noomp/%.log)
	@./tests/summary.sh $^
test-san: $(LIB_TESTS:%=build/san/%.log)
	@./tests/summary.sh $^
test-base: build/base/test_vit.log build/base/test_sr.log
	@./tests/summary.sh $^

# make check: make test, then every other build, valgrind, the fuzzers and
# MPI, one stage after another. A stage whose tool is missing (valgrind,
# clang's libFuzzer, an MPI compiler) is named and skipped; .ci/run installs
# them first.
check:
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory test-full
	@$(MAKE) --no-print-directory test-noomp
	@$(MAKE) --no-print-directory test-san
	@$(MAKE) --no-print-directory test-base
	@if command -v valgrind >/dev/null 2>&1; then $(MAKE) --no-print-directory memcheck; \
	 else echo "make check: valgrind not installed: memcheck SKIPPED"; fi
	@if ./tests/have_fuzzer.sh; then $(MAKE) --no-print-directory fuzz; \
	 else echo "make check: clang's libFuzzer not installed: fuzz SKIPPED"; fi
	@if command -v $(MPICC) >/dev/null 2>&1 && command -v $(MPIRUN) >/dev/null 2>&1; then $(MAKE) --no-print-directory test-mpi; \
	 else echo "make check: no MPI compiler and launcher: test-mpi SKIPPED"; fi
	@echo "make check: done"

# The main job: train the default model (see README) and report its energy.
# The paper's method: sampled SR on the b = 2 ViT (the program's defaults),
# then psi_sym trained over the translations inside a patch and the point group; about 3 minutes.
run: examples/ground_state
	@mkdir -p build
	./examples/ground_state --time-limit 3 --save build/run.tqs --print-every 50

# The paper's claims on this machine: PROFILE=quick (default, about 80
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

# Optional: the same ViT in PyTorch (Debian's python3-torch), timed beside
# bench's forward and Jacobian rows on the same three models (bench/README.md,
# "Against a framework"). Not part of make check: it needs Python and PyTorch
# (Debian's python3-torch is for /usr/bin/python3).
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && /usr/bin/python3 -c "import torch" 2>/dev/null && echo /usr/bin/python3 || echo python3)
bench-torch: examples/model bench/bench
	@mkdir -p build
	./examples/model init -o build/torch-small.tqs --L 4 > /dev/null
	./examples/model init -o build/torch-cpu-paper.tqs --L 6 --d 32 --heads 4 > /dev/null
	./examples/model init -o build/torch-tutorial.tqs --L 10 --d 60 --heads 10 --layers 4 --ff 4 > /dev/null
	for m in small cpu-paper tutorial; do $(PYTHON) bench/torch_vit.py build/torch-$$m.tqs --threads $(NPROC) || exit 1; done
	./bench/bench --only small; ./bench/bench --only cpu-paper; ./bench/bench --only tutorial

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
# the sanitizer build of make check (ASan's leak checker included).
VG = valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=all --show-leak-kinds=all -q
MEMCHECK_TESTS = test_ed test_vit
VG_PROGS = ground_state model attention exact
build/vg/test_%: tests/test_%.c build/vg/tqs.o $(TEST_DEPS)
	$(CC) $(LIBFLAGS_vg) -DTQS_TEST_SHORT $(WARN) -I. $< build/vg/tqs.o -o $@ $(LDLIBS)
build/vg/prog_%: examples/%.c tqs.h examples/flags.h examples/observables.h examples/plot.h
	@mkdir -p $(@D)
	$(CC) -O1 -g $(WARN) -I. $< -o $@ $(LDLIBS)
memcheck: $(addprefix build/vg/,$(MEMCHECK_TESTS)) $(addprefix build/vg/prog_,$(VG_PROGS))
	@for t in $(MEMCHECK_TESTS); do echo "== valgrind $$t"; $(VG) ./build/vg/$$t > build/vg/$$t.log 2>&1 || { cat build/vg/$$t.log; exit 1; }; tail -n 1 build/vg/$$t.log; done
	@echo "== valgrind ground_state: 5 steps stopped after 3 with a checkpoint, resumed, plot, symmetrised evaluation, observables of both"
	@rm -f build/vg/run.csv build/vg/run.ckpt
	@$(VG) ./build/vg/prog_ground_state --quiet --d 8 --heads 2 --samples 32 --chains 8 --steps 5 --eval-samples 32 \
	  --checkpoint build/vg/run.ckpt --log build/vg/run.csv --symmetrize --sym-samples 16 --stop-at 3 > /dev/null; test $$? = 3
	@$(VG) ./build/vg/prog_ground_state --resume build/vg/run.ckpt --save build/vg/run.tqs --plot build/vg/run.svg \
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

.PHONY: bench-torch all test check test-full test-noomp test-san test-base clean run reproduce bench bench-portable fuzz memcheck mpi test-mpi bench-mpi FORCE
.SECONDARY:
