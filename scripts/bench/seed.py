#!/usr/bin/env python3
"""Creates the objects of kubectl-style JSON List files in the API server, concurrently.

    seed.py KUBECONFIG WORKERS FILE...

One List file per namespace (the Namespace first). Each file's Namespace is created first, then
its items are POSTed by WORKERS threads, each over its own persistent HTTPS connection (TLS
client certificate from the kubeconfig). 409 AlreadyExists counts as done, so a re-run on a
seeded cluster is cheap. Prints "created=N existing=M seconds=S".
"""
import http.client
import json
import queue
import sys
import threading
import time

from kube import Api


def main():
    kubeconfig, workers, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    # The kubeconfig, the loopback check and the client certificate: kube.py's, one copy.
    api = Api(kubeconfig)

    def connect():
        return api.connect(timeout=60)

    def collection(obj):
        kind, ns = obj["kind"], obj["metadata"].get("namespace")
        plural = {"Namespace": "namespaces", "ConfigMap": "configmaps", "Secret": "secrets"}[kind]
        return f"/api/v1/namespaces/{ns}/{plural}" if ns else f"/api/v1/{plural}"

    counts = {"created": 0, "existing": 0}
    lock = threading.Lock()
    errors = []

    def post(conn, obj):
        body = json.dumps(obj).encode()
        for attempt in range(5):
            try:
                conn.request("POST", collection(obj), body, {"Content-Type": "application/json", "Accept": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = connect()
                time.sleep(0.2 * (attempt + 1))
                continue
            if resp.status in (200, 201):
                with lock:
                    counts["created"] += 1
                return conn
            if resp.status == 409:
                with lock:
                    counts["existing"] += 1
                return conn
            if resp.status in (429, 500, 503, 504):
                time.sleep(0.2 * (attempt + 1))
                continue
            raise RuntimeError(f"POST {collection(obj)} {obj['metadata']['name']}: HTTP {resp.status}: {data[:300]!r}")
        raise RuntimeError(f"POST {collection(obj)} {obj['metadata']['name']}: giving up after retries")

    started = time.monotonic()
    conn = connect()
    work = queue.Queue(maxsize=workers * 64)
    items_per_file = []
    for path in files:
        with open(path) as f:
            items = json.load(f)["items"]
        for obj in items:
            if obj["kind"] == "Namespace":
                conn = post(conn, obj)
        items_per_file.append([o for o in items if o["kind"] != "Namespace"])

    def worker():
        c = connect()
        while True:
            obj = work.get()
            if obj is None:
                break
            try:
                c = post(c, obj)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(str(e))
        c.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    for items in items_per_file:
        for obj in items:
            if errors:
                break
            work.put(obj)
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        for e in errors[:5]:
            print("seed.py: " + e, file=sys.stderr)
        sys.exit(1)
    print(f"created={counts['created']} existing={counts['existing']} seconds={elapsed:.1f}")


if __name__ == "__main__":
    main()
