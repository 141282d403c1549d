"""`yard balancer`: HDFS's balancer. Each round it reads every chunkserver's
use (used / capacity), and while one is more than THRESHOLD percentage
points above the cluster's mean and another below it, asks the master to
move replicas from the fullest to the emptiest (a copy, then the source's
replica deleted), at most BANDWIDTH bytes a second; it stops when every
server is within the threshold, or no move is possible."""

from __future__ import annotations

import time

import click

from stackyard import errors

ROUND = 2.0          # seconds between looks at the cluster


def usage(servers: list[dict]) -> dict[str, float]:
    return {s["id"]: 100.0 * s["used"] / s["capacity"] for s in servers if s["capacity"]}


def balance(fs, threshold: float, bandwidth: int, rounds: int, echo=click.echo) -> int:
    echo(f"{'Time Stamp':<20} {'Iteration#':>10} {'Bytes Already Moved':>20} "
         f"{'Bytes Left To Move':>19} {'Bytes Being Moved':>18}")
    moved, started = 0, time.monotonic()
    for iteration in range(rounds):
        info = fs.cluster()
        servers = [s for s in info["servers"] if s["alive"]
                   and s.get("admin_state", "In Service") == "In Service"]
        use = usage(servers)
        if len(use) < 2:
            echo("No balancing: fewer than two chunkservers in service.")
            return 0
        total_used = sum(s["used"] for s in servers)
        mean = 100.0 * total_used / sum(s["capacity"] for s in servers)
        over = sorted((s for s in servers if use[s["id"]] > mean + threshold),
                      key=lambda s: -use[s["id"]])
        under = sorted((s for s in servers if use[s["id"]] < mean - threshold),
                       key=lambda s: use[s["id"]])
        if not over and not under and info.get("moves"):
            time.sleep(ROUND)           # the last round's copies are still on their way
            continue
        if not over and not under:
            echo(f"The cluster is balanced (every chunkserver within {threshold:g}% of "
                 f"the mean {mean:.1f}%). Exiting...")
            return 0
        left = sum(s["used"] - s["capacity"] * (mean + threshold) / 100 for s in over)
        above = over or [s for s in servers if use[s["id"]] > mean]
        below = under or [s for s in servers if use[s["id"]] < mean]
        plan = _plan(fs, above, sorted(below, key=lambda s: use[s["id"]]), use, mean, threshold)
        being = 0
        for handle, length, src, dst in plan:
            try:
                fs.call("move_replica", handle=handle, source=src, target=dst)
            except (ValueError, errors.StackyardError, OSError):
                continue                 # written, moved or gone since we looked
            being += length
            allowed = bandwidth * (time.monotonic() - started)
            if moved + being > allowed:   # hold the pace: BANDWIDTH bytes a second
                time.sleep((moved + being - allowed) / bandwidth)
        echo(f"{time.strftime('%b %d, %Y %H:%M'):<20} {iteration:>10} {moved:>20} "
             f"{max(0, int(left)):>19} {being:>18}")
        if not being and not info.get("moves"):
            echo("No block can be moved. Exiting...")
            return 1
        moved += being
        time.sleep(ROUND)
    echo(f"Stopped after {rounds} iterations.")
    return 1


def _plan(fs, over, under, use, mean, threshold) -> list[tuple[str, int, str, str]]:
    """Moves for one round: from each over-used server, chunks the emptiest
    under-used server lacks, until the source would be at the mean."""
    plan, taken = [], set()
    gain = {s["id"]: 0 for s in under}
    for src in over:
        excess = src["used"] - src["capacity"] * mean / 100
        for handle, length in fs.call("server_chunks", id=src["id"], limit=2000):
            if excess <= 0:
                break
            # a target that holds the chunk already refuses the move: the next round
            dst = next((d for d in under if d["id"] != src["id"] and handle not in taken
                        and use[d["id"]] + 100 * (gain[d["id"]] + length) / d["capacity"]
                        <= mean + threshold), None)
            if dst is None:
                continue
            plan.append((handle, length, src["id"], dst["id"]))
            taken.add(handle)
            gain[dst["id"]] += length
            excess -= length
    return plan
