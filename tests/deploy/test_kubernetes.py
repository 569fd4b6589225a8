"""The Kubernetes manifests: valid against the Kubernetes API schemas, hardened, probed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes_validate import utils as kubernetes

from config.settings import load_settings, parse_listen
from tests.deploy.assets import KUBERNETES, load_yaml, load_yaml_all

# The oldest Kubernetes release still commonly supported; the manifests use nothing newer.
KUBERNETES_VERSION = "1.29"


def manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, document)
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in load_yaml_all(path)
    ]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [document for _, document in manifests() if document["kind"] == kind]


def pod_specs() -> list[dict[str, Any]]:
    return [d["spec"]["template"]["spec"] for d in by_kind("Deployment") + by_kind("Job")]


@pytest.mark.parametrize(("name", "document"), manifests(), ids=lambda v: str(v)[:30])
def test_every_manifest_is_valid_for_the_kubernetes_api(name: str, document: Any) -> None:
    # strict: unknown fields (a typo in a key) are errors, as the API server makes them.
    kubernetes.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_misspelt_field() -> None:
    (deployment,) = by_kind("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes.ValidationError, match="readinesProbe"):
        kubernetes.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomize_applies_every_manifest_but_the_example_secret() -> None:
    # Applying the example Secret with the rest would overwrite the real one, created with
    # kubectl beforehand, with its placeholders.
    kustomization = load_yaml(KUBERNETES / "kustomization.yaml")
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files - {"secret.yaml"}


def test_several_replicas_share_postgresql() -> None:
    (deployment,) = by_kind("Deployment")
    assert deployment["spec"]["replicas"] >= 2
    (secret,) = by_kind("Secret")
    assert secret["stringData"]["CMSCAN_DATABASE_URL"].startswith("postgresql")


@pytest.mark.parametrize("spec", pod_specs(), ids=["daemon", "db-upgrade"])
def test_pods_run_unprivileged_on_a_read_only_root(spec: dict[str, Any]) -> None:
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] >= 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert "memory" in container["resources"]["limits"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts  # the only scratch space on a read-only root


def test_the_daemon_is_probed_and_scraped_where_it_listens() -> None:
    (deployment,) = by_kind("Deployment")
    template = deployment["spec"]["template"]
    (container,) = template["spec"]["containers"]
    environment = {e["name"]: e.get("value") for e in container["env"]}
    host, port = parse_listen(environment["CMSCAN_DAEMON__LISTEN"])
    assert host == "0.0.0.0"
    assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    # Time for in-flight probes to finish (daemon.grace) and results to be written.
    assert template["spec"]["terminationGracePeriodSeconds"] > 30
    (service,) = by_kind("Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_config_and_secrets_are_wired_to_every_pod() -> None:
    (config_map,) = by_kind("ConfigMap")
    (secret,) = by_kind("Secret")
    for spec in pod_specs():
        (container,) = spec["containers"]
        assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]


def test_the_configuration_loads_with_the_secret_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (config_map,) = by_kind("ConfigMap")
    (secret,) = by_kind("Secret")
    path = tmp_path / "cmscan.toml"
    path.write_text(config_map["data"]["cmscan.toml"], encoding="utf-8")
    for name, value in secret["stringData"].items():
        monkeypatch.setenv(name, value)
    settings = load_settings(config_file=path)
    assert settings.database_url == secret["stringData"]["CMSCAN_DATABASE_URL"]
    profile = settings.credentials["default"]
    assert profile.password_env in secret["stringData"]
    assert settings.ssh.known_hosts == Path("/etc/cmscan/known_hosts")
    assert "known_hosts" in config_map["data"]
