#!/usr/bin/env python3
"""Raw S3 PUT throughput against the local S3 server (the benchmark's storage floor).

    s3put.py ENDPOINT BUCKET PREFIX COUNT CONCURRENCY SIZE

Creates BUCKET if needed, then PUTs COUNT objects of SIZE bytes under PREFIX with CONCURRENCY
threads, each on its own keep-alive connection, SigV4-signed with S3_ACCESS_KEY/S3_SECRET_KEY
(region S3_REGION, default us-east-1). Prints "puts=N seconds=S puts_per_s=R".
Loopback endpoints only. Python's GIL makes this a lower bound of what the server can take.
"""
import datetime
import hashlib
import hmac
import http.client
import os
import sys
import threading
import time
from urllib.parse import quote, urlparse


def sign(method, path, body, host, access, secret, region):
    now = datetime.datetime.now(datetime.timezone.utc)
    amzdate, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": amzdate}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, path, "", "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload])
    scope = f"{date}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (date, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, Signature={signature}"
    del headers["host"]
    return headers


def main():
    endpoint, bucket, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    count, concurrency, size = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    url = urlparse(endpoint)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"s3put.py: refusing non-loopback endpoint {endpoint}")
    host = f"{url.hostname}:{url.port}"
    access, secret = os.environ["S3_ACCESS_KEY"], os.environ["S3_SECRET_KEY"]
    region = os.environ.get("S3_REGION", "us-east-1")

    def request(conn, method, path, body):
        conn.request(method, path, body, sign(method, path, body, host, access, secret, region))
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data

    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    status, data = request(conn, "PUT", f"/{bucket}", b"")
    if status not in (200, 409):
        sys.exit(f"s3put.py: create bucket {bucket}: HTTP {status} {data[:200]!r}")
    conn.close()

    body = (b'{"apiVersion":"v1","kind":"ConfigMap","data":{"k":"' + b"x" * size)[:size - 3] + b'"}}'
    next_index, lock, errors = [0], threading.Lock(), []

    def worker():
        c = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        while True:
            with lock:
                i = next_index[0]
                next_index[0] += 1
            if i >= count or errors:
                break
            path = "/" + quote(f"{bucket}/{prefix}/obj-{i:06d}.json")
            try:
                status, data = request(c, "PUT", path, body)
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
        sys.exit("s3put.py: " + errors[0])
    print(f"puts={count} seconds={elapsed:.2f} puts_per_s={count / elapsed:.0f}")


if __name__ == "__main__":
    main()
