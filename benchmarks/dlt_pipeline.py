"""An idiomatic dlt pipeline of the Aurpay sandbox into DuckDB, timed like compare.py's children.

    /tmp/dltvenv/bin/python benchmarks/dlt_pipeline.py BASE_URL API_KEY PAGE_SIZE DUCKDB_PATH

Run by a separate venv's python (dlt is never a dependency of tally), so it imports nothing from
the project. ``RESTClient`` with a ``PageNumberPaginator`` reads the order and transaction lists,
merged on their ids; a transformer fetches each REFUNDED order's refund-info, one at a time.
Prints one JSON line: ``seconds``, ``cpu``, ``peak_mb`` (as compare.py's ``child``), ``objects``
(rows in the orders, transactions and refunds tables) and ``amount_types`` (DuckDB's types for
the refunds table's amount columns: the sandbox sends them as JSON numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ORDER_LIST, TX_LIST = "/api/v2/order/", "/api/v2/tx"
REFUND_INFO = "/api/v2/order/refund-info/{}"
DATASET = "aurpay"
TABLES = ("orders", "transactions", "refunds")
AMOUNT_COLUMNS = ("amount", "network_fee", "obtained")


# The two /proc readers below are sync_bench.py's, written again on purpose: this script runs
# in dlt's own venv, where importing sync_bench would pull in the project and its dependencies.
def proc_status_kb(name: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process, in kB (Linux only)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Restart ``VmHWM`` from the current RSS (Linux 4.0+), as compare.py's children do."""
    Path("/proc/self/clear_refs").write_text("5")


def aurpay_source(base_url: str, api_key: str, page_size: int) -> Any:
    """The dlt source: orders and transactions (merged on their ids) and refund-infos."""
    # Imported here, inside the timed part, as the engines import theirs.
    import dlt
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator

    client = RESTClient(
        base_url=base_url,
        headers={"API-Key": api_key},
        # Pages are 1-based; ``max_page`` is the page count (0 when the list is empty).
        paginator=PageNumberPaginator(base_page=1, page_param="page", total_path="data.max_page"),
        data_selector="data.data",
    )

    @dlt.resource(name="orders", primary_key="order_id", write_disposition="merge")
    def orders() -> Iterator[Any]:
        yield from client.paginate(ORDER_LIST, params={"size": page_size})

    @dlt.resource(name="transactions", primary_key="tx_id", write_disposition="merge")
    def transactions() -> Iterator[Any]:
        yield from client.paginate(TX_LIST, params={"size": page_size})

    @dlt.transformer(
        data_from=orders, name="refunds", primary_key="order_id", write_disposition="merge"
    )
    def refunds(page: list[dict[str, Any]]) -> Iterator[Any]:
        for order in page:
            if order.get("status") == "REFUNDED":
                answer = client.get(REFUND_INFO.format(order["order_id"]))
                answer.raise_for_status()
                info = answer.json()["data"]
                if info:
                    yield info

    @dlt.source(name="aurpay")
    def source() -> Any:
        return orders, transactions, refunds

    return source()


def run(args: argparse.Namespace, work: str) -> None:
    import dlt

    pipeline = dlt.pipeline(
        pipeline_name="aurpay_compare",
        pipelines_dir=work,
        destination=dlt.destinations.duckdb(args.duckdb_path),
        dataset_name=DATASET,
    )
    info = pipeline.run(aurpay_source(args.base_url, args.api_key, args.page_size))
    info.raise_on_failed_jobs()


def figures(path: str) -> tuple[int, dict[str, str]]:
    """Rows in the three tables, and the refunds table's amount column types."""
    import duckdb

    with duckdb.connect(path, read_only=True) as db:
        objects = 0
        for name in TABLES:
            row = db.execute(f"SELECT count(*) FROM {DATASET}.{name}").fetchone()
            objects += int(row[0]) if row else 0
        types = db.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = 'refunds'",
            [DATASET],
        ).fetchall()
    return objects, {name: kind for name, kind in types if name in AMOUNT_COLUMNS}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("api_key")
    parser.add_argument("page_size", type=int)
    parser.add_argument("duckdb_path")
    args = parser.parse_args(argv)
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"  # no calls home from a benchmark
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")  # stdout: the JSON line only
    with tempfile.TemporaryDirectory(prefix="dlt-compare-") as work:
        reset_peak_rss()
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        run(args, work)
        seconds = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        peak = proc_status_kb("VmHWM") / 1024
        objects, amount_types = figures(args.duckdb_path)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "peak_mb": peak,
                "objects": objects,
                "amount_types": amount_types,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
