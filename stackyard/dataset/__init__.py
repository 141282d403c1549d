"""Spark-style datasets on the job engine: lazy RDDs with lineage, caching
and broadcast, under PySpark's names (`sy.connect().context()` is the
SparkContext)."""

from stackyard.dataset.context import Context
from stackyard.dataset.partitioner import Partitioner, portable_hash
from stackyard.dataset.rdd import RDD
from stackyard.dataset.shared import Accumulator, AccumulatorParam, Broadcast
from stackyard.dataset.stats import StatCounter
from stackyard.dataset.storage import StorageLevel

__all__ = ["Context", "RDD", "StorageLevel", "Broadcast", "Accumulator", "AccumulatorParam",
           "StatCounter", "Partitioner", "portable_hash"]
