"""Properties of the quota tree under random cohort trees and random admit/release sequences.

Workloads are admitted with the engine's own fit check (what ``available`` allows) and released in
any order; the tree must never hand out more than its quotas and limits allow.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from gpuplane.decisions.quota.tree import (
    ClusterQueueNode,
    CohortNode,
    Quota,
    ResourceNode,
    add_usage,
    cluster_queue_available,
    recompute_subtree,
    remove_usage,
)

FRS = (("a100", "gpu"), ("spot", "gpu"))


@dataclass
class Tree:
    cohorts: list[CohortNode]
    queues: list[ClusterQueueNode]

    def nodes(self) -> list[ResourceNode]:
        return [*self.cohorts, *self.queues]

    def roots(self) -> list[ResourceNode]:
        return [node for node in self.nodes() if node.parent is None]


@st.composite
def quotas(draw: st.DrawFn, *, cohort: bool, has_parent: bool) -> dict[tuple[str, str], Quota]:
    found = {}
    for fr in FRS:
        nominal = draw(st.integers(0, 4 if cohort else 10))
        borrowing = draw(st.none() | st.integers(0, 10)) if has_parent else None
        lending = draw(st.none() | st.integers(0, nominal)) if has_parent else None
        found[fr] = Quota(nominal, borrowing, lending)
    return found


@st.composite
def trees(draw: st.DrawFn) -> Tree:
    count = draw(st.integers(1, 4))
    parents = [None] + [draw(st.none() | st.integers(0, index - 1)) for index in range(1, count)]
    cohorts = [CohortNode(f"cohort-{index}", draw(quotas(cohort=True, has_parent=parent is not None)))
               for index, parent in enumerate(parents)]
    for cohort, parent in zip(cohorts, parents, strict=True):
        if parent is not None:
            cohort.parent = cohorts[parent]
            cohorts[parent].child_cohorts.append(cohort)
    queues = []
    for index in range(draw(st.integers(1, 6))):
        parent_index = draw(st.none() | st.integers(0, count - 1))
        queue = ClusterQueueNode(f"cq-{index}", draw(quotas(cohort=False, has_parent=parent_index is not None)))
        if parent_index is not None:
            queue.parent = cohorts[parent_index]
            cohorts[parent_index].child_queues.append(queue)
        else:
            queue.subtree = {fr: quota.nominal for fr, quota in queue.quotas.items()}
        queues.append(queue)
    for cohort in cohorts:
        if cohort.parent is None:
            recompute_subtree(cohort)
    return Tree(cohorts, queues)


operations = st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.sampled_from(FRS), st.integers(1, 8)),
                      max_size=40)


def total_capacity(tree: Tree, fr: tuple[str, str]) -> int:
    return sum(node.quota(fr).nominal for node in tree.nodes())


def queues_under(node: ResourceNode, tree: Tree) -> set[str]:
    if isinstance(node, ClusterQueueNode):
        return {node.name}
    assert isinstance(node, CohortNode)
    return {queue.name for queue in node.subtree_cluster_queues()}


def check_limits(tree: Tree) -> None:
    for fr in FRS:
        for queue in tree.queues:
            quota = queue.quota(fr)
            used = queue.usage.get(fr, 0)
            if queue.parent is None:
                assert used <= quota.nominal
            elif quota.borrowing_limit is not None:
                assert used <= quota.nominal + quota.borrowing_limit
        for root in tree.roots():
            assert root.usage.get(fr, 0) <= root.subtree.get(fr, 0)
        for node in tree.nodes():
            private = node.local_quota(fr)
            if private == 0 or node.parent is None:
                continue
            inside = queues_under(node, tree)
            others = sum(q.usage.get(fr, 0) for q in tree.queues if q.name not in inside and q.root() is node.root())
            # Capacity reachable from outside ``node`` excludes its private nominal - lendingLimit.
            reachable = sum(n.quota(fr).nominal for n in tree.nodes() if n.root() is node.root())
            assert others <= reachable - private


def check_bubbling(tree: Tree) -> None:
    """Incremental cohort usage equals a recomputation from the ClusterQueues' usage."""
    before = {cohort.name: {fr: amount for fr, amount in cohort.usage.items() if amount} for cohort in tree.cohorts}
    for root in tree.roots():
        if isinstance(root, CohortNode):
            recompute_subtree(root)
    after = {cohort.name: {fr: amount for fr, amount in cohort.usage.items() if amount} for cohort in tree.cohorts}
    assert before == after


@settings(max_examples=150, deadline=None)
@given(trees(), operations)
def test_admissions_stay_within_quota(tree: Tree, ops: list[tuple[bool, int, tuple[str, str], int]]) -> None:
    admitted: list[tuple[ClusterQueueNode, tuple[str, str], int]] = []
    for release, index, fr, amount in ops:
        if release and admitted:
            queue, held_fr, held = admitted.pop(index % len(admitted))
            remove_usage(queue, held_fr, held)
        else:
            queue = tree.queues[index % len(tree.queues)]
            if cluster_queue_available(queue, fr) >= amount:
                add_usage(queue, fr, amount)
                admitted.append((queue, fr, amount))
        check_limits(tree)
        check_bubbling(tree)


@settings(max_examples=150, deadline=None)
@given(trees(), operations)
def test_releasing_everything_returns_to_zero(tree: Tree, ops: list[tuple[bool, int, tuple[str, str], int]]) -> None:
    admitted: list[tuple[ClusterQueueNode, tuple[str, str], int]] = []
    for _, index, fr, amount in ops:
        queue = tree.queues[index % len(tree.queues)]
        if cluster_queue_available(queue, fr) >= amount:
            add_usage(queue, fr, amount)
            admitted.append((queue, fr, amount))
    for queue, fr, amount in reversed(admitted[::2]):
        remove_usage(queue, fr, amount)
    for queue, fr, amount in admitted[1::2]:
        remove_usage(queue, fr, amount)
    for node in tree.nodes():
        assert all(amount == 0 for amount in node.usage.values()), (node.name, node.usage)


@settings(max_examples=100, deadline=None)
@given(trees())
def test_lender_keeps_private_share(tree: Tree) -> None:
    # Every other queue takes all it can: a lender's nominal - lendingLimit stays free for it.
    for fr in FRS:
        for lender in tree.queues:
            private = lender.local_quota(fr)
            if lender.parent is None or private == 0:
                continue
            taken = []
            for queue in tree.queues:
                if queue is lender:
                    continue
                amount = cluster_queue_available(queue, fr)
                if amount > 0:
                    add_usage(queue, fr, amount)
                    taken.append((queue, amount))
            assert cluster_queue_available(lender, fr) >= private
            for queue, amount in taken:
                remove_usage(queue, fr, amount)
