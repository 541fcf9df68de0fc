#!/usr/bin/env python3
"""Independent check of docs/vectors/vault-v1.json.

Recomputes every envelope from the vector's inputs with PyNaCl's
XChaCha20-Poly1305 (libsodium) and the standard library's HMAC/SHA-256,
following the format in docs/vault.md, without any consentry code.

    pip install pynacl && python3 docs/vectors/check_vault_v1.py
"""
import hashlib
import hmac
import json
import pathlib
import struct
import sys

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt as seal
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt as open_

DOMAIN = b"consentry/vault/v1"


def hkdf_expand(prk: bytes, info: bytes) -> bytes:
    # RFC 5869 expand, one block (32 bytes of output).
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def lp(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def check(v: dict) -> None:
    key = bytes.fromhex(v["key"])
    nonce = bytes.fromhex(v["nonce"])
    plaintext = bytes.fromhex(v["plaintext"])
    key_id = v["key_id"].encode()
    header = bytes([1, len(key_id)]) + key_id
    k_enc = hkdf_expand(key, b"consentry/vault/v1/encryption")
    k_commit = hkdf_expand(key, b"consentry/vault/v1/commitment")
    aad = lp(DOMAIN) + lp(v["label"].encode()) + lp(v["tenant"].encode()) + lp(v["user"].encode())
    if v["label"] == "credential":
        aad += lp(v["connection"].encode()) + lp(v["kind"].encode())
    else:
        aad += lp(v["data_key_id"].encode())
    aad += lp(header)
    assert aad.hex() == v["aad"], f"{v['name']}: aad"
    commitment = hmac.new(k_commit, b"consentry/vault/v1/commit" + header + nonce, hashlib.sha256).digest()
    envelope = header + nonce + commitment + seal(plaintext, aad, nonce, k_enc)
    assert envelope.hex() == v["envelope"], f"{v['name']}: envelope"
    assert open_(envelope[len(header) + 24 + 32:], aad, nonce, k_enc) == plaintext
    print(f"ok  {v['name']}")


def main() -> int:
    path = pathlib.Path(__file__).with_name("vault-v1.json")
    doc = json.loads(path.read_text())
    for v in doc["vectors"]:
        check(v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
