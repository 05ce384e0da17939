"""Helm values of the vcluster chart for a hard (``vcluster``) tenant.

The virtual cluster runs in the tenant's host namespace. gpuplane renders
the host-side ResourceQuota and LimitRange itself, so the chart's own
``policies.resourceQuota`` and ``policies.limitRange`` are switched off; the
chart's NetworkPolicy is switched on because it knows which traffic its
control plane needs. Keys follow the vcluster chart 0.2x-0.3x values schema.
"""

from __future__ import annotations

from typing import Any

from gpuplane.model.platform.spec import ClusterSpec, Tenant

__all__ = ["vcluster_values"]

_NODE_POOL_LABEL = "gpuplane.dev/node-pool"


def _toleration(key: str, value: str, effect: str) -> str:
    """Write a toleration in the chart's ``key[=value]:Effect`` form."""
    return f"{key}={value}:{effect}" if value else f"{key}:{effect}"


def vcluster_values(tenant: Tenant, cluster: ClusterSpec) -> dict[str, Any]:
    """Return the chart values that give ``tenant`` its own control plane on the host's nodes."""
    pods: dict[str, Any] = {"enabled": True}
    pools = [pool for pool in cluster.node_pools if pool.name in tenant.vcluster.node_pools]
    tolerations = sorted({_toleration(t.key, t.value, t.effect) for pool in pools for t in pool.taints})
    if tolerations:
        pods["enforceTolerations"] = tolerations
    if tenant.priority_class:
        pods["priorityClassName"] = tenant.priority_class
    from_host: dict[str, Any] = {"priorityClasses": {"enabled": True}}
    if len(pools) == 1:
        # The chart also puts this selector on every pod it syncs to the host,
        # which pins the tenant to its pool.
        from_host["nodes"] = {"enabled": True, "selector": {"labels": {_NODE_POOL_LABEL: pools[0].name}}}
    # NOTE: with several pools the chart's label selector cannot express
    # "any of these pools", so nodes are not synced and pods are not pinned.
    if tenant.allowed_device_classes:
        from_host["deviceClasses"] = {"enabled": True}
    return {
        "controlPlane": {"distro": {"k8s": {"enabled": True}}},
        "sync": {"toHost": {"pods": pods}, "fromHost": from_host},
        "policies": {
            "resourceQuota": {"enabled": False},
            "limitRange": {"enabled": False},
            "networkPolicy": {"enabled": True},
        },
    }
