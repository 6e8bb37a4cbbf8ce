# Sourced by scripts/main.sh and frontend/app/e2e/run.sh (not run alone).
#
#   serve_replica ICLLM PORT STATE_DIR UI_DIR LOG
#
# Starts `ICLLM replica serve` in the background (state in STATE_DIR, the
# built chat UI from UI_DIR on the same port, output in LOG), stops it when
# the calling shell exits (SIGTERM: the server writes its checkpoint, and
# the exit waits for it), and returns once it listens, with its URL in
# `url` and its process in `server`. Fails, showing LOG, if the server
# exits first or does not listen within 60 s.
serve_replica() {
  local icllm=$1 port=$2 state=$3 ui=$4 log=$5
  "$icllm" replica serve --port "$port" --state-dir "$state" --frontend "$ui" >"$log" 2>&1 &
  server=$!
  trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
  url=""
  for _ in $(seq 1 600); do
    url=$(sed -n 's/^url: //p' "$log")
    [ -n "$url" ] && return 0
    if ! kill -0 "$server" 2>/dev/null; then
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "the replica did not listen within 60 s: see $log" >&2
  return 1
}
