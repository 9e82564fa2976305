"""Regenerate dags/data/usage.csv: deterministic daily usage of the demo customers in 2026.

The file stands in for a product's metering database: one row per account, metric and day. The same seed
always gives the same file, so invoices in tests, docs and ``make demo`` are reproducible.

    .venv/bin/python scripts/generate_usage.py            # writes dags/data/usage.csv
    .venv/bin/python scripts/generate_usage.py --to 2026-12-31
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "dags" / "data" / "usage.csv"

# account -> (typical API calls per working day, consulting hours per month)
PROFILES: dict[str, tuple[int, int]] = {
    "globex": (48_000, 0),
    "initech": (3_500, 0),
    "umbrella": (9_000, 6),
    "stark": (1_200, 0),
    "wayne": (410_000, 12),
    "hooli": (65_000, 2),
}
FIELDS = ("date", "account", "metric", "quantity")


def generate(start: dt.date, end: dt.date, *, seed: int = 2026) -> list[dict[str, str]]:
    """Rows sorted by date, account, metric; quantities are integers (calls) or halves (hours)."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    day = start
    while day <= end:
        for account, (calls, hours_per_month) in PROFILES.items():
            weekend = day.weekday() >= 5
            growth = 1 + (day.month - 1) * 0.03  # usage grows a little every month
            level = calls * growth * (0.35 if weekend else 1.0) * rng.uniform(0.8, 1.2)
            rows.append(
                {
                    "date": day.isoformat(),
                    "account": account,
                    "metric": "api_calls",
                    "quantity": str(int(level)),
                }
            )
            # Consulting happens on a few working days a month, in half hours.
            if hours_per_month and not weekend and rng.random() < hours_per_month / 40:
                rows.append(
                    {
                        "date": day.isoformat(),
                        "account": account,
                        "metric": "consulting_hours",
                        "quantity": str(rng.choice((1, 1.5, 2, 2.5, 3, 4))),
                    }
                )
        day += dt.timedelta(days=1)
    return rows


def write(rows: list[dict[str, str]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--from", dest="start", default="2026-01-01", type=dt.date.fromisoformat)
    parser.add_argument("--to", dest="end", default="2026-11-24", type=dt.date.fromisoformat)
    parser.add_argument("--out", default=str(DEFAULT_OUT), type=Path)
    args = parser.parse_args()
    rows = generate(args.start, args.end)
    write(rows, args.out)
    print(f"wrote {len(rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
