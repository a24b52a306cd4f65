#!/bin/sh
# The mirror derivation (scripts/vm/mirror.sh) over fixture apt configurations: deb822 with
# comment lines, one-line format with options, mixed, disabled stanzas, security only, none.
# Each fixture directory is an /etc/apt with an `expected` file. Exits non-zero on a mismatch.
#
# usage: scripts/vm/mirror-test.sh [DERIVE]   DERIVE: a command taking the apt dir (default
#                                             scripts/vm/mirror.sh), to try other derivations
set -eu
cd "$(dirname "$0")"
DERIVE=${1:-./mirror.sh}
fail=0 n=0
for d in mirror-fixtures/*/; do
    n=$((n + 1))
    want=$(cat "$d/expected")
    got=$(env -u MIRROR $DERIVE "$d" 2>/dev/null || true)
    if [ "$got" = "$want" ]; then
        echo "ok   ${d%/}: $got"
    else
        echo "FAIL ${d%/}: got '$got', want '$want'"
        fail=$((fail + 1))
    fi
done
got=$(MIRROR=http://override.example.org/debian ./mirror.sh mirror-fixtures/mixed)
if [ "$got" = http://override.example.org/debian ]; then echo "ok   MIRROR= overrides"; else echo "FAIL MIRROR= ignored: $got"; fail=$((fail + 1)); fi
echo "mirror derivation: $((n + 1 - fail)) of $((n + 1)) fixtures"
[ "$fail" = 0 ]
