#!/usr/bin/env python3
"""Writes the operator's OCI image layout and archive without Docker (see scripts/image.sh).

Python's standard library only: the layout is a few JSON documents and one gzip'd tar layer,
and writing them directly keeps the build free of a daemon, of a base image download and of
another tool to build (crane would be one more Go build from the module proxy for four files).
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

NAME = "cluster-backup-operator"
USER = 65532
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"


def shared_libraries(binary):
    """Absolute paths of the libraries `ldd` resolves for `binary`, and the loader.

    Empty for a static binary. Each path is kept as the loader looks it up (symlinks resolved
    to their content, stored under the name ldd printed)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    text = out.stdout + out.stderr
    if "not a dynamic executable" in text or "statically linked" in text:
        return []
    if out.returncode != 0:
        sys.exit(f"ldd {binary} failed: {text}")
    libs = []
    for line in text.splitlines():
        line = line.strip()
        if "not found" in line:
            sys.exit(f"{binary} needs a library ldd cannot find: {line}")
        m = re.match(r"^\S+ => (/\S+) \(0x[0-9a-f]+\)$", line) or re.match(
            r"^(/\S+) \(0x[0-9a-f]+\)$", line
        )
        if m:
            libs.append(m.group(1))
    return sorted(set(libs))


class Layer:
    """A deterministic tar: sorted entries, fixed owner and time."""

    def __init__(self, mtime):
        self.mtime = mtime
        self.entries = {}

    def dir(self, path, mode=0o755):
        self.entries[path] = ("dir", mode, None)

    def file(self, path, data, mode=0o644):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            self.entries.setdefault(parent, ("dir", 0o755, None))
        self.entries[path] = ("file", mode, data)

    def tar_bytes(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries):
                kind, mode, data = self.entries[path]
                info = tarfile.TarInfo(path + ("/" if kind == "dir" else ""))
                info.mtime = self.mtime
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mode = mode
                if kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--version", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--revision", required=True)
    p.add_argument("--ca-certificates", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    layer = Layer(mtime)
    for d in ["etc", "etc/ssl", "etc/ssl/certs"]:
        layer.dir(d)
    # Writable scratch space only if a volume is mounted there (read-only root filesystem).
    layer.dir("tmp", 0o1777)
    with open(a.binary, "rb") as f:
        layer.file("cluster-backup", f.read(), 0o755)
    libs = shared_libraries(a.binary)
    for lib in libs:
        with open(os.path.realpath(lib), "rb") as f:
            layer.file(lib.lstrip("/"), f.read(), 0o755)
    with open(a.ca_certificates, "rb") as f:
        layer.file("etc/ssl/certs/ca-certificates.crt", f.read())
    layer.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/sbin/nologin\n"
        + f"nonroot:x:{USER}:{USER}:nonroot:/home/nonroot:/sbin/nologin\n".encode(),
    )
    layer.file("etc/group", b"root:x:0:\n" + f"nonroot:x:{USER}:\n".encode())
    layer.file("etc/nsswitch.conf", b"hosts: files dns\n")
    layer.dir("home")
    layer.dir("home/nonroot", 0o755)

    tar = layer.tar_bytes()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=9) as z:
        z.write(tar)
    layer_gz = gz.getvalue()

    created = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    labels = {
        "org.opencontainers.image.title": NAME,
        "org.opencontainers.image.description": "Kubernetes backup and restore operator",
        "org.opencontainers.image.version": a.version,
        "org.opencontainers.image.revision": a.revision,
        "org.opencontainers.image.source": a.source,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.created": created,
    }
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{USER}:{USER}",
            "Entrypoint": ["/cluster-backup"],
            "Env": [
                "PATH=/",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ],
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
        "history": [
            {
                "created": created,
                "created_by": "scripts/image.sh (cluster-backup + "
                + ("static" if not libs else f"{len(libs)} shared libraries")
                + ", CA certificates, /etc/passwd)",
            }
        ],
    }
    config_bytes = json.dumps(config, indent=2, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": sha256(config_bytes), "size": len(config_bytes)},
        "layers": [{"mediaType": MEDIA_LAYER, "digest": sha256(layer_gz), "size": len(layer_gz)}],
        "annotations": {k: v for k, v in labels.items() if k != "org.opencontainers.image.description"},
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    tag = f"{NAME}:{a.version}"
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": sha256(manifest_bytes),
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "org.opencontainers.image.ref.name": a.version,
                    "io.containerd.image.name": tag,
                },
            }
        ],
    }
    index_bytes = json.dumps(index, indent=2, sort_keys=True).encode()
    blobs = {sha256(b): b for b in (config_bytes, manifest_bytes, layer_gz)}
    # docker load reads manifest.json (the docker-archive format) beside the OCI layout.
    docker_manifest = json.dumps(
        [
            {
                "Config": "blobs/sha256/" + sha256(config_bytes).split(":")[1],
                "RepoTags": [tag],
                "Layers": ["blobs/sha256/" + sha256(layer_gz).split(":")[1]],
            }
        ],
        indent=2,
    ).encode()
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": index_bytes,
        "manifest.json": docker_manifest,
    }
    for digest, data in blobs.items():
        files["blobs/sha256/" + digest.split(":")[1]] = data

    layout = os.path.join(a.out, "oci")
    shutil.rmtree(layout, ignore_errors=True)
    for path, data in files.items():
        full = os.path.join(layout, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)

    archive = Layer(mtime)
    archive.dir("blobs")
    archive.dir("blobs/sha256")
    for path, data in files.items():
        archive.file(path, data)
    archive_path = os.path.join(a.out, f"{NAME}-{a.version}.tar")
    with open(archive_path + ".tmp", "wb") as f:
        f.write(archive.tar_bytes())
    os.replace(archive_path + ".tmp", archive_path)

    print(
        f"{tag}: manifest {sha256(manifest_bytes)}, layer {len(layer_gz) // 1024} KiB "
        f"({len(libs)} shared libraries)\n  {layout}\n  {archive_path}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
