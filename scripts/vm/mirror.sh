#!/bin/sh
# Prints the Debian mirror the host's apt sources use, for the VM scripts' package and kernel
# downloads. Only live entries count: `URIs:` fields of deb822 `.sources` stanzas that are
# enabled and of type deb, and uncommented `deb` lines of one-line `.list` files (a comment
# such as "# http://snapshot.debian.org/archive/debian/2025..." above a `URIs:` line is not a
# source). The security archive is skipped (it carries no kernels and no qemu). $MIRROR, when
# set, wins; with no usable entry the answer is http://deb.debian.org/debian, said on stderr.
#
# usage: scripts/vm/mirror.sh [APT_ETC]     (default /etc/apt: sources.list and
#                                            sources.list.d/*.list, *.sources)
set -eu
DEFAULT=http://deb.debian.org/debian
if [ -n "${MIRROR:-}" ]; then
    echo "$MIRROR"
    exit 0
fi
ETC=${1:-/etc/apt}
files=""
[ -f "$ETC/sources.list" ] && files="$ETC/sources.list"
for f in "$ETC"/sources.list.d/*.list "$ETC"/sources.list.d/*.sources; do
    [ -f "$f" ] && files="$files $f"
done
found=""
if [ -n "$files" ]; then
    # shellcheck disable=SC2086
    found=$(awk '
        # A candidate URI: http(s), not the security archive, path ending in /debian.
        function take(uri) {
            sub(/\/+$/, "", uri)
            if (uri !~ /^https?:\/\//) return
            if (uri ~ /security/) return
            if (uri !~ /\/debian$/) return
            if (!best) best = uri
        }
        # deb822 stanzas: fields until a blank line; "#" lines are comments.
        function stanza_end() {
            if (is822 && types ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /^[ \t]*no[ \t]*$/ \
                && suites !~ /^[ \t]*[^ \t]*-security([ \t]|$)/) {
                n = split(uris, u, /[ \t]+/)
                for (i = 1; i <= n; i++) if (u[i] != "") take(u[i])
            }
            types = ""; uris = ""; enabled = ""; suites = ""
        }
        FNR == 1 { stanza_end(); is822 = (FILENAME ~ /\.sources$/) }
        is822 && /^[ \t]*#/ { next }
        is822 && /^[ \t]*$/ { stanza_end(); next }
        is822 && tolower($1) == "types:"   { sub(/^[^:]*:/, ""); types = $0; last = "t"; next }
        is822 && tolower($1) == "uris:"    { sub(/^[^:]*:/, ""); uris = $0; last = "u"; next }
        is822 && tolower($1) == "suites:"  { sub(/^[^:]*:/, ""); suites = $0; last = "s"; next }
        is822 && tolower($1) == "enabled:" { sub(/^[^:]*:/, ""); enabled = tolower($0); last = ""; next }
        is822 && /^[ \t]/ { if (last == "u") uris = uris " " $0; next }   # continuation
        is822 { last = ""; next }
        # one-line format: deb [options] URI SUITE COMPONENTS...
        !is822 && $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) !~ /-security$/) take($i)
        }
        END { stanza_end(); if (best) print best }
    ' $files)
fi
if [ -n "$found" ]; then
    echo "$found"
else
    echo "mirror.sh: no Debian mirror in $ETC's apt sources; using $DEFAULT" >&2
    echo "$DEFAULT"
fi
