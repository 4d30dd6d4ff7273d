#!/bin/sh
# Prints a greeting for its arguments and a little about the VM it runs in.
echo "$GREETING, $*!"
echo "kernel $(uname -r), $(nproc) vCPUs, running as uid $(id -u) on $(hostname)"
[ "$1" = "fail" ] && exit 3
exit 0
