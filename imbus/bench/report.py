"""One fixed-width table row per scenario result."""

from __future__ import annotations

from typing import Any

COLUMNS = [("scenario", 9), ("pollers", 7), ("sent", 6), ("delivered", 9), ("p50ms", 7), ("p90ms", 7),
           ("p99ms", 7), ("maxms", 8), ("deliv/s", 8), ("lost", 5), ("dup", 4), ("http", 4), ("rpc", 4),
           ("sql", 12), ("notes", 0)]


def header() -> str:
    return " ".join(name.ljust(width) for name, width in COLUMNS).rstrip()


def row(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    values = [result["scenario"], result["pollers"], result["sent"], result["delivered"], latency["p50"],
              latency["p90"], latency["p99"], latency["max"], result["delivered_per_s"], result["lost"],
              result["duplicated"], result["http_errors"], result["rpc_errors"], _sql(result["sql"]),
              notes(result)]
    return " ".join(_cell(value).ljust(width) for value, (_, width) in zip(values, COLUMNS)).rstrip()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return str(value)


def _sql(sql: dict[str, Any]) -> str:
    """`total/fetches` from pg_stat_statements, `N scans` of bus_bus from the table
    statistics, or n/a when neither could be read."""
    if "n/a" in sql:
        return "n/a"
    if "total" not in sql:
        return f"{sql['fetch']} scans"
    return f"{sql['total']}/{sql['fetch']}f"


def notes(result: dict[str, Any]) -> str:
    parts = []
    broadcasts = result.get("broadcasts")
    if broadcasts:
        parts.append(f"last poller {broadcasts['last_poller_ms']} ms")
        if "sql_per_broadcast" in broadcasts:
            parts.append(f"sql/broadcast {broadcasts['sql_per_broadcast']}"
                         f" (fetch {broadcasts['fetch_per_broadcast']})")
        elif "fetch_per_broadcast" in broadcasts:
            parts.append(f"bus_bus scans/broadcast {broadcasts['fetch_per_broadcast']}")
    if "late_ms" in result:
        late = result["late_ms"]
        parts.append("late rows: none arrived" if late["max"] is None else
                     f"late rows commit-to-receipt p50 {late['p50']} p99 {late['p99']} max {late['max']} ms")
    for key, label in (("send_rate", "sent/s"), ("reconnects", "reconnects"), ("rss_before_mb", "rss before MB"),
                       ("rss_held_mb", "rss held MB"), ("cpu_idle_percent", "idle cpu %")):
        if result.get(key) is not None:
            parts.append(f"{label} {result[key]}")
    if "rss_mb" in result:
        rss = result["rss_mb"]
        parts.append(f"rss MB first {rss['first']} last {rss['last']} max {rss['max']}"
                     f" 2nd-half growth {rss['growth_second_half']}")
    if result["unexpected"]:
        parts.append(f"unexpected {result['unexpected']}")
    if "n/a" in result["sql"]:
        parts.append(f"sql n/a: {result['sql']['n/a']}")
    if result.get("timed_out"):
        parts.append("TIMED OUT")
    return "; ".join(parts)
