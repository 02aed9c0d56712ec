"""The scaffold's Kubernetes manifests (`k8s/`): valid against the Kubernetes API schemas
(kubernetes-validate's bundled ones, strict: an unknown field fails), consistent with each
other and with the runtime's drain, and the pod-IP advertising they rely on works.
"""

from __future__ import annotations

import inspect
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import micro
from tests.tooling.helpers import BIN, GOLDEN_HELLO, ROOT, env, micro_new

# the oldest Kubernetes still supported upstream when this was written, and the newest known
# to the validator: gRPC probes are GA since 1.27, so both accept the manifests
VERSIONS = ("1.31.0", kubernetes_validate.latest_version())


def manifests(project: Path) -> dict[str, dict[str, Any]]:
    """kind -> the one document of that kind under k8s/."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((project / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["kind"] not in found, f"{path}: a second {doc['kind']}"
            found[doc["kind"]] = doc
    assert set(found) == {"ConfigMap", "Deployment", "Service"}, set(found)
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_manifests_validate_against_the_kubernetes_schemas(version: str) -> None:
    for kind, doc in manifests(GOLDEN_HELLO).items():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:  # pragma: no cover - the failure
            pytest.fail(f"{kind} is not valid for Kubernetes {version}: {exc.message}")


def test_the_validator_rejects_a_broken_manifest() -> None:
    deployment = manifests(GOLDEN_HELLO)["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"]["grpc"]["port"] = "grpc"  # grpc probes take a number only
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)
    container["readinessProbe"]["grpc"] = {"port": 8080, "servise": ""}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_the_documented_manifests_validate() -> None:
    """docs/kubernetes.md's manifests (a YAML fence after `<!-- k8s-validate -->`)."""
    text = (ROOT / "docs/kubernetes.md").read_text()
    blocks = re.findall(r"^<!-- k8s-validate -->\n```yaml\n(.*?)^```$", text, re.M | re.S)
    docs = [doc for block in blocks for doc in yaml.safe_load_all(block)]
    assert [doc["kind"] for doc in docs] == ["Deployment", "Service"]
    for doc in docs:
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item for item in container["env"]}


def test_manifests_agree_with_each_other_and_the_runtime() -> None:
    docs = manifests(GOLDEN_HELLO)
    deployment, service, config = docs["Deployment"], docs["Service"], docs["ConfigMap"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert service["spec"]["selector"] == labels
    (container,) = pod["spec"]["containers"]

    # one port everywhere: the address the service binds, the probes, the Service's target
    (port,) = container["ports"]
    variables = _env(container)
    bind = variables["MICRO_SERVER_ADDRESS"]["value"]
    assert bind == f"0.0.0.0:{port['containerPort']}"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": port["containerPort"]}, probe
    (target,) = service["spec"]["ports"]
    assert target["targetPort"] == port["name"]
    dockerfile = (GOLDEN_HELLO / "Dockerfile").read_text()
    assert f"EXPOSE {port['containerPort']}" in dockerfile

    # the pod registers its own IP, and the registry and broker come from the ConfigMap
    assert variables["MICRO_SERVER_ADVERTISE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "status.podIP"}
    }
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    assert config["data"]["MICRO_REGISTRY"] == config["data"]["MICRO_BROKER"] == "nats"
    assert "'.[nats]'" in dockerfile  # the image has nats-py for them

    # Kubernetes kills the pod only after preStop and the service's whole drain
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = inspect.signature(micro.Service.run).parameters["grace"].default
    assert pod["spec"]["terminationGracePeriodSeconds"] > float(pre_stop[1]) + drain
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}


def test_another_name_writes_its_own_names(tmp_path: Path) -> None:
    result = micro_new("order-history", "--micro-source", "index", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    docs = manifests(tmp_path / "order-history")
    for doc in docs.values():
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)
    assert docs["Deployment"]["metadata"]["name"] == "order-history"
    assert docs["ConfigMap"]["metadata"]["name"] == "order-history-micro"
    assert docs["Service"]["metadata"]["name"] == "order-history"


def test_a_wildcard_bind_registers_the_advertised_host(tmp_path: Path) -> None:
    """What the Deployment does with the pod IP, with a loopback address standing in."""
    project = tmp_path / "hello"
    shutil.copytree(GOLDEN_HELLO, project)
    environ = {
        **env(),
        "MICRO_REGISTRY": "local",
        "MICRO_REGISTRY_PATH": str(tmp_path / "registry.db"),
        "PYTHONUNBUFFERED": "1",
    }
    server = subprocess.Popen(
        [str(BIN / "python"), "main.py"],
        cwd=project,
        env={**environ, "MICRO_SERVER_ADDRESS": "0.0.0.0:0", "MICRO_SERVER_ADVERTISE": "127.0.0.3"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        assert re.fullmatch(r"serving hello on 127\.0\.0\.3:\d+\n", first), first
        client = subprocess.run(
            [str(BIN / "python"), "client.py"],
            cwd=project,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert client.returncode == 0, client.stderr
        assert client.stdout.splitlines()[0] == "Hello world"
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
    assert code == 0
