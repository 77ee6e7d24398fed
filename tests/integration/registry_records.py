"""registry_records.py — for test_registry.sh: events written by a producer that is not
ours, with evolved writer schemas that it registers in the schema registry itself.

Run with the venv of scripts/pyenv.sh. It registers, under SUBJECT (<topic>-value) over
the registry's Confluent REST API, the reader schema (schemas/web_event.avsc: the registry
must hand back the id `activity load` got) and two evolved writer schemas:

  older  no url/referrer, int device ids, another field order
  newer  extra fields of several kinds (with and without defaults), url as a widened
         union, referrer as bytes, event_time in microseconds

then writes every CSV row with one of them (fastavro), framed with the id the registry
gave (Confluent framing: 0x00, big-endian id, Avro body), and produces it with
confluent-kafka. Finally it produces one record framed with an id the registry does not
know (checked: 404). Prints {"ids": {...}, "counts": {id: n}, "unknown": id} as JSON.
"""
import argparse
import csv
import datetime
import io
import json
import os
import random
import struct
import sys
import urllib.error
import urllib.parse
import urllib.request

import fastavro
from confluent_kafka import Producer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CT = "application/vnd.schemaregistry.v1+json"

with open(os.path.join(ROOT, "schemas", "web_event.avsc")) as f:
    READER_TEXT = f.read()
READER = json.loads(READER_TEXT)

OLDER = {
    "type": "record", "name": "WebEvent", "namespace": "activity",
    "fields": [
        {"name": "host", "type": "string"},
        {"name": "user_id", "type": ["null", "long"], "default": None},
        {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "device_id", "type": ["null", "int"], "default": None},
    ],
}

NEWER = {
    "type": "record", "name": "WebEvent", "namespace": "activity",
    "fields": [
        {"name": "schema_version", "type": "int", "default": 3},
        {"name": "url", "type": ["null", "string", "long"], "default": None},
        {"name": "referrer", "type": ["null", "bytes"], "default": None},
        {"name": "user_id", "type": ["null", "long"], "default": None},
        {"name": "device_id", "type": ["null", "long"], "default": None},
        {"name": "client", "type": {"type": "record", "name": "Client", "fields": [
            {"name": "agent", "type": "string"},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "weights", "type": {"type": "map", "values": "double"}},
        ]}},
        {"name": "channel", "type": {"type": "enum", "name": "Channel",
                                     "symbols": ["WEB", "APP", "API"]}},
        {"name": "host", "type": "string"},
        {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "trace", "type": ["null", {"type": "fixed", "name": "Trace", "size": 16}],
         "default": None},
    ],
}

EPOCH = datetime.datetime(1970, 1, 1)


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": CT, "Accept": CT})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def register(base, subject, schema_text):
    st, reply = http("POST", f"{base}/subjects/{urllib.parse.quote(subject, safe='')}/versions",
                     {"schema": schema_text})
    if st != 200 or not isinstance(reply, dict) or "id" not in reply:
        sys.exit(f"registry_records: registering under {subject}: {st} {reply}")
    return reply["id"]


def to_ms(ts):
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            d = datetime.datetime.strptime(ts, fmt)
            break
        except ValueError:
            continue
    else:
        sys.exit(f"registry_records: cannot read event_time {ts!r}")
    delta = d - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def opt(s, conv=str):
    return conv(s) if s != "" else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry", required=True, help="base URL (…/apis/ccompat/v7)")
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--reader-id", type=int, required=True,
                    help="the id `activity load` registered the reader schema with")
    a = ap.parse_args()
    base = a.registry.rstrip("/")
    subject = f"{a.topic}-value"

    # The same schema text under the same subject: a registry must return the same id.
    rid = register(base, subject, READER_TEXT)
    if rid != a.reader_id:
        sys.exit(f"registry_records: reader schema has id {rid} here, {a.reader_id} in load")
    oid = register(base, subject, json.dumps(OLDER))
    nid = register(base, subject, json.dumps(NEWER))
    if len({rid, oid, nid}) != 3:
        sys.exit(f"registry_records: ids not distinct: {rid} {oid} {nid}")
    # What the registry hands back for our ids must parse to what we registered.
    for sid, sch in ((oid, OLDER), (nid, NEWER)):
        st, reply = http("GET", f"{base}/schemas/ids/{sid}")
        if st != 200 or json.loads(reply["schema"]) != sch:
            sys.exit(f"registry_records: GET /schemas/ids/{sid}: {st} {reply}")

    reader, older, newer = (fastavro.parse_schema(s) for s in (READER, OLDER, NEWER))
    p = Producer({"bootstrap.servers": a.brokers, "enable.idempotence": True,
                  "linger.ms": 20, "partitioner": "murmur2_random"})
    failed = []

    def cb(err, _msg):
        if err is not None:
            failed.append(err)

    def send(value, key):
        while True:
            try:
                p.produce(a.topic, value=value, key=key, on_delivery=cb)
                return
            except BufferError:
                p.poll(0.1)

    rnd = random.Random(17)
    counts = {rid: 0, oid: 0, nid: 0}
    with open(a.csv, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            ev = {"url": opt(row["url"]), "referrer": opt(row["referrer"]),
                  "user_id": opt(row["user_id"], int), "device_id": opt(row["device_id"], int),
                  "host": row["host"], "event_time": to_ms(row["event_time"])}
            buf = io.BytesIO()
            dev = ev["device_id"]
            if i % 2 == 0 and (dev is None or -2**31 <= dev < 2**31):
                sid = oid
                buf.write(b"\x00" + struct.pack(">I", sid))
                fastavro.schemaless_writer(buf, older, {k: ev[k] for k in
                                                        ("host", "user_id", "event_time",
                                                         "device_id")})
            elif i % 2 == 0:
                sid = rid  # does not fit the older writer's int
                buf.write(b"\x00" + struct.pack(">I", sid))
                fastavro.schemaless_writer(buf, reader, ev)
            else:
                sid = nid
                buf.write(b"\x00" + struct.pack(">I", sid))
                rec = dict(ev)
                rec["event_time"] = ev["event_time"] * 1000 + rnd.randrange(1000)
                if ev["referrer"] is not None:
                    rec["referrer"] = ev["referrer"].encode()
                rec["client"] = {"agent": "py/" + str(rnd.randrange(100)),
                                 "tags": ["x", "y", "z"][: rnd.randrange(4)],
                                 "weights": {"a": rnd.random()} if i % 3 else {}}
                rec["channel"] = ("WEB", "APP", "API")[i % 3]
                rec["trace"] = rnd.randbytes(16) if i % 5 else None
                fastavro.schemaless_writer(buf, newer, rec)
            counts[sid] += 1
            key = str(ev["user_id"]).encode() if ev["user_id"] is not None else None
            send(buf.getvalue(), key)
            if i % 1000 == 0:
                p.poll(0)

    # One record framed with an id the registry does not know.
    unknown = max(rid, oid, nid) + 100000
    st, _ = http("GET", f"{base}/schemas/ids/{unknown}")
    if st != 404:
        sys.exit(f"registry_records: id {unknown} should be unknown, registry answered {st}")
    body = io.BytesIO()
    fastavro.schemaless_writer(body, reader, {"url": "/", "referrer": None, "user_id": 1,
                                              "device_id": 1, "host": "unknown.example",
                                              "event_time": to_ms("2023-01-10 00:00:00")})
    send(b"\x00" + struct.pack(">I", unknown) + body.getvalue(), b"1")

    p.flush(120)
    if failed or len(p):
        sys.exit(f"registry_records: {len(failed)} records not delivered: {failed[:3]}")
    print(json.dumps({"ids": {"reader": rid, "older": oid, "newer": nid},
                      "counts": {str(k): v for k, v in counts.items()}, "unknown": unknown}))


if __name__ == "__main__":
    main()
