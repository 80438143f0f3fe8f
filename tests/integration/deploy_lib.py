#!/usr/bin/env python3
"""Checks used by tests/integration/deploy_*.sh on rendered manifests.

Each subcommand prints what it found (problems one per line) and exits 0 when
the check holds, 1 when it does not, 2 on bad input:

  objects FILE...                 list "Kind namespace/name" of every document
  role-rules FILE NAME            the rules of Role NAME, normalised, as JSON
  expected-rules MARKDOWN         the rules in the first ```yaml block with rules:
  pss FILE...                     every workload meets Pod Security "restricted",
                                  and has requests, limits and probes
  config FILE [KEY]               a ConfigMap document (config.json), as JSON
  sandbox-config FILE FLAGS       config.json's keys are serve flags (FLAGS: a,b,c);
                                  sandbox-job.json is complete and restricted-compatible
  builtin FILE MODEL_C            sandbox-job.json equals sandbox_config_init's values
  documented VALUES               every leaf value has a "## @param <path>" line
  has-keys VALUES KEY...          every dotted KEY is set in VALUES
  dockerfile FILE                 hadolint's main rules, statically
  dockerfile-stages FILE          build and runtime stages, COPY --from, the
                                  ENTRYPOINT is the program the build produced
  get FILE KIND NAME PATH         print one field (dotted path) of one object as JSON
  applied FILE OUT                every document of FILE is named in OUT, the
                                  output of `kubectl apply -o name`
  pod-from FILE KIND NAME         a Pod (JSON) made of a workload's pod template,
                                  for Pod Security admission of the template
  pod-files DEPLOY ROOT OBJ...    lay out the Deployment's volumes (ConfigMap and
                                  Secret OBJs, emptyDirs) under ROOT; print its
                                  args, mount paths moved under ROOT
  job-settings WATCH CONFIGMAP    the first sandbox Job in WATCH (a watch stream or
                                  `kubectl get -o json` output) was built with the
                                  settings of CONFIGMAP's config.json and
                                  sandbox-job.json
"""
import json
import re
import sys

import yaml


def load_docs(paths):
    docs = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for d in yaml.safe_load_all(f):
                if isinstance(d, dict) and d:
                    if d.get("kind") == "List":
                        docs.extend(i for i in d.get("items", []) if isinstance(i, dict))
                    else:
                        docs.append(d)
    return docs


def find(docs, kind, name):
    for d in docs:
        if d.get("kind") == kind and d.get("metadata", {}).get("name") == name:
            return d
    return None


def norm_rules(rules):
    """Rules as a sorted list of sorted tuples: order-insensitive, exact."""
    out = []
    for r in rules or []:
        out.append({k: sorted(r.get(k) or []) for k in
                    ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs")})
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True))


# --- Pod Security Standards, "restricted" (which includes "baseline"):
# https://kubernetes.io/docs/concepts/security/pod-security-standards/ and its
# implementation, staging/src/k8s.io/pod-security-admission/policy/check_*.go.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"}
WORKLOADS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob",
             "PodTemplate"}


def pod_spec(d):
    k = d.get("kind")
    if k == "Pod":
        return d.get("spec") or {}
    if k == "CronJob":
        return (((d.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}).get(
            "template", {}).get("spec") or {}
    if k == "PodTemplate":
        return (d.get("template") or {}).get("spec") or {}
    return ((d.get("spec") or {}).get("template") or {}).get("spec") or {}


def check_pod(where, kind, spec, problems):
    psc = spec.get("securityContext") or {}
    for f in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(f):
            problems.append(f"{where}: {f} is true")
    for v in spec.get("volumes") or []:
        types = [k for k in v if k != "name"]
        for t in types:
            if t not in RESTRICTED_VOLUMES:
                problems.append(f"{where}: volume {v.get('name')} of type {t} is not allowed")
    for s in psc.get("sysctls") or []:
        if s.get("name") not in SAFE_SYSCTLS:
            problems.append(f"{where}: unsafe sysctl {s.get('name')}")
    pod_nonroot = psc.get("runAsNonRoot")
    pod_uid = psc.get("runAsUser")
    pod_seccomp = (psc.get("seccompProfile") or {}).get("type")
    if pod_uid == 0:
        problems.append(f"{where}: pod runAsUser is 0")
    if pod_seccomp not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"{where}: pod seccompProfile {pod_seccomp}")
    if (psc.get("seLinuxOptions") or {}).get("type") not in (None, "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"):
        problems.append(f"{where}: seLinuxOptions.type not allowed")
    if psc.get("appArmorProfile", {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
        problems.append(f"{where}: appArmorProfile not allowed")
    containers = [("container", c) for c in spec.get("containers") or []]
    containers += [("initContainer", c) for c in spec.get("initContainers") or []]
    containers += [("ephemeralContainer", c) for c in spec.get("ephemeralContainers") or []]
    if not spec.get("containers"):
        problems.append(f"{where}: no containers")
    for ctype, c in containers:
        cw = f"{where} {ctype} {c.get('name')}"
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{cw}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cw}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{cw}: capabilities.drop must contain ALL")
        for a in caps.get("add") or []:
            if a != "NET_BIND_SERVICE":
                problems.append(f"{cw}: adds capability {a}")
        nonroot = sc.get("runAsNonRoot", pod_nonroot)
        if nonroot is not True:
            problems.append(f"{cw}: runAsNonRoot must be true (pod or container)")
        if sc.get("runAsUser") == 0:
            problems.append(f"{cw}: runAsUser is 0")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{cw}: seccompProfile must be RuntimeDefault or Localhost (pod or container)")
        if sc.get("procMount") not in (None, "Default"):
            problems.append(f"{cw}: procMount {sc.get('procMount')}")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                problems.append(f"{cw}: hostPort {p.get('hostPort')}")
        # Beyond restricted: the habits of deploy-conventions.md.
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{cw}: readOnlyRootFilesystem must be true")
        uid = sc.get("runAsUser", pod_uid)
        if not isinstance(uid, int) or uid < 10000:
            problems.append(f"{cw}: runAsUser must be a numeric UID >= 10000 (got {uid})")
        res = c.get("resources") or {}
        for kind_ in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if not (res.get(kind_) or {}).get(r):
                    problems.append(f"{cw}: resources.{kind_}.{r} missing")
        if ctype == "container" and kind in LONG_RUNNING:
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if not c.get(probe):
                    problems.append(f"{cw}: {probe} missing")
        img = c.get("image") or ""
        if not img or img.endswith(":latest") or ("@" not in img and ":" not in img.rsplit("/", 1)[-1]):
            problems.append(f"{cw}: image {img!r} is not pinned (tag or digest, not latest)")


def cmd_pss(paths):
    docs = load_docs(paths)
    problems, n = [], 0
    for d in docs:
        if d.get("kind") not in WORKLOADS:
            continue
        n += 1
        where = f"{d['kind']} {d.get('metadata', {}).get('name')}"
        check_pod(where, d["kind"], pod_spec(d), problems)
    for p in problems:
        print(p)
    if n == 0:
        print("no workload found")
        return 1
    print(f"{n} workloads checked, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


def configmap_doc(docs, key):
    for d in docs:
        if d.get("kind") == "ConfigMap" and key in (d.get("data") or {}):
            return json.loads(d["data"][key])
    raise SystemExit(f"no ConfigMap with {key}")


QTY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
JOB_KEYS = ("namespace", "owner", "serviceAccountName", "image", "imagePullPolicy",
            "ttlSecondsAfterFinished", "activeDeadlineSeconds", "maxTimeoutSeconds",
            "defaultTimeoutSeconds", "deadlineGraceSeconds", "podStartTimeoutSeconds",
            "imagePullGraceSeconds", "runAsUser", "runAsGroup", "workspaceSizeLimit", "resources",
            "maxResources", "nodeSelector", "tolerations", "affinity", "gpu")


# config.json key (a serve flag) -> how sandbox-job.json states the same
# setting: the service reads the former, reviewers read the latter.
CONFIG_JOB_KEYS = [
    ("ttl-seconds-after-finished", lambda j: j["ttlSecondsAfterFinished"]),
    ("run-as-user", lambda j: j["runAsUser"]),
    ("run-as-group", lambda j: j["runAsGroup"]),
    ("default-timeout", lambda j: j["defaultTimeoutSeconds"]),
    ("max-timeout", lambda j: j["maxTimeoutSeconds"]),
    ("deadline-grace", lambda j: j["deadlineGraceSeconds"]),
    ("pod-start-timeout", lambda j: j["podStartTimeoutSeconds"]),
    ("image-pull-grace", lambda j: j["imagePullGraceSeconds"]),
    ("workspace-size-limit", lambda j: str(j["workspaceSizeLimit"])),
    ("cpu-request", lambda j: str(j["resources"]["requests"]["cpu"])),
    ("memory-request", lambda j: str(j["resources"]["requests"]["memory"])),
    ("cpu-limit", lambda j: str(j["resources"]["limits"]["cpu"])),
    ("memory-limit", lambda j: str(j["resources"]["limits"]["memory"])),
    ("max-cpu", lambda j: str(j["maxResources"]["cpu"])),
    ("max-memory", lambda j: str(j["maxResources"]["memory"])),
    ("image-pull-policy", lambda j: j["imagePullPolicy"]),
    ("sandbox-service-account", lambda j: j["serviceAccountName"]),
    ("node-selector", lambda j: j["nodeSelector"]),
    ("tolerations", lambda j: j["tolerations"]),
    ("affinity", lambda j: j["affinity"]),
    ("gpu-resource", lambda j: j["gpu"]["resourceName"]),
    ("gpu-count", lambda j: j["gpu"]["count"] if j["gpu"]["enabled"] else 0),
]
# config.json keys whose value is JSON (an object or an array), not a scalar
CONFIG_JSON_KEYS = {"node-selector": dict, "tolerations": list, "affinity": dict}
TOLERATION_FIELDS = {"key", "operator", "value", "effect", "tolerationSeconds"}


def norm_tolerations(ts):
    """Tolerations as the API server means them: empty fields dropped,
    operator Equal when not given."""
    out = []
    for t in ts or []:
        t = {k: v for k, v in (t or {}).items() if v not in ("", None)}
        t.setdefault("operator", "Equal")
        out.append(t)
    return out


def cmd_sandbox_config(path, serve_flags):
    """config.json uses only `serve` flags as keys (the service refuses
    unknown ones) and agrees with sandbox-job.json; sandbox-job.json is
    complete, consistent and restricted-compatible."""
    docs = load_docs([path])
    cfg = configmap_doc(docs, "config.json")
    job = configmap_doc(docs, "sandbox-job.json")
    problems = []
    flags = set(serve_flags.split(",")) - {"config", "help"}
    for k, v in cfg.items():
        if k not in flags:
            problems.append(f"config.json: {k} is not a serve flag")
        if k in CONFIG_JSON_KEYS:
            if not isinstance(v, CONFIG_JSON_KEYS[k]):
                problems.append(f"config.json: {k} must be a JSON {CONFIG_JSON_KEYS[k].__name__}")
        elif not isinstance(v, (str, int, bool)) or isinstance(v, float):
            problems.append(f"config.json: {k} must be a string, integer or boolean")
    for k in ("namespace", "owner", "image"):
        if cfg.get(k) != job.get(k):
            problems.append(f"config.json {k} {cfg.get(k)!r} != sandbox-job.json {job.get(k)!r}")
    for k, get in CONFIG_JOB_KEYS:
        try:
            want = get(job)
        except (KeyError, TypeError):
            want = None
        if k not in cfg or cfg[k] != want:
            problems.append(f"config.json {k} {cfg.get(k)!r} != sandbox-job.json's {want!r} (the service reads config.json)")
    for k in JOB_KEYS:
        if k not in job:
            problems.append(f"sandbox-job.json: {k} missing")
    for k in set(job) - set(JOB_KEYS):
        problems.append(f"sandbox-job.json: unexpected {k}")
    if not isinstance(job.get("runAsUser"), int) or job.get("runAsUser", 0) < 1:
        problems.append("sandbox-job.json: runAsUser must be a non-root numeric UID (restricted)")
    if job.get("imagePullPolicy") not in ("Always", "IfNotPresent", "Never"):
        problems.append(f"sandbox-job.json: imagePullPolicy {job.get('imagePullPolicy')!r} is not Always, IfNotPresent or Never")
    for i, t in enumerate(job.get("tolerations") or []):
        if not isinstance(t, dict) or set(t) - TOLERATION_FIELDS:
            problems.append(f"sandbox-job.json: tolerations[{i}] is not a Toleration: {t!r}")
    if set(job.get("affinity") or {}) - {"nodeAffinity", "podAffinity", "podAntiAffinity"}:
        problems.append(f"sandbox-job.json: affinity has unknown fields: {sorted(job['affinity'])}")
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            v = ((job.get("resources") or {}).get(kind) or {}).get(r)
            if not isinstance(v, str) or not QTY.match(v):
                problems.append(f"sandbox-job.json: resources.{kind}.{r} missing or not a quantity: {v!r}")
    try:
        if job["defaultTimeoutSeconds"] > job["maxTimeoutSeconds"]:
            problems.append("sandbox-job.json: defaultTimeoutSeconds > maxTimeoutSeconds")
        if job["maxTimeoutSeconds"] + job["deadlineGraceSeconds"] != job["activeDeadlineSeconds"]:
            problems.append("sandbox-job.json: maxTimeoutSeconds + deadlineGraceSeconds != activeDeadlineSeconds")
        if job["ttlSecondsAfterFinished"] <= 0:
            problems.append("sandbox-job.json: ttlSecondsAfterFinished must be > 0")
    except (KeyError, TypeError):
        pass
    if not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", str(cfg.get("namespace", ""))):
        problems.append("namespace is not a DNS-1123 label")
    if not re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$", str(cfg.get("owner", ""))):
        problems.append("owner is not a valid label value")
    for p in problems:
        print(p)
    return 1 if problems else 0


QTY_SCALE = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def qty(v):
    m = re.match(r"^([0-9.]+)([a-zA-Z]*)$", str(v))
    return float(m.group(1)) * QTY_SCALE[m.group(2)]


def cmd_builtin(path, model_c):
    """The Job settings the service has built in (sandbox_config_init in
    sandbox/model.c) equal what sandbox-job.json says."""
    src = open(model_c, encoding="utf-8").read()
    body = src[src.index("void sandbox_config_init("):]
    body = body[:body.index("\n}\n")]
    init = {}
    for field, val in re.findall(r"cfg->(\w+)\s*=\s*([^;]+);", body):
        val = val.strip()
        if val.startswith('"'):
            init[field] = val.strip('"')
        else:
            try:
                init[field] = eval(val.replace("u <<", " <<"), {})
            except Exception:
                init[field] = val
    job = configmap_doc(load_docs([path]), "sandbox-job.json")
    pairs = [
        ("service_account", job["serviceAccountName"]),
        ("run_as_user", job["runAsUser"]), ("run_as_group", job["runAsGroup"]),
        ("ttl_seconds_after_finished", job["ttlSecondsAfterFinished"]),
        ("grace_seconds", job["deadlineGraceSeconds"]),
        ("default_timeout_seconds", job["defaultTimeoutSeconds"]),
        ("max_timeout_seconds", job["maxTimeoutSeconds"]),
        ("start_timeout_seconds", job["podStartTimeoutSeconds"]),
        ("image_pull_grace_seconds", job["imagePullGraceSeconds"]),
        ("default_cpu_request", job["resources"]["requests"]["cpu"]),
        ("default_cpu_limit", job["resources"]["limits"]["cpu"]),
        ("default_memory_request", job["resources"]["requests"]["memory"]),
        ("default_memory_limit", job["resources"]["limits"]["memory"]),
        ("max_cpu", job["maxResources"]["cpu"]), ("max_memory", job["maxResources"]["memory"]),
        ("ephemeral_storage_limit", job["workspaceSizeLimit"]),
        ("image_pull_policy", job["imagePullPolicy"]),
        ("gpu_resource", job["gpu"]["resourceName"]),
        ("gpu_count", job["gpu"]["count"] if job["gpu"]["enabled"] else 0),
        # built in: none (NULL); stated as empty
        ("node_selector", "NULL" if job["nodeSelector"] == {} else job["nodeSelector"]),
        ("tolerations", "NULL" if job["tolerations"] == [] else job["tolerations"]),
        ("affinity", "NULL" if job["affinity"] == {} else job["affinity"]),
    ]
    problems = []
    for field, want in pairs:
        have = init.get(field)
        same = have == want
        if not same and isinstance(want, str) and isinstance(have, str):
            try:
                same = qty(have) == qty(want)
            except (AttributeError, KeyError):
                pass
        if not same:
            problems.append(f"sandbox_config_init {field} = {have!r}, sandbox-job.json says {want!r}")
    for p in problems:
        print(p)
    print(f"{len(pairs)} built-in settings compared", file=sys.stderr)
    return 1 if problems else 0



def kubectl_name(d):
    """The TYPE.GROUP/NAME that `kubectl apply -o name` prints for d."""
    av = d.get("apiVersion", "")
    group = av.split("/")[0] if "/" in av else ""
    kind = d.get("kind", "").lower()
    return f"{kind}.{group}/{d.get('metadata', {}).get('name')}" if group else \
        f"{kind}/{d.get('metadata', {}).get('name')}"


def cmd_applied(path, out_path):
    want = [kubectl_name(d) for d in load_docs([path])]
    got = set(open(out_path, encoding="utf-8").read().split())
    missing = [w for w in want if w not in got]
    for m in missing:
        print(f"not applied: {m}")
    print(f"{len(want)} objects in {path}, {len(want) - len(missing)} applied", file=sys.stderr)
    return 1 if missing or not want else 0


def cmd_pod_from(path, kind, name):
    d = find(load_docs([path]), kind, name)
    if d is None:
        raise SystemExit(f"no {kind} {name}")
    if kind == "Pod":
        tmpl = {"metadata": d.get("metadata") or {}, "spec": d.get("spec") or {}}
    else:
        tmpl = (d.get("spec") or {}).get("template") or {}
    meta = tmpl.get("metadata") or {}
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": f"{name}-pss-check", "labels": meta.get("labels") or {}},
           "spec": pod_spec(d) if kind != "Pod" else tmpl["spec"]}
    ns = (d.get("metadata") or {}).get("namespace")
    if ns:
        pod["metadata"]["namespace"] = ns
    print(json.dumps(pod))
    return 0


def json_stream(text):
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        obj, i = dec.raw_decode(text, i)
        out.append(obj)


def cmd_job_settings(watch_path, cm_path):
    """The Job the service created follows the ConfigMap the chart rendered:
    config.json (what serve read) and sandbox-job.json (the Job settings)."""
    cm = json.load(open(cm_path, encoding="utf-8"))
    cfg = json.loads(cm["data"]["config.json"])
    sj = json.loads(cm["data"]["sandbox-job.json"])
    # watch events ({"type": ..., "object": ...}) or plain objects
    objs = [o.get("object") if isinstance(o.get("object"), dict) else o
            for o in json_stream(open(watch_path, encoding="utf-8").read())]
    jobs = [o for o in objs
            if o.get("kind") == "Job" and
            (o.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/managed-by") == "ci-fixer"]
    if not jobs:
        print("no ci-fixer Job was seen")
        return 1
    j = jobs[0]
    meta, spec = j["metadata"], j["spec"]
    pspec = spec["template"]["spec"]
    c = pspec["containers"][0]
    psc, sc = pspec.get("securityContext") or {}, c.get("securityContext") or {}
    res = c.get("resources") or {}
    checks = [
        ("namespace", meta.get("namespace"), cfg["namespace"]),
        ("namespace (sandbox-job.json)", meta.get("namespace"), sj["namespace"]),
        ("label ci-fixer.io/owner", (meta.get("labels") or {}).get("ci-fixer.io/owner"), cfg["owner"]),
        ("label ci-fixer.io/owner (sandbox-job.json)", (meta.get("labels") or {}).get("ci-fixer.io/owner"), sj["owner"]),
        ("image", c.get("image"), cfg["image"]),
        ("imagePullPolicy", c.get("imagePullPolicy"), sj["imagePullPolicy"]),
        ("serviceAccountName", pspec.get("serviceAccountName"), sj["serviceAccountName"]),
        ("ttlSecondsAfterFinished", spec.get("ttlSecondsAfterFinished"), sj["ttlSecondsAfterFinished"]),
        ("ttlSecondsAfterFinished (config.json)", spec.get("ttlSecondsAfterFinished"),
         cfg.get("ttl-seconds-after-finished")),
        ("activeDeadlineSeconds (config.json default-timeout + deadline-grace)", spec.get("activeDeadlineSeconds"),
         (cfg.get("default-timeout") or 0) + (cfg.get("deadline-grace") or 0)),
        ("runAsUser (config.json)", sc.get("runAsUser", psc.get("runAsUser")), cfg.get("run-as-user")),
        ("runAsGroup (config.json)", sc.get("runAsGroup", psc.get("runAsGroup")), cfg.get("run-as-group")),
        ("limits.ephemeral-storage (config.json)", qty((res.get("limits") or {}).get("ephemeral-storage", "0")),
         qty(cfg.get("workspace-size-limit", "0"))),
        ("requests.cpu (config.json)", qty((res.get("requests") or {}).get("cpu", "0")), qty(cfg.get("cpu-request", "0"))),
        ("requests.memory (config.json)", qty((res.get("requests") or {}).get("memory", "0")),
         qty(cfg.get("memory-request", "0"))),
        ("limits.cpu (config.json)", qty((res.get("limits") or {}).get("cpu", "0")), qty(cfg.get("cpu-limit", "0"))),
        ("limits.memory (config.json)", qty((res.get("limits") or {}).get("memory", "0")),
         qty(cfg.get("memory-limit", "0"))),
        ("activeDeadlineSeconds (default timeout + grace)", spec.get("activeDeadlineSeconds"),
         sj["defaultTimeoutSeconds"] + sj["deadlineGraceSeconds"]),
        ("runAsUser", sc.get("runAsUser", psc.get("runAsUser")), sj["runAsUser"]),
        ("runAsGroup", sc.get("runAsGroup", psc.get("runAsGroup")), sj["runAsGroup"]),
        ("limits.ephemeral-storage", qty((res.get("limits") or {}).get("ephemeral-storage", "0")),
         qty(sj["workspaceSizeLimit"])),
    ]
    for kind_ in ("requests", "limits"):
        for r in ("cpu", "memory"):
            checks.append((f"resources.{kind_}.{r}", qty((res.get(kind_) or {}).get(r, "0")),
                           qty(sj["resources"][kind_][r])))
    # where the pod may run, and its GPUs: config.json's node-selector,
    # tolerations, affinity, gpu-resource/gpu-count (an empty value: the
    # field is absent), and sandbox-job.json's statement of the same
    gpu = cfg.get("gpu-resource")
    gpu_n = cfg.get("gpu-count") or 0
    checks += [
        ("imagePullPolicy (config.json)", c.get("imagePullPolicy"), cfg.get("image-pull-policy")),
        ("serviceAccountName (config.json)", pspec.get("serviceAccountName"), cfg.get("sandbox-service-account")),
        ("nodeSelector (config.json)", pspec.get("nodeSelector") or {}, cfg.get("node-selector")),
        ("nodeSelector", pspec.get("nodeSelector") or {}, sj["nodeSelector"]),
        ("tolerations (config.json)", norm_tolerations(pspec.get("tolerations")),
         norm_tolerations(cfg.get("tolerations"))),
        ("tolerations", norm_tolerations(pspec.get("tolerations")), norm_tolerations(sj["tolerations"])),
        ("affinity (config.json)", pspec.get("affinity") or {}, cfg.get("affinity")),
        ("affinity", pspec.get("affinity") or {}, sj["affinity"]),
        (f"limits.{gpu} (config.json gpu-count)", (res.get("limits") or {}).get(gpu),
         str(gpu_n) if gpu_n else None),
        (f"requests.{gpu} = limits (extended resources are not overcommitted)",
         (res.get("requests") or {}).get(gpu), (res.get("limits") or {}).get(gpu)),
        (f"limits.{sj['gpu']['resourceName']} (sandbox-job.json gpu)",
         (res.get("limits") or {}).get(sj["gpu"]["resourceName"]),
         str(sj["gpu"]["count"]) if sj["gpu"]["enabled"] else None),
        ("automountServiceAccountToken (restricted, no token)", pspec.get("automountServiceAccountToken"), False),
    ]
    bad = 0
    for what, have, want in checks:
        ok = have == want
        bad += not ok
        print(f"{'ok' if ok else 'DIFFERENT'}: Job {meta.get('name')} {what}: {have!r}, ConfigMap says {want!r}")
    return 1 if bad else 0


def cmd_pod_files(deploy_path, root, *objs_paths):
    """Lay out, under ROOT, the files the Deployment's container would see
    (its configMap and secret volumes from the objects in OBJS, JSON as
    `kubectl get -o json` prints them; emptyDirs as empty directories), and
    print its args one per line with every mount path moved under ROOT: the
    command line the pod runs, runnable here."""
    import base64
    import os
    d = json.load(open(deploy_path, encoding="utf-8"))
    spec = d["spec"]["template"]["spec"]
    c = spec["containers"][0]
    if c.get("command"):
        raise SystemExit("the container overrides the image's ENTRYPOINT (command)")
    objs = {}
    for path in objs_paths:
        o = json.load(open(path, encoding="utf-8"))
        objs[(o["kind"], o["metadata"]["name"])] = o
    vols = {v["name"]: v for v in spec.get("volumes") or []}
    mounts = sorted(c.get("volumeMounts") or [], key=lambda m: -len(m["mountPath"]))
    for m in mounts:
        v = vols[m["name"]]
        where = os.path.join(root, m["mountPath"].lstrip("/"))
        os.makedirs(where, exist_ok=True)
        if "configMap" in v:
            data = objs[("ConfigMap", v["configMap"]["name"])].get("data") or {}
            files = {i["key"]: i["path"] for i in v["configMap"].get("items") or []} or {k: k for k in data}
            for k, rel in files.items():
                with open(os.path.join(where, rel), "w", encoding="utf-8") as f:
                    f.write(data[k])
        elif "secret" in v:
            data = objs[("Secret", v["secret"]["secretName"])].get("data") or {}
            files = {i["key"]: i["path"] for i in v["secret"].get("items") or []} or {k: k for k in data}
            for k, rel in files.items():
                with open(os.path.join(where, rel), "wb") as f:
                    f.write(base64.b64decode(data[k]))
        elif "emptyDir" not in v:
            raise SystemExit(f"volume {m['name']}: type not laid out here")
    for a in c.get("args") or []:
        for m in mounts:
            mp = m["mountPath"]
            i = a.find(mp)
            if i >= 0 and (i + len(mp) == len(a) or a[i + len(mp)] == "/"):
                a = a[:i] + os.path.join(root, mp.lstrip("/")) + a[i + len(mp):]
                break
        print(a)
    return 0


def cmd_documented(path):
    text = open(path, encoding="utf-8").read()
    params = set(re.findall(r"^\s*## @param ([A-Za-z0-9_.\-/]+)\s+\S", text, re.M))
    vals = yaml.safe_load(text)
    missing = []

    def walk(node, prefix):
        for k, v in node.items():
            p = f"{prefix}.{k}" if prefix else str(k)
            if p in params:
                continue  # documented as a whole (a leaf or a free-form map)
            if isinstance(v, dict) and v:
                walk(v, p)
            else:
                missing.append(p)

    walk(vals, "")
    unknown = sorted(p for p in params if not has_key(vals, p))
    for p in missing:
        print(f"undocumented value: {p}")
    for p in unknown:
        print(f"@param names no value: {p}")
    return 1 if missing or unknown else 0


def has_key(vals, dotted):
    node = vals
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def cmd_has_keys(path, keys):
    vals = yaml.safe_load(open(path, encoding="utf-8"))
    missing = [k for k in keys if not has_key(vals, k)]
    for k in missing:
        print(f"{path}: {k} not set")
    return 1 if missing else 0


def dockerfile_instructions(text):
    """(lineno, INSTRUCTION, args) with line continuations joined."""
    out, buf, start = [], "", 0
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not buf and (not s or s.startswith("#")):
            continue
        if buf and s.startswith("#"):
            continue
        if not buf:
            start = i
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        parts = buf.split(None, 1)
        out.append((start, parts[0].upper(), parts[1] if len(parts) > 1 else ""))
        buf = ""
    return out


def cmd_dockerfile_stages(path):
    """The stage structure the image needs: a named build stage on the build
    image, a final stage on a different (slim) base that is not a stage
    alias, every COPY --from naming an earlier stage, the final stage
    copying the built program from the build stage, the exec-form
    ENTRYPOINT naming a file that COPY put there, and the last USER
    instruction inside the final stage."""
    ins = dockerfile_instructions(open(path, encoding="utf-8").read())
    args = {}
    for _, i, a in ins:
        if i == "ARG" and "=" in a:
            k, v = a.split("=", 1)
            args.setdefault(k.strip(), v.strip())
    stages, cur, problems = [], None, []
    for ln, i, a in ins:
        if i == "FROM":
            parts = a.split()
            img = parts[0]
            m = re.match(r"^\$\{?(\w+)\}?$", img)
            base = args.get(m.group(1), "") if m else img
            alias = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            cur = {"line": ln, "base": base, "alias": alias, "copies": [], "user": None,
                   "entrypoint": None, "from_stage": base in [x["alias"] for x in stages]}
            stages.append(cur)
        elif cur is None:
            continue
        elif i == "COPY":
            m = re.search(r"--from=(\S+)", a)
            src = m.group(1) if m else None
            if src is not None and src not in [x["alias"] for x in stages[:-1]]:
                problems.append(f"line {ln}: COPY --from={src} names no earlier stage")
            toks = [t for t in a.split() if not t.startswith("--")]
            cur["copies"].append((src, toks[:-1], toks[-1] if toks else ""))
        elif i == "USER":
            cur["user"] = a.strip()
        elif i == "ENTRYPOINT":
            try:
                cur["entrypoint"] = json.loads(a)
            except ValueError:
                problems.append(f"line {ln}: ENTRYPOINT is not a JSON array (exec form)")
    for st in stages:
        print(f"stage {st['alias'] or '(unnamed)'} FROM {st['base']} (line {st['line']})")
    if len(stages) < 2:
        problems.append("not multi-stage: want a build stage and a runtime stage")
        for p_ in problems:
            print(p_)
        return 1
    build, final = stages[0], stages[-1]
    if not build["alias"]:
        problems.append("the build stage has no name (FROM ... AS build)")
    if final["from_stage"]:
        problems.append(f"the final stage starts FROM the stage {final['base']}, which carries the toolchain")
    if final["base"] == build["base"]:
        problems.append(f"the final stage's base {final['base']} is the build image, not a slim runtime")
    if "slim" not in final["base"] and "distroless" not in final["base"]:
        problems.append(f"the final stage's base {final['base']} is not slim or distroless")
    if not any(src == build["alias"] for src, _, _ in final["copies"]):
        problems.append("the final stage copies nothing from the build stage")
    if any(src is None for src, _, _ in final["copies"]):
        problems.append("the final stage copies from the build context (only the built program belongs there)")
    if final["user"] is None:
        problems.append("no USER in the final stage")
    ep = final["entrypoint"]
    if not ep or not isinstance(ep, list):
        problems.append("no exec-form ENTRYPOINT in the final stage")
    else:
        # the program must be what the build stage installed under /out/
        # (copied to /) or copied to that path directly
        prog = ep[0]
        run_text = " ".join(a for _, i, a in ins if i == "RUN")
        ok = any(src == build["alias"] and
                 (dst == prog or (dst == "/" and any(x.rstrip("/") == "/out" for x in srcs)
                                  and f"/out{prog}" in run_text))
                 for src, srcs, dst in final["copies"])
        if not ok:
            problems.append(f"ENTRYPOINT {prog} is not the program the build stage produced")
    for p_ in problems:
        print(p_)
    return 1 if problems else 0


def cmd_dockerfile(path):
    """hadolint's main rules (https://github.com/hadolint/hadolint#rules):
    DL3002 last USER not root (and numeric here), DL3006/DL3007 base images
    tagged and not latest, DL3009 apt lists removed, DL3015
    --no-install-recommends, DL3020 COPY not ADD, DL3025 JSON ENTRYPOINT/CMD,
    DL4006 pipefail before RUN with a pipe, DL3027 apt not apt-get, DL3004 no
    sudo, plus: multi-stage, EXPOSE 3001, no HEALTHCHECK needed."""
    text = open(path, encoding="utf-8").read()
    ins = dockerfile_instructions(text)
    problems = []
    args = {}
    for ln, i, a in ins:
        if i == "ARG" and "=" in a:
            k, v = a.split("=", 1)
            args[k.strip()] = v.strip()
    froms = [(ln, a) for ln, i, a in ins if i == "FROM"]
    if len(froms) < 2:
        problems.append("not multi-stage (want a build stage and a runtime stage)")
    stages = set()
    for ln, a in froms:
        img = a.split()[0]
        m = re.match(r"^\$\{?(\w+)\}?$", img)
        if m:
            img = args.get(m.group(1), "")
        parts = a.split()
        if len(parts) >= 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
        if img in stages:
            continue
        if not img:
            problems.append(f"line {ln}: FROM {a}: base image ARG has no default")
        elif img.endswith(":latest"):
            problems.append(f"line {ln}: DL3007 FROM {img} uses latest")
        elif "@" not in img and ":" not in img.rsplit("/", 1)[-1]:
            problems.append(f"line {ln}: DL3006 FROM {img} is untagged")
    if froms and "bookworm" not in (froms[0][1] + json.dumps(args)):
        problems.append("build stage is not Debian bookworm")
    pipefail = False
    for ln, i, a in ins:
        if i == "FROM":
            pipefail = False
        if i == "SHELL" and "pipefail" in a:
            pipefail = True
        if i == "ADD":
            problems.append(f"line {ln}: DL3020 use COPY, not ADD")
        if i == "RUN":
            if re.search(r"(^|[;&|]\s*)sudo\s", a):
                problems.append(f"line {ln}: DL3004 sudo")
            if re.search(r"(^|[;&|]\s*)apt\s", a):
                problems.append(f"line {ln}: DL3027 use apt-get, not apt")
            if "apt-get install" in a:
                if "--no-install-recommends" not in a:
                    problems.append(f"line {ln}: DL3015 apt-get install without --no-install-recommends")
                if not re.search(r"\s-y\b|--yes|--assume-yes", a):
                    problems.append(f"line {ln}: DL3014 apt-get install without -y")
                if "rm -rf /var/lib/apt/lists" not in a:
                    problems.append(f"line {ln}: DL3009 apt lists not removed in the same RUN")
            if re.search(r"[^|]\|[^|]", a) and not pipefail:
                problems.append(f"line {ln}: DL4006 pipe without SHELL [... -o pipefail ...]")
        if i in ("ENTRYPOINT", "CMD") and not a.strip().startswith("["):
            problems.append(f"line {ln}: DL3025 {i} is not in JSON (exec) form")
    last = [a for ln, i, a in ins if i == "USER"]
    if not last:
        problems.append("DL3002 no USER: the image runs as root")
    else:
        u = last[-1].strip()
        m = re.match(r"^(\d+)(:(\d+))?$", u)
        if u.split(":")[0] == "root":
            problems.append(f"DL3002 last USER {u} is root")
        elif not m:
            problems.append(f"last USER {u} is not numeric UID[:GID] (Kubernetes cannot verify runAsNonRoot)")
        elif int(m.group(1)) == 0 or (m.group(3) is not None and int(m.group(3)) == 0):
            problems.append(f"DL3002 last USER {u} is root")
        elif int(m.group(1)) < 10000:
            problems.append(f"last USER {u}: UID below 10000")
    ep = [a for ln, i, a in ins if i == "ENTRYPOINT"]
    if not ep:
        problems.append("no ENTRYPOINT")
    for p in problems:
        print(p)
    return 1 if problems else 0


def cmd_get(path, kind, name, dotted):
    d = find(load_docs([path]), kind, name)
    if d is None:
        print(f"no {kind} {name}", file=sys.stderr)
        return 1
    node = d
    for part in dotted.split("."):
        if isinstance(node, list):
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            node = None
    print(json.dumps(node, sort_keys=True))
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, rest = argv[1], argv[2:]
    if cmd == "objects":
        for d in load_docs(rest):
            md = d.get("metadata") or {}
            print(f"{d.get('kind')} {md.get('namespace', '')}/{md.get('name')}")
        return 0
    if cmd == "role-rules":
        d = find(load_docs([rest[0]]), "Role", rest[1])
        if d is None:
            print(f"no Role {rest[1]}", file=sys.stderr)
            return 1
        print(json.dumps(norm_rules(d.get("rules")), sort_keys=True))
        return 0
    if cmd == "expected-rules":
        text = open(rest[0], encoding="utf-8").read()
        for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and "rules" in data:
                print(json.dumps(norm_rules(data["rules"]), sort_keys=True))
                return 0
        print("no ```yaml block with rules:", file=sys.stderr)
        return 1
    if cmd == "pss":
        return cmd_pss(rest)
    if cmd == "config":
        key = rest[1] if len(rest) > 1 else "config.json"
        print(json.dumps(configmap_doc(load_docs([rest[0]]), key), sort_keys=True))
        return 0
    if cmd == "sandbox-config":
        return cmd_sandbox_config(rest[0], rest[1])
    if cmd == "builtin":
        return cmd_builtin(rest[0], rest[1])
    if cmd == "dockerfile-stages":
        return cmd_dockerfile_stages(rest[0])
    if cmd == "pod-files":
        return cmd_pod_files(rest[0], rest[1], *rest[2:])
    if cmd == "applied":
        return cmd_applied(rest[0], rest[1])
    if cmd == "pod-from":
        return cmd_pod_from(rest[0], rest[1], rest[2])
    if cmd == "job-settings":
        return cmd_job_settings(rest[0], rest[1])
    if cmd == "documented":
        return cmd_documented(rest[0])
    if cmd == "has-keys":
        return cmd_has_keys(rest[0], rest[1:])
    if cmd == "dockerfile":
        return cmd_dockerfile(rest[0])
    if cmd == "get":
        return cmd_get(*rest[:4])
    print(f"unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
