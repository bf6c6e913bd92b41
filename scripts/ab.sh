#!/usr/bin/env bash
# Compares two builds of fleet side by side: each runs as a controller in front of the same two fake upstreams
# (as `endpoints`), and the load alternates between them in short bursts, so that this machine's drift (±20 %
# between runs of one binary) hits both alike. What scripts/bench.sh measures once, this measures as a pair;
# docs/benchmarks.md quotes its medians.
#
#   scripts/ab.sh BEFORE/fleet AFTER/fleet            # 6 rounds: plain requests, then streams
#   AB_ROUNDS=8 AB_LOAD=stream scripts/ab.sh A B      # only the 64 unpaced streams, 8 rounds
#
# Both controllers run in sessions of their own (`up --detach`) unless AB_SESSIONS=shared, which starts them in
# this script's session, with wrk and the fakes: Linux's autogroup scheduling treats the two differently
# (scripts/bench.sh, BENCH_SESSIONS), and a change can gain under one and not the other.
#
# A build of an earlier commit: `git worktree add /tmp/before <commit> && (cd /tmp/before && swift build -c
# release --product fleet)`, then pass /tmp/before/.build/release/fleet.
#
# Per round and build: CPU per request (or stream) of the controller, from /proc/PID/stat over the burst; req/s
# (or streams/s); for plain requests also the 1-connection p50, for streams the p99. Under the table, each build's
# medians, the CPU also split by thread group (curl thread / event loops / the rest, as scripts/bench.sh splits it).
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: scripts/ab.sh BEFORE_FLEET_BINARY AFTER_FLEET_BINARY" >&2; exit 64; }
# Resolved where the caller stands, before moving to the repository.
A=$(realpath "$1"); B=$(realpath "$2")
cd "$(dirname "$0")/.."
for bin in "$A" "$B"; do
  [ -x "$bin" ] || { echo "[ab] $bin is not an executable fleet; build it with swift build -c release --product fleet" >&2; exit 66; }
done
ROUNDS="${AB_ROUNDS:-6}"
BURST="${AB_BURST:-3}"
LOAD="${AB_LOAD:-both}"
SESSIONS="${AB_SESSIONS:-own}"
case $SESSIONS in shared|own) ;; *) echo "[ab] AB_SESSIONS is shared or own, not $SESSIONS" >&2; exit 64 ;; esac
TOKENS=32
PORT_A=18680; PORT_B=18681; UP1=18671; UP2=18672

. scripts/lib/wrk.sh
. scripts/lib/threads.sh
ensure_wrk
swift build -c release --product fake-llama-server >&2
FAKE=.build/release/fake-llama-server

work=$(mktemp -d)
fakes=()
cleanup() {
  "$A" down --url "http://127.0.0.1:$PORT_A" >/dev/null 2>&1 || true
  "$B" down --url "http://127.0.0.1:$PORT_B" >/dev/null 2>&1 || true
  for pid in "${fakes[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for port in $UP1 $UP2; do
  "$FAKE" --port "$port" --alias bench --parallel 256 --fake-loading-delay 0 --fake-tokens $TOKENS \
    --fake-token-delay 0 >"$work/fake-$port.log" 2>&1 &
  fakes+=($!)
done
for name in A B; do
  port=$PORT_A; [ $name = B ] && port=$PORT_B
  cat > "$work/$name.json" <<JSON
{ "listen": "127.0.0.1:$port", "portRange": "18700-18799", "stateDir": "$work/state-$name",
  "models": { "bench": { "endpoints": ["http://127.0.0.1:$UP1", "http://127.0.0.1:$UP2"], "parallel": 256,
                          "queue": { "maxSize": 1000 }, "policy": "roundRobin" } } }
JSON
done
write_wrk_scripts "$work" $TOKENS

if [ "$SESSIONS" = own ]; then
  "$A" up --detach --config "$work/A.json" >/dev/null
  "$B" up --detach --config "$work/B.json" >/dev/null
else
  "$A" up --config "$work/A.json" </dev/null >"$work/A.log" 2>&1 &
  "$B" up --config "$work/B.json" </dev/null >"$work/B.log" 2>&1 &
  for port in $PORT_A $PORT_B; do
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/status" && break; sleep 0.1; done
  done
fi
controller() { # port: the controller's pid, from its status document
  curl -s "http://127.0.0.1:$1/status" | grep -o '"pid" *: *[0-9]*' | head -1 | grep -o '[0-9]*$'
}
PID_A=$(controller $PORT_A); PID_B=$(controller $PORT_B)
[ -n "$PID_A" ] && [ -n "$PID_B" ] || { echo "[ab] a controller did not start; see $work" >&2; exit 1; }
echo "[ab] A: $A (pid $PID_A)  B: $B (pid $PID_B)  rounds: $ROUNDS of ${BURST} s; sessions: $SESSIONS" >&2

hz=$(getconf CLK_TCK)
# burst KIND PORT PID: prints "cpu_us_per_unit units_per_s extra curl_us loops_us rest_us" (the last three: the
# CPU per unit by thread group, as scripts/bench.sh splits it)
burst() {
  local kind=$1 port=$2 pid=$3 c0 c1 s0 s1 out n rate extra split
  local connections=8; [ "$kind" = stream ] && connections=64
  c0=$(cpu "$pid"); s0=$(threads_cpu "$pid")
  out=$(wrk -t2 -c$connections -d${BURST}s --latency -s "$work/$kind.lua" "http://127.0.0.1:$port/v1/completions")
  c1=$(cpu "$pid"); s1=$(threads_cpu "$pid")
  n=$(echo "$out" | awk '$2=="requests" {print $1}')
  rate=$(echo "$out" | awk '/Requests\/sec/ {printf "%d", $2}')
  if [ "$kind" = stream ]; then
    extra=$(echo "$out" | awk '$1=="99%" {print $2}')
  else
    extra=$(wrk -t1 -c1 -d2s --latency -s "$work/plain.lua" "http://127.0.0.1:$port/v1/completions" | awk '$1=="50%" {print $2}')
  fi
  n=$((n > 0 ? n : 1))
  split=$(threads_delta "$s0" "$s1" | awk -v f="$(( 1000000 / hz ))" -v n=$n '{ printf "%d %d %d", $1 * f / n, $2 * f / n, $3 * f / n }')
  echo "$(( (c1 - c0) * 1000000 / hz / n )) $rate $extra $split"
}

kinds="plain stream"; [ "$LOAD" != both ] && kinds=$LOAD
for kind in $kinds; do
  # Warm both up.
  wrk -t2 -c8 -d1s -s "$work/$kind.lua" "http://127.0.0.1:$PORT_A/v1/completions" >/dev/null
  wrk -t2 -c8 -d1s -s "$work/$kind.lua" "http://127.0.0.1:$PORT_B/v1/completions" >/dev/null
  : > "$work/$kind.out"
  for round in $(seq "$ROUNDS"); do
    echo "A $(burst $kind $PORT_A "$PID_A")" >> "$work/$kind.out"
    echo "B $(burst $kind $PORT_B "$PID_B")" >> "$work/$kind.out"
  done
  unit=request; rate=req/s; extra="1-conn p50"
  [ $kind = stream ] && { unit=stream; rate=streams/s; extra="64-conn p99"; }
  echo
  echo "$kind ($([ $kind = stream ] && echo "64 unpaced $TOKENS-token streams" || echo "8 connections, non-streamed")), $ROUNDS rounds alternated:"
  echo
  echo "| round | A: CPU per $unit | A: $rate | A: $extra | B: CPU per $unit | B: $rate | B: $extra |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  paste -d' ' <(grep '^A ' "$work/$kind.out") <(grep '^B ' "$work/$kind.out") | awk '{printf "| %d | %d µs | %s | %s | %d µs | %s | %s |\n", NR, $2, $3, $4, $9, $10, $11}'
  for name in A B; do
    # The middle round (the lower middle one for an even count), CPU and rate sorted apart.
    cpu=$(grep "^$name " "$work/$kind.out" | awk '{print $2}' | sort -n | awk '{v[NR]=$1} END {printf "%d µs (%d–%d)", v[int((NR+1)/2)], v[1], v[NR]}')
    per_s=$(grep "^$name " "$work/$kind.out" | awk '{print $3}' | sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
    # Each thread group's median apart: what a change that touches one of them moves.
    split=$(grep "^$name " "$work/$kind.out" | awk '{ print $5, $6, $7 }' | awk '
      { for (g = 1; g <= 3; g++) v[g, NR] = $g }
      END { for (g = 1; g <= 3; g++) { for (i = 1; i <= NR; i++) s[i] = v[g, i]
              for (i = 2; i <= NR; i++) for (j = i; j > 1 && s[j - 1] > s[j]; j--) { t = s[j]; s[j] = s[j - 1]; s[j - 1] = t }
              m[g] = s[int((NR + 1) / 2)] }
            printf "%d / %d / %d µs", m[1], m[2], m[3] }')
    echo "$name: median CPU per $unit $cpu (curl thread / event loops / rest: $split), median $rate $per_s"
  done
  paste -d' ' <(grep '^A ' "$work/$kind.out") <(grep '^B ' "$work/$kind.out") | awk '{ if ($9 < $2) b++ } END {
    printf "B used less CPU per unit in %d of %d rounds\n", b, NR }'
done
