"""The job engine: one scheduler, many workers, a sort-based shuffle. A job
is a DAG of stages split at shuffle boundaries; MapReduce is its two-stage
case (stackyard/mapreduce), the dataset API and SQL build on it too."""
