#!/usr/bin/env bash
# Stages what every node gets, on the controller: the binaries without
# their debug information, the experiment and chain files the harness
# reads, and the commit they came from. Replaces a staged file only when
# its content changed, and prints "changed" if any did (so that Ansible
# reports a change exactly when there is one).
#
# stage.sh SRC_DIR BIN_DIR STAGE_DIR BINARY...
set -euo pipefail
src=$1 bins=$2 stage=$3
shift 3
changed=0
mkdir -p "$stage/bin" "$stage/share"
put() { # put TMP DEST [MODE]
    chmod "${3:-0644}" "$1"
    if cmp -s "$1" "$2"; then
        rm -f "$1"
    else
        mkdir -p "$(dirname "$2")"
        mv "$1" "$2"
        changed=1
    fi
}
for b in "$@"; do
    if [ ! -x "$bins/$b" ]; then
        echo "stage.sh: no binary $bins/$b" >&2
        exit 1
    fi
    tmp=$(mktemp "$stage/.tmp.XXXXXX")
    objcopy --strip-debug "$bins/$b" "$tmp"
    put "$tmp" "$stage/bin/$b" 0755
done
cd "$src"
for f in harness/experiments/*.yaml workloads/*/chain.yaml workloads/*/deploy/*.yaml baselines/*/deploy/*.yaml; do
    tmp=$(mktemp "$stage/.tmp.XXXXXX")
    cp "$f" "$tmp"
    put "$tmp" "$stage/share/$f"
done
tmp=$(mktemp "$stage/.tmp.XXXXXX")
rev=$(git -C "$src" rev-parse HEAD 2>/dev/null || echo "unknown (not a git checkout)")
if [ -n "$(git -C "$src" status --porcelain -- . ':!results' 2>/dev/null)" ]; then
    rev="$rev-dirty"
fi
echo "$rev" >"$tmp"
put "$tmp" "$stage/share/REVISION"
[ "$changed" = 1 ] && echo changed
exit 0
