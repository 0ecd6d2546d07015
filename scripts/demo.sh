#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The newcomer's one command: installs what is missing, builds, and starts the local cluster.
#
#   scripts/demo.sh            then open the printed URL; deploy/local/stop.sh stops it
#
# PORTCULLIS_PORT_BASE and PORTCULLIS_RUN_DIR are passed on to deploy/local/start.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

scripts/install-deps.sh
make -j"$(nproc)"
PORTCULLIS_BIN=${PORTCULLIS_BIN:-$here/build/debug/bin} exec deploy/local/start.sh
