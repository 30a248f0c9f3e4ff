"""A small TPC-H-like source database for the embedded demo, generated here (no download).

Deterministic (fixed seed) so every demo run exports the same rows.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import date, timedelta
from pathlib import Path

REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
NATIONS = [
    ("ALGERIA", 0), ("ARGENTINA", 1), ("BRAZIL", 1), ("CANADA", 1), ("EGYPT", 4), ("ETHIOPIA", 0), ("FRANCE", 3),
    ("GERMANY", 3), ("INDIA", 2), ("INDONESIA", 2), ("IRAN", 4), ("IRAQ", 4), ("JAPAN", 2), ("JORDAN", 4),
    ("KENYA", 0), ("MOROCCO", 0), ("MOZAMBIQUE", 0), ("PERU", 1), ("CHINA", 2), ("ROMANIA", 3),
    ("SAUDI ARABIA", 4), ("VIETNAM", 2), ("RUSSIA", 3), ("UNITED KINGDOM", 3), ("UNITED STATES", 1),
]
SEGMENTS = ["AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"]
PRIORITIES = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"]
SHIP_MODES = ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"]
WORDS = "carefully final deposits sleep quickly regular packages haggle furiously ironic accounts".split()

SCHEMA = """
CREATE TABLE region (r_regionkey INTEGER PRIMARY KEY, r_name VARCHAR(25) NOT NULL, r_comment VARCHAR(152));
CREATE TABLE nation (n_nationkey INTEGER PRIMARY KEY, n_name VARCHAR(25) NOT NULL, n_regionkey INTEGER NOT NULL,
                     n_comment VARCHAR(152));
CREATE TABLE customer (c_custkey INTEGER PRIMARY KEY, c_name VARCHAR(25) NOT NULL, c_address VARCHAR(40),
                       c_nationkey INTEGER NOT NULL, c_phone VARCHAR(15), c_acctbal DECIMAL(15,2),
                       c_mktsegment VARCHAR(10), c_comment VARCHAR(117));
CREATE TABLE orders (o_orderkey INTEGER PRIMARY KEY, o_custkey INTEGER NOT NULL, o_orderstatus VARCHAR(1),
                     o_totalprice DECIMAL(15,2), o_orderdate DATE NOT NULL, o_orderpriority VARCHAR(15),
                     o_clerk VARCHAR(15), o_shippriority INTEGER, o_comment VARCHAR(79), o_updated_at TIMESTAMP);
CREATE TABLE lineitem (l_orderkey INTEGER NOT NULL, l_linenumber INTEGER NOT NULL, l_partkey INTEGER NOT NULL,
                       l_quantity DECIMAL(15,2), l_extendedprice DECIMAL(15,2), l_discount DECIMAL(15,2),
                       l_tax DECIMAL(15,2), l_returnflag VARCHAR(1), l_linestatus VARCHAR(1), l_shipdate DATE,
                       l_commitdate DATE, l_receiptdate DATE, l_shipmode VARCHAR(10), l_comment VARCHAR(44),
                       PRIMARY KEY (l_orderkey, l_linenumber));
"""


def _comment(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def seed_demo_source(path: Path, customers: int = 1500, orders: int = 15000) -> dict[str, int]:
    """Create the demo source database at `path` (replacing it) and return rows per table."""
    rng = random.Random(20261124)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    conn = sqlite3.connect(partial)
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO region VALUES (?, ?, ?)", [(i, n, _comment(rng, 6)) for i, n in enumerate(REGIONS)])
    conn.executemany(
        "INSERT INTO nation VALUES (?, ?, ?, ?)", [(i, n, r, _comment(rng, 8)) for i, (n, r) in enumerate(NATIONS)]
    )
    conn.executemany(
        "INSERT INTO customer VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                key, f"Customer#{key:09d}", f"{rng.randint(1, 999)} {rng.choice(WORDS).title()} Street",
                rng.randrange(25), f"{rng.randint(10, 34)}-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                f"{rng.uniform(-999.99, 9999.99):.2f}", rng.choice(SEGMENTS), _comment(rng, 10),
            )
            for key in range(1, customers + 1)
        ],
    )
    first_day = date(2024, 1, 1)
    order_rows, line_rows = [], []
    for key in range(1, orders + 1):
        ordered = first_day + timedelta(days=rng.randrange(700))
        lines = rng.randint(1, 7)
        total = 0.0
        for line in range(1, lines + 1):
            quantity = rng.randint(1, 50)
            price = round(quantity * rng.uniform(900, 2000), 2)
            discount, tax = rng.randint(0, 10) / 100, rng.randint(0, 8) / 100
            total += price * (1 - discount) * (1 + tax)
            shipped = ordered + timedelta(days=rng.randint(1, 121))
            line_rows.append((
                key, line, rng.randint(1, 20000), f"{quantity:.2f}", f"{price:.2f}", f"{discount:.2f}", f"{tax:.2f}",
                rng.choice("RAN"), rng.choice("OF"), shipped.isoformat(),
                (ordered + timedelta(days=rng.randint(30, 90))).isoformat(),
                (shipped + timedelta(days=rng.randint(1, 30))).isoformat(), rng.choice(SHIP_MODES), _comment(rng, 5),
            ))
        order_rows.append(
            (
                key,
                rng.randint(1, customers),
                rng.choice("OFP"),
                f"{total:.2f}",
                ordered.isoformat(),
                rng.choice(PRIORITIES),
                f"Clerk#{rng.randint(1, 1000):09d}",
                0,
                # NULL and the empty string are different values; the demo keeps a few of each.
                None if key % 97 == 0 else ("" if key % 89 == 0 else _comment(rng, 6)),
                f"{ordered.isoformat()} "
                f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}",
            )
        )
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", order_rows)
    conn.executemany("INSERT INTO lineitem VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", line_rows)
    conn.commit()
    counts = {
        t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("region", "nation", "customer", "orders", "lineitem")
    }
    conn.close()
    partial.replace(path)  # a half-seeded database never takes the real name
    return counts
