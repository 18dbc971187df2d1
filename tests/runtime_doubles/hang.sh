#!/bin/sh
# A runtime program that never answers: it starts a child that sleeps (so the test can see the whole
# process group reaped, not just this shell) and waits on it. Its pid goes to $DOUBLE_PIDFILE.
echo "double: starting and hanging" >&2
sleep 600 &
echo $! > "$DOUBLE_PIDFILE"
wait
