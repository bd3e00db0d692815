"""deploy/kubernetes/: the manifests hold together (structure, not a cluster: none runs here).

Every document has apiVersion, kind and metadata.name; every container an image and a command,
resources and a non-root security context; every Secret a pod names exists; the Service selects
the Job's pods on the port the master binds; the workers reach the master by the Service's
name and port and are as many as the Job waits for; the token comes from the Secret, never a
literal value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def _docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text("utf-8")) if d is not None)
    return docs


def _one(kind: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}s"
    return found[0]


def _arg(command: list[str], flag: str) -> str:
    """The value of ``--flag VALUE`` or ``--flag=VALUE`` in ``command``."""
    for i, word in enumerate(command):
        if word == flag:
            return command[i + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"{flag} not in {command}")


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return _docs()


def test_every_document_is_a_named_kubernetes_object(docs: list[dict[str, Any]]) -> None:
    assert {d["kind"] for d in docs} == {"Job", "Deployment", "Service", "Secret"}
    for doc in docs:
        assert isinstance(doc.get("apiVersion"), str) and doc["apiVersion"]
        assert doc["metadata"]["name"]
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names))


def _pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Job", "Deployment")]


def test_containers_have_image_command_resources_and_run_as_non_root(
    docs: list[dict[str, Any]],
) -> None:
    for pod in _pod_specs(docs):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            assert container["image"] and isinstance(container["command"], list)
            assert all(isinstance(word, str) for word in container["command"])
            assert container["resources"]["requests"]["cpu"]
            assert container["resources"]["requests"]["memory"]
            assert container["resources"]["limits"]["memory"]
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]


def test_every_secret_a_pod_names_exists_and_the_token_is_never_literal(
    docs: list[dict[str, Any]],
) -> None:
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    for pod in _pod_specs(docs):
        for container in pod["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            token = env["STAGEGATE_WORKER_TOKEN"]
            assert "value" not in token  # from the Secret only
            ref = token["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "stagegate-worker-token"
            for entry in env.values():
                if "valueFrom" in entry:
                    ref = entry["valueFrom"]["secretKeyRef"]
                    assert ref["name"] in secrets, ref["name"]
                    assert ref["key"] in secrets[ref["name"]]["stringData"]
    placeholder = secrets["stagegate-worker-token"]["stringData"]["token"]
    assert placeholder.startswith("REPLACE-ME") and len(placeholder) >= 16


def test_the_workers_reach_the_master_through_the_service(docs: list[dict[str, Any]]) -> None:
    job, workers, service = (_one(k, docs) for k in ("Job", "Deployment", "Service"))
    gate = job["spec"]["template"]["spec"]["containers"][0]
    command = gate["command"]
    assert command[0] == "pytest" and "--gate" in command
    assert _arg(command, "--target") == "staging"
    host, port = _arg(command, "--gate-master-bind").rsplit(":", 1)
    assert host == "0.0.0.0"
    # the Service selects the Job's pods, on the port the master binds
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    selector = service["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
    (service_port,) = service["spec"]["ports"]
    ports = {p["name"]: p["containerPort"] for p in gate["ports"]}
    assert ports[service_port["targetPort"]] == int(port) == service_port["port"]
    # the workers name the Service and its port, and are as many as the Job waits for
    worker = workers["spec"]["template"]["spec"]["containers"][0]["command"]
    assert worker[:2] == ["stagegate", "worker"]
    assert _arg(worker, "--master-host") == service["metadata"]["name"]
    assert int(_arg(worker, "--master-port")) == service_port["port"]
    assert _arg(worker, "--target") == "staging"
    assert workers["spec"]["replicas"] == int(_arg(command, "--gate-remote-workers"))
    # the Deployment's selector matches its own pods, not the gate's
    own = workers["spec"]["template"]["metadata"]["labels"]
    assert workers["spec"]["selector"]["matchLabels"].items() <= own.items()
    assert not selector.items() <= own.items()
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
