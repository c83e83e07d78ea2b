# craylet — see README.md.  `make run` and `make test` are all a fresh
# machine needs; both run `setup` first, which is idempotent and quick when
# nothing changed.

SHELL := /bin/bash
.DEFAULT_GOAL := build

PYTHON      ?= python3
VENV        := .venv
VPY         := $(VENV)/bin/python
RAY_VERSION := 2.54.0
PY_DEPS     := ray[default]==$(RAY_VERSION) pytest pytest-timeout flatbuffers
APT_PKGS    := build-essential cmake pkg-config libgrpc-dev protobuf-compiler \
               protobuf-c-compiler libprotobuf-c-dev libhiredis-dev libjemalloc-dev \
               libhwloc-dev libcriterion-dev flatbuffers-compiler
BUILD       := build
ASAN_BUILD  := build-asan
JOBS        ?= 2
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SHIM_SRC    := $(shell find python_shim -type f \( -name '*.py' -o -name '*.pth' -o -name '*.toml' \) -not -path '*/build/*' 2>/dev/null)

.PHONY: setup apt venv shim build asan run test unit-test asan-test integration-test fuzz-test bench clean

setup: apt venv shim build

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

shim: $(VENV)/.shim-stamp

$(VENV)/.shim-stamp: $(VENV)/.deps-stamp $(SHIM_SRC)
	$(VPY) -m pip install -q --disable-pip-version-check --no-deps --force-reinstall ./python_shim
	@touch $@

build: $(VENV)/.deps-stamp
	@[ -f $(BUILD)/CMakeCache.txt ] || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCRAYLET_PYTHON=$(CURDIR)/$(VPY) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

asan: $(VENV)/.deps-stamp
	@[ -f $(ASAN_BUILD)/CMakeCache.txt ] || cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCRAYLET_SANITIZE=ON -DCRAYLET_PYTHON=$(CURDIR)/$(VPY) >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)

run: setup
	$(VPY) -m craylet.demo --raylet-path $(CURDIR)/$(BUILD)/craylet

unit-test: build
	cd $(BUILD) && ctest --output-on-failure

asan-test: asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure

integration-test: setup
	CRAYLET_BUILD_DIR=$(CURDIR)/$(BUILD) CRAYLET_BIN=$(CURDIR)/$(BUILD)/craylet \
	  $(VPY) -m pytest -q -p no:cacheprovider --timeout=600 tests/integration

test: setup unit-test asan-test integration-test

bench: setup
	$(VPY) benchmarks/startup.py --raylet-path $(CURDIR)/$(BUILD)/craylet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
