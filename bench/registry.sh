# Sourced by bench scripts: start_registry starts Debian's docker-registry
# on a free loopback port with its storage under $work (which the caller
# made), sets $port and $reg_pid, and waits until it answers; stop_registry
# stops it. The caller's EXIT trap calls stop_registry.
reg_pid=""
start_registry() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat > "$work/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$work/config.yml" > "$work/registry.log" 2>&1 &
  reg_pid=$!
  i=0
  until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$work/registry.log"; exit 1; }
    sleep 0.1
  done
}
stop_registry() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
}
