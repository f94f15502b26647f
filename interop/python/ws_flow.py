"""timed's WebSocket subscriptions read by the websockets library (PyPI), as an app's
JSON-RPC 2.0 subscriber reads them.

    ws_flow.py PAYER_URL PAYEE_URL WEBSOCKET_URL

Connects to the payee's WebSocket listener ([rpc] websocket; HTTP Basic at the upgrade), subscribes
to finalized transactions and to a fresh address, pays that address from the payer, and must
hear the payment on both subscriptions, with the block that finalized it.
"""

import base64
import json
import sys
from urllib.parse import urlparse

from common import check, nodes
from websockets.sync.client import connect

TIMEOUT_S = 60


def main():
    payer_url, payee_url, websocket = sys.argv[1:4]
    payer, payee = nodes(payer_url, payee_url)
    url = urlparse(payee_url)
    basic = base64.b64encode(f"{url.username}:{url.password}".encode()).decode()
    address = payee.getnewaddress()
    with connect(websocket, additional_headers={"Authorization": f"Basic {basic}"}) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "subscribetransactions", "params": []}))
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "subscribeaddresses", "params": [[address]]}))
        subscriptions = {}
        while len(subscriptions) < 2:
            answer = json.loads(ws.recv(timeout=TIMEOUT_S))
            if "id" in answer:
                check("result" in answer, f"subscription refused: {answer}")
                subscriptions[answer["result"]] = answer["id"]
        txid = payer.sendtoaddress(address, 1.25)
        height = payee.waitfortransaction(txid, 120)["height"]
        block = payee.getblockhash(height)
        heard = {}
        while len(heard) < 2:
            note = json.loads(ws.recv(timeout=TIMEOUT_S))
            check(note.get("jsonrpc") == "2.0", f"not JSON-RPC 2.0: {note}")
            params = note["params"]
            result = params["result"]
            if result["txid"] == txid:
                heard[note["method"]] = result
                check(subscriptions.get(params["subscription"]) is not None, f"unknown subscription: {note}")
        check(heard["transaction"]["blockhash"] == block and heard["transaction"]["finalized"], f"{heard}")
        received = heard["address"]
        check(received["address"] == address and received["category"] == "receive", f"{received}")
        check(abs(received["amount"] - 1.25) < 1e-9 and received["height"] == height, f"{received}")
    print(f"websockets: ok (transaction and address notifications for {txid} in block {block})")


if __name__ == "__main__":
    main()
