# giftcard — one-command set-up for a fresh Debian 12 machine (run as root).
#   make run    install missing packages, build Release, serve ./data with a demo catalog
#   make test   install missing packages, build, run the whole suite through ctest:
#               once in the Release build, once under AddressSanitizer+UBSan (build-asan/)
#   make bench  build and run every benchmark (JSON lines in bench/results/latest; figures
#               go to docs/BENCHMARKS.md by hand)
#   make bench-compare  giftcard vs PostgreSQL 15, one alternating run; table and chart
#               into docs/BENCHMARKS.md and docs/compare.png
#   make asan   only the sanitizer run
#   make soak   the reliability suites at the plan's full counts (200 kills, 500 power
#               cuts, ...) plus 10 min of libFuzzer per target; figures in
#               $(BUILD)/reliability-soak.json and fuzz/ output (docs/RELIABILITY.md)
#   make fuzz   60 s of libFuzzer per target (clang-14, build-fuzz/)
#   (test and asan also install Chromium, Node.js/npm and the browser test's npm packages)

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
DATA       ?= ./data
GIFTCARD   := $(BUILD)/giftcard

PACKAGES := cmake ninja-build g++ make pkg-config clang-14 libclang-rt-14-dev libpq-dev \
            libcaf-dev librocksdb-dev libcereal-dev libssl-dev openssl \
            libboost-test-dev libboost-dev libboost-system-dev \
            nlohmann-json3-dev libcli11-dev libspdlog-dev

.PHONY: deps browser-deps configure build run test asan bench bench-compare clean soak fuzz

# Install only what is missing, so a machine that has everything never calls apt.
deps:
	@missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install: $$missing)" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The browser test (tests/browser) drives the admin viewer in Debian's headless
# Chromium with playwright-core, pinned in tests/browser/package-lock.json.
# Node.js and npm are installed only if their commands are missing (a machine
# may have its own Node.js, whose npm then serves); node_modules only if absent.
BROWSER_TESTS := tests/browser

browser-deps:
	@missing=""; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install: $$missing)" >&2; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@if [ ! -d $(BROWSER_TESTS)/node_modules/playwright-core ]; then \
	  echo "npm ci in $(BROWSER_TESTS)"; \
	  cd $(BROWSER_TESTS) && npm ci --no-audit --no-fund; \
	fi

$(BUILD)/build.ninja: | deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j $(JOBS)

run: configure
	cmake --build $(BUILD) -j $(JOBS) --target giftcard
	mkdir -p $(DATA)
	$(GIFTCARD) serve --data $(DATA) --demo

test: build browser-deps
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900
	$(MAKE) asan

asan: deps browser-deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGIFTCARD_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 1800

# Every benchmark, back to back; JSON lines go to $(BENCH_OUT)/*.jsonl, progress to
# the terminal. Not timed as a whole yet; the longest part is the restart figure, which
# first writes a 10M-event log (~26,000 events/s here, so ~6.5 min).
BENCH_OUT ?= bench/results/latest

bench: build
	mkdir -p $(BENCH_OUT)
	$(BUILD)/giftcard-bench purchase --mode hot --buyers 256 --seconds 10 | tee $(BENCH_OUT)/purchase.jsonl
	$(BUILD)/giftcard-projection-bench replay --events 1000000 --runs 3 | tee $(BENCH_OUT)/replay.jsonl
	$(BUILD)/giftcard-projection-bench lag --buyers 256 --seconds 10 --runs 3 | tee $(BENCH_OUT)/lag.jsonl
	$(BUILD)/giftcard-projection-bench restart --events 10000000 --runs 3 | tee $(BENCH_OUT)/restart.jsonl
	$(BUILD)/giftcard-http-bench purchase --clients 1,8,64 --repeat 3 | tee $(BENCH_OUT)/http.jsonl
	$(BUILD)/giftcard-http-bench slow --rounds 2 | tee $(BENCH_OUT)/http-slow.jsonl

# Issue #7: giftcard and the PostgreSQL peer side by side, alternating, in one run
# (bench/compare/run.sh; ~45 min). Raw results in bench/results/compare-DATE/; the table
# and chart replace the "Side by side" section of docs/BENCHMARKS.md and docs/compare.png.
bench-compare: build
	BENCH_PUBLISH=1 bench/compare/run.sh

# Reliability at full counts (RELIABILITY.md): the same ctest suites as `make test`
# with GIFTCARD_SOAK=1, then libFuzzer for FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 600
soak: build
	cd $(BUILD) && GIFTCARD_SOAK=1 GIFTCARD_RELIABILITY_REPORT=$(CURDIR)/$(BUILD)/reliability-soak.json \
	  ctest -L reliability --output-on-failure --timeout 14400
	fuzz/run.sh $(FUZZ_SECONDS) | tee $(BUILD)/fuzz-soak.out

fuzz: deps
	fuzz/run.sh 60

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
