#!/bin/sh
# Run by the nginx image's entrypoint before nginx starts. Uses the certificate mounted at
# /etc/nginx/tls (tls.crt + tls.key, e.g. from Let's Encrypt or your CA); when there is none,
# generates a self-signed one for TLS_HOSTNAME (default localhost) that stays in the volume,
# so browsers are asked to trust it once. See docs/operations.md, "TLS".
set -eu
dir=/etc/nginx/tls
crt="$dir/tls.crt"
key="$dir/tls.key"
if [ -s "$crt" ] && [ -s "$key" ]; then
    echo "etp-tls: using the certificate in $crt"
    exit 0
fi
if ! [ -w "$dir" ]; then
    echo "etp-tls: $dir has no tls.crt/tls.key and is read-only; mount both files" >&2
    exit 1
fi
host="${TLS_HOSTNAME:-localhost}"
echo "etp-tls: no certificate mounted; generating a self-signed one for $host"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
    -subj "/CN=$host" \
    -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" \
    -keyout "$key" -out "$crt" 2>/dev/null
chmod 0600 "$key"
