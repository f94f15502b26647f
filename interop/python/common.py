"""What the interop flows share: a failed check ends the flow with its reason, and the payer's
and payee's nodes through python-bitcoinrpc."""

from bitcoinrpc.authproxy import AuthServiceProxy


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")


def nodes(payer_url, payee_url):
    """The payer's and the payee's JSON-RPC proxies."""
    return AuthServiceProxy(payer_url, timeout=180), AuthServiceProxy(payee_url, timeout=180)
