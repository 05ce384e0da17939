"""Render: every example validates, output is deterministic and atomic, YAML survives a YAML 1.1 reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from builders import EXAMPLES, base_platform, copy_of, tenant, write_spec
from gpuplane.model.errors import InputErrors, SpecError
from gpuplane.model.objects.kueue import KUEUE_GROUP
from gpuplane.model.platform.load import load_platform, load_platform_objects
from gpuplane.model.validation import validate_object, validate_vcluster_values
from gpuplane.model.yamlio import load_documents
from gpuplane.surfaces.cli import app
from gpuplane.surfaces.render import render_spec

EXAMPLE_SPECS = sorted(EXAMPLES.glob("*/platform.yaml"))


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _objects(folder: Path) -> list[tuple[Path, dict[str, object]]]:
    found = []
    for path in sorted(folder.rglob("*.yaml")):
        if path.name in {"kustomization.yaml", "values.yaml"}:
            continue
        found.extend((path, document.data) for document in load_documents(path))
    return found


def test_examples_exist() -> None:
    assert EXAMPLE_SPECS, "no example specs found under examples/"


@pytest.mark.parametrize("engine", ["vap", "kyverno"])
@pytest.mark.parametrize("spec", EXAMPLE_SPECS, ids=lambda p: p.parent.name)
def test_example_objects_validate(spec: Path, engine: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = render_spec(spec, out, engine=engine)  # type: ignore[arg-type]
    version = load_platform(spec).platform.spec.kubernetes_version
    objects = _objects(out)
    assert len(objects) == summary.validated
    for path, data in objects:
        problems = validate_object(data, version)
        assert problems == [], f"{path}: {problems}"
    for values in out.rglob("values.yaml"):
        for document in load_documents(values):
            assert validate_vcluster_values(document.data) == [], values


def test_example_kinds_are_all_present(tmp_path: Path) -> None:
    summary = render_spec(EXAMPLES / "university" / "platform.yaml", tmp_path / "out")
    expected = {"Namespace", "Role", "RoleBinding", "ResourceQuota", "LimitRange", "NetworkPolicy", "ResourceFlavor",
                "Cohort", "ClusterQueue", "LocalQueue", "WorkloadPriorityClass", "PriorityClass", "DeviceClass",
                "Deployment", "PodDisruptionBudget", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                "Job"}
    assert expected <= set(summary.objects)


def test_nodes_are_written_for_simulation_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_spec(EXAMPLES / "university" / "platform.yaml", out)
    node_files = {path.relative_to(out).as_posix() for path in out.rglob("*.yaml")
                  if any(d.data.get("kind") == "Node" for d in load_documents(path))}
    assert node_files == {"campus/simulation/nodes.yaml"}
    listed = [resource for path in out.rglob("kustomization.yaml") for d in load_documents(path)
              for resource in d.data.get("resources", [])]
    assert not any("simulation" in resource for resource in listed)


@pytest.mark.parametrize("spec", EXAMPLE_SPECS, ids=lambda p: p.parent.name)
def test_render_is_deterministic(spec: Path, tmp_path: Path) -> None:
    render_spec(spec, tmp_path / "first")
    render_spec(spec, tmp_path / "second")
    assert _files(tmp_path / "first") == _files(tmp_path / "second")


@pytest.mark.parametrize("spec", EXAMPLE_SPECS, ids=lambda p: p.parent.name)
def test_rendered_folder_has_the_specs_kueue_objects(spec: Path, tmp_path: Path) -> None:
    render_spec(spec, tmp_path / "out")
    platform = load_platform(spec).platform
    for cluster in platform.spec.clusters:
        from_spec = load_platform_objects(spec, cluster=cluster.name)
        from_folder = load_platform_objects(tmp_path / "out" / cluster.name)

        def kueue(objects: list[object]) -> list[tuple[str, str, dict[str, object]]]:
            return sorted(((o.kind, o.key, o.model_dump(mode="json")) for o in objects  # type: ignore[attr-defined]
                           if o.api_version.startswith(KUEUE_GROUP)), key=lambda t: (t[0], t[1]))  # type: ignore[attr-defined]

        spec_objects = kueue(from_spec.objects)
        folder_objects = kueue(from_folder.objects)
        assert [key for _, key, _ in spec_objects] == [key for _, key, _ in folder_objects]
        assert spec_objects == folder_objects


def test_label_values_survive_yaml_1_1_reader(tmp_path: Path) -> None:
    platform = base_platform()
    labels = {"gpuplane.dev/a": "on", "gpuplane.dev/b": "y", "gpuplane.dev/c": "1e3", "gpuplane.dev/d": "0755",
              "gpuplane.dev/e": "no", "gpuplane.dev/f": "12"}
    tenant(platform)["labels"] = labels
    render_spec(write_spec(tmp_path, platform), tmp_path / "out")
    text = (tmp_path / "out" / "lab" / "tenants" / "team" / "namespaces.yaml").read_text()
    reader = YAML(typ="safe", pure=True)
    reader.version = (1, 1)
    namespace = reader.load(text)
    for key, value in labels.items():
        assert namespace["metadata"]["labels"][key] == value
        assert isinstance(namespace["metadata"]["labels"][key], str)


def test_output_folder_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = write_spec(tmp_path, base_platform())
    render_spec(spec, out)
    (out / "stale.yaml").write_text("kind: Stale\n")
    render_spec(spec, out)
    assert not (out / "stale.yaml").exists()
    assert (out / "lab" / "kustomization.yaml").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "platform.yaml"]


def test_failed_render_leaves_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    render_spec(write_spec(tmp_path, base_platform()), out)
    before = _files(out)
    platform = base_platform()
    tenant(platform)["serving"][0]["image"] = ""
    with pytest.raises(SpecError, match="no image"):
        render_spec(write_spec(tmp_path, platform), out)
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "platform.yaml"]


def test_malformed_spec_names_file_line_field(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["quotas"][0]["resources"]["cpu"]["nominalQuota"] = "lots"
    spec = write_spec(tmp_path, platform)
    line = next(number for number, text in enumerate(spec.read_text().splitlines(), 1) if "lots" in text)
    result = CliRunner().invoke(app, ["render", str(spec), "-o", str(tmp_path / "out")], catch_exceptions=True)
    assert result.exit_code != 0
    assert isinstance(result.exception, InputErrors)
    error = result.exception.errors[0]
    assert error.location.source == str(spec)
    assert error.location.line == line
    assert error.location.field == "spec.tenants[0].quotas[0].resources.cpu.nominalQuota"
    assert "lots" in str(error)


def test_cli_prints_input_error_without_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    platform = base_platform()
    tenant(platform)["isolation"] = "hard"
    spec = write_spec(tmp_path, platform)
    result = subprocess.run([sys.executable, "-c", "from gpuplane.surfaces.cli import main; main()", "render",
                             str(spec), "-o", str(tmp_path / "out")], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{spec}:" in result.stderr
    assert "spec.tenants[0].isolation" in result.stderr


def test_vcluster_tenant_needs_one_namespace(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform).update({"isolation": "vcluster", "namespaces": ["a", "b"]})
    with pytest.raises(SpecError, match="exactly one host namespace"):
        render_spec(write_spec(tmp_path, platform), tmp_path / "out")


def test_quota_is_derived_from_kueue_quotas(tmp_path: Path) -> None:
    platform = base_platform()
    tenant(platform)["allowedDeviceClasses"] = ["gpu.nvidia.com"]
    render_spec(write_spec(tmp_path, platform), tmp_path / "out")
    [quota] = load_documents(tmp_path / "out" / "lab" / "tenants" / "team" / "resourcequotas.yaml")
    hard = quota.data["spec"]["hard"]
    assert hard["requests.nvidia.com/gpu"] == "8"
    assert hard["gpu.nvidia.com.deviceclass.resource.k8s.io/devices"] == "8"
    assert hard["requests.cpu"] == "64"
    assert hard["requests.memory"] == "512Gi"
    assert "nvidia.com/gpu" not in hard


def test_borrowing_limit_raises_quota_ceiling(tmp_path: Path) -> None:
    platform = copy_of(base_platform())
    tenant(platform)["quotas"][0]["resources"]["nvidia.com/gpu"]["borrowingLimit"] = 4
    platform["spec"]["tenants"].append({"name": "other", "cohort": "all", "quotas": [
        {"flavor": "gpu", "resources": {"nvidia.com/gpu": {"nominalQuota": 8}}}]})
    render_spec(write_spec(tmp_path, platform), tmp_path / "out")
    [team] = load_documents(tmp_path / "out" / "lab" / "tenants" / "team" / "resourcequotas.yaml")
    [other] = load_documents(tmp_path / "out" / "lab" / "tenants" / "other" / "resourcequotas.yaml")
    assert team.data["spec"]["hard"]["requests.nvidia.com/gpu"] == "12"
    assert other.data["spec"]["hard"]["requests.nvidia.com/gpu"] == "16"


def test_network_policies_deny_allow_dns_and_tenant(tmp_path: Path) -> None:
    render_spec(write_spec(tmp_path, base_platform()), tmp_path / "out")
    documents = load_documents(tmp_path / "out" / "lab" / "tenants" / "team" / "networkpolicies.yaml")
    policies = {d.data["metadata"]["name"]: d.data["spec"] for d in documents}
    assert policies["gpuplane-default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = policies["gpuplane-allow-dns"]["egress"][0]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
    same = policies["gpuplane-allow-same-tenant"]
    assert same["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {"gpuplane.dev/tenant": "team"}


def test_kustomizations_list_every_file(tmp_path: Path) -> None:
    render_spec(EXAMPLES / "university" / "platform.yaml", tmp_path / "out")
    for kustomization in (tmp_path / "out").rglob("kustomization.yaml"):
        [document] = load_documents(kustomization)
        for resource in document.data.get("resources", []):
            assert (kustomization.parent / resource).exists(), f"{kustomization}: {resource}"
        if kustomization.parent.parent.name in {"tenants", "platform"} or kustomization.parent.name == "platform":
            listed = set(document.data["resources"])
            present = {p.name for p in kustomization.parent.glob("*.yaml")} - {"kustomization.yaml"}
            assert listed == present


def test_university_readme_numbers_match_render(tmp_path: Path) -> None:
    spec = EXAMPLES / "university" / "platform.yaml"
    vap = render_spec(spec, tmp_path / "vap")
    kyverno = render_spec(spec, tmp_path / "kyverno", engine="kyverno")
    text = " ".join((EXAMPLES / "university" / "README.md").read_text().split())
    assert f"`render` writes {vap.files} files" in text
    assert f"validates {vap.validated} objects with the default" in text
    assert f"{vap.objects['Node']} of them the Nodes" in text
    assert f"the same {kyverno.files} files and validates {kyverno.validated} objects" in text


def _with_extra(tmp_path: Path, *extra: dict[str, object]) -> Path:
    from gpuplane.model.yamlio import dump_documents

    path = tmp_path / "platform.yaml"
    path.write_text(dump_documents([base_platform(), *extra]), encoding="utf-8")
    return path


_EXTRA_CLASS = {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": "any-gpu.example"},
                "spec": {"selectors": [{"cel": {"expression": "device.driver == 'gpu.nvidia.com'"}}]}}
_EXTRA_CONFIG = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "notes", "namespace": "team"},
                 "data": {"owner": "team"}}


def test_objects_next_to_the_platform_are_rendered(tmp_path: Path) -> None:
    render_spec(_with_extra(tmp_path, _EXTRA_CLASS, _EXTRA_CONFIG), tmp_path / "out")
    out = tmp_path / "out" / "lab"
    classes = [d.data["metadata"]["name"] for d in load_documents(out / "platform" / "deviceclasses.yaml")]
    assert "any-gpu.example" in classes
    [config] = load_documents(out / "tenants" / "team" / "objects.yaml")
    assert config.data == _EXTRA_CONFIG
    kustomization = load_documents(out / "tenants" / "team" / "kustomization.yaml")[0].data
    assert "objects.yaml" in kustomization["resources"]


def test_object_next_to_the_platform_may_not_replace_a_generated_one(tmp_path: Path) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    spec = _with_extra(tmp_path, namespace)
    with pytest.raises(SpecError) as caught:
        render_spec(spec, tmp_path / "out")
    assert "Namespace team is written next to the Platform" in caught.value.problem
    assert caught.value.location.source == str(spec)
    assert caught.value.location.line is not None
    assert not (tmp_path / "out").exists()
