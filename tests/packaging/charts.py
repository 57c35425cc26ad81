"""Shared helpers for the chart tests: paths, schemas, values and checks of rendered objects."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import jsonschema
import yaml

from control_plane.config import Settings
from control_plane.packaging import TenantRelease, runtime_values
from tests.packaging.gotmpl import Chart

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "helm"
CONTROL_PLANE = "storeops-control-plane"
RUNTIME = "storeops-tenant-runtime"
CHARTS = (CONTROL_PLANE, RUNTIME)

API_VERSIONS = {
    "ConfigMap": "v1",
    "Service": "v1",
    "ServiceAccount": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "Ingress": "networking.k8s.io/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
}
HOOK_PHASES = {"pre-install", "pre-upgrade"}

DEMO_TENANT = TenantRelease(
    id=UUID("0b5e7c1e-8f7e-4c43-9d0e-2c1f3e4a5b6c"),
    slug="freshmart",
    name="FreshMart Groceries",
    status="active",
    partner_slug="northwind",
)


@cache
def chart(name: str) -> Chart:
    return Chart.load(HELM / name)


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((HELM / name / "values.schema.json").read_text())
    return loaded


def schema_errors(name: str, values: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft7Validator(schema(name))
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(values)
    ]


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((HELM / "examples" / name).read_text())
    return loaded


def vault_settings() -> Settings:
    return Settings(
        public_url="https://storeops.example.com/",
        secrets_backend="vault",
        vault_addr="http://vault.vault.svc:8200",
    )


def tenant_values(settings: Settings | None = None, **kw: Any) -> dict[str, Any]:
    """What `storeops tenant helm-values` prints for the demo tenant."""
    return runtime_values(DEMO_TENANT, settings or vault_settings(), **kw)


# --- templates ----------------------------------------------------------------------------

VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z0-9_]+)+)")


def values_references(name: str) -> Iterator[tuple[str, str]]:
    """(file, dotted path) for every `.Values.a.b` a template of the chart mentions."""
    for file in sorted((HELM / name / "templates").iterdir()):
        for m in VALUES_REF.finditer(file.read_text()):
            yield file.name, m.group(1)[1:]


def leaves(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the values that are not non-empty maps."""
    for key, value in values.items():
        if isinstance(value, dict) and value:
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def lookup(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


# --- rendered objects ---------------------------------------------------------------------


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, suffix: str) -> dict[str, Any]:
    found = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    containers = pod_spec(workload)["containers"]
    found: dict[str, Any] = (
        containers[0] if name is None else next(c for c in containers if c["name"] == name)
    )
    return found


def env(c: dict[str, Any]) -> dict[str, Any]:
    """Container env by name: the literal value, or the valueFrom reference."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def secret_ref(c: dict[str, Any], variable: str) -> tuple[str, str]:
    ref = env(c)[variable]["secretKeyRef"]
    return ref["name"], ref["key"]


def check_objects(objects: list[dict[str, Any]]) -> None:
    """Invariants every rendering of either chart keeps."""
    assert objects, "nothing rendered"
    seen = set()
    for o in objects:
        kind, meta = o["kind"], o["metadata"]
        assert o["apiVersion"] == API_VERSIONS[kind], f"{kind}: {o['apiVersion']}"
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", meta["name"]), meta["name"]
        assert len(meta["name"]) <= 63, meta["name"]
        assert (kind, meta["name"]) not in seen, f"duplicate {kind} {meta['name']}"
        seen.add((kind, meta["name"]))
        labels = meta["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert all(isinstance(v, str) and len(v) <= 63 for v in labels.values()), labels
        if kind in ("Deployment", "Job"):
            check_workload(o, objects)
    configmaps = {o["metadata"]["name"] for o in by_kind(objects, "ConfigMap")}
    for cm in by_kind(objects, "ConfigMap"):
        assert all(isinstance(v, str) for v in cm["data"].values()), cm["data"]
    for svc in by_kind(objects, "Service"):
        selector = svc["spec"]["selector"]
        targets = [
            d
            for d in by_kind(objects, "Deployment")
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(targets) == 1, f"service {svc['metadata']['name']} selects {len(targets)}"
        ports = {p["name"] for p in container(targets[0]).get("ports", [])}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports
    services = {o["metadata"]["name"] for o in by_kind(objects, "Service")}
    for ing in by_kind(objects, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                assert path["backend"]["service"]["name"] in services
    deployments = {o["metadata"]["name"]: o for o in by_kind(objects, "Deployment")}
    for hpa in by_kind(objects, "HorizontalPodAutoscaler"):
        target = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "an autoscaled Deployment must not pin replicas"
        metric = hpa["spec"]["metrics"][0]
        assert metric["resource"]["name"] == "cpu"
    for pdb in by_kind(objects, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(
            selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in deployments.values()
        )
    for workload in [*deployments.values(), *by_kind(objects, "Job")]:
        spec = pod_spec(workload)
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps
        for c in spec["containers"]:
            for source in c.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps


def check_workload(workload: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    """Non-root, read-only root filesystem, no privilege escalation, resources, unique env."""
    spec = pod_spec(workload)
    name = workload["metadata"]["name"]
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] is True, name
    assert pod_security["runAsUser"] != 0, name
    assert spec["automountServiceAccountToken"] is False, name
    if workload["kind"] == "Deployment":
        selector = workload["spec"]["selector"]["matchLabels"]
        assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
        accounts = {o["metadata"]["name"] for o in by_kind(objects, "ServiceAccount")}
        if accounts:
            assert spec["serviceAccountName"] in accounts, name
    else:
        # A hook runs before the release's own objects exist: it may not depend on them.
        assert "serviceAccountName" not in spec, name
        assert all("envFrom" not in c for c in spec["containers"]), name
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc.get("runAsUser", 1) != 0, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert c["resources"]["requests"] and c["resources"]["limits"], name
        names = [e["name"] for e in c.get("env", [])]
        assert len(names) == len(set(names)), f"{name}: duplicate env {names}"
        assert c["image"].count(":") == 1 and not c["image"].endswith(":"), c["image"]
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"


def http_probe(c: dict[str, Any], kind: str) -> str:
    probe = c[kind]
    assert probe["httpGet"]["port"] == "http"
    path: str = probe["httpGet"]["path"]
    return path


def hook_phases(job: dict[str, Any]) -> set[str]:
    annotations = job["metadata"]["annotations"]
    return set(annotations["helm.sh/hook"].split(","))


def storeops_command(args: list[str]) -> str:
    """Parse ``storeops <args>`` with the real CLI (without running it); returns the
    command path. Raises click's UsageError for an unknown command or option."""
    import click

    from control_plane.cli import main

    command: click.Command = main
    path = ["storeops"]
    rest = list(args)
    while isinstance(command, click.Group):
        if not rest:
            raise click.UsageError(f"{' '.join(path)} needs a subcommand")
        name, *rest = rest
        found = command.get_command(click.Context(command), name)
        if found is None:
            raise click.UsageError(f"no command {' '.join([*path, name])}")
        command, path = found, [*path, name]
    command.make_context(" ".join(path), rest)
    return " ".join(path)
