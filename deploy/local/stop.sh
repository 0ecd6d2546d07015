#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Stops the local cluster that deploy/local/start.sh started from the same PORTCULLIS_RUN_DIR:
# TERM to each process by its pid file, KILL after 5 s, pid files removed. Keeps certificates,
# secrets, Redis data and logs (delete the run dir to start afresh).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

stop_services
echo "stopped the cluster of $run_dir"
