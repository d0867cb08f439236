#!/usr/bin/env python3
"""report.py DIR — table.md and chart data from a bench/compare/run.sh result directory.

Reads DIR/runs.jsonl (one line per purchase run: what ran, and the benchmark's own JSON
result), DIR/raw/{replay,restart,rss}.jsonl (giftcard's engine figures) and
DIR/machine.txt; writes DIR/table.md, DIR/chart-cards<K>.dat and DIR/chart.vars (read by
bench/compare/chart.gp). Standard library only.
"""
import json
import math
import os
import statistics
import sys

TARGETS = {"inproc": 20.0, "caf": 8.0, "http": 5.0}  # issue #7: x the best durable PostgreSQL

PG_NAMES = {
    "pessimistic": "PostgreSQL pessimistic (SKIP LOCKED)",
    "optimistic": "PostgreSQL optimistic (row version)",
    "single": "PostgreSQL single statement",
}
GC_NAMES = {
    "inproc": "giftcard in process",
    "caf": "giftcard CAF remote",
    "http": "giftcard HTTP",
}


def key_of(r):
    if r["system"] == "postgres":
        return ("postgres", r["variant"], r["sync"])
    return ("giftcard", r["variant"], "")


def name_of(k):
    system, variant, sync = k
    if system == "postgres":
        n = PG_NAMES.get(variant, "PostgreSQL " + variant)
        return n if sync == "on" else n + ", sync off"
    return GC_NAMES.get(variant, "giftcard " + variant)


def order_of(k):
    system, variant, sync = k
    if system == "postgres":
        s = list(PG_NAMES).index(variant) if variant in PG_NAMES else 9
        return (0 if sync == "on" else 2, s)
    return (1, list(GC_NAMES).index(variant) if variant in GC_NAMES else 9)


def metrics(r):
    """purchases/s, p50, p99, conflicts and retries per purchase, problems, for one run."""
    res = r.get("result") or {}
    m = {"ok": r["rc"] == 0 and bool(res), "notes": []}
    if not res:
        m["notes"].append("no result (exit %d)" % r["rc"])
        return m
    m["rate"] = float(res.get("purchases_per_s", 0))
    m["p50"] = float(res.get("p50_ms", 0))
    m["p99"] = float(res.get("p99_ms", 0))
    purchases = max(int(res.get("purchases", 0)), 1)
    if r["system"] == "postgres":
        conflicts = float(res.get("conflicts_per_purchase", 0))
        m["conflicts"] = conflicts
        # Every optimistic conflict and every retried deadlock/serialization failure is
        # one more attempt at the purchase.
        m["retries"] = conflicts + float(res.get("retried_errors", 0)) / purchases
        if res.get("check") != "ok":
            m["ok"] = False
            m["notes"].append("check " + str(res.get("check")))
        if res.get("errors", 0):
            m["notes"].append("%s errors" % res["errors"])
    else:
        errs = res.get("errors") or {}
        failed = sum(errs.values()) if isinstance(errs, dict) else int(errs)
        if r["variant"] == "inproc":
            # giftcard-bench reports no store counters for rejected appends; the actors
            # never retry internally, so a conflict would be a failed request.
            m["conflicts"] = failed / purchases
        else:
            m["conflicts"] = float(res.get("conflicts_per_purchase", 0))
        # The buyers never retry: a failed request is what a client would have to retry.
        m["retries"] = failed / purchases
        if failed:
            m["notes"].append("%d failed requests" % failed)
        if not res.get("verified", False):
            m["ok"] = False
            m["notes"].append("NOT VERIFIED")
        if res.get("out_of_stock"):
            m["ok"] = False
            m["notes"].append("ran out of codes")
    if r["rc"] != 0:
        m["notes"].append("exit %d" % r["rc"])
    return m


def med(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else None


def fmt_rate(x):
    return "–" if x is None else "{:,.0f}".format(x)


def fmt_ms(x):
    if x is None:
        return "–"
    return "%.2f" % x if x < 10 else "%.1f" % x if x < 100 else "{:,.0f}".format(x)


def fmt_pp(x):
    if x is None:
        return "–"
    return "0" if x == 0 else "%.3f" % x if x < 1 else "%.2f" % x


def fmt_ratio(x):
    if x is None:
        return "–"
    return "%.2f×" % x if x < 10 else "%.1f×" % x


def layout_name(cards):
    return "one hot card" if cards == 1 else "%d cards" % cards


def load_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out


def extra_result(d, name, bench):
    """(result or None, note) of one engine-figure step."""
    raw = os.path.join(d, "raw", name + ".jsonl")
    rcf = os.path.join(d, "raw", name + ".rc")
    if not os.path.exists(raw):
        return None, "not measured in this run (BENCH_EXTRAS)"
    rc = open(rcf).read().strip() if os.path.exists(rcf) else "?"
    lines = [j for j in load_jsonl(raw) if bench is None or j.get("bench") == bench]
    if not lines:
        return None, "failed (exit %s, see logs/%s.log)" % (rc, name)
    note = "" if rc == "0" else "exit %s, see logs/%s.log" % (rc, name)
    return lines[-1], note


def main(d):
    runs = load_jsonl(os.path.join(d, "runs.jsonl"))
    machine = open(os.path.join(d, "machine.txt")).read().strip() if os.path.exists(os.path.join(d, "machine.txt")) else ""

    # ---- aggregate: (cards, clients, key) -> list of per-run metrics
    groups = {}
    for r in runs:
        groups.setdefault((r["cards"], r["clients"], key_of(r)), []).append(metrics(r))
    layouts = sorted({c for c, _, _ in groups})
    clients_all = sorted({n for _, n, _ in groups})
    keys = sorted({k for _, _, k in groups}, key=order_of)

    agg = {}
    for g, ms in groups.items():
        a = {f: med([m.get(f) for m in ms]) for f in ("rate", "p50", "p99", "conflicts", "retries")}
        a["runs"] = len(ms)
        a["rates"] = [m.get("rate") for m in ms]
        a["ok"] = all(m["ok"] for m in ms)
        a["notes"] = sorted({n for m in ms for n in m["notes"]})
        agg[g] = a

    def best_pg(cards, clients, sync="on"):
        best = None
        for k in keys:
            if k[0] == "postgres" and k[2] == sync:
                a = agg.get((cards, clients, k))
                if a and a["rate"] is not None and a["ok"] and (best is None or a["rate"] > best[1]):
                    best = (k, a["rate"])
        return best

    reps = max((a["runs"] for a in agg.values()), default=0)
    L = []
    L.append("# giftcard vs PostgreSQL: concurrent buyers of gift cards (issue #7)")
    L.append("")
    L.append("Generated by `make bench-compare` (`bench/compare/run.sh`) from `%s/` (`runs.jsonl`: "
             "one line per run; `raw/`, `logs/`: every benchmark's output)." % os.path.normpath(d))
    L.append("")
    if machine:
        L.append("```")
        L.append(machine)
        L.append("```")
        L.append("")
    L.append("Every purchase is durable on both sides unless the row says *sync off*: PostgreSQL "
             "commits with `synchronous_commit = on` (fsync on), giftcard acknowledges a purchase "
             "after the synced RocksDB write of its group commit. Each row is the %s of %d run%s; "
             "purchases/s over the measured window, latency per purchase (retries included). "
             "**× best PG**: purchases/s of the row divided by the best durable PostgreSQL strategy "
             "at the same concurrency and layout."
             % ("median" if reps > 1 else "result", reps, "s" if reps != 1 else ""))
    L.append("")

    for cards in layouts:
        L.append("## Purchases, %s" % layout_name(cards))
        L.append("")
        L.append("| buyers | system | purchases/s | p50 ms | p99 ms | conflicts / purchase | retries / purchase | × best PG | notes |")
        L.append("|---:|---|---:|---:|---:|---:|---:|---:|---|")
        for n in clients_all:
            best = best_pg(cards, n)
            for k in keys:
                a = agg.get((cards, n, k))
                if not a:
                    continue
                ratio = a["rate"] / best[1] if best and a["rate"] is not None and best[1] > 0 else None
                name = name_of(k)
                if k[0] == "giftcard":
                    name = "**%s**" % name
                    rtxt = "**%s**" % fmt_ratio(ratio) if ratio is not None else "–"
                else:
                    rtxt = fmt_ratio(ratio)
                notes = list(a["notes"])
                if best and k == best[0]:
                    notes.insert(0, "best durable PG")
                if a["runs"] > 1:
                    notes.append("runs: " + " · ".join(fmt_rate(x) for x in a["rates"]))
                L.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    n, name, fmt_rate(a["rate"]), fmt_ms(a["p50"]), fmt_ms(a["p99"]),
                    fmt_pp(a["conflicts"]), fmt_pp(a["retries"]), rtxt, "; ".join(notes)))
        L.append("")

    # ---- summary against the targets
    gc_keys = [k for k in keys if k[0] == "giftcard"]
    if gc_keys:
        L.append("## giftcard / best durable PostgreSQL")
        L.append("")
        L.append("Targets (issue #7): in process ≥ 20×, CAF remote ≥ 8×, HTTP ≥ 5×; 0 conflicts and 0 "
                 "retries on giftcard's side at every concurrency.")
        L.append("")
        head = "| layout | buyers | best durable PG | best PG, sync off |"
        sep = "|---|---:|---|---|"
        for k in gc_keys:
            head += " %s |" % name_of(k).replace("giftcard ", "")
            sep += "---:|"
        L.append(head)
        L.append(sep)
        met = {k[1]: [] for k in gc_keys}
        for cards in layouts:
            for n in clients_all:
                best = best_pg(cards, n)
                off = best_pg(cards, n, "off")
                row = "| %s | %d | %s | %s |" % (
                    layout_name(cards), n,
                    "%s: %s/s" % (name_of(best[0]).replace("PostgreSQL ", ""), fmt_rate(best[1])) if best else "–",
                    "%s: %s/s" % (name_of(off[0]).replace("PostgreSQL ", "").replace(", sync off", ""), fmt_rate(off[1])) if off else "–")
                for k in gc_keys:
                    a = agg.get((cards, n, k))
                    if not a or a["rate"] is None or not best:
                        row += " – |"
                        continue
                    x = a["rate"] / best[1]
                    t = TARGETS.get(k[1])
                    ok = t is not None and x >= t
                    if t is not None:
                        met[k[1]].append(ok)
                    row += " %s%s |" % (fmt_ratio(x), "" if t is None else (" ✓" if ok else " ✗"))
                L.append(row)
        L.append("")
        for k in gc_keys:
            t = TARGETS.get(k[1])
            got = met.get(k[1], [])
            if t is not None and got:
                L.append("- %s: ≥ %g× met at %d of %d points." % (name_of(k), t, sum(got), len(got)))
        worst_c = max((agg[g]["conflicts"] or 0 for g in agg if g[2][0] == "giftcard"), default=None)
        worst_r = max((agg[g]["retries"] or 0 for g in agg if g[2][0] == "giftcard"), default=None)
        if worst_c is not None:
            L.append("- giftcard conflicts per purchase, largest at any point: %s; retries (failed "
                     "requests) per purchase, largest: %s." % (fmt_pp(worst_c), fmt_pp(worst_r)))
        opt = [(n, agg[(c, n, k)]["conflicts"]) for (c, n, k) in sorted(agg)
               if k == ("postgres", "optimistic", "on") and c == (layouts[0] if layouts else 1)]
        if opt:
            L.append("- PostgreSQL optimistic, conflicts per purchase by buyers (%s): %s." % (
                layout_name(layouts[0]), ", ".join("%d: %s" % (n, fmt_pp(c)) for n, c in opt)))
        L.append("")

    # ---- engine figures
    L.append("## giftcard engine figures")
    L.append("")
    L.append("| figure | value | how |")
    L.append("|---|---:|---|")
    rp, note = extra_result(d, "replay", "replay")
    if rp:
        ev = rp.get("plan", {}).get("events")
        L.append("| replay (in memory, `giftcard replay`) | %s events/s | %s events, median of %d%s |" % (
            fmt_rate(rp.get("replay_events_per_s_median")), fmt_rate(ev), len(rp.get("runs", [])),
            "; " + note if note else ""))
        L.append("| rebuild of the persisted read models | %s events/s | same log |" % fmt_rate(rp.get("rebuild_events_per_s_median")))
    else:
        L.append("| replay | – | %s |" % note)
    rs, note = extra_result(d, "restart", "restart")
    if rs:
        ev = rs.get("plan", {}).get("events", 0)
        medn = rs.get("median", {})
        small = "" if ev >= 10_000_000 else " (**not the 10M-event figure**: BENCH_QUICK or BENCH_RESTART_EVENTS)"
        L.append("| restart: `giftcard serve` spawn to ready | %s ms | %s events (%s MB store), median of %d%s%s |" % (
            fmt_ms(medn.get("ready_ms")), fmt_rate(ev), fmt_rate(rs.get("store_mb")), len(rs.get("runs", [])), small,
            "; " + note if note else ""))
        if "first_purchase_snapshot_ms" in medn:
            L.append("| restart: first purchase after ready | %s ms | card actor recovering from its snapshot |" % fmt_ms(medn.get("first_purchase_snapshot_ms")))
    else:
        L.append("| restart to ready | – | %s |" % note)
    rss, note = extra_result(d, "rss", None)
    if rss:
        users = rss.get("users", 0)
        small = "" if users >= 1_000_000 else " (**not the 1M-wallet figure**: BENCH_QUICK or BENCH_RSS_USERS)"
        L.append("| peak RSS, %s wallets credited and buying once | %s MB | `giftcard-bench purchase --mode million`: whole process (shop, store, buyers), wallets passivate after 1 s idle; at most %s alive at once; %s purchases/s%s%s |" % (
            fmt_rate(users), fmt_rate(rss.get("peak_rss_mb")), fmt_rate(rss.get("live_wallets_peak")),
            fmt_rate(rss.get("purchases_per_s")), small, "; " + note if note else ""))
    else:
        L.append("| peak RSS at 1M wallets | – | %s |" % note)
    L.append("")
    L.append("No PostgreSQL counterpart is measured for these three figures.")
    L.append("")

    # ---- notes on method
    L.append("## How each side was measured")
    L.append("")
    L.append("- **PostgreSQL**: `giftcard-pg-bench --reset` (fresh schema and data per run), N client threads "
             "with one libpq connection and one wallet each, READ COMMITTED; on 100 cards each client buys "
             "from the cards round robin. conflicts = optimistic row-version conflicts per purchase; retries = "
             "conflicts + retried deadlocks/serialization failures per purchase (bench/peers/postgres/README.md).")
    L.append("- **giftcard in process**: `giftcard-bench purchase` (buyer actors in the shop's actor system, "
             "1 s warm-up). When buyers < cards, only the cards that have a buyer are created (buyer i buys "
             "card i % K, so the others would be idle). conflicts = failed requests: giftcard-bench reports no "
             "store counter, and the actors never retry internally.")
    L.append("- **giftcard CAF remote**: `giftcard-remote-bench --transport caf`: a fresh `giftcard serve`, N "
             "buyer actors in a client actor system sharing one CAF connection, each with %s request(s) in flight, "
             "sent asynchronously (pipelined on the connection)." % _depth(runs))
    L.append("- **giftcard HTTP**: `giftcard-remote-bench --transport http`: the same server, N keep-alive "
             "connections from one Beast I/O thread, one POST /api/purchases in flight each.")
    L.append("- For both networked modes conflicts = the store's rejected appends (version or claim conflicts, "
             "from /metrics) per purchase; the buyers never retry, so retries = failed requests per purchase. "
             "Every giftcard run is checked: distinct codes, cards' assigned counts, exact balances; the "
             "networked runs also stop the server cleanly and run `giftcard verify`.")
    L.append("- All programs share the machine's cores: the load generators run on the same machine as the "
             "servers, on both sides.")
    L.append("")

    with open(os.path.join(d, "table.md"), "w") as f:
        f.write("\n".join(L) + "\n")

    # ---- chart data: one file per layout, one column per system (purchases/s and p99)
    for cards in layouts:
        with open(os.path.join(d, "chart-cards%d.dat" % cards), "w") as f:
            f.write("buyers " + " ".join('"%s"' % name_of(k) for k in keys) + " " +
                    " ".join('"%s p99"' % name_of(k) for k in keys) + "\n")
            for n in clients_all:
                vals = []
                for field in ("rate", "p99"):
                    for k in keys:
                        a = agg.get((cards, n, k))
                        v = a[field] if a and a[field] is not None else None
                        vals.append("NaN" if v is None or v <= 0 else "%g" % v)
                f.write("%d %s\n" % (n, " ".join(vals)))
    with open(os.path.join(d, "chart.vars"), "w") as f:
        f.write("nsys = %d\n" % len(keys))
        f.write("layouts = \"%s\"\n" % " ".join(str(c) for c in layouts))
        f.write("nlayouts = %d\n" % len(layouts))
        # line styles: PostgreSQL durable solid, sync off dashed, giftcard bold
        f.write("kinds = \"%s\"\n" % " ".join(
            "gc" if k[0] == "giftcard" else ("pgon" if k[2] == "on" else "pgoff") for k in keys))
    print("report.py: wrote %s" % os.path.join(d, "table.md"), file=sys.stderr)


def _depth(runs):
    ds = sorted({(r.get("result") or {}).get("depth") for r in runs if r.get("transport") == "caf"} - {None})
    return "/".join(str(x) for x in ds) if ds else "1"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    main(sys.argv[1])
