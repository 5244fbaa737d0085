# Shell helpers shared by .ci/run and the scripts in this directory: sourced,
# not run.

# A free TCP port on loopback.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits up to 60 s for the `udders up` serving HTTP at $1 (host:port) to
# answer /readyz with 200; fails if it never does.
wait_for_readyz() {
  for _ in $(seq 1 300); do curl -sf "http://$1/readyz" > /dev/null && return 0; sleep 0.2; done
  curl -sf "http://$1/readyz" > /dev/null
}

# The binary a script runs: $UDDERS_BIN when set, else the workspace's build
# of the profile $1 (release or debug), built first. Needs CARGO_TARGET_DIR.
udders_binary() { # release|debug
  if [ -n "${UDDERS_BIN:-}" ]; then
    echo "$UDDERS_BIN"
    return
  fi
  if [ "$1" = release ]; then
    cargo build --release --locked -q --bin udders
  else
    cargo build --locked -q --bin udders
  fi
  echo "$CARGO_TARGET_DIR/$1/udders"
}

# A fresh `udders up` of $udders on the empty directory $data and free ports,
# given the arguments; returns once it is ready. Sets http (host:port) and up
# (its pid); when the calling script exits, it is killed and $data removed.
start_udders_up() {
  http="127.0.0.1:$(free_port)"
  "$udders" up --data-dir "$data" --http-addr "$http" --broker-addr "127.0.0.1:$(free_port)" "$@" \
    > "$data/up.log" 2>&1 &
  up=$!
  trap 'kill -9 $up 2>/dev/null || true; wait $up 2>/dev/null || true; rm -rf "$data"' EXIT
  wait_for_readyz "$http"
}

# The one-process-per-service topology on this machine (scripts/multiprocess,
# scripts/front-door): `udders broker`, one PostgreSQL database per service
# and $instances processes of `udders service` per service. The caller sets
# udders (the binary), server (a PostgreSQL server URL), run (a prefix for
# the database names), work (a directory for the logs) and instances;
# declares `declare -A pid port` and broker_pid=""; and defines say().
# Afterwards: $broker, pid[SERVICE-N] and port[SERVICE-N] (N from 1);
# topology_load_endpoints then sets endpoints, the flags for `udders load`.
udders_services=(order validation validation-us credit inventory payment fulfillment notification insights)

topology_start_broker() {
  "$udders" broker --broker-addr "$broker" >> "$work/broker.log" 2>&1 &
  broker_pid=$!
}

topology_start_instance() { # service instance
  local key="$1-$2" extra=()
  # Notification reads the orders it missed from the order service.
  [ "$1" = notification ] && extra=(--order-url "http://127.0.0.1:${port[order-1]}")
  "$udders" service "$1" --database-url "$server/${run}_${1//-/_}" --bootstrap "$broker" \
    --http-addr "127.0.0.1:${port[$key]}" --instance-id "$2" "${extra[@]}" >> "$work/$key.log" 2>&1 &
  pid[$key]=$!
}

topology_url() { # service: the HTTP base URL of its first instance
  echo "http://127.0.0.1:${port[$1-1]}"
}

# `udders load`'s flags for the topology: the POS API and every read model
# the invariants are checked against, each at its service's first instance.
topology_load_endpoints() {
  endpoints=(--url "$(topology_url order)" --credit-url "$(topology_url credit)"
    --inventory-url "$(topology_url inventory)" --payment-url "$(topology_url payment)"
    --fulfillment-url "$(topology_url fulfillment)" --notification-url "$(topology_url notification)")
}

topology_wait_ready() { # key url: up to 120 s for `udders healthcheck` to pass
  for _ in $(seq 1 600); do
    "$udders" healthcheck "$2" 2>/dev/null && return 0
    sleep 0.2
  done
  say "$1 was not ready within 120 s; its log:"; tail -40 "$work/$1.log"; return 1
}

topology_start() { # the databases, the broker, every instance; returns once all are ready
  local s i key
  for s in "${udders_services[@]}"; do
    psql "$server/postgres" -qtAc "CREATE DATABASE ${run}_${s//-/_}" >/dev/null
  done
  broker="127.0.0.1:$(free_port)"
  topology_start_broker
  for s in "${udders_services[@]}"; do
    for i in $(seq 1 "$instances"); do
      port[$s-$i]="$(free_port)"
      topology_start_instance "$s" "$i"
    done
  done
  for key in "${!port[@]}"; do topology_wait_ready "$key" "http://127.0.0.1:${port[$key]}"; done
}

topology_cleanup() { # kill -9 what is left; drop the databases and logs unless KEEP=1
  local p s
  for p in "${pid[@]}" $broker_pid; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then
    echo "logs kept in $work, databases ${run}_*"
  else
    for s in "${udders_services[@]}"; do
      psql "$server/postgres" -qtAc "DROP DATABASE IF EXISTS ${run}_${s//-/_} WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
  fi
}
