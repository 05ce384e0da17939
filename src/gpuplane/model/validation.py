"""Validate Kubernetes objects against the API server's schemas before anything is applied.

Kubernetes' own kinds are checked with ``kubernetes-validate`` in strict mode
(unknown fields are errors) against the OpenAPI schema of one Kubernetes
minor version. Kueue and Kyverno kinds, and the vcluster chart's values, are
checked against JSON Schemas vendored in ``gpuplane/data/schemas`` (their
README names the upstream sources).

Neither runs the API server's semantic checks or CEL rules: a valid object
here can still be rejected, for example for a duplicate name.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils

__all__ = ["SCHEMA_KINDS", "has_schema", "kubernetes_minor", "validate_object", "validate_vcluster_values"]

# Vendored schema file of each (apiVersion, kind) that kubernetes-validate does not cover.
SCHEMA_KINDS: dict[tuple[str, str], str] = {
    ("kueue.x-k8s.io/v1beta2", "ResourceFlavor"): "kueue.x-k8s.io-v1beta2-resourceflavor.json",
    ("kueue.x-k8s.io/v1beta2", "ClusterQueue"): "kueue.x-k8s.io-v1beta2-clusterqueue.json",
    ("kueue.x-k8s.io/v1beta2", "Cohort"): "kueue.x-k8s.io-v1beta2-cohort.json",
    ("kueue.x-k8s.io/v1beta2", "LocalQueue"): "kueue.x-k8s.io-v1beta2-localqueue.json",
    ("kueue.x-k8s.io/v1beta2", "WorkloadPriorityClass"): "kueue.x-k8s.io-v1beta2-workloadpriorityclass.json",
    ("policies.kyverno.io/v1", "ValidatingPolicy"): "policies.kyverno.io-v1-validatingpolicy.json",
}
_VCLUSTER_VALUES = "vcluster-values.schema.json"
_MINOR = re.compile(r"^v?(\d+)\.(\d+)(?:\.\d+)?$")


def kubernetes_minor(version: str) -> str:
    """Return ``major.minor`` of a Kubernetes version such as ``1.35`` or ``v1.35.2``.

    Raises ValueError for anything else.
    """
    match = _MINOR.match(version.strip())
    if match is None:
        raise ValueError(f"{version!r} is not a Kubernetes version; write it as 1.35 or 1.35.2")
    return f"{match.group(1)}.{match.group(2)}"


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    text = resources.files("gpuplane.data.schemas").joinpath(name).read_text(encoding="utf-8")
    return jsonschema.Draft202012Validator(json.loads(text))


def _schema_errors(validator: jsonschema.Draft202012Validator, data: Any) -> list[str]:
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(part) for part in error.absolute_path) or "(object)"
        problems.append(f"{where}: {error.message}")
    return problems


def validate_object(data: dict[str, Any], kubernetes_version: str) -> list[str]:
    """Return the schema problems of one object; an empty list means it is valid.

    Raises ValueError when ``kubernetes_version`` is not one kubernetes-validate
    has schemas for.
    """
    key = (str(data.get("apiVersion")), str(data.get("kind")))
    if key in SCHEMA_KINDS:
        return _schema_errors(_validator(SCHEMA_KINDS[key]), data)
    minor = kubernetes_minor(kubernetes_version)
    try:
        kubernetes_validate.validate(data, minor, strict=True)
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"no schema for {key[1]} {key[0]} in Kubernetes {minor}: {error}"]
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path) or "(object)"
        return [f"{where}: {error.message}"]
    except (kubernetes_validate.utils.VersionNotSupportedError, kubernetes_validate.InvalidSchemaError) as error:
        raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {minor}: {error}") from error
    return []


@cache
def has_schema(api_version: str, kind: str, kubernetes_version: str) -> bool:
    """Tell whether :func:`validate_object` has a schema for objects of this apiVersion and kind.

    An invalid or unsupported ``kubernetes_version`` counts as having one,
    because :func:`validate_object` reports the version itself.
    """
    if (api_version, kind) in SCHEMA_KINDS:
        return True
    try:
        # An object with only apiVersion and kind is enough to find the schema; its other errors do not matter.
        kubernetes_validate.validate({"apiVersion": api_version, "kind": kind}, kubernetes_minor(kubernetes_version),
                                     strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    except (kubernetes_validate.ValidationError, kubernetes_validate.utils.VersionNotSupportedError,
            kubernetes_validate.InvalidSchemaError, ValueError):
        return True
    return True


def validate_vcluster_values(values: dict[str, Any]) -> list[str]:
    """Return the problems of vcluster Helm chart values against the chart's schema."""
    return _schema_errors(_validator(_VCLUSTER_VALUES), values)
