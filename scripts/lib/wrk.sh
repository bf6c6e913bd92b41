# Shared by scripts/bench.sh and scripts/ab.sh (sourced): wrk, and the requests it sends.

# Installs wrk from Debian's packages when it is missing.
ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  echo "[wrk] installing wrk with apt" >&2
  local sudo=
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >&2
}

# Writes DIR/plain.lua and DIR/stream.lua: a completion of model "bench" for TOKENS tokens, not streamed and
# streamed.
write_wrk_scripts() {
  local dir=$1 tokens=$2 kind stream
  for kind in plain stream; do
    stream=false; [ "$kind" = stream ] && stream=true
    cat > "$dir/$kind.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"bench","prompt":"x","max_tokens":$tokens,"stream":$stream}'
LUA
  done
}
