#!/usr/bin/env bash
# The import rules of docs/architecture.md ("What may import what"), checked: every
# `crate::MODULE…` path in the library's non-test code, `use` lists expanded, against the
# table below. Exits 1 and names each path that breaks a rule; 0 when all hold.
#
# Read as written: a line `copy: scsi device sys` means code under src/copy/ may name
# crate::scsi, crate::device and crate::sys besides itself. Paths are textual (grep-level):
# test code (files named *tests.rs, and a trailing `#[cfg(test)] mod tests`), the test
# doubles (frontend::testing, device::faults) and comments are skipped; src/bin/ holds
# the two thin binaries, which may use anything.
set -euo pipefail
cd "$(dirname "$0")/.."

# Top-level module -> the other top-level modules it may import. The codec, `scsi`, is the
# crate crates/scsi (re-exported as crate::scsi): the compiler keeps it from importing any.
RULES='
sys:
size:
metrics:
buf: sys
command: scsi
state: size
iscsi: scsi
device: scsi command buf sys state size metrics
objstore: scsi command device sys state size metrics
copy: scsi command buf device sys state size metrics
frontend: scsi command buf iscsi device copy sys state size metrics
ndmp: scsi command buf device copy frontend sys state size metrics
admin: scsi command device copy state size metrics
daemon: scsi command buf iscsi device copy frontend ndmp admin objstore sys state size metrics
cli: scsi command buf iscsi device copy frontend ndmp admin objstore sys state size metrics
'

# Front ends see the copy manager through its interface: the items at crate::copy's root
# (CopyService, Progress, Tap), copy::manager, copy::registry and copy::lists (the lists
# backups and restores send). Not the
# engine, its buffers or the segment runner.
FRONT_ENDS='frontend ndmp admin'
COPY_INTERFACE='manager registry lists'

# Known exceptions, each with why it stands: FROM PATH-PREFIX  reason. A path that starts
# with crate::PATH-PREFIX is allowed from FROM. Remove a line when its reason is gone.
EXCEPTIONS='
'

export RULES FRONT_ENDS COPY_INTERFACE EXCEPTIONS
find src -name '*.rs' ! -path 'src/bin/*' ! -name '*tests.rs' \
    ! -path 'src/frontend/testing.rs' ! -path 'src/device/faults.rs' -print0 | sort -z |
    perl -e '
use strict;
my %allow;
for (split /\n/, $ENV{RULES}) {
    next unless /^(\w+):\s*(.*)$/;
    my ($m, $list) = ($1, $2);
    $allow{$m} = { map { $_ => 1 } split " ", $list };
}
my %front = map { $_ => 1 } split " ", $ENV{FRONT_ENDS};
my %iface = map { $_ => 1 } split " ", $ENV{COPY_INTERFACE};
my @exc;
for (split /\n/, $ENV{EXCEPTIONS}) {
    push @exc, [$1, $2] if /^(\w+)\s+(\S+)\s/;
}
my ($bad, $seen) = (0, 0);
my %used;
my @files = split /\0/, do { local $/; <STDIN> };
for my $file (@files) {
    my ($from) = $file =~ m{^src/(\w+)} or next;
    $from =~ s/\.rs$//;
    next if $from eq "lib";
    open my $fh, "<", $file or die "$file: $!";
    my ($text, $prev) = ("", "");
    while (my $line = <$fh>) {
        last if $line =~ /^mod tests\s*\{/ && $prev =~ /^#\[cfg\(test\)\]/;
        $prev = $line;
        $line =~ s{^\s*//.*}{};
        $text .= $line;
    }
    close $fh;
    die "$from: module $from has no rule in scripts/check-imports.sh\n" unless $allow{$from};
    # Expand `crate::a::{b, c::{d, e}}` into crate::a::b, crate::a::c::d, crate::a::c::e.
    1 while $text =~ s{(crate(?:::\w+)*)::\{([^{}]*)\}}{
        my $p = $1;
        join(", ", map { s/\s+as\s+\w+//r } grep { /\S/ } map { s/^\s+|\s+$//gr } split /,/, $2) =~ s/(^|,\s*)(?=\w)/$1${p}::/gr
    }e;
    # `super::` that climbs to the crate root is a crate:: path this check cannot read.
    my @parts = split m{/}, $file =~ s{^src/}{}r;
    my $depth = @parts - ($parts[-1] eq "mod.rs" ? 1 : 0);
    while ($text =~ m{\b((?:super::)+)}g) {
        my $climb = $1;
        my $n = () = $climb =~ /super::/g;
        if ($n >= $depth) {
            print "$file: $climb…: climbs to the crate root; write crate::… instead\n";
            $bad++;
        }
    }
    while ($text =~ m{\bcrate((?:::\w+)+)}g) {
        my $path = $1 =~ s/^:://r;
        my @seg = split /::/, $path;
        my $to = $seg[0];
        next if $to eq $from;
        $seen++;
        my $why;
        if (!$allow{$from}{$to}) {
            $why = "$from may not import $to";
        } elsif ($to eq "copy" && $front{$from} && @seg > 2 && $seg[1] =~ /^[a-z_]+$/ && !$iface{$seg[1]}) {
            $why = "a front end names copy::$seg[1], not the copy manager interface (copy::Item, copy::manager, copy::registry)";
        }
        next unless $why;
        my ($ok) = grep { $_->[0] eq $from && ($path eq $_->[1] || index("${path}::", $_->[1] =~ s/(?<!::)$/::/r) == 0) } @exc;
        if ($ok) { $used{"$ok->[0] $ok->[1]"} = 1; next; }
        print "$file: crate::$path: $why\n";
        $bad++;
    }
}
for (@exc) {
    print "note: exception \"$_->[0] $_->[1]\" matches nothing: remove it\n" unless $used{"$_->[0] $_->[1]"};
}
if ($bad) {
    print "check-imports: $bad import(s) break the rules of docs/architecture.md\n";
    exit 1;
}
print "check-imports: $seen cross-module paths follow the rules (" . scalar(keys %used) . " known exceptions in use)\n";
'

# And no cycle between sibling modules, at any depth (the known ones listed there).
exec python3 scripts/check-cycles.py
