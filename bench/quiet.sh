#!/bin/sh
# Sourced by the other bench scripts: `wait_quiet [MAX_SECONDS]` waits (up
# to MAX_SECONDS, default $BENCH_QUIET_MAX or 600) until the CPUs were at
# least 85% idle over a 2-second window, then prints that idle share and
# the load average. The machine is shared: a figure taken while others
# compile says little, so every figure is printed with the load it was
# measured under.
idle_percent() {
  set -- $(head -1 /proc/stat)
  t1=$(($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9)); i1=$(($5 + $6))
  sleep 2
  set -- $(head -1 /proc/stat)
  t2=$(($2 + $3 + $4 + $5 + $6 + $7 + $8 + $9)); i2=$(($5 + $6))
  echo $(((i2 - i1) * 100 / (t2 - t1)))
}
wait_quiet() {
  max=${1:-${BENCH_QUIET_MAX:-600}}
  waited=0
  while :; do
    idle=$(idle_percent)
    waited=$((waited + 2))
    if [ "$idle" -ge 85 ] || [ "$waited" -ge "$max" ]; then break; fi
  done
  echo "cpu idle ${idle}% over 2 s (waited ${waited} s), load $(cut -d' ' -f1-3 /proc/loadavg)"
}
