"""make_corpus.py — writes the seed corpus of tests/fuzz/corpus (committed;
rerun only to change it): framed records written by fastavro with the
reader schemas and with the writer schemas fuzz_decode.c registers (ids 1,
2, 101, 102), a few broken ones, and schema JSON. Run with the venv of
scripts/pyenv.sh: .stack/pyenv/bin/python tests/fuzz/make_corpus.py
"""
import io
import json
import os
import struct
import sys

import fastavro

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import avro_records as ar  # noqa: E402

out = os.path.join(HERE, "corpus")
os.makedirs(out, exist_ok=True)


def framed(sid, schema, rec):
    buf = io.BytesIO()
    buf.write(b"\x00" + struct.pack(">I", sid))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(schema), rec)
    return buf.getvalue()


ev = {"url": "/a?b={c}", "referrer": None, "user_id": 444502572952128450, "device_id": -2147042689,
      "host": 'we"ird{host}\\\n', "event_time": 1672531610079}
seeds = {
    "event": framed(1, ar.READER, ev),
    "event_anon": framed(1, ar.READER, dict(ev, user_id=None, device_id=None, url=None)),
    "device": framed(2, ar.DEVICE, {"device_id": 7, "browser_type": "Chrome", "os_type": None,
                                    "device_type": "Other", "updated_at": 1672531610079}),
    "older": framed(101, ar.OLDER, {"host": "old.example", "event_time": 1672531610079,
                                    "user_id": 5, "device_id": 9}),
    "newer": framed(102, ar.NEWER, dict(ev, referrer=b"r", event_time=1672531610079123,
                                        session={"id": b"12345678", "tags": ["a", "b"],
                                                 "attrs": {"x": None, "y": 1.5}},
                                        channel="APP", score=0.5)),
    "recursive": b"\x00\x00\x00\x00\x67" + b"\x02\x00\x00\x02\x00\x00\x00\x04host\x02",
    "truncated": framed(1, ar.READER, ev)[:20],
    "short": b"\x00\x00",
    "schema_event": json.dumps(ar.READER).encode(),
    "schema_newer": json.dumps(ar.NEWER).encode(),
}
for name, data in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {out}")
