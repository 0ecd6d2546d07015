#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Starts the whole Portcullis cluster on 127.0.0.1: Redis, the dev IdP, the sample app, the
# databroker, authenticate, two authorize instances and nginx.
#
#   PORTCULLIS_PORT_BASE=18000 PORTCULLIS_RUN_DIR=deploy/local/run \
#       PORTCULLIS_BIN=build/debug/bin deploy/local/start.sh
#
# Each process runs in the background with its pid in RUN/pids/NAME.pid and its output in
# RUN/logs/NAME.log. RUN/env.sh exports every port and URL for tests. A cluster already running
# from the same run dir is stopped first. Any other environment (IDP_ACCESS_TOKEN_TTL,
# COOKIE_EXPIRE, ASAN_OPTIONS, ...) reaches the processes unchanged. deploy/local/stop.sh stops.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=common.sh
. "$(dirname "$0")/common.sh"

start_timeout=${PORTCULLIS_START_TIMEOUT:-30}
idp_client_id=portcullis-local
nginx_host_authn=authenticate.portcullis.localhost
nginx_host_fa=auth.portcullis.localhost
url_authn=https://$nginx_host_authn:$nginx_port
url_fa=https://$nginx_host_fa:$nginx_port
url_verify=https://verify.portcullis.localhost:$nginx_port
url_admin=https://admin.portcullis.localhost:$nginx_port
url_public=https://public.portcullis.localhost:$nginx_port
url_app=https://app.localhost:$nginx_port
url_seed=https://seed.localhost:$nginx_port
url_idp=http://127.0.0.1:$idp_port
url_signed_out=$url_public/signed-out
certs=$run_dir/certs

started=()

fail() {
    local name=${2:-}
    echo "start.sh: $1" >&2
    if [ -n "$name" ] && [ -s "$log_dir/$name.log" ]; then
        echo "---- last lines of $log_dir/$name.log ----" >&2
        tail -n 30 "$log_dir/$name.log" >&2
        echo "----" >&2
    fi
    if [ "${#started[@]}" -gt 0 ]; then
        echo "start.sh: stopping what was started" >&2
        stop_services
    fi
    exit 1
}

check_prerequisites() {
    local cmd daemon
    for cmd in node nginx redis-server openssl curl setsid sed ps; do
        if ! command -v "$cmd" >/dev/null 2>&1; then
            fail "$cmd is not installed (scripts/install-deps.sh installs everything)"
        fi
    done
    for daemon in databroker authenticate authorize; do
        if [ ! -x "$bin_dir/portcullis-$daemon" ]; then
            fail "$bin_dir/portcullis-$daemon is missing: run make (or set PORTCULLIS_BIN)"
        fi
    done
    if [ ! -d "$repo_dir/deploy/dev-idp/node_modules/oidc-provider" ]; then
        fail "deploy/dev-idp/node_modules is missing: run scripts/install-deps.sh"
    fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_ports() {
    local entry
    for entry in "nginx:$nginx_port" "authenticate:$authn_port" "authorize-a:$authz_a_port" \
        "authorize-b:$authz_b_port" "databroker:$broker_port" "redis:$redis_port" \
        "dev-idp:$idp_port" "sample-app:$app_port"; do
        if port_in_use "${entry#*:}"; then
            fail "port ${entry#*:} (for ${entry%%:*}) is taken by another process; choose \
another PORTCULLIS_PORT_BASE or stop it"
        fi
    done
}

# a secret file of 32 random bytes in base64, made once per run dir
make_secret() {
    if [ ! -s "$1" ]; then
        (umask 077 && printf '%s' "$(openssl rand -base64 32)" >"$1")
    fi
}

sed_escape() {
    printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'
}

render() {
    local template=$1 out=$2 user_line
    if [ "$(id -u)" -eq 0 ]; then
        # as root the workers would become nobody, who may not reach a run dir under /root
        user_line="user root root;"
    else
        user_line="# nginx runs as the user who started it"
    fi
    sed -e "s|@RUN_DIR@|$(sed_escape "$run_dir")|g" \
        -e "s|@NGINX_PORT@|$nginx_port|g" \
        -e "s|@AUTHN_PORT@|$authn_port|g" \
        -e "s|@AUTHZ_A_PORT@|$authz_a_port|g" \
        -e "s|@AUTHZ_B_PORT@|$authz_b_port|g" \
        -e "s|@BROKER_PORT@|$broker_port|g" \
        -e "s|@REDIS_PORT@|$redis_port|g" \
        -e "s|@IDP_PORT@|$idp_port|g" \
        -e "s|@APP_PORT@|$app_port|g" \
        -e "s|@IDP_CLIENT_ID@|$idp_client_id|g" \
        -e "s|@IDP_CLIENT_SECRET@|$(sed_escape "$idp_client_secret")|g" \
        -e "s|@USER_LINE@|$user_line|g" \
        "$template" >"$out.tmp"
    mv "$out.tmp" "$out"
}

write_env() {
    local out=$run_dir/env.sh
    cat >"$out.tmp" <<EOF
# Written by deploy/local/start.sh: the ports and URLs of the running local cluster.
export PORTCULLIS_RUN_DIR='$run_dir'
export PORTCULLIS_PORT_BASE=$port_base
export PORTCULLIS_BIN='$bin_dir'
export PORTCULLIS_CONFIG='$run_dir/config.yaml'
export PORTCULLIS_CERTS_DIR='$certs'
export PORTCULLIS_CA_FILE='$certs/ca.pem'
export PORTCULLIS_COOKIE_SECRET_FILE='$run_dir/secrets/cookie_secret'
export PORTCULLIS_SHARED_SECRET_FILE='$run_dir/secrets/shared_secret'
export PORTCULLIS_NGINX_PORT=$nginx_port
export PORTCULLIS_AUTHN_PORT=$authn_port
export PORTCULLIS_AUTHZ_A_PORT=$authz_a_port
export PORTCULLIS_AUTHZ_B_PORT=$authz_b_port
export PORTCULLIS_BROKER_PORT=$broker_port
export PORTCULLIS_REDIS_PORT=$redis_port
export PORTCULLIS_IDP_PORT=$idp_port
export PORTCULLIS_APP_PORT=$app_port
export PORTCULLIS_AUTHN_URL='$url_authn'
export PORTCULLIS_FA_URL='$url_fa'
export PORTCULLIS_VERIFY_URL='$url_verify'
export PORTCULLIS_ADMIN_URL='$url_admin'
export PORTCULLIS_PUBLIC_URL='$url_public'
export PORTCULLIS_APP_URL='$url_app'
export PORTCULLIS_SEED_URL='$url_seed'
export PORTCULLIS_SIGNED_OUT_URL='$url_signed_out'
export PORTCULLIS_IDP_URL='$url_idp'
export PORTCULLIS_IDP_CLIENT_ID='$idp_client_id'
export PORTCULLIS_IDP_CLIENT_SECRET='$idp_client_secret'
export PORTCULLIS_IDP_USERS_FILE='$run_dir/idp-users.json'
export PORTCULLIS_AUTHZ_A_URL='http://127.0.0.1:$authz_a_port'
export PORTCULLIS_AUTHZ_B_URL='http://127.0.0.1:$authz_b_port'
export PORTCULLIS_AUTHN_INTERNAL_URL='http://127.0.0.1:$authn_port'
export PORTCULLIS_BROKER_URL='https://127.0.0.1:$broker_port'
EOF
    mv "$out.tmp" "$out"
}

prepare_run_dir() {
    mkdir -p "$pid_dir" "$log_dir" "$run_dir/redis" "$run_dir/nginx/tmp"
    mkdir -p "$run_dir/secrets"
    chmod 700 "$run_dir/secrets"

    "$repo_dir/deploy/certs/make-certs.sh" "$certs" >/dev/null ||
        fail "deploy/certs/make-certs.sh $certs failed"

    make_secret "$run_dir/secrets/cookie_secret"
    make_secret "$run_dir/secrets/shared_secret"
    if [ ! -s "$run_dir/secrets/idp_client_secret" ]; then
        (umask 077 && openssl rand -hex 24 >"$run_dir/secrets/idp_client_secret")
    fi
    idp_client_secret=$(cat "$run_dir/secrets/idp_client_secret")

    # a fresh copy each start, so that a test may edit the users and a restart undoes it
    cp "$repo_dir/deploy/dev-idp/users.json" "$run_dir/idp-users.json"

    render "$local_dir/config.yaml.template" "$run_dir/config.yaml"
    cp "$repo_dir/deploy/nginx/proxy.conf" "$run_dir/nginx/proxy.conf"
    render "$local_dir/nginx.conf.template" "$run_dir/nginx/nginx.conf"
    write_env

    if ! nginx -t -q -p "$run_dir/nginx" -c "$run_dir/nginx/nginx.conf" -e stderr \
        >"$log_dir/nginx-check.log" 2>&1; then
        cat "$log_dir/nginx-check.log" >&2
        fail "the generated $run_dir/nginx/nginx.conf does not pass nginx -t"
    fi
    if ! CERTIFICATE_FILE=$certs/authorize.pem CERTIFICATE_KEY_FILE=$certs/authorize-key.pem \
        "$bin_dir/portcullis-authorize" -c "$run_dir/config.yaml" --check \
        >"$log_dir/config-check.log" 2>&1; then
        cat "$log_dir/config-check.log" >&2
        fail "portcullis-authorize --check refuses $run_dir/config.yaml"
    fi
}

# start_service NAME COMMAND...: runs COMMAND in its own session, output to NAME.log
start_service() {
    local name=$1
    shift
    echo "=== $(date -u +%FT%TZ) start.sh starts $name" >>"$log_dir/$name.log"
    (cd "$run_dir" && exec setsid "$@") >>"$log_dir/$name.log" 2>&1 </dev/null &
    echo "$!" >"$pid_dir/$name.pid"
    started+=("$name")
}

# wait_for NAME COMMAND...: until COMMAND succeeds, the process dies or the timeout passes
wait_for() {
    local name=$1 deadline pid
    shift
    deadline=$((SECONDS + start_timeout))
    pid=$(cat "$pid_dir/$name.pid")
    until "$@" >/dev/null 2>&1; do
        if ! process_alive "$pid"; then
            fail "$name exited during start-up" "$name"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "$name did not answer within ${start_timeout}s" "$name"
        fi
        sleep 0.2
    done
}

redis_ping() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping)" = "PONG" ]
    else
        exec 3<>"/dev/tcp/127.0.0.1/$redis_port" && printf 'PING\r\n' >&3 &&
            read -r -t 2 reply <&3 && [ "${reply%$'\r'}" = "+PONG" ]
    fi
}

http_ok() {
    curl -fsS --max-time 2 -o /dev/null "$@"
}

broker_ok() {
    http_ok --cacert "$certs/ca.pem" --cert "$certs/authorize.pem" \
        --key "$certs/authorize-key.pem" "https://127.0.0.1:$broker_port$1"
}

daemon_env() {
    local name=$1 port=$2
    echo "ADDRESS=127.0.0.1:$port" "CERTIFICATE_FILE=$certs/$name.pem" \
        "CERTIFICATE_KEY_FILE=$certs/$name-key.pem"
}

start_all() {
    start_service redis redis-server --bind 127.0.0.1 --port "$redis_port" \
        --dir "$run_dir/redis" --appendonly yes --save '' --daemonize no --logfile '' \
        --protected-mode yes
    wait_for redis redis_ping

    local logout_uris="$url_signed_out,$url_authn/.pomerium/signed_out,$url_authn/"
    start_service dev-idp env IDP_TEST_CONTROLS="${PORTCULLIS_TEST_CONTROLS:-0}" IDP_PORT="$idp_port" IDP_ISSUER="$url_idp" \
        IDP_CLIENT_ID="$idp_client_id" IDP_CLIENT_SECRET="$idp_client_secret" \
        IDP_REDIRECT_URIS="$url_authn/oauth2/callback" \
        IDP_POST_LOGOUT_REDIRECT_URIS="$logout_uris" \
        IDP_USERS_FILE="$run_dir/idp-users.json" IDP_JWKS_FILE="$run_dir/secrets/idp-jwks.json" \
        node "$repo_dir/deploy/dev-idp/server.mjs"
    start_service sample-app env APP_PORT="$app_port" node "$repo_dir/deploy/sample-app/app.mjs"
    wait_for dev-idp http_ok "$url_idp/.well-known/openid-configuration"
    wait_for sample-app http_ok "http://127.0.0.1:$app_port/healthz"

    # shellcheck disable=SC2046 # daemon_env prints words on purpose
    start_service databroker env $(daemon_env databroker "$broker_port") \
        "$bin_dir/portcullis-databroker" -c "$run_dir/config.yaml"
    wait_for databroker broker_ok /healthz

    # shellcheck disable=SC2046
    start_service authenticate env $(daemon_env authenticate "$authn_port") \
        "$bin_dir/portcullis-authenticate" -c "$run_dir/config.yaml"
    # shellcheck disable=SC2046
    start_service authorize-a env $(daemon_env authorize "$authz_a_port") \
        "$bin_dir/portcullis-authorize" -c "$run_dir/config.yaml"
    # shellcheck disable=SC2046
    start_service authorize-b env $(daemon_env authorize "$authz_b_port") \
        "$bin_dir/portcullis-authorize" -c "$run_dir/config.yaml"
    wait_for authenticate http_ok "http://127.0.0.1:$authn_port/healthz"
    wait_for authorize-a http_ok "http://127.0.0.1:$authz_a_port/healthz"
    wait_for authorize-b http_ok "http://127.0.0.1:$authz_b_port/healthz"

    start_service nginx nginx -p "$run_dir/nginx" -c "$run_dir/nginx/nginx.conf" -e stderr
    wait_for nginx http_ok --cacert "$certs/ca.pem" "$url_authn/healthz"
}

# readiness (the daemons reach their dependencies) is reported, not required
report_readiness() {
    local deadline=$((SECONDS + start_timeout)) entry pending
    local -a checks=("databroker:broker_ok /readyz"
        "authenticate:http_ok http://127.0.0.1:$authn_port/readyz"
        "authorize-a:http_ok http://127.0.0.1:$authz_a_port/readyz"
        "authorize-b:http_ok http://127.0.0.1:$authz_b_port/readyz")
    while :; do
        pending=""
        for entry in "${checks[@]}"; do
            # shellcheck disable=SC2086 # the check is a command line
            if ! ${entry#*:} >/dev/null 2>&1; then
                pending+=" ${entry%%:*}"
            fi
        done
        if [ -z "$pending" ] || [ "$SECONDS" -ge "$deadline" ]; then
            break
        fi
        sleep 0.3
    done
    if [ -n "$pending" ]; then
        echo "warning: not ready after ${start_timeout}s:$pending (see $log_dir/)" >&2
    fi
}

print_summary() {
    cat <<EOF

Portcullis is running (run dir $run_dir).

  Sign in here:  $url_verify/

  Other hosts:   $url_admin/   (alice only)
                 $url_app/   (host-only cookie)
                 $url_seed/   (nginx exactly as the seed guide)
                 $url_public/   (no sign-in)
                 $url_authn/   (authenticate)   $url_fa/   (forward auth)
                 $url_idp/   (dev OpenID provider)

  Test users:    alice@example.com / alice-password   (admins, engineering)
                 bob@example.com / bob-password       (engineering)
                 mallory@evil.example / mallory-password   (no groups; refused)

  TLS:           trust $certs/ca.pem in the browser, or use
                 curl --cacert $certs/ca.pem $url_public/
  Logs:          $log_dir/   Ports and URLs for scripts: . $run_dir/env.sh
  Stop:          $local_dir/stop.sh   (same PORTCULLIS_RUN_DIR)
EOF
}

check_prerequisites
if [ -n "$(for s in "${services[@]}"; do service_pid "$s"; done)" ]; then
    echo "start.sh: a cluster is already running from $run_dir: stopping it first"
    stop_services
fi
check_ports
prepare_run_dir
start_all
report_readiness
print_summary
