#!/usr/bin/env bash
# Rebuilds the committed eBPF objects from their C sources.
# Needs clang (and libbpf-dev for <bpf/bpf_helpers.h>). The objects are
# committed so that machines without clang can still load them; the test
# `bpf_objects_fresh` fails when an object is stale against its source.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
arch_inc=/usr/include/$(uname -m)-linux-gnu
for src in "$here"/*.bpf.c; do
  obj="$out/$(basename "${src%.c}").o"
  clang -O2 -g -target bpf -I"$arch_inc" -I"$here" \
    -fdebug-prefix-map="$here"=bpf -ffile-prefix-map="$here"=bpf \
    -c "$src" -o "$obj"
  # Debug info is kept for BTF; strip DWARF so objects are small and the
  # output does not depend on the build path.
  llvm-strip -g "$obj" 2>/dev/null || true
done
