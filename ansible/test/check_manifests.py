"""Validates the project's Kubernetes manifests offline.

* Core kinds (Namespace, Deployment, Service) against the pinned
  Kubernetes version's strict OpenAPI schemas (kubernetes-validate --strict:
  unknown fields and wrong types fail).
* Knative Services against Knative Serving's own schema (the models
  cloudcoil generates from its CRDs), then a round trip that fails on any
  field the model dropped, since such models ignore unknown fields.
* Agreement with the code: a SPRIGHT pod has one container per function of
  its chain file (name and --function id), the Knative baseline's functions
  have the chain file's service time and concurrency, every image is one
  that images/build.sh builds, tagged `dev` (the cluster role sets the tag).
* Self-test: a misspelled field and a wrong type, core and Knative, must
  each fail; a checker that accepts them is broken.

python3 check_manifests.py REPO  -> prints one line per manifest, exits 1 on any error
"""

import copy
import pathlib
import re
import sys

import kubernetes_validate
import yaml
from cloudcoil.models.knative_serving.serving import v1 as knative

KUBERNETES_VERSION = "1.32.0"
IMAGES = {"spright", "boutique", "motion", "parking", "knative-model", "grpc-baseline", "harness"}
MANIFESTS = ["workloads/*/deploy/*.yaml", "baselines/*/deploy/*.yaml"]


def dropped(given, kept, path=""):
    """Paths of `given` that the model's dump `kept` does not have."""
    if isinstance(given, dict):
        if not isinstance(kept, dict):
            return [path or "/"]
        out = []
        for k, v in given.items():
            if k not in kept:
                out.append(f"{path}.{k}")
            else:
                out.extend(dropped(v, kept[k], f"{path}.{k}"))
        return out
    if isinstance(given, list) and isinstance(kept, list):
        out = []
        for i, (g, k) in enumerate(zip(given, kept)):
            out.extend(dropped(g, k, f"{path}[{i}]"))
        return out
    return []


def validate(doc):
    """Schema errors of one document (empty: valid)."""
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if api == "serving.knative.dev/v1" and kind == "Service":
        try:
            model = knative.Service.model_validate(doc)
        except Exception as e:  # pydantic.ValidationError
            return [f"Knative Service: {e}"]
        kept = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
        return [f"unknown field {p}" for p in dropped(doc, kept)]
    if api and "knative.dev" in api:
        return [f"{api} {kind}: no schema here for this Knative kind"]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(str(p) for p in e.path)
        return [f"{kind} {where}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{kind}: {e}"]
    return []


def arg_after(args, flag):
    return args[args.index(flag) + 1] if flag in args else None


def containers_of(doc):
    return doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])


def consistency(repo, path, docs):
    """Where a manifest disagrees with the chain file or images/build.sh."""
    errors = []
    for doc in docs:
        for c in containers_of(doc):
            m = re.fullmatch(r"localhost/spright-rs/([a-z-]+):dev", c.get("image", ""))
            if not m or m.group(1) not in IMAGES:
                errors.append(f"{c.get('name', '?')}: image {c.get('image')!r} is not localhost/spright-rs/<built image>:dev")
            if c.get("imagePullPolicy") != "Never":
                errors.append(f"{c.get('name', '?')}: imagePullPolicy must be Never (images are imported, not pulled)")
    rel = path.relative_to(repo)
    if rel.parts[0] == "workloads" and rel.name == "spright.yaml":
        workload = rel.parts[1]
        chain = yaml.safe_load((repo / "workloads" / workload / "chain.yaml").read_text())["chains"][0]
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        functions = [c for c in containers_of(deployment) if c["name"] != "gateway"]
        want = {str(f["id"]): f["name"] for f in chain["functions"]}
        got = {arg_after(c["args"], "--function"): c["name"] for c in functions}
        if got != want:
            errors.append(f"function containers {got} differ from the chain file's functions {want}")
        for c in functions:
            if arg_after(c["args"], "--chain") != chain["name"]:
                errors.append(f"{c['name']}: --chain is not {chain['name']}")
    if rel.parts[:2] == ("baselines", "knative") and rel.stem in ("motion", "parking"):
        chain = yaml.safe_load((repo / "workloads" / rel.stem / "chain.yaml").read_text())["chains"][0]
        by_name = {d["metadata"]["name"]: d for d in docs}
        for f in chain["functions"]:
            svc = by_name.get(f["name"])
            if svc is None:
                errors.append(f"no Knative Service for function {f['name']}")
                continue
            spec = svc["spec"]["template"]["spec"]
            ms = arg_after(spec["containers"][0]["args"], "--service-ms")
            if float(ms) != float(f.get("service_time", {}).get("ms", 0)):
                errors.append(f"{f['name']}: --service-ms {ms} differs from the chain file's")
            if spec.get("containerConcurrency") != f.get("threads", 1):
                errors.append(f"{f['name']}: containerConcurrency differs from the chain file's threads")
    return errors


def node_ports(repo, paths):
    """The node ports the manifests expose are those Ansible's group_vars
    name (the load targets them; Kourier's is set by the knative role)."""
    want = yaml.safe_load((repo / "ansible/group_vars/all.yml").read_text())["spright_node_ports"]
    want = {k: v for k, v in want.items() if k != "kourier"}
    got = {}
    for path in paths:
        rel = path.relative_to(repo)
        for d in yaml.safe_load_all(path.read_text()):
            if d and d.get("kind") == "Service" and d.get("spec", {}).get("type") == "NodePort":
                key = f"spright-{rel.parts[1]}" if rel.parts[0] == "workloads" else f"{rel.parts[1]}-{rel.stem}"
                got[key] = d["spec"]["ports"][0]["nodePort"]
    if got != want:
        return [f"node ports in the manifests {got} differ from ansible/group_vars/all.yml's spright_node_ports {want}"]
    return []


def self_test(docs_by_kind):
    """Mutations each validator must reject."""
    failures = []
    deployment = copy.deepcopy(docs_by_kind["Deployment"])
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerport"] = 8080
    if not validate(deployment):
        failures.append("a Deployment with a misspelled field (containerport) passed")
    deployment = copy.deepcopy(docs_by_kind["Deployment"])
    deployment["spec"]["replicas"] = "one"
    if not validate(deployment):
        failures.append("a Deployment with replicas: 'one' passed")
    service = copy.deepcopy(docs_by_kind["KnativeService"])
    service["spec"]["template"]["spec"]["containerConcurency"] = 32
    if not validate(service):
        failures.append("a Knative Service with a misspelled field (containerConcurency) passed")
    service = copy.deepcopy(docs_by_kind["KnativeService"])
    service["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "eighty"
    if not validate(service):
        failures.append("a Knative Service with containerPort: 'eighty' passed")
    return failures


def main():
    repo = pathlib.Path(sys.argv[1]).resolve()
    paths = sorted(p for pattern in MANIFESTS for p in repo.glob(pattern))
    if not paths:
        print("check_manifests: no manifests found", file=sys.stderr)
        return 1
    failed = 0
    samples = {}
    for path in paths:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        errors = []
        for doc in docs:
            errors += [f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}: {e}" for e in validate(doc)]
            key = "KnativeService" if doc.get("apiVersion") == "serving.knative.dev/v1" else doc.get("kind")
            samples.setdefault(key, doc)
        errors += consistency(repo, path, docs)
        kinds = ", ".join(sorted({d["kind"] if "knative" not in d["apiVersion"] else "Knative Service" for d in docs}))
        print(f"{'ok  ' if not errors else 'FAIL'} {path.relative_to(repo)} ({len(docs)} objects: {kinds})")
        for e in errors:
            print(f"     {e}")
        failed += bool(errors)
    errors = node_ports(repo, paths)
    for e in errors:
        print(f"FAIL {e}")
    failed += len(errors)
    for f in self_test(samples):
        print(f"FAIL self-test: {f}")
        failed += 1
    print(f"check_manifests: {len(paths)} files, Kubernetes {KUBERNETES_VERSION} strict, Knative Serving {knative_version()}")
    return 1 if failed else 0


def knative_version():
    from importlib.metadata import version

    return version("cloudcoil.models.knative_serving")


if __name__ == "__main__":
    sys.exit(main())
