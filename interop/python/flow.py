"""An exchange's deposit-and-payout flow, run against timed by a stock Bitcoin RPC library.

    flow.py LIBRARY PAYER_URL PAYEE_URL

LIBRARY is python-bitcoinrpc or python-bitcoinlib, used as their documentation shows, with
no change; each URL is http://user:password@host:port/. The payer's wallet pays the payee's
new address; the payee finds the deposit with listsinceblock, as a deposit loop would; an
overspend and an unknown method come back as the library's own exceptions with Bitcoin
Core's codes. Exits non-zero, saying what differed, on any failure.
"""

import sys
import time
from decimal import Decimal

from common import check


def connect(library, url):
    """A proxy of the library, and the exception type it raises for a JSON-RPC error."""
    if library == "python-bitcoinrpc":
        from bitcoinrpc.authproxy import AuthServiceProxy, JSONRPCException

        return AuthServiceProxy(url, timeout=180), JSONRPCException
    if library == "python-bitcoinlib":
        import bitcoin.rpc

        return bitcoin.rpc.RawProxy(service_url=url, timeout=180), bitcoin.rpc.JSONRPCError
    raise SystemExit(f"unknown library {library}")


def error_code(error):
    """The JSON-RPC error code an exception of either library carries."""
    return getattr(error, "error", {}).get("code")


def main():
    library, payer_url, payee_url = sys.argv[1:4]
    payer, rpc_error = connect(library, payer_url)
    payee, _ = connect(library, payee_url)

    # Read the chain.
    count = payer.getblockcount()
    check(isinstance(count, int) and count >= 0, f"getblockcount gave {count!r}")
    info = payer.getblockchaininfo()
    check(info["blocks"] >= count, f"getblockchaininfo gave {info!r}")
    best = payer.getbestblockhash()
    check(isinstance(best, str) and len(best) == 64, f"getbestblockhash gave {best!r}")
    check(payer.getblockhash(0) == info["genesis"], "getblockhash 0 is not the genesis")

    # A payout's fee rate, as a Bitcoin Core client asks for it.
    estimate = payer.estimatesmartfee(6)
    check(estimate["blocks"] == 6 and estimate["feerate"] > 0, f"estimatesmartfee gave {estimate!r}")

    # The deposit loop's cursor before the payment.
    cursor = payee.listsinceblock()["lastblock"]

    # An address, and a payment to it.
    address = payee.getnewaddress()
    amount = Decimal("12.34560001")
    # A float, as JSON has it: python-bitcoinlib's RawProxy encodes only JSON's own types.
    txid = payer.sendtoaddress(address, float(amount))
    check(isinstance(txid, str) and len(txid) == 64, f"sendtoaddress gave {txid!r}")

    # Finality is awaited; then the deposit loop sees it (its wallet follows the block
    # just after the store, so it is read again until then).
    waited = payee.waitfortransaction(txid, 120)
    check(waited["finalized"] is True, f"waitfortransaction gave {waited!r}")
    deadline = time.monotonic() + 10
    while True:
        since = payee.listsinceblock(cursor)
        deposits = [
            e
            for e in since["transactions"]
            if e["txid"] == txid and e["category"] == "receive" and e["confirmations"] >= 1
        ]
        if deposits or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check(len(deposits) == 1, f"listsinceblock from {cursor} gave {since!r}")
    deposit = deposits[0]
    check(deposit["address"] == address, f"deposit address {deposit!r}")
    check(deposit["amount"] == amount, f"deposit amount {deposit['amount']!r} != {amount}")
    check(deposit["finalized"] is True and deposit["blockhash"], f"deposit {deposit!r}")
    check(since["removed"] == [], f"removed is {since['removed']!r}")
    # The next poll, from the new cursor, does not show it again.
    again = payee.listsinceblock(since["lastblock"])
    check(all(e["txid"] != txid for e in again["transactions"]), f"seen twice: {again!r}")
    # The payer's side: a send entry with its fee.
    sent = payer.gettransaction(txid)
    check(sent["amount"] == -amount and sent["fee"] < 0, f"gettransaction gave {sent!r}")

    # An overspend is the library's exception with Bitcoin Core's code (-6).
    try:
        payer.sendtoaddress(address, 99999999)
        check(False, "an overspend was accepted")
    except rpc_error as error:
        check(error_code(error) == -6, f"overspend error {error!r}")
    # So is an unknown method (HTTP 404 in Bitcoin Core's envelope).
    try:
        payer.nosuchmethod()
        check(False, "an unknown method was answered")
    except rpc_error as error:
        check(error_code(error) == -32601, f"unknown method error {error!r}")
    print(f"{library}: ok (deposit {txid} in block {deposit['blockheight']})")


if __name__ == "__main__":
    main()
