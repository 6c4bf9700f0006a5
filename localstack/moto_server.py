"""moto_server, with moto's DMS answers in the AWS JSON protocol.

moto 5.2.5 writes DMS timestamps (a replication instance's `InstanceCreateTime`, a task's
`ReplicationTaskCreationDate`, `ReplicationTaskStartDate` and its statistics' dates) as ISO
strings; AWS's JSON 1.1 protocol, which every SDK but botocore decodes strictly, sends epoch
seconds. The AWS SDK for Rust therefore cannot read any replication instance or task from
moto. This wrapper converts those fields to epoch seconds and then runs moto's own server,
with the same arguments as `moto_server`. Nothing else of moto changes.
"""

import datetime
import sys

from moto.dms import models
from moto.server import main

DATE_KEYS = {
    "InstanceCreateTime",
    "FreeUntil",
    "ReplicationTaskCreationDate",
    "ReplicationTaskStartDate",
    "FreshStartDate",
    "StartDate",
    "StopDate",
    "FullLoadStartDate",
    "FullLoadFinishDate",
}


def epoch(value):
    if not isinstance(value, str):
        return value
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def converted(value):
    if isinstance(value, dict):
        return {k: epoch(v) if k in DATE_KEYS else converted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [converted(v) for v in value]
    return value


def patch(cls):
    original = cls.to_dict

    def to_dict(self, *args, **kwargs):
        return converted(original(self, *args, **kwargs))

    cls.to_dict = to_dict


patch(models.FakeReplicationInstance)
patch(models.FakeReplicationTask)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
