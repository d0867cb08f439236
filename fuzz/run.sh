#!/usr/bin/env bash
# Runs the libFuzzer targets (RELIABILITY.md §6) for SECONDS each.
#
#   fuzz/run.sh SECONDS [target...]      (default: every target)
#
# Configures build-fuzz/ with clang-14 (-DGIFTCARD_FUZZ=ON, RelWithDebInfo),
# builds only the <t>_fuzzer targets, and runs each one in turn on a scratch
# copy of fuzz/<t>_seed_corpus (+ fuzz/<t>_regressions) with
#   -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=5 -dict=fuzz/<t>.dict
# Prints one summary line per target and a final JSON line
#   {"fuzz":{"<t>":{"execs":N,"crashes":0,"ooms":0,"timeouts":0,"leaks":0,...}}}
# Exits 1 if any target crashed, ran out of memory, timed out or leaked (the
# input is copied to fuzz/<t>_regressions/), 2 if the build failed.
#
# Environment:
#   FUZZ_BUILD=dir        build directory (default: build-fuzz next to fuzz/)
#   FUZZ_JOBS=n           build parallelism (default: nproc)
#   FUZZ_MERGE=1          afterwards, merge new inputs of at most
#                         FUZZ_MERGE_MAX_BYTES (default 512) that add coverage
#                         into fuzz/<t>_seed_corpus (at most FUZZ_MERGE_MAX_FILES,
#                         default 40, per target; skipped if the target failed)
#   FUZZ_KEEP=1           keep the scratch directories (default: removed)
#   FUZZ_ARGS="..."       extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
set -u -o pipefail

usage() {
  echo "usage: $0 SECONDS [target...]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
case "$1" in '' | *[!0-9]*) usage ;; esac
SECS=$1
shift

FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$FUZZ_DIR/.." && pwd)
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
JOBS=${FUZZ_JOBS:-$(nproc)}
ALL_TARGETS=(codec http json_commands keys caf_inspect)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi
for t in "${TARGETS[@]}"; do
  case " ${ALL_TARGETS[*]} " in *" $t "*) ;; *) echo "unknown target: $t (known: ${ALL_TARGETS[*]})" >&2; exit 2 ;; esac
done

# ---------------------------------------------------------------- build
echo "fuzz: configuring $BUILD (clang-14, GIFTCARD_FUZZ=ON, RelWithDebInfo)" >&2
mkdir -p "$BUILD"
if ! CC=clang-14 CXX=clang++-14 cmake -S "$ROOT" -B "$BUILD" -G Ninja -DGIFTCARD_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$BUILD/fuzz-configure.log" 2>&1; then
  cat "$BUILD/fuzz-configure.log" >&2
  echo "fuzz: configure failed" >&2
  exit 2
fi
build_targets=()
for t in "${TARGETS[@]}"; do build_targets+=("${t}_fuzzer"); done
echo "fuzz: building ${build_targets[*]}" >&2
if ! cmake --build "$BUILD" -j "$JOBS" --target "${build_targets[@]}" >"$BUILD/fuzz-build.log" 2>&1; then
  tail -n 60 "$BUILD/fuzz-build.log" >&2
  echo "fuzz: build failed (log: $BUILD/fuzz-build.log)" >&2
  exit 2
fi

# ---------------------------------------------------------------- run
LOGS="$BUILD/fuzz-logs"
mkdir -p "$LOGS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:symbolize=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:symbolize=1}
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/bin/llvm-symbolizer-14 ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
fi

json=""
failed=0
count() { find "$1" -maxdepth 1 -type f -name "$2" | wc -l; }
stat_of() { grep -o "stat::$2: *[0-9]*" "$1" | tail -n 1 | grep -o '[0-9]*$'; }

for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/${t}_fuzzer"
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/giftcard-fuzz-$t.XXXXXX")
  mkdir -p "$scratch/corpus" "$scratch/artifacts"
  find "$FUZZ_DIR/${t}_seed_corpus" "$FUZZ_DIR/${t}_regressions" -maxdepth 1 -type f ! -name '.*' \
    -exec cp {} "$scratch/corpus/" \; 2>/dev/null
  log="$LOGS/$t.log"
  echo "fuzz: running $t for ${SECS}s (log: $log)" >&2
  start=$(date +%s)
  # shellcheck disable=SC2086
  (cd "$scratch" && "$bin" -max_total_time="$SECS" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=5 \
    -dict="$FUZZ_DIR/$t.dict" -artifact_prefix="$scratch/artifacts/" -print_final_stats=1 \
    ${FUZZ_ARGS:-} "$scratch/corpus") >"$log" 2>&1
  rc=$?
  elapsed=$(($(date +%s) - start))

  crashes=$(count "$scratch/artifacts" 'crash-*')
  ooms=$(count "$scratch/artifacts" 'oom-*')
  timeouts=$(count "$scratch/artifacts" 'timeout-*')
  leaks=$(count "$scratch/artifacts" 'leak-*')
  # A non-zero exit without an artifact (e.g. a sanitizer report at exit) is a crash too.
  if [ "$rc" -ne 0 ] && [ $((crashes + ooms + timeouts + leaks)) -eq 0 ]; then crashes=1; fi
  execs=$(stat_of "$log" number_of_executed_units)
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
  [ -n "$execs" ] || execs=0
  rss=$(stat_of "$log" peak_rss_mb)
  [ -n "$rss" ] || rss=0
  new_units=$(stat_of "$log" new_units_added)
  [ -n "$new_units" ] || new_units=0
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
  corpus=$(echo "$last" | grep -o 'corp: [0-9]*' | grep -o '[0-9]*')
  per_sec=$((execs / (elapsed > 0 ? elapsed : 1)))

  bad=$((crashes + ooms + timeouts + leaks))
  if [ "$bad" -gt 0 ]; then
    failed=1
    mkdir -p "$FUZZ_DIR/${t}_regressions"
    for a in "$scratch"/artifacts/crash-* "$scratch"/artifacts/oom-* "$scratch"/artifacts/timeout-* \
      "$scratch"/artifacts/leak-*; do
      [ -f "$a" ] || continue
      cp "$a" "$FUZZ_DIR/${t}_regressions/"
      echo "fuzz: $t: input saved as fuzz/${t}_regressions/$(basename "$a")" >&2
    done
    echo "---- $t: end of $log ----" >&2
    awk '/^==[0-9]+==|FUZZ_CHECK failed|runtime error:|^ERROR: libFuzzer/ {p=1} p' "$log" | head -n 120 >&2
    echo "---- end ----" >&2
  fi

  merged=0
  if [ "${FUZZ_MERGE:-0}" = 1 ] && [ "$bad" -eq 0 ]; then
    small="$scratch/small"
    mkdir -p "$small"
    find "$scratch/corpus" -maxdepth 1 -type f -size -"$((${FUZZ_MERGE_MAX_BYTES:-512} + 1))"c \
      -exec cp {} "$small/" \;
    before=$(count "$FUZZ_DIR/${t}_seed_corpus" '*')
    mergedir="$scratch/merged"
    mkdir -p "$mergedir"
    cp "$FUZZ_DIR/${t}_seed_corpus"/* "$mergedir/"
    (cd "$scratch" && "$bin" -merge=1 -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=5 \
      "$mergedir" "$small") >"$LOGS/$t.merge.log" 2>&1
    added=$(($(count "$mergedir" '*') - before))
    if [ "$added" -gt 0 ] && [ "$added" -le "${FUZZ_MERGE_MAX_FILES:-40}" ]; then
      for f in "$mergedir"/*; do
        [ -e "$FUZZ_DIR/${t}_seed_corpus/$(basename "$f")" ] || cp "$f" "$FUZZ_DIR/${t}_seed_corpus/"
      done
      merged=$added
    elif [ "$added" -gt 0 ]; then
      echo "fuzz: $t: $added new inputs add coverage; more than FUZZ_MERGE_MAX_FILES, not merged" >&2
    fi
  fi

  printf 'fuzz: %-14s execs=%s (%s/s) crashes=%s ooms=%s timeouts=%s leaks=%s cov=%s ft=%s corpus=%s new_units=%s peak_rss_mb=%s merged=%s seconds=%s\n' \
    "$t" "$execs" "$per_sec" "$crashes" "$ooms" "$timeouts" "$leaks" "${cov:-0}" "${ft:-0}" "${corpus:-0}" \
    "$new_units" "$rss" "$merged" "$elapsed"
  entry=$(printf '"%s":{"execs":%s,"crashes":%s,"ooms":%s,"timeouts":%s,"leaks":%s,"seconds":%s,"execs_per_second":%s,"cov":%s,"features":%s,"corpus":%s,"new_units":%s,"peak_rss_mb":%s,"merged":%s}' \
    "$t" "$execs" "$crashes" "$ooms" "$timeouts" "$leaks" "$elapsed" "$per_sec" "${cov:-0}" "${ft:-0}" \
    "${corpus:-0}" "$new_units" "$rss" "$merged")
  json="${json:+$json,}$entry"

  if [ "${FUZZ_KEEP:-0}" = 1 ]; then
    echo "fuzz: $t: scratch kept in $scratch" >&2
  else
    rm -rf "$scratch"
  fi
done

echo "{\"fuzz\":{$json}}"
exit "$failed"
