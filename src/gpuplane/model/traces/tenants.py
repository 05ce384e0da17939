"""Mapping a trace's tenants to Kueue LocalQueues."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

from gpuplane.model.errors import Location, TraceError
from gpuplane.model.trace import Trace

__all__ = ["QUEUE_KEY_FORM", "invalid_queue_key", "map_tenants"]

QUEUE_KEY_FORM = (
    "namespace/name of a LocalQueue: a DNS label (lower-case letters, digits and '-', at most "
    "63 characters), a slash, and a DNS subdomain (the same characters and '.', at most 253)"
)
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


def invalid_queue_key(key: str) -> str | None:
    """Return why ``key`` is not a LocalQueue key ``namespace/name``, or None when it is one."""
    namespace, slash, name = key.partition("/")
    if not slash:
        return "The queue has no slash between namespace and name."
    if len(namespace) > 63 or not _LABEL.fullmatch(namespace):
        return f"The queue's namespace {namespace!r} is not a DNS label."
    if len(name) > 253 or not _SUBDOMAIN.fullmatch(name):
        return f"The queue's name {name!r} is not a DNS subdomain."
    return None


def map_tenants(trace: Trace, mapping: Mapping[str, str], default: str | None = None) -> Trace:
    """Return the trace with each job's ``queue`` set from its tenant.

    ``mapping`` maps tenants to LocalQueue keys (``namespace/name``), and
    tenants it lacks go to ``default``. A job that already names a queue keeps it.
    Raises TraceError naming every unmapped tenant when there is no default,
    and naming the entry when a queue key is not of the form namespace/name.
    """
    for tenant, queue in [*mapping.items(), *([("default", default)] if default else [])]:
        problem = invalid_queue_key(queue)
        if problem:
            raise TraceError(problem=problem, location=Location(field=f"tenant {tenant}"),
                             value=queue, allowed=QUEUE_KEY_FORM)
    unmapped = Counter(job.tenant for job in trace.jobs
                       if job.queue is None and job.tenant not in mapping)
    if unmapped and default is None:
        listed = ", ".join(f"{tenant} ({count:,} jobs)"
                           for tenant, count in sorted(unmapped.items()))
        raise TraceError(problem=f"{len(unmapped)} tenant(s) of the trace have no queue: {listed}.",
                         location=Location(trace.source), value=sorted(unmapped),
                         hint="Map every tenant to a LocalQueue, or give a default queue.")
    jobs = tuple(
        job if job.queue is not None else replace(job, queue=mapping.get(job.tenant, default))
        for job in trace.jobs
    )
    notes = trace.notes
    if unmapped:
        notes += (f"{sum(unmapped.values()):,} jobs of {len(unmapped)} tenant(s) without a "
                  f"mapping went to the default queue {default}.",)
    return replace(trace, jobs=jobs, notes=notes)
