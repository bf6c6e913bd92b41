#!/usr/bin/env bash
# The fault suite: scripted faults against a fleet while a load generator counts every request — replica kill -9,
# SIGSTOP/SIGCONT, hot swap, reload (models and endpoints added and removed), controller SIGTERM under load, slow
# and vanishing clients, 20k idle connections, malformed and oversized input, a client that stops reading for 60 s, 1,000 concurrent streams. Prints one Markdown table (fault,
# requests started, succeeded, failed, truncated-with-error, lost, recovery time) and a notes line per fault;
# docs/reliability.md keeps a measured run. Exit status 1 when a fault missed a goal (a request lost; a request
# failed in a hot swap, reload or SIGTERM drain; a probe, drain or cleanup goal its note names).
#
#   scripts/faults.sh                         # every fault: kill9 and hotswap on the real model, the rest on the fake
#   scripts/faults.sh --only kill9,sigstop    # some: kill9 sigstop hotswap reload sigterm clients idle20k malformed stall streams1000
#   scripts/faults.sh --fake-only             # every fault on fake-llama-server (no llama-server build needed)
#   scripts/faults.sh --soak 30m              # one fleet under steady load: RSS, fds, threads, requests over time
#
# FAULTS_BIN=DIR tests the `fleet` and `fake-llama-server` in DIR (default .build/debug, built when missing). They
# are copied to a private folder first, so a rebuild during the run changes nothing. Listens on 127.0.0.1 ports
# 18801-18810, 18900-18999 and 19001 only. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

soak= only= fake_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --soak) soak=${2:?--soak needs a duration like 30m}; shift 2 ;;
    --soak=*) soak=${1#--soak=}; shift ;;
    --only) only=${2:?--only needs fault names}; shift 2 ;;
    --only=*) only=${1#--only=}; shift ;;
    --fake-only) fake_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "faults.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

say() { echo "[faults] $*" >&2; }

BIN=${FAULTS_BIN:-.build/debug}
if [ -z "${FAULTS_BIN:-}" ]; then
  [ -x "$BIN/fleet" ] || { say "building fleet"; swift build --product fleet >&2; }
  [ -x "$BIN/fake-llama-server" ] || { say "building fake-llama-server"; swift build --product fake-llama-server >&2; }
fi
for exe in fleet fake-llama-server; do
  [ -x "$BIN/$exe" ] || { say "no $BIN/$exe (FAULTS_BIN=$BIN)"; exit 2; }
done

real_args=()
if [ "$fake_only" = 0 ]; then
  LLAMA_SERVER=$(scripts/install-llama-server.sh | tail -n 1)
  MODEL=$(scripts/fetch-model.sh | tail -n 1)
  real_args=(--llama-server "$LLAMA_SERVER" --model "$MODEL")
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/fleet-faults.XXXXXX")
py_pid=
# Set when a fault missed a goal: the fleets' logs are kept (controller.log and each instance's), so that a miss
# that does not come back when run again can still be read.
keep_logs=0
cleanup() {
  trap - EXIT INT TERM
  if [ -n "$py_pid" ] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true  # faults.py stops its fleets and children itself
    for _ in $(seq 150); do kill -0 "$py_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$py_pid" 2>/dev/null || true
  fi
  # Last resort, by pid: a process still running one of this run's private binaries or fleet.json files (the
  # folder name is unique to this run).
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$pid" = "$$" ] && continue
    if tr '\0' ' ' < "$dir/cmdline" 2>/dev/null | grep -qF -- "$work/"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  if [ "$keep_logs" = 1 ]; then
    rm -rf "$work/bin"
    say "a goal was missed: each fleet's fleet.json, controller.log and instance logs are kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/bin"
cp "$BIN/fleet" "$BIN/fake-llama-server" "$work/bin/"

args=(--work "$work" --fleet "$work/bin/fleet" --fake "$work/bin/fake-llama-server" "${real_args[@]}")
[ -n "$soak" ] && args+=(--soak "$soak")
[ -n "$only" ] && args+=(--only "$only")
[ "$fake_only" = 1 ] && args+=(--fake-only)

python3 scripts/faults.py "${args[@]}" &
py_pid=$!
rc=0
wait "$py_pid" || rc=$?
py_pid=
[ "$rc" = 1 ] && keep_logs=1
exit "$rc"
