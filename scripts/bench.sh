#!/usr/bin/env bash
# Measures what the gateway adds: the same load (wrk) against one instance directly and through fleet's
# gateway, in one run, on this machine. The instance is the fake llama-server, so the data path (not the
# model) is what is measured. Prints a Markdown table with ratios to direct; docs/benchmarks.md keeps a run.
#
#   scripts/bench.sh                     # 10 s per measurement
#   BENCH_DURATION=30 scripts/bench.sh
#   BENCH_POLICY=prefixAware scripts/bench.sh   # the gateway's model with another routing policy
#   BENCH_MICRO_ONLY=1 scripts/bench.sh         # only the microbenchmarks (fingerprinting)
#   BENCH_PROXY_ONLY=1 scripts/bench.sh         # only direct vs nginx vs the floors (fleet-microbench proxy: fleet's
#                                               # parts with nothing between them; routed-proxy: plus a task and an
#                                               # actor per request) vs fleet in front of the same two upstreams
#                                               # (non-streamed at 8 and 1 connections, then 64 unpaced streams),
#                                               # with the CPU per request of each path's own process
#   BENCH_ROUNDS=5 scripts/bench.sh             # the proxy comparison's paths take turns 5 times (3 by default),
#                                               # each for a fifth of BENCH_DURATION; ratios are taken per round
#   BENCH_SESSIONS=own scripts/bench.sh         # every proxy (nginx, the floors, fleet) in a session of its own, as
#                                               # a daemon runs; by default (shared) all run in this script's session
#
# Sessions matter on Linux: with autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled, on by default on
# desktops and most VMs) each session is a scheduling group that gets an equal share of the CPU, whatever its
# number of threads. A proxy in a session of its own is scheduled against the group of wrk and the upstreams, not
# thread by thread, and measures differently (docs/benchmarks.md, thirteenth pass: 64 streams through nginx fell
# from 1.1× to 0.7× direct). Every proxy of a run is started the same way.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${BENCH_DURATION:-10}"
DIRECT_PORT="${BENCH_DIRECT_PORT:-18601}"
LISTEN_PORT="${BENCH_LISTEN_PORT:-18690}"
TOKENS=32
POLICY="${BENCH_POLICY:-roundRobin}"
SESSIONS="${BENCH_SESSIONS:-shared}"
case $SESSIONS in shared|own) ;; *) echo "[bench] BENCH_SESSIONS is shared or own, not $SESSIONS" >&2; exit 64 ;; esac
SESSIONS_TEXT="this script's session"; [ "$SESSIONS" = own ] && SESSIONS_TEXT="sessions of their own"
# The proxy comparison's paths take turns this many times (BENCH_PROXY_ONLY, and the end of a full run).
ROUNDS="${BENCH_ROUNDS:-3}"
# awk functions for the proxy comparison: the median of space-separated numbers, and "median× (lowest–highest)".
MEDIAN_AWK='
  function sorted(list, v,   m, i, j, t) {
    m = split(list, v, " ")
    for (i = 2; i <= m; i++) { t = v[i] + 0; for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return m
  }
  function median(list,   v, m) { m = sorted(list, v); return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2 }
  function spread(list,   v, m) {
    m = sorted(list, v)
    return m > 1 ? sprintf("%.2f× (%.2f–%.2f)", median(list), v[1], v[m]) : sprintf("%.2f×", v[1])
  }
'
# awk functions for a path's CPU by thread group: add(name, curl, loops, rest) sums a round's ticks ("-" when the
# path has several processes), bythread(name, ticks per µs over all its requests) prints them per request.
THREADS_AWK='
  function add(name, c, l, r) { if (c == "-") many[name] = 1; else { curl[name] += c; loops[name] += l; rest[name] += r } }
  function bythread(name, per) {
    return many[name] ? "–" : sprintf("%d / %d / %d µs", curl[name] / per, loops[name] / per, rest[name] / per)
  }
'

if [ "${BENCH_MICRO_ONLY:-0}" = 1 ]; then
  swift build -c release --product fleet-microbench >&2
  echo; echo "Microbenchmarks (fleet-microbench, release):"; echo
  .build/release/fleet-microbench
  exit 0
fi

scripts/install-deps.sh
. scripts/lib/wrk.sh
. scripts/lib/threads.sh
ensure_wrk
echo "[bench] building fleet and the fake server (release)" >&2
swift build -c release --product fleet >&2
swift build -c release --product fake-llama-server >&2
swift build -c release --product fleet-microbench >&2
BIN=.build/release

work=$(mktemp -d)
direct_pid=
fleet_pid=
cleanup() {
  "$BIN/fleet" down --url "http://127.0.0.1:$LISTEN_PORT" >/dev/null 2>&1 || true
  [ -n "$direct_pid" ] && kill "$direct_pid" 2>/dev/null || true
  [ -n "$fleet_pid" ] && kill "$fleet_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Runs a proxy's command in the background, in this session or (BENCH_SESSIONS=own) in a session of its own.
launch() {
  if [ "$SESSIONS" = own ]; then setsid "$@" </dev/null & else "$@" </dev/null & fi
}

# Starts fleet's controller with config $1 as every other proxy is started (in the background: `fleet up
# --detach` would always give it a session of its own) and returns once it serves its status.
fleet_up() {
  launch "$BIN/fleet" up --config "$1" >"$work/controller.log" 2>&1
  fleet_pid=$!
  for _ in $(seq 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$LISTEN_PORT/status" && return 0
    kill -0 "$fleet_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "[bench] fleet did not start; its output:" >&2
  cat "$work/controller.log" >&2
  exit 1
}

# Stops the controller and waits for it to exit.
fleet_down() {
  "$BIN/fleet" down --url "http://127.0.0.1:$LISTEN_PORT" >/dev/null
  wait "$fleet_pid" 2>/dev/null || true
  fleet_pid=
}

printf 'GGUF%028d' 0 > "$work/bench.gguf"
write_wrk_scripts "$work" $TOKENS

# Starts the same server twice, directly on DIRECT_PORT and as a one-replica fleet behind the gateway.
# $1 = executable, $2 = model file, $3 = slots, rest = the server's extra arguments.
start_pair() {
  local server=$1 model=$2 slots=$3; shift 3
  local args=("$@")
  "$server" --model "$model" --host 127.0.0.1 --port "$DIRECT_PORT" --alias bench --parallel "$slots" "${args[@]}" >/dev/null 2>&1 &
  direct_pid=$!
  cat > "$work/fleet.json" <<JSON
{ "listen": "127.0.0.1:$LISTEN_PORT", "portRange": "18700-18799", "llamaServer": "$server",
  "stateDir": "$work/state",
  "models": { "bench": { "path": "$model", "replicas": 1, "parallel": $slots, "queue": { "maxSize": 1000 }, "policy": "$POLICY",
                          "args": $(printf '"%s",' "${args[@]}" | sed 's/,$//; s/^/[/; s/$/]/') } } }
JSON
  fleet_up "$work/fleet.json"
  for _ in $(seq 600); do curl -sf "http://127.0.0.1:$DIRECT_PORT/health" >/dev/null && break; sleep 0.1; done
  for _ in $(seq 600); do
    [ "$(curl -s "http://127.0.0.1:$LISTEN_PORT/status" | grep -o '"inRotation" : true' | wc -l)" = 1 ] && break; sleep 0.1
  done
}

# The fake server with $1 seconds per token.
start() {
  start_pair "$PWD/$BIN/fake-llama-server" "$work/bench.gguf" 256 \
    --fake-loading-delay 0 --fake-tokens "$TOKENS" --fake-token-delay "$1"
}

stop() {
  fleet_down
  kill "$direct_pid" 2>/dev/null; wait "$direct_pid" 2>/dev/null || true
  direct_pid=
}

# wrk → "p50_ms p99_ms requests_per_s"
measure() {
  local url=$1 connections=$2 script=$3 duration=${4:-$DURATION}
  wrk -t "$(( connections < 2 ? 1 : 2 ))" -c "$connections" -d "${duration}s" --timeout 60s --latency -s "$script" "$url" \
    | awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } $1 == "Requests/sec:" { rps = $2 }
        $2 == "requests" && $3 == "in" { n = $1 }
        END { printf "%.3f %.3f %.1f %d\n", p50, p99, rps, n }'
}

row() {  # name direct gateway what
  local name=$1 direct=($2) gateway=($3)
  awk -v n="$name" -v d50="${direct[0]}" -v d99="${direct[1]}" -v drps="${direct[2]}" \
      -v g50="${gateway[0]}" -v g99="${gateway[1]}" -v grps="${gateway[2]}" -v t="$TOKENS" 'BEGIN {
    printf "| %s | %.3f / %.3f ms | %.3f / %.3f ms | +%.3f / +%.3f ms | %.0f | %.0f | %.3f× | %.0f | %.0f |\n",
      n, d50, d99, g50, g99, g50 - d50, g99 - d99, drps, grps, grps / drps, drps * t, grps * t }'
}

# Direct to one upstream, nginx round-robin in front of two, the floor proxy and fleet's gateway in front of the
# same two (as `endpoints`), with the same wrk load: what a proxy costs, side by side (issue 13's yardstick).
proxy_comparison() {
  if ! command -v nginx >/dev/null 2>&1; then
    echo "[bench] installing nginx with apt" >&2
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx-light >&2 \
      || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx >&2
  fi
  local up1=18611 up2=18612 nginx_port=18620 floor_port=18621 routed_port=18622 fake="$PWD/$BIN/fake-llama-server"
  local pids=()
  for port in $up1 $up2; do
    "$fake" --port "$port" --alias bench --parallel 256 --fake-loading-delay 0 --fake-tokens "$TOKENS" --fake-token-delay 0 \
      >/dev/null 2>&1 &
    pids+=($!)
  done
  mkdir -p "$work/nginx"
  cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream fake { server 127.0.0.1:$up1; server 127.0.0.1:$up2; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / { proxy_pass http://fake; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }
  }
}
NGINX
  launch nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" -g "daemon off;"
  pids+=($!)
  # The floor of fleet's design: swift-nio's HTTP/1 server and one libcurl multi thread, nothing else.
  launch "$BIN/fleet-microbench" proxy "$floor_port" "http://127.0.0.1:$up1/v1/completions" \
    "http://127.0.0.1:$up2/v1/completions" >/dev/null 2>&1
  local floor_pid=$!
  pids+=($floor_pid)
  # The same with what fleet's architecture adds at the least: a task per request and an actor that owns the pool.
  launch "$BIN/fleet-microbench" routed-proxy "$routed_port" "http://127.0.0.1:$up1/v1/completions" \
    "http://127.0.0.1:$up2/v1/completions" >/dev/null 2>&1
  local routed_pid=$!
  pids+=($routed_pid)
  cat > "$work/proxy.json" <<JSON
{ "listen": "127.0.0.1:$LISTEN_PORT", "portRange": "18700-18799", "stateDir": "$work/proxy-state",
  "models": { "bench": { "endpoints": ["http://127.0.0.1:$up1", "http://127.0.0.1:$up2"], "parallel": 256,
                          "queue": { "maxSize": 1000 }, "policy": "$POLICY" } } }
JSON
  fleet_up "$work/proxy.json"
  for port in $up1 $up2 $nginx_port $floor_port $routed_port; do
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  done
  for _ in $(seq 100); do
    [ "$(curl -s "http://127.0.0.1:$LISTEN_PORT/status" | grep -o '"inRotation" : true' | wc -l)" = 2 ] && break; sleep 0.1
  done
  local controller=$fleet_pid
  # Where each path listens, and the process(es) doing its work: the upstream itself when direct, nginx's
  # workers, the floors, fleet's controller.
  path_url() {
    case $1 in
      direct) echo "http://127.0.0.1:$up1/v1/completions" ;;
      nginx) echo "http://127.0.0.1:$nginx_port/v1/completions" ;;
      floor) echo "http://127.0.0.1:$floor_port/v1/completions" ;;
      routed) echo "http://127.0.0.1:$routed_port/v1/completions" ;;
      fleet) echo "http://127.0.0.1:$LISTEN_PORT/v1/completions" ;;
    esac
  }
  path_pids() {
    case $1 in
      direct) echo "${pids[0]}" ;;
      nginx) pgrep -d ' ' -f "nginx: worker process" || true ;;
      floor) echo "$floor_pid" ;;
      routed) echo "$routed_pid" ;;
      fleet) echo "$controller" ;;
    esac
  }
  local paths=(direct nginx floor routed fleet) name round
  # measured NAME CONNECTIONS SCRIPT: `measure`'s fields for NAME's path, then the CPU its process(es) spent
  # meanwhile: ticks, and ticks by thread group.
  measured() {
    local name=$1 before split out
    before=$(cpu $(path_pids "$name")); split=$(threads_cpu $(path_pids "$name"))
    out=$(measure "$(path_url "$name")" "$2" "$3" "$round_duration")
    echo "$out $(( $(cpu $(path_pids "$name")) - before )) $(threads_delta "$split" "$(threads_cpu $(path_pids "$name"))")"
  }
  # The paths take turns, ROUNDS times, each for a round's share of DURATION: this machine drifts by ±20 % from
  # one minute to the next, and a ratio from one pass of each path would mostly measure the drift. Each ratio is
  # taken within a round, and the table shows its median and range.
  local rounds=$ROUNDS round_duration=$(( (DURATION + ROUNDS - 1) / ROUNDS ))
  [ "$round_duration" -ge 3 ] || round_duration=3
  : > "$work/plain.txt"
  for round in $(seq "$rounds"); do
    for name in "${paths[@]}"; do
      echo "$round $name $(measured $name 8 "$work/plain.lua") $(measure "$(path_url $name)" 1 "$work/plain.lua" "$round_duration")" \
        >> "$work/plain.txt"
    done
  done
  echo
  echo "Direct, nginx, the floors and fleet in front of the same two upstreams (non-streamed, $TOKENS tokens, the fake at"
  echo "memory speed; $rounds rounds of $round_duration s per path and load, taking turns; medians, ratios within a round;"
  echo "the proxies in $SESSIONS_TEXT):"
  echo
  echo "| path | 8 connections req/s | 8 connections p50 / p99 | 1 connection p50 / p99 | 8 conn. req/s vs nginx | 1 conn. p50 vs nginx | CPU per request (8 conn.) | of it: curl thread / event loops / rest |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
  # fields: round name p50 p99 rps n (8 connections) ticks, ticks by thread group (over them) p50 p99 rps n (1 connection)
  awk -v hz="$(getconf CLK_TCK)" -v order="${paths[*]}" "$MEDIAN_AWK$THREADS_AWK"'
    { k = $2 SUBSEP $1; rps[k] = $5; p50[k] = $3; p99[k] = $4; one50[k] = $11; one99[k] = $12; ticks[$2] += $7; n[$2] += $6
      rounds[$2] = rounds[$2] " " $1; add($2, $8, $9, $10) }
    END {
      count = split(order, names, " ")
      for (i = 1; i <= count; i++) {
        name = names[i]; m = split(substr(rounds[name], 2), rs, " ")
        a = b = c = d = e = r1 = r2 = ""
        for (j = 1; j <= m; j++) {
          k = name SUBSEP rs[j]; g = "nginx" SUBSEP rs[j]
          a = a " " rps[k]; b = b " " p50[k]; c = c " " p99[k]; d = d " " one50[k]; e = e " " one99[k]
          r1 = r1 " " rps[k] / rps[g]; r2 = r2 " " one50[k] / one50[g]
        }
        printf "| %s | %.0f | %.3f / %.3f ms | %.3f / %.3f ms | %s | %s | %d µs | %s |\n", name, median(a), median(b), median(c),
          median(d), median(e), spread(r1), spread(r2), ticks[name] / hz * 1e6 / n[name], bythread(name, hz / 1e6 * n[name])
      }
    }' "$work/plain.txt"
  echo
  echo "CPU per request (from /proc, over the 8-connection runs): direct = the upstream answering (a Hummingbird server"
  echo "that parses the JSON body), nginx = its workers proxying, floor = \`fleet-microbench proxy\` (swift-nio's HTTP/1"
  echo "server and one libcurl multi thread with nothing between them), routed = \`fleet-microbench routed-proxy\` (the"
  echo "floor plus what fleet's architecture adds at the least: each request's own task, which takes its upstream from an"
  echo "actor, wakes for the answer's head and end, and gives the upstream back), fleet = its controller proxying."
  echo "Ratios: median (lowest–highest) of the rounds. Of it, by thread: the curl thread (fleet-curl, floor-curl), the"
  echo "event loops (NIO-…), and the rest (Swift's pool above all); – for nginx's several processes."

  # The same paths with 64 unpaced streams: what any proxy costs a CPU-bound stream on this machine.
  : > "$work/stream.txt"
  for round in $(seq "$rounds"); do
    for name in "${paths[@]}"; do
      echo "$round $name $(measured $name 64 "$work/stream.lua")" >> "$work/stream.txt"
    done
  done
  echo
  echo "64 unpaced streams ($TOKENS tokens each) through the same paths ($rounds rounds of $round_duration s, taking turns;"
  echo "the proxies in $SESSIONS_TEXT):"
  echo
  echo "| path | streams/s | p50 / p99 | vs direct | CPU per stream | of it: curl thread / event loops / rest |"
  echo "| --- | --- | --- | --- | --- | --- |"
  # fields: round name p50 p99 rps n ticks, ticks by thread group
  awk -v hz="$(getconf CLK_TCK)" -v order="${paths[*]}" "$MEDIAN_AWK$THREADS_AWK"'
    { k = $2 SUBSEP $1; rps[k] = $5; p50[k] = $3; p99[k] = $4; ticks[$2] += $7; n[$2] += $6; rounds[$2] = rounds[$2] " " $1
      add($2, $8, $9, $10) }
    END {
      count = split(order, names, " ")
      for (i = 1; i <= count; i++) {
        name = names[i]; m = split(substr(rounds[name], 2), rs, " ")
        a = b = c = r = ""
        for (j = 1; j <= m; j++) {
          k = name SUBSEP rs[j]
          a = a " " rps[k]; b = b " " p50[k]; c = c " " p99[k]; r = r " " rps[k] / rps["direct" SUBSEP rs[j]]
        }
        printf "| %s | %.0f | %.3f / %.3f ms | %s | %d µs | %s |\n", name, median(a), median(b), median(c), spread(r),
          ticks[name] / hz * 1e6 / n[name], bythread(name, hz / 1e6 * n[name])
      }
    }' "$work/stream.txt"
  fleet_down
  kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null || true
}

echo "[bench] $DURATION s per measurement; $(nproc) cores; $TOKENS tokens per answer; gateway policy $POLICY;" \
  "proxies in $SESSIONS_TEXT" \
  "(autogroup scheduling $([ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ] && echo on || echo off))" >&2
if [ "${BENCH_PROXY_ONLY:-0}" = 1 ]; then
  proxy_comparison
  exit 0
fi
echo
echo "| load | direct p50 / p99 | gateway p50 / p99 | added p50 / p99 | direct req/s | gateway req/s | gateway / direct | direct tokens/s | gateway tokens/s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"

start 0
row "non-streamed, 1 connection, no token delay" \
  "$(measure "http://127.0.0.1:$DIRECT_PORT/v1/completions" 1 "$work/plain.lua")" \
  "$(measure "http://127.0.0.1:$LISTEN_PORT/v1/completions" 1 "$work/plain.lua")"
row "streamed, 64 connections, no token delay (CPU-bound)" \
  "$(measure "http://127.0.0.1:$DIRECT_PORT/v1/completions" 64 "$work/stream.lua")" \
  "$(measure "http://127.0.0.1:$LISTEN_PORT/v1/completions" 64 "$work/stream.lua")"
stop

start 0.01
row "streamed, 64 connections, 10 ms per token" \
  "$(measure "http://127.0.0.1:$DIRECT_PORT/v1/completions" 64 "$work/stream.lua")" \
  "$(measure "http://127.0.0.1:$LISTEN_PORT/v1/completions" 64 "$work/stream.lua")"
stop

# The real llama-server and model, when the install scripts have them (BENCH_REAL=0 skips).
if [ "${BENCH_REAL:-1}" = 1 ]; then
  LLAMA_SERVER=$(scripts/install-llama-server.sh 2>/dev/null | tail -n 1)
  MODEL=$(scripts/fetch-model.sh 2>/dev/null | tail -n 1)
  start_pair "$LLAMA_SERVER" "$MODEL" 4 --ctx-size 2048 --threads 1 --n-gpu-layers 0
  row "real llama-server (gemma 270M, 1 thread, 4 slots), streamed, 4 connections" \
    "$(measure "http://127.0.0.1:$DIRECT_PORT/v1/completions" 4 "$work/stream.lua")" \
    "$(measure "http://127.0.0.1:$LISTEN_PORT/v1/completions" 4 "$work/stream.lua")"
  stop
fi

proxy_comparison

echo
echo "Microbenchmarks (fleet-microbench, release):"
echo
"$BIN/fleet-microbench"
