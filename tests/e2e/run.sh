#!/usr/bin/env bash
# Starts the local cluster on its own ports, runs the end-to-end tests against it, stops it.
# PORTCULLIS_BIN: the binaries to test (default build/debug/bin).
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
export PORTCULLIS_BIN=${PORTCULLIS_BIN:-$top/build/debug/bin}
export PORTCULLIS_PORT_BASE=${PORTCULLIS_E2E_PORT_BASE:-28000}
# the dev provider's fault controls (deploy/dev-idp/server.mjs), for test_authn_hostile
export PORTCULLIS_TEST_CONTROLS=1
export PORTCULLIS_RUN_DIR=${PORTCULLIS_RUN_DIR:-$top/build/e2e-run/$(basename "$(dirname "$PORTCULLIS_BIN")")}
# sanitizer builds: stop at the first report, and keep each report in the daemon's log
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=0:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

stop_cluster() {
    "$top/deploy/local/stop.sh" >/dev/null 2>&1 || true
}
trap stop_cluster EXIT

stop_cluster
if ! "$top/deploy/local/start.sh"; then
    echo "e2e: the local cluster did not start" >&2
    exit 1
fi

status=0
cd "$top/tests/e2e" || exit 1
python3 -m unittest -v ${PORTCULLIS_E2E_TESTS:-$(ls test_*.py | sed 's/\.py$//')} || status=1

# a sanitizer report or a crash in any daemon fails the run even when every test passed
if grep -l -E 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: UndefinedBehaviorSanitizer' \
        "$PORTCULLIS_RUN_DIR"/logs/*.log 2>/dev/null; then
    echo "e2e: sanitizer reports in the daemon logs above" >&2
    status=1
fi
exit $status
