"""MapReduce on the job engine: `Job` (Python), `StreamingJob` (Hadoop
Streaming's contract), and the input / output formats (DFS files, and the
table store's tables)."""

from stackyard.compute.client import JobFailed
from stackyard.mapreduce.formats import (
    FixedRecordInput,
    KeyValueInput,
    PickleInput,
    PickleOutput,
    RawOutput,
    Split,
    TextBlockInput,
    TextInput,
    TextOutput,
)
from stackyard.mapreduce.job import Job, JobResult
from stackyard.mapreduce.streaming import StreamingJob
from stackyard.mapreduce.tables import TableInput, TableOutput

__all__ = ["Job", "JobResult", "JobFailed", "StreamingJob", "TextInput", "KeyValueInput",
           "PickleInput", "FixedRecordInput", "TextBlockInput", "TextOutput", "PickleOutput",
           "RawOutput", "Split", "TableInput", "TableOutput"]
