#!/bin/sh
# The image's entrypoint: runs its command (httpd) as a child and stops it
# on SIGTERM or SIGINT. As PID 1, httpd itself would ignore SIGTERM (the
# kernel delivers no signal to a namespace's init that has no handler for
# it), and `kiln stop` would have to wait for its SIGKILL.
"$@" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM INT
wait "$child"
