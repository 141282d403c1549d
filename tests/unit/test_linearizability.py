"""The checker itself: it accepts linearizable histories and rejects crafted
non-linearizable ones."""

from __future__ import annotations

import random

from tests.linearizability import Op, linearizable


def test_sequential_history_is_linearizable():
    h = [Op(1, 0, 1, "write", "k", "a", 1), Op(1, 2, 3, "read", "k", None, ("a", 1)),
         Op(1, 4, 5, "cas", "k", (1, "b"), 2), Op(1, 6, 7, "cas", "k", (1, "c"), "bad_version"),
         Op(1, 8, 9, "read", "k", None, ("b", 2))]
    assert linearizable(h) == (True, None)


def test_concurrent_overlap_may_order_either_way():
    h = [Op(1, 0, 10, "write", "k", "a", 1), Op(2, 1, 2, "read", "k", None, None),
         Op(3, 3, 4, "read", "k", None, ("a", 1))]
    assert linearizable(h)[0]


def test_stale_read_after_a_completed_write_is_rejected():
    h = [Op(1, 0, 1, "write", "k", "a", 1), Op(1, 2, 3, "write", "k", "b", 2),
         Op(2, 4, 5, "read", "k", None, ("a", 1))]        # starts after b was acknowledged
    assert linearizable(h) == (False, "k")


def test_lost_acknowledged_write_is_rejected():
    h = [Op(1, 0, 1, "write", "k", "a", 1), Op(2, 2, 3, "read", "k", None, None)]
    assert linearizable(h) == (False, "k")


def test_two_cas_winners_rejected():
    h = [Op(1, 0, 1, "write", "k", "a", 1),
         Op(2, 2, 5, "cas", "k", (1, "x"), 2), Op(3, 2, 5, "cas", "k", (1, "y"), 2)]
    assert linearizable(h) == (False, "k")


def test_unknown_outcome_may_or_may_not_have_happened():
    took = [Op(1, 0, None, "write", "k", "a"), Op(2, 5, 6, "read", "k", None, ("a", 1))]
    did_not = [Op(1, 0, None, "write", "k", "a"), Op(2, 5, 6, "read", "k", None, None)]
    assert linearizable(took)[0] and linearizable(did_not)[0]
    impossible = [Op(1, 0, None, "write", "k", "a"), Op(2, 5, 6, "read", "k", None, ("z", 1))]
    assert not linearizable(impossible)[0]


def test_random_sequential_histories_pass_and_a_corrupted_read_fails():
    rng = random.Random(4)
    state, history, t = None, [], 0.0
    for i in range(300):
        kind = rng.choice(["read", "write", "cas"])
        if kind == "read":
            history.append(Op(0, t, t + 1, "read", "k", None, state))
        elif kind == "write":
            state = (i, 1 if state is None else state[1] + 1)
            history.append(Op(0, t, t + 1, "write", "k", i, state[1]))
        else:
            ver = rng.choice([0, 1, state[1] if state else 0])
            if state is not None and state[1] == ver:
                state = (i, ver + 1)
                history.append(Op(0, t, t + 1, "cas", "k", (ver, i), state[1]))
            else:
                history.append(Op(0, t, t + 1, "cas", "k", (ver, i), "bad_version"))
        t += 2
    assert linearizable(history)[0]
    reads = [j for j, op in enumerate(history) if op.kind == "read" and op.result]
    j = reads[len(reads) // 2]
    bad = history[j]
    history[j] = Op(bad.client, bad.invoke, bad.response, "read", "k", None,
                    (bad.result[0], bad.result[1] + 7))
    assert not linearizable(history)[0]
