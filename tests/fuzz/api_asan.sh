#!/bin/sh
# usage: tests/fuzz/api_asan.sh CRMD_BINARY [TEST FILES...] [PYTEST ARGS...]
#
# Runs the black-box API suite (tests/api, or the test files given) against a crmd built with
# -fsanitize=address,undefined (make asan) and fails on any sanitizer
# report. The suite starts the binary itself (CRMD_BIN), and a server's
# stderr is only a log file, so every sanitized process here (crmd serve and
# the crmd commands the suite runs, but the apps' set-up when CRMD_SETUP_BIN
# names another build: tests/api/apiutil.py) writes its reports to files in a
# temporary directory (log_path); any file there afterwards fails the run
# and is printed. LeakSanitizer runs when a process exits, so a leak shows
# up both as a report file and as a non-zero exit of `crmd serve` after
# SIGTERM, which the suite's fixture asserts. Suppressions for memory h2o
# still holds at exit: tests/fuzz/lsan.supp.
set -u
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.." || exit 1
# The files named first (relative to the repository) instead of all of tests/api.
tests=
while [ $# -gt 0 ] && [ -f "$1" ]; do
    tests="$tests $1"
    shift
done
[ -n "$tests" ] || tests=tests/api
python=${PYTHON:-/usr/bin/python3}
logs=$(mktemp -d "${TMPDIR:-/tmp}/crmd-asan.XXXXXX") || exit 1
trap 'rm -rf "$logs"' EXIT
trap 'exit 130' INT TERM

# A sanitized crmd runs several times slower than a release build: a read
# (an export's page of 257 long rows: about 50 ms idle under ASan, 20 ms in
# a release build) is given 5 s instead of --read-time's default 1 s, so a
# loaded machine does not cut it short. The tests of --read-time itself set
# theirs with the flag, which the environment does not override.
# $tests is a list of paths without blanks, split on purpose.
# shellcheck disable=SC2086
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0:malloc_context_size=10:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$logs/asan" \
LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan" \
CRMD_READ_TIME=${CRMD_READ_TIME:-5s} CRMD_BIN=$bin "$python" -m pytest -q --durations=10 -p no:cacheprovider $tests "$@"
rc=$?

for f in "$logs"/*; do
    [ -e "$f" ] || continue
    echo "== sanitizer report: $(basename "$f")" >&2
    cat "$f" >&2
    rc=1
done
if [ "$rc" -eq 0 ]; then
    echo "api-asan: no sanitizer reports"
fi
exit $rc
