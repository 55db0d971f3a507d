#!/usr/bin/env bash
# Our own re-creation of the deploy-hook script this project replaces (see
# /work/shared/docs/baseline-script.md). It is the speed baseline for benchmarks/zone_edit.py,
# not a model: it has every flaw that document lists.
#
# usage: update-tlsa.sh ZONE_FILE RELATIVE_OWNER CERT_PEM [ZONE_NAME]
# With RELOAD=1 it also runs `rndc reload ZONE_NAME` as the original does.
set -u
ZONE_FILE=$1
OWNER=$2
CERT=$3
ZONE_NAME=${4:-}

HASH=$(openssl x509 -in "$CERT" -noout -pubkey | openssl pkey -pubin -outform DER \
    | openssl sha256 -binary | hexdump -ve '32/1 "%02x"')

OWNER_RE=${OWNER//./\\.}
sed -i "s/^${OWNER_RE}[[:space:]]\+IN[[:space:]]\+TLSA.*/${OWNER} IN TLSA 3 1 1 ${HASH}/" "$ZONE_FILE"

SERIAL=$(grep -A1 SOA "$ZONE_FILE" | awk 'NR==2 {print $1}')
NEXT=$((SERIAL + 1))
sed -i "s/${SERIAL} ; Serial/${NEXT} ; Serial/" "$ZONE_FILE"

if [ "${RELOAD:-0}" = 1 ] && [ -n "$ZONE_NAME" ]; then
    rndc reload "$ZONE_NAME"
fi
echo "$(date '+%F %T') TLSA for ${OWNER} set to 3 1 1 ${HASH}, serial ${SERIAL} -> ${NEXT}"
