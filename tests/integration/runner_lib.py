#!/usr/bin/env python3
"""Helpers for the runner's integration scripts: loops over the HTTP API
in one process (a shell loop of curl + python costs seconds per step on a
loaded machine). RN_URL and RN_TOKEN come from the environment
(runner_common.bash sets them).

  runner_lib.py post N JSON          POST N runs; print their ids (exit 1 unless all 201)
  runner_lib.py wait REGEX SECS ID.. until every run's phase matches REGEX;
                                     print "id phase reason" lines (exit 1 on timeout)
  runner_lib.py list                 print "id phase reason" of every run (GET /v1/runs, all pages)
  runner_lib.py runwait N JSON SECS  N runs one after the other, each POST ?wait=true given SECS
                                     to answer; print "id phase" lines (exit 1 on a timeout)
"""
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

URL = os.environ.get("RN_URL", "")
TOKEN = os.environ.get("RN_TOKEN", "")


def api(method, path, body=None, headers=None, timeout=60):
    """(status, headers, parsed JSON or None)."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw, code, hdrs = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, code, hdrs = e.read(), e.code, e.headers
    try:
        doc = json.loads(raw) if raw else None
    except ValueError:
        doc = None
    return code, hdrs, doc


def list_all():
    items, cont = [], None
    while True:
        code, _, d = api("GET", "/v1/runs?limit=500" + ("&continue=" + cont if cont else ""))
        if code != 200:
            raise SystemExit("GET /v1/runs: %d %r" % (code, d))
        items += d["items"]
        cont = d.get("continue")
        if not cont:
            return items


def wait(regex, secs, ids):
    pat = re.compile("^(%s)$" % regex)
    deadline = time.monotonic() + secs
    last = {}
    while True:
        pending = 0
        for i in ids:
            if i in last and pat.match(last[i].get("phase", "")):
                continue
            code, _, d = api("GET", "/v1/runs/" + i)
            last[i] = d if code == 200 and d else {"phase": "HTTP %d" % code}
            if not pat.match(last[i].get("phase", "")):
                pending += 1
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    for i in ids:
        print(i, last[i].get("phase"), last[i].get("reason") or "-")
    return 0 if not pending else 1


def main(argv):
    if argv[0] == "post":
        n, body = int(argv[1]), argv[2]
        ok = 0
        for _ in range(n):
            code, _, d = api("POST", "/v1/runs", body)
            if code == 201:
                ok += 1
                print(d["id"])
            else:
                print("POST: %d %r" % (code, d), file=sys.stderr)
        return 0 if ok == n else 1
    if argv[0] == "wait":
        return wait(argv[1], float(argv[2]), argv[3:])
    if argv[0] == "runwait":
        n, body, secs = int(argv[1]), argv[2], float(argv[3])
        for i in range(n):
            try:
                code, _, d = api("POST", "/v1/runs?wait=true", body, timeout=secs)
            except OSError as e:  # socket.timeout included
                print("run %d: no answer within %g s (%s)" % (i + 1, secs, e))
                return 1
            if d and d.get("phase"):
                print(d["id"], d["phase"], d.get("reason") or "-", d.get("message") or "")
            else:
                print(None, code, d)
            if code != 200:
                return 1
        return 0
    if argv[0] == "list":
        for r in list_all():
            print(r["id"], r["phase"], r.get("reason") or "-")
        return 0
    raise SystemExit("unknown command " + argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
