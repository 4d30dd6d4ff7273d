#!/bin/sh
echo "hello from a microVM: $*"
