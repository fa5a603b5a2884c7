#!/usr/bin/env python3
"""Small SigV4 S3 client for the benchmark (standard library only; loopback endpoints only).

    s3tool.py put   ENDPOINT BUCKET PREFIX COUNT CONCURRENCY SIZE
    s3tool.py purge ENDPOINT BUCKET

`put`: raw PUT throughput, the benchmark's storage floor. Creates BUCKET if needed, then PUTs
COUNT objects of SIZE bytes under PREFIX with CONCURRENCY threads, each on its own keep-alive
connection. Prints "puts=N seconds=S puts_per_s=R". Python's GIL makes it a lower bound of what
the server can take.

`purge`: deletes every object of BUCKET (ListObjectsV2 + DeleteObjects, 1000 at a time) and then
the bucket. A missing bucket is fine. Prints "deleted=N".

Keys from S3_ACCESS_KEY/S3_SECRET_KEY, region S3_REGION (default us-east-1); path-style URLs.
"""
import base64
import datetime
import hashlib
import hmac
import http.client
import os
import re
import sys
import threading
import time
from urllib.parse import quote, urlparse


class Client:
    def __init__(self, endpoint):
        url = urlparse(endpoint)
        if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost", "::1"):
            sys.exit(f"s3tool.py: refusing endpoint {endpoint} (http://127.0.0.1:PORT only)")
        self.hostname, self.port = url.hostname, url.port
        self.host = f"{url.hostname}:{url.port}"
        self.access, self.secret = os.environ["S3_ACCESS_KEY"], os.environ["S3_SECRET_KEY"]
        self.region = os.environ.get("S3_REGION", "us-east-1")

    def connect(self):
        return http.client.HTTPConnection(self.hostname, self.port, timeout=60)

    def headers(self, method, path, query, body, extra=None):
        now = datetime.datetime.now(datetime.timezone.utc)
        amzdate, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest()
        signed_headers = {"host": self.host, "x-amz-content-sha256": payload, "x-amz-date": amzdate}
        names = ";".join(sorted(signed_headers))
        canonical_query = "&".join(
            f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query.items()))
        canonical = "\n".join([method, path, canonical_query,
                               "".join(f"{k}:{signed_headers[k]}\n" for k in sorted(signed_headers)),
                               names, payload])
        scope = f"{date}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(canonical.encode()).hexdigest()])
        key = ("AWS4" + self.secret).encode()
        for part in (date, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out = {k: v for k, v in signed_headers.items() if k != "host"}
        out["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={self.access}/{scope}, "
                                f"SignedHeaders={names}, Signature={signature}")
        out.update(extra or {})
        return out

    def request(self, conn, method, path, body=b"", query=None, extra=None):
        query = query or {}
        target = path + ("?" + "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                                        for k, v in sorted(query.items())) if query else "")
        conn.request(method, target, body, self.headers(method, path, query, body, extra))
        resp = conn.getresponse()
        return resp.status, resp.read()


def put(client, bucket, prefix, count, concurrency, size):
    conn = client.connect()
    status, data = client.request(conn, "PUT", f"/{bucket}")
    if status not in (200, 409):
        sys.exit(f"s3tool.py: create bucket {bucket}: HTTP {status} {data[:200]!r}")
    conn.close()
    body = (b'{"apiVersion":"v1","kind":"ConfigMap","data":{"k":"' + b"x" * size)[:max(size - 3, 0)] + b'"}}'
    next_index, lock, errors = [0], threading.Lock(), []

    def worker():
        c = client.connect()
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= count or errors:
                break
            path = "/" + quote(f"{bucket}/{prefix}/obj-{i:06d}.json")
            try:
                status, data = client.request(c, "PUT", path, body)
            except (OSError, http.client.HTTPException) as e:
                errors.append(f"PUT {path}: {e}")
                break
            if status != 200:
                errors.append(f"PUT {path}: HTTP {status} {data[:200]!r}")
                break
        c.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        sys.exit("s3tool.py: " + errors[0])
    print(f"puts={count} seconds={elapsed:.2f} puts_per_s={count / elapsed:.0f}")


def purge(client, bucket):
    conn = client.connect()
    deleted, token = 0, None
    while True:
        query = {"list-type": "2", "max-keys": "1000"}
        if token:
            query["continuation-token"] = token
        status, data = client.request(conn, "GET", f"/{bucket}", query=query)
        if status == 404:
            print(f"deleted={deleted}")
            return
        if status != 200:
            sys.exit(f"s3tool.py: list {bucket}: HTTP {status} {data[:200]!r}")
        text = data.decode()
        keys = [k for k in re.findall(r"<Key>(.*?)</Key>", text, re.S)]
        if keys:
            body = ("<Delete><Quiet>true</Quiet>" + "".join(f"<Object><Key>{k}</Key></Object>" for k in keys)
                    + "</Delete>").encode()
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            status, out = client.request(conn, "POST", f"/{bucket}", body, {"delete": ""}, {"Content-MD5": md5})
            if status != 200 or b"<Error>" in out:
                sys.exit(f"s3tool.py: delete objects in {bucket}: HTTP {status} {out[:300]!r}")
            deleted += len(keys)
        match = re.search(r"<NextContinuationToken>(.*?)</NextContinuationToken>", text)
        truncated = re.search(r"<IsTruncated>true</IsTruncated>", text)
        if not (truncated and match):
            break
        token = match.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    status, data = client.request(conn, "DELETE", f"/{bucket}")
    if status not in (204, 200, 404):
        sys.exit(f"s3tool.py: delete bucket {bucket}: HTTP {status} {data[:200]!r}")
    print(f"deleted={deleted}")


def main():
    if len(sys.argv) >= 8 and sys.argv[1] == "put":
        put(Client(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    elif len(sys.argv) == 4 and sys.argv[1] == "purge":
        purge(Client(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
