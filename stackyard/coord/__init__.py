"""Coordination service (Chubby / ZooKeeper): so far the Raft core."""
