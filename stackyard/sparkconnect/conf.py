"""A session's Spark settings (spark.conf): what the client sets and reads,
with the defaults PySpark reads when it starts, and the settings the SQL
layer acts on (shuffle partitions, broadcast threshold) passed through."""

from __future__ import annotations

import time

from stackyard.sparkconnect.errors import ConnectError

DEFAULTS = {
    "spark.sql.session.timeZone": time.tzname[0] if time.tzname[0] != "UTC" else "UTC",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.shuffle.partitions": "200",
    "spark.sql.autoBroadcastJoinThreshold": "10485760",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "10000",
    "spark.sql.execution.pandas.convertToArrowArraySafely": "false",
    "spark.sql.execution.pythonUDF.arrow.enabled": "false",
    "spark.sql.pyspark.inferNestedDictAsStruct.enabled": "false",
    "spark.sql.pyspark.legacy.inferArrayTypeFromFirstElement.enabled": "false",
    "spark.sql.pyspark.legacy.inferMapTypeFromFirstPair.enabled": "false",
    "spark.sql.repl.eagerEval.enabled": "false",
    "spark.sql.repl.eagerEval.maxNumRows": "20",
    "spark.sql.repl.eagerEval.truncate": "20",
    "spark.sql.session.localRelationCacheThreshold": "67108864",
    "spark.sql.session.localRelationChunkSizeRows": "10000",
    "spark.sql.session.localRelationChunkSizeBytes": "16777216",
    "spark.sql.session.localRelationBatchOfChunksSizeBytes": "134217728",
    "spark.sql.session.localRelationSizeLimit": "1073741824",
    "spark.sql.execution.arrow.pyspark.selfDestruct.enabled": "false",
    "spark.sql.execution.arrow.useLargeVarTypes": "false",
    "spark.sql.execution.pyspark.binaryAsBytes": "true",
    "spark.sql.execution.pythonUDTF.arrow.enabled": "false",
    "spark.sql.leafNodeDefaultParallelism": "2",
    "spark.sql.artifact.isolation.enabled": "true",
    "spark.sql.artifact.isolation.alwaysApplyClassloader": "false",
    "spark.connect.session.planCompression.threshold": "-1",
    "spark.connect.session.planCompression.defaultAlgorithm": "NONE",
    "spark.api.mode": "connect",
    "spark.sql.mapKeyDedupPolicy": "EXCEPTION",
    "spark.sql.legacy.allowNegativeScaleOfDecimal": "false",
    "spark.sql.timestampType": "TIMESTAMP_LTZ",
    "spark.sql.caseSensitive": "false",
    "spark.sql.crossJoin.enabled": "true",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.execution.pandas.structHandlingMode": "legacy",
    "spark.sql.execution.pandas.inferPandasDictAsMap": "false",
    "spark.sql.pyspark.udf.profiler": "",
    "spark.sql.connect.serverStacktrace.enabled": "false",
    "spark.sql.pyspark.jvmStacktrace.enabled": "false",
    "spark.sql.optimizer.excludedRules": "",
    "spark.sql.sources.default": "parquet",
    "spark.sql.warehouse.dir": "/user/hive/warehouse",
    "spark.sql.catalogImplementation": "hive",
    "spark.app.name": "stackyard-connect",
    "spark.master": "stackyard",
    "spark.submit.deployMode": "client",
}
# settings a running session may not change (Spark: static SQL confs)
STATIC = {"spark.sql.warehouse.dir", "spark.sql.catalogImplementation", "spark.master",
          "spark.app.name"}


class SessionConf:
    def __init__(self, session):
        self.session = session
        self.values: dict[str, str] = {}

    def get(self, key: str, default: str | None = None, required: bool = True) -> str | None:
        if key in self.values:
            return self.values[key]
        if default is not None:
            return default
        if key in DEFAULTS:
            return DEFAULTS[key]
        if required:
            raise ConnectError("SQL_CONF_NOT_FOUND",
                               f"The SQL config \"{key}\" cannot be found. Please verify that "
                               "the config exists.", "42K0I", kind="java.util.NoSuchElementException"
                               if False else "org.apache.spark.SparkNoSuchElementException",
                               params={"sqlConf": key})
        return None

    def set(self, key: str, value: str) -> None:
        if key in STATIC:
            raise ConnectError("CANNOT_MODIFY_CONFIG",
                               f"Cannot modify the value of the static Spark config: \"{key}\".",
                               "46110")
        self.values[key] = value
        if key in ("spark.sql.shuffle.partitions", "spark.sql.autoBroadcastJoinThreshold"):
            self.session.sql.sql(f"SET {key}={value}")

    def unset(self, key: str) -> None:
        self.values.pop(key, None)

    def all(self, prefix: str = "") -> dict[str, str]:
        out = {k: v for k, v in DEFAULTS.items() if k.startswith(prefix)}
        out.update({k: v for k, v in self.values.items() if k.startswith(prefix)})
        return out

    def modifiable(self, key: str) -> bool:
        return key not in STATIC and key.startswith("spark.sql.")


def handle(conf: SessionConf, op, response) -> None:
    """One ConfigRequest.Operation into RESPONSE's pairs."""
    kind = op.WhichOneof("op_type")
    if kind == "set":
        for p in op.set.pairs:
            if p.HasField("value"):
                conf.set(p.key, p.value)
            else:
                conf.unset(p.key)
    elif kind == "get":
        for k in op.get.keys:
            response.pairs.add(key=k, value=conf.get(k))
    elif kind == "get_with_default":
        for p in op.get_with_default.pairs:
            v = conf.get(p.key, p.value if p.HasField("value") else None, required=False)
            pair = response.pairs.add(key=p.key)
            if v is not None:
                pair.value = v
    elif kind == "get_option":
        for k in op.get_option.keys:
            v = conf.get(k, required=False)
            pair = response.pairs.add(key=k)
            if v is not None:
                pair.value = v
    elif kind == "get_all":
        prefix = op.get_all.prefix if op.get_all.HasField("prefix") else ""
        for k, v in sorted(conf.all(prefix).items()):
            response.pairs.add(key=k, value=v)
    elif kind == "unset":
        for k in op.unset.keys:
            conf.unset(k)
    elif kind == "is_modifiable":
        for k in op.is_modifiable.keys:
            response.pairs.add(key=k, value="true" if conf.modifiable(k) else "false")
