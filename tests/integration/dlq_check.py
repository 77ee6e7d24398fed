"""dlq_check.py — reads a dead-letter topic with confluent-kafka (not our
code) and checks it against the records avro_records.py oversized produced:
each is there once with its reason; one that did not fit the topic is cut
to fit (value and key within LIMIT bytes together), carries
activity.truncated=true and its original sizes and SHA-256 digests; one
that fit is unchanged, byte for byte.

  dlq_check.py BROKERS TOPIC LIMIT=EXPECTED.json [LIMIT=EXPECTED.json...]

(LIMIT: what the DLQ accepted when those records were dead-lettered.)

Prints one line per dead letter; exits non-zero on any mismatch.
"""
import hashlib
import json
import sys

from confluent_kafka import Consumer, TopicPartition

brokers, topic = sys.argv[1], sys.argv[2]
want = []
for arg in sys.argv[3:]:
    limit, f = arg.split("=", 1)
    want += [dict(e, limit=int(limit)) for e in json.load(open(f))]
c = Consumer({"bootstrap.servers": brokers, "group.id": "dlq-check", "enable.auto.commit": False})
md = c.list_topics(topic, timeout=10).topics[topic]
got = []
for p in md.partitions:
    low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
    if high <= low:
        continue
    c.assign([TopicPartition(topic, p, low)])
    while True:
        m = c.poll(10)
        if m is None:
            sys.exit(f"no progress reading {topic} [{p}]")
        if m.error():
            continue
        got.append(m)
        if m.offset() + 1 >= high:
            break
c.close()

errors = []
for e in want:
    hits = []
    for m in got:
        h = {k: (v or b"").decode() for k, v in (m.headers() or [])}
        if h.get("activity.reason") != e["reason"]:
            continue
        truncated = h.get("activity.truncated") == "true"
        digest = (h.get("activity.original.sha256") if truncated
                  else hashlib.sha256(m.value() or b"").hexdigest())
        if digest == e["sha256"]:
            hits.append((m, h, truncated))
    if len(hits) != 1:
        errors.append(f"{e['kind']}: {len(hits)} dead letters with reason {e['reason']} and its digest")
        continue
    m, h, truncated = hits[0]
    value, key, limit = m.value() or b"", m.key() or b"", e["limit"]
    kept = len(value) + len(key)
    fits = e["size"] + e["key_size"] + 2048 <= limit
    print(f"  {e['kind']:14} {e['reason']:16} {e['size'] + e['key_size']:>9} bytes -> {kept:>9}"
          f"{' truncated' if truncated else ''}", file=sys.stderr)
    if truncated == fits:
        errors.append(f"{e['kind']}: truncated={truncated} for {e['size'] + e['key_size']} bytes, limit {limit}")
    if kept > limit:
        errors.append(f"{e['kind']}: dead letter of {kept} bytes exceeds {limit}")
    if truncated:
        if int(h["activity.original.size"]) != e["size"]:
            errors.append(f"{e['kind']}: activity.original.size differs")
        cut_key = "activity.original.key.size" in h
        if cut_key and (int(h["activity.original.key.size"]) != e["key_size"]
                        or h.get("activity.original.key.sha256") != e["key_sha256"]):
            errors.append(f"{e['kind']}: key size or digest headers wrong")
        if not cut_key and hashlib.sha256(key).hexdigest() != e["key_sha256"]:
            errors.append(f"{e['kind']}: key changed without activity.original.key.* headers")
    else:
        if hashlib.sha256(value).hexdigest() != e["sha256"] or hashlib.sha256(key).hexdigest() != e["key_sha256"]:
            errors.append(f"{e['kind']}: not truncated, yet not byte for byte the original")
if len(got) != len(want):
    errors.append(f"{len(got)} dead letters in {topic}, expected {len(want)}")
if errors:
    sys.exit("dlq_check: " + "; ".join(errors))
