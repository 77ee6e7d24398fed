#!/usr/bin/env python3
"""
report_check.py — checks `activity report`'s outputs for one month against the plain-SQL
expectation (report_reference.sql's JSON), for tests/integration/test_report.sh.

    report_check.py data EXPECTED.json REPORT.json REPORT.csv REPORT.txt [--uniques-tolerance P]
        the JSON and CSV hold every section equal to the expectation (CSV parsed with the
        csv module, RFC 4180); the text output shows every section and each busiest host's
        line with its numbers
    report_check.py html EXPECTED.json DOM.html
        the DOM Chromium built from the page: the charts hold one point per day and series,
        one bar per (day, non-zero growth state), one heatmap cell per busiest host and day
        of the month, one bar per top host, with the expected values; host names arrive
        intact and no element came from them (no <script>)
    report_check.py png SCREENSHOT.png
        the screenshot shows the charts: each series' and state's colour (DAU, WAU, MAU; new,
        retained, resurrected, churned) paints at least 100 pixels
    report_check.py empty REPORT.json
        a report against a database without the tables: every section empty with a note

Monthly uniques are estimates where the real view reads sketches: --uniques-tolerance P
accepts P percent off the exact COUNT(DISTINCT) (0, the default, demands exact counts).
Exits 1 with the differences on any mismatch.
"""
import csv
import html.parser
import io
import json
import struct
import sys
import zlib

SECTIONS = ["busiest_hosts", "top_hosts_by_uniques", "daily_users", "growth_accounting",
            "browsers", "busiest_hosts_daily_hits", "row_counts"]
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def finish(what):
    if errors:
        for e in errors[:40]:
            print(f"report_check {what}: {e}", file=sys.stderr)
        if len(errors) > 40:
            print(f"report_check {what}: ... {len(errors) - 40} more", file=sys.stderr)
        sys.exit(1)
    print(f"report_check {what}: ok", file=sys.stderr)


def close(a, b, pct):
    return abs(float(a) - float(b)) <= float(b) * pct / 100 + 1e-9


def expected_top(exp, limit, pct):
    """The top hosts by uniques: exactly the first `limit` when exact; with estimates, the
    report's hosts are checked one by one instead (ties and near-ties may reorder)."""
    return exp["host_monthly_uniques"][:limit] if pct == 0 else None


def compare_rows(name, got, want, keys, tol=None):
    if not check(len(got) == len(want), f"{name}: {len(got)} rows, expected {len(want)}"):
        return
    for i, (g, w) in enumerate(zip(got, want)):
        for k in keys:
            if tol and k in tol:
                ok = g.get(k) is not None and tol[k](g[k], w[k])
            else:
                ok = g.get(k) == w[k]
            check(ok, f"{name} row {i + 1} {k}: {g.get(k)!r}, expected {w[k]!r}")


def check_sections(rep, exp, pct, limit):
    check(rep["month"] == exp["month"], f"month {rep['month']}, expected {exp['month']}")
    check(rep["days_in_month"] == exp["days_in_month"], "days_in_month")
    for s in SECTIONS:
        check(s in rep, f"section {s} missing")
    compare_rows("busiest_hosts", rep["busiest_hosts"], exp["busiest_hosts"],
                 ["host", "hits", "peak_daily_uniques", "active_days"])
    compare_rows("busiest_hosts_daily_hits", rep["busiest_hosts_daily_hits"],
                 exp["busiest_hosts_daily_hits"], ["host", "day", "hits"])
    compare_rows("daily_users", rep["daily_users"], exp["daily_users"],
                 ["day", "dau", "wau", "mau"])
    for i, r in enumerate(rep["daily_users"]):
        if r.get("mau"):
            check(abs(float(r["stickiness"]) - r["dau"] / r["mau"]) < 0.0005,
                  f"daily_users row {i + 1}: stickiness {r['stickiness']} is not dau/mau")
    compare_rows("growth_accounting", rep["growth_accounting"], exp["growth_accounting"],
                 ["day", "new", "retained", "resurrected", "churned", "stale"],
                 {"churned": lambda g, w: abs(g) == w})
    compare_rows("browsers", rep["browsers"], exp["browsers"],
                 ["browser_type", "users", "user_days"])
    top = expected_top(exp, limit, pct)
    exact = {r["host"]: r["monthly_uniques"] for r in exp["host_monthly_uniques"]}
    if top is not None:
        compare_rows("top_hosts_by_uniques", rep["top_hosts_by_uniques"], top,
                     ["host", "monthly_uniques"])
    else:
        check(len(rep["top_hosts_by_uniques"]) == min(limit, len(exact)),
              "top_hosts_by_uniques: row count")
        for r in rep["top_hosts_by_uniques"]:
            check(r["host"] in exact and close(r["monthly_uniques"], exact[r["host"]], pct),
                  f"top_hosts_by_uniques {r['host']!r}: {r['monthly_uniques']}, exact "
                  f"{exact.get(r['host'])}")
    counts = {r["table_name"]: r["rows"] for r in rep["row_counts"]}
    for t, n in exp["row_counts"].items():
        if counts.get(t) is None:
            check(t in rep["notes"].get("row_counts", ""),
                  f"row_counts: {t} has no count and no note")
        else:
            check(counts[t] == n, f"row_counts {t}: {counts[t]}, expected {n}")


def parse_csv(text):
    """Sections of the CSV output: name -> (note, header, rows of strings)."""
    out, cur = {}, None
    for rec in csv.reader(io.StringIO(text, newline="")):
        if not rec:
            cur = None
            continue
        if cur is None:
            cur = rec[0]
            out[cur] = [rec[1] if len(rec) > 1 else "", None, []]
        elif out[cur][1] is None:
            out[cur][1] = rec
        else:
            out[cur][2].append(rec)
    return out


def as_csv_text(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return v
    return str(v)


def check_csv(csv_text, rep):
    check("\r\n" in csv_text, "CSV lines do not end with CRLF")
    secs = parse_csv(csv_text)
    check(list(secs) == SECTIONS, f"CSV sections {list(secs)}")
    for name in SECTIONS:
        if name not in secs:
            continue
        note, header, rows = secs[name]
        check(note == rep["notes"].get(name, ""), f"CSV {name}: note {note!r}")
        jrows = rep[name]
        if header is None:
            check(not jrows, f"CSV {name}: no header but JSON has rows")
            continue
        check(len(rows) == len(jrows), f"CSV {name}: {len(rows)} rows, JSON {len(jrows)}")
        for i, (c, j) in enumerate(zip(rows, jrows)):
            check(header == list(j), f"CSV {name}: header {header} vs JSON keys {list(j)}")
            for k, v in zip(header, c):
                want = as_csv_text(j[k])
                ok = close(v, want, 0.0001) if isinstance(want, float) else v == want
                check(ok, f"CSV {name} row {i + 1} {k}: {v!r}, JSON {j[k]!r}")


def shown(s):
    """A name as the text and HTML outputs show it: control characters as \\n, \\xHH."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    return "".join(out)


def visible(s):
    """A cell of the text output: shown, cut at 60 characters."""
    s = shown(s)
    return s if len(s) <= 60 else s[:59] + "\u2026"


def check_text(text, rep):
    lines = text.split("\n")
    check(lines[0].startswith(f"activity report for {rep['month']} "), f"text head {lines[0]!r}")
    for title in ["Busiest hosts", "Top hosts by monthly unique visitors", "Active users per day",
                  "Growth accounting per day", "Browsers with the most active users",
                  "Rows per table"]:
        check(any(l.startswith(title) for l in lines), f"text: no section {title!r}")
    for r in rep["busiest_hosts"]:
        want = [visible(r["host"]), str(r["hits"]), str(r["peak_daily_uniques"]),
                str(r["active_days"])]
        hit = [l for l in lines if l.startswith(want[0] + " ") and l.split()[-3:] == want[1:]]
        check(len(hit) >= 1, f"text: no aligned line for busiest host {want}")
    widths = {len(l) for l in lines[lines.index(next(l for l in lines if l.startswith("host "))):]
              [:2 + len(rep["busiest_hosts"])]}
    check(len(widths) == 1, f"text: busiest hosts' lines differ in width: {sorted(widths)}")


class Dom(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.els = []

    def handle_starttag(self, tag, attrs):
        self.els.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def find(self, tag, cls):
        return [a for t, a in self.els if t == tag and cls in (a.get("class") or "").split()]


def check_dom(dom_text, exp):
    dom = Dom()
    dom.feed(dom_text)
    check(not [t for t, _ in dom.els if t in ("script", "iframe", "object", "embed", "img")],
          "the page holds a script, frame or image element")
    for name in ["chart-daily-users", "chart-growth", "chart-heatmap", "chart-top-hosts"]:
        check([a for t, a in dom.els if t == "svg" and a.get("id") == name], f"no svg #{name}")
    days = exp["daily_users"]
    for series in ["dau", "wau", "mau"]:
        pts = [a for a in dom.find("circle", "point") if a.get("data-series") == series]
        check(len(pts) == len(days), f"{series}: {len(pts)} points, expected {len(days)}")
        got = [(a["data-day"], int(a["data-value"])) for a in pts]
        check(got == [(d["day"], d[series]) for d in days], f"{series}: point values differ")
        lines = [a for a in dom.find("polyline", "line") if a.get("data-series") == series]
        check(len(lines) == 1 and len(lines[0]["points"].split()) == len(days),
              f"{series}: the line does not join {len(days)} points")
    want_bars = sorted((g["day"], s, abs(g[s])) for g in exp["growth_accounting"]
                       for s in ["new", "retained", "resurrected", "churned"] if g[s])
    bars = dom.find("rect", "growth")
    got_bars = sorted((a["data-day"], a["data-state"], abs(int(a["data-value"]))) for a in bars)
    check(len(bars) == len(want_bars), f"growth: {len(bars)} bars, expected {len(want_bars)}")
    check(got_bars == want_bars, "growth: bar values differ")
    cells = dom.find("rect", "cell")
    want_cells = [(c["host"], c["day"], c["hits"]) for c in exp["busiest_hosts_daily_hits"]]
    check(len(cells) == len(exp["busiest_hosts"]) * exp["days_in_month"],
          f"heatmap: {len(cells)} cells, expected {len(exp['busiest_hosts'])} hosts x "
          f"{exp['days_in_month']} days")
    got_cells = [(shown(a["data-host"]), a["data-day"], int(a["data-hits"])) for a in cells]
    check(got_cells == [(shown(h), d, n) for h, d, n in want_cells],
          "heatmap: cell hosts, days or hits differ")
    return dom


def png_colors(path):
    """Pixel count per RGB colour of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium's
    --screenshot writes), decoded here so the test needs no imaging package."""
    data = open(path, "rb").read()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "the screenshot is not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", data[pos + 8:pos + 8 + n])
        elif kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if not check(depth == 8 and ctype in (2, 6) and not interlace, f"PNG format {hdr}"):
        return {}
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    prev, out = bytearray(stride), {}
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            k = bytes(line[x:x + 3])
            out[k] = out.get(k, 0) + 1
        prev = line
    return out


def main():
    mode = sys.argv[1]
    if mode == "data":
        exp = json.load(open(sys.argv[2]))
        rep = json.load(open(sys.argv[3]))
        csv_text = open(sys.argv[4], newline="", encoding="utf-8").read()
        text = open(sys.argv[5], encoding="utf-8").read()
        pct = float(sys.argv[sys.argv.index("--uniques-tolerance") + 1]) \
            if "--uniques-tolerance" in sys.argv else 0.0
        check_sections(rep, exp, pct, rep["limit"])
        check_csv(csv_text, rep)
        check_text(text, rep)
        finish("data")
    elif mode == "html":
        exp = json.load(open(sys.argv[2]))
        rep = json.load(open(sys.argv[3]))
        dom = check_dom(open(sys.argv[4], encoding="utf-8").read(), exp)
        top = dom.find("rect", "top-host")
        check(len(top) == len(rep["top_hosts_by_uniques"]) ==
              min(rep["limit"], len(exp["host_monthly_uniques"])),
              f"top hosts: {len(top)} bars, expected "
              f"{min(rep['limit'], len(exp['host_monthly_uniques']))}")
        check([(shown(a["data-host"]), float(a["data-value"])) for a in top] ==
              [(shown(r["host"]), float(r["monthly_uniques"]))
               for r in rep["top_hosts_by_uniques"]], "top hosts: bar hosts or values differ")
        finish("html")
    elif mode == "png":
        colors = png_colors(sys.argv[2])
        for name, rgb in [("DAU / retained / top hosts", "1f77b4"), ("WAU / resurrected", "ff7f0e"),
                          ("MAU / new", "2ca02c"), ("churned", "d62728")]:
            n = colors.get(bytes.fromhex(rgb), 0)
            check(n >= 100, f"the screenshot has {n} pixels of #{rgb} ({name})")
        finish("png")
    elif mode == "empty":
        rep = json.load(open(sys.argv[2]))
        for s in SECTIONS:
            if s != "row_counts":
                check(rep[s] == [], f"{s}: rows in an empty database")
                check(s in rep["notes"], f"{s}: no note")
        check(all(r["rows"] is None for r in rep["row_counts"]), "row_counts: counts without tables")
        check("host_activity_reduced" in rep["notes"].get("row_counts", ""), "row_counts: no note")
        finish("empty")
    else:
        sys.exit(f"usage: {sys.argv[0]} data|html|empty ...")


if __name__ == "__main__":
    main()
