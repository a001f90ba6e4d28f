"""Tables, goal checks, the latency plot and docs/performance.md, all from one results JSON.

``python benchmarks/report.py benchmarks/results/<date>.json --docs`` re-renders the docs from a kept
run without measuring again (inside benchmarks/.venv, which has matplotlib);
``report.py results/<date>-collections.json --collections-docs`` re-renders only the Collections
section (benchmarks/collections.md, spliced into the page).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

CONTENDERS = ["notify_kit", "dcrf", "rest_live", "bare"]
PEERS = ["dcrf", "rest_live"]
LABELS = {
    "notify_kit": "notify_kit",
    "dcrf": "DCRF",
    "rest_live": "django-rest-live",
    "bare": "bare Channels",
    "plain": "plain save",
    "tracked": "plain save + FieldTracker",
}
BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent


# -- numbers --------------------------------------------------------------------------------


def writer_rate(results: dict, contender: str) -> float | None:
    runs = results["writer_cost"].get(contender) or []
    rates = [r["saves_per_second"] for r in runs]
    return statistics.median(rates) if rates else None


def writer_loop_rate(results: dict, contender: str) -> float | None:
    runs = results["writer_cost"].get(contender) or []
    rates = [r["writer"]["n"] / r["writer"]["loop_seconds"] for r in runs]
    return statistics.median(rates) if rates else None


def latency(results: dict, contender: str, level: int, key: str = "p99", base: str = "from_return") -> float | None:
    run = results["latency"].get(contender, {}).get(str(level))
    if not run:
        return None
    return run[base][key]


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(value: float | None, spec: str = ".0f", suffix: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{value:{spec}}{suffix}"


def ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.1f}" if value < 1 else f"{value * 1000:.0f}"


# -- tables -------------------------------------------------------------------------------------


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def writer_table(results: dict) -> str:
    plain = writer_rate(results, "plain")
    bare = writer_rate(results, "bare")
    rows = []
    for name in ["plain", "tracked", *CONTENDERS]:
        rate = writer_rate(results, name)
        if rate is None:
            continue
        runs = results["writer_cost"].get(name) or []
        if name in CONTENDERS:
            saves = sum(r["expected_frames"] for r in runs)
            frames = f"{sum(r['update_frames'] for r in runs)} / {saves}"
            folded = str(sum(r.get("coalesced_reported", 0) for r in runs))
        else:
            frames = folded = "-"
        rows.append(
            [
                LABELS[name],
                fmt(rate),
                fmt(writer_loop_rate(results, name)),
                fmt(ratio(rate, plain), ".2f", "x"),
                fmt(ratio(rate, bare), ".2f", "x"),
                frames,
                folded,
            ]
        )
    return md_table(
        [
            "writer",
            "saves/s (incl. send)",
            "saves/s (save loop only)",
            "vs plain save",
            "vs bare Channels",
            "frames at the subscriber / saves",
            "updates folded into a later frame (reported)",
        ],
        rows,
    )


def latency_table(results: dict) -> str:
    levels = results["size"]["latency_levels"]
    rows = []
    for level in levels:
        for name in CONTENDERS:
            run = results["latency"].get(name, {}).get(str(level))
            if not run:
                continue
            p99 = run["from_return"]["p99"]
            rows.append(
                [
                    str(level),
                    LABELS[name],
                    ms(run["from_return"]["p50"]),
                    ms(p99),
                    fmt(ratio(p99, latency(results, "bare", level)), ".2f", "x"),
                    ms(run["from_call"]["p50"]),
                    ms(run["last_subscriber"]["p50"]),
                    fmt(run.get("server_cpu_ms_per_event"), ".1f"),
                    f"{run['from_return']['count']}",
                    str(run["missing"]),
                ]
            )
    return md_table(
        [
            "subscribers",
            "contender",
            "p50 ms",
            "p99 ms",
            "p99 vs bare",
            "p50 ms from save() call",
            "last subscriber p50 ms",
            "server CPU ms/event",
            "samples",
            "missing",
        ],
        rows,
    )


def fanout_table(results: dict) -> str:
    bare = (results["fanout"].get("bare") or {}).get("deliveries_per_second")
    rows = []
    for name in CONTENDERS:
        run = results["fanout"].get(name)
        if not run:
            continue
        expected = run["expected_pairs"]
        silent = run.get("silently_lost_pairs", run["lost_pairs"])
        rows.append(
            [
                LABELS[name],
                fmt(run["writer_updates_per_second"]),
                fmt(run["deliveries_per_second"]),
                fmt(ratio(run["deliveries_per_second"], bare), ".2f", "x"),
                f"{run['delivered_pairs']}/{expected}",
                str(run.get("coalesced_reported", 0)),
                f"{silent} ({100 * silent / expected:.1f}%)" if expected else "n/a",
                f"{run['lost_final_states']}/{run['final_states']}",
                f"{run['spurious_frames']}/{run['duplicate_frames']}",
                fmt(run["seconds_to_last_delivery"], ".1f"),
                run["ended"],
            ]
        )
    return md_table(
        [
            "contender",
            "writer updates/s",
            "deliveries/s",
            "vs bare",
            "delivered (update, subscriber) pairs",
            "coalesced, reported in the frame",
            "lost silently",
            "lost final states",
            "spurious/duplicate frames",
            "s to last delivery",
            "ended by",
        ],
        rows,
    )


def memory_table(results: dict) -> str:
    bare = (results["memory"].get("bare") or {}).get("kib_per_connection")
    rows = []
    for name in CONTENDERS:
        run = results["memory"].get(name)
        if not run:
            continue
        rows.append(
            [
                LABELS[name],
                str(run["clients"]),
                f"{run['rss_before_kib'] / 1024:.1f}",
                f"{run['rss_after_kib'] / 1024:.1f}",
                fmt(run["kib_per_connection"], ".1f"),
                fmt(ratio(run["kib_per_connection"], bare), ".2f", "x"),
            ]
        )
    return md_table(
        ["contender", "connections", "RSS before MiB", "RSS after MiB", "KiB per connection", "vs bare"], rows
    )


def console_table(results: dict) -> str:
    parts = []
    if results["writer_cost"]:
        parts += ["", "Writer cost (median of runs)", writer_table(results)]
    if results["latency"]:
        parts += ["", "Latency from save() returning to the client (ms)", latency_table(results)]
    if results["fanout"]:
        parts += ["", "Fan-out", fanout_table(results)]
    if results["memory"]:
        parts += ["", "Memory per idle subscribed connection", memory_table(results)]
    if results.get("collections"):
        parts += ["", "Collections (one user per socket)", collections_table(results)]
        parts += ["", collections_goals_table(results)]
    return "\n".join(parts)


# -- the collections scenario (issue 10) -----------------------------------------------------------

COLLECTION_CONTENDERS = ["notify_kit", "dcrf", "rest_live"]
COLLECTION_LABELS = {
    "notify_kit": "notify_kit (collection, audiences)",
    "dcrf": "DCRF (model_observer, group per owner)",
    "rest_live": "django-rest-live (list, per-user get_queryset)",
}


def _coll(results: dict, name: str) -> dict | None:
    return (results.get("collections") or {}).get(name)


def collections_table(results: dict) -> str:
    rows = []
    for name in COLLECTION_CONTENDERS:
        run = _coll(results, name)
        if not run:
            continue
        f = run["frames"]
        lat, call = run["latency"], run["latency_from_call"]
        rows.append(
            [
                COLLECTION_LABELS[name],
                f"{run['measured_writes']} ({run['moves']} moves)",
                f"{f['created']} / {f['updated']} / {f['deleted']}",
                fmt(run["server_sql_per_delivery"], ".2f"),
                fmt(run["server_sql_per_write"], ".1f"),
                ms(lat["p50"]),
                ms(lat["p99"]),
                ms(call["p50"]),
                ms(call["p99"]),
                fmt(run["server_cpu_ms_per_write"], ".1f"),
                str(run["leaks"]),
                f"{run['missed']} of {run['rows_in_views']}",
                str(run["undelivered"]),
            ]
        )
    return md_table(
        [
            "system",
            "measured writes",
            "frames created / updated / deleted",
            "server SQL per delivery",
            "server SQL per write",
            "p50 ms",
            "p99 ms",
            "p50 ms from save() call",
            "p99 ms from save() call",
            "server CPU ms/write",
            "leaks",
            "missed (client, row)",
            "undelivered",
        ],
        rows,
    )


def collections_goals(results: dict) -> list[tuple[str, str, str]]:
    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "**missed**")

    nk = _coll(results, "notify_kit")
    if not nk:
        return []
    out = [
        (
            "server SQL per delivery: 0",
            fmt(nk["server_sql_per_delivery"], ".2f") + f" ({nk['server_sql']} statements)",
            verdict(nk["server_sql"] == 0 if nk["server_sql"] is not None else None),
        )
    ]
    peers = [(p, _coll(results, p)) for p in ("dcrf", "rest_live")]
    # Measured from save() returning (the harness's reference point) and from the save() call: the
    # peers send inside save(), so the first hides their send and the second counts it.
    for key, where in (("latency", "save() returned"), ("latency_from_call", "save() called")):
        peer_p99 = [(run[key]["p99"], p) for p, run in peers if run and run[key]["p99"] is not None]
        if not peer_p99:
            continue
        best, who = min(peer_p99)
        r = ratio(nk[key]["p99"], best)
        out.append(
            (
                f"p99 {where} -> socket <= 0.5x the best peer's ({LABELS[who]}, {ms(best)} ms)",
                f"{ms(nk[key]['p99'])} ms = {fmt(r, '.2f', 'x')}",
                verdict(r is not None and r <= 0.5),
            )
        )
    out.append(
        (
            "zero leaks, zero missed",
            f"{nk['leaks']} leaks, {nk['missed']} missed, {nk['undelivered']} undelivered",
            verdict(nk["leaks"] == 0 and nk["missed"] == 0 and nk["undelivered"] == 0),
        )
    )
    return out


def collections_goals_table(results: dict) -> str:
    return md_table(
        ["goal (issue 10)", "notify_kit measured", "verdict"], [list(g) for g in collections_goals(results)]
    )


COLLECTIONS_START = "<!-- collections:start -->"


def collections_md(results: dict, json_path: Path) -> str:
    """benchmarks/collections.md: the Collections section of docs/performance.md, from one run."""
    from docs_text import collections_section

    return collections_section(results, json_path)


def splice_collections(page: str) -> str:
    """The page with its Collections section (always the last one) replaced by benchmarks/collections.md."""
    section = (BENCH / "collections.md").read_text()
    head = page.split(COLLECTIONS_START, 1)[0].rstrip()
    return head + "\n\n" + section.rstrip() + "\n"


# -- goals ------------------------------------------------------------------------------------------


def goals(results: dict) -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) for each goal of issue 4."""
    out = []

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "**missed**")

    nk, plain = writer_rate(results, "notify_kit"), writer_rate(results, "plain")
    r = ratio(nk, plain)
    out.append(("writer: notify_kit >= 70% of plain save", fmt(r and 100 * r, ".0f", "%"), verdict(r and r >= 0.7)))
    for peer in PEERS:
        r = ratio(nk, writer_rate(results, peer))
        out.append((f"writer: notify_kit >= 5x {LABELS[peer]}", fmt(r, ".2f", "x"), verdict(r and r >= 5)))
    top = max(results["size"]["latency_levels"])
    nk99 = latency(results, "notify_kit", top)
    for peer in PEERS:
        r = ratio(nk99, latency(results, peer, top))
        out.append(
            (f"latency: p99 at {top} subscribers <= 0.5x {LABELS[peer]}", fmt(r, ".2f", "x"), verdict(r and r <= 0.5))
        )
    r = ratio(nk99, latency(results, "bare", top))
    out.append(
        (f"latency: p99 at {top} subscribers <= 1.5x bare Channels", fmt(r, ".2f", "x"), verdict(r and r <= 1.5))
    )
    fan = results["fanout"].get("notify_kit")
    if fan:
        out.append(
            (
                "fan-out: zero lost final states",
                f"{fan['lost_final_states']} of {fan['final_states']}",
                verdict(fan["lost_final_states"] == 0),
            )
        )
        silent = fan.get("silently_lost_pairs", fan["lost_pairs"])
        out.append(
            (
                "fan-out: every update delivered, or its coalescing reported (never silent)",
                f"{fan['delivered_pairs']} delivered, {fan.get('coalesced_reported', 0)} reported coalesced, "
                f"{silent} lost silently (of {fan['expected_pairs']})",
                verdict(silent == 0),
            )
        )
        for other, want in (("bare", 0.8), ("rest_live", 3.0)):
            o = (results["fanout"].get(other) or {}).get("deliveries_per_second")
            r = ratio(fan["deliveries_per_second"], o)
            out.append(
                (
                    f"fan-out: deliveries/s >= {want:g}x {LABELS[other]}",
                    fmt(r, ".2f", "x"),
                    verdict(r and r >= want),
                )
            )
    return out


def goals_table(results: dict) -> str:
    return md_table(["goal (issue 4)", "measured", "verdict"], [list(g) for g in goals(results)])


def writer_goals(results: dict) -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) for each goal of issue 12 that this run measures."""

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "**missed**")

    out = []
    postgres = "PostgreSQL" in results["machine"].get("database", "")
    want = 0.85 if postgres else 0.7
    r = ratio(writer_rate(results, "notify_kit"), writer_rate(results, "plain"))
    db = "PostgreSQL" if postgres else "SQLite"
    out.append((f"writer ({db}): notify_kit >= {want:g}x plain save", fmt(r, ".2f", "x"), verdict(r and r >= want)))
    runs = results["writer_cost"].get("notify_kit") or []
    if runs:
        frames, saves = sum(r["update_frames"] for r in runs), sum(r["expected_frames"] for r in runs)
        share = frames / saves if saves else None
        out.append(
            (
                "writer at full speed: >= 95% of updates reach the subscriber as their own frames",
                f"{frames} of {saves} ({fmt(share and 100 * share, '.1f', '%')})",
                verdict(share is not None and share >= 0.95),
            )
        )
    if results.get("latency"):
        low, top = min(results["size"]["latency_levels"]), max(results["size"]["latency_levels"])
        nk50, bare50 = latency(results, "notify_kit", low, "p50"), latency(results, "bare", low, "p50")
        call50 = latency(results, "notify_kit", low, "p50", "from_call")
        bare_call50 = latency(results, "bare", low, "p50", "from_call")
        out.append(
            (
                f"latency: p50 save() returned -> socket at {low} subscriber <= bare Channels'",
                f"{ms(nk50)} ms vs {ms(bare50)} ms (from save() called: {ms(call50)} vs {ms(bare_call50)} ms)",
                verdict(nk50 is not None and bare50 is not None and nk50 <= bare50),
            )
        )
        r = ratio(latency(results, "notify_kit", top), latency(results, "bare", top))
        out.append(
            (f"latency: p99 at {top} subscribers <= 0.5x bare Channels'", fmt(r, ".2f", "x"), verdict(r and r <= 0.5))
        )
    return out


def writer_goals_table(results: dict) -> str:
    return md_table(["goal (issue 12)", "measured", "verdict"], [list(g) for g in writer_goals(results)])


# -- plot -------------------------------------------------------------------------------------------------


def plot_latency(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results["size"]["latency_levels"]
    colors = {"notify_kit": "tab:blue", "dcrf": "tab:orange", "rest_live": "tab:red", "bare": "tab:gray"}
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for name in CONTENDERS:
        xs, p50, p99 = [], [], []
        for level in levels:
            run = results["latency"].get(name, {}).get(str(level))
            if run and run["from_return"]["count"]:
                xs.append(level)
                p50.append(run["from_return"]["p50"] * 1000)
                p99.append(run["from_return"]["p99"] * 1000)
        if not xs:
            continue
        ax.plot(xs, p50, "o-", color=colors[name], label=f"{LABELS[name]} p50")
        ax.plot(xs, p99, "s--", color=colors[name], alpha=0.7, label=f"{LABELS[name]} p99")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(levels)
    ax.set_xticklabels([str(level) for level in levels])
    ax.set_xlabel("subscribers of one object")
    ax.set_ylabel("save() returned -> frame at client (ms, log)")
    machine = results["machine"]
    ax.set_title(f"Latency vs subscribers ({results['date'][:10]}, {machine.get('nproc')} cores, uvicorn + Redis)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# -- docs/performance.md ------------------------------------------------------------------------------


def performance_md(results: dict, json_path: Path) -> str:
    from docs_text import render

    return render(results, json_path)


if __name__ == "__main__":
    data = json.loads(Path(sys.argv[1]).read_text())
    data.setdefault("collections", {})
    print(console_table(data))
    if len(sys.argv) > 2 and sys.argv[2] == "--collections-docs":
        # A kept collections run: rewrite benchmarks/collections.md and that section of the page.
        (BENCH / "collections.md").write_text(collections_md(data, Path(sys.argv[1]).resolve().relative_to(REPO)))
        page = REPO / "docs" / "performance.md"
        page.write_text(splice_collections(page.read_text()))
    elif len(sys.argv) > 2 and sys.argv[2] == "--docs":
        plot_latency(data, REPO / "docs" / "latency-vs-subscribers.png")
        (REPO / "docs" / "performance.md").write_text(
            performance_md(data, Path(sys.argv[1]).resolve().relative_to(REPO))
        )
