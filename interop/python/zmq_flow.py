"""timed's ZMQ notifications read by pyzmq (libzmq, the reference implementation), as an
exchange's Bitcoin Core subscriber reads them.

    zmq_flow.py PAYER_URL PAYEE_URL ZMQ_ADDRESS

The payee publishes hashtx and hashblock on ZMQ_ADDRESS. A payment must come as hashtx (the
txid's 32 bytes) and its block as hashblock (the hash getblockhash gives), each message three
frames with a 4-byte little-endian sequence number counting up by topic.
"""

import struct
import sys

import zmq
from common import check, nodes

TIMEOUT_MS = 60_000


def main():
    payer_url, payee_url, address = sys.argv[1:4]
    payer, payee = nodes(payer_url, payee_url)
    listed = {n["type"]: n["address"] for n in payee.getzmqnotifications()}
    check(listed.get("pubhashtx") == address and listed.get("pubhashblock") == address, f"{listed}")

    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    socket.setsockopt_string(zmq.SUBSCRIBE, "hashtx")
    socket.setsockopt_string(zmq.SUBSCRIBE, "hashblock")
    socket.connect(address)
    sequences = {}

    def receive():
        topic, body, sequence = socket.recv_multipart()
        check(len(sequence) == 4, f"sequence frame {sequence!r}")
        (number,) = struct.unpack("<I", sequence)
        topic = topic.decode()
        if topic in sequences:
            check(number == sequences[topic] + 1, f"{topic} numbered {number} after {sequences[topic]}")
        sequences[topic] = number
        return topic, body.hex()

    # A subscriber misses what came before its subscription: the first message (a block comes
    # every 2 s) shows it is in place.
    receive()
    txid = payer.sendtoaddress(payee.getnewaddress(), 1.5)
    height = payee.waitfortransaction(txid, 120)["height"]
    block = payee.getblockhash(height)
    heard_tx = heard_block = False
    while not (heard_tx and heard_block):
        topic, body = receive()
        heard_tx |= topic == "hashtx" and body == txid
        heard_block |= topic == "hashblock" and body == block
    print(f"pyzmq {zmq.pyzmq_version()} (libzmq {zmq.zmq_version()}): ok (hashtx {txid}, hashblock {block})")


if __name__ == "__main__":
    main()
