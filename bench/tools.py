#!/usr/bin/env python3
"""bench/tools.py: the measuring helpers bench/run.sh calls (stdlib only).

Each subcommand prints or writes one JSON document:

  kubectl-rtt   N sequential `kubectl exec POD -- true`, each timed (or as
                many as --max-seconds allows)
  kubectl-tput  `kubectl exec POD -- CMD...` with stdout hashed as it arrives
  local-tput    the same command run locally into a pipe (the ceiling: the
                fastest of --repeat runs)
  submit        R runs POSTed to `ci-fixer serve` (/v1/runs?wait=true), C at
                a time, each timed, phases checked (429 retried after
                Retry-After, counted)
  sample        polls /proc/PID until it exits or SIGTERM: peak RSS,
                threads, open files, CPU seconds
  metrics       one snapshot of kubesim's /metrics (Prometheus text)
  metrics-diff  the requests between two snapshots, by verb and resource

Timing uses time.perf_counter(); process start-up is inside what is timed
for kubectl, as a script that loops over `kubectl exec` pays it.
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import resource
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse


def emit(doc, out):
    text = json.dumps(doc)
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


# ---- exec through kubectl -------------------------------------------------

def kubectl_base(a):
    return [a.kubectl, "--kubeconfig", a.kubeconfig, "-n", a.namespace, "exec", a.pod,
            "-c", a.container, "--"]


def cmd_kubectl_rtt(a):
    ms, failures, first = [], 0, ""
    argv = kubectl_base(a) + ["true"]
    start = time.monotonic()
    capped = False
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(a.count):
        if a.max_seconds and time.monotonic() - start >= a.max_seconds:
            capped = True  # stopped by the time cap: "count" says how many ran
            break
        t0 = time.perf_counter()
        p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ms.append((time.perf_counter() - t0) * 1000.0)
        if p.returncode != 0:
            failures += 1
            first = first or p.stderr.decode(errors="replace")[:300]
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    emit({"client": "kubectl", "count": len(ms), "asked": a.count, "capped": capped,
          "cpuSeconds": cpu,
          "maxSeconds": a.max_seconds, "failures": failures, "firstError": first, "ms": ms}, a.out)


def hash_stream(argv):
    """Run argv, hash its stdout as it arrives; (bytes, sha256, seconds, rc, stderr,
    CPU seconds of the process)."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    h = hashlib.sha256()
    n = 0
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    err = []
    t = threading.Thread(target=lambda: err.append(p.stderr.read()))
    t.start()
    while True:
        b = p.stdout.read(1 << 20)
        if not b:
            break
        n += len(b)
        h.update(b)
    rc = p.wait()
    secs = time.perf_counter() - t0
    t.join()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return n, h.hexdigest(), secs, rc, (err[0] if err else b""), cpu


def cmd_kubectl_tput(a):
    n, sha, secs, rc, err, cpu = hash_stream(kubectl_base(a) + a.cmd)
    emit({"client": "kubectl", "bytes": n, "sha256": sha, "seconds": secs, "cpuSeconds": cpu,
          "status": "Success" if rc == 0 else "exit %d: %s" % (rc, err.decode(errors="replace")[:300])},
         a.out)


def cmd_local_tput(a):
    # A ceiling is the best the machine can do: the fastest of --repeat runs
    # (on a shared machine one run may be slowed by others' work).
    best = None
    times = []
    for _ in range(max(1, a.repeat)):
        n, sha, secs, rc, err, cpu = hash_stream(a.cmd)
        times.append(secs)
        if rc != 0:
            best = (n, sha, secs, rc, cpu)
            break
        if best is None or secs < best[2]:
            best = (n, sha, secs, rc, cpu)
    n, sha, secs, rc, cpu = best
    emit({"client": "local", "bytes": n, "sha256": sha, "seconds": secs, "cpuSeconds": cpu,
          "runsSeconds": times, "status": "Success" if rc == 0 else "exit %d" % rc}, a.out)


# ---- runs through ci-fixer serve --------------------------------------------

def cmd_submit(a):
    url = urllib.parse.urlsplit(a.server)
    with open(a.body_file) as f:
        body = f.read()
    token = open(a.token_file).read().strip() if a.token_file else ""
    lock = threading.Lock()
    state = {"next": 0, "ms": [], "phases": {}, "errors": [], "retries429": 0, "failures": 0}

    def one():
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        deadline = time.monotonic() + a.timeout
        while True:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=a.timeout)
            try:
                conn.request("POST", "/v1/runs?wait=true", body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                if r.status == 429 and time.monotonic() < deadline:
                    with lock:
                        state["retries429"] += 1
                    time.sleep(float(r.getheader("Retry-After") or "1"))
                    continue
                if r.status // 100 != 2:
                    return None, "HTTP %d: %s" % (r.status, data[:300].decode(errors="replace"))
                doc = json.loads(data)
                return doc, ""
            finally:
                conn.close()

    def worker():
        while True:
            with lock:
                i = state["next"]
                if i >= a.runs:
                    return
                state["next"] += 1
            t0 = time.perf_counter()
            try:
                doc, err = one()
            except Exception as e:  # a transport error is a failed run
                doc, err = None, "%s: %s" % (type(e).__name__, e)
            ms = (time.perf_counter() - t0) * 1000.0
            with lock:
                phase = doc.get("phase", "?") if doc else "HTTPError"
                state["phases"][phase] = state["phases"].get(phase, 0) + 1
                if phase == "Succeeded":
                    state["ms"].append(ms)
                else:
                    state["failures"] += 1
                    if len(state["errors"]) < 10:
                        state["errors"].append(err or "%s %s: %s" % (
                            doc.get("id"), doc.get("reason"), doc.get("message")))

    threading.stack_size(512 * 1024)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(min(a.concurrency, a.runs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emit({"runner": "ci-fixer", "runs": a.runs, "concurrency": a.concurrency,
          "failures": state["failures"], "wallSeconds": time.perf_counter() - t0,
          "runMs": state["ms"], "phases": state["phases"], "retries429": state["retries429"],
          "errors": state["errors"]}, a.out)


# ---- /proc sampling ---------------------------------------------------------

def proc_sample(pid):
    st = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            st[k] = v.strip()
    try:
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        fds = 0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tck = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / tck  # utime, stime
    rss = int(st.get("VmRSS", "0 kB").split()[0])
    hwm = int(st.get("VmHWM", "0 kB").split()[0])
    return rss, hwm, int(st.get("Threads", "0")), fds, cpu


def cmd_sample(a):
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    peak = {"rssKB": 0, "hwmKB": 0, "threads": 0, "fds": 0}
    cpu0 = None
    cpu = 0.0
    n = 0
    while not stop.is_set():
        try:
            rss, hwm, thr, fds, cpu = proc_sample(a.pid)
        except (OSError, ValueError, IndexError):
            break
        if cpu0 is None:
            cpu0 = cpu
        n += 1
        peak["rssKB"] = max(peak["rssKB"], rss)
        peak["hwmKB"] = max(peak["hwmKB"], hwm)
        peak["threads"] = max(peak["threads"], thr)
        peak["fds"] = max(peak["fds"], fds)
        stop.wait(a.interval)
    emit({"pid": a.pid, "samples": n, "peakRssKB": max(peak["rssKB"], peak["hwmKB"]),
          "peakThreads": peak["threads"], "peakFds": peak["fds"],
          "cpuSeconds": cpu - (cpu0 or 0.0)}, a.out)


# ---- kubesim request counters -----------------------------------------------

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+([0-9.eE+-]+)')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def cmd_metrics(a):
    ctx = ssl.create_default_context(cafile=a.cacert)
    u = urllib.parse.urlsplit(a.server)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30)
    conn.request("GET", a.path, headers={"Authorization": "Bearer " + a.token})
    r = conn.getresponse()
    text = r.read().decode(errors="replace")
    if r.status != 200:
        sys.exit("metrics: HTTP %d from %s%s: %s" % (r.status, a.server, a.path, text[:200]))
    samples = []
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = LINE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(3) or ""))
        samples.append({"name": m.group(1), "labels": labels, "value": float(m.group(4))})
    emit({"samples": samples}, a.out)


def request_counts(doc, metric):
    """{(verb, resource): count} from the request counter samples."""
    out = {}
    for s in doc["samples"]:
        if s["name"] != metric:
            continue
        lab = s["labels"]
        verb = lab.get("verb", "?")
        res = lab.get("resource", "")
        sub = lab.get("subresource", "")
        if sub:
            res = res + "/" + sub
        key = (verb, res)
        out[key] = out.get(key, 0) + s["value"]
    return out


def cmd_metrics_diff(a):
    before = json.load(open(a.before))
    after = json.load(open(a.after))
    b = request_counts(before, a.metric)
    c = request_counts(after, a.metric)
    rows = []
    for key in sorted(set(b) | set(c)):
        d = c.get(key, 0) - b.get(key, 0)
        if d > 0 and not (key[1] == "" and key[0] in ("get", "GET") and a.ignore_nonresource):
            rows.append({"verb": key[0], "resource": key[1], "count": d})
    emit({"metric": a.metric, "requests": rows}, a.out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def exec_args(q):
        q.add_argument("--kubectl", default="kubectl")
        q.add_argument("--kubeconfig", required=True)
        q.add_argument("--namespace", required=True)
        q.add_argument("--pod", required=True)
        q.add_argument("--container", required=True)
        q.add_argument("--out")

    q = sub.add_parser("kubectl-rtt")
    exec_args(q)
    q.add_argument("--count", type=int, default=200)
    q.add_argument("--max-seconds", type=float, default=0,
                   help="stop starting execs after this long (0: no cap)")
    q.set_defaults(fn=cmd_kubectl_rtt)

    q = sub.add_parser("kubectl-tput")
    exec_args(q)
    q.add_argument("cmd", nargs="+")
    q.set_defaults(fn=cmd_kubectl_tput)

    q = sub.add_parser("local-tput")
    q.add_argument("--out")
    q.add_argument("--repeat", type=int, default=3)
    q.add_argument("cmd", nargs="+")
    q.set_defaults(fn=cmd_local_tput)

    q = sub.add_parser("submit")
    q.add_argument("--server", required=True)
    q.add_argument("--token-file")
    q.add_argument("--body-file", required=True)
    q.add_argument("--runs", type=int, required=True)
    q.add_argument("--concurrency", type=int, required=True)
    q.add_argument("--timeout", type=float, default=600)
    q.add_argument("--out")
    q.set_defaults(fn=cmd_submit)

    q = sub.add_parser("sample")
    q.add_argument("--pid", type=int, required=True)
    q.add_argument("--interval", type=float, default=0.2)
    q.add_argument("--out")
    q.set_defaults(fn=cmd_sample)

    q = sub.add_parser("metrics")
    q.add_argument("--server", required=True)
    q.add_argument("--cacert", required=True)
    q.add_argument("--token", required=True)
    q.add_argument("--path", default="/metrics")
    q.add_argument("--out")
    q.set_defaults(fn=cmd_metrics)

    q = sub.add_parser("metrics-diff")
    q.add_argument("--metric", required=True)
    q.add_argument("--ignore-nonresource", action="store_true")
    q.add_argument("--out")
    q.add_argument("before")
    q.add_argument("after")
    q.set_defaults(fn=cmd_metrics_diff)

    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
