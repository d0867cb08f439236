#!/usr/bin/env bash
# bench/compare/run.sh — issue #7 in one run: the PostgreSQL peer and giftcard side by side.
#
#   bench/compare/run.sh [OUT_DIR]        (what `make bench-compare` runs)
#   bench/compare/run.sh --report DIR     redo table.md and the chart from DIR's raw results
#
# 1. starts a throw-away PostgreSQL 15 cluster (bench/peers/postgres/pg.sh; stopped and
#    removed at the end, also on failure or Ctrl-C);
# 2. for each card layout (one hot card, then 100 cards), each concurrency (1, 8, 64, 256
#    buyers) and each repetition, runs every system once, alternating, in an order that
#    rotates from one point to the next:
#      postgres  pessimistic | optimistic | single, durable (synchronous_commit=on),
#                and the same with synchronous_commit=off for reference
#                (build/giftcard-pg-bench --reset: a fresh schema and data per run);
#      giftcard  in process (build/giftcard-bench purchase), over CAF remote with
#                pipelined requests and over HTTP keep-alive (build/giftcard-remote-bench:
#                a fresh `giftcard serve` per run); every giftcard store is durable
#                (a synced WAL write per group commit);
# 3. giftcard's engine figures: replay rate (giftcard-projection-bench replay), restart to
#    ready at 10M events (giftcard-projection-bench restart), peak RSS while 1M wallets are
#    credited and buy once (giftcard-bench purchase --mode million);
# 4. writes OUT_DIR (default bench/results/compare-YYYY-MM-DD[-N]): runs.jsonl (one line
#    per run: what ran and the benchmark's own JSON result), raw/ (every benchmark's
#    stdout), logs/ (stderr), machine.txt, table.md (printed at the end), chart.png.
#
# Environment (defaults in brackets):
#   BUILD [build]                 build directory with the benchmarks
#   BENCH_SECONDS [10]            measured seconds per purchase run
#   BENCH_WARMUP [1]              unmeasured seconds before each purchase run
#   BENCH_CLIENTS ["1 8 64 256"]  concurrent buyers
#   BENCH_CARDS ["1 100"]         card layouts
#   BENCH_REPEAT [1]              repetitions of every point (the table shows medians)
#   BENCH_PG_STRATEGIES ["pessimistic optimistic single"]   durable PostgreSQL runs
#   BENCH_PG_SYNC_OFF ["pessimistic optimistic single"]     also run with sync off ("" = none)
#   BENCH_GIFTCARD ["inproc caf http"]                      giftcard transports
#   BENCH_CAF_DEPTH [1]           CAF requests in flight per buyer
#   BENCH_GC_EST_RATE [50000]     giftcard purchases/s assumed at most, to size its codes
#   BENCH_GC_PER_CLIENT_RATE [3000]  ... and per buyer
#   BENCH_VERIFY [1]              0: skip `giftcard verify` after each networked run
#   BENCH_EXTRAS ["replay restart rss"]   engine figures to measure ("" = none)
#   BENCH_QUICK [0]               1: small engine figures (200,000-event restart, 100,000-event
#                                 replay, 50,000 wallets, 1 run each) for trying the tooling
#   BENCH_REPLAY_EVENTS [1000000]  BENCH_RESTART_EVENTS [10000000]  BENCH_RSS_USERS [1000000]
#   BENCH_EXTRA_RUNS [3]          runs of replay and restart (medians)
#   BENCH_RESTART_BASES []        keep the prepared restart stores here and reuse them next
#                                 time (saves generating the 10M-event log, ~7 min)
#   BENCH_TMP [/tmp]              where stores are made
#   PG_DIR [/tmp/giftcard-pg-compare]  PG_PORT [54339]  the throw-away cluster
#   BENCH_PUBLISH [0]             1 (make bench-compare): put table.md into docs/BENCHMARKS.md
#                                 (between the bench-compare markers) and chart.png into
#                                 docs/compare.png
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
HERE=bench/compare

need_tool() {  # need_tool COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "run.sh: installing $2 (for $1)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2
  fi
  command -v "$1" >/dev/null 2>&1
}

publish() {  # publish DIR: DIR's table and chart become the docs' side-by-side section
  local dir=$1
  python3 "$HERE/publish.py" "$dir" docs/BENCHMARKS.md \
    && { [ ! -f "$dir/chart.png" ] || cp "$dir/chart.png" docs/compare.png; } \
    && echo "run.sh: published to docs/BENCHMARKS.md and docs/compare.png" >&2
}

report() {  # report DIR: table.md and chart.png from DIR's runs.jsonl and extras
  local dir=$1
  need_tool python3 python3 || { echo "run.sh: python3 is needed for the table" >&2; return 1; }
  python3 "$HERE/report.py" "$dir"
  if need_tool gnuplot gnuplot-nox; then
    gnuplot -e "dir='$dir'" "$HERE/chart.gp" 2>"$dir/logs/gnuplot.log" \
      && echo "run.sh: chart: $dir/chart.png" >&2 \
      || echo "run.sh: gnuplot failed (see $dir/logs/gnuplot.log); no chart" >&2
  else
    echo "run.sh: gnuplot is missing (Debian: apt-get install gnuplot-nox); no chart" >&2
  fi
}

if [ "${1:-}" = "--report" ]; then
  [ -n "${2:-}" ] && [ -f "$2/runs.jsonl" ] || { echo "usage: $0 --report DIR (with DIR/runs.jsonl)" >&2; exit 2; }
  mkdir -p "$2/logs"
  report "$2"
  if [ "${BENCH_PUBLISH:-0}" = 1 ]; then publish "$2"; fi
  cat "$2/table.md"
  exit 0
fi

BUILD=${BUILD:-build}
SECONDS_RUN=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-1}
CLIENTS=${BENCH_CLIENTS:-1 8 64 256}
CARDS=${BENCH_CARDS:-1 100}
REPEAT=${BENCH_REPEAT:-1}
PG_STRATEGIES=${BENCH_PG_STRATEGIES-pessimistic optimistic single}
PG_SYNC_OFF=${BENCH_PG_SYNC_OFF-pessimistic optimistic single}
GIFTCARD=${BENCH_GIFTCARD-inproc caf http}
CAF_DEPTH=${BENCH_CAF_DEPTH:-1}
GC_EST_RATE=${BENCH_GC_EST_RATE:-50000}
GC_PER_CLIENT=${BENCH_GC_PER_CLIENT_RATE:-3000}
VERIFY=${BENCH_VERIFY:-1}
EXTRAS=${BENCH_EXTRAS-replay restart rss}
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  REPLAY_EVENTS=${BENCH_REPLAY_EVENTS:-100000}
  RESTART_EVENTS=${BENCH_RESTART_EVENTS:-200000}
  RSS_USERS=${BENCH_RSS_USERS:-50000}
  EXTRA_RUNS=${BENCH_EXTRA_RUNS:-1}
else
  REPLAY_EVENTS=${BENCH_REPLAY_EVENTS:-1000000}
  RESTART_EVENTS=${BENCH_RESTART_EVENTS:-10000000}
  RSS_USERS=${BENCH_RSS_USERS:-1000000}
  EXTRA_RUNS=${BENCH_EXTRA_RUNS:-3}
fi
RESTART_BASES=${BENCH_RESTART_BASES:-}
TMP=${BENCH_TMP:-/tmp}
PG_DIR=${PG_DIR:-/tmp/giftcard-pg-compare}
PG_PORT=${PG_PORT:-54339}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

for b in giftcard giftcard-bench giftcard-remote-bench giftcard-projection-bench giftcard-pg-bench; do
  [ -x "$BUILD/$b" ] || { echo "run.sh: $BUILD/$b is missing: build first (make build)" >&2; exit 2; }
done

if [ -n "${1:-}" ]; then
  OUT=$1
else
  OUT=bench/results/compare-$(date +%F)
  n=2
  while [ -e "$OUT" ]; do OUT=bench/results/compare-$(date +%F)-$n; n=$((n + 1)); done
fi
[ -e "$OUT/runs.jsonl" ] && { echo "run.sh: $OUT already holds a run; choose another directory" >&2; exit 2; }
mkdir -p "$OUT/raw" "$OUT/logs"
RUNS=$OUT/runs.jsonl
: >"$RUNS"

# ---- the plan: which systems, in which order
SYSTEMS=()
pg_durable=($PG_STRATEGIES)
gc=($GIFTCARD)
# Interleave durable PostgreSQL strategies with giftcard transports, then the sync-off runs.
for i in $(seq 0 $(( (${#pg_durable[@]} > ${#gc[@]} ? ${#pg_durable[@]} : ${#gc[@]}) - 1 ))); do
  if [ "$i" -lt ${#pg_durable[@]} ]; then SYSTEMS+=("pg:${pg_durable[$i]}:on"); fi
  if [ "$i" -lt ${#gc[@]} ]; then SYSTEMS+=("gc:${gc[$i]}"); fi
done
for s in $PG_SYNC_OFF; do SYSTEMS+=("pg:$s:off"); done
[ ${#SYSTEMS[@]} -gt 0 ] || { echo "run.sh: nothing to run" >&2; exit 2; }
n_points=$(( $(wc -w <<<"$CARDS") * $(wc -w <<<"$CLIENTS") * REPEAT ))
n_runs=$(( n_points * ${#SYSTEMS[@]} ))

# Rough duration: per run warm-up + window + ~9 s of setup, reset, checks and verify;
# engine figures: 10M-event restart ~10 min (less with reused BENCH_RESTART_BASES),
# replay ~1.5 min, 1M wallets ~2.5 min.
est=$(( n_runs * (WARMUP + SECONDS_RUN + 9) ))
for e in $EXTRAS; do
  case $e in
    restart) est=$(( est + (QUICK == 1 ? 30 : 600) )) ;;
    replay) est=$(( est + (QUICK == 1 ? 15 : 90) )) ;;
    rss) est=$(( est + (QUICK == 1 ? 15 : 150) )) ;;
  esac
done

{
  echo "date: $(date -Is)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' (working tree differs from HEAD)')"
  echo "host: $(uname -srm); nproc $(nproc); $(awk '/MemTotal/ {printf "%.1f GiB RAM", $2/1048576}' /proc/meminfo)"
  echo "cpu: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "compiler: $(awk -F= '/^CMAKE_CXX_COMPILER:/ {print $2}' "$BUILD/CMakeCache.txt" 2>/dev/null) ($(awk -F= '/^CMAKE_BUILD_TYPE:/ {print $2}' "$BUILD/CMakeCache.txt" 2>/dev/null))"
  echo "postgres: $("$PGBIN/postgres" --version 2>/dev/null || echo '?')"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "config: seconds=$SECONDS_RUN warmup=$WARMUP clients=[$CLIENTS] cards=[$CARDS] repeat=$REPEAT caf_depth=$CAF_DEPTH quick=$QUICK"
  echo "systems (order of the first point; it rotates by one per point): ${SYSTEMS[*]}"
  echo "extras: [$EXTRAS] replay_events=$REPLAY_EVENTS restart_events=$RESTART_EVENTS rss_users=$RSS_USERS extra_runs=$EXTRA_RUNS"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2
echo "run.sh: $n_runs purchase runs + [$EXTRAS]; expected to take about $(( est / 60 )) min; results in $OUT" >&2

# ---- PostgreSQL
PG_SH=bench/peers/postgres/pg.sh
pg_started=0
cleanup() {
  if [ $pg_started = 1 ]; then "$PG_SH" stop "$PG_DIR" >&2 || true; fi
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM
if echo " ${SYSTEMS[*]} " | grep -q ' pg:'; then
  CONN=$("$PG_SH" start "$PG_DIR" "$PG_PORT" | tail -n 1)
  pg_started=1
  echo "run.sh: PostgreSQL at $CONN" >&2
fi

# ---- one purchase run
seq_no=0
started=$(date +%s)
# run_one SYSTEM CARDS CLIENTS REP
run_one() {
  local sys=$1 cards=$2 clients=$3 rep=$4 label cmd=() kind variant sync="" transport="" rc
  seq_no=$((seq_no + 1))
  IFS=: read -r kind variant sync <<<"$sys"
  case $kind in
    pg)
      label=pg-$variant-sync$sync
      cmd=("$BUILD/giftcard-pg-bench" --conn "$CONN" --reset --strategy "$variant" --clients "$clients"
           --cards "$cards" --seconds "$SECONDS_RUN" --warmup "$WARMUP" --sync "$sync")
      ;;
    gc)
      label=gc-$variant
      transport=$variant
      if [ "$variant" = inproc ]; then
        # giftcard-bench loads --codes into every card: with fewer buyers than cards, only
        # the cards that have buyers are made (buyer i buys card i % K either way).
        local k=$(( clients < cards ? clients : cards ))
        local per=$(( (clients + k - 1) / k ))
        local rate=$(( GC_PER_CLIENT * clients < GC_EST_RATE ? GC_PER_CLIENT * clients : GC_EST_RATE ))
        local codes=$(( rate * (WARMUP + SECONDS_RUN + 3) * 13 / 10 * per / clients + 1000 ))
        if [ "$k" = 1 ]; then
          cmd=("$BUILD/giftcard-bench" purchase --mode hot --buyers "$clients" --seconds "$SECONDS_RUN" --codes "$codes")
        else
          cmd=("$BUILD/giftcard-bench" purchase --mode many --cards "$k" --buyers "$clients" --seconds "$SECONDS_RUN" --codes "$codes")
        fi
        if [ "$WARMUP" != 1 ]; then echo "run.sh: note: giftcard-bench always warms up for 1 s" >&2; fi
      else
        cmd=("$BUILD/giftcard-remote-bench" purchase --transport "$variant" --clients "$clients" --cards "$cards"
             --seconds "$SECONDS_RUN" --warmup "$WARMUP" --est-rate "$GC_EST_RATE"
             --per-client-rate "$GC_PER_CLIENT" --tmp "$TMP")
        if [ "$variant" = caf ]; then cmd+=(--depth "$CAF_DEPTH"); fi
        if [ "$VERIFY" != 1 ]; then cmd+=(--no-verify); fi
      fi
      ;;
    *) echo "run.sh: unknown system $sys" >&2; return 1 ;;
  esac
  local base
  base=$(printf '%03d-cards%s-c%s-%s' "$seq_no" "$cards" "$clients" "$label")
  local elapsed=$(( $(date +%s) - started ))
  echo "run.sh: [$seq_no/$n_runs, ${elapsed}s] cards=$cards clients=$clients $label (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  local load_before t0 t1
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s.%N)
  { printf '$'; printf ' %q' "${cmd[@]}"; echo; } >"$OUT/logs/$base.log"
  set +e
  TMPDIR=$TMP "${cmd[@]}" >"$OUT/raw/$base.jsonl" 2>>"$OUT/logs/$base.log"
  rc=$?
  set -e
  t1=$(date +%s.%N)
  local result
  result=$(grep '^{' "$OUT/raw/$base.jsonl" | tail -n 1 || true)
  [ -n "$result" ] || result=null
  [ $rc = 0 ] || echo "run.sh: $label exited with $rc (log: $OUT/logs/$base.log)" >&2
  printf '{"seq":%d,"system":"%s","variant":"%s","sync":"%s","transport":"%s","cards":%d,"clients":%d,"rep":%d,"rc":%d,"wall_s":%s,"loadavg_before":%s,"raw":"raw/%s.jsonl","result":%s}\n' \
    "$seq_no" "$([ "$kind" = pg ] && echo postgres || echo giftcard)" "$variant" "$sync" "$transport" \
    "$cards" "$clients" "$rep" "$rc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')" \
    "$load_before" "$base" "$result" >>"$RUNS"
  if [ "$kind" = pg ]; then
    # Leave the next run a quiet server: flush what this run dirtied now, not during it.
    "$PGBIN/psql" -X -q "$CONN" -c CHECKPOINT >/dev/null 2>&1 || true
  fi
}

point=0
for cards in $CARDS; do
  for rep in $(seq 1 "$REPEAT"); do
    for clients in $CLIENTS; do
      n=${#SYSTEMS[@]}
      for j in $(seq 0 $((n - 1))); do
        run_one "${SYSTEMS[$(( (j + point) % n ))]}" "$cards" "$clients" "$rep"
      done
      point=$((point + 1))
    done
  done
done

if [ $pg_started = 1 ]; then "$PG_SH" stop "$PG_DIR" >&2 || true; pg_started=0; fi

# ---- giftcard's engine figures
extra() {  # extra NAME COMMAND...: stdout to raw/NAME.jsonl
  local name=$1 rc
  shift
  echo "run.sh: $name: $*" >&2
  { printf '$'; printf ' %q' "$@"; echo; } >"$OUT/logs/$name.log"
  set +e
  TMPDIR=$TMP "$@" >"$OUT/raw/$name.jsonl" 2>>"$OUT/logs/$name.log"
  rc=$?
  set -e
  echo "$rc" >"$OUT/raw/$name.rc"
  [ $rc = 0 ] || echo "run.sh: $name exited with $rc (log: $OUT/logs/$name.log)" >&2
}
for e in $EXTRAS; do
  case $e in
    replay)
      extra replay "$BUILD/giftcard-projection-bench" replay --events "$REPLAY_EVENTS" --runs "$EXTRA_RUNS" --tmp "$TMP" ;;
    restart)
      args=(restart --events "$RESTART_EVENTS" --runs "$EXTRA_RUNS" --tmp "$TMP")
      if [ -n "$RESTART_BASES" ]; then args+=(--bases "$RESTART_BASES"); fi
      extra restart "$BUILD/giftcard-projection-bench" "${args[@]}" ;;
    rss)
      extra rss "$BUILD/giftcard-bench" purchase --mode million --users "$RSS_USERS" --buyers 256 ;;
    *) echo "run.sh: unknown extra '$e' (replay restart rss)" >&2 ;;
  esac
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg); wall: $(( $(date +%s) - started )) s" >>"$OUT/machine.txt"

report "$OUT"
if [ "${BENCH_PUBLISH:-0}" = 1 ]; then publish "$OUT"; fi
echo
cat "$OUT/table.md"
echo
echo "run.sh: results in $OUT (table.md, chart.png, runs.jsonl, raw/, logs/)" >&2
