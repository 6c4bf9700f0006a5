"""Reads a stream's Glue location with DuckDB (an SQL engine the project did not write), as the
catalog describes it: the visible Parquet files under the table's location (names a reader
ignores, a path segment starting with _ or ., skipped), hive partitioning on the partition key,
and each Glue column checked against the type DuckDB reads from the files.

DuckDB's httpfs extension is downloaded at run time, which the test bed cannot do: the files are
copied from S3 (LocalStack) with pyarrow into a temporary folder, keeping their keys, first.

usage: duckdb_glue.py ENDPOINT LOCATION COLUMNS_JSON PARTITION_KEY
  LOCATION: s3://bucket/prefix/ (the Glue table's StorageDescriptor.Location)
  COLUMNS_JSON: [["name", "glue type"], ...] (the Glue table's columns)
  PARTITION_KEY: the table's partition key, or - for a table without one (an ERP table)
prints one JSON object: {"types": {"column": "duckdb type"}, "mismatches": [...],
"counts": {"<partition value>": rows}} (without a partition key: {"": rows})
"""
import json
import os
import sys
import tempfile
from urllib.parse import urlparse

import duckdb
from pyarrow import fs

endpoint, location, columns_json, partition_key = sys.argv[1:5]
columns = json.loads(columns_json)
url = urlparse(endpoint)
s3 = fs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1",
                     endpoint_override=url.netloc, scheme=url.scheme)
where = urlparse(location)
root = f"{where.netloc}/{where.path.strip('/')}"

# What each Glue type reads as in DuckDB (Parquet timestamps adjusted to UTC read as TIMESTAMPTZ).
EXPECTED = {
    "string": {"VARCHAR"},
    "bigint": {"BIGINT"},
    "int": {"INTEGER"},
    "double": {"DOUBLE"},
    "boolean": {"BOOLEAN"},
    "timestamp": {"TIMESTAMP", "TIMESTAMP WITH TIME ZONE"},
    "date": {"DATE"},
}

with tempfile.TemporaryDirectory() as tmp:
    copied = 0
    for info in s3.get_file_info(fs.FileSelector(root + "/", recursive=True, allow_not_found=True)):
        key = info.path[len(root) + 1:]
        if info.type != fs.FileType.File or not key.endswith(".parquet") \
                or any(p.startswith(("_", ".")) for p in key.split("/")):
            continue
        target = os.path.join(tmp, key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with s3.open_input_stream(info.path) as src, open(target, "wb") as dst:
            dst.write(src.read())
        copied += 1
    if copied == 0:
        print(json.dumps({"types": {}, "mismatches": [], "counts": {}}))
        sys.exit(0)
    con = duckdb.connect()
    if partition_key == "-":
        source = f"read_parquet('{tmp}/**/*.parquet')"
    else:
        source = (f"read_parquet('{tmp}/**/*.parquet', hive_partitioning = true, "
                  f"hive_types = {{'{partition_key}': 'VARCHAR'}})")
    types = {name: kind for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    mismatches = []
    for name, glue_type in columns:
        got = types.get(name)
        if got not in EXPECTED.get(glue_type, set()):
            mismatches.append(f"{name}: Glue says {glue_type}, the files hold {got}")
    selected = ", ".join(f'"{name}"' for name, _ in columns)
    if partition_key == "-":
        rows = [("", con.execute(f"SELECT count(*) FROM (SELECT {selected} FROM {source})").fetchone()[0])]
    else:
        rows = con.execute(
            f'SELECT "{partition_key}", count(*) FROM (SELECT {selected}, "{partition_key}" FROM {source}) '
            f'GROUP BY 1 ORDER BY 1').fetchall()
    print(json.dumps({"types": types, "mismatches": mismatches, "counts": {v: n for v, n in rows}}))
