"""Distributed grep, as in the MapReduce paper: the map emits a line if it
matches the pattern; a map-only job, so each split's matches land in its
own part-m file.

    yard mr run examples/grep/grep.py --input /logs --output /out/errors
    PATTERN='timeout|refused' yard mr run examples/grep/grep.py --input /logs --output /out/t
"""

import os
import re

from stackyard.mapreduce import Job


class Grep(Job):
    reducers = 0
    pattern = os.environ.get("PATTERN", "ERROR")   # read on the driver, shipped with the job

    def mapper(self, offset, line):
        if re.search(self.pattern, line):
            yield f"{self.ctx.split.path}:{offset}", line
