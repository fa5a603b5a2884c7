#!/usr/bin/env python3
"""Small API-server client for the benchmark (standard library only; loopback API servers only).

    kube.py listfloor KUBECONFIG RUNS NAMESPACE...
    kube.py seeded    KUBECONFIG NAMESPACE...
    kube.py change    KUBECONFIG EVERY WORKERS NAMESPACE...
    kube.py apicounts KUBECONFIG

Authenticates with the admin client certificate of the kubeconfig written by scripts/testenv.sh.

`listfloor`: the raw LIST floor of a Backup of configmaps and secrets in NAMESPACEs: for each
namespace and type, paginated GET .../TYPE?limit=500 (following `continue`), each page read and
JSON-decoded, nothing else; sequential, over one keep-alive connection. Repeated RUNS times.
Prints "best=S runs=S1,S2,.. requests=N objects=M".

`seeded`: per namespace, how many ConfigMaps + Secrets carry the seed label
(bench.cnd.dk/seed=true; metadata-only lists). Prints "NAMESPACE COUNT" lines.

`change`: patches the data of every EVERY-th seeded object (ConfigMaps then Secrets of each
namespace with the seed label, in the order the API server lists them, counted across all
NAMESPACEs; the first one included),
so EVERY=100 changes 1 % of the objects. Each patch (JSON merge patch, WORKERS concurrent) sets
data key `bench-rev` to a new value. Prints "patched=N of=M seconds=S".

`apicounts`: the kube-apiserver's `apiserver_request_total` from /metrics, summed over all
labels: prints "total list post other" (verbs LIST, POST, everything else incl. WATCH/GET/PATCH).
"""
import base64
import http.client
import json
import os
import queue
import ssl
import sys
import tempfile
import threading
import time
from urllib.parse import quote, urlparse

TYPES = ("configmaps", "secrets")


def parse_kubeconfig(path):
    """Minimal parser for the kubeconfig written by scripts/testenv.sh (one cluster, one user)."""
    vals = {}
    for line in open(path):
        s = line.strip()
        for key in ("server", "certificate-authority-data", "client-certificate-data", "client-key-data"):
            if s.startswith(key + ":"):
                vals.setdefault(key, s.split(":", 1)[1].strip())
    missing = [k for k in ("server", "certificate-authority-data", "client-certificate-data", "client-key-data") if k not in vals]
    if missing:
        sys.exit(f"kube.py: kubeconfig {path} lacks {missing}")
    return vals


class Api:
    def __init__(self, kubeconfig):
        kc = parse_kubeconfig(kubeconfig)
        url = urlparse(kc["server"])
        if url.hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit(f"kube.py: refusing non-loopback API server {kc['server']}")
        self.hostname, self.port = url.hostname, url.port or 443
        tmp = tempfile.mkdtemp(prefix="bench-kube-")
        paths = {}
        try:
            for key, name in (("certificate-authority-data", "ca.crt"), ("client-certificate-data", "client.crt"),
                              ("client-key-data", "client.key")):
                paths[name] = os.path.join(tmp, name)
                with open(os.open(paths[name], os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
                    f.write(base64.b64decode(kc[key]))
            self.ctx = ssl.create_default_context(cafile=paths["ca.crt"])
            self.ctx.load_cert_chain(paths["client.crt"], paths["client.key"])
        finally:
            for p in paths.values():
                os.unlink(p)
            os.rmdir(tmp)

    def connect(self, timeout=120):
        return http.client.HTTPSConnection(self.hostname, self.port, context=self.ctx, timeout=timeout)

    @staticmethod
    def request(conn, method, path, body=None, headers=None):
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {data[:300]!r}")
        return data


def pages(api, conn, path, extra=""):
    """Yields the decoded pages of a paginated list (limit 500)."""
    cont = ""
    while True:
        url = f"{path}?limit=500{extra}" + (f"&continue={quote(cont)}" if cont else "")
        page = json.loads(api.request(conn, "GET", url, headers={"Accept": "application/json"}))
        yield page
        cont = page.get("metadata", {}).get("continue") or ""
        if not cont:
            return


def listfloor(api, runs, namespaces):
    times, requests, objects = [], 0, 0
    for _ in range(runs):
        conn = api.connect()
        requests = objects = 0
        t0 = time.monotonic()
        for ns in namespaces:
            for plural in TYPES:
                for page in pages(api, conn, f"/api/v1/namespaces/{ns}/{plural}"):
                    requests += 1
                    objects += len(page.get("items") or [])
        times.append(time.monotonic() - t0)
        conn.close()
    print(f"best={min(times):.2f} runs={','.join(f'{t:.2f}' for t in times)} requests={requests} objects={objects}")


def seeded(api, namespaces):
    conn = api.connect()
    meta = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
    for ns in namespaces:
        n = 0
        for plural in TYPES:
            cont = ""
            while True:
                url = (f"/api/v1/namespaces/{ns}/{plural}?limit=500&labelSelector=bench.cnd.dk%2Fseed%3Dtrue"
                       + (f"&continue={quote(cont)}" if cont else ""))
                page = json.loads(api.request(conn, "GET", url, headers=meta))
                n += len(page.get("items") or [])
                cont = page.get("metadata", {}).get("continue") or ""
                if not cont:
                    break
        print(f"{ns} {n}")
    conn.close()


def change(api, every, workers, namespaces):
    conn = api.connect()
    targets, total = [], 0
    meta = {"Accept": "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"}
    for ns in namespaces:
        for plural in TYPES:
            cont = ""
            while True:
                url = (f"/api/v1/namespaces/{ns}/{plural}?limit=500&labelSelector=bench.cnd.dk%2Fseed%3Dtrue"
                       + (f"&continue={quote(cont)}" if cont else ""))
                page = json.loads(api.request(conn, "GET", url, headers=meta))
                for item in page.get("items") or []:
                    if total % every == 0:
                        targets.append((ns, plural, item["metadata"]["name"]))
                    total += 1
                cont = page.get("metadata", {}).get("continue") or ""
                if not cont:
                    break
    conn.close()
    rev = str(time.time_ns())
    work = queue.Queue()
    for t in targets:
        work.put(t)
    errors = []

    def worker():
        c = api.connect()
        while True:
            try:
                ns, plural, name = work.get_nowait()
            except queue.Empty:
                break
            value = rev if plural == "configmaps" else base64.b64encode(rev.encode()).decode()
            body = json.dumps({"data": {"bench-rev": value}}).encode()
            try:
                api.request(c, "PATCH", f"/api/v1/namespaces/{ns}/{plural}/{name}", body,
                            {"Content-Type": "application/merge-patch+json", "Accept": "application/json"})
            except Exception as e:  # noqa: BLE001
                errors.append(str(e))
                c.close()
                c = api.connect()
        c.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for e in errors[:5]:
            print("kube.py: " + e, file=sys.stderr)
        sys.exit(1)
    print(f"patched={len(targets)} of={total} seconds={time.monotonic() - t0:.1f}")


def apicounts(api):
    conn = api.connect()
    text = api.request(conn, "GET", "/metrics").decode()
    conn.close()
    total = lists = posts = 0.0
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, _, value = line.rpartition(" ")
        n = float(value)
        verb = labels.split('verb="', 1)[1].split('"', 1)[0] if 'verb="' in labels else ""
        total += n
        if verb == "LIST":
            lists += n
        elif verb == "POST":
            posts += n
    print(f"{int(total)} {int(lists)} {int(posts)} {int(total - lists - posts)}")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, api = sys.argv[1], Api(sys.argv[2])
    args = sys.argv[3:]
    if cmd == "listfloor":
        listfloor(api, int(args[0]), args[1:])
    elif cmd == "seeded":
        seeded(api, args)
    elif cmd == "change":
        change(api, int(args[0]), int(args[1]), args[2:])
    elif cmd == "apicounts":
        apicounts(api)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
