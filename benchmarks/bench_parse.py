"""Parse time of every DAG file in dags/ against an empty DAG file, measured in the same run.

Two ways, both printed:

* **cold** (the target, Airflow's documented check ``time python <dag file>``): a fresh interpreter runs
  the file; ratio = median time of the file / median time of the empty DAG file. Target <= 1.5x.
* **warm** (what one parse costs inside a running dag-processor): as Airflow 3.3's dag-processor does, a
  parent that has Airflow loaded pre-imports the file's ``airflow.*`` imports, then forks one child per
  parse; the child parses the file with ``BundleDagBag`` and exits. Everything else the file imports (the
  provider and its dependencies, modules behind lazy ``airflow.sdk`` attributes such as ``task``) is paid
  again by every parse; printed with the same 1.5x yardstick. A third, diagnostic table repeats it with the
  provider's modules preloaded, to show how much of a file's parse time is the provider's import.

    .venv/bin/python benchmarks/bench_parse.py [--cold-repeats 5] [--warm-repeats 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAGS_DIR = ROOT / "dags"
TARGET = 1.5
EMPTY_DAG = '''"""An empty DAG: the baseline."""

from airflow.providers.common.compat.sdk import DAG

with DAG(dag_id="empty_baseline", schedule=None):
    pass
'''


def cold_time(path: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"python {path} failed:\n{result.stderr[-2000:]}")
    return elapsed


def warm_time(path: Path) -> float:
    """Parse ``path`` the way the dag-processor does: pre-import the file's ``airflow.*`` imports in this
    (Airflow-loaded) process, fork, the child parses with BundleDagBag (its folder on sys.path) and exits."""
    from airflow.dag_processing.processor import _pre_import_airflow_modules

    started = time.perf_counter()
    _pre_import_airflow_modules(str(path), _NullLog())
    pid = os.fork()
    if pid == 0:  # child
        code = 3
        try:
            from airflow.dag_processing.dagbag import BundleDagBag

            # As the dag-processor: the bundle's folder on sys.path (the DAGs import dags/billing_data.py).
            bag = BundleDagBag(dag_folder=str(path), bundle_path=path.parent)
            code = 0 if bag.dags and not bag.import_errors else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"parsing {path} in a forked child failed (exit {os.waitstatus_to_exitcode(status)})"
        )
    return elapsed


class _NullLog:
    def warning(self, *args: object, **kwargs: object) -> None:
        print("pre-import warning:", *args)


def measure(files: list[Path], repeats: int, timer: object) -> dict[Path, float]:
    """Median per file; files are interleaved round-robin so drift in machine load hits all alike."""
    samples: dict[Path, list[float]] = {path: [] for path in files}
    for _ in range(repeats):
        for path in files:
            samples[path].append(timer(path))  # type: ignore[operator]
    return {path: statistics.median(values) for path, values in samples.items()}


def report(title: str, medians: dict[Path, float], empty: Path, target: float | None) -> bool:
    base = medians[empty]
    print(f"\n{title}")
    print(f"  {'file':<34} {'median':>10} {'ratio':>7}")
    ok = True
    for path, seconds in medians.items():
        ratio = seconds / base
        name = "(empty DAG file)" if path == empty else path.name
        verdict = ""
        if target is not None and path != empty:
            verdict = "ok" if ratio <= target else f"ABOVE {target}x"
            ok = ok and ratio <= target
        print(f"  {name:<34} {seconds * 1000:>8.1f}ms {ratio:>6.2f}x {verdict}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold-repeats", type=int, default=5)
    parser.add_argument("--warm-repeats", type=int, default=20)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-parse-"))
    empty = workdir / "empty_dag.py"
    empty.write_text(EMPTY_DAG)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(workdir / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(workdir),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{workdir / 'airflow.db'}",
        }
    )
    env = dict(os.environ)
    helpers = set((DAGS_DIR / ".airflowignore").read_text().split())  # modules the DAGs import, no DAG
    files = [empty, *sorted(p for p in DAGS_DIR.glob("*.py") if p.name not in helpers)]
    print(f"{len(files) - 1} DAG files in {DAGS_DIR}; baseline: an empty DAG file; {os.cpu_count()} CPUs")

    cold = measure(files, args.cold_repeats, lambda path: cold_time(path, env))
    ok = report(
        f"cold: `python <file>` in a fresh interpreter, median of {args.cold_repeats}", cold, empty, TARGET
    )

    # What the dag-processor has loaded before it parses a file: Airflow, the Task SDK, DagBag.
    import airflow.sdk  # noqa: F401
    from airflow.models import DagBag  # noqa: F401

    warm_time(empty)  # warm the page cache and the fork path
    warm = measure(files, args.warm_repeats, warm_time)
    warm_ok = report(
        f"warm: pre-import + fork of an Airflow-loaded process + DagBag parse, median of {args.warm_repeats}",
        warm,
        empty,
        TARGET,
    )
    # Where the warm time goes: the same, with the provider's modules already loaded in the parent.
    import enlivy_provider.operators.export
    import enlivy_provider.operators.invoices
    import enlivy_provider.sensors.invoice_status  # noqa: F401

    report(
        f"warm, provider modules preloaded in the parent (diagnostic), median of {args.warm_repeats}",
        measure(files, args.warm_repeats, warm_time),
        empty,
        None,
    )
    print(f"\ntarget <= {TARGET}x: cold {'met' if ok else 'NOT met'}; warm {'met' if warm_ok else 'NOT met'}")


if __name__ == "__main__":
    main()
