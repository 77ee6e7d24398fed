"""months.py — consecutive months of generated events for the eviction tests.

gen_months(root, work, n, count, seed) runs scripts/gen_events.py once per
month, from January 2023 on: n events each, seed `seed + i` for month i,
no edge cases, written to work/m<i>.csv. Returns the CSV header and, per
month, its rows sorted by event time (the order a stream delivers them in).
"""
import csv
import subprocess


def gen_months(root, work, n, count, seed):
    header, months = None, []
    for i in range(count):
        y, m = 2023 + i // 12, i % 12 + 1
        out = f"{work}/m{i}.csv"
        subprocess.run(["python3", f"{root}/scripts/gen_events.py", "--events", str(n),
                        "--month", f"{y}-{m:02d}", "--seed", str(seed + i), "--no-edge-cases",
                        "--out", out], check=True)
        with open(out, newline="") as f:
            r = csv.reader(f)
            header = next(r)
            months.append(sorted(r, key=lambda row: row[5]))
    return header, months
