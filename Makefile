# tqs.h - build the examples, run the tests, train the default model.
#   make          build the examples
#   make run      train the default model (4x4, J2 = 0.5) and report its energy
#   make test     build every test three ways (OpenMP, no OpenMP, sanitizers) and run them
#   make reproduce  the paper's comparisons (about 30 minutes), written to examples/results/
#   make bench    the benchmark suite (a few minutes; bench/bench --quick is part of make test)
#   make clean
CC ?= cc
MARCH := $(shell $(CC) -march=native -x c -c /dev/null -o /dev/null >/dev/null 2>&1 && echo -march=native)
CFLAGS ?= -O3 $(MARCH) -ffp-contract=fast
WARN = -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror
OPENMP ?= -fopenmp
SANITIZE = -DTQS_TEST_SANITIZE -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS = -lm

EXAMPLES = examples/exact examples/model examples/ground_state examples/minimal examples/attention
TESTS = test_ed test_vit test_vmc test_sr test_sym test_files test_cli
MODES = omp noomp san

all: $(EXAMPLES)

examples/%: examples/%.c tqs.h examples/flags.h
	$(CC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)

bench/bench: bench/bench.c tqs.h examples/flags.h
	$(CC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)

build/omp/%: tests/%.c tqs.h tests/test.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)
build/noomp/%: tests/%.c tqs.h tests/test.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(WARN) -I. $< -o $@ $(LDLIBS)
build/san/%: tests/%.c tqs.h tests/test.h
	@mkdir -p $(@D)
	$(CC) $(SANITIZE) $(WARN) $(OPENMP) -I. $< -o $@ $(LDLIBS)

TEST_BINS = $(foreach m,$(MODES),$(addprefix build/$(m)/,$(TESTS)))

# Every test program prints "N passed, N failed" last; a crash counts as a failure.
test: $(EXAMPLES) $(TEST_BINS) bench/bench
	@rm -f build/summary; \
	for m in $(MODES); do for t in $(TESTS); do \
	  echo "== $$m/$$t"; \
	  if ./build/$$m/$$t > build/$$m/$$t.log 2>&1; then :; else echo "1 crashed" >> build/summary; fi; \
	  grep -v ' passed, ' build/$$m/$$t.log; grep ' passed, ' build/$$m/$$t.log | tail -n 1 | tee -a build/summary; \
	done; done; \
	echo "== bench --quick (a smoke run: the benchmark must keep working)"; \
	if ./bench/bench --quick > build/bench-quick.log 2>&1; then echo "1 passed, 0 failed" >> build/summary; \
	else cat build/bench-quick.log; echo "1 crashed" >> build/summary; fi; \
	awk '/ passed, /{p+=$$1; f+=$$3} / crashed/{f+=$$1} END{printf "%d passed, %d failed\n", p, f; exit (f>0)}' build/summary

# The main job: train the default model (see README) and report its energy.
run: examples/ground_state
	./examples/ground_state --exact --patch 1 --d 16 --heads 2 --layers 2 --ff 2 --steps 360 --lr 0.1 --diag-shift 0.05 --diag-shift-final 0.02

# The paper's claims on this machine (about 30 minutes): examples/results/
reproduce: $(EXAMPLES)
	./examples/reproduce.sh

bench: bench/bench
	./bench/bench

clean:
	rm -rf build $(EXAMPLES) bench/bench

.PHONY: all test clean run reproduce bench
.SECONDARY:
