#!/usr/bin/env bash
# Logs in to the local demo with curl alone and prints what the sample app received.
# Usage: scripts/curl-login.sh [URL] [LOGIN] [PASSWORD]; exits 0 when the app answered 2xx
#   defaults: https://verify.portcullis.localhost:18443/ alice@example.com alice-password
# The cookie jar is left in $PORTCULLIS_RUN_DIR/curl-jar.txt for further requests.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
run_dir=${PORTCULLIS_RUN_DIR:-$here/deploy/local/run}
url=${1:-https://verify.portcullis.localhost:18443/}
login=${2:-alice@example.com}
password=${3:-alice-password}
jar=$run_dir/curl-jar.txt
page=$(mktemp)
trap 'rm -f "$page"' EXIT

# a browser says it wants HTML; without that Portcullis answers API-style 401s, not redirects
web() {
    curl -sS --cacert "$run_dir/certs/ca.pem" -b "$jar" -c "$jar" -H 'Accept: text/html' \
        -L --max-redirs 20 -o "$page" -w '%{http_code} %{url_effective}\n' "$@"
}

rm -f "$jar"
read -r status where < <(web "$url")
echo "1. $url -> $status $where"

action=$(grep -o '<form[^>]*action="[^"]*"' "$page" | head -n 1 | sed 's/.*action="\([^"]*\)".*/\1/')
if [ -z "$action" ]; then
    echo "no login form at $where (already signed in?)" >&2
    cat "$page"
    exit 1
fi
origin=$(echo "$where" | sed -E 's|^(https?://[^/]+).*|\1|')
case "$action" in /*) action=$origin$action ;; esac

read -r status where < <(web --data-urlencode "login=$login" --data-urlencode "password=$password" \
    "$action")
echo "2. login sent for $login -> $status $where"
# tokens are shortened: the assertion is a credential for the app for five minutes
{ sed -e 's/<[^>]*>/ /g' "$page" | grep -i -E 'x-pomerium|signed in|forbidden|denied' || true; } |
    sed -E 's/(eyJ[A-Za-z0-9_-]{16})[A-Za-z0-9._-]*/\1.../g' | head -n 12

case "$status" in
2*) exit 0 ;;
403) echo "signed in, but the route's policy denies $login (403)" >&2 ;;
*)
    if grep -q '<form' "$page"; then
        echo "the provider did not accept the login (wrong password?): it shows its form again" >&2
    else
        echo "the login ended with HTTP $status at $where" >&2
    fi
    ;;
esac
exit 1
