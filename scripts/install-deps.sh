#!/usr/bin/env bash
# Installs every build and test dependency of Portcullis that is missing. Safe to run twice.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

apt_packages=(
    build-essential pkg-config ca-certificates curl openssl
    libh2o-evloop-dev libuv1-dev libssl-dev libjansson-dev libyaml-dev libhiredis-dev
    libcurl4-openssl-dev libcjose-dev libcmocka-dev
    redis-server nginx-light wrk nodejs npm python3
)

missing=()
for pkg in "${apt_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

# node and npm may come from outside Debian; do not ask apt for them if they already run
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    filtered=()
    for pkg in "${missing[@]}"; do
        case "$pkg" in nodejs | npm) ;; *) filtered+=("$pkg") ;; esac
    done
    missing=("${filtered[@]}")
fi

if [ "${#missing[@]}" -gt 0 ]; then
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo_cmd="sudo"
    fi
    echo "installing: ${missing[*]}"
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # a fresh nginx or redis package would start a system service on :80 or :6379; we run our own
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -d "$here/deploy/dev-idp/node_modules/oidc-provider" ]; then
    (cd "$here/deploy/dev-idp" && npm ci --no-audit --no-fund --loglevel=error)
fi
