"""The Spark engine: the same per-patient function, with Spark doing the grouping by patient reference.

Local mode (`local[N]`) unless a master is configured (under `spark-submit` on a cluster, where injectwise
must be installed on the executors). PySpark is the optional extra `.[spark]`."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from injectwise.adapters.population.bulk import export_files, parse_line, patient_key, unread_type
from injectwise.adapters.population.patient import columns, screen_resources
from injectwise.core.errors import InputError

_CACHE: dict[Any, Any] = {}
BATCH = 1000


def _knowledge(policy: str | None) -> tuple[Any, Any]:
    """Loaded once per executor process."""
    got = _CACHE.get(policy)
    if got is None:
        from injectwise.knowledge import load_knowledge
        from injectwise.knowledge.measures import load_measures
        kb = load_knowledge(policy)
        got = _CACHE[policy] = (kb, load_measures(kb))
    return got


def _keyed(name: str, line: str) -> tuple[str | None, tuple[str, str]]:
    return patient_key(line.encode(), name), (name, line)


def _screen_group(pid: str, items: Any, as_of: date, policy: str | None) -> tuple[Any, ...]:
    kb, ms = _knowledge(policy)
    resources = [parse_line(line.encode(), name) for name, line in items]
    row = screen_resources(pid, resources, kb, ms, as_of)
    return tuple(row[c] for c, _ in columns(ms))


def _session(workers: int | None) -> Any:
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("the spark engine needs PySpark: pip install 'injectwise[spark]'") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    b = SparkSession.builder.appName("injectwise-screen")
    if not SparkConf().contains("spark.master"):
        n = workers or os.cpu_count() or 1
        b = (b.master(f"local[{n}]").config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(max(2, n * 2)))
             .config("spark.default.parallelism", str(max(2, n * 2))))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _clear(e: Exception) -> InputError:
    """An input problem raised on an executor, as the one line it was."""
    m = re.search(r"InputError: ([^\n]+)", str(e))
    return InputError(m.group(1) if m else f"spark job failed: {str(e).splitlines()[0][:200]}")


def run_spark(directory: str | Path, as_of: date, out: str | Path | None = None, policy: str | None = None,
              workers: int | None = None) -> Iterator[list[dict[str, Any]]]:
    """Screen with Spark; write Parquet to `out` (a folder) if given; yield the rows in batches for the summary."""
    from injectwise.knowledge import load_knowledge
    from injectwise.knowledge.measures import load_measures

    files = export_files(directory)
    cols = columns(load_measures(load_knowledge(policy)))
    spark = _session(workers)
    from pyspark.sql.types import BooleanType, DoubleType, LongType, StringType, StructField, StructType
    types = {"string": StringType(), "int": LongType(), "double": DoubleType(), "bool": BooleanType()}
    schema = StructType([StructField(n, types[t], True) for n, t in cols])
    sc = spark.sparkContext
    parts = [sc.textFile(str(f)).filter(lambda line: bool(line.strip()) and not unread_type(line.encode()))
             .map(lambda line, name=f.name: _keyed(name, line)) for f in files]
    keyed = sc.union(parts).filter(lambda kv: kv[0] is not None)
    rows = keyed.groupByKey().map(lambda kv: _screen_group(kv[0], kv[1], as_of, policy))
    df = spark.createDataFrame(rows, schema).orderBy("patient")
    try:
        if out is not None:
            df.write.mode("overwrite").parquet(str(out))
            df = spark.read.schema(schema).parquet(str(out)).orderBy("patient")
        batch: list[dict[str, Any]] = []
        for r in df.toLocalIterator():
            batch.append(r.asDict())
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
    except Exception as e:
        if type(e).__name__ in ("Py4JJavaError", "PythonException", "SparkException") or "InputError" in str(e):
            raise _clear(e) from None
        raise
