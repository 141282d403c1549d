"""A PySpark DataFrame program run on the local Stackyard cluster through
Spark Connect: pandas rows in, partitioned Parquet in the DFS, a join with a
metastore table, an aggregation.

    python examples/dataframe/people.py        # after `yard cluster up`"""

import json
import os
import warnings
from pathlib import Path

import pandas as pd

warnings.filterwarnings("ignore", category=FutureWarning)
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

home = Path(os.environ.get("STACKYARD_HOME", Path.home() / ".stackyard"))
state = json.loads((home / "cluster.json").read_text())
address = next((d["address"] for d in state["daemons"] if d["role"] == "connect"), None)
if address is None:
    raise SystemExit("no Spark Connect server in this cluster: pip install 'stackyard[connect]', "
                     "then `yard cluster down` and `yard cluster up`")
secret = (home / "secret").read_text().strip()
spark = SparkSession.builder.remote(
    f"sc://localhost:{address.rsplit(':', 1)[1]}/;token={secret}").getOrCreate()

people = pd.DataFrame({"name": ["ada", "alan", "grace", "edsger", "barbara"],
                       "age": [36, 41, 45, 72, 29], "city": ["london", "london", "nyc",
                                                             "austin", "nyc"]})
spark.createDataFrame(people).write.mode("overwrite").partitionBy("city").parquet(
    "/examples/people")
cities = spark.createDataFrame(pd.DataFrame({"city": ["london", "nyc", "austin"],
                                             "country": ["uk", "us", "us"]}))
cities.write.mode("overwrite").saveAsTable("cities")

df = spark.read.parquet("/examples/people")
(df.join(spark.table("cities"), "city")
   .groupBy("country").agg(F.count("*").alias("people"), F.avg("age").alias("mean_age"))
   .orderBy("country").show())
spark.stop()
