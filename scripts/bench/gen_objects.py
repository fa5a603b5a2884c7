#!/usr/bin/env python3
"""Generates the benchmark's seed objects as one kubectl-ready JSON List per namespace.

    gen_objects.py OUTDIR NAMESPACES CONFIGMAPS_PER_NS SECRETS_PER_NS [PREFIX]

Writes OUTDIR/<ns>.json for namespaces PREFIX-00 .. PREFIX-(N-1): the Namespace first, then the
ConfigMaps and Secrets. Objects are deterministic (seeded per name) and of realistic size: each
ConfigMap holds an application.properties and a JSON config, each Secret a password, an API token
and a PEM-like certificate blob; the data is 1-2 KB per object.
"""
import base64
import json
import os
import random
import sys

WORDS = ("alpha beta gamma delta service cache timeout retry endpoint replica pool queue "
         "worker region zone limit buffer metrics tracing feature flag batch shard").split()


def properties(rng, target):
    lines, size = [], 0
    while size < target:
        key = ".".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4)))
        value = rng.choice([str(rng.randint(1, 100000)), rng.choice(WORDS) + "-" + rng.choice(WORDS),
                            f"http://{rng.choice(WORDS)}.svc.cluster.local:{rng.randint(1024, 65535)}",
                            rng.choice(["true", "false"])])
        line = f"{key}={value}"
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


def configmap(ns, i, rng):
    app = f"app-{i % 50:02d}"
    total = rng.randint(1000, 2000)
    props = properties(rng, int(total * 0.7))
    cfg = json.dumps({"name": app, "replicas": rng.randint(1, 9), "logLevel": rng.choice(["info", "debug", "warn"]),
                      "upstreams": [f"{rng.choice(WORDS)}-{k}:8080" for k in range(rng.randint(2, 6))]})
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"cm-{i:05d}", "namespace": ns,
                     "labels": {"app": app, "bench.cnd.dk/seed": "true", "tier": rng.choice(["web", "api", "db"])}},
        "data": {"application.properties": props, "config.json": cfg},
    }


def secret(ns, i, rng):
    app = f"app-{i % 50:02d}"
    blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(500, 900)))
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(
        base64.b64encode(blob).decode()[k:k + 64] for k in range(0, len(base64.b64encode(blob)), 64)
    ) + "\n-----END CERTIFICATE-----\n"
    def b64(s):
        return base64.b64encode(s.encode()).decode()
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": f"secret-{i:05d}", "namespace": ns,
                     "labels": {"app": app, "bench.cnd.dk/seed": "true"}},
        "data": {
            "username": b64(f"{app}-user"),
            "password": b64("".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(32))),
            "api-token": b64("%032x" % rng.getrandbits(128)),
            "tls.crt": b64(pem),
        },
    }


def main():
    outdir, nns, ncm, nsec = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    prefix = sys.argv[5] if len(sys.argv) > 5 else "bench"
    os.makedirs(outdir, exist_ok=True)
    for n in range(nns):
        ns = f"{prefix}-{n:02d}"
        items = [{"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": ns, "labels": {"bench.cnd.dk/seed": "true"}}}]
        for i in range(ncm):
            items.append(configmap(ns, i, random.Random(f"{ns}/cm/{i}")))
        for i in range(nsec):
            items.append(secret(ns, i, random.Random(f"{ns}/secret/{i}")))
        with open(os.path.join(outdir, f"{ns}.json"), "w") as f:
            json.dump({"apiVersion": "v1", "kind": "List", "items": items}, f, separators=(",", ":"))
        print(os.path.join(outdir, f"{ns}.json"))


if __name__ == "__main__":
    main()
