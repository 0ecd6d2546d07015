#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Makes a private CA and the certificates of the local cluster; keeps any file that exists.
#
#   make-certs.sh OUTDIR [extra nginx hostnames...]
#
# OUTDIR gets ca.pem / ca-key.pem, and NAME.pem / NAME-key.pem for databroker, authenticate and
# authorize (server and client use, for the internal mutual TLS) and nginx (server use, the
# public hosts plus any extra names given). Keys are EC P-256, mode 0600. Delete a pair to have
# it made again (the nginx pair is also made again when it lacks a host); delete the CA to start
# over (then delete every pair too).
set -euo pipefail

if [ "$#" -lt 1 ]; then
    echo "usage: $0 OUTDIR [extra nginx hostnames...]" >&2
    exit 2
fi
out=$1
shift

days_ca=3650
days_leaf=825
nginx_hosts=(
    authenticate.portcullis.localhost auth.portcullis.localhost verify.portcullis.localhost
    admin.portcullis.localhost public.portcullis.localhost app.localhost seed.localhost
)
nginx_hosts+=("$@")

mkdir -p "$out"
umask 077
tmp=$(mktemp -d "$out/.make-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

new_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
    chmod 600 "$1"
}

make_ca() {
    if [ -s "$out/ca.pem" ] && [ -s "$out/ca-key.pem" ]; then
        return
    fi
    new_key "$out/ca-key.pem"
    openssl req -x509 -new -key "$out/ca-key.pem" -sha256 -days "$days_ca" \
        -subj "/O=Portcullis local/CN=Portcullis local CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" \
        -out "$out/ca.pem"
    chmod 644 "$out/ca.pem"
    echo "made $out/ca.pem"
}

# make_leaf NAME EXTENDED_KEY_USAGE SAN
make_leaf() {
    local name=$1 eku=$2 san=$3
    if [ -s "$out/$name.pem" ] && [ -s "$out/$name-key.pem" ]; then
        return
    fi
    new_key "$tmp/$name-key.pem"
    openssl req -new -key "$tmp/$name-key.pem" -subj "/O=Portcullis local/CN=$name" \
        -out "$tmp/$name.csr"
    cat >"$tmp/$name.ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = $eku
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl x509 -req -in "$tmp/$name.csr" -CA "$out/ca.pem" -CAkey "$out/ca-key.pem" \
        -CAcreateserial -CAserial "$tmp/ca.srl" -days "$days_leaf" -sha256 \
        -extfile "$tmp/$name.ext" -out "$tmp/$name.pem" 2>/dev/null
    chmod 644 "$tmp/$name.pem"
    mv "$tmp/$name-key.pem" "$out/$name-key.pem"
    mv "$tmp/$name.pem" "$out/$name.pem"
    echo "made $out/$name.pem"
}

make_ca

for daemon in databroker authenticate authorize; do
    make_leaf "$daemon" "serverAuth,clientAuth" "DNS:$daemon,DNS:localhost,IP:127.0.0.1"
done

nginx_san=""
for host in "${nginx_hosts[@]}"; do
    nginx_san+="${nginx_san:+,}DNS:$host"
done
# an nginx certificate made before a host was added is made again
if [ -s "$out/nginx.pem" ]; then
    have=$(openssl x509 -in "$out/nginx.pem" -noout -ext subjectAltName 2>/dev/null || true)
    for host in "${nginx_hosts[@]}"; do
        if ! grep -q "DNS:$host\(,\|\$\)" <<<"$have"; then
            echo "$out/nginx.pem lacks $host: making it again"
            rm -f "$out/nginx.pem" "$out/nginx-key.pem"
            break
        fi
    done
fi
make_leaf nginx "serverAuth" "$nginx_san,DNS:localhost,IP:127.0.0.1"

# a certificate that no longer chains to the CA (the CA was made again) is a mistake to report
for name in databroker authenticate authorize nginx; do
    if ! openssl verify -CAfile "$out/ca.pem" "$out/$name.pem" >/dev/null 2>&1; then
        echo "$out/$name.pem does not chain to $out/ca.pem: delete it and run again" >&2
        exit 1
    fi
done
