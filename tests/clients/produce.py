"""Publishes client_tickets records (shared/DESIGN.md contract) with confluent-kafka, an
ordinary producer the project did not write, with the compression and batching given.

usage: produce.py BOOTSTRAP TOPIC --codec zstd --count 1000 [--rate 0] [--malformed-every 0]
                  [--credentials FILE]   (JSON username, password, ca_certificate: SASL/SCRAM over TLS)
prints one JSON line: {"acked": N, "failed": M}
"""
import argparse
import json
import time
import uuid

from confluent_kafka import Producer

parser = argparse.ArgumentParser()
parser.add_argument("bootstrap")
parser.add_argument("topic")
parser.add_argument("--codec", default="none")
parser.add_argument("--count", type=int, default=1000)
parser.add_argument("--rate", type=float, default=0, help="records per second, 0: as fast as possible")
parser.add_argument("--malformed-every", type=int, default=0)
parser.add_argument("--batch-size", type=int, default=16384)
parser.add_argument("--linger-ms", type=int, default=5)
parser.add_argument("--credentials")
args = parser.parse_args()

config = {
    "bootstrap.servers": args.bootstrap,
    "compression.type": args.codec,
    "batch.size": args.batch_size,
    "linger.ms": args.linger_ms,
    "enable.idempotence": False,
}
if args.credentials:
    with open(args.credentials) as f:
        credentials = json.load(f)
    config.update({
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": credentials["username"],
        "sasl.password": credentials["password"],
        "ssl.ca.pem": credentials["ca_certificate"],
    })
producer = Producer(config)
acked = failed = 0


def delivered(err, _msg):
    global acked, failed
    if err is None:
        acked += 1
    else:
        failed += 1


start = time.time()
for i in range(args.count):
    ticket = {
        "ticket_id": str(uuid.uuid4()),
        "client_id": f"C-{i % 997:05d}",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_790_000_000 + i * 7)),
        "channel": ["email", "phone", "chat", "web"][i % 4],
        "priority": ["low", "medium", "high", "critical"][i % 4],
        "subject": f"Invoice {i} was charged twice",
        "body": "Please look into it. " * 8,
        "customer_tier": "pro",
    }
    if args.malformed_every and i % args.malformed_every == 0:
        ticket["channel"] = "fax"
    producer.produce(args.topic, key=ticket["client_id"], value=json.dumps(ticket), on_delivery=delivered)
    producer.poll(0)
    if args.rate and i % 100 == 99:
        ahead = (i + 1) / args.rate - (time.time() - start)
        if ahead > 0:
            time.sleep(ahead)
producer.flush(120)
print(json.dumps({"acked": acked, "failed": failed}))
