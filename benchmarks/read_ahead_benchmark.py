"""How much a source's reader holds while its consumer is slower than the server, in one run.

    bash scripts/test_servers.sh up && eval "$(bash scripts/test_servers.sh env)"
    .venv/bin/python benchmarks/read_ahead_benchmark.py --scale 1

An export reads batches as fast as its encoders and uploads take them; when they are slower than
the database (a slow store, a pipelined import), a reader without backpressure keeps reading
ahead and holds the rows in memory. This reads TPC-H lineitem (kept by sync_benchmark.py and
mysql_benchmark.py) through each source's own `read_batches`, in a fresh process per source,
once as fast as possible and once sleeping after every batch, and prints the peak RSS of each:
a bounded reader's two figures are alike, an unbounded one's grow with what it read ahead.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_benchmark import json_child  # noqa: E402

# One read of lineitem in a process of its own: rows, seconds and peak RSS as JSON.
READ = """
import json, resource, sys, time
from sync_platform.engine import TableName, database_for
url, pause = sys.argv[1], float(sys.argv[2])
database = database_for(url)
table = TableName("lineitem")
started, rows, batches = time.monotonic(), 0, 0
for batch in database.read_batches(table, database.reflect(table)):
    rows, batches = rows + batch.num_rows, batches + 1
    time.sleep(pause)
print(json.dumps({"rows": rows, "batches": batches, "seconds": time.monotonic() - started,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("SYNC_TEST_PG_URL"))
    parser.add_argument("--mysql-url", default=os.environ.get("SYNC_TEST_MYSQL_URL"))
    parser.add_argument("--pause", type=float, default=0.3, help="seconds the slow consumer sleeps after a batch")
    args = parser.parse_args()
    sources = {name: make_url(url).set(database="bench_src").render_as_string(hide_password=False)
               for name, url in (("PostgreSQL", args.pg_url), ("MariaDB", args.mysql_url)) if url}
    if not sources:
        sys.exit("give --pg-url and/or --mysql-url (scripts/test_servers.sh up, then its env)")
    results = []
    for name, url in sources.items():
        for pause in (0.0, args.pause):
            print(f"reading lineitem from {name}, {pause:g} s after each batch ...", flush=True)
            results.append((name, pause, json_child([sys.executable, "-c", READ, url, str(pause)])))

    header = f"{'source':<12}{'pause s':>8}{'rows':>12}{'batches':>9}{'seconds':>9}{'peak RSS MB':>13}{'x fast':>8}"
    print(f"\nlineitem read through read_batches, {os.cpu_count()} cores\n{header}\n{'-' * len(header)}")
    fast = {}
    for name, pause, run in results:
        fast.setdefault(name, run["peak_rss_mb"])
        print(f"{name:<12}{pause:>8g}{run['rows']:>12,}{run['batches']:>9}{run['seconds']:>9.1f}"
              f"{run['peak_rss_mb']:>13.0f}{run['peak_rss_mb'] / fast[name]:>8.2f}")


if __name__ == "__main__":
    main()
