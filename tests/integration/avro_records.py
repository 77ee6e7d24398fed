"""avro_records.py — records for the integration tests, written by an Avro
implementation we did not write (fastavro) and produced with confluent-kafka.

Run with the venv of scripts/pyenv.sh. Subcommands:

  evolve   CSV events → records written with several writer schemas (an
           older one, a newer one, the reader schema itself), framed with
           local ids 101, 102 and 1; the writer schemas go to --schemas-dir
           as 101.avsc, 102.avsc for `activity run --writer-schema`.
  bad      COUNT malformed records in assorted ways; writes the expected
           dead-letter reason counts as JSON.
  hostile  events whose hosts and urls hold quotes, backslashes, braces,
           newlines, control bytes, long and non-ASCII text; also writes them
           as CSV for the SQL reference.
  oversized  records larger than the dead-letter topic accepts, produced with
           a raised producer limit (--max-bytes): a 1.2 MB one, one just over
           1 MB (legal on a default topic), an event with a 1.1 MB url, a
           1.5 MB key, and a small bad one; writes their reasons, sizes and
           SHA-256 digests (value and key) as JSON.
"""
import hashlib
import argparse
import csv
import datetime
import io
import json
import os
import random
import struct
import sys

import fastavro
from confluent_kafka import Producer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_schema(name):
    with open(os.path.join(ROOT, "schemas", name + ".avsc")) as f:
        return json.load(f)


READER = load_schema("web_event")
DEVICE = load_schema("device")

# An older writer: no url or referrer, int device ids, fields in another order.
OLDER = {
    "type": "record", "name": "WebEvent", "namespace": "activity",
    "fields": [
        {"name": "host", "type": "string"},
        {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "user_id", "type": ["null", "long"], "default": None},
        {"name": "device_id", "type": ["null", "int"], "default": None},
    ],
}

# A newer writer: extra fields of other types, url as a widened union,
# referrer as bytes, event_time in microseconds.
NEWER = {
    "type": "record", "name": "WebEvent", "namespace": "activity",
    "fields": [
        {"name": "session", "type": {"type": "record", "name": "Session", "fields": [
            {"name": "id", "type": {"type": "fixed", "name": "SessionId", "size": 8}},
            {"name": "tags", "type": {"type": "array", "items": "string"}},
            {"name": "attrs", "type": {"type": "map", "values": ["null", "double"]}},
        ]}},
        {"name": "url", "type": ["null", "string", "long"], "default": None},
        {"name": "referrer", "type": ["null", "bytes"], "default": None},
        {"name": "user_id", "type": ["null", "long"], "default": None},
        {"name": "device_id", "type": ["null", "long"], "default": None},
        {"name": "channel", "type": {"type": "enum", "name": "Channel", "symbols": ["WEB", "APP"]}},
        {"name": "host", "type": "string"},
        {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "score", "type": "float", "default": 0.0},
    ],
}

EPOCH = datetime.datetime(1970, 1, 1)


def to_ms(ts):
    d = datetime.datetime.strptime(ts, "%Y-%m-%d %H:%M:%S.%f")
    delta = d - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


def opt_int(s):
    return int(s) if s != "" else None


def opt_str(s):
    return s if s != "" else None


def frame(schema_id, schema, record):
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), record)
    return buf.getvalue()


class Out:
    def __init__(self, brokers, topic):
        self.p = Producer({"bootstrap.servers": brokers, "enable.idempotence": True,
                           "linger.ms": 20, "partitioner": "murmur2_random"})
        self.topic = topic
        self.failed = 0
        self.n = 0

    def _cb(self, err, msg):
        if err is not None:
            self.failed += 1

    def send(self, value, key=None):
        while True:
            try:
                self.p.produce(self.topic, value=value, key=key, on_delivery=self._cb)
                break
            except BufferError:
                self.p.poll(0.1)
        self.n += 1
        if self.n % 1000 == 0:
            self.p.poll(0)

    def close(self):
        self.p.flush(120)
        if self.failed or len(self.p):
            sys.exit(f"avro_records: {self.failed} records not delivered")


def key_of(user_id):
    return str(user_id).encode() if user_id is not None else None


def event_record(row):
    return {"url": opt_str(row["url"]), "referrer": opt_str(row["referrer"]),
            "user_id": opt_int(row["user_id"]), "device_id": opt_int(row["device_id"]),
            "host": row["host"], "event_time": to_ms(row["event_time"])}


def cmd_evolve(a):
    os.makedirs(a.schemas_dir, exist_ok=True)
    for sid, sch in ((101, OLDER), (102, NEWER)):
        with open(os.path.join(a.schemas_dir, f"{sid}.avsc"), "w") as f:
            json.dump(sch, f)
    older, newer, reader = (fastavro.parse_schema(s) for s in (OLDER, NEWER, READER))
    out = Out(a.brokers, a.topic)
    rnd = random.Random(5)
    counts = {1: 0, 101: 0, 102: 0}
    with open(a.csv, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            ev = event_record(row)
            which = i % 3
            buf = io.BytesIO()
            if which == 0:
                sid = 1
                buf.write(b"\x00" + struct.pack(">I", sid))
                fastavro.schemaless_writer(buf, reader, ev)
            elif which == 1:
                sid = 101
                dev = ev["device_id"]
                if dev is not None and not -2**31 <= dev < 2**31:
                    sid = 1  # does not fit the older writer's int: write it as today
                buf.write(b"\x00" + struct.pack(">I", sid))
                if sid == 1:
                    fastavro.schemaless_writer(buf, reader, ev)
                else:
                    fastavro.schemaless_writer(buf, older, {
                        "host": ev["host"], "event_time": ev["event_time"],
                        "user_id": ev["user_id"], "device_id": dev})
                # The older writer has no url/referrer: the reference must
                # not need them (they are not in any sink table).
            else:
                sid = 102
                buf.write(b"\x00" + struct.pack(">I", sid))
                rec = dict(ev)
                rec["event_time"] = ev["event_time"] * 1000 + rnd.randrange(1000)
                rec["referrer"] = ev["referrer"].encode() if ev["referrer"] is not None else None
                rec["session"] = {"id": rnd.randbytes(8), "tags": ["a", "b"][: rnd.randrange(3)],
                                  "attrs": {"x": None, "y": 1.5}}
                rec["channel"] = "WEB"
                rec["score"] = 0.5
                fastavro.schemaless_writer(buf, newer, rec)
            counts[sid] += 1
            out.send(buf.getvalue(), key_of(ev["user_id"]))
    out.close()
    print(json.dumps(counts))


def cmd_bad(a):
    """COUNT malformed records, an equal share of each kind below."""
    rnd = random.Random(a.seed)
    reader = fastavro.parse_schema(READER)
    device = fastavro.parse_schema(DEVICE)
    base_ms = to_ms("2023-01-15 12:00:00.000000")

    def good(host="bad.example", t=None, url="/x", user=None):
        return {"url": url, "referrer": None, "user_id": user, "device_id": 1,
                "host": host, "event_time": base_ms if t is None else t}

    def enc(rec, schema=reader, sid=1):
        buf = io.BytesIO()
        buf.write(b"\x00" + struct.pack(">I", sid))
        fastavro.schemaless_writer(buf, schema, rec)
        return buf.getvalue()

    def body_cut():
        b = enc(good(host="truncated.example" * 3))
        return b[: rnd.randrange(6, len(b) - 1)]

    def huge_length():
        # url branch 1 then a string length of 2^60: must not allocate.
        return b"\x00\x00\x00\x00\x01" + b"\x02" + bytes([0x80] * 8) + b"\x20" + b"abc"

    kinds = [
        ("bad-magic-byte", lambda: bytes([rnd.randrange(1, 256)]) + enc(good())[1:]),
        ("too-short", lambda: bytes(rnd.randrange(0, 5))),
        ("unknown-schema-id", lambda: b"\x00" + struct.pack(">I", rnd.randrange(1000, 2**32))
         + enc(good())[5:]),
        ("undecodable-body", lambda: body_cut() if rnd.random() < 0.7 else huge_length()),
        ("trailing-bytes", lambda: enc(good()) + bytes([rnd.randrange(256)]) * rnd.randrange(1, 9)),
        ("missing-host", lambda: enc(good(host=""))),
        ("event-time-out-of-range", lambda: enc(good(t=rnd.choice(
            [-1, -86400000 * 365, 4102444800000, 2**62])))),
        ("oversized-field", lambda: enc(good(url="/" + "u" * rnd.randrange(4096, 20000)))),
        ("invalid-text", lambda: enc_bytes_host(
            rnd.choice([b"a\x00b", b"\xff\xfe", b"\xc0\xaf", b"\xed\xa0\x80"]))),
        ("incompatible-schema", lambda: enc({"device_id": 7, "browser_type": "x", "os_type": None,
                                             "device_type": None, "updated_at": None},
                                            device, 2)),
    ]

    def enc_bytes_host(raw):
        # fastavro would refuse invalid UTF-8 in a string: write the body by
        # hand (url null, referrer null, user null, device null, host raw).
        zz = (len(raw) << 1)
        t = base_ms << 1
        tv = bytearray()
        while t >= 0x80:
            tv.append((t & 0x7F) | 0x80)
            t >>= 7
        tv.append(t)
        return b"\x00\x00\x00\x00\x01" + b"\x00\x00\x00\x00" + bytes([zz]) + raw + bytes(tv)

    out = Out(a.brokers, a.topic)
    expected = {}
    for i in range(a.count):
        reason, make = kinds[i % len(kinds)]
        value = make()
        out.send(value, str(rnd.randrange(10**6)).encode())
        expected[reason] = expected.get(reason, 0) + 1
    out.close()
    with open(a.expected, "w") as f:
        json.dump(expected, f, sort_keys=True)


HOSTILE = [
    'quote"host', "single'quote", "back\\slash", "\\N", "NULL", "{0}", "{braces}.example",
    "a}{b", "}{", "new\nline", "car\rreturn", "tab\there", "comma,host", "semi;colon",
    " lead and trail ", "ctl\x01\x02\x1f\x7f", "ünïcödé.example", "日本語.example",
    "emoji\U0001F600", "percent%s%n", "dollar$1$$", "x" * 2048, "e" * 300 + "\n" + '"' * 50,
    "::colon::", "slash/host", "*glob?[x]",
]


def cmd_hostile(a):
    reader = fastavro.parse_schema(READER)
    out = Out(a.brokers, a.topic)
    rnd = random.Random(9)
    start = to_ms("2023-01-01 00:00:00.000000")
    def q(text):  # always quoted: CSV then keeps CR, LF and quotes verbatim
        return '"' + text.replace('"', '""') + '"'

    with open(a.csv, "w", newline="", encoding="utf-8") as f:
        f.write("url,referrer,user_id,device_id,host,event_time\n")
        for i in range(a.count):
            host = HOSTILE[i % len(HOSTILE)]
            url = "/" + HOSTILE[(i * 7 + 3) % len(HOSTILE)][:200]
            if i % 97 == 0:  # urls are no key: they may use all of --max-field-bytes
                url = "/" + "u" * 4000
            user = rnd.randrange(1, 300) if i % 5 else None
            t = start + rnd.randrange(31 * 86400000)
            ev = {"url": url, "referrer": None, "user_id": user, "device_id": None,
                  "host": host, "event_time": t}
            buf = io.BytesIO()
            buf.write(b"\x00\x00\x00\x00\x01")
            fastavro.schemaless_writer(buf, reader, ev)
            out.send(buf.getvalue(), key_of(user))
            d = EPOCH + datetime.timedelta(milliseconds=t)
            f.write(",".join([q(url), "", "" if user is None else str(user), "", q(host),
                              d.strftime("%Y-%m-%d %H:%M:%S.%f")]) + "\n")
    out.close()


def cmd_oversized(a):
    rnd = random.Random(a.seed)
    reader = fastavro.parse_schema(READER)
    ev = {"url": "/" + "u" * 1_100_000, "referrer": None, "user_id": 7, "device_id": 1,
          "host": "oversized.example", "event_time": to_ms("2023-01-15 12:00:00.000000")}
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", 1))
    fastavro.schemaless_writer(buf, reader, ev)
    kinds = {
        "huge": ("bad-magic-byte", b"\x07" + rnd.randbytes(1_200_000), b"huge"),
        "just-over-1mb": ("bad-magic-byte", b"\x07" + rnd.randbytes(1_040_000), None),
        "huge-field": ("oversized-field", buf.getvalue(), None),
        "huge-key": ("bad-magic-byte", b"\x09" + rnd.randbytes(100), rnd.randbytes(1_500_000)),
        "small": ("too-short", b"\x05xx", b"small"),
    }
    p = Producer({"bootstrap.servers": a.brokers, "message.max.bytes": a.max_bytes,
                  "enable.idempotence": True})
    failed = []
    expected = []
    for name in a.kinds.split(","):
        reason, value, key = kinds[name]
        p.produce(a.topic, value=value, key=key,
                  on_delivery=lambda err, msg: err and failed.append(str(err)))
        expected.append({"kind": name, "reason": reason, "size": len(value),
                         "sha256": hashlib.sha256(value).hexdigest(),
                         "key_size": len(key or b""),
                         "key_sha256": hashlib.sha256(key or b"").hexdigest()})
        p.poll(0)
    p.flush(60)
    if failed or len(p):
        sys.exit(f"avro_records: oversized records not delivered: {failed}")
    with open(a.expected, "w") as f:
        json.dump(expected, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("evolve")
    e.add_argument("--csv", required=True)
    e.add_argument("--schemas-dir", required=True)
    b = sub.add_parser("bad")
    b.add_argument("--count", type=int, required=True)
    b.add_argument("--expected", required=True)
    b.add_argument("--seed", type=int, default=3)
    h = sub.add_parser("hostile")
    h.add_argument("--csv", required=True)
    h.add_argument("--count", type=int, default=2000)
    o = sub.add_parser("oversized")
    o.add_argument("--expected", required=True)
    o.add_argument("--kinds", default="huge,just-over-1mb,huge-field,huge-key,small")
    o.add_argument("--max-bytes", type=int, default=8_000_000)
    o.add_argument("--seed", type=int, default=5)
    for p in (e, b, h, o):
        p.add_argument("--brokers", required=True)
        p.add_argument("--topic", required=True)
    a = ap.parse_args()
    {"evolve": cmd_evolve, "bad": cmd_bad, "hostile": cmd_hostile,
     "oversized": cmd_oversized}[a.cmd](a)


if __name__ == "__main__":
    main()
