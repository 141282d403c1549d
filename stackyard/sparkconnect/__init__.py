"""Spark Connect: PySpark's DataFrame client (pyspark-client) against
Stackyard's SQL layer. See server.py for the daemon and docs/connect.md.

(The package is not called `connect`: `stackyard.connect` is the function
`sy.connect()` and its module, which a subpackage of that name would hide.)"""

import warnings

# pyspark-client warns about pandas versions it has not been tried with; the
# server reads pandas only in pandas UDFs, which say so if they fail
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                        category=FutureWarning)
