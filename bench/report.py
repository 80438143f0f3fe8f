#!/usr/bin/env python3
"""bench/report.py: bench/RESULTS.md and bench/results.svg from the JSON
that bench/run.sh left in its output directory (stdlib only).

Every figure comes from a file of that run; a part without data prints
"not available: <why>" (from PART.na), never a number. Percentiles are
nearest-rank (p99 of 200 samples is the 198th smallest).
"""
import argparse
import html
import json
import math
import os

MIB = 1 << 20


def load(d, name):
    p = os.path.join(d, name)
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def na_reason(d, *parts):
    for part in parts:
        p = os.path.join(d, part + ".na")
        if os.path.exists(p):
            with open(p) as f:
                return oneline(f.read(), 300)
    return None


def pct(xs, q):
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(1, math.ceil(q / 100.0 * len(s)))
    return s[k - 1]


def median(xs):
    if not xs:
        return float("nan")
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def fmt(x, nd=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, int):
        return str(x)
    if abs(x) >= 100:
        return "%.0f" % x
    return ("%." + str(nd) + "f") % x


def oneline(s, n=200):
    """A message fit for one table cell."""
    return " ".join(str(s or "").split()).replace("|", "/")[:n]


def verdict(ok):
    if ok is None:
        return "not available"
    return "**met**" if ok else "**missed**"


# Classify kubesim's request counters into the steps of a run. kubesim
# labels them as kube-apiserver's apiserver_request_total does (verbs POST,
# GET, LIST, WATCH, DELETE, PATCH, PUT, and CONNECT for exec; resource and
# subresource apart: k/k staging/src/k8s.io/apiserver/pkg/endpoints/metrics/
# metrics.go).
def classify(verb, resource):
    v = verb.lower()
    r = resource.lower()
    if r.endswith("pods/exec"):
        return "exec"
    if r.endswith("pods/log"):
        return "log"
    if r.endswith("jobs") and v in ("create", "post"):
        return "create job"
    if r.endswith("jobs") and v == "delete":
        return "delete job"
    if v == "watch":
        return "watch " + (r.split("/")[-1] or "?")
    if v == "list" and r.endswith("pods"):
        return "list pods"
    return "%s %s" % (v, r or "(non-resource)")


# Requests `ci-fixer serve` makes on its own clock, not for a run: the
# housekeeper's RBAC self-check (SelfSubjectAccessReviews, at start, then
# every 5 minutes) and its orphan reaper (LIST jobs every --reap-interval).
# They fall into the measured window by timing; they are shown apart and
# not divided by the runs.
BACKGROUND = {"post selfsubjectaccessreviews": "RBAC self-check",
              "list jobs": "orphan reaper"}


def per_run_requests(doc, runs):
    """({kind: per run}, total per run, {kind: background count})."""
    if not doc or "requests" not in doc or not runs:
        return None, None, None
    by, bg = {}, {}
    for row in doc["requests"]:
        k = classify(row["verb"], row["resource"])
        if k in BACKGROUND:
            bg[k] = bg.get(k, 0) + row["count"]
        else:
            by[k] = by.get(k, 0) + row["count"]
    return {k: v / runs for k, v in by.items()}, sum(by.values()) / runs, bg


def client_cpu(d, part, key, doc):
    """CPU seconds of a client's process(es) for a part, or None."""
    if doc and doc.get("cpuSeconds") is not None:
        return doc["cpuSeconds"]
    ru = load(d, "%s-%s.rusage.json" % (part, key))
    if ru and ru.get("exitStatus") == 0:
        return ru.get("cpuSeconds")
    return None


# ---- SVG ----------------------------------------------------------------------

COLORS = {"ci-fixer": "#2b6cb0", "kubectl": "#c05621", "client-node": "#2f855a",
          "node-baseline": "#2f855a", "local ceiling": "#718096"}


class Svg:
    def __init__(self, w, h):
        self.w, self.h, self.parts = w, h, []

    def text(self, x, y, s, size=12, anchor="start", weight="normal", color="#1a202c"):
        self.parts.append('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" '
                          'font-weight="%s" fill="%s">%s</text>'
                          % (x, y, size, anchor, weight, color, html.escape(s)))

    def rect(self, x, y, w, h, color):
        self.parts.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                          % (x, y, max(w, 0.5), h, color))

    def line(self, x1, y1, x2, y2, color="#a0aec0"):
        self.parts.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>'
                          % (x1, y1, x2, y2, color))

    def render(self):
        return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
                'viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">\n'
                '<rect width="100%%" height="100%%" fill="white"/>\n%s\n</svg>\n'
                % (self.w, self.h, self.w, self.h, "\n".join(self.parts)))


def bar_panel(svg, x, y, w, h, title, unit, bars, note=None):
    """Horizontal bars: bars = [(label, value or None, color, annotation)]."""
    svg.text(x, y + 14, title, size=14, weight="bold")
    top = y + 26
    if not bars or all(b[1] is None for b in bars):
        svg.text(x, top + 20, note or "not available", size=12, color="#9b2c2c")
        return
    vmax = max(b[1] for b in bars if b[1] is not None) or 1.0
    label_w = 150
    bar_h = min(22, (h - 40) / max(len(bars), 1) - 6)
    plot_w = w - label_w - 90
    for i, (label, v, color, ann) in enumerate(bars):
        by = top + i * (bar_h + 6)
        svg.text(x + label_w - 6, by + bar_h * 0.7, label, anchor="end")
        if v is None:
            svg.text(x + label_w, by + bar_h * 0.7, "not available", color="#9b2c2c")
            continue
        bw = plot_w * v / vmax
        svg.rect(x + label_w, by, bw, bar_h, color)
        svg.text(x + label_w + bw + 4, by + bar_h * 0.7, "%s %s%s" % (fmt(v, 2 if v < 10 else 1), unit, ann or ""))
    svg.line(x + label_w, top - 2, x + label_w, top + len(bars) * (bar_h + 6))
    if note:
        svg.text(x, y + h - 4, note, size=10, color="#4a5568")


# ---- the report ------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="indir", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--svg", required=True)
    a = ap.parse_args()
    d = a.indir
    m = load(d, "machine.json") or {}
    sizes = m.get("sizes", {})
    md = []
    targets = []  # (target, measured, ok or None)
    w = md.append

    w("# ci-fixer benchmarks: results")
    w("")
    w("Generated by `make bench` (bench/run.sh, then bench/report.py) on %s; "
      "do not edit by hand, run it again. How each figure is measured: "
      "[bench/README.md](README.md)." % m.get("date", "?"))
    if m.get("quick"):
        w("")
        w("**BENCH_QUICK=1: a smoke run with tiny sizes. These figures say nothing "
          "about performance.**")
    total = load(d, "total.json")
    w("")
    w("## Machine and versions")
    w("")
    w("| | |")
    w("|---|---|")
    w("| CPU | %s, %s cores (`nproc`) |" % (m.get("cpu", "?"), m.get("nproc", "?")))
    w("| Memory | %.1f GiB |" % (m.get("memTotalKB", 0) / (1 << 20)))
    w("| Kernel | %s |" % m.get("kernel", "?"))
    w("| kubectl | %s |" % (m.get("kubectl") or "not found"))
    w("| node | %s |" % (m.get("node") or "not found"))
    w("| @kubernetes/client-node | %s |" % (m.get("clientNode") or "not installed"))
    w("| ci-fixer | git %s%s |" % (m.get("gitSha", "?"),
                                   (", `ci-fixer --version`: " + m["cifixerVersion"]) if m.get("cifixerVersion") else ""))
    w("| API server | kubesim (this repository, same commit), one instance per part, on the same machine |")
    if total:
        w("| Benchmark wall time | %d s |" % total["seconds"])
    w("| Load average (1, 5, 15 min) | %s at the start, %s at the end |"
      % (m.get("loadavgStart", "?"), (total or {}).get("loadavgEnd", "?")))
    ap = os.path.join(d, "appended.jsonl")
    if os.path.exists(ap):
        with open(ap) as f:
            for line in f:
                try:
                    x = json.loads(line)
                except ValueError:
                    continue
                w("| Run again (BENCH_APPEND=1) | part(s) %s, at %s, load average %s |"
                  % (x.get("parts"), x.get("date"), x.get("loadavg")))
    w("")
    w("The machine is shared: other builds and tests ran beside this benchmark "
      "(see the load average against %s cores), so absolute times are noisy and "
      "inflated, most of all process start-up (kubectl) and anything with many "
      "processes. Compare the clients by the ratios: they ran side by side in "
      "the same run, against the same kubesim." % m.get("nproc", "?"))
    w("")
    w("![benchmark plot](results.svg)")
    w("")

    # ---- 1 ----
    count = sizes.get("rttCount", "?")
    w("## 1. Exec round trip: %s sequential execs of `true` in one ready pod" % count)
    w("")
    rtt = {}
    rows = [("ci-fixer (kube/exec.h)", "cifixer"), ("kubectl exec", "kubectl"),
            ("@kubernetes/client-node Exec", "node")]
    w("| client | median ms | p99 ms | mean ms | min ms | client CPU ms/exec | failures |")
    w("|---|---|---|---|---|---|---|")
    for label, key in rows:
        doc = load(d, "rtt-%s.json" % key)
        if doc and doc.get("ms") and doc.get("failures", 0) >= len(doc["ms"]):
            w("| %s | not available: all %d execs failed: %s | | | | | |"
              % (label, len(doc["ms"]), oneline(doc.get("firstError"))))
        elif doc and doc.get("ms"):
            ms = doc["ms"]
            # Only a series without failures counts towards the targets.
            if not doc.get("failures"):
                rtt[key] = (median(ms), pct(ms, 99))
            w("| %s | %s | %s | %s | %s | %s | %d of %d%s%s |" % (
                label, fmt(median(ms), 2), fmt(pct(ms, 99), 2), fmt(sum(ms) / len(ms), 2), fmt(min(ms), 2),
                fmt(client_cpu(d, "rtt", key, doc) * 1000.0 / len(ms), 2) if client_cpu(d, "rtt", key, doc) is not None else "n/a",
                doc.get("failures", 0), len(ms),
                (" (stopped by the %s s time cap, of %s asked)" % (fmt(doc.get("maxSeconds"), 0), doc.get("asked"))
                 if doc.get("capped") else ""),
                (": " + oneline(doc.get("firstError"))) if doc.get("failures") else ""))
        else:
            w("| %s | not available: %s | | | | | |" % (label, na_reason(d, "rtt-" + key, "rtt") or "no data"))
    w("")
    w("Client CPU is the user + system time of the client's process(es) over the whole "
      "series (`/usr/bin/time`, or the rusage of kubectl's children), start-up included, "
      "divided by the execs: unlike the wall times it hardly depends on the machine's load.")
    w("")
    for other, factor, name in (("kubectl", 10, "kubectl exec"), ("node", 3, "client-node")):
        if "cifixer" in rtt and other in rtt:
            r = rtt[other][0] / rtt["cifixer"][0]
            r99 = rtt[other][1] / rtt["cifixer"][1]
            w("- ci-fixer vs %s: %.1fx faster at the median, %.1fx at p99 (target at least %dx: %s)"
              % (name, r, r99, factor, verdict(r >= factor)))
            targets.append(("exec round trip at least %dx faster than %s" % (factor, name),
                            "%.1fx (median)" % r, r >= factor))
        else:
            w("- ci-fixer vs %s: not available" % name)
            targets.append(("exec round trip at least %dx faster than %s" % (factor, name), "n/a", None))
    w("")

    # ---- 2 ----
    tb = sizes.get("tputBytes", 0)
    w("## 2. Exec stdout throughput: %s MiB through one exec, sha256-checked" % fmt(tb / MIB, 0))
    w("")
    local = load(d, "tput-local.json")
    ceil = local["bytes"] / local["seconds"] / MIB if local and local.get("seconds") else None
    tput = {}
    w("| client | MiB/s | seconds | bytes | hash matches | share of the local ceiling | client CPU s |")
    w("|---|---|---|---|---|---|---|")
    for label, key in [("local ceiling (same command into a local pipe, hashed)", "local")] + rows:
        doc = load(d, "tput-%s.json" % key)
        if doc and doc.get("status") != "Success":
            w("| %s | not available: the exec failed: %s | | | | | |" % (label, oneline(doc.get("status"))))
        elif doc and doc.get("seconds"):
            ok = (local is not None and doc.get("sha256") == local.get("sha256")
                  and doc.get("bytes") == tb and doc.get("status") == "Success")
            rate = doc["bytes"] / doc["seconds"] / MIB
            if ok:
                tput[key] = rate
            share = "%.0f%%" % (100 * rate / ceil) if ceil else "n/a"
            cpu = client_cpu(d, "tput", key, doc)
            w("| %s | %s | %.2f | %d | %s | %s | %s |" % (label, fmt(rate), doc["seconds"], doc["bytes"],
                                                         "yes" if ok else "**NO** (%s)" % doc.get("status"), share,
                                                         fmt(cpu, 2) if cpu is not None else "n/a"))
        else:
            w("| %s | not available: %s | | | | | |" % (label, na_reason(d, "tput-" + key, "tput") or "no data"))
    w("")
    w("Client CPU: the whole client process, start-up and SHA-256 included; for kubectl "
      "and the local ceiling the hashing is done by the harness and not counted.")
    w("")
    if "cifixer" in tput and "kubectl" in tput:
        r = tput["cifixer"] / tput["kubectl"]
        w("- ci-fixer vs kubectl: %.1fx (target at least 2x: %s)" % (r, verdict(r >= 2)))
        targets.append(("throughput at least 2x kubectl", "%.1fx" % r, r >= 2))
    else:
        targets.append(("throughput at least 2x kubectl", "n/a", None))
    if "cifixer" in tput and ceil:
        s = tput["cifixer"] / ceil
        w("- ci-fixer vs the local ceiling: %.0f%% (target at least 50%%: %s)" % (100 * s, verdict(s >= 0.5)))
        targets.append(("throughput at least 50% of the local ceiling", "%.0f%%" % (100 * s), s >= 0.5))
    else:
        targets.append(("throughput at least 50% of the local ceiling", "n/a", None))
    if "node" in tput and "cifixer" in tput:
        w("- ci-fixer vs client-node: %.1fx" % (tput["cifixer"] / tput["node"]))
    w("")

    # ---- 3 ----
    w("## 3. Whole run: Job, wait for the pod, upload %s MiB, 3 commands, logs, patch, delete"
      % fmt(sizes.get("wsBytes", 0) / MIB, 1))
    w("")
    levels = str(sizes.get("levels", "")).split()
    metric = load(d, "run-metric.json")
    w("Runner CPU and peak RSS are those of the one runner process (`ci-fixer serve`, or the "
      "node process of bench/node-baseline), from `/usr/bin/time -v`, start-up included. "
      "Requests are kubesim's counters%s, after minus before, divided by the runs."
      % (" (`%s`)" % metric if metric else ""))
    w("")
    w("Median and p99 are over the runs that succeeded, runs/s counts only those; CPU "
      "and requests are divided by all the runs started.")
    w("")
    w("| runner | concurrency | runs | failures | Jobs left | median s/run | p99 s/run | runs/s | CPU s/run | peak RSS MiB | API requests/run |")
    w("|---|---|---|---|---|---|---|---|---|---|---|")
    run3 = {}
    reqtables = []
    for lv in levels:
        for label, key in (("ci-fixer", "cifixer"), ("node-baseline", "node")):
            tag = "run-%s-c%s" % (key, lv)
            doc = load(d, tag + ".json")
            res = (doc or {}).get("result") or {}
            if not doc or "runMs" not in res:
                why = na_reason(d, tag, "run") or ((res or {}).get("error") or "no data")
                w("| %s | %s | | not available: %s | | | | | | | |" % (label, lv, why))
                continue
            runs = res.get("runs", 0)
            ok = [x / 1000.0 for x in res["runMs"]]
            ru = doc.get("rusage") or {}
            per, tot, bg = per_run_requests(doc.get("requests"), runs)
            # runs per second counts the runs that succeeded
            rps = (runs - res.get("failures", 0)) / res["wallSeconds"] if res.get("wallSeconds") else None
            cpu = ru.get("cpuSeconds", float("nan")) / runs if runs else None
            rss = ru.get("maxRssKB", 0) / 1024.0
            run3[(key, lv)] = {"rps": rps, "req": tot, "per": per, "median": median(ok),
                               "cpu": cpu, "rss": rss, "bg": bg}
            w("| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                label, lv, runs, res.get("failures", 0), (doc.get("left") or {}).get("jobsLeft", "n/a"),
                fmt(median(ok), 2), fmt(pct(ok, 99), 2),
                fmt(rps, 2), fmt(cpu, 3), fmt(rss), fmt(tot)))
            if per:
                reqtables.append((label, lv, per))
            if res.get("errors"):
                reqtables.append((label, lv, {"__errors__": res["errors"][:3]}))
    w("")
    if reqtables:
        w("API requests per run, by kind (kubesim's verb and resource):")
        w("")
        kinds = sorted({k for _, _, p in reqtables for k in p if k != "__errors__"})
        w("| runner | concurrency | " + " | ".join(kinds) + " |")
        w("|---|---|" + "---|" * len(kinds))
        for label, lv, p in reqtables:
            if "__errors__" in p:
                continue
            w("| %s | %s | %s |" % (label, lv, " | ".join(fmt(p.get(k, 0), 2) for k in kinds)))
        w("")
        for label, lv, p in reqtables:
            if "__errors__" in p:
                w("- %s at concurrency %s, first errors: %s" % (label, lv, "; ".join(
                    oneline(e) for e in p["__errors__"])))
        bgs = [(lv, v["bg"]) for (k, lv), v in sorted(run3.items()) if k == "cifixer" and v.get("bg")]
        if bgs:
            w("- Not counted per run: requests `ci-fixer serve` makes on its own clock "
              "while the runs were measured: " + "; ".join(
                  "concurrency %s: %s" % (lv, ", ".join("%s %d (%s)" % (k, n, BACKGROUND[k])
                                                          for k, n in sorted(bg.items())))
                  for lv, bg in bgs))
        w("")
    # The minimum: 1 create, 1 watch, 5 execs (upload, 3 commands, collect), 1 log, 1 delete.
    minimum = {"create job": 1, "exec": 5, "log": 1, "delete job": 1}
    cf = [v for (k, _), v in run3.items() if k == "cifixer" and v["per"]]
    if cf:
        worst = max(cf, key=lambda v: v["req"])
        extra = {k: n for k, n in worst["per"].items()
                 if k not in minimum and not k.startswith("watch") and n > 0}
        watches = sum(n for k, n in worst["per"].items() if k.startswith("watch"))
        ok = (all(worst["per"].get(k, 0) <= n + 1e-9 for k, n in minimum.items())
              and watches <= 1 + 1e-9 and not extra)
        w("- Minimum per run (1 create, 1 watch, 5 execs: upload + 3 commands + collect, 1 log "
          "read, 1 delete = 9): ci-fixer made %s at worst%s (%s)"
          % (fmt(worst["req"], 2), "; beyond the minimum: " + ", ".join(
              "%s %s" % (k, fmt(n, 2)) for k, n in extra.items()) if extra else "", verdict(ok)))
        targets.append(("API requests per run at the minimum (9, no polling)", fmt(worst["req"], 2), ok))
        ev = {lv: v["per"].get("watch events", 0) for (k, lv), v in sorted(run3.items())
              if k == "cifixer" and v["per"]}
        ev_seen = ["%s per run at concurrency %s" % (fmt(n, 2), lv) for lv, n in ev.items() if n > 0]
        w("- Where ci-fixer's requests above the minimum come from (sandbox/wait.c): it waits for "
          "the pod with one WATCH of the Job's pods without a resourceVersion, and no LIST: "
          "the API server sends the pods that exist as synthetic ADDED events first (\"Get State "
          "and Start at Most Recent\", k8s.io docs, api-concepts). A helper thread starts a "
          "second WATCH, on the Job's Events, only when no pod has appeared within 5 s, to catch "
          "a FailedCreate (Pod Security, quota), which no pod event would show; a pod that "
          "appears stops it. So the events watch is made only for pods slower than 5 s to "
          "appear%s; every other run makes the minimum."
          % ((": " + ", ".join(ev_seen) + " (the load of that many runs at once)") if ev_seen
             else ""))
        nb = [v for (k, _), v in run3.items() if k == "node" and v["per"]]
        if nb and all(abs(v["per"].get("list pods", 0) - 1) < 1e-9 for v in nb):
            w("- node-baseline polls (LIST pods every 500 ms), yet it made exactly one LIST per run "
              "here: kubesim had the pod Ready before the first poll. On a cluster where a pod "
              "takes seconds to start, each poll is one more request.")
    else:
        targets.append(("API requests per run at the minimum (9, no polling)", "n/a", None))
    ratio_rows = []
    for lv in levels:
        c, n = run3.get(("cifixer", lv)), run3.get(("node", lv))
        if c and n:
            def r(a, b):
                return "%.2fx" % (a / b) if a and b and not math.isnan(a) and not math.isnan(b) else "n/a"
            ratio_rows.append("| %s | %s | %s | %s | %s | %s |" % (
                lv, r(c["median"], n["median"]), r(c["rps"], n["rps"]), r(c["cpu"], n["cpu"]),
                r(c["rss"], n["rss"]), r(c["req"], n["req"])))
    if ratio_rows:
        w("")
        w("ci-fixer relative to node-baseline, same run (below 1 is better for time, CPU, RSS "
          "and requests; above 1 is better for runs/s):")
        w("")
        w("| concurrency | median s/run | runs/s | CPU s/run | peak RSS | API requests/run |")
        w("|---|---|---|---|---|---|")
        for row in ratio_rows:
            w(row)
    w("")

    # ---- 4 ----
    sr = sizes.get("scaleRuns", "?")
    w("## 4. Scale: %s concurrent runs of `sleep 1` through one `ci-fixer serve`" % sr)
    w("")
    sc = load(d, "scale.json")
    scale = None
    if sc and (sc.get("result") or {}).get("runs"):
        res, smp, ru, left = sc["result"], sc.get("sample") or {}, sc.get("rusage") or {}, sc.get("left") or {}
        peak_mb = max(smp.get("peakRssKB", 0), ru.get("maxRssKB", 0)) / 1024.0
        scale = {"secs": res["wallSeconds"], "fail": res["failures"], "left": left.get("jobsLeft"),
                 "rss": peak_mb}
        w("| runs | time to finish all | failures | Jobs left | peak RSS | peak threads | peak open files | CPU s | 429 retries |")
        w("|---|---|---|---|---|---|---|---|---|")
        w("| %d | %.1f s | %d | %s | %.1f MiB | %s | %s | %s | %s |" % (
            res["runs"], res["wallSeconds"], res["failures"], left.get("jobsLeft", "n/a"), peak_mb,
            smp.get("peakThreads", "n/a"), smp.get("peakFds", "n/a"), fmt(ru.get("cpuSeconds"), 1),
            res.get("retries429", 0)))
        if res.get("phases"):
            w("")
            w("Phases: " + ", ".join("%s %d" % kv for kv in sorted(res["phases"].items())))
        if res.get("errors"):
            w("")
            w("First errors: " + "; ".join(oneline(e) for e in res["errors"][:3]))
        targets.append(("%s concurrent runs: 0 failures" % sr, str(res["failures"]), res["failures"] == 0))
        targets.append(("%s concurrent runs: 0 Jobs left" % sr, str(left.get("jobsLeft")),
                        left.get("jobsLeft") == 0 if left.get("jobsLeft") is not None else None))
        targets.append(("%s concurrent runs: peak RSS under 256 MB" % sr, "%.1f MiB" % peak_mb,
                        peak_mb * MIB < 256e6))
    else:
        w("not available: %s" % (na_reason(d, "scale") or "no data"))
        for t in ("0 failures", "0 Jobs left", "peak RSS under 256 MB"):
            targets.append(("%s concurrent runs: %s" % (sr, t), "n/a", None))
    w("")

    # ---- targets ----
    w("## Targets (issue 7)")
    w("")
    w("| target | measured | |")
    w("|---|---|---|")
    for t, meas, ok in targets:
        w("| %s | %s | %s |" % (t, meas, verdict(ok)))
    w("")
    # The hand-written profile notes (bench/analysis.md), copied as they are.
    an = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
    if os.path.exists(an):
        with open(an) as f:
            w(f.read().rstrip("\n"))
        w("")
    nas = sorted(f for f in os.listdir(d) if f.endswith(".na"))
    if nas:
        w("## Not available in this run")
        w("")
        for f in nas:
            with open(os.path.join(d, f)) as fh:
                w("- %s: %s" % (f[:-3], fh.read().strip()))
        w("")

    with open(a.results, "w") as f:
        f.write("\n".join(md))

    # ---- the plot ----
    svg = Svg(980, 640)
    svg.text(490, 24, "ci-fixer vs kubectl vs @kubernetes/client-node on kubesim (%s cores)%s"
             % (m.get("nproc", "?"), " [QUICK: not meaningful]" if m.get("quick") else ""),
             size=16, anchor="middle", weight="bold")
    names = {"cifixer": "ci-fixer", "kubectl": "kubectl", "node": "client-node"}
    bar_panel(svg, 20, 40, 460, 270, "Exec round trip, median (lower is better)", "ms",
              [(names[k], rtt.get(k, (None,))[0], COLORS[names[k]], " (p99 %s)" % fmt(rtt[k][1])
                if k in rtt else "") for k in ("cifixer", "kubectl", "node")])
    bar_panel(svg, 500, 40, 460, 270, "Exec stdout throughput (higher is better)", "MiB/s",
              [("local ceiling", tput.get("local") if "local" in tput else ceil, COLORS["local ceiling"], "")] +
              [(names[k], tput.get(k), COLORS[names[k]], "") for k in ("cifixer", "kubectl", "node")])
    bars = []
    for lv in levels:
        for key, label in (("cifixer", "ci-fixer"), ("node", "node-baseline")):
            v = run3.get((key, lv))
            bars.append(("%s c=%s" % (label, lv), v["rps"] if v else None, COLORS[label], ""))
    bar_panel(svg, 20, 330, 460, 290, "Whole run: successful runs/s (higher is better)", "/s", bars)
    bars = []
    for lv in levels[:1] + levels[-1:] if len(levels) > 1 else levels:
        for key, label in (("cifixer", "ci-fixer"), ("node", "node-baseline")):
            v = run3.get((key, lv))
            bars.append(("%s c=%s" % (label, lv), v["req"] if v else None, COLORS[label], ""))
    note = None
    if scale:
        note = "Scale: %s runs of sleep 1 in %.1f s, %d failures, %s Jobs left, peak RSS %.0f MiB" % (
            sr, scale["secs"], scale["fail"], scale["left"], scale["rss"])
    bar_panel(svg, 500, 330, 460, 290, "API requests per run (lower is better; minimum 9)", "", bars, note)
    with open(a.svg, "w") as f:
        f.write(svg.render())


if __name__ == "__main__":
    main()
