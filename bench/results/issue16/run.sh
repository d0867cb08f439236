#!/bin/bash
# runner for issue #16 old-vs-new measurement; binaries: /tmp/old-bin (15b0a17), /tmp/new-bin (see /tmp/new-bin/COMMIT)
R=/work/main/bench/results/issue16
HB=/tmp/new-bin/giftcard-http-bench
run() { # name, cmd...
  local name=$1; shift
  {
    echo "=== $name"
    echo "cmd: $*"
    echo "start: $(date -u +%FT%TZ)  uptime: $(uptime)"
    ps -eo pid,pcpu,etime,comm --sort=-pcpu | head -6 | sed 's/^/  ps-start /'
  } >> $R/runs.log
  "$@" > $R/$name.jsonl 2> $R/$name.stderr
  local rc=$?
  {
    echo "end:   $(date -u +%FT%TZ)  uptime: $(uptime)"
    ps -eo pid,pcpu,etime,comm --sort=-pcpu | head -6 | sed 's/^/  ps-end /'
    echo "rc: $rc"
  } >> $R/runs.log
  return $rc
}
runr() { run "$@" || { echo "RETRY $1" >> $R/runs.log; run "$1-retry" "${@:2}"; }; }
soak1() { runr "soak50-$1-$2" $HB soak --minutes 6 --codes 3000000 --repeat-rate 50 --giftcard /tmp/$1-bin/giftcard; }
soak0() { runr "soak0-$1-$2" $HB soak --minutes 4 --codes 2000000 --repeat-rate 0 --giftcard /tmp/$1-bin/giftcard; }
hot()   { runr "hot-$1-$2" /tmp/$1-bin/giftcard-bench purchase --mode hot --buyers 256 --seconds 8; }
case "$1" in
  exp1) soak1 old 1; soak1 new 1; soak1 new 2; soak1 old 2 ;;
  exp3) hot old 1; hot new 1; hot old 2; hot new 2; hot old 3; hot new 3 ;;
  exp2) soak0 new 1; soak0 old 1 ;;
esac
echo "done $1 $(date -u +%FT%TZ)" >> $R/runs.log
