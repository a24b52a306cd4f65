#!/usr/bin/env bash
# Mutation check (cargo-mutants), scoped so it fits a shared 2-core machine: one file or
# module at a time, one job, debug builds without debug info, a time budget per mutant,
# and only the test binaries that can see the code under test.
#
#   scripts/mutants.sh SCOPE [EXTRA cargo-mutants ARGS...]
#
# MUTANTS_JOBS (default 1) runs that many mutants at once.
# SCOPE is one of the presets below (each names its files and its tests), several joined
# with "+" (engine+copy-io: one run over both), or a path to a
# .rs file under src/ (then the whole test suite runs for each mutant: slow).
#   segment | run | manager | copy-io | engine      src/copy/* (run: run.rs and run/*.rs)
#   flow | plan                                      src/copy/flow.rs; plan.rs and op.rs
#   copy-rest                                        the rest of src/copy: limit, lists, registry,
#                                                    reservation, residue, resolve, engine/lease, mod
#   rings                                            src/buf/rings.rs: the process's rings and bounce
#                                                    buffers, and who borrows them
#   cmdsn | tasks | login                            the iSCSI target's CmdSN window, its task logic,
#                                                    login
#   scsi                                             the whole codec, the crate crates/scsi, tested
#                                                    by its own tests (unit, golden, properties)
#   scsi-<file>  (e.g. scsi-parameter_list, scsi-ssc/mode)  one file of it
#
# Output: target/mutants/<scope>/mutants.out, or $MUTANTS_OUT/mutants.out (caught.txt, missed.txt, timeout.txt,
# unviable.txt, outcomes.json), outside the source tree. Run it under `nice -n 19`.
# docs/testing.md lists the last results and argues every surviving mutant.
set -euo pipefail
cd "$(dirname "$0")/.."

scope=${1:?usage: scripts/mutants.sh SCOPE [cargo-mutants args...]}
shift

if ! command -v cargo-mutants >/dev/null; then
  cargo install cargo-mutants --locked
fi

# The integration tests are one binary (tests/it); its modules are picked by name filters
# given to the test binaries (cargo mutants -- -- FILTER...), which the lib's tests see too.
copy_tests=(--test=it)
copy_filter=(residue:: copy_aborted:: copy_model:: admission:: held_data:: segments:: endpoints:: copy:: manager::)
iscsi_tests=(--test=it)
# hostile::f6_ runs the daemon against the per-initiator session cap (login_phase's open_session).
iscsi_filter=(iscsi:: iscsi_window:: daemon:: remote:: held_data:: signals:: frontend:: hostile::f6_)
files=()
tests=()
binfilter=()
filter=()
pkg=()
# Appends one preset's files, test targets and filters to the arrays below.
preset() {
  case $1 in
    # The lib's engine tests run segment.rs's read-ahead path and check which path served.
    segment) files+=(src/copy/segment.rs); tests+=(--lib "${copy_tests[@]}"); binfilter+=("${copy_filter[@]}") ;;
    run) files+=(src/copy/run.rs src/copy/run/byte_ranges.rs src/copy/run/copies.rs src/copy/run/operations.rs); tests+=("${copy_tests[@]}"); binfilter+=("${copy_filter[@]}") ;;
    manager) files+=(src/copy/manager.rs); tests+=("${copy_tests[@]}"); binfilter+=("${copy_filter[@]}") ;;
    copy-io) files+=(src/copy/io.rs src/copy/failure.rs src/copy/endpoint.rs); tests+=(--lib "${copy_tests[@]}"); binfilter+=("${copy_filter[@]}") ;;
    # The destination side of a transfer: the engine's tests push into a Flow too.
    flow) files+=(src/copy/flow.rs); tests+=(--lib "${copy_tests[@]}"); binfilter+=("${copy_filter[@]}") ;;
    # The planners and typed ops: their own unit tests, and the segments that carry them out.
    plan) files+=(src/copy/plan.rs src/copy/plan/transfer.rs src/copy/op.rs); tests+=(--lib "${copy_tests[@]}")
          binfilter+=(copy::plan copy::op operations:: reservations:: "${copy_filter[@]}") ;;
    copy-rest) files+=(src/copy/limit.rs src/copy/lists.rs src/copy/registry.rs src/copy/reservation.rs
                       src/copy/residue.rs src/copy/resolve.rs src/copy/engine/lease.rs src/copy/mod.rs)
               tests+=(--lib "${copy_tests[@]}")
               binfilter+=(reservations:: operations:: limits:: backup:: tape:: library:: remote:: daemon:: "${copy_filter[@]}") ;;
    rings) files+=(src/buf/rings.rs); tests+=(--lib --test=it)
           binfilter+=(buf:: copy::engine device::inventory device::library device::tape::image device::disk daemon::) ;;
    engine) files+=(src/copy/engine.rs); tests+=(--lib "${copy_tests[@]}"); binfilter+=("${copy_filter[@]}") ;;
    # The iSCSI target (src/frontend/iscsi/target/): the CmdSN window and the reader that
    # applies it; the task logic (task management, the executor, command intake); login.
    cmdsn)
      files+=(src/frontend/iscsi/target/window.rs src/frontend/iscsi/target/connection.rs)
      tests+=(--test=it); binfilter+=(iscsi:: iscsi_window::)
      filter+=(--re 'sn_le|CmdWindow|Connection::handle|Connection::request') ;;
    tasks)
      files+=(src/frontend/iscsi/target/task_mgmt.rs src/frontend/iscsi/target/executor.rs
             src/frontend/iscsi/target/data_out.rs)
      tests+=("${iscsi_tests[@]}"); binfilter+=("${iscsi_filter[@]}") ;;
    login)
      files+=(src/frontend/iscsi/login.rs src/frontend/iscsi/target/login_phase.rs)
      tests+=(--lib "${iscsi_tests[@]}"); binfilter+=("${iscsi_filter[@]}") ;;
    # The codec is a crate of its own: a mutant rebuilds only it and its three test targets
    # (a few seconds, against ~25 s for a mutant of xcopyd).
    # Property tests run 64 cases, not 256, per mutant: a mutant they miss counts as missed,
    # so this can only lower the score, and it halves the time of the crate's tests.
    scsi) pkg+=(--package xcopyd-scsi --exclude crates/scsi/src/fuzzing.rs)
          export PROPTEST_CASES="${PROPTEST_CASES:-64}" ;;
    scsi-*) files+=("crates/scsi/src/${1#scsi-}.rs"); pkg+=(--package xcopyd-scsi) ;;
    *.rs) files+=("$1") ;;
    *) echo "unknown scope $1" >&2; exit 2 ;;
  esac
}

# SCOPE may join presets with "+" (e.g. engine+copy-io+run): one run, one build per job,
# over all their files, with the union of their tests. Not with scsi or cmdsn, whose
# package or function filter would apply to the others too.
IFS=+ read -r -a scopes <<<"$scope"
if [ ${#scopes[@]} -gt 1 ]; then
  for s in "${scopes[@]}"; do
    case $s in scsi|scsi-*|cmdsn|*.rs) echo "$s cannot be joined with other scopes" >&2; exit 2 ;; esac
  done
fi
for s in "${scopes[@]}"; do preset "$s"; done
# The same test target or filter named by two presets is given once.
dedup() { printf '%s\n' "$@" | awk '!seen[$0]++'; }
if [ ${#tests[@]} -gt 0 ]; then mapfile -t tests < <(dedup "${tests[@]}"); fi
if [ ${#binfilter[@]} -gt 0 ]; then mapfile -t binfilter < <(dedup "${binfilter[@]}"); fi

out="${MUTANTS_OUT:-target/mutants/${scope//\//_}}"
mkdir -p "$out"
# Debug builds without debug info link far faster; the mutants' own target dir is in the
# scratch copy, so this does not disturb the normal build. opt-level 1 (MUTANTS_OPT_LEVEL)
# costs a second of build a mutant and saves more in the tests: the copy scopes' tests
# took 11 s of CPU at opt-level 0 and 4 s at 1, rebuild 5 s and 6 s (2026-12-05).
# Overflow checks and debug assertions stay on.
export CARGO_PROFILE_DEV_DEBUG=0
export CARGO_PROFILE_DEV_OPT_LEVEL="${MUTANTS_OPT_LEVEL:-1}"
args=(--no-shuffle -j "${MUTANTS_JOBS:-1}" --timeout "${MUTANTS_TIMEOUT:-180}" --build-timeout 900
      --baseline skip --output "$out")
args+=("${pkg[@]}")
for f in "${files[@]}"; do args+=(--file "$f"); done
# The test targets go to every cargo invocation (-C), so the build phase builds only them.
for t in "${tests[@]}"; do args+=("--cargo-arg=$t"); done
if [ ${#binfilter[@]} -gt 0 ]; then
  exec cargo mutants "${args[@]}" "${filter[@]}" "$@" -- -- "${binfilter[@]}"
fi
exec cargo mutants "${args[@]}" "${filter[@]}" "$@"
