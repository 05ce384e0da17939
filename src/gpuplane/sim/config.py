"""Kueue configuration for the engine, read from a Scenario's ``kueue`` block."""

from __future__ import annotations

from gpuplane.decisions.quota.engine import AdmissionFairSharingConfig, FairSharingConfig, KueueConfig
from gpuplane.decisions.quota.requests import RequestPolicy, ResourceTransformation
from gpuplane.decisions.quota.scheduler import SchedulerConfig
from gpuplane.model.scenario import Scenario

__all__ = ["kueue_config_from_scenario", "request_policy_from_scenario"]


def kueue_config_from_scenario(scenario: Scenario) -> KueueConfig:
    """Translate the scenario's Kueue settings and feature gates into the engine's configuration."""
    kueue = scenario.spec.kueue
    gates = kueue.feature_gates
    fair = None
    if kueue.fair_sharing is not None:
        fair = FairSharingConfig(tuple(kueue.fair_sharing.preemption_strategies))
    afs = None
    if kueue.admission_fair_sharing is not None:
        block = kueue.admission_fair_sharing
        afs = AdmissionFairSharingConfig(block.usage_half_life_time, block.usage_sampling_interval,
                                         dict(block.resource_weights))
    scheduler = SchedulerConfig(
        partial_admission=gates.get("PartialAdmission", True),
        equivalence_hashing=gates.get("SchedulingEquivalenceHashing", True),
        preserve_scan_progress=gates.get("FlavorFungibilityPreserveScanProgress", True),
        recompute_on_overlap=gates.get("RecomputeAssignmentUponPreemptionTargetsOverlap", True),
        priority_sorting_within_cohort=gates.get("PrioritySortingWithinCohort", True),
        ignore_undeclared=(kueue.resources.quota_check_strategy == "IgnoreUndeclared"
                           and gates.get("QuotaCheckStrategy", True)),
    )
    return KueueConfig(fair_sharing=fair, admission_fair_sharing=afs, scheduler=scheduler)


def request_policy_from_scenario(scenario: Scenario) -> RequestPolicy:
    """Kueue's ``resources`` settings that change what a pod set charges to quota."""
    resources = scenario.spec.kueue.resources
    transformations = [ResourceTransformation(t.input, dict(t.outputs), t.strategy == "Replace", t.multiply_by)
                       for t in resources.transformations]
    return RequestPolicy.build(exclude_prefixes=resources.exclude_resource_prefixes,
                               transformations=transformations,
                               ignore_undeclared=resources.quota_check_strategy == "IgnoreUndeclared")
