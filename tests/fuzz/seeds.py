#!/usr/bin/env python3
"""seeds.py - writes the seed corpora of the fuzz targets into
tests/fuzz/corpus/<target>/: small, meaningful inputs (real paths, query
strings, API bodies, valid cursors, encoded keys, values and mutations),
each in the input layout its target's header comment describes.

Run it again after changing a layout; the files are committed. Inputs the
fuzzer found and `tests/fuzz/merge` kept live beside these (named by their
SHA-1) and are left alone.
"""
import base64
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def crc64(data):
    """CRC-64/XZ, as cellar_hash64."""
    poly = 0xC96C5795D7870F42
    crc = 0xFFFFFFFFFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFFFFFFFFFF


assert crc64(b"123456789") == 0x995DC9BBDF1939FA


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cursor_raw(kind, partition, key):
    return bytes([1, kind]) + struct.pack(">I", partition) + key


def cursor_text(kind, partition, key, table=b"tbl", hashkey=b"row"):
    raw = cursor_raw(kind, partition, key)
    scope = struct.pack(">I", len(table)) + table + (hashkey if kind == 1 else b"")
    check = crc64(scope + raw) & 0xFFFFFFFF
    return b64url(raw + struct.pack(">I", check))


def cell_key(hk, sk):
    return struct.pack(">H", len(hk)) + hk + sk


def value(expiry, version, ctype, data):
    flags = 1 if ctype else 0
    out = bytes([1, flags]) + struct.pack(">IQ", expiry, version)
    if ctype:
        out += bytes([len(ctype)]) + ctype
    return out + data


def mbytes(b):
    return struct.pack(">I", len(b)) + b


def mutation(hk, ops, check=None, decree=7, ts=1700000000000):
    out = bytes([1]) + struct.pack(">QQ", decree, ts) + mbytes(hk)
    if check is None:
        out += bytes([0, 0]) + mbytes(b"") + mbytes(b"") + struct.pack(">Q", 0)
    else:
        ctype, flags, sk, operand, version = check
        out += bytes([ctype, flags]) + mbytes(sk) + mbytes(operand) + struct.pack(">Q", version)
    out += struct.pack(">I", len(ops))
    for op in ops:
        out += op
    return out


def put(sk, val, ctype=b"", ttl=0):
    return bytes([1]) + mbytes(sk) + mbytes(val) + mbytes(ctype) + struct.pack(">q", ttl)


def delete(sk):
    return bytes([2]) + mbytes(sk)


def delete_range(start, stop, flags):
    return bytes([3, flags]) + mbytes(start) + mbytes(stop)


def incr(sk, by, ttl):
    return bytes([4]) + mbytes(sk) + struct.pack(">qq", by, ttl)


def main():
    # url: flags byte (bit 0 base64url), then the request target.
    for i, (flags, t) in enumerate([
            (0, "/v1/tables/users/rows/alice/cells/email"),
            (0, "/v1/tables/users/rows/a%2Fb/cells/%00%FF"),
            (1, "/v1/tables/users/rows/YS9i/cells/AP8?key_encoding=base64url"),
            (0, "/v1/tables/users/rows/alice/cells/"),
            (0, "/v1/tables/users/rows/alice?start=a&stop=z&reverse=true&cursor=AQEAAAAAYQ"),
            (0, "/v1/tables/users/scan?partition=3&hashkey_prefix=al"),
            (0, "/healthz"), (0, "/v1/tables"), (0, "/a/b/c/d/e/f/g/h/i"),
            (0, "/v1/tables/t/rows/%zz"), (0, "/v1/tables/t/rows/%4"),
            (1, "/v1/tables/t/rows/YQ==/cells/Y"), (0, "/v1/tables/users/batch-write"),
            (0, "/v1/tables/u/rows/h/cells/s/incr?key_encoding=percent")]):
        write("url", "%02d" % i, bytes([flags]) + t.encode())

    # query: flags byte, then a raw query string.
    for i, (flags, q) in enumerate([
            (0, "sortkey=a&sortkey=b%00&values=false"),
            (1, "start=YQ&stop=eg&start_inclusive=false&stop_inclusive=true"),
            (0, "limit=100&max_bytes=4194304&reverse=true&filter_type=prefix&filter=ab"),
            (0, "partition=7&hashkey_prefix=us%2Fer&sortkey_prefix=&limit=10000"),
            (0, "ttl=60&encoding=base64&key_encoding=base64url"),
            (0, "limit=-1&limit=9223372036854775808&ttl=007&values=TRUE"),
            (1, "sortkey=YQ==&start=%zz&stop"),
            (0, "cursor=AQIAAAADAAVhbGljZWVtYWls&include_dropped=true&purge=false")]):
        write("query", "%02d" % i, bytes([flags]) + q.encode())

    # base64: bytes and texts.
    for i, d in enumerate([b"", b"f", b"fo", b"foo", b"foob", b"\x00\xff\xfe", b"YS9i",
                           b"AP8", b"AP8=", b"Zm9vYmE=", b"Zm9vYmFy", "h\u00e9llo \u2603".encode(),
                           b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"-_-_", b"+/+/"]):
        write("base64", "%02d" % i, d)

    # etag: header values.
    for i, v in enumerate(['"1"', '"42"', 'W/"42"', '"1", "2", W/"3"', "*", '"x"', '"007"',
                           '"-1"', '"18446744073709551615"', '"18446744073709551616"', "42",
                           '"1""2"', '"1" , , "2"', '"unterminated', "W/", '""', "\t\"9\"\t",
                           '"\x80\xff"', '*, "1"']):
        write("etag", "%02d" % i, v.encode("latin-1"))

    # cursor: flags, partition-count exponent, only, start, stop, payload.
    def cur(name, flags, exp, only, start, stop, payload):
        if isinstance(payload, str):
            payload = payload.encode()
        write("cursor", name, bytes([flags, exp, only, len(start)]) + start +
              bytes([len(stop)]) + stop + payload)
    cur("row-text", 0, 0, 255, b"a", b"z", cursor_text(1, 0, b"m"))
    cur("row-text-rev", 2 | 4, 0, 255, b"a", b"z", cursor_text(1, 0, b"m"))
    cur("row-text-edge", 8, 0, 255, b"a", b"m", cursor_text(1, 0, b"m"))
    cur("row-text-before", 0, 0, 255, b"n", b"", cursor_text(1, 0, b"m"))
    cur("row-end", 4 | 16, 0, 255, b"", b"", cursor_text(1, 0, b"\x00\xff" * 4))
    cur("row-sealed", 32 | 4 | 16, 0, 255, b"", b"", cursor_raw(1, 0, b"key"))
    cur("row-sealed-part", 32 | 4 | 16, 0, 255, b"", b"", cursor_raw(1, 5, b"key"))
    cur("scan-text", 1, 3, 255, b"", b"", cursor_text(2, 5, cell_key(b"alice", b"email")))
    cur("scan-text-start", 1, 3, 5, b"", b"", cursor_text(2, 5, b""))
    for hk in (b"alice", b"bob", b"\x00", b"h" * 40):
        p = crc64(hk) & 7
        cur("scan-sealed-%s" % hk[:8].hex(), 1 | 32, 3, 255, b"", b"",
            cursor_raw(2, p, cell_key(hk, b"s")))
        cur("scan-sealed-wrong-%s" % hk[:8].hex(), 1 | 32, 3, 255, b"", b"",
            cursor_raw(2, (p + 1) & 7, cell_key(hk, b"s")))
    cur("scan-sealed-far", 1 | 32, 10, 255, b"", b"", cursor_raw(2, 4096, b""))
    cur("garbage", 0, 0, 255, b"", b"", "nope!")
    cur("kind-swap", 1, 0, 255, b"", b"", cursor_text(1, 0, b"m"))

    # body: endpoint byte (0 patch, 1 check-and-mutate, 2 batch-write,
    # 3 batch-get, 4 incr; bit 7 a table default_ttl), then the JSON body.
    bodies = [
        (0, {"set": [{"sortkey": "email", "value": "alice@example.com", "ttl": 60}],
             "delete": [{"sortkey": "old"}], "ttl": 30}),
        (0x80, {"set": [{"sortkey_base64": "AP8=", "value_base64": "AAE="}]}),
        (0, {"delete": [{"sortkey": ""}]}),
        (0, {"set": []}),
        (1, {"check": {"sortkey": "c", "type": "value_int_less", "operand": "10"},
             "set": [{"sortkey": "c", "value": "11"}], "return_check_value": True}),
        (1, {"check": {"sortkey_base64": "AA==", "type": "value_match_prefix",
                       "operand_base64": "/w=="}, "delete": [{"sortkey": "x"}]}),
        (1, {"check": {"sortkey": "c", "type": "no_check"}}),
        (2, {"set": [{"hashkey": "h1", "sortkey": "s", "value": "v", "ttl": 5},
                     {"hashkey": "h2", "sortkey": "s", "value": "v"}],
             "delete": [{"hashkey": "h1", "sortkey": "t"}]}),
        (0x82, {"set": [{"hashkey_base64": "AP8=", "sortkey": "s", "value_base64": ""}]}),
        (3, {"keys": [{"hashkey": "alice", "sortkey": "email"},
                      {"hashkey_base64": "AA==", "sortkey_base64": ""}]}),
        (4, {"by": -5, "ttl": -1}),
        (4, {}),
        (0, {"set": [{"sortkey": "s", "value": "v"}] * 17}),
        (0, {"set": [{"sortkey": "s", "value": "v" * 257}]}),
    ]
    for i, (ep, doc) in enumerate(bodies):
        write("body", "%02d" % i, bytes([ep]) + json.dumps(doc).encode())
    write("body", "empty-incr", bytes([4]))
    write("body", "dup-keys", bytes([0]) + b'{"set": [], "set": []}')
    write("body", "not-object", bytes([2]) + b'[1, 2]')

    # keycodec: stored keys.
    for i, k in enumerate([cell_key(b"alice", b"email"), cell_key(b"a", b""),
                           cell_key(b"\xff\xff", b"\xff"), b"\x00\x00abc", b"\x00\x05ab",
                           b"\x01", cell_key(b"h" * 300, b"s" * 10)]):
        write("keycodec", "%02d" % i, k)

    # valcodec: stored values.
    for i, v in enumerate([value(0, 1, b"", b"hello"), value(1700000000, 42, b"text/plain", b"x"),
                           value(0, 0, b"", b""), value(4294967295, 2**64 - 1, b"a" * 255, b"\x00"),
                           b"\x02" + b"\x00" * 13, b"\x01\x02" + b"\x00" * 12]):
        write("valcodec", "%02d" % i, v)

    # envelope: relay envelopes (and answers), whole and cut short.
    def fields(*fs):
        return b"".join(struct.pack("<I", len(f)) + f for f in fs)
    envs = [fields(b"GET", b"/v1/tables/t/rows/a/cells/b?x=1", b"Accept: */*\r\n", b""),
            fields(b"PUT", b"/v1/tables/t/rows/a/cells/b", b"Content-Type: text/plain\r\n",
                   b"hello", b"GET", b"/healthz", b"", b""),
            fields(b"200", b"ETag: \"3\"\r\n", b"{}"), b"", b"\x05\x00\x00\x00abc",
            b"\x01\x00"]
    for i, e in enumerate(envs):
        write("envelope", "%02d" % i, e)

    # mutation: encoded mutations.
    muts = [
        mutation(b"alice", [put(b"email", b"alice@example.com", b"text/plain", 60)]),
        mutation(b"h", [delete(b"a"), put(b"b", b"", b"", 0)]),
        mutation(b"row", [delete_range(b"a", b"z", 1), delete_range(b"", b"", 5)]),
        mutation(b"ctr", [incr(b"n", -3, -1)]),
        mutation(b"h", [put(b"c", b"11")], check=(13, 3, b"c", b"10", 0)),
        mutation(b"h", [delete(b"c")], check=(18, 2, b"c", b"", 9)),
        mutation(b"h", [], check=(0, 2, b"c", b"", 0)),
        mutation(b"h", [delete(b"c")], check=(1, 0, b"c", b"", 0)),
        mutation(b"", []),
        mutation(b"h", [bytes([9])]),
    ]
    for i, m in enumerate(muts):
        write("mutation", "%02d" % i, m)


if __name__ == "__main__":
    main()
