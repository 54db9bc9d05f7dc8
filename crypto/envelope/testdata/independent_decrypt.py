#!/usr/bin/env python3
"""An independent decrypter for s3seal envelope objects, written from
FORMAT.md alone (Python 3 and the 'cryptography' package), used to check
that the specification is complete: it decrypts every vector in
vectors.json (format version 1) and vectors_v2.json (format version 2,
with part-set records and key objects), and checks the SSE-C and key-ring
vectors of ../../keys/local/testdata/vectors.json.

    python3 independent_decrypt.py
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand
from cryptography.hazmat.primitives import hmac as chmac

HERE = os.path.dirname(os.path.abspath(__file__))
CHUNK, TAG, TRAILER = 65536, 16, 80


def hkdf(ikm, salt, info, n=32):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt or None, info=info).derive(ikm)


def extract(ikm, salt=b""):
    h = chmac.HMAC(salt or b"\x00" * 32, hashes.SHA256())
    h.update(ikm)
    return h.finalize()


def expand(prk, info, n=32):
    return HKDFExpand(algorithm=hashes.SHA256(), length=n, info=info).derive(prk)


def lp(b):
    return struct.pack(">I", len(b)) + b


def local_unwrap(master, name, wrapped):
    kek = hkdf(master, b"", b"s3seal\x01local-wrap")
    assert wrapped[0] == 1 and len(wrapped) == 61
    return AESGCM(kek).decrypt(wrapped[1:13], wrapped[13:], b"\x01" + name.encode())


def parse_header(value):
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert raw[0] == 1 and raw[1] == 1 and raw[2] & ~1 == 0 and raw[3] in (1, 2)
    i = 5 + raw[4]
    key_id = raw[5:i].decode("ascii")
    w = struct.unpack(">H", raw[i:i + 2])[0]
    wrapped = raw[i + 2:i + 2 + w]
    j = i + 2 + w
    size = struct.unpack(">Q", raw[j:j + 8])[0]
    alg = raw[j + 8]
    clen = {0: 0, 1: 4, 2: 4, 3: 8, 4: 20, 5: 32}[alg]
    k = j + 9 + clen
    commitment = raw[k:k + 32]
    salt = raw[k + 32:k + 64]
    sealed = raw[k + 64:k + 112]
    assert len(raw) == k + 112
    return dict(multipart=bool(raw[2] & 1), provider=raw[3], key_id=key_id, wrapped=wrapped,
                size=size, commitment=commitment, salt=salt, sealed=sealed, aad=raw[:k + 32])


def unseal(h, data_key, bucket, key):
    info = b"s3seal\x01\x01seal" + lp(bucket.encode()) + lp(key.encode())
    sk = hkdf(data_key, h["salt"], info)
    object_key = AESGCM(sk).decrypt(b"\x00" * 12, h["sealed"], h["aad"])
    prk = extract(object_key)
    if not hashlib.sha256(expand(prk, b"s3seal\x01\x01commit")).digest() == hashlib.sha256(h["commitment"]).digest():
        raise ValueError("commitment mismatch")
    return prk


def segment_key(prk, n):
    return expand(prk, b"s3seal\x01\x01content" + struct.pack(">I", n))


def nonce(counter, final):
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def parse_trailer(pt, version=1):
    assert len(pt) == 64 and pt[0] == version
    length = struct.unpack(">Q", pt[1:9])[0]
    alg = pt[9]
    clen = {0: 0, 1: 4, 2: 4, 3: 8, 4: 20, 5: 32}[alg]
    assert pt[10 + clen:] == b"\x00" * (64 - 10 - clen)
    return length, alg, pt[10:10 + clen]


def decrypt_segment(key, ct):
    """Decrypts one whole segment whose ciphertext size is known."""
    g = AESGCM(key)
    data = len(ct) - TRAILER
    n = (data + CHUNK + TAG - 1) // (CHUNK + TAG)
    out = b"".join(g.decrypt(nonce(i, False), ct[i * (CHUNK + TAG):min((i + 1) * (CHUNK + TAG), data)], None)
                   for i in range(n))
    length, alg, value = parse_trailer(g.decrypt(nonce(n, True), ct[data:], None))
    assert length == len(out)
    return out, (alg, value)


def split_parts(keyf, ct):
    """Finds the part boundaries of a multipart object by authenticating
    each part's trailer (FORMAT.md, 'Decrypting without the part sizes')."""
    parts, pos, n = [], 0, 1
    while pos < len(ct):
        g, chunks = AESGCM(keyf(n)), 0
        p = pos
        while True:
            try:
                g.decrypt(nonce(chunks, True), ct[p:p + TRAILER], None)
                end = p + TRAILER
                break
            except Exception:
                pass
            if p + CHUNK + TAG + TRAILER <= len(ct):
                try:
                    g.decrypt(nonce(chunks, False), ct[p:p + CHUNK + TAG], None)
                    p += CHUNK + TAG
                    chunks += 1
                    continue
                except Exception:
                    pass
            for l in range(TAG + 1, CHUNK + TAG):
                if p + l + TRAILER > len(ct):
                    raise ValueError("no trailer")
                try:
                    g.decrypt(nonce(chunks + 1, True), ct[p + l:p + l + TRAILER], None)
                    end = p + l + TRAILER
                    break
                except Exception:
                    continue
            break
        parts.append(ct[pos:end])
        pos, n = end, n + 1
    return parts


# Format version 2 (FORMAT.md sections 4 to 10).

CHUNK2 = 16 + 12 + CHUNK + TAG   # salt, nonce, data, tag
TRAILER2 = 16 + 12 + 64 + TAG


def label(version, name):
    return b"s3seal" + bytes([version, 1]) + name


def parse_header_v2(value):
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == value
    assert raw[0] == 2 and raw[1] == 1 and raw[2] & ~3 == 0 and 1 <= raw[3] <= 5
    i = 5 + raw[4]
    key_id = raw[5:i].decode("ascii")
    w = struct.unpack(">H", raw[i:i + 2])[0]
    key_object = bool(raw[2] & 2)
    assert (w == 32) if key_object else (1 <= w <= 384)
    wrapped = raw[i + 2:i + 2 + w]
    j = i + 2 + w
    size = struct.unpack(">Q", raw[j:j + 8])[0]
    alg = raw[j + 8]
    clen = {0: 0, 1: 4, 2: 4, 3: 8, 4: 20, 5: 32}[alg]
    k = j + 9 + clen
    assert len(raw) == k + 32 + 32 + 60
    return dict(raw=raw, multipart=bool(raw[2] & 1), key_object=key_object, provider=raw[3], key_id=key_id,
                wrapped=wrapped, size=size, commitment=raw[k:k + 32], salt=raw[k + 32:k + 64],
                sealed=raw[k + 64:], aad=raw[:k + 32])


def unseal_v2(h, data_key, bucket, key):
    info = label(2, b"seal") + lp(bucket.encode()) + lp(key.encode())
    sk = hkdf(data_key, h["salt"], info)
    object_key = AESGCM(sk).decrypt(h["sealed"][:12], h["sealed"][12:], h["aad"])
    prk = extract(object_key)
    if not hmac.compare_digest(expand(prk, label(2, b"commit")), h["commitment"]):
        raise ValueError("commitment mismatch")
    return prk


def open_part_set(prk, h, bucket, key, value):
    rec = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert len(rec) == 83 and rec[0] == 2
    # The flags byte with bit 1 (key object) cleared: rotation may move
    # the wrapped key into or out of a key object without touching the record.
    kind = h["raw"][:2] + bytes([h["raw"][2] & ~0x02])
    msg = label(2, b"parts") + kind + h["commitment"] + lp(bucket.encode()) + lp(key.encode()) + rec[:51]
    mac = hmac.new(expand(prk, label(2, b"parts")), msg, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, rec[51:]):
        raise ValueError("part-set record does not authenticate")
    n, p, last = struct.unpack(">HQQ", rec[1:19])
    assert 1 <= n <= 10000 and (n > 1 or p == last)
    return n, p, last, rec[19:51]


def stored_size_v2(n):
    return n + (16 + 12 + TAG) * ((n + CHUNK - 1) // CHUNK) + TRAILER2


def decrypt_segment_v2(prk, number, ct, length):
    """Decrypts one version 2 segment of the given plaintext length; returns
    the plaintext, the trailer's checksum and the segment's salt."""
    assert len(ct) == stored_size_v2(length)
    salt = ct[:16]
    g = AESGCM(expand(prk, label(2, b"content") + struct.pack(">I", number) + salt))
    chunks, out, pos = (length + CHUNK - 1) // CHUNK, b"", 0
    for i in range(chunks + 1):
        trailer = i == chunks
        size = TRAILER2 if trailer else min(CHUNK, length - i * CHUNK) + 16 + 12 + TAG
        c = ct[pos:pos + size]
        assert c[:16] == salt, "chunk of another encryption"
        pt = g.decrypt(c[16:28], c[28:], struct.pack(">Q", i) + bytes([1 if trailer else 0]))
        if trailer:
            n, alg, value = parse_trailer(pt, version=2)
            assert n == length == len(out)
        else:
            out += pt
        pos += size
    assert pos == len(ct)
    return out, (alg, value), salt


def check_v2(v):
    master = bytes.fromhex(v["master_key"])
    h = parse_header_v2(v["metadata"])
    wrapped = h["wrapped"]
    if h["key_object"]:
        wrapped = bytes.fromhex(v["key_object_content"])
        assert hashlib.sha256(wrapped).digest() == h["wrapped"], "key object does not match its reference"
        assert v["key_object_name"] == ".s3seal/keys/" + h["wrapped"].hex()
    data_key = local_unwrap(master, h["key_id"], wrapped)
    prk = unseal_v2(h, data_key, v["bucket"], v["key"])
    ct = bytes.fromhex(v["ciphertext"]) if v.get("ciphertext") else open(
        os.path.join(HERE, "vectors", v["name"] + ".bin"), "rb").read()
    if h["multipart"]:
        n, p, last, digest = open_part_set(prk, h, v["bucket"], v["key"], v["parts_record"])
        sizes = [p] * (n - 1) + [last]
        assert len(ct) == sum(stored_size_v2(s) for s in sizes), "stored size differs from the part set"
        plain, salts, pos = b"", b"", 0
        for i, s in enumerate(sizes):
            seg, checksum, salt = decrypt_segment_v2(prk, i + 1, ct[pos:pos + stored_size_v2(s)], s)
            plain += seg
            salts += salt
            pos += stored_size_v2(s)
        assert hashlib.sha256(salts).digest() == digest, "a part is not the upload that was completed"
    else:
        assert len(ct) == stored_size_v2(h["size"])
        plain, checksum, _ = decrypt_segment_v2(prk, 0, ct, h["size"])
    if v.get("trailing_checksum"):
        alg, value = v["trailing_checksum"].split(":")
        assert checksum[1].hex() == value
    assert plain == expected(v), v["name"]
    refuses_moved(lambda: unseal_v2(h, data_key, v["bucket"], v["key"] + "x"))
    print("ok", v["name"], len(plain), "bytes")


def expected(v):
    """The vector's plaintext: its parts, hex or "pattern:N"."""
    want = b""
    for part in v["parts"]:
        want += bytes(i % 251 for i in range(int(part[8:]))) if part.startswith("pattern:") else bytes.fromhex(part)
    return want


def refuses_moved(unseal_elsewhere):
    """Unsealing under another name must fail."""
    try:
        unseal_elsewhere()
    except Exception as e:
        assert "moved" not in str(e)
        return
    raise AssertionError("moved object opened")


def main():
    for v in json.load(open(os.path.join(HERE, "vectors_v2.json"))):
        check_v2(v)
    vectors = json.load(open(os.path.join(HERE, "vectors.json")))
    for v in vectors:
        master = bytes.fromhex(v["master_key"])
        h = parse_header(v["metadata"])
        data_key = local_unwrap(master, h["key_id"], h["wrapped"])
        prk = unseal(h, data_key, v["bucket"], v["key"])
        ct = bytes.fromhex(v["ciphertext"]) if v.get("ciphertext") else open(
            os.path.join(HERE, "vectors", v["name"] + ".bin"), "rb").read()
        if h["multipart"]:
            segs = split_parts(lambda n: segment_key(prk, n), ct)
            plain = b"".join(decrypt_segment(segment_key(prk, i + 1), s)[0] for i, s in enumerate(segs))
        else:
            plain, _ = decrypt_segment(segment_key(prk, 0), ct)
            assert len(plain) == h["size"]
        assert plain == expected(v), v["name"]
        refuses_moved(lambda: unseal(h, data_key, v["bucket"], v["key"] + "x"))
        print("ok", v["name"], len(plain), "bytes")
    kv = json.load(open(os.path.join(HERE, "..", "..", "keys", "local", "testdata", "vectors.json")))
    master = bytes.fromhex(kv["master_key"])
    assert local_unwrap(master, kv["key_name"], bytes.fromhex(kv["wrapped"])).hex() == kv["data_key"]
    for s in kv["sse_c"]:
        info = b"s3seal\x01sse-c" + lp(s["bucket"].encode()) + lp(s["key"].encode())
        assert hkdf(master, b"", info).hex() == s["sse_c_key"], s
    print("ok key ring wrap and SSE-C vectors")


if __name__ == "__main__":
    sys.exit(main())
