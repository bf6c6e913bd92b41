# Sourced by scripts/bench.sh and scripts/ab.sh: a process's CPU, whole and split by thread group.

# Ticks (utime + stime) of the processes given, summed.
cpu() { local pid t=0; for pid in "$@"; do t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done; echo $t; }

# The same for one process, split by thread: "curl loops rest", the curl thread (fleet-curl, floor-curl), the
# event loops (NIO-…) and every other thread (Swift's pool, above all); "- - -" for a path of several processes.
threads_cpu() {
  [ $# -eq 1 ] || { echo "- - -"; return; }
  local task
  for task in /proc/$1/task/*; do
    # utime and stime, counted after the command's name (which may hold spaces).
    echo "$(cat "$task/comm" 2>/dev/null) $(sed 's/.*) //' "$task/stat" 2>/dev/null | awk '{ print $12 + $13 }')"
  done | awk '{ t = $NF; if ($0 ~ /-curl /) c += t; else if ($0 ~ /^NIO-/) l += t; else r += t }
              END { printf "%d %d %d\n", c, l, r }'
}

# Ticks per thread group between two `threads_cpu` outputs.
threads_delta() { local b=($1) a=($2); [ "${b[0]}" = - ] && echo "- - -" || echo "$((a[0] - b[0])) $((a[1] - b[1])) $((a[2] - b[2]))"; }
