#!/usr/bin/env python3
"""Writes vectors.json: Signature Version 2 known answers computed by
botocore's own signers (HmacV1Auth for headers, HmacV1QueryAuth for
presigned URLs) at a fixed time. Run from this folder:

    python3 gen.py > vectors.json

The Go tests read the committed output; they never run this script.
"""
import base64
import hashlib
import json
from email.utils import formatdate
from urllib.parse import urlsplit

import botocore
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AK = "AKIDV2EXAMPLE"
SK = "v2-secret/Example+Key=="
NOW = 1767323045  # 2026-01-02T03:04:05Z
EXPIRES_IN = 900


class FixedHeader(HmacV1Auth):
    def _get_date(self):
        return formatdate(NOW, usegmt=True)


class FixedQuery(HmacV1QueryAuth):
    def _get_date(self):
        return str(NOW + EXPIRES_IN)


DELETE_BODY = b"<Delete><Object><Key>k</Key></Object></Delete>"


def md5(b):
    return base64.b64encode(hashlib.md5(b).digest()).decode()


def request(method, url, headers, auth_path=None):
    r = AWSRequest(method=method, url=url, data=b"")
    for k, v in headers:
        r.headers.add_header(k, v)
    r.auth_path = auth_path
    return r


captured = {}


def signer(cls, creds):
    s = cls(creds) if cls is FixedHeader else cls(creds, expires=EXPIRES_IN)
    orig = s.sign_string

    def sign_string(sts):
        captured["sts"] = sts
        return orig(sts)

    s.sign_string = sign_string
    return s


creds = Credentials(AK, SK)
H = "http://127.0.0.1:9000"
cases = [
    ("get object", "GET", H + "/bucket/key.txt", [], None),
    ("get bucket root", "GET", H + "/bucket/", [], None),
    ("put with md5 type and amz headers", "PUT", H + "/bucket/dir/file%20name.txt",
     [("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg=="), ("Content-Type", "text/plain"),
      ("x-amz-meta-Foo", " Bar "), ("X-Amz-Acl", "private"), ("x-amz-storage-class", "STANDARD")], None),
    ("repeated amz header", "PUT", H + "/bucket/k",
     [("x-amz-meta-list", "a"), ("x-amz-meta-list", "b"), ("x-amz-meta-z", "last")], None),
    ("acl sub-resource", "GET", H + "/bucket?acl", [], None),
    ("create multipart upload", "POST", H + "/bucket/big.bin?uploads", [("Content-Type", "application/octet-stream")], None),
    ("upload part", "PUT", H + "/bucket/big.bin?partNumber=2&uploadId=abc%2Bdef%2F1", [], None),
    ("response overrides and unsigned params", "GET",
     H + "/bucket/key?x-id=GetObject&response-content-type=text%2Fplain%3B%20charset%3Dutf-8&versionId=v%201&response-content-disposition=attachment",
     [], None),
    ("list objects v2 (nothing signed in the query)", "GET", H + "/bucket?list-type=2&prefix=a%2Fb&max-keys=10", [], None),
    ("multi-object delete", "POST", H + "/bucket?delete", [("Content-MD5", md5(DELETE_BODY)), ("Content-Type", "application/xml")], None),
    ("tagging", "PUT", H + "/bucket/k?tagging", [], None),
    ("unicode key", "GET", H + "/bucket/%C3%A9t%C3%A9/%E2%82%AC.txt", [], None),
    ("reserved characters in key", "GET", H + "/bucket/a%2Bb%21%40%24%28%29%2C%3B%3D/%7E~", [], None),
    ("virtual-hosted", "GET", "http://bucket.s3.example.test:9000/some/key", [], "/bucket/some/key"),
    ("virtual-hosted bucket root", "GET", "http://bucket.s3.example.test:9000/?versioning", [], "/bucket/"),
    ("x-amz-date header", "GET", H + "/bucket/k", [("x-amz-date", formatdate(NOW, usegmt=True))], None),
]
presigned = [
    ("presigned get", "GET", H + "/bucket/key.txt", [], None),
    ("presigned get with overrides", "GET", H + "/bucket/dir/a%20b?response-content-disposition=attachment%3B%20filename%3Dx&versionId=3", [], None),
    ("presigned put with type", "PUT", H + "/bucket/up.bin", [("Content-Type", "application/octet-stream"), ("x-amz-meta-who", "me")], None),
    ("presigned virtual-hosted", "GET", "http://bucket.s3.example.test:9000/k", [], "/bucket/k"),
]

out = {
    "generator": "botocore " + botocore.__version__ + " HmacV1Auth / HmacV1QueryAuth",
    "access_key_id": AK,
    "secret_access_key": SK,
    "now": NOW,
    "body": DELETE_BODY.decode(),
    "header": [],
    "presigned": [],
}
for name, method, url, headers, auth_path in cases:
    r = request(method, url, headers, auth_path)
    signer(FixedHeader, creds).add_auth(r)
    hdrs = []
    for k in set(r.headers.keys()):
        for v in r.headers.get_all(k):
            hdrs.append([k, v])
    hdrs.sort()
    out["header"].append({"name": name, "method": method, "url": r.url, "headers": hdrs,
                          "virtual_host_bucket": "bucket" if auth_path else "",
                          "string_to_sign": captured["sts"]})
for name, method, url, headers, auth_path in presigned:
    r = request(method, url, headers, auth_path)
    signer(FixedQuery, creds).add_auth(r)
    hdrs = [[k, v] for k, v in headers]
    out["presigned"].append({"name": name, "method": method, "url": r.url, "headers": hdrs,
                             "virtual_host_bucket": "bucket" if auth_path else "",
                             "string_to_sign": captured["sts"]})
print(json.dumps(out, indent=1, sort_keys=True))
