"""An action's job: the lineage cut into stages at its shuffles (Spark's
DAGScheduler, without I/O). Narrow dependencies stay inside a stage and are
pipelined in one task; each ShuffleDep becomes a stage that writes map
output, and the action's own stage computes the partitions it asked for.

A persisted node whose every partition is cached ends the walk: what it
depends on is not recomputed. So does a shuffle an earlier job of the
application already wrote: its tasks read that job's map outputs (Spark's
skipped stages). If such a cached partition or earlier output is lost
while the job runs, the driver resubmits it without those shortcuts."""

from __future__ import annotations

from dataclasses import dataclass, field

from stackyard.dataset.lineage import Node, ShuffleDep, walk


@dataclass
class StagePlan:
    node: Node                       # what each task computes
    dep: ShuffleDep | None           # the shuffle it writes; None: the action's stage
    partitions: list[int] | range    # the node's partitions, one per task
    parents: list[int] = field(default_factory=list)   # stages it reads (their ids)

    def name(self, action: str) -> str:
        if self.dep is None:
            return action
        return f"{self.dep.op} at {self.dep.site}"


def block_id(app: str, node_id: int, split: int) -> str:
    return f"{app}/rdd_{node_id}_{split}"


def stage_shuffles(node: Node, cached: set[int]) -> list[ShuffleDep]:
    """The shuffles NODE's stage reads: those reached through narrow deps."""
    def computed(n: Node) -> bool:
        return n.storage is None or n.id not in cached

    out: list[ShuffleDep] = []
    for n in walk(node, computed, across_shuffles=False):
        if computed(n):
            out += [d for d in n.deps if isinstance(d, ShuffleDep) and all(d is not o for o in out)]
    return out


def build(final: Node, partitions: list[int], cached: set[int],
          written: dict[int, object] | None = None
          ) -> tuple[list[StagePlan], dict[int, int]]:
    """The stages of a job computing FINAL's PARTITIONS (parents first), and
    which stage writes each shuffle. WRITTEN: shuffles earlier jobs wrote,
    which need no stage."""
    plans: list[StagePlan] = []
    stage_of: dict[int, int] = {}
    written = written or {}

    def stage_for(dep: ShuffleDep) -> int | None:
        if dep.id in written:
            return None
        if dep.id in stage_of:
            return stage_of[dep.id]
        parents = _ids(stage_for(d) for d in stage_shuffles(dep.parent, cached))
        plans.append(StagePlan(dep.parent, dep, range(dep.parent.num_partitions), parents))
        stage_of[dep.id] = len(plans) - 1
        return stage_of[dep.id]

    parents = _ids(stage_for(d) for d in stage_shuffles(final, cached))
    every = range(final.num_partitions)
    plans.append(StagePlan(final, None, every if list(partitions) == list(every)
                           else list(partitions), parents))
    return plans, stage_of


def _ids(stage_ids) -> list[int]:
    return [s for s in stage_ids if s is not None]


def preferred(node: Node, split: int, app: str, blocks: dict[str, list], depth: int = 0
              ) -> list[str]:
    """Where a task computing SPLIT of NODE should run: the workers caching
    it, else the chunkservers holding its input, else its narrow parents'."""
    if node.storage is not None:
        held = blocks.get(block_id(app, node.id, split))
        if held:
            return [name for name, _address in held]
    cp = node.checkpoint
    if hasattr(cp, "splits"):
        return list(cp.splits[split].hosts)
    own = node.locations(split)
    if own or depth > 20:
        return own
    for parent, ps in node.narrow(split):
        found = preferred(parent, ps, app, blocks, depth + 1)
        if found:
            return found
    return []
