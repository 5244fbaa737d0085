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
