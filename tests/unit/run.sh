#!/usr/bin/env bash
# Runs each cmocka unit-test binary given on the command line; fails when any of them fails.
set -u
failed=0
for bin in "$@"; do
    if ! "$bin"; then
        echo "FAILED: $bin" >&2
        failed=1
    fi
done
exit $failed
