#!/usr/bin/env bash
# Rebuilds the committed eBPF objects from their C sources.
# Needs clang and llvm-strip (and libbpf-dev for <bpf/bpf_helpers.h>). The
# objects are committed so that machines without clang can still load them;
# the test `bpf_objects` fails when an object is stale against its source.
# Output is byte-reproducible: compiled from this directory with relative
# file names and a fixed compilation directory, DWARF stripped (BTF kept).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-$here}" && cd "${1:-$here}" && pwd)
arch_inc=/usr/include/$(uname -m)-linux-gnu
cd "$here"
for src in *.bpf.c; do
  obj="$out/${src%.c}.o"
  clang -O2 -g -target bpf -I"$arch_inc" -I. -fdebug-compilation-dir=. -c "$src" -o "$obj"
  llvm-strip -g "$obj"
done
