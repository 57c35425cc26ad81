"""The Helm charts without helm: schemas, value references, and the objects the templates
render for the default values, the `storeops tenant helm-values` output, and with optional
features switched on and off."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from control_plane.config import Settings
from tenant_runtime.config import RuntimeSettings
from tests.packaging.charts import (
    CHARTS,
    CONTROL_PLANE,
    HELM,
    HOOK_PHASES,
    RUNTIME,
    by_kind,
    chart,
    check_objects,
    container,
    env,
    example,
    hook_phases,
    http_probe,
    leaves,
    lookup,
    named,
    pod_spec,
    schema,
    schema_errors,
    secret_ref,
    tenant_values,
    values_references,
)
from tests.packaging.gotmpl import TemplateError, merge_values

# --- (a) schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CHARTS)
def test_schema_is_draft_07_and_the_defaults_validate(name: str) -> None:
    s = schema(name)
    assert s["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(s)
    assert s["additionalProperties"] is False
    assert schema_errors(name, chart(name).defaults) == []
    # Every top-level value is described by the schema, and every described one has a default.
    assert set(chart(name).defaults) <= set(s["properties"])
    assert set(s["properties"]) - {"global"} <= set(chart(name).defaults)


@pytest.mark.parametrize(
    ("name", "values", "where"),
    [
        (CONTROL_PLANE, {"replicaCount": 2}, "replicaCount"),
        (CONTROL_PLANE, {"api": {"replica": 2}}, "replica"),
        (CONTROL_PLANE, {"podSecurityContext": {"runAsNonRoot": False}}, "podSecurityContext"),
        (CONTROL_PLANE, {"config": {"jwtAlgorithm": "HS256"}}, "config/jwtAlgorithm"),
        (CONTROL_PLANE, {"config": {"extra": {"HOME": "/"}}}, "config/extra"),
        (CONTROL_PLANE, {"ingress": {"host": "Not A Host"}}, "ingress/host"),
        (RUNTIME, {"tenant": {"id": "freshmart"}}, "tenant/id"),
        (RUNTIME, {"secrets": {"provider": "local"}}, "secrets/provider"),
        (RUNTIME, {"controlPlane": {"auth": "password"}}, "controlPlane/auth"),
        (RUNTIME, {"securityContext": {"privileged": True}}, "securityContext/privileged"),
        (
            RUNTIME,
            {"networkPolicy": {"egress": {"postgres": {"cidrs": ["db.example.com"]}}}},
            "networkPolicy/egress/postgres/cidrs/0",
        ),
        (
            RUNTIME,
            {"networkPolicy": {"egress": {"connectors": [{"name": "erp", "cidrs": []}]}}},
            "networkPolicy/egress/connectors/0",
        ),
    ],
)
def test_schema_refuses_mistakes(name: str, values: dict[str, Any], where: str) -> None:
    errors = schema_errors(name, merge_values(chart(name).defaults, values))
    assert any(where in e for e in errors), errors


def test_helm_values_output_validates_alone_and_merged() -> None:
    for settings in (None, Settings(public_url="https://cp.example.com")):
        values = tenant_values(settings, image_tag="0.1.0")
        assert schema_errors(RUNTIME, values) == []
        merged = merge_values(chart(RUNTIME).defaults, example("site-values.yaml"), values)
        assert schema_errors(RUNTIME, merged) == []


@pytest.mark.parametrize(
    ("name", "file"),
    [(CONTROL_PLANE, "control-plane-values.yaml"), (RUNTIME, "site-values.yaml")],
)
def test_example_values_validate(name: str, file: str) -> None:
    assert schema_errors(name, merge_values(chart(name).defaults, example(file))) == []


# --- (b) every value a template mentions exists -------------------------------------------


@pytest.mark.parametrize("name", CHARTS)
def test_every_referenced_value_exists_in_values_yaml(name: str) -> None:
    refs = list(values_references(name))
    assert len(refs) > 40
    missing = sorted({f"{f}: .Values.{p}" for f, p in refs if not lookup(chart(name).defaults, p)})
    assert missing == []


@pytest.mark.parametrize("name", CHARTS)
def test_every_default_value_is_used_by_a_template(name: str) -> None:
    refs = {path for _, path in values_references(name)}
    unused = [
        leaf
        for leaf in leaves(chart(name).defaults)
        if not any(leaf == r or leaf.startswith(r + ".") for r in refs)
    ]
    assert unused == []


@pytest.mark.parametrize("name", CHARTS)
def test_templates_stay_in_the_renderer_subset(name: str) -> None:
    # Chart.load parses every template; anything outside the subset raises there.
    loaded = chart(name)
    assert {"_helpers.tpl", "NOTES.txt"} <= set(loaded.renderer.files)
    assert len(loaded.manifests) >= 7
    assert (HELM / name / "Chart.yaml").is_file()
    assert loaded.meta["apiVersion"] == "v2"


# --- (c) control plane: rendered objects --------------------------------------------------


def cp_objects(*overrides: dict[str, Any]) -> list[dict[str, Any]]:
    objects = chart(CONTROL_PLANE).objects(*overrides, release="storeops", namespace="storeops")
    check_objects(objects)
    return objects


def test_control_plane_defaults() -> None:
    objects = cp_objects()
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    api = named(objects, "Deployment", "-api")
    c = container(api)
    assert c["args"][0] == "serve"
    assert http_probe(c, "livenessProbe") == "/healthz"
    assert http_probe(c, "readinessProbe") == "/readyz"
    assert http_probe(c, "startupProbe") == "/healthz"
    assert secret_ref(c, "STOREOPS_DATABASE_URL") == ("storeops-database", "database-url")
    assert secret_ref(c, "STOREOPS_REDIS_URL") == ("storeops-redis", "redis-url")
    assert secret_ref(c, "STOREOPS_VAULT_TOKEN") == ("storeops-vault", "token")
    # Only the migration Job gets the table owner's URL.
    assert "STOREOPS_ADMIN_DATABASE_URL" not in env(c)
    config = by_kind(objects, "ConfigMap")[0]["data"]
    assert config["STOREOPS_PUBLIC_URL"] == "https://storeops.example.com"
    assert config["STOREOPS_SECRETS_BACKEND"] == "vault"
    assert config["STOREOPS_PORT"] == str(c["ports"][0]["containerPort"])
    assert all(not v.startswith(("postgresql", "redis://")) for v in config.values())
    # What the pods get parses as the control plane's settings, number by number.
    settings = Settings.from_env(config)
    assert settings.max_body_bytes == 1048576 and settings.port == 8000
    assert settings.access_token_ttl_seconds == 900 and settings.secrets_backend == "vault"

    job = by_kind(objects, "Job")[0]
    assert hook_phases(job) == HOOK_PHASES
    assert int(job["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0
    assert "before-hook-creation" in job["metadata"]["annotations"]["helm.sh/hook-delete-policy"]
    jc = container(job)
    assert jc["args"] == ["db", "upgrade"]
    assert secret_ref(jc, "STOREOPS_ADMIN_DATABASE_URL") == (
        "storeops-database",
        "admin-database-url",
    )
    # The hook cannot read the release's ConfigMap: the same settings are inline.
    assert {k: v for k, v in env(jc).items() if isinstance(v, str)} == config
    assert pod_spec(job)["restartPolicy"] == "Never"

    ingress = by_kind(objects, "Ingress")[0]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == (
        "letsencrypt-prod"
    )
    assert ingress["spec"]["tls"] == [
        {"hosts": ["storeops.example.com"], "secretName": "storeops-tls"}
    ]
    hpa = by_kind(objects, "HorizontalPodAutoscaler")[0]
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert by_kind(objects, "PodDisruptionBudget")[0]["spec"]["maxUnavailable"] == 1


def test_control_plane_optional_features() -> None:
    objects = cp_objects(
        {
            "worker": {"enabled": True, "args": ["worker", "--queues", "all"]},
            "autoscaling": {"enabled": False},
            "podDisruptionBudget": {"enabled": False},
            "ingress": {"tls": {"enabled": False}, "annotations": {"a": "b"}},
            "serviceAccount": {"create": False},
            "config": {"extra": {"STOREOPS_IDEMPOTENCY_TTL_HOURS": "48"}},
            "nodeSelector": {"pool": "storeops"},
            "imagePullSecrets": [{"name": "registry"}],
        }
    )
    kinds = {o["kind"] for o in objects}
    assert "HorizontalPodAutoscaler" not in kinds and "PodDisruptionBudget" not in kinds
    assert "ServiceAccount" not in kinds
    api = named(objects, "Deployment", "-api")
    assert api["spec"]["replicas"] == 2
    assert pod_spec(api)["serviceAccountName"] == "default"
    assert pod_spec(api)["nodeSelector"] == {"pool": "storeops"}
    assert pod_spec(api)["imagePullSecrets"] == [{"name": "registry"}]
    worker = named(objects, "Deployment", "-worker")
    assert container(worker)["args"] == ["worker", "--queues", "all"]
    assert "STOREOPS_DATABASE_URL" in env(container(worker))
    ingress = by_kind(objects, "Ingress")[0]
    assert "tls" not in ingress["spec"]
    assert ingress["metadata"]["annotations"] == {"a": "b"}
    assert by_kind(objects, "ConfigMap")[0]["data"]["STOREOPS_IDEMPOTENCY_TTL_HOURS"] == "48"

    bare = cp_objects(
        {"ingress": {"enabled": False}, "migrations": {"enabled": False}},
        {"fullnameOverride": "cp", "image": {"tag": "1.2.3"}},
    )
    assert {o["kind"] for o in bare} == {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    }
    assert container(named(bare, "Deployment", "cp-api"))["image"].endswith(":1.2.3")


def test_control_plane_example_values() -> None:
    objects = cp_objects(example("control-plane-values.yaml"))
    config = by_kind(objects, "ConfigMap")[0]["data"]
    assert config["STOREOPS_BOOTSTRAP_TOKEN_TTL_SECONDS"] == "1800"
    assert container(named(objects, "Deployment", "-api"))["image"] == (
        "registry.example.com/storeops/storeops:0.1.0"
    )


def test_control_plane_notes_render() -> None:
    notes = chart(CONTROL_PLANE).render(release="storeops", namespace="storeops")["NOTES.txt"]
    assert "storeops tenant helm-values" in notes and "storeops-database" in notes


# --- (c) tenant runtime: rendered objects -------------------------------------------------


def rt_objects(*overrides: dict[str, Any], release: str = "freshmart") -> list[dict[str, Any]]:
    objects = chart(RUNTIME).objects(*overrides, release=release, namespace="storeops-northwind")
    check_objects(objects)
    return objects


def test_runtime_defaults_need_a_tenant() -> None:
    # As `helm install` would: the defaults name no tenant and no control plane.
    with pytest.raises(TemplateError, match=r"tenant\.id is required"):
        chart(RUNTIME).render()
    # As `helm lint` would: missing required values render empty and the YAML stays valid.
    objects = chart(RUNTIME).objects(lint=True)
    assert sorted(o["kind"] for o in objects) == [
        "ConfigMap",
        "Deployment",
        "Deployment",
        "Job",
        "NetworkPolicy",
        "Service",
        "ServiceAccount",
    ]
    assert {w.split(" ")[0] for w in chart(RUNTIME).renderer.warnings} == {
        "tenant.id",
        "controlPlane.url",
    }


def test_runtime_with_helm_values_output() -> None:
    values = tenant_values(image_tag="0.1.0")
    objects = rt_objects(values)
    config = named(objects, "ConfigMap", "freshmart")["data"]
    assert config["STOREOPS_RUNTIME_TENANT_ID"] == "0b5e7c1e-8f7e-4c43-9d0e-2c1f3e4a5b6c"
    assert config["STOREOPS_RUNTIME_CONTROL_PLANE_URL"] == "https://storeops.example.com"
    assert config["STOREOPS_RUNTIME_TOKEN_ISSUER"] == "https://storeops.example.com"
    assert config["STOREOPS_RUNTIME_SECRET_PROVIDER"] == "vault"
    assert config["STOREOPS_RUNTIME_VAULT_ADDR"] == "http://vault.vault.svc:8200"
    runtime = RuntimeSettings.from_env(config)
    assert runtime.sweep_seconds == 1.0 and runtime.worker_threads == 8
    assert runtime.lease_seconds == 60 and runtime.secrets_from == "vault"

    api = named(objects, "Deployment", "freshmart-api")
    worker = named(objects, "Deployment", "freshmart-worker")
    for workload, component in ((api, "api"), (worker, "worker")):
        c = container(workload)
        assert c["image"] == "ghcr.io/storeops/storeops:0.1.0"
        assert secret_ref(c, "STOREOPS_RUNTIME_DATABASE_URL") == (
            "freshmart-database",
            "database-url",
        )
        assert secret_ref(c, "STOREOPS_RUNTIME_REDIS_URL")[0] == "storeops-runtime-redis"
        assert secret_ref(c, "STOREOPS_RUNTIME_CLIENT_ID") == ("freshmart-credentials", "client-id")
        assert secret_ref(c, "STOREOPS_RUNTIME_VAULT_ROLE_ID") == (
            "freshmart-vault-approle",
            "role-id",
        )
        # One wrapped secret_id per component: each can be unwrapped only once.
        assert secret_ref(c, "STOREOPS_RUNTIME_VAULT_WRAPPED_SECRET_ID") == (
            "freshmart-vault-approle",
            f"{component}-wrapped-secret-id",
        )
        assert "STOREOPS_RUNTIME_BOOTSTRAP_TOKEN" not in env(c)
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        role = "storeops-tenant-0b5e7c1e-8f7e-4c43-9d0e-2c1f3e4a5b6c"
        assert annotations["storeops.io/vault-role"] == role
        assert annotations["storeops.io/database"] == "storeops_rt_freshmart"
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert labels["storeops.io/tenant-id"] == "0b5e7c1e-8f7e-4c43-9d0e-2c1f3e4a5b6c"
    ac = container(api)
    assert ac["args"][:2] == ["runtime", "serve"]
    assert ac["args"][ac["args"].index("--host") + 1] == "0.0.0.0"  # noqa: S104 - in a pod
    assert ac["args"][ac["args"].index("--port") + 1] == str(ac["ports"][0]["containerPort"])
    assert http_probe(ac, "livenessProbe") == "/healthz"
    assert http_probe(ac, "readinessProbe") == "/readyz"
    assert container(worker)["args"][:2] == ["runtime", "worker"]

    job = named(objects, "Job", "freshmart-db-upgrade")
    assert hook_phases(job) == HOOK_PHASES
    jc = container(job)
    assert jc["args"] == ["runtime", "db-upgrade"]
    assert env(jc)["STOREOPS_RUNTIME_TENANT_ID"] == "0b5e7c1e-8f7e-4c43-9d0e-2c1f3e4a5b6c"
    assert secret_ref(jc, "STOREOPS_RUNTIME_DATABASE_URL")[0] == "freshmart-database"

    policy = by_kind(objects, "NetworkPolicy")[0]["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "storeops-tenant-runtime",
        "app.kubernetes.io/instance": "freshmart",
    }
    sources = [p["namespaceSelector"]["matchLabels"] for p in policy["ingress"][0]["from"]]
    assert sources == [
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"kubernetes.io/metadata.name": "storeops"},
    ]
    # The defaults allow DNS and the control plane only: unset targets are closed, never open.
    egress = policy["egress"]
    assert [r["ports"][0]["port"] for r in egress] == [53, 8000]
    assert all(r["to"] for r in egress)


def test_runtime_network_policy_from_site_values() -> None:
    values = tenant_values()
    values["networkPolicy"] = {
        "egress": {
            "connectors": [
                {"name": "erp", "cidrs": ["203.0.113.10/32", "203.0.113.11/32"], "ports": [443]}
            ],
            "extraRules": [{"to": [{"ipBlock": {"cidr": "198.51.100.0/24"}}]}],
        }
    }
    objects = rt_objects(example("site-values.yaml"), values)
    policy = by_kind(objects, "NetworkPolicy")[0]["spec"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    } in (policy["ingress"][0]["from"])
    rules = {tuple(p["port"] for p in r.get("ports", [])): r["to"] for r in policy["egress"]}
    assert rules[(53, 53)][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert rules[(5432,)] == [{"ipBlock": {"cidr": "10.20.0.0/24"}}]
    assert rules[(6379,)][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "storeops-data"
    }
    assert rules[(8200,)][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "vault"}}
    assert rules[(443,)] == [
        {"ipBlock": {"cidr": "203.0.113.10/32"}},
        {"ipBlock": {"cidr": "203.0.113.11/32"}},
    ]
    assert rules[()] == [{"ipBlock": {"cidr": "198.51.100.0/24"}}]
    image = container(named(objects, "Deployment", "-api"))["image"]
    assert image == "registry.example.com/storeops/storeops:0.1.0"


def test_runtime_broker_bootstrap_and_optional_features() -> None:
    values = tenant_values(Settings(public_url="https://cp.example.com"))
    assert values["secrets"] == {"provider": "broker"}
    objects = rt_objects(
        values,
        {
            "controlPlane": {"auth": "bootstrapToken"},
            "redis": {"url": "redis://redis.storeops-data:6379/0"},
            "worker": {"replicas": 3},
            "ingress": {"enabled": True, "host": "freshmart.shops.example.com"},
            "runtime": {
                "bindings": {"erp": {"base_url": "https://erp.example.com", "auth": {}}},
                "desiredState": {"deployments": {}, "stores": {}},
                "webhookSecrets": {"existingSecret": "freshmart-webhooks"},
                "extra": {"STOREOPS_RUNTIME_HEARTBEAT_SECONDS": "15"},
            },
        },
    )
    config = named(objects, "ConfigMap", "freshmart")["data"]
    assert config["STOREOPS_RUNTIME_SECRET_PROVIDER"] == "broker"
    assert "STOREOPS_RUNTIME_VAULT_ADDR" not in config
    assert config["STOREOPS_RUNTIME_REDIS_URL"] == "redis://redis.storeops-data:6379/0"
    assert config["STOREOPS_RUNTIME_BINDINGS"] == (
        '{"erp":{"auth":{},"base_url":"https://erp.example.com"}}'
    )
    assert config["STOREOPS_RUNTIME_HEARTBEAT_SECONDS"] == "15"
    runtime = RuntimeSettings.from_env(config)
    assert runtime.bindings == {"erp": {"base_url": "https://erp.example.com", "auth": {}}}
    assert runtime.heartbeat_seconds == 15.0 and runtime.secrets_from == "broker"
    desired = named(objects, "ConfigMap", "freshmart-desired")["data"]["desired.json"]
    assert desired == '{"deployments":{},"stores":{}}'
    assert config["STOREOPS_RUNTIME_DESIRED_FILE"] == "/etc/storeops/desired/desired.json"

    api = container(named(objects, "Deployment", "freshmart-api"))
    worker_deployment = named(objects, "Deployment", "freshmart-worker")
    worker = container(worker_deployment)
    assert worker_deployment["spec"]["replicas"] == 3
    for c in (api, worker):
        assert secret_ref(c, "STOREOPS_RUNTIME_TOKEN") == ("freshmart-runtime-token", "token")
        assert secret_ref(c, "STOREOPS_RUNTIME_WEBHOOK_SECRETS")[0] == "freshmart-webhooks"
        assert not {"STOREOPS_RUNTIME_REDIS_URL", "STOREOPS_RUNTIME_CLIENT_ID"} & set(env(c))
        assert not any(k.startswith("STOREOPS_RUNTIME_VAULT") for k in env(c))
        assert {"mountPath": "/etc/storeops/desired", "name": "desired", "readOnly": True} in (
            c["volumeMounts"]
        )
    # The bootstrap token is spent by `runtime serve` only.
    assert secret_ref(api, "STOREOPS_RUNTIME_BOOTSTRAP_TOKEN") == (
        "freshmart-bootstrap",
        "bootstrap-token",
    )
    assert "STOREOPS_RUNTIME_BOOTSTRAP_TOKEN" not in env(worker)

    ingress = by_kind(objects, "Ingress")[0]
    assert ingress["spec"]["rules"][0]["host"] == "freshmart.shops.example.com"
    assert ingress["spec"]["tls"][0]["secretName"] == "freshmart-tls"
    policy = by_kind(objects, "NetworkPolicy")[0]["spec"]
    assert 8200 not in [r["ports"][0]["port"] for r in policy["egress"]]


def test_runtime_switched_off_parts() -> None:
    objects = rt_objects(
        tenant_values(),
        {
            "worker": {"enabled": False},
            "networkPolicy": {"enabled": False},
            "migrations": {"enabled": False},
            "serviceAccount": {"create": False, "name": "shared-runtime"},
        },
    )
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "Deployment", "Service"]
    assert pod_spec(objects[1])["serviceAccountName"] == "shared-runtime"
    with pytest.raises(TemplateError, match=r"ingress\.host is required"):
        chart(RUNTIME).render(tenant_values(), {"ingress": {"enabled": True}}, release="x")


def test_runtime_long_release_names_stay_within_limits() -> None:
    release = "a-retailer-with-a-very-long-slug-that-helm-just-takes"
    assert len(release) == 53
    objects = rt_objects(tenant_values(), release=release)
    # check_objects holds every name to 63 characters and (kind, name) to one object.
    assert {o["metadata"]["name"] for o in by_kind(objects, "Deployment")} == {
        f"{release}-api",
        f"{release}-worker",
    }


def test_runtime_notes_render() -> None:
    notes = chart(RUNTIME).render(tenant_values(), release="freshmart", namespace="nw")["NOTES.txt"]
    assert "freshmart-credentials: client-id, client-secret" in notes
    assert "freshmart-vault-approle: role-id" in notes
    assert "storeops_rt_freshmart" in notes
    assert "Retailer:      FreshMart Groceries, partner northwind" in notes
