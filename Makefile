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
#   make tsan   ThreadSanitizer (build-tsan/): the concurrency, HTTP and store-writer
#               suites; any report fails (docs/RELIABILITY.md, "ThreadSanitizer").
#               Not part of make test.
#   make lint   clang-format-14, a clang-14 build with the thread-safety analysis (build-lint/),
#               clang-tidy-14, at most 500 lines a product file, tools/check_refs.sh
#   (test and asan also install Chromium, Node.js/npm and the browser test's npm packages)

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
DATA       ?= ./data
GIFTCARD   := $(BUILD)/giftcard

PACKAGES := cmake ninja-build g++ make pkg-config clang-14 libclang-rt-14-dev libpq-dev \
            libcaf-dev librocksdb-dev libcereal-dev libssl-dev openssl \
            libboost-test-dev libboost-dev libboost-system-dev libabsl-dev \
            nlohmann-json3-dev libcli11-dev libspdlog-dev

.PHONY: deps browser-deps configure build run test asan bench bench-compare clean soak fuzz lint

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
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGIFTCARD_SANITIZE=ON -DGIFTCARD_BENCHES=OFF
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
	$(BUILD)/giftcard-http-bench whale | tee $(BENCH_OUT)/http-whale.jsonl
	$(MAKE) --no-print-directory soak-bench BENCH_OUT=$(BENCH_OUT)

# Issue #16's soak, also alone: one server, one card with 5M codes, 64 keep-alive clients
# for 10 minutes (a JSON line a minute), without and with 50 % repeated purchases; each run
# also seeds the codes and verifies the store afterwards.
.PHONY: soak-bench
soak-bench: build
	mkdir -p $(BENCH_OUT)
	$(BUILD)/giftcard-http-bench soak --minutes 10 --repeat-rate 0 | tee $(BENCH_OUT)/http-soak-0.jsonl
	$(BUILD)/giftcard-http-bench soak --minutes 10 --repeat-rate 50 | tee $(BENCH_OUT)/http-soak-50.jsonl

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

# Issue #14: ThreadSanitizer (gcc 12) on the suites with real threads: actors_test
# concurrency/purchase_flow/restart/query_pool, the api_test HTTP suites (their `giftcard
# serve` children are TSan builds too) and the store_test writer suites. CAF is
# rebuilt with TSan from Debian's source package (tests/tsan_caf.sh, once, into
# $(TSAN_BUILD)/caf; 8 min on 2 cores) and linked instead of libcaf-dev's
# libraries; RocksDB stays uninstrumented (tests/tsan.supp says what of it is
# ignored and why). Every process also writes its reports to
# $(TSAN_BUILD)/tsan-reports/: a report fails its test (halt_on_error), and any
# report file left fails the target.
TSAN_BUILD   ?= build-tsan
TSAN_JOBS    ?= $(JOBS)
TSAN_CAF     := $(CURDIR)/$(TSAN_BUILD)/caf
TSAN_SUITES  ?= ^(actors_test[.](concurrency|purchase_flow|restart|query_pool)|api_test[.](http_[a-z_]+|sse_[a-z_]+|whale_[a-z_]+|domain_edges)|store_test[.]event_store(_group_commit)?)$$
TSAN_REPORTS := $(CURDIR)/$(TSAN_BUILD)/tsan-reports
TSAN_OPTIONS_RUN := suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1 second_deadlock_stack=1 \
                    log_path=$(TSAN_REPORTS)/tsan

.PHONY: tsan
tsan: deps
	sh tests/tsan_caf.sh $(TSAN_CAF) $(TSAN_JOBS)
	cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGIFTCARD_TSAN=ON \
	  -DCAF_CORE_LIBRARY=$(TSAN_CAF)/lib/libcaf_core.so -DCAF_IO_LIBRARY=$(TSAN_CAF)/lib/libcaf_io.so \
	  -DCAF_OPENSSL_LIBRARY=$(TSAN_CAF)/lib/libcaf_openssl.so
	cmake --build $(TSAN_BUILD) -j $(TSAN_JOBS) --target giftcard store_test actors_test api_test
	@for b in giftcard tests/actors_test; do \
	  ldd $(TSAN_BUILD)/$$b | grep -q '$(TSAN_CAF)/lib/libcaf_core' || \
	    { echo "$$b does not load the TSan build of CAF"; exit 1; }; done
	rm -rf $(TSAN_REPORTS) && mkdir -p $(TSAN_REPORTS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS="$(TSAN_OPTIONS_RUN)" \
	  ctest -R '$(TSAN_SUITES)' --output-on-failure -j $(TSAN_JOBS); \
	  rc=$$?; n=$$(ls $(TSAN_REPORTS) | wc -l); \
	  if [ $$n -gt 0 ]; then echo "$$n ThreadSanitizer report file(s):"; cat $(TSAN_REPORTS)/*; fi; \
	  [ $$rc -eq 0 ] && [ $$n -eq 0 ]

# Issue #15: static checks. Each runs, then the target fails if any failed:
#  - format: clang-format-14 --dry-run -Werror (.clang-format) over the product and test sources;
#  - thread-safety: $(LINT_BUILD)/, clang-14 with -DGIFTCARD_THREAD_SAFETY=ON
#    (-Wthread-safety -Werror=thread-safety), built whole; it also writes the
#    compile_commands.json that clang-tidy reads;
#  - tidy: clang-tidy-14 (.clang-tidy: bugprone, performance, concurrency, no function over
#    80 lines) over the product sources; every finding is an error;
#  - size: no product source file over $(LINT_MAX_LINES) lines;
#  - refs: tools/check_refs.sh (no reference left to files outside the repository).
LINT_BUILD     ?= build-lint
LINT_JOBS      ?= $(JOBS)
LINT_MAX_LINES ?= 500
LINT_PRODUCT   := events store projections actors api
LINT_SOURCES   := $(foreach d,$(LINT_PRODUCT) tests,'$(d)/*.cc' '$(d)/*.h')
LINT_PRODUCT_SOURCES := $(foreach d,$(LINT_PRODUCT),'$(d)/*.cc' '$(d)/*.h')

lint: deps
	@for t in clang-format-14:clang-format-14 clang-tidy-14:clang-tidy-14 run-clang-tidy-14:clang-tidy-14; do \
	  command -v $${t%%:*} >/dev/null || { echo "make lint needs $${t%%:*} (apt-get install $${t##*:})" >&2; exit 1; }; \
	done
	@failed=""; \
	echo "== format (clang-format-14)"; \
	git ls-files -z -co --exclude-standard -- $(LINT_SOURCES) \
	  | xargs -0 clang-format-14 --dry-run -Werror || failed="$$failed format"; \
	echo "== thread-safety ($(LINT_BUILD)/, clang-14)"; \
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(LINT_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DGIFTCARD_THREAD_SAFETY=ON \
	  >/dev/null || failed="$$failed configure"; \
	cmake --build $(LINT_BUILD) -j $(LINT_JOBS) || failed="$$failed thread-safety"; \
	echo "== tidy (clang-tidy-14)"; \
	run-clang-tidy-14 -quiet -p $(LINT_BUILD) -j $(LINT_JOBS) \
	  '$(CURDIR)/($(subst $(eval) ,|,$(LINT_PRODUCT)))/[^/]+\.cc$$' || failed="$$failed tidy"; \
	echo "== size (at most $(LINT_MAX_LINES) lines a product source file)"; \
	big=$$(git ls-files -z -co --exclude-standard -- $(LINT_PRODUCT_SOURCES) | xargs -0 wc -l \
	  | awk '$$2 != "total" && $$1 > $(LINT_MAX_LINES) { print "  " $$2 ": " $$1 " lines" }'); \
	if [ -n "$$big" ]; then echo "$$big"; failed="$$failed size"; fi; \
	echo "== refs (tools/check_refs.sh)"; \
	tools/check_refs.sh -n || failed="$$failed refs"; \
	if [ -n "$$failed" ]; then echo "make lint failed:$$failed" >&2; exit 1; fi; \
	echo "make lint: clean"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
