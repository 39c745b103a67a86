#!/usr/bin/env bash
# Builds an OCI image per deployable binary with buildah, from scratch: the
# binary (without debug information), the shared libraries it links and the
# files its Containerfile names - no base image, so nothing outside the
# package registries is needed, here or on an air-gapped cluster. Writes
# one OCI archive per image (NAME.oci.tar, which the Ansible `cluster` role
# imports into containerd) and TAG (the tag they got: the revision), and
# removes the images from buildah's storage.
#
# images/build.sh [--bins DIR] [--out DIR] [NAME...]
#   --bins  the binaries (default: target/release; build them first)
#   --out   where the archives go (default: target/images)
#   NAME    only these (default: every image below)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bins=$repo/target/release
out=$repo/target/images
names=()
while [ $# -gt 0 ]; do
    case $1 in
        --bins) bins=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        -*) echo "build.sh: unknown option $1" >&2; exit 2 ;;
        *) names+=("$1"); shift ;;
    esac
done

# image name -> the directory of its Containerfile (next to its code)
declare -A context=(
    [spright]=system
    [boutique]=workloads/boutique
    [motion]=workloads/motion
    [parking]=workloads/parking
    [knative-model]=baselines/knative
    [grpc-baseline]=baselines/grpc
    [harness]=harness
)
[ ${#names[@]} -gt 0 ] || names=(spright boutique motion parking knative-model grpc-baseline harness)
command -v buildah >/dev/null || { echo "build.sh: buildah is missing (Debian: apt-get install buildah)" >&2; exit 1; }
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$repo" status --porcelain -- . ':!results' 2>/dev/null)" ] || revision="$revision-dirty"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for name in "${names[@]}"; do
    dir=${context[$name]:-}
    [ -n "$dir" ] || { echo "build.sh: no image $name" >&2; exit 2; }
    [ -x "$bins/$name" ] || { echo "build.sh: no binary $bins/$name" >&2; exit 1; }
    ctx=$work/$name
    mkdir -p "$ctx/rootfs/usr/local/bin"
    objcopy --strip-debug "$bins/$name" "$ctx/rootfs/usr/local/bin/$name"
    # The shared libraries it links (and the loader), at the same paths.
    for lib in $(ldd "$bins/$name" | grep -o '/[^ ]*'); do
        mkdir -p "$ctx/rootfs$(dirname "$lib")"
        cp -L "$lib" "$ctx/rootfs$lib"
    done
    # Files the image carries besides the binary (chain files), listed by
    # `# carries: SRC -> DEST` lines in its Containerfile (SRC relative to the repository).
    while read -r src dest; do
        mkdir -p "$ctx/rootfs$(dirname "$dest")"
        cp "$repo/$src" "$ctx/rootfs$dest"
    done < <(sed -n 's/^# carries: \([^ ]*\) -> \([^ ]*\)$/\1 \2/p' "$repo/$dir/Containerfile")
    tag="localhost/spright-rs/$name:${revision:0:12}"
    buildah bud -q --format oci --layers=false \
        --label "org.opencontainers.image.revision=$revision" \
        --label "org.opencontainers.image.version=${revision:0:12}" \
        -t "$tag" -f "$repo/$dir/Containerfile" "$ctx" >/dev/null
    rm -f "$out/$name.oci.tar"
    buildah push -q "$tag" "oci-archive:$out/$name.oci.tar:$tag"
    buildah rmi -f "$tag" >/dev/null
    echo "$out/$name.oci.tar ($tag)"
done
# The tag every image got, for whoever imports them (the `cluster` role).
echo "${revision:0:12}" >"$out/TAG"
