#!/usr/bin/env bash
# Install the system packages the whole test suite drives for real (see
# /work/shared/docs/test-infra.md): BIND and its tools, unbound, ldns-dane, Postfix (for
# posttls-finger and a live STARTTLS server), Dovecot (a live IMAPS server), pebble, podman + runc,
# iproute2, openssl.
# Idempotent and non-interactive: when everything is present it changes nothing and needs no
# network. None of the services may start at install time: tests start their own instances.
set -euo pipefail

PACKAGES=(
    bind9 bind9-utils bind9-dnsutils
    unbound
    ldnsutils
    postfix
    dovecot-imapd
    pebble
    podman runc
    iproute2
    openssl
    util-linux
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != ii* ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system-packages: all ${#PACKAGES[@]} packages already installed"
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    SUDO=(sudo)
fi

echo "system-packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# Postfix asks for a mailer type unless preseeded; "No configuration" leaves main.cf to us.
echo "postfix postfix/main_mailer_type select No configuration" | "${SUDO[@]}" debconf-set-selections

# Keep maintainer scripts from starting named/unbound/postfix/dovecot on the machine's ports:
# Debian's invoke-rc.d obeys policy-rc.d exit code 101 ("action forbidden").
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    created_policy=1
fi
cleanup() {
    if [[ $created_policy -eq 1 ]]; then
        "${SUDO[@]}" rm -f "$policy"
    fi
}
trap cleanup EXIT

"${SUDO[@]}" apt-get update -q
# With recommends, as in the verified recipe (test-infra.md): podman needs some of them.
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"
echo "system-packages: done"
