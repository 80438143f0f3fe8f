#!/usr/bin/env python3
"""soak.py: drive one `ci-fixer serve` with runs of known outcome and judge
every result against the truth.

It starts serve itself (the command after `--`, plus --listen), so that it
can sample serve's memory and, in crash mode, SIGKILL and restart it.

Each run is one of a few kinds whose true result is known in advance:
  ok        printf "ok TOKEN"                  Succeeded, exit 0, known stdout
  exit3     partial stdout, stderr, exit 3     Failed/CommandFailed, then a skipped command
  hash      seq 1 30000                        Succeeded, known byte count and SHA-256
  big       seq 1 250000 (1.6 MB, over the     Succeeded, truncated, full count and hash
            1 MiB output cap)
  multi     exit 3 (continueOnError), echo     Succeeded with exit codes 3 and 0
  patch     repository, append to a.txt        Succeeded, the patch adds the line
  slow      sleep 2, echo (crash mode)         Succeeded
  imagefail an image kubesim fails to pull     Error/ErrImagePull or ImagePullBackOff

A finished run is judged:
  correct        the terminal phase and every reported exit code, byte
                 count and hash are the true ones;
  infra          phase Error with a reason and a message (an infrastructure
                 failure was said plainly), and whatever it reports about
                 commands that did run is true;
  false_success  phase Succeeded where the truth is not success;
  wrong          anything else: a reported exit code, byte count, hash or
                 kept output that is not the true one, Failed where the
                 truth is not, an Error without a reason, Cancelled;
  not_terminal   no terminal phase within the run's timeout + 5 minutes;
  lost           an accepted run that GET /v1/runs/{id} no longer knows.

Checks after the load: no Job and no pod of this owner left (through the
reaper while serve runs, then after serve drains on SIGTERM). Crash mode
(--kills N): N times, SIGKILL serve under load, restart it on the same data
directory, and within --leak-window seconds no Job may remain whose run is
finished or unknown; every accepted run must still be listed and finish.

Exit status 0 only if every check held. Writes SUMMARY (text), runs.jsonl
and rss.csv into --out.
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

TERMINAL = ("Succeeded", "Failed", "Error", "Cancelled")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def seq_text(n):
    return "".join("%d\n" % i for i in range(1, n + 1)).encode()


SEQ_30K = seq_text(30000)
SEQ_250K = seq_text(250000)


def exited(code, out=b"", err=b""):
    return {"exit": code, "out": out, "err": err}


def make_run(kind, tok, repo, bad_image, timeout):
    """(request, truth). truth: phase, cmds (None = skipped), patch line."""
    req = {"commands": [], "timeoutSeconds": timeout, "collect": {"patch": False, "logTailLines": 20}}
    t = {"phase": "Succeeded", "reasons": ("",), "cmds": [], "patch": None}
    if kind == "ok":
        req["commands"] = [{"argv": ["sh", "-c", 'printf "ok %s\\n" "$1"', "sh", tok]}]
        t["cmds"] = [exited(0, ("ok %s\n" % tok).encode())]
    elif kind == "exit3":
        req["commands"] = [{"shell": "printf partial; echo to-stderr >&2; exit 3"}, {"argv": ["true"]}]
        t.update(phase="Failed", reasons=("CommandFailed",))
        t["cmds"] = [exited(3, b"partial", b"to-stderr\n"), None]
    elif kind == "hash":
        req["commands"] = [{"shell": "seq 1 30000"}]
        t["cmds"] = [exited(0, SEQ_30K)]
    elif kind == "big":
        req["commands"] = [{"argv": ["seq", "1", "250000"]}]
        t["cmds"] = [exited(0, SEQ_250K)]
    elif kind == "multi":
        req["commands"] = [{"shell": "exit 3", "continueOnError": True}, {"argv": ["echo", tok]}]
        t["cmds"] = [exited(3), exited(0, (tok + "\n").encode())]
    elif kind == "patch":
        req["repo"] = {"url": repo}
        req["collect"]["patch"] = True
        req["commands"] = [{"shell": "printf 'changed-%s\\n' \"$T\" >> a.txt; cat a.txt", "env": {"T": tok}}]
        t["cmds"] = [exited(0, ("hello\nchanged-%s\n" % tok).encode())]
        t["patch"] = "+changed-%s\n" % tok
    elif kind == "slow":
        req["commands"] = [{"shell": "sleep 2; echo slow-$T", "env": {"T": tok}}]
        t["cmds"] = [exited(0, ("slow-%s\n" % tok).encode())]
    elif kind == "imagefail":
        req["image"] = bad_image
        req["commands"] = [{"argv": ["echo", "never"]}]
        t.update(phase="Error", reasons=("ErrImagePull", "ImagePullBackOff"))
        t["cmds"] = [None]
    else:
        raise ValueError(kind)
    return req, t


def judge(doc, truth):
    """(category, detail) for one terminal run document."""
    phase = doc.get("phase")
    reason = doc.get("reason") or ""
    if phase not in TERMINAL:
        return "not_terminal", "phase %s" % phase
    cmds = doc.get("commands") or []
    bad = []
    # an Error run may list no command at all (a run interrupted by a
    # runner restart is recorded from its last stored document)
    if len(cmds) != len(truth["cmds"]) and not (phase == "Error" and not cmds):
        bad.append("%d commands reported, %d sent" % (len(cmds), len(truth["cmds"])))
    for i, (c, tc) in enumerate(zip(cmds, truth["cmds"])):
        if c.get("outcome") != "exited":
            continue
        if tc is None:
            bad.append("command %d reported exited but it cannot have run" % i)
            continue
        if c.get("exitCode") != tc["exit"]:
            bad.append("command %d exit %s, truly %d" % (i, c.get("exitCode"), tc["exit"]))
        for s, data in (("stdout", tc["out"]), ("stderr", tc["err"])):
            n, h = c.get(s + "Bytes"), c.get(s + "Sha256")
            if n != len(data) or (h and h != sha(data)):
                bad.append("command %d %s %s bytes sha %s, truly %d bytes sha %s" %
                           (i, s, n, (h or "")[:12], len(data), sha(data)[:12]))
            kept = c.get(s)
            if kept is not None and not c.get("truncated") and kept.encode() != data:
                bad.append("command %d kept %s differs from the true output" % (i, s))
            if kept is not None and c.get("truncated") and not data.startswith(kept.encode()[:4096]):
                bad.append("command %d kept %s head differs from the true output" % (i, s))
    if phase == "Succeeded" and truth["phase"] != "Succeeded":
        return "false_success", "Succeeded, truly %s; %s" % (truth["phase"], "; ".join(bad))
    if bad:
        return "wrong", "; ".join(bad)
    if phase == "Succeeded":
        for i, (c, tc) in enumerate(zip(cmds, truth["cmds"])):
            if tc is not None and c.get("outcome") != "exited":
                return "wrong", "Succeeded but command %d is %s" % (i, c.get("outcome"))
        if truth["patch"] and truth["patch"] not in (doc.get("patch") or ""):
            return "wrong", "Succeeded but the patch lacks %r" % truth["patch"]
        return "correct", ""
    if phase == "Failed":
        if truth["phase"] != "Failed" or reason not in truth["reasons"]:
            return "wrong", "Failed/%s, truly %s: %s" % (reason, truth["phase"], doc.get("message"))
        return "correct", ""
    if phase == "Error":
        if not reason or not doc.get("message"):
            return "wrong", "Error without a reason or message"
        if truth["phase"] == "Error" and reason in truth["reasons"]:
            return "correct", ""
        return "infra", reason
    return "wrong", "Cancelled/%s: %s" % (reason, doc.get("message"))


class Api:
    """The ci-fixer HTTP API: one connection per request (serve may die)."""

    def __init__(self, port, token):
        self.port, self.token = port, token

    def call(self, method, path, body=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = {"Authorization": "Bearer " + self.token}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                h["Content-Type"] = "application/json"
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            raw = r.read()
            try:
                doc = json.loads(raw) if raw else None
            except ValueError:
                doc = None
            return r.status, r.getheader("Retry-After"), doc
        finally:
            c.close()


class Serve:
    def __init__(self, argv, log_path):
        self.argv, self.log_path = argv, log_path
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.proc = None
        self.restarts = 0

    def start(self):
        """Start serve; return once it answers /healthz (it recovers the
        last process's runs before it listens)."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv + ["--listen", "127.0.0.1:%d" % self.port],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.wait_for("/healthz", 60)

    def wait_for(self, path, limit):
        deadline = time.time() + limit
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited with %s; see %s" % (self.proc.returncode, self.log_path))
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", path)
                st = c.getresponse().status
                c.close()
                if st == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise RuntimeError("serve: no 200 from %s within %d s; see %s" % (path, limit, self.log_path))

    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def term(self, timeout=120):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            return None


def proc_sample(pid):
    """(rss kB, threads, open fds) of a process, or None."""
    try:
        st = open("/proc/%d/status" % pid).read()
        rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
        thr = int(re.search(r"Threads:\s+(\d+)", st).group(1))
        fds = len(os.listdir("/proc/%d/fd" % pid))
        return rss, thr, fds
    except (OSError, AttributeError):
        return None


TCP_STATES = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "07": "CLOSE", "09": "LAST_ACK", "02": "SYN_SENT"}


def fd_kinds(pid, ports):
    """serve's open file descriptors by kind: TCP sockets by state and
    peer ("kubesim" / "client" / "listen"), pipes, files. ports: {port:
    name} of known peers."""
    socks = {}
    for f in ("tcp", "tcp6"):
        try:
            lines = open("/proc/%d/net/%s" % (pid, f)).read().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            x = ln.split()
            lport, rport = int(x[1].rsplit(":", 1)[1], 16), int(x[2].rsplit(":", 1)[1], 16)
            st = TCP_STATES.get(x[3], x[3])
            peer = "listen" if st == "LISTEN" else ports.get(rport) or ports.get(lport) or "other"
            if ports.get(lport) == "serve" and st != "LISTEN":
                peer = "client"
            socks[x[9]] = "tcp %s %s" % (peer, st)
    out = {}
    try:
        names = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return out
    for n in names:
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, n))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", t)
        if m:
            k = socks.get(m.group(1), "socket (not tcp)")
        elif t.startswith(("pipe:", "anon_inode:")):
            k = t.split(":")[0] + ":" + t.split(":")[1].strip("[]") if t.startswith("anon") else "pipe"
        else:
            k = "file " + re.sub(r"/tmp/reliability\.[^/]+", "DIR", t)
            k = re.sub(r"[0-9a-f]{16,}", "*", k)
        out[k] = out.get(k, 0) + 1
    return out


def admin_list(path, selector):
    """A cluster-wide List as kubesim's admin (KS_URL, KS_CA, KS_TOKEN from
    tests/lib/kubesim.sh), the request `kubectl get -A -l SELECTOR` makes;
    cluster-wide paths are outside the soak's faults. Retried."""
    url = "%s%s?labelSelector=%s" % (os.environ["KS_URL"], path, urllib.parse.quote(selector))
    ctx = ssl.create_default_context(cafile=os.environ["KS_CA"])
    last = None
    for _ in range(5):
        try:
            r = urllib.request.Request(url, headers={"Authorization": "Bearer " + os.environ["KS_TOKEN"]})
            return json.loads(urllib.request.urlopen(r, context=ctx, timeout=30).read())
        except (OSError, ValueError) as e:
            last = e
            time.sleep(1)
    raise RuntimeError("GET %s: %s" % (url, last))


class Soak:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.lock = threading.Lock()
        self.next = 0
        self.stop_submit = threading.Event()
        self.kills_done = threading.Event()
        self.stop_all = threading.Event()
        self.records = []
        self.accepted = {}     # idempotency key -> run id
        self.post_retries = 0
        self.rejected = []
        self.samples = []
        self.kills = []
        self.t0 = time.time()
        self.serve = Serve(a.serve, os.path.join(a.out, "serve.log"))
        self.api = None
        weights = dict(w.split("=") for w in a.mix.split(","))
        self.kinds = [(k, float(v)) for k, v in weights.items()]
        self.owner = a.owner

    def pick_kind(self, rng):
        x = rng.random() * sum(w for _, w in self.kinds)
        for k, w in self.kinds:
            x -= w
            if x < 0:
                return k
        return self.kinds[-1][0]

    # ---- one client ----
    def client(self, cid):
        rng = random.Random(self.a.seed * 1000 + cid)
        while not self.stop_submit.is_set():
            with self.lock:
                i = self.next
                # --runs is a minimum when there are kill cycles: the load
                # goes on until the last cycle is done
                if i >= self.a.runs and (not self.a.kills or self.kills_done.is_set()):
                    return
                self.next += 1
            kind = self.pick_kind(rng)
            tok = "t%d-%d" % (self.a.seed, i)
            req, truth = make_run(kind, tok, self.a.repo, self.a.bad_image, self.a.run_timeout)
            req["idempotencyKey"] = "soak-%d-%d" % (self.a.seed, i)
            rec = {"n": i, "kind": kind, "id": None, "start": time.time()}
            run_id = self.submit(req, rec)
            if not run_id:
                continue
            rec["id"] = run_id
            doc = self.follow(run_id, self.a.run_timeout + 300)
            self.finish(rec, doc, truth)

    def submit(self, req, rec):
        """POST until accepted; the idempotency key makes retries safe
        across lost answers and restarts. The run id, or None if refused."""
        deadline = time.time() + 600
        while time.time() < deadline and not self.stop_all.is_set():
            try:
                code, ra, doc = self.api.call("POST", "/v1/runs", req)
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.post_retries += 1
                time.sleep(0.5)
                continue
            if code in (200, 201) and doc and doc.get("id"):
                with self.lock:
                    self.accepted[req["idempotencyKey"]] = doc["id"]
                return doc["id"]
            if code in (429, 503):
                with self.lock:
                    self.post_retries += 1
                time.sleep(min(float(ra or 1), 2))
                continue
            with self.lock:
                self.rejected.append((rec["kind"], code, doc))
            return None
        with self.lock:
            self.rejected.append((rec["kind"], "no answer", None))
        return None

    def follow(self, run_id, limit):
        """The run's document once terminal; {"phase": "(lost)"} on 404;
        the last document seen if the limit passes."""
        deadline = time.time() + limit
        last = {}
        while time.time() < deadline:
            try:
                code, _, doc = self.api.call("GET", "/v1/runs/" + run_id)
            except (OSError, http.client.HTTPException):
                time.sleep(0.5)
                continue
            if code == 404:
                return {"phase": "(lost)"}
            if code == 200 and doc:
                last = doc
                if doc.get("phase") in TERMINAL:
                    return doc
            time.sleep(self.a.poll)
        return last

    def finish(self, rec, doc, truth):
        if doc.get("phase") == "(lost)":
            cat, detail = "lost", "GET /v1/runs/%s answered 404" % rec["id"]
        else:
            cat, detail = judge(doc, truth)
        rec.update(end=time.time(), phase=doc.get("phase"), reason=doc.get("reason") or "", category=cat,
                   detail=detail, message=(doc.get("message") or "")[:300])
        with self.lock:
            self.records.append(rec)
        if cat not in ("correct", "infra"):
            print("BAD run %s (%s): %s: %s" % (rec["id"], rec["kind"], cat, detail), file=sys.stderr, flush=True)

    # ---- memory ----
    def sampler(self):
        while not self.stop_all.is_set():
            pid = self.serve.pid()
            s = proc_sample(pid) if pid else None
            if s:
                with self.lock:
                    done = len(self.records)
                self.samples.append((round(time.time() - self.t0, 1), done, s[0], s[1], s[2], pid))
            self.stop_all.wait(self.a.rss_every)

    # ---- Jobs and pods ----
    def jobs(self):
        d = admin_list("/apis/batch/v1/jobs", "ci-fixer.io/owner=" + self.owner)
        return [(j["metadata"]["name"], j["metadata"].get("labels", {}).get("ci-fixer.io/run-id", ""),
                 bool(j["metadata"].get("deletionTimestamp"))) for j in d["items"]]

    def pods(self):
        d = admin_list("/api/v1/pods", "ci-fixer.io/owner=" + self.owner)
        return [p["metadata"]["name"] for p in d["items"]]

    def leaked(self):
        """Jobs not being deleted whose run is finished or unknown to serve,
        still there 2 s after the run was seen finished: [(job, why)]."""
        cand = []
        for name, rid, deleting in self.jobs():
            if deleting:
                continue
            try:
                code, _, doc = self.api.call("GET", "/v1/runs/" + rid)
            except (OSError, http.client.HTTPException) as e:
                cand.append((name, "GET /v1/runs/%s: %s" % (rid, e)))
                continue
            if code == 404:
                cand.append((name, "run unknown to serve"))
            elif code == 200 and doc and doc.get("phase") in TERMINAL:
                cand.append((name, "run %s/%s" % (doc.get("phase"), doc.get("reason"))))
            elif code != 200:
                cand.append((name, "GET /v1/runs/%s: %d" % (rid, code)))
        if not cand:
            return []
        time.sleep(2)
        now = {n for n, _, d in self.jobs() if not d}
        return [c for c in cand if c[0] in now]

    # ---- crash cycles ----
    def killer(self):
        rng = random.Random(self.a.seed + 7)
        for k in range(self.a.kills):
            if self.stop_all.wait(rng.uniform(self.a.kill_min, self.a.kill_max)):
                return
            with self.lock:
                inflight = self.next - len(self.records)
            # kill while at least one run has its Job (up to 30 s more)
            until = time.time() + 30
            jobs_before = len(self.jobs())
            while not jobs_before and time.time() < until and not self.stop_all.is_set():
                time.sleep(0.2)
                jobs_before = len(self.jobs())
            self.serve.kill()
            t_kill = time.time()
            self.serve.start()
            t_up = time.time()
            clean_after, leaks = None, None
            while time.time() - t_kill <= self.a.leak_window:
                leaks = self.leaked()
                if leaks == []:
                    clean_after = time.time() - t_kill
                    break
                print("  %.1f s after kill %d, Jobs of finished or unknown runs: %s" %
                      (time.time() - t_kill, k + 1, leaks), file=sys.stderr, flush=True)
                time.sleep(1)
            if clean_after is not None and clean_after > self.a.leak_window:
                clean_after = None  # the last check itself ended past the window
            rec = {"cycle": k + 1, "inflight": inflight, "jobs_at_kill": jobs_before,
                   "listening_s": round(t_up - t_kill, 2), "ready_s": None,
                   "clean_after_s": None if clean_after is None else round(clean_after, 2),
                   "leaked": leaks or []}
            # the next interval starts once serve takes runs again, so each
            # kill finds runs queued, starting and running
            self.ready_time(rec, t_kill, self.serve.proc)
            self.kills.append(rec)
            print("kill %d: %d runs in flight, %d Jobs at the kill; serve listening after %.1f s; %s" %
                  (k + 1, inflight, jobs_before, t_up - t_kill,
                   "no leaked Job %.1f s after the kill" % clean_after if clean_after is not None
                   else "LEAKED %d s after the kill: %s" % (self.a.leak_window, leaks)), flush=True)
        self.kills_done.set()

    def ready_time(self, rec, t_kill, proc):
        """Seconds from the kill until the new process's /readyz is 200."""
        deadline = time.time() + 120
        while proc.poll() is None and not self.stop_all.is_set() and time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.serve.port, timeout=5)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    rec["ready_s"] = round(time.time() - t_kill, 2)
                    return
                c.close()
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.2)

    def lost_check(self):
        """Every accepted run is still listed by GET /v1/runs (paged).
        Returns (accepted runs missing, runs listed)."""
        listed, cont = set(), None
        while True:
            path = "/v1/runs?limit=500" + ("&continue=" + cont if cont else "")
            code, _, doc = self.api.call("GET", path)
            if code != 200:
                raise RuntimeError("GET %s: %s" % (path, code))
            listed |= {d["id"] for d in doc["items"] if d}
            cont = doc.get("continue")
            if not cont:
                break
        return sorted(set(self.accepted.values()) - listed), len(listed)

    def run(self):
        a = self.a
        self.serve.start()
        self.serve.wait_for("/readyz", 120)
        self.api = Api(self.serve.port, a.token)
        print("serve pid %d on port %d; %s runs, %d clients, %d kill cycles" %
              (self.serve.pid(), self.serve.port, a.runs or "open-ended", a.clients, a.kills), flush=True)
        ths = [threading.Thread(target=self.client, args=(c,), daemon=True) for c in range(a.clients)]
        smp = threading.Thread(target=self.sampler, daemon=True)
        smp.start()
        for t in ths:
            t.start()
        kt = None
        if a.kills:
            kt = threading.Thread(target=self.killer, daemon=True)
            kt.start()
        last = 0
        while any(t.is_alive() for t in ths):
            time.sleep(1)
            with self.lock:
                n = len(self.records)
            if n - last >= max(10, min(50, (a.runs or 0) // 10)):
                print("%6.0f s: %d runs finished" % (time.time() - self.t0, n), flush=True)
                last = n
        if kt:
            kt.join()
        with open(os.path.join(a.out, "kills.jsonl"), "w") as f:
            for k in self.kills:
                f.write(json.dumps(k) + "\n")
        t_load = time.time()
        res = {"load_seconds": round(t_load - self.t0, 1)}
        res["lost_from_list"], res["listed"] = self.lost_check()
        # leaks while serve runs: right away, then the reaper's chance
        res["jobs_after_load"] = len(self.jobs())
        res["pods_after_load"] = len(self.pods())
        deadline = time.time() + a.settle
        while time.time() < deadline and (self.jobs() or self.pods()):
            time.sleep(2)
        res["jobs_after_settle"] = len(self.jobs())
        res["pods_after_settle"] = len(self.pods())
        res["settle_seconds"] = round(time.time() - t_load, 1)
        res["metrics"] = self.serve_metrics()
        ports = {self.serve.port: "serve"}
        if os.environ.get("KS_URL"):
            ports[int(os.environ["KS_URL"].rsplit(":", 1)[1].split("/")[0])] = "kubesim"
        res["fds"] = fd_kinds(self.serve.pid(), ports) if self.serve.pid() else {}
        self.stop_all.set()
        smp.join()
        res["serve_exit"] = self.serve.term()
        deadline = time.time() + 60
        while time.time() < deadline and (self.jobs() or self.pods()):
            time.sleep(2)
        res["jobs_end"] = len(self.jobs())
        res["pods_end"] = len(self.pods())
        return res

    def serve_metrics(self):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.serve.port, timeout=10)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            if line.startswith(("cifixer_jobs_reaped_total", "cifixer_runs_total")):
                k, _, v = line.rpartition(" ")
                out[k] = v
        return out


def kubesim_requests():
    """Requests serve made in the sandbox namespace, from kubesim's
    apiserver_request_total: {(verb, code): n}."""
    url, ca, tok = os.environ.get("KS_URL"), os.environ.get("KS_CA"), os.environ.get("KS_TOKEN")
    if not (url and ca and tok):
        return {}
    ctx = ssl.create_default_context(cafile=ca)
    r = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer " + tok})
    text = urllib.request.urlopen(r, context=ctx, timeout=30).read().decode()
    out = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{") or 'scope="namespace"' not in line:
            continue
        lab = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if lab.get("resource") not in ("pods", "jobs", "events"):
            continue
        verb = lab["verb"] + ("/" + lab["subresource"] if lab.get("subresource") else "")
        key = (verb, lab["code"])
        out[key] = out.get(key, 0) + int(float(line.rsplit(" ", 1)[1]))
    return out


def fault_p(spec):
    """Per Kubernetes verb, the summed fault probability of the spec."""
    p = {}
    for rule in filter(None, spec.split(";")):
        m = re.match(r"\s*(\S+) .*@p=([0-9.]+)$", rule)
        if m:
            p[m.group(1)] = p.get(m.group(1), 0) + float(m.group(2))
    return p


METRIC_VERB = {"GET": "get", "LIST": "list", "WATCH": "watch", "POST": "create", "DELETE": "delete",
               "PATCH": "patch", "PUT": "update", "CONNECT/exec": "exec", "GET/log": "log"}


def report(s, res, a):
    recs = s.records
    L = []
    cat = {}
    for r in recs:
        cat[r["category"]] = cat.get(r["category"], 0) + 1
    kinds = {}
    for r in recs:
        k = kinds.setdefault(r["kind"], {})
        key = r["phase"] + ("/" + r["reason"] if r["reason"] else "")
        k[key] = k.get(key, 0) + 1
    reasons = {}
    for r in recs:
        if r["category"] == "infra":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    L.append("== reliability %s: %d runs finished of %d accepted (seed %d, %d clients) in %.0f s ==" %
             ("crash" if a.kills else "soak", len(recs), len(s.accepted), a.seed, a.clients, res["load_seconds"]))
    L.append("mix: %s" % a.mix)
    L.append("outcomes by kind (phase/reason: runs):")
    for k in sorted(kinds):
        L.append("  %-9s %s" % (k, ", ".join("%s: %d" % kv for kv in sorted(kinds[k].items()))))
    L.append("judged: correct %d, infrastructure error with a reason %d, false successes %d, wrong results %d, "
             "not terminal %d, lost %d" % (cat.get("correct", 0), cat.get("infra", 0), cat.get("false_success", 0),
                                           cat.get("wrong", 0), cat.get("not_terminal", 0), cat.get("lost", 0)))
    if reasons:
        L.append("infrastructure reasons: " + ", ".join("%s %d" % kv for kv in sorted(reasons.items())))
    L.append("POST retries (429/503/connection): %d; refused requests: %d" % (s.post_retries, len(s.rejected)))
    L.append("GET /v1/runs lists %d runs for %d accepted (one per idempotency key); accepted runs missing: %d" %
             (res["listed"], len(s.accepted), len(res["lost_from_list"])))
    reqs = kubesim_requests()
    if reqs:
        p = fault_p(a.fault_spec or "")
        by_verb = {}
        for (v, code), n in reqs.items():
            by_verb.setdefault(v, {})[code] = by_verb.setdefault(v, {}).get(code, 0) + n
        tot = sum(reqs.values())
        errs = sum(n for (v, c), n in reqs.items() if c in ("500", "503", "429"))
        exp = sum(sum(c.values()) * p.get(METRIC_VERB.get(v, ""), 0) for v, c in by_verb.items())
        L.append("kubesim: %d requests in the sandbox namespace; injected faults expected ~%.0f (%.1f%%); "
                 "500/503/429 answers counted: %d" % (tot, exp, 100.0 * exp / tot if tot else 0, errs))
        for v in sorted(by_verb):
            L.append("  %-13s %s" % (v, ", ".join("%s: %d" % kv for kv in sorted(by_verb[v].items()))))
    L.append("Jobs/pods left: right after the load %d/%d; after %.0f s (reaper every 10 s) %d/%d; "
             "after serve drained (exit %s) %d/%d" %
             (res["jobs_after_load"], res["pods_after_load"], res["settle_seconds"], res["jobs_after_settle"],
              res["pods_after_settle"], res["serve_exit"], res["jobs_end"], res["pods_end"]))
    if res.get("fds"):
        L.append("serve's open file descriptors after the load (idle): %d: %s" %
                 (sum(res["fds"].values()), ", ".join("%s %d" % kv for kv in
                                                        sorted(res["fds"].items(), key=lambda kv: -kv[1]))))
    if res.get("metrics"):
        L.append("serve metrics: " + ", ".join("%s %s" % kv for kv in sorted(res["metrics"].items())))
    if s.kills:
        lk = sum(len(k["leaked"]) for k in s.kills)
        worst = max((k["clean_after_s"] or 0) for k in s.kills)
        L.append("crash: %d SIGKILL cycles; runs in flight at the kills: %s; Jobs present at the kills: %d; "
                 "Jobs leaked %d s after a kill: %d; slowest clean-up %.1f s after a kill; serve listening "
                 "again after %.1f-%.1f s, ready (RBAC self-check) after %.1f-%.1f s" %
                 (len(s.kills), "/".join(str(k["inflight"]) for k in s.kills),
                  sum(k["jobs_at_kill"] for k in s.kills), a.leak_window, lk, worst,
                  min(k["listening_s"] for k in s.kills), max(k["listening_s"] for k in s.kills),
                  min(k["ready_s"] or 0 for k in s.kills), max(k["ready_s"] or 0 for k in s.kills)))
    if s.samples and not s.kills:
        L.append("serve memory over time (t s, runs finished, RSS kB, threads, fds; full curve in rss.csv):")
        step = max(1, len(s.samples) // 12)
        pick = s.samples[::step]
        if pick[-1] is not s.samples[-1]:
            pick.append(s.samples[-1])
        for smp in pick:
            L.append("  %8.1f %6d %8d %4d %5d" % smp[:5])
        rss = [x[2] for x in s.samples]
        n = len(rss)
        if n >= 4:
            q = n // 4
            L.append("RSS: min %d kB, max %d kB; mean of the first quarter %d kB, of the last quarter %d kB" %
                     (min(rss), max(rss), sum(rss[:q]) / q, sum(rss[-q:]) / q))
    ok = (cat.get("false_success", 0) == 0 and cat.get("wrong", 0) == 0 and cat.get("not_terminal", 0) == 0 and
          cat.get("lost", 0) == 0 and not res["lost_from_list"] and res["listed"] == len(s.accepted) and not s.rejected and res["jobs_end"] == 0 and
          res["pods_end"] == 0 and res["jobs_after_settle"] == 0 and len(recs) == len(s.accepted) and
          all(not k["leaked"] and k["clean_after_s"] is not None for k in s.kills) and
          len(s.kills) == a.kills and len(recs) >= a.runs)
    L.append("RESULT: %s" % ("PASS" if ok else "FAIL"))
    return ok, "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=100, help="runs to submit (0: until the kill cycles are done)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--token", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--bad-image", required=True)
    ap.add_argument("--owner", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--fault-spec", default="", help="kubesim's spec, for the expected fault count")
    ap.add_argument("--mix", default="ok=25,exit3=20,hash=20,big=5,multi=10,patch=15,imagefail=5")
    ap.add_argument("--run-timeout", type=int, default=300)
    ap.add_argument("--poll", type=float, default=0.5)
    ap.add_argument("--rss-every", type=float, default=5)
    ap.add_argument("--settle", type=float, default=45, help="seconds for the reaper to clear Jobs after the load")
    ap.add_argument("--kills", type=int, default=0)
    ap.add_argument("--kill-min", type=float, default=2)
    ap.add_argument("--kill-max", type=float, default=6)
    ap.add_argument("--leak-window", type=float, default=30)
    ap.add_argument("serve", nargs="+", help="-- serve command")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    s = Soak(a)

    def on_term(sig, frame):
        raise KeyboardInterrupt("signal %d" % sig)
    signal.signal(signal.SIGTERM, on_term)
    try:
        res = s.run()
    except BaseException:
        s.stop_submit.set()
        s.stop_all.set()
        if s.serve.pid():
            s.serve.kill()
        raise
    ok, text = report(s, res, a)
    with open(os.path.join(a.out, "runs.jsonl"), "w") as f:
        for r in sorted(s.records, key=lambda r: r["n"]):
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(a.out, "rss.csv"), "w") as f:
        f.write("t_s,runs_finished,rss_kb,threads,fds,pid\n")
        for smp in s.samples:
            f.write(",".join(str(x) for x in smp) + "\n")
    with open(os.path.join(a.out, "kills.jsonl"), "w") as f:
        for k in s.kills:
            f.write(json.dumps(k) + "\n")
    with open(os.path.join(a.out, "SUMMARY"), "w") as f:
        f.write(text)
    for r in s.rejected[:10]:
        print("refused: %s" % (r,), file=sys.stderr)
    print(text, end="")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
