#!/bin/sh
# Placeholder: gVisor's wrapper comes next.
exec runsc "$@"
