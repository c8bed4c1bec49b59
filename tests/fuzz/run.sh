#!/bin/sh
# usage: tests/fuzz/run.sh BINARY SECONDS
#
# Runs one libFuzzer target for SECONDS from its seed corpus
# (tests/fuzz/corpus/NAME, read only) with its dictionary, and fails on any
# crash, sanitizer report, leak, timeout or broken invariant. Nothing is
# written into the repository: inputs the run finds and its temporary
# database live in a temporary directory that is removed afterwards; a
# failing input is kept in build/fuzz/artifacts/NAME/ (override with
# FUZZ_ARTIFACTS) and printed in base64. Prints one summary line:
# runs, exec/s, coverage (edges) and features, corpus size.
set -u

bin=$1
secs=$2
name=$(basename "$bin")
here=$(cd "$(dirname "$0")" && pwd)
seeds=$here/corpus/$name
keep=${FUZZ_ARTIFACTS:-build/fuzz/artifacts}/$name

case $name in
fuzz_request) opts="-max_len=32768 -timeout=20" ;;
fuzz_body) opts="-max_len=16384 -timeout=10" ;;
fuzz_jwt) opts="-max_len=9000 -timeout=10" ;;
*) opts="-max_len=4096 -timeout=10" ;;
esac
[ -f "$here/dict/$name.dict" ] && opts="$opts -dict=$here/dict/$name.dict"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/crmd-fuzz-$name.XXXXXX") || exit 1
# The request target's database: on tmpfs when there is one, where SQLite's
# syncs cost nothing.
db=$(mktemp -d /dev/shm/crmd-fuzz-db.XXXXXX 2>/dev/null) || db=$tmp/db
trap 'rm -rf "$tmp" "$db"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$tmp/new" "$tmp/art" "$db"

# UBSan is compiled in as non-recoverable (-fno-sanitize-recover=all): any
# report aborts and becomes a crash artifact.
ASAN_OPTIONS=${FUZZ_ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1} \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
FUZZ_DB_DIR=$db \
    "$bin" -max_total_time="$secs" -rss_limit_mb=3072 -print_final_stats=1 \
    -artifact_prefix="$tmp/art/" $opts "$tmp/new" "$seeds" >"$tmp/log" 2>&1
rc=$?

done_line=$(grep -a 'DONE  *cov:' "$tmp/log" | tail -n 1)
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/log" | tail -n 1)
eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/log" | tail -n 1)
cov=$(printf '%s\n' "$done_line" | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1 ft \2 corpus \3/p')
arts=$(ls "$tmp/art" 2>/dev/null)

if [ "$rc" -ne 0 ] || [ -n "$arts" ] || [ -z "$done_line" ]; then
    echo "FAIL $name (exit $rc) after ${runs:-?} runs; the end of its log:" >&2
    # The request target's own access log lines are noise here.
    grep -av '^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T.*ms app=' "$tmp/log" | tail -n 120 >&2
    if [ -n "$arts" ]; then
        mkdir -p "$keep"
        for a in $arts; do
            cp "$tmp/art/$a" "$keep/$a"
            echo "input kept in $keep/$a (base64: $(base64 -w0 <"$tmp/art/$a" | head -c 4000))" >&2
        done
        echo "reproduce: $bin $keep/<file>" >&2
    fi
    exit 1
fi
printf '%-13s %4ss  %9s runs  %6s exec/s  %s\n' "$name" "$secs" "$runs" "$eps" "$cov"
