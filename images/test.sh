#!/usr/bin/env bash
# Builds the Online Boutique image with images/build.sh (from the binaries
# `cargo test` built) and checks the OCI archive it wrote: one manifest,
# a config with the entrypoint, command, user and labels its Containerfile
# gives, and a filesystem holding the binary, its loader and libraries and
# the chain file - nothing else. No container runtime can start it here;
# the image is built and inspected. Leaves nothing in buildah's storage.
#
# bash images/test.sh   (root; needs buildah)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bins=${SPRIGHT_BINARIES:-$repo/target/debug}
t=$(mktemp -d /tmp/spright-images.XXXXXX)
trap 'rm -rf "$t"' EXIT
before=$(buildah images -q | sort)

"$repo/images/build.sh" --bins "$bins" --out "$t/out" boutique
archive=$t/out/boutique.oci.tar
[ -s "$archive" ] || { echo "images/test.sh: no archive" >&2; exit 1; }
[ "$(buildah images -q | sort)" = "$before" ] || { echo "images/test.sh: images left in buildah's storage" >&2; exit 1; }

mkdir "$t/oci"
tar -C "$t/oci" -xf "$archive"
python3 - "$t/oci" "$bins" <<'PY'
import json, os, sys, tarfile
oci, bins = sys.argv[1], sys.argv[2]
def blob(digest):
    algo, hexd = digest.split(":")
    return os.path.join(oci, "blobs", algo, hexd)
index = json.load(open(os.path.join(oci, "index.json")))
assert len(index["manifests"]) == 1, index
ref = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
assert ref.startswith("localhost/spright-rs/boutique:"), ref
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
config = json.load(open(blob(manifest["config"]["digest"])))
c = config["config"]
assert c["Entrypoint"] == ["/usr/local/bin/boutique"], c
assert c["Cmd"] == ["run", "--chain", "/etc/spright/chain.yaml"], c
assert c["User"] == "65532:65532", c
labels = c["Labels"]
assert labels["org.opencontainers.image.title"] == "boutique", labels
assert len(labels["org.opencontainers.image.revision"]) >= 40, labels
assert config["architecture"] == "amd64" and config["os"] == "linux", config
files = set()
for layer in manifest["layers"]:
    with tarfile.open(blob(layer["digest"])) as tar:
        files |= {m.name.lstrip("./") for m in tar.getmembers() if m.isfile()}
assert "usr/local/bin/boutique" in files, files
assert "etc/spright/chain.yaml" in files, files
assert any(f.startswith("lib") and "ld-linux" in f for f in files), files
assert any("libc.so" in f for f in files), files
extra = {f for f in files if not (f == "usr/local/bin/boutique" or f == "etc/spright/chain.yaml" or ".so" in f)}
assert not extra, f"files besides the binary, its libraries and the chain file: {extra}"
print(f"images/test.sh: {ref}: {len(files)} files, entrypoint {c['Entrypoint']}, user {c['User']}")
PY
echo "images/test.sh: passed"
