#!/usr/bin/env python3
"""
gen_events.py — a deterministic, realistic month of web events for tests and benchmarks.

Owns: the synthetic input data of the integration tests (tests/integration/) and of volume
runs. It writes the event CSV of the contract (docs: /work/shared/DESIGN.md, "Event CSV"):

    url,referrer,user_id,device_id,host,event_time

with `event_time` like `2023-01-01 00:06:50.079000` (UTC, millisecond values printed with six
fractional digits) and empty `user_id` / `device_id` meaning null. `--format jsonl` writes the
same keys as one JSON object per line (null for a missing user_id, device_id or referrer).

The same arguments always produce byte-identical output: everything is drawn from one
random.Random(seed) using only random() and getrandbits(), and nothing iterates a set or
depends on hashing, the locale or the time zone.

Shape of the data (all per-event shares are approximate):
  * traffic is made of sessions (a user, a device and a host, 1..N hits a few seconds to
    minutes apart); hosts, users, devices and pages are Zipf-skewed: a few very active users,
    many one-off ones; a few dozen hosts with one dominating;
  * ~8% of events are anonymous (empty user_id), including crawler bursts on Spider devices;
  * ~2% use a device_id that is not in devices.csv, ~1% have an empty device_id, the rest use
    real device ids; every user has 1-3 preferred devices;
  * events cover every day of the month, with weekday/weekend and diurnal (UTC) patterns,
    and are written in time order, except for a few late arrivals (with edge cases on).

Edge cases (on by default, `--no-edge-cases` to omit; they are part of the --events total):
  * events at exactly YYYY-MM-01 00:00:00.000 and YYYY-MM-<last> 23:59:59.999, and in the last
    millisecond of the previous month and the first of the next one (three months appear);
  * exact duplicate rows, adjacent and replayed later in the file; late (out-of-order) events;
  * odd but legal-ish hosts: mixed case, punycode, unicode, trailing dot, host:port, IPv4,
    [IPv6]:port, a 200-character subdomain, and one with a comma, a double quote and {x};
  * a user active on every day of the month (on two devices of one browser type, so its
    datelist_int has every bit of the month set), a host active on a single day, a host with
    anonymous traffic only, users on unknown devices (including INT32_MIN / INT32_MAX ids),
    user_id 9223372036854775807 (INT64_MAX), and the device whose device_type holds a quote.

Skew shapes (`--skew LIST`, comma-separated, or `all`; off by default): adversarial rows added
to the month, shuffled into it (so they also arrive out of order). Each is switchable:
  * heavy-users: a few shared or bot user ids, each on thousands of distinct devices of
    hundreds of browser types in one month (up to 4,500 devices at --skew-scale 1);
  * hot-host: one host-day with several times --exact-limit distinct users, and two more with
    exactly --exact-limit and --exact-limit + 1 (at the default 1280: the last EXPLICIT sketch
    and the first SPARSE one);
  * many-hosts: thousands of hosts with a single event each;
  * every-day: a user active on every day of a 31-day month, on three devices at once (the
    same instants), of two browser types;
  * months: events over 14 months, 2023-12 to 2025-01 (a year end, the leap February 2024),
    with each month's first and last millisecond;
  * long-hosts: hosts of exactly --max-key-bytes bytes: ASCII, 2-, 3- and 4-byte UTF-8 and an
    incompressible mix, plus shorter multi-byte ones;
  * browser-changes: devices whose browser type changes after their events were processed,
    and devices described only after their events: `--devices-phase1-out` gets what to load
    first (older records, with an earlier updated_at, for the changed devices; nothing for the
    late ones), `--devices-phase2-out` what to load after the events have been processed.
The shapes need devices that devices.csv does not have (hundreds of browsers):
`--devices-out FILE` writes devices.csv plus those synthetic devices, to load beside the
events. `--skew-scale F` scales the shapes' sizes (soak runs use small ones).

Usage: scripts/gen_events.py [--events N] [--month YYYY-MM] [--seed S] [--out FILE] ...
       (see --help). 2,000,000 events take well under a minute.
"""

import argparse
import bisect
import calendar
import csv
import io
import json
import math
import os
import random
import sys

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
INT64_MAX = 9_223_372_036_854_775_807
INT32_MIN = -2_147_483_648
INT32_MAX = 2_147_483_647

HEADER = ("url", "referrer", "user_id", "device_id", "host", "event_time")

# Share of sessions (not events) of each kind; tuned so the event shares land near the
# targets in the header (crawler sessions are long, so they are rare).
P_ANON_HUMAN_SESSION = 0.052
P_BOT_SESSION = 0.0008
P_UNKNOWN_DEVICE = 0.02
P_NULL_DEVICE = 0.01

NAMED_HOSTS = [
    "www.eczachly.com",
    "zachwilson.tech",
    "admin.zachwilson.tech",
    "www.zachwilson.tech",
    "dataengineer.io",
    "www.dataengineer.io",
    "learn.dataengineer.io",
    "blog.zachwilson.tech",
    "bootcamp.techcreator.io",
    "api.zachwilson.tech",
]
SUBDOMAIN_WORDS = [
    "analytics", "beta", "cdn", "docs", "events", "forum", "jobs", "labs", "mail", "news",
    "shop", "staging", "status", "store", "talks", "video", "wiki", "community", "careers",
    "newsletter", "courses", "static", "dev", "metrics", "support",
]
HOST_DOMAINS = ["zachwilson.tech", "eczachly.com", "dataengineer.io", "techcreator.io"]

BLOG_SLUGS = [
    "cumulative-table-design", "fact-data-modeling", "slowly-changing-dimensions",
    "hyperloglog-explained", "kafka-vs-kinesis", "spark-joins", "datelist-int-trick",
    "reduced-facts", "idempotent-pipelines", "data-quality-patterns", "airflow-tips",
    "flink-watermarks", "iceberg-101", "graph-data-modeling", "my-first-data-job",
    "interview-prep", "salary-negotiation", "why-arrays", "streaming-is-hard", "2023-goals",
]
PAGES = (
    ["/", "/blog", "/about", "/contact", "/courses", "/courses/data-engineering-bootcamp",
     "/pricing", "/login", "/signup", "/newsletter", "/favicon.ico", "/sitemap.xml"]
    + ["/blog/" + s for s in BLOG_SLUGS]
    + ["/api/v1/spark-post", "/api/v1/users/me", "/api/v1/login", "/api/v1/events",
       "/api/v1/courses?limit=20&offset=40", "/api/v1/progress/lesson-12",
       "/search?q=kafka,redis", "/search?q=%22cumulative+tables%22",
       "/blog/datelist-int-trick?utm_source=linkedin&utm_medium=social",
       "/blog/hyperloglog-explained#accuracy"]
)
BOT_PAGES = [
    "/robots.txt", "/", "/sitemap.xml", "/wp-login.php", "/.env", "/wp-admin/", "/xmlrpc.php",
    "/.git/config", "/admin", "/blog", "/api/v1/spark-post", "/feed.xml",
]
EXTERNAL_REFERRERS = [
    "https://www.google.com/",
    "https://www.linkedin.com/",
    "https://t.co/",
    "https://www.youtube.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://www.reddit.com/r/dataengineering/",
    "https://news.ycombinator.com/item?id=35012345",
    "https://www.google.com/search?q=data,engineering,bootcamp",
    'https://example.com/share?text="cumulative tables, explained"',
    "android-app://com.google.android.gm/",
    "https://l.facebook.com/l.php?u=https%3A%2F%2Fwww.eczachly.com%2F",
    "http://admin.zachwilson.tech",
    "https://github.com/EcZachly/data-engineer-handbook",
]


# --------------------------------------------------------------------------- helpers

class Weighted:
    """Draws indexes 0..n-1 with precomputed cumulative weights (one random() + bisect)."""

    __slots__ = ("cum", "total", "rnd")

    def __init__(self, weights, rng):
        cum, acc = [], 0.0
        for w in weights:
            acc += w
            cum.append(acc)
        self.cum, self.total, self.rnd = cum, acc, rng.random

    def __call__(self):
        return bisect.bisect_right(self.cum, self.rnd() * self.total, 0, len(self.cum) - 1)


def zipf_weights(n, exponent, offset=1.0):
    return [1.0 / (i + offset) ** exponent for i in range(n)]


def shuffled(rng, items):
    """Fisher-Yates with random() only (stable across Python versions)."""
    items = list(items)
    for i in range(len(items) - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        items[i], items[j] = items[j], items[i]
    return items


def month_bounds(year, month):
    """(first ms of the month, first ms of the next month, days in month), UTC."""
    start = calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    ndays = calendar.monthrange(year, month)[1]
    return start, start + ndays * MS_PER_DAY, ndays


class TimeFormatter:
    """ms since the epoch -> 'YYYY-MM-DD HH:MM:SS.mmm000' with a per-day prefix cache."""

    def __init__(self):
        self.prefix = {}

    def __call__(self, t):
        day, rem = divmod(t, MS_PER_DAY)
        p = self.prefix.get(day)
        if p is None:
            y, m, d = _civil_from_days(day)
            p = self.prefix[day] = "%04d-%02d-%02d " % (y, m, d)
        h, rem = divmod(rem, MS_PER_HOUR)
        mi, rem = divmod(rem, 60_000)
        s, ms = divmod(rem, 1000)
        return "%s%02d:%02d:%02d.%03d000" % (p, h, mi, s, ms)


def _civil_from_days(z):
    # Howard Hinnant's civil_from_days (proleptic Gregorian, UTC).
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (y + (m <= 2), m, d)


def default_devices_path():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for cand in (os.path.join(repo, "data", "devices.csv"),
                 os.path.join(repo, "..", "shared", "data", "devices.csv")):
        if os.path.exists(cand):
            return os.path.normpath(cand)
    return os.path.normpath(os.path.join(repo, "..", "shared", "data", "devices.csv"))


def load_devices(path):
    """[(device_id, browser_type, device_type)] in file order."""
    out = []
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise SystemExit("gen_events: cannot read devices file: %s" % e)
    with f:
        r = csv.reader(f)
        header = next(r)
        if [h.strip() for h in header[:4]] != ["device_id", "browser_type", "os_type", "device_type"]:
            raise SystemExit("gen_events: %s: unexpected header %r" % (path, header))
        for row in r:
            if row:
                out.append((int(row[0]), row[1], row[3]))
    if not out:
        raise SystemExit("gen_events: %s: no devices" % path)
    return out


# --------------------------------------------------------------------------- generator

class Generator:
    def __init__(self, args, devices):
        self.rng = rng = random.Random(args.seed)
        self.args = args
        y, m = args.year, args.mon
        self.start, self.end, self.ndays = month_bounds(y, m)

        # Devices: Zipf popularity over a shuffled copy of devices.csv; crawlers use Spiders.
        self.devices = devices
        self.known_ids = {d[0] for d in devices}
        dev_order = shuffled(rng, range(len(devices)))
        self.dev_ids = [devices[i][0] for i in dev_order]
        self.pick_device = Weighted(zipf_weights(len(devices), 0.9, 5.0), rng)
        spiders = [d[0] for d in devices if d[2] == "Spider"] or [devices[0][0]]
        self.spider_ids = spiders
        self.pick_spider = Weighted(zipf_weights(len(spiders), 1.0, 2.0), rng)
        unknown = []
        while len(unknown) < 300:
            v = rng.getrandbits(32) - (1 << 31)
            if v not in self.known_ids and v not in unknown:
                unknown.append(v)
        self.unknown_ids = unknown
        self.pick_unknown = Weighted(zipf_weights(len(unknown), 1.0, 3.0), rng)

        # Hosts.
        hosts = list(NAMED_HOSTS[: args.hosts])
        seen = set(hosts)
        attempts = 0
        while len(hosts) < args.hosts:
            word = SUBDOMAIN_WORDS[int(rng.random() * len(SUBDOMAIN_WORDS))]
            h = "%s.%s" % (word, HOST_DOMAINS[int(rng.random() * len(HOST_DOMAINS))])
            attempts += 1
            if h in seen and attempts > 20 * len(SUBDOMAIN_WORDS) * len(HOST_DOMAINS):
                h = "%s%d.%s" % (word, len(hosts), h.split(".", 1)[1])  # --hosts is large
            if h not in seen:
                seen.add(h)
                hosts.append(h)
        self.hosts = hosts
        self.pick_host = Weighted(zipf_weights(len(hosts), 1.1), rng)

        # Users: random 62-bit ids, Zipf activity by (random) rank.
        ids, seen_ids = [], set()
        while len(ids) < args.users:
            v = rng.getrandbits(62)
            if v > 0 and v not in seen_ids:
                seen_ids.add(v)
                ids.append(v)
        self.user_ids = ids
        self.pick_user = Weighted(zipf_weights(len(ids), 1.0, 20.0), rng)
        self.user_devices = {}  # user index -> list of device ids (assigned on first use)

        # Time: day weights (weekday/weekend, trend, one viral day, noise), diurnal hours.
        day_w = []
        viral = int(rng.random() * self.ndays)
        for d in range(self.ndays):
            wd = calendar.weekday(y, m, d + 1)
            w = (0.72 if wd >= 5 else 1.0) * (1.0 + 0.15 * d / self.ndays)
            w *= 0.9 + 0.2 * rng.random()
            if d == viral:
                w *= 1.8
            day_w.append(w)
        self.pick_day = Weighted(day_w, rng)
        hour_w = [1.0 + 0.8 * math.cos(2 * math.pi * (h - 17) / 24) for h in range(24)]
        self.pick_hour = Weighted(hour_w, rng)

        self.pick_page = Weighted(zipf_weights(len(PAGES), 1.05), rng)
        self.pick_bot_page = Weighted(zipf_weights(len(BOT_PAGES), 0.8), rng)
        self.pick_ext_ref = Weighted(zipf_weights(len(EXTERNAL_REFERRERS), 1.2), rng)

    # -- sessions

    def devices_of(self, u):
        devs = self.user_devices.get(u)
        if devs is None:
            r = self.rng.random
            n = min(1 + (r() < 0.35) + (r() < 0.10), len(self.dev_ids))
            devs = []
            while len(devs) < n:
                d = self.dev_ids[self.pick_device()]
                if d not in devs:
                    devs.append(d)
            self.user_devices[u] = devs
        return devs

    def session_device(self, devs):
        r = self.rng.random()
        if r < P_UNKNOWN_DEVICE:
            return self.unknown_ids[self.pick_unknown()]
        if r < P_UNKNOWN_DEVICE + P_NULL_DEVICE:
            return None
        if len(devs) == 1 or r < 0.70:
            return devs[0]
        return devs[1 + int(self.rng.random() * (len(devs) - 1))]

    def regular(self, target):
        """About `target` events in [month start, month end), as (ms, url, ref, uid, dev, host)."""
        rows = []
        append = rows.append
        r = self.rng.random
        start, end = self.start, self.end
        pick_day, pick_hour, pick_host = self.pick_day, self.pick_hour, self.pick_host
        pick_page, pick_ext = self.pick_page, self.pick_ext_ref
        hosts, user_ids = self.hosts, self.user_ids
        log = math.log
        while len(rows) < target:
            t = start + pick_day() * MS_PER_DAY + pick_hour() * MS_PER_HOUR + int(r() * MS_PER_HOUR)
            host = hosts[pick_host()]
            x = r()
            if x < P_BOT_SESSION:  # a crawler burst: anonymous, Spider device, fast and long
                dev = self.spider_ids[self.pick_spider()] if r() < 0.97 else None
                n = 20 + int(r() * 180)
                for _ in range(n):
                    if t >= end or len(rows) >= target:
                        break
                    append((t, BOT_PAGES[self.pick_bot_page()], None, None, dev, host))
                    t += 50 + int(r() * 2000)
                continue
            if x < P_BOT_SESSION + P_ANON_HUMAN_SESSION:
                uid = None
                dev = self.session_device((self.dev_ids[self.pick_device()],))
            else:
                u = self.pick_user()
                uid = user_ids[u]
                dev = self.session_device(self.devices_of(u))
            n = 1 + int(-2.6 * log(1.0 - r()))  # geometric-ish, mean ~3.1
            if n > 60:
                n = 60
            ref = EXTERNAL_REFERRERS[pick_ext()] if r() < 0.55 else None
            prev = None
            for _ in range(n):
                if t >= end or len(rows) >= target:
                    break
                url = PAGES[pick_page()]
                if prev is not None:
                    ref = ("https://%s%s" % (host, prev)) if r() < 0.8 else None
                append((t, url, ref, uid, dev, host))
                prev = url
                t += 500 + int(-40_000 * log(1.0 - r()))
        return rows

    # -- edge cases

    def edge_cases(self):
        """(rows to sort in with the rest, rows to insert late). Uses its own random stream,
        so the number of rows depends only on the month and the regular data does not
        depend on the edge cases."""
        r = random.Random(self.args.seed * 1_000_003 + 7).random
        start, end, ndays = self.start, self.end, self.ndays
        day = lambda d: start + (d - 1) * MS_PER_DAY  # noqa: E731  (d is 1-based)
        page = lambda: PAGES[int(r() * len(PAGES))]  # noqa: E731
        rows = []

        by_browser = {}
        for dev_id, browser, _ in self.devices:
            by_browser.setdefault(browser, []).append(dev_id)
        chrome = sorted(by_browser.get("Chrome", [self.devices[0][0]]))
        chrome_a, chrome_b = chrome[0], chrome[-1]
        firefox = sorted(by_browser.get("Firefox", [self.devices[-1][0]]))[0]
        quoted = [d[0] for d in self.devices if '"' in d[2]]
        quoted_dev = quoted[0] if quoted else self.devices[0][0]
        spider = self.spider_ids[0]

        everyday_user = 444_502_572_952_128_450
        max_user = INT64_MAX
        unknown_only_user = 1_152_921_504_606_846_976  # 2^60
        mixed_user = 987_654_321_012_345_678
        quoted_user = 1
        main, second = "www.eczachly.com", "zachwilson.tech"

        # A user active on every day, alternating two Chrome devices (one browser_type), plus
        # a Firefox session on a few days.
        for d in range(1, ndays + 1):
            for k in range(1 + (d % 3 == 0)):
                t = day(d) + int(r() * MS_PER_DAY)
                dev = chrome_a if (d + k) % 2 else chrome_b
                rows.append((t, page(), None, everyday_user, dev, main if k == 0 else second))
            if d % 7 == 3:
                rows.append((day(d) + int(r() * MS_PER_DAY), "/blog", None, everyday_user,
                             firefox, "admin.zachwilson.tech"))

        # Month boundaries, exactly; the previous month's last and next month's first ms.
        rows += [
            (start, "/", None, everyday_user, chrome_a, main),
            (start, "/", "https://www.google.com/", None, None, second),
            (end - 1, "/blog", None, everyday_user, chrome_b, main),
            (end - 1, "/blog", None, everyday_user, chrome_b, main),  # exact duplicate
            (end - 1, "/api/v1/events", None, max_user, firefox, main),
            (end - 1, "/", None, None, self.unknown_ids[0], "admin.zachwilson.tech"),
            (start - 1, "/", None, everyday_user, chrome_a, main),
            (start - 1, "/", None, None, chrome_b, second),
            (end, "/", None, max_user, firefox, main),
            (end, "/login", None, unknown_only_user, INT32_MAX, main),
            (end, "/", None, None, None, "oneday.zachwilson.tech"),
        ]
        # INT64_MAX user, a user only ever on unknown devices (INT32_MIN / INT32_MAX), a user
        # on known and unknown devices, the device whose device_type contains a quote.
        for d in (2, 15, ndays):
            rows.append((day(d) + int(r() * MS_PER_DAY), "/", None, max_user, firefox, second))
        for d, dev in ((3, INT32_MIN), (9, INT32_MAX), (20, INT32_MIN)):
            rows.append((day(d) + int(r() * MS_PER_DAY), "/courses", "https://t.co/",
                         unknown_only_user, dev, main))
        for d, dev in ((4, chrome_a), (5, self.unknown_ids[1]), (6, None), (7, firefox)):
            rows.append((day(d) + int(r() * MS_PER_DAY), "/pricing", None, mixed_user, dev, main))
        for d in (10, 11):
            rows.append((day(d) + int(r() * MS_PER_DAY), "/", None, quoted_user, quoted_dev,
                         "www.dataengineer.io"))

        # Odd hosts, a few events each over several days (mixed known and anonymous users).
        long_sub = ".".join(["a" * 62, "b" * 62, "c" * 62, "d" * 11])  # 200 characters
        odd_hosts = [
            "WWW.EczAchly.COM",
            "xn--bcher-kva.example",
            "bücher.example",
            "zachwilson.tech.",
            "zachwilson.tech:8080",
            "192.168.10.20",
            "[2001:db8::7]:8443",
            long_sub + ".zachwilson.tech",
            'we,ird"host{x}.example',
        ]
        for i, h in enumerate(odd_hosts):
            for j in range(4):
                d = 1 + (i * 3 + j * 5) % ndays
                uid = None if j == 3 else self.user_ids[(i * 7 + j) % len(self.user_ids)]
                dev = chrome_a if j % 2 == 0 else firefox
                rows.append((day(d) + int(r() * MS_PER_DAY), PAGES[j], None, uid, dev, h))
        # A host active on one day only, a host with anonymous traffic only.
        one_day = day(min(17, ndays))
        for j in range(5):
            uid = self.user_ids[j % len(self.user_ids)] if j < 4 else None
            rows.append((one_day + int(r() * MS_PER_DAY), "/", None, uid, chrome_b,
                         "oneday.zachwilson.tech"))
        for d in (1, 8, ndays):
            for _ in range(3):
                rows.append((day(d) + int(r() * MS_PER_DAY), "/robots.txt", None, None,
                             spider, "anon-only.zachwilson.tech"))

        # Late (out-of-order) arrivals: old events written after later ones, including an
        # exact duplicate of the first event of the month.
        late = [
            (start - 1, "/late", None, None, None, second),
            (day(1) + 5 * MS_PER_HOUR, "/blog/streaming-is-hard", None, everyday_user,
             chrome_a, main),
            (day(2) + 123, "/", None, mixed_user, chrome_a, "www.dataengineer.io"),
            (start, "/", None, everyday_user, chrome_a, main),
        ]
        return rows, late

    N_DUPS, N_LATE_DUPS = 8, 3

    def generate(self):
        target = self.args.events
        if not self.args.edge_cases:
            rows = self.regular(target)
            rows.sort(key=lambda row: row[0])
            return rows
        edge, late = self.edge_cases()
        n_edge = len(edge) + len(late) + self.N_DUPS + self.N_LATE_DUPS
        if target < n_edge + 100:
            raise SystemExit("gen_events: --events must be at least %d with edge cases "
                             "(or use --no-edge-cases)" % (n_edge + 100))
        rows = self.regular(target - n_edge)
        r = self.rng.random
        # Exact duplicates of regular rows: some sort next to their original, some come late.
        dups = [rows[int(r() * len(rows))] for _ in range(self.N_DUPS)]
        late += [rows[int(r() * len(rows))] for _ in range(self.N_LATE_DUPS)]
        rows += edge
        rows += dups
        rows.sort(key=lambda row: row[0])
        n = len(rows)
        positions = sorted(n // 2 + int(r() * (n // 2)) for _ in late)
        out, prev = [], 0
        for pos, row in zip(positions, late):
            out += rows[prev:pos]
            out.append(row)
            prev = pos
        out += rows[prev:]
        if len(out) != target:
            raise SystemExit("gen_events: internal error: %d rows, wanted %d" % (len(out), target))
        return out


# --------------------------------------------------------------------------- skew shapes

SKEW_SHAPES = ("heavy-users", "hot-host", "many-hosts", "every-day", "months", "long-hosts",
               "browser-changes")
SYNTH_DEVICE_BASE = 10_000_000_000  # above every int32 id of devices.csv


def utf8_exact(rnd, nbytes, widths):
    """A string of exactly nbytes UTF-8 bytes, of characters of the given byte widths
    (ASCII fills the remainder), no NUL and nothing PostgreSQL text refuses."""
    ranges = {1: (0x21, 0x7E), 2: (0x0100, 0x07FF), 3: (0x4E00, 0x9FFF), 4: (0x1F300, 0x1FAFF)}
    out, left = [], nbytes
    while left > 0:
        w = widths[int(rnd() * len(widths))]
        if w > left:
            w = 1
        lo, hi = ranges[w]
        c = chr(lo + int(rnd() * (hi - lo + 1)))
        if c in "{}":  # legal, but keep the hash tag tests elsewhere
            c = "x"
        out.append(c)
        left -= len(c.encode("utf-8"))
    s = "".join(out)
    assert len(s.encode("utf-8")) == nbytes
    return s


class Skew:
    """Adversarial rows (ms, url, ref, uid, dev, host) and the synthetic devices they use."""

    def __init__(self, gen, args):
        self.gen, self.args = gen, args
        self.rng = random.Random(args.seed * 7_919 + 13)
        self.scale = args.skew_scale
        # Synthetic devices: hundreds of browser types, some multi-byte, some with quotes.
        n_browsers = max(3, int(300 * min(1.0, self.scale * 2)))
        browsers = ["SkewBrowser %d" % i for i in range(n_browsers)]
        for i in range(0, n_browsers, 7):
            browsers[i] = "Brö%dser «ü» 浏览器 %s" % (i, "🦊" if i % 2 else '"q,"')
        n_dev = max(50, int(3000 * self.scale))
        self.synth = [(SYNTH_DEVICE_BASE + i, browsers[i % n_browsers], "SkewOS", "Other")
                      for i in range(n_dev)]
        # Two devices whose browser_type is exactly --max-key-bytes long (a key column of
        # user_devices_cumulated), one of them incompressible multi-byte UTF-8.
        rk = random.Random(args.seed * 31 + 5).random
        self.long_browser_devs = (SYNTH_DEVICE_BASE - 1, SYNTH_DEVICE_BASE - 2)
        self.synth += [(self.long_browser_devs[0], "B" * args.max_key_bytes, "SkewOS", "Other"),
                       (self.long_browser_devs[1], utf8_exact(rk, args.max_key_bytes, (1, 2, 3, 4)),
                        "SkewOS", "Other")]
        self.all_dev_ids = [d[0] for d in gen.devices] + [d[0] for d in self.synth]
        self.changed, self.late = set(), set()

    def browser_changes(self):
        """No rows of its own: picks the popular devices whose records arrive in two phases."""
        ids = self.gen.dev_ids
        k = min(len(ids) // 3, self.n(300, 10))
        self.changed = set(ids[:k:2])  # an older record with another browser comes first
        self.late = set(ids[1:k:2])    # nothing comes first: their events wait for them
        return []

    def write_phases(self, final, phase1, phase2):
        """final: every device as it ends up. Phase 1: all but the changed and late ones, plus
        the changed ones' older records; phase 2: the changed and late ones' final records."""
        moved = self.changed | self.late
        with open(phase1, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(("device_id", "browser_type", "os_type", "device_type", "updated_at"))
            for d in final:
                if d[0] not in moved:
                    w.writerow(tuple(d) + ("2022-06-01 00:00:00.000000",))
                elif d[0] in self.changed:
                    w.writerow((d[0], "Before-" + d[1], d[2], d[3], "2022-01-01 00:00:00.000000"))
        with open(phase2, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(("device_id", "browser_type", "os_type", "device_type", "updated_at"))
            for d in final:
                if d[0] in moved:
                    w.writerow(tuple(d) + ("2022-06-01 00:00:00.000000",))

    def n(self, full, least=1):
        return max(least, int(full * self.scale))

    def t_in_month(self, start, ndays):
        return start + int(self.rng.random() * ndays * MS_PER_DAY)

    def rows(self, shapes):
        out = []
        for shape in shapes:
            out += getattr(self, shape.replace("-", "_"))()
        return out

    def heavy_users(self):
        g, r = self.gen, self.rng.random
        out = []
        ids = self.all_dev_ids
        for k in range(self.n(5, 2)):
            uid = 7_000_000_000_000_000_000 + k
            n_dev = min(len(ids), self.n(1700 + int(r() * 2800), 20))
            if k == 0:
                n_dev = min(len(ids), self.n(4500, 30))
            picked = set()
            while len(picked) < n_dev:
                picked.add(ids[int(r() * len(ids))])
            for dev in sorted(picked):
                for _ in range(1 + (r() < 0.3)):
                    host = g.hosts[g.pick_host()]
                    out.append((self.t_in_month(g.start, g.ndays), "/", None, uid, dev, host))
            # The same user on unknown and null devices too.
            out.append((self.t_in_month(g.start, g.ndays), "/", None, uid, g.unknown_ids[0],
                        g.hosts[0]))
            out.append((self.t_in_month(g.start, g.ndays), "/", None, uid, None, g.hosts[0]))
        return out

    def hot_host(self):
        g, r = self.gen, self.rng.random
        limit = self.args.exact_limit
        out = []
        day0 = g.start + min(14, g.ndays - 1) * MS_PER_DAY
        for host, n_users, day in (("hot.skew.example", self.n(3 * limit, limit + 50), day0),
                                   ("at-limit.skew.example", limit, day0),
                                   ("over-limit.skew.example", limit + 1, day0 + MS_PER_DAY)):
            for i in range(n_users):
                uid = 5_000_000_000_000 + i * 7_777 + (host == "hot.skew.example")
                dev = g.dev_ids[g.pick_device()] if r() < 0.9 else None
                out.append((day + int(r() * MS_PER_DAY), "/", None, uid, dev, host))
                if r() < 0.05:  # a repeat visit: a hit, not a new unique
                    out.append((day + int(r() * MS_PER_DAY), "/x", None, uid, dev, host))
            out.append((day + int(r() * MS_PER_DAY), "/", None, None, None, host))  # anonymous
        return out

    def many_hosts(self):
        g, r = self.gen, self.rng.random
        out = []
        for i in range(self.n(3000, 50)):
            uid = g.user_ids[g.pick_user()] if r() < 0.7 else None
            dev = g.dev_ids[g.pick_device()] if r() < 0.9 else None
            out.append((self.t_in_month(g.start, g.ndays), "/", None, uid, dev,
                        "h%05d.many.skew.example" % i))
        return out

    def every_day(self):
        g = self.gen
        # A 31-day month: the generated one when it has 31 days, else January 2024.
        if g.ndays == 31:
            start = g.start
        else:
            start = month_bounds(2024, 1)[0]
        by_browser = {}
        for dev_id, browser, _ in g.devices:
            by_browser.setdefault(browser, []).append(dev_id)
        names = sorted(b for b in by_browser if len(by_browser[b]) >= 2)
        b1, b2 = names[0], names[-1]
        devs = (by_browser[b1][0], by_browser[b1][1], by_browser[b2][0])
        uid = 31_313_131_313
        out = []
        for d in range(31):
            t = start + d * MS_PER_DAY + int(self.rng.random() * MS_PER_DAY)
            for dev in devs:  # the same instant on three devices
                out.append((t, "/daily", None, uid, dev, "every-day.skew.example"))
        out.append((start, "/first-ms", None, uid, devs[0], "every-day.skew.example"))
        out.append((start + 31 * MS_PER_DAY - 1, "/last-ms", None, uid, devs[2],
                    "every-day.skew.example"))
        return out

    def months(self):
        g, r = self.gen, self.rng.random
        out = []
        y, m = 2023, 12
        for _ in range(14):
            start, end, nd = month_bounds(y, m)
            for i in range(self.n(300, 20)):
                uid = g.user_ids[g.pick_user()] if r() < 0.9 else None
                dev = g.dev_ids[g.pick_device()] if r() < 0.95 else None
                host = g.hosts[g.pick_host()] if i % 5 else "months.skew.example"
                out.append((self.t_in_month(start, nd), "/", None, uid, dev, host))
            uid = g.user_ids[0]
            out.append((start, "/first", None, uid, g.dev_ids[0], "months.skew.example"))
            out.append((end - 1, "/last", None, uid, g.dev_ids[0], "months.skew.example"))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out

    def long_hosts(self):
        g, r = self.gen, self.rng.random
        limit = self.args.max_key_bytes
        hosts = [
            "a" * (limit - 13) + ".skew.example",
            utf8_exact(r, limit, (2,)),
            utf8_exact(r, limit, (3,)),
            utf8_exact(r, limit, (4,)),
            utf8_exact(r, limit, (1, 2, 3, 4)),  # incompressible: a btree entry of full size
            utf8_exact(r, limit - 1, (4,)),
            "bücher-€-🦊.skew.example",
            "日本語.例え.テスト",
        ]
        out = []
        for h in hosts:
            for j in range(3):
                uid = g.user_ids[g.pick_user()] if j < 2 else None
                dev = g.dev_ids[g.pick_device()]
                out.append((self.t_in_month(g.start, g.ndays), "/", None, uid, dev, h))
        for k, dev in enumerate(self.long_browser_devs):
            out.append((self.t_in_month(g.start, g.ndays), "/", None, 424_242 + k, dev, hosts[k]))
        return out


def all_devices(devices_path, synth):
    """devices.csv's rows as (id, browser, os, type), then the synthetic ones."""
    with open(devices_path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        next(r)
        rows = [(int(x[0]), x[1], x[2], x[3]) for x in r if x]
    return rows + list(synth)


def write_devices(path, devices):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("device_id", "browser_type", "os_type", "device_type"))
        w.writerows(devices)


# --------------------------------------------------------------------------- output

def write_rows(rows, fmt, f, chunk=50_000):
    tf = TimeFormatter()
    if fmt == "csv":
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        for i in range(0, len(rows), chunk):
            w.writerows([(url, ref, uid, dev, host, tf(t))
                         for t, url, ref, uid, dev, host in rows[i:i + chunk]])
    else:
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        for i in range(0, len(rows), chunk):
            f.write("".join(
                dumps({"url": url, "referrer": ref, "user_id": uid, "device_id": dev,
                       "host": host, "event_time": tf(t)}) + "\n"
                for t, url, ref, uid, dev, host in rows[i:i + chunk]))


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Generate a deterministic, realistic month of web events (CSV or JSON lines).")
    p.add_argument("--events", type=int, default=300_000, help="number of event rows (default 300000)")
    p.add_argument("--month", default="2023-01", help="YYYY-MM (default 2023-01)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    p.add_argument("--devices", default=None,
                   help="devices CSV (default <repo>/data/devices.csv if present, "
                        "else <repo>/../shared/data/devices.csv)")
    p.add_argument("--users", type=int, default=40_000, help="size of the user population (default 40000)")
    p.add_argument("--hosts", type=int, default=40, help="number of regular hosts (default 40)")
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.add_argument("--out", default="-", help="output file (default stdout)")
    p.add_argument("--edge-cases", dest="edge_cases", action="store_true", default=True,
                   help="include edge-case rows (default)")
    p.add_argument("--no-edge-cases", dest="edge_cases", action="store_false")
    p.add_argument("--stats", action="store_true", help="print a summary to stderr")
    p.add_argument("--skew", default="", help="adversarial shapes to add, comma-separated, or "
                   "'all': " + ", ".join(SKEW_SHAPES))
    p.add_argument("--skew-scale", type=float, default=1.0,
                   help="size of the skew shapes (default 1: a user on 4,500 devices)")
    p.add_argument("--exact-limit", type=int, default=1280,
                   help="the processor's --exact-uniques-limit, for hot-host (default 1280, "
                        "the daily sketches' EXPLICIT threshold)")
    p.add_argument("--max-key-bytes", type=int, default=2048,
                   help="the processor's --max-key-bytes, for long-hosts (default 2048)")
    p.add_argument("--devices-out", default=None,
                   help="write devices.csv plus the skew shapes' synthetic devices here")
    p.add_argument("--devices-phase1-out", default=None,
                   help="browser-changes: the device records to load before the events")
    p.add_argument("--devices-phase2-out", default=None,
                   help="browser-changes: the device records to load after them")
    a = p.parse_args(argv)
    try:
        y, m = a.month.split("-")
        a.year, a.mon = int(y), int(m)
        if not (1 <= a.mon <= 12 and 1 <= a.year <= 9998 and len(y) == 4 and len(m) == 2):
            raise ValueError
    except ValueError:
        p.error("--month must look like 2023-01")
    if a.events < 0 or a.users < 1 or a.hosts < 1:
        p.error("--events must be >= 0, --users and --hosts >= 1")
    if a.devices is None:
        a.devices = default_devices_path()
    a.skew_shapes = list(SKEW_SHAPES) if a.skew == "all" else [x for x in a.skew.split(",") if x]
    for x in a.skew_shapes:
        if x not in SKEW_SHAPES:
            p.error("--skew: unknown shape %r (known: %s)" % (x, ", ".join(SKEW_SHAPES)))
    if a.skew_scale <= 0 or a.exact_limit < 1 or a.max_key_bytes < 40:
        p.error("--skew-scale must be > 0, --exact-limit >= 1, --max-key-bytes >= 40")
    return a


def main(argv):
    args = parse_args(argv)
    devices = load_devices(args.devices)
    gen = Generator(args, devices)
    rows = gen.generate()
    if args.skew_shapes or args.devices_out:
        skew = Skew(gen, args)
        extra = skew.rows(args.skew_shapes)
        # Shuffled into the month: skew rows also arrive out of order.
        rnd = skew.rng.random
        positions = sorted(int(rnd() * (len(rows) + 1)) for _ in extra)
        merged, prev = [], 0
        for pos, row in zip(positions, shuffled(skew.rng, extra)):
            merged += rows[prev:pos]
            merged.append(row)
            prev = pos
        rows = merged + rows[prev:]
        final = all_devices(args.devices, skew.synth)
        if args.devices_out:
            write_devices(args.devices_out, final)
        if args.devices_phase1_out and args.devices_phase2_out:
            skew.write_phases(final, args.devices_phase1_out, args.devices_phase2_out)
    if args.out == "-":
        f = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        write_rows(rows, args.format, f)
        f.flush()
        f.detach()
    else:
        with open(args.out, "w", encoding="utf-8", newline="") as f:
            write_rows(rows, args.format, f)
    if args.stats:
        known = gen.known_ids
        n = len(rows) or 1
        anon = sum(1 for row in rows if row[3] is None)
        nulld = sum(1 for row in rows if row[4] is None)
        unk = sum(1 for row in rows if row[4] is not None and row[4] not in known)
        print("gen_events: %d rows, %d hosts, %d users; anonymous %.2f%%, unknown device %.2f%%, "
              "null device %.2f%%" % (len(rows), len({row[5] for row in rows}),
                                      len({row[3] for row in rows if row[3] is not None}),
                                      100.0 * anon / n, 100.0 * unk / n, 100.0 * nulld / n),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except BrokenPipeError:  # e.g. piped into head: not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
