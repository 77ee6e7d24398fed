#!/usr/bin/env python3
"""
gen_dims.py — deterministic change histories of devices and user profiles, delivered the
way a compacted, keyed topic delivers them in practice: out of order, repeated, with
tombstones.

Owns: the input data of the SCD2 tests (tests/integration/test_scd2*.sh) and of the demo's
profile changes. It writes, into --out DIR:

  devices.<i>.csv     device changes, part i of --parts, in delivery order:
                      device_id,browser_type,os_type,device_type,updated_at,deleted
  profiles.<i>.jsonl  user profile changes, part i, one nested JSON object per line:
                      {"user_id": .., "name": {"first","last","title"},
                       "address": {"street","city","state","country","zip"},
                       "contact": {"type","value"}, "updated_at": ".."}
                      or, for a tombstone, {"user_id": .., "updated_at": "..", "deleted": true}
  devices_all.csv     every device record of all parts, in delivery order (flat CSV for
  profiles_all.csv    psql's \\copy; the plain-SQL reference reads these)

updated_at is "YYYY-MM-DD HH:MM:SS.fff" (UTC). Empty CSV fields and JSON nulls are nulls.

Shape of the histories (shares approximate, all drawn from one random.Random(seed), so the
same arguments give byte-identical files):
  * every entity starts with a full set of attributes; each later change alters one
    attribute group (a device's browser, OS or type; a user's address, name, title or
    contact) to a value from a small pool, so some changes repeat the current values
    (no-ops for SCD2), and ~3% of values are null;
  * changes of one entity are hours to weeks apart (closer for busy ones), all within
    --days days from --start; 1% of the users get a fifth of the profile changes;
  * --tombstones of the entities are deleted once at a random point of their history
    (some come back later with new values; a few deletions precede any value);
  * --dups of the records are delivered twice (exact copies), some adjacent, some much later;
  * --ties of the changes get a rival with the same updated_at and other values;
  * delivery order is time order with every record displaced by up to --window places, and
    --very-late of them held back by up to a whole part (late changes across flushes).

Usage: scripts/gen_dims.py --out DIR [--devices N] [--users N] [--profile-changes N]
       [--parts K] [--seed S] ...   (see --help)
"""

import argparse
import csv
import datetime
import json
import os
import random

BROWSERS = ["Chrome", "Firefox", "Safari", "Edge", "Chrome Mobile", "Mobile Safari",
            "Samsung Internet", "Opera", "Googlebot", "Chrome Mobile WebView"]
OSES = ["Windows", "Mac OS X", "Linux", "Android", "iOS", "Ubuntu", "Chrome OS", "Other"]
TYPES = ["Other", "Generic Smartphone", "iPhone", "Samsung SM-G991B", "Pixel 7", "Spider",
         'K "quoted" phone', "Mac"]

FIRST = ["Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Giorgos", "Hana", "Ivan", "Jo",
         "Kenji", "Lena", "Mateo", "Nia", "Olu", "Priya", "Quinn", "Rosa", "Sven", "Tariq"]
LAST = ["Smith", "García", "Nguyen", "O'Brien", "Müller", "Kowalski", "Okafor", "Tanaka",
        "Rossi", "Dubois", "Silva", "Cohen", "Ivanova", "Haddad", "Larsen", "Chen"]
TITLES = ["Mr", "Ms", "Mrs", "Dr", "Mx", "Prof"]
PLACES = [("Lisbon", "Lisboa", "Portugal"), ("São Paulo", "SP", "Brazil"),
          ("Austin", "TX", "United States"), ("Portland", "OR", "United States"),
          ("Berlin", "Berlin", "Germany"), ("Lagos", "Lagos", "Nigeria"),
          ("Osaka", "Osaka", "Japan"), ("Toronto", "ON", "Canada"),
          ("Kraków", "Lesser Poland", "Poland"), ("Cork", "Munster", "Ireland")]
STREETS = ["Main St", "High Street", "Rua Augusta", "Elm Ave", 'Old "Mill" Rd, Unit 4',
           "Hauptstraße", "Baker St", "King's Road", "Sakura-dori", "Back\\slash Lane"]
CONTACT_TYPES = ["email", "phone"]

MS_HOUR = 3_600_000


def maybe_null(rng, value, p=0.03):
    return None if rng.random() < p else value


def fmt_ts(ms):
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (ms % 1000)


def device_start(rng):
    return [maybe_null(rng, rng.choice(BROWSERS)), maybe_null(rng, rng.choice(OSES)),
            maybe_null(rng, rng.choice(TYPES))]


def device_change(rng, cur):
    new = list(cur)
    r = rng.random()
    if r < 0.15:
        return new  # a repeat of the current values
    new[rng.randrange(3)] = maybe_null(rng, rng.choice([BROWSERS, OSES, TYPES][rng.randrange(3)]))
    return new


def address(rng):
    city, state, country = rng.choice(PLACES)
    return ["%d %s" % (rng.randrange(1, 999), rng.choice(STREETS)), city, state, country,
            "%05d" % rng.randrange(100000)]


def contact(rng, first, last):
    if rng.random() < 0.5:
        return ["email", "%s.%s%d@example.com" % (first or "x", last or "y", rng.randrange(100))]
    return ["phone", "+1-555-%04d" % rng.randrange(10000)]


def profile_start(rng):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    p = [first, last, maybe_null(rng, rng.choice(TITLES))] + address(rng) + contact(rng, first,
                                                                                     last)
    return [maybe_null(rng, v, 0.01) for v in p]


def profile_change(rng, cur):
    new = list(cur)
    r = rng.random()
    if r < 0.12:
        return new
    if r < 0.45:
        new[3:8] = address(rng)
    elif r < 0.60:
        new[1] = rng.choice(LAST)
    elif r < 0.75:
        new[2] = maybe_null(rng, rng.choice(TITLES), 0.2)
    else:
        new[8:10] = contact(rng, new[0], new[1])
    return new


def histories(rng, ids, counts, start_ms, span_ms, first, change, tombstone_rate):
    """Yields (id, ms, values or None for a tombstone) for every entity."""
    for eid, n in zip(ids, counts):
        # n distinct instants: the first in the span's first quarter, the
        # rest hours to weeks apart (closer for busy entities), all within the span.
        t0 = start_ms + rng.randrange(span_ms // 4)
        gap = max(MS_HOUR, min(21 * 24 * MS_HOUR, (start_ms + span_ms - t0) // n))
        times, t = [], t0
        for _ in range(n):
            times.append(t)
            t += rng.randrange(1000, 2 * gap)
        events = []
        cur = first(rng)
        for k, t in enumerate(times):
            if k:
                cur = change(rng, cur)
            events.append((t, list(cur)))
        t += rng.randrange(1000, 2 * gap)
        if rng.random() < tombstone_rate:
            r = rng.random()
            if r < 0.1:
                pos = 0  # deleted before any value
            elif r < 0.6:
                pos = len(events)  # deleted for good
            else:
                pos = rng.randrange(1, len(events) + 1)  # deleted, maybe back later
            when = events[pos][0] - rng.randrange(1, MS_HOUR) if pos < len(events) else t
            events.insert(pos, (when, None))
        for when, vals in events:
            yield eid, when, vals


def distinct_ids(rng, n, lo, hi):
    seen, out = set(), []
    while len(out) < n:
        v = rng.randrange(lo, hi)
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def deliver(rng, records, args):
    """Adds duplicates and ties, then the delivery order: time order, locally shuffled,
    a few very late."""
    out = []
    for rec in records:
        out.append(rec)
        if rec[2] is not None and rng.random() < args.ties:
            rival = list(rec[2])
            rival[0] = (rival[0] or "") + " (rival)"
            out.append((rec[0], rec[1], rival))
    n = len(out)
    dups = [rec for rec in out if rng.random() < args.dups]
    keyed = []
    for rec in out:
        keyed.append((rec[1], rng.random(), rec))
    keyed.sort(key=lambda k: (k[0], k[1]))
    part = max(1, (n + len(dups)) // args.parts)
    order = []
    for i, (_, _, rec) in enumerate(keyed):
        shift = rng.randrange(part) if rng.random() < args.very_late else rng.randrange(
            args.window + 1)
        order.append((i + shift, rng.random(), rec))
    for rec in dups:
        i = rng.randrange(n)
        shift = rng.randrange(3) if rng.random() < 0.5 else rng.randrange(n)
        order.append((i + shift, rng.random(), rec))
    order.sort(key=lambda k: (k[0], k[1]))
    return [rec for _, _, rec in order]


def split(items, parts):
    size = (len(items) + parts - 1) // parts
    return [items[i * size:(i + 1) * size] for i in range(parts)]


def cell(v):
    return "" if v is None else v


def write_devices(out_dir, parts):
    all_rows = []
    for i, recs in enumerate(parts, 1):
        with open(os.path.join(out_dir, "devices.%d.csv" % i), "w", newline="",
                  encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["device_id", "browser_type", "os_type", "device_type", "updated_at",
                        "deleted"])
            for eid, ms, vals in recs:
                row = [eid] + [cell(v) for v in (vals or [None] * 3)] + [
                    fmt_ts(ms), "true" if vals is None else "false"]
                w.writerow(row)
                all_rows.append(row)
    with open(os.path.join(out_dir, "devices_all.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["device_id", "browser_type", "os_type", "device_type", "updated_at",
                    "deleted"])
        w.writerows(all_rows)


PROFILE_COLS = ["first_name", "last_name", "title", "street", "city", "state", "country", "zip",
                "contact_type", "contact_value"]


def profile_json(eid, ms, vals):
    if vals is None:
        return {"user_id": eid, "updated_at": fmt_ts(ms), "deleted": True}
    return {"user_id": eid,
            "name": {"first": vals[0], "last": vals[1], "title": vals[2]},
            "address": {"street": vals[3], "city": vals[4], "state": vals[5],
                        "country": vals[6], "zip": vals[7]},
            "contact": {"type": vals[8], "value": vals[9]},
            "updated_at": fmt_ts(ms)}


def write_profiles(out_dir, parts):
    header = ["user_id"] + PROFILE_COLS + ["updated_at", "deleted"]
    with open(os.path.join(out_dir, "profiles_all.csv"), "w", newline="",
              encoding="utf-8") as fa:
        wa = csv.writer(fa, lineterminator="\n")
        wa.writerow(header)
        for i, recs in enumerate(parts, 1):
            with open(os.path.join(out_dir, "profiles.%d.jsonl" % i), "w",
                      encoding="utf-8") as f:
                for eid, ms, vals in recs:
                    f.write(json.dumps(profile_json(eid, ms, vals), ensure_ascii=False) + "\n")
                    wa.writerow([eid] + [cell(v) for v in (vals or [None] * 10)] +
                                [fmt_ts(ms), "true" if vals is None else "false"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--devices", type=int, default=50000, help="devices (default 50000)")
    ap.add_argument("--device-changes", type=float, default=2.0,
                    help="mean changes per device (default 2.0)")
    ap.add_argument("--users", type=int, default=40000, help="users (default 40000)")
    ap.add_argument("--profile-changes", type=int, default=200000,
                    help="profile changes in all, before duplicates, ties and tombstones "
                         "(default 200000)")
    ap.add_argument("--parts", type=int, default=4, help="delivery parts (default 4)")
    ap.add_argument("--window", type=int, default=2000,
                    help="records are displaced by up to this many places (default 2000)")
    ap.add_argument("--very-late", type=float, default=0.005,
                    help="share held back by up to a whole part (default 0.005)")
    ap.add_argument("--dups", type=float, default=0.03, help="share repeated (default 0.03)")
    ap.add_argument("--ties", type=float, default=0.002,
                    help="share with a same-instant rival (default 0.002)")
    ap.add_argument("--tombstones", type=float, default=0.03,
                    help="share of entities deleted once (default 0.03)")
    ap.add_argument("--start", default="2023-01-01", help="first day (default 2023-01-01)")
    ap.add_argument("--days", type=int, default=180, help="days covered (default 180)")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    if args.users > args.profile_changes or args.parts < 1:
        ap.error("--users must not exceed --profile-changes; --parts must be >= 1")

    rng = random.Random(args.seed)
    d0 = datetime.datetime.strptime(args.start, "%Y-%m-%d")
    start_ms = int((d0 - datetime.datetime(1970, 1, 1)).total_seconds()) * 1000
    span_ms = args.days * 24 * MS_HOUR
    os.makedirs(args.out, exist_ok=True)

    dev_ids = distinct_ids(rng, args.devices, -2**31, 2**31)
    p_more = 1 - 1 / max(1.0, args.device_changes)
    dev_counts = []
    for _ in dev_ids:
        n = 1
        while rng.random() < p_more and n < 12:
            n += 1
        dev_counts.append(n)
    devs = list(histories(rng, dev_ids, dev_counts, start_ms, span_ms, device_start,
                          device_change, args.tombstones))
    write_devices(args.out, split(deliver(rng, devs, args), args.parts))

    user_ids = distinct_ids(rng, args.users, 1, 10**12)
    counts = [1] * args.users
    busy = max(1, args.users // 100)
    for _ in range(args.profile_changes - args.users):
        # Skewed: 1% of the users get a fifth of the changes.
        counts[rng.randrange(busy) if rng.random() < 0.2 else rng.randrange(args.users)] += 1
    profs = list(histories(rng, user_ids, counts, start_ms, span_ms, profile_start,
                           profile_change, args.tombstones))
    write_profiles(args.out, split(deliver(rng, profs, args), args.parts))


if __name__ == "__main__":
    main()
