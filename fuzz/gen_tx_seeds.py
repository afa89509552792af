#!/usr/bin/env python3
"""Writes seeds/transaction_decode/ from a running `noesis dev` node.

Signs transactions of every accepted type (legacy, EIP-2930, EIP-1559, EIP-7702) with the dev accounts via eth_sendTransaction, reads them back with
eth_getTransactionByHash, RLP-encodes them to their EIP-2718 form, and checks each blob
against the node's own hash (web3_sha3(raw) == tx hash) before writing it.

    noesis dev --datadir /tmp/fuzzseed --http-port 38545 &   # a fresh datadir
    python3 fuzz/gen_tx_seeds.py http://127.0.0.1:38545 fuzz/seeds/transaction_decode
"""
import json, os, sys, urllib.request

RPC = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:38545"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "seeds/transaction_decode")
DEV0 = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
DEV1 = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"


def rpc(method, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(RPC, body, {"content-type": "application/json"})
    resp = json.load(urllib.request.urlopen(req))
    if "error" in resp:
        raise RuntimeError(f"{method}: {resp['error']}")
    return resp["result"]


def rlp(item):
    if isinstance(item, list):
        payload = b"".join(rlp(x) for x in item)
        return length_prefix(len(payload), 0xC0) + payload
    if len(item) == 1 and item[0] < 0x80:
        return item
    return length_prefix(len(item), 0x80) + item


def length_prefix(n, offset):
    if n < 56:
        return bytes([offset + n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(b)]) + b


def q(h):  # quantity -> minimal big-endian bytes
    n = int(h, 16)
    return n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""


def d(h):  # data -> bytes
    return bytes.fromhex(h[2:]) if h else b""


def access_list(tx):
    return [[d(e["address"]), [d(k) for k in e["storageKeys"]]] for e in tx.get("accessList") or []]


def encode(tx):
    ty = int(tx["type"], 16)
    to = d(tx["to"]) if tx.get("to") else b""
    sig = [q(tx.get("yParity") or tx["v"]), q(tx["r"]), q(tx["s"])]
    if ty == 0:
        return rlp([q(tx["nonce"]), q(tx["gasPrice"]), q(tx["gas"]), to, q(tx["value"]), d(tx["input"]),
                    q(tx["v"]), q(tx["r"]), q(tx["s"])])
    if ty == 1:
        body = [q(tx["chainId"]), q(tx["nonce"]), q(tx["gasPrice"]), q(tx["gas"]), to, q(tx["value"]),
                d(tx["input"]), access_list(tx)] + sig
    elif ty == 2:
        body = [q(tx["chainId"]), q(tx["nonce"]), q(tx["maxPriorityFeePerGas"]), q(tx["maxFeePerGas"]),
                q(tx["gas"]), to, q(tx["value"]), d(tx["input"]), access_list(tx)] + sig
    elif ty == 4:
        auths = [[q(a["chainId"]), d(a["address"]), q(a["nonce"]), q(a["yParity"]), q(a["r"]), q(a["s"])]
                 for a in tx["authorizationList"]]
        body = [q(tx["chainId"]), q(tx["nonce"]), q(tx["maxPriorityFeePerGas"]), q(tx["maxFeePerGas"]),
                q(tx["gas"]), to, q(tx["value"]), d(tx["input"]), access_list(tx), auths] + sig
    else:
        raise ValueError(f"type {ty}")
    return bytes([ty]) + rlp(body)


REQUESTS = {
    "legacy_transfer": {"from": DEV0, "to": DEV1, "value": "0xde0b6b3a7640000", "gasPrice": "0x77359400", "gas": "0x5208"},
    "legacy_with_data": {"from": DEV0, "to": DEV1, "value": "0x0", "gasPrice": "0x77359400", "gas": "0x186a0",
                         "input": "0xa9059cbb00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8"
                                  "0000000000000000000000000000000000000000000000000de0b6b3a7640000"},
    "eip2930_access_list": {"from": DEV0, "to": DEV1, "value": "0x1", "gasPrice": "0x77359400", "gas": "0x186a0",
                            "accessList": [{"address": DEV1, "storageKeys": [
                                "0x0000000000000000000000000000000000000000000000000000000000000001",
                                "0x290decd9548b62a8d60345a988386fc84ba6bc95484008f6362f93160ef3e563"]}]},
    "eip1559_transfer": {"from": DEV0, "to": DEV1, "value": "0x2386f26fc10000", "gas": "0x5208"},
    # (No contract creation: eth_sendTransaction without "to" is refused by the node.)
    "eip7702_set_code": {"from": DEV1, "to": DEV1, "value": "0x0", "gas": "0x186a0",
                         "authorizationList": [{"chainId": "0x1ca9", "address": DEV0, "nonce": "0x0",
                                                "yParity": "0x1", "r": "0x" + "11" * 32, "s": "0x" + "22" * 32}]},
}

os.makedirs(OUT, exist_ok=True)
for name, request in REQUESTS.items():
    try:
        h = rpc("eth_sendTransaction", request)
    except RuntimeError as e:
        print(f"skip {name}: {e}")
        continue
    tx = rpc("eth_getTransactionByHash", h)
    raw = encode(tx)
    assert rpc("web3_sha3", "0x" + raw.hex()) == h, f"{name}: re-encoding does not hash to {h}"
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(raw)
    print(f"{name}: type {tx['type']} {len(raw)} bytes, {h}")
