"""A pytest plugin that hands PySpark's own doctests a `spark` session of a
running Stackyard Spark Connect server (SPARK_REMOTE names it), as PySpark's
modules do in their _test() functions."""

import os
import warnings

import pytest

warnings.filterwarnings("ignore", category=FutureWarning)


@pytest.fixture(scope="session")
def _stackyard_spark():
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.remote(os.environ["SPARK_REMOTE"]).getOrCreate()
    yield spark
    spark.stop()


@pytest.fixture(autouse=True)
def _spark_globals(doctest_namespace, _stackyard_spark):
    doctest_namespace["spark"] = _stackyard_spark
    import pyspark.sql.functions as sf
    doctest_namespace["sf"] = sf
