#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes what docker-compose.yaml mounts: certs/, secrets/ and .env. Keeps what exists.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

../certs/make-certs.sh certs

mkdir -p secrets
chmod 700 secrets
for name in cookie_secret shared_secret; do
    if [ ! -s "secrets/$name" ]; then
        (umask 077 && printf '%s' "$(openssl rand -base64 32)" >"secrets/$name")
    fi
done

if [ ! -s .env ]; then
    (umask 077 && cat >.env <<ENV
IDP_CLIENT_SECRET=$(openssl rand -hex 24)
PORTCULLIS_UID=$(id -u)
PORTCULLIS_GID=$(id -g)
ENV
    )
fi
echo "ready: docker compose up --build, then https://verify.portcullis.localhost:8443/"
