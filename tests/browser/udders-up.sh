# Sourced by scripts/test-browser and scripts/screenshots (not run): starts
# `udders up` on free ports with a throwaway data directory and stops it.
#   udders_up BIN       sets UDDERS_URL, UDDERS_BROKER, UDDERS_PID, UDDERS_DATA
#   udders_down         SIGINT, waits up to 15 s (then SIGKILL), removes the data
# Needs scripts/lib.sh (free_port, wait_for_readyz) sourced first.

udders_up() {
  local bin="$1" http broker
  UDDERS_DATA="$(mktemp -d "${TMPDIR:-/tmp}/udders-browser.XXXXXX")"
  http="$(free_port)"
  broker="$(free_port)"
  while [ "$broker" = "$http" ]; do broker="$(free_port)"; done
  export UDDERS_OPERATOR_TOKEN="${UDDERS_OPERATOR_TOKEN:-test-operator-token}"
  "$bin" up --data-dir "$UDDERS_DATA/data" --http-addr "127.0.0.1:$http" --broker-addr "127.0.0.1:$broker" \
    > "$UDDERS_DATA/udders.log" 2>&1 &
  UDDERS_PID=$!
  export UDDERS_URL="http://127.0.0.1:$http"
  export UDDERS_BROKER="127.0.0.1:$broker"
  if ! wait_for_readyz "127.0.0.1:$http"; then
    echo "udders up did not become ready on $UDDERS_URL; its log:" >&2
    tail -n 40 "$UDDERS_DATA/udders.log" >&2
    return 1
  fi
}

udders_down() {
  if [ -n "${UDDERS_PID:-}" ] && kill -0 "$UDDERS_PID" 2> /dev/null; then
    kill -INT "$UDDERS_PID" 2> /dev/null || true
    for _ in $(seq 1 150); do kill -0 "$UDDERS_PID" 2> /dev/null || break; sleep 0.1; done
    if kill -0 "$UDDERS_PID" 2> /dev/null; then
      echo "udders up did not stop within 15 s of SIGINT; killing it" >&2
      kill -KILL "$UDDERS_PID" 2> /dev/null || true
    fi
    wait "$UDDERS_PID" 2> /dev/null || true
  fi
  UDDERS_PID=
  if [ -n "${UDDERS_DATA:-}" ]; then rm -rf "$UDDERS_DATA"; UDDERS_DATA=; fi
}

# Exits 0 (or 1 under CI / UDDERS_REQUIRE_BROWSER=1) with "NOT RUN: ..." when
# there is no chromium or node; as root, installs chromium with apt-get first.
need_browser() {
  local chromium="${UDDERS_CHROMIUM:-/usr/bin/chromium}" why=""
  if [ ! -x "$chromium" ] && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "installing chromium with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) > /dev/null 2>&1 || true
  fi
  [ -x "$chromium" ] || why="no browser"
  command -v node > /dev/null || why="${why:+$why, }no node"
  if [ -n "$why" ]; then
    echo "NOT RUN: $why"
    if [ -n "${CI:-}" ] || [ "${UDDERS_REQUIRE_BROWSER:-}" = 1 ]; then exit 1; fi
    exit 0
  fi
}

# npm ci in tests/browser when its node_modules is missing.
need_node_modules() {
  local dir="$1"
  if [ ! -d "$dir/node_modules/playwright-core" ] || [ ! -d "$dir/node_modules/kafkajs" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
}
