"""Reads what a reader of the lake sees, with pyarrow (a reader the project did not write):
every visible Parquet file of a stream in the curated bucket (its kafka_partition and
kafka_offset columns) and every JSON line in the rejected bucket, skipping names a reader
ignores (a path segment starting with _ or .).

usage: lake_offsets.py ENDPOINT CURATED REJECTED STREAM
prints one JSON object: {"<partition>": {"rows": N, "rejected": M, "offsets": {"<offset>": copies}}}
with only the offsets seen more than once, and "count"/"min"/"max"/"distinct" per partition.
"""
import collections
import json
import sys
from urllib.parse import urlparse

import concurrent.futures

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs

endpoint, curated, rejected, stream = sys.argv[1:5]
url = urlparse(endpoint)
s3 = fs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1",
                     endpoint_override=url.netloc, scheme=url.scheme)


def visible(bucket, suffix):
    selector = fs.FileSelector(f"{bucket}/{stream}/", recursive=True, allow_not_found=True)
    for info in s3.get_file_info(selector):
        key = info.path[len(bucket) + 1:]
        if info.type == fs.FileType.File and key.endswith(suffix) \
                and not any(p.startswith(("_", ".")) for p in key.split("/")):
            yield info.path


seen = collections.defaultdict(collections.Counter)
rows = collections.Counter()
rejects = collections.Counter()


def offsets(path):
    # One GET per file (the footer and the columns from memory), 16 files at once.
    with s3.open_input_stream(path) as f:
        table = pq.read_table(pa.BufferReader(f.read()), columns=["kafka_partition", "kafka_offset"])
    return zip(table.column("kafka_partition").to_pylist(), table.column("kafka_offset").to_pylist())


with concurrent.futures.ThreadPoolExecutor(16) as pool:
    for pairs in pool.map(offsets, visible(curated, ".parquet")):
        for partition, offset in pairs:
            seen[partition][offset] += 1
            rows[partition] += 1
for path in visible(rejected, ".jsonl"):
    with s3.open_input_stream(path) as f:
        for line in f.read().decode().splitlines():
            record = json.loads(line)
            seen[record["partition"]][record["offset"]] += 1
            rejects[record["partition"]] += 1
out = {}
for partition, counter in seen.items():
    out[str(partition)] = {
        "rows": rows[partition],
        "rejected": rejects[partition],
        "count": sum(counter.values()),
        "distinct": len(counter),
        "min": min(counter),
        "max": max(counter),
        "duplicates": {str(o): n for o, n in counter.items() if n > 1},
    }
print(json.dumps(out))
