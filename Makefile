# craylet — see README.md.  `make run` and `make test` are all a fresh
# machine needs; both run `setup` first, which is idempotent and quick when
# nothing changed.

SHELL := /bin/bash
.DEFAULT_GOAL := build

PYTHON      ?= python3
# The Ray release craylet is built for.  The default gets .venv and build/;
# any other (make setup RAY_VERSION=2.54.0) lives beside it in
# .venv-<version> and build-<version>, so both can be kept and tested.
DEFAULT_RAY_VERSION := 2.60.0
SUPPORTED_RAY_VERSIONS := 2.60.0 2.54.0
RAY_VERSION ?= $(DEFAULT_RAY_VERSION)
ifeq ($(filter $(RAY_VERSION),$(SUPPORTED_RAY_VERSIONS)),)
$(error RAY_VERSION=$(RAY_VERSION) is not one craylet supports ($(SUPPORTED_RAY_VERSIONS)))
endif
ifeq ($(RAY_VERSION),$(DEFAULT_RAY_VERSION))
SUFFIX      :=
else
SUFFIX      := -$(RAY_VERSION)
endif
VENV        := .venv$(SUFFIX)
VPY         := $(VENV)/bin/python
PY_DEPS     := ray[default,train]==$(RAY_VERSION) pytest pytest-timeout pytest-xdist flatbuffers numpy scikit-build-core
APT_PKGS    := build-essential cmake pkg-config libgrpc-dev protobuf-compiler \
               protobuf-c-compiler libprotobuf-c-dev libhiredis-dev libjemalloc-dev \
               libhwloc-dev libcriterion-dev flatbuffers-compiler clang libclang-rt-14-dev \
               redis-server
BUILD       := build$(SUFFIX)
ASAN_BUILD  := build-asan$(SUFFIX)
TSAN_BUILD  := build-tsan$(SUFFIX)
# The unit tests whose code crosses threads (the gRPC poller thread and the
# completion-queue bridge into the loop, cross-thread wake-ups).
TSAN_TESTS  := test_rpc test_loop test_transfer
FUZZ_BUILD  := build-fuzz$(SUFFIX)
FUZZ_SECONDS ?= 8
# The harnesses alone (the instrumented daemon itself is never run).
FUZZ_TARGETS := $(notdir $(basename $(wildcard tests/fuzz/fuzz_*.c)))
JOBS        ?= 2
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup apt venv build asan asan-daemon tsan fuzz run test unit-test asan-test tsan-test integration-test fuzz-test bench soak clean

setup: apt venv build

apt:
	@missing=$$(for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.deps-stamp

$(VENV)/.deps-stamp: Makefile
	@[ -x $(VPY) ] || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check $(PY_DEPS)
	@touch $@

# The same path a user takes (`pip install .`, see pyproject.toml), with the
# build tree kept in $(BUILD) and the unit tests built too: the daemon lands
# in $(VENV)/bin/craylet and $(BUILD)/craylet, the shim in site-packages.
build: $(VENV)/.deps-stamp
	CMAKE_GENERATOR="Unix Makefiles" CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) \
	  $(VPY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
	    -C build-dir=$(BUILD) -C cmake.define.CRAYLET_TESTS=ON -C cmake.define.CRAYLET_PYTHON=$(CURDIR)/$(VPY) .

asan: $(VENV)/.deps-stamp
	@[ -f $(ASAN_BUILD)/CMakeCache.txt ] || cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCRAYLET_SANITIZE=ON -DCRAYLET_PYTHON=$(CURDIR)/$(VPY) >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# The daemon alone, for the integration test that runs it under ASan.
asan-daemon: $(VENV)/.deps-stamp
	@[ -f $(ASAN_BUILD)/CMakeCache.txt ] || cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCRAYLET_SANITIZE=ON -DCRAYLET_PYTHON=$(CURDIR)/$(VPY) >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS) --target craylet

tsan: $(VENV)/.deps-stamp
	@[ -f $(TSAN_BUILD)/CMakeCache.txt ] || cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCRAYLET_TSAN=ON -DCRAYLET_PYTHON=$(CURDIR)/$(VPY) >/dev/null
	cmake --build $(TSAN_BUILD) -j$(JOBS) --target $(TSAN_TESTS)

run: setup
	$(VPY) -m craylet.demo --raylet-path $(CURDIR)/$(BUILD)/craylet

unit-test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

asan-test: asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS)

# halt_on_error: any report fails the run.
tsan-test: tsan
	@set -e; for t in $(TSAN_TESTS); do \
	  echo "ThreadSanitizer: $$t"; \
	  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan/suppressions.txt" $(TSAN_BUILD)/$$t --jobs 1; \
	done

fuzz: $(VENV)/.deps-stamp
	@[ -f $(FUZZ_BUILD)/CMakeCache.txt ] || CC=clang cmake -S . -B $(FUZZ_BUILD) -DCRAYLET_FUZZ=ON -DCRAYLET_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCRAYLET_PYTHON=$(CURDIR)/$(VPY) >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target $(FUZZ_TARGETS)

# A short run of every harness from its seeds (generated ones, and the
# golden frames recorded from stock clients of this Ray release, as a
# stream: a leading even byte picks the harness's stream mode); a crash or
# leak fails the target.
fuzz-test: fuzz
	@set -e; for f in $(FUZZ_BUILD)/tests/fuzz/fuzz_*; do \
	  name=$$(basename $$f); seeds=$(FUZZ_BUILD)/seeds/$$name; corpus=$(FUZZ_BUILD)/corpus/$$name; \
	  mkdir -p $$seeds $$corpus; \
	  [ ! -f tests/fuzz/make_seeds_$${name#fuzz_}.py ] || $(VPY) tests/fuzz/make_seeds_$${name#fuzz_}.py $$seeds; \
	  [ ! -d tests/fuzz/$${name#fuzz_}_seeds ] || cp tests/fuzz/$${name#fuzz_}_seeds/* $$seeds/ 2>/dev/null || true; \
	  [ $$name != fuzz_gpu_topo ] || cp python_shim/craylet/topologies/*.txt $$seeds/; \
	  case $$name in fuzz_raylet_msg) golden=raylet;; fuzz_plasma) golden=plasma;; *) golden=;; esac; \
	  for g in tests/golden/$(RAY_VERSION)/$$golden-*.frame; do \
	    [ -n "$$golden" ] && [ -f "$$g" ] || continue; \
	    { printf '\0'; cat "$$g"; } > $$seeds/golden-$$(basename $$g); \
	  done; \
	  echo "fuzzing $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 $$corpus $$seeds 2>&1 | tail -n 1; \
	done

# The ASan daemon is for the one test that runs it; `INTEGRATION_ASAN=` skips
# building it (that test then skips), as CI does for its second release.
INTEGRATION_ASAN ?= asan-daemon
PYTEST_ARGS ?=
# A cluster test spends most of its time waiting (on `ray start`, on
# drivers, on GCS), so TEST_WORKERS of them run at once (pytest-xdist,
# each with its own clusters, ports and namespaces); the tests marked
# `serial` need the machine to themselves and run afterwards, one by one.
# Exit status 5 is "nothing selected" (a -k that leaves one pass empty).
TEST_WORKERS ?= 2
PYTEST      := CRAYLET_BUILD_DIR=$(CURDIR)/$(BUILD) CRAYLET_BIN=$(CURDIR)/$(BUILD)/craylet \
               CRAYLET_ASAN_BIN=$(CURDIR)/$(ASAN_BUILD)/craylet CRAYLET_VENV=$(CURDIR)/$(VENV) \
               $(VPY) -m pytest -q -p no:cacheprovider --timeout=600 --durations=15
integration-test: setup $(INTEGRATION_ASAN)
	rc=0; $(PYTEST) -n $(TEST_WORKERS) -m 'not serial' $(PYTEST_ARGS) tests/integration || rc=$$?; \
	[ $$rc = 0 ] || [ $$rc = 5 ] || exit $$rc; \
	rc=0; $(PYTEST) -m serial $(PYTEST_ARGS) tests/integration || rc=$$?; \
	[ $$rc = 0 ] || [ $$rc = 5 ] || exit $$rc

test: setup unit-test asan-test tsan-test fuzz-test integration-test

# The chaos soak at full length (CI runs it for CRAYLET_SOAK_SECONDS=25).
SOAK_SECONDS ?= 600
soak: setup
	CRAYLET_BUILD_DIR=$(CURDIR)/$(BUILD) CRAYLET_BIN=$(CURDIR)/$(BUILD)/craylet CRAYLET_VENV=$(CURDIR)/$(VENV) \
	  CRAYLET_SOAK_SECONDS=$(SOAK_SECONDS) $(VPY) -m pytest -q -s -p no:cacheprovider --timeout=1800 \
	  tests/integration/test_chaos.py

bench: setup
	$(VPY) benchmarks/startup.py --raylet-path $(CURDIR)/$(BUILD)/craylet
	$(VPY) benchmarks/microbench.py --raylet-path $(CURDIR)/$(BUILD)/craylet
	$(VPY) benchmarks/packing.py --replay $(CURDIR)/$(BUILD)/pack_replay
	$(VPY) benchmarks/pg_throughput.py --raylet-path $(CURDIR)/$(BUILD)/craylet
	$(VPY) benchmarks/transfer.py --raylet-path $(CURDIR)/$(BUILD)/craylet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
