#!/usr/bin/env bash
# Validates every Kubernetes manifest of the project offline (see
# check_manifests.py): core kinds against Kubernetes' strict schemas,
# Knative Services against Knative Serving's, unknown fields rejected, and
# agreement with the chain files; a self-test proves a misspelled field or
# a wrong type fails. Then checks every playbook's syntax with the cluster
# tasks included.
#
#   bash ansible/test/manifests.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
. "$repo/ansible/test/venv.sh"
python "$repo/ansible/test/check_manifests.py" "$repo"
