"""Helm chart checks for tests/it/packaging.rs, through the official Helm Go SDK (helm-python-sdk,
module `helm_python`) and offline Kubernetes schemas (kubernetes-validate). No cluster, no helm
binary, no network.

Run with the `helm` venv's Python (HELM_PYTHON in .cache/tools/env):

    chart.py lint CHART [VALUES_JSON]          -> the lint report
    chart.py render CHART VALUES_JSON KUBE     -> every rendered object, each validated against the
                                                  Kubernetes KUBE (e.g. 1.31) schema, strict mode
    chart.py schema CHART VALUES_JSON          -> whether values.schema.json accepts the values
    chart.py kube-validate KUBE < OBJECT_JSON  -> whether one object passes the Kubernetes schema

Every command prints one JSON object on stdout; the Rust test makes the assertions.
"""

import json
import sys

import helm_python as helm
import kubernetes_validate
import yaml

RELEASE = "demo"
NAMESPACE = "auth"


def kube_validate(obj, version):
    """None when `obj` passes, else the error text. Kinds without a bundled schema (CRDs such as
    ServiceMonitor) give "no-schema"."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
        return None
    except kubernetes_validate.utils.SchemaNotFoundError:
        return "no-schema"
    except kubernetes_validate.utils.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        return "%s: %s" % (path, e.message)


def sidecar_pod(snippet):
    """The sidecar snippet merged into a minimal Pod next to an Envoy container, as a user would."""
    fragment = yaml.safe_load(snippet)
    spec = {
        "containers": [{"name": "envoy", "image": "envoyproxy/envoy:v1.40.0"}],
    }
    for key, items in fragment.items():
        spec.setdefault(key, [])
        spec[key] = spec[key] + items
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app-with-sidecar", "namespace": NAMESPACE},
        "spec": spec,
    }


def cmd_lint(chart, values):
    return helm.lint(chart, values, strict=True, namespace=NAMESPACE, kube_version="v1.31.0")


def cmd_render(chart_path, values, version):
    with helm.Chart.load(chart_path) as chart:
        try:
            rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        except helm.HelmError as e:
            return {"ok": False, "error": str(e)}
    objects, notes = [], ""
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for obj in yaml.safe_load_all(text):
            if not obj:
                continue
            entry = {
                "template": template.split("/templates/", 1)[-1],
                "kind": obj.get("kind"),
                "name": (obj.get("metadata") or {}).get("name"),
                "error": kube_validate(obj, version),
                "object": obj,
            }
            objects.append(entry)
            snippet = (obj.get("data") or {}).get("sidecar.yaml") if obj.get("kind") == "ConfigMap" else None
            if snippet is not None:
                pod = sidecar_pod(snippet)
                objects.append({
                    "template": entry["template"] + "#sidecar.yaml",
                    "kind": "Pod",
                    "name": pod["metadata"]["name"],
                    "error": kube_validate(pod, version),
                    "object": pod,
                })
    return {"ok": True, "objects": objects, "notes": notes}


def cmd_schema(chart_path, values):
    with helm.Chart.load(chart_path) as chart:
        try:
            chart.validate_schema(values)
            return {"ok": True, "error": None}
        except helm.HelmError as e:
            return {"ok": False, "error": str(e)}


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    command, args = argv[1], argv[2:]
    if command == "lint":
        result = cmd_lint(args[0], json.loads(args[1]) if len(args) > 1 else None)
    elif command == "render":
        result = cmd_render(args[0], json.loads(args[1]), args[2])
    elif command == "schema":
        result = cmd_schema(args[0], json.loads(args[1]))
    elif command == "kube-validate":
        error = kube_validate(json.load(sys.stdin), args[0])
        result = {"ok": error is None, "error": error}
    else:
        sys.exit("unknown command %r\n%s" % (command, __doc__))
    result["helm_sdk"] = helm.helm_sdk_version()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
