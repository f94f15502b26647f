#!/usr/bin/env bash
# Prints a markdown example (command and real answer) for each RPC method.
# Usage: scripts/rpc-examples.sh DIR
#   (DIR: a running `timed localnet --nodes 3 --spare 1`: three genesis masternodes and a
#   spare node, node3, that the examples register)
DIR=${1:?usage: $0 LOCALNET_DIR}
CLI=${CLI:-./target/release/time-cli}
C0="$CLI -datadir=$DIR/node0"
C1="$CLI -datadir=$DIR/node1"
C3="$CLI -datadir=$DIR/node3"
ex() { # node method args...   (the answer is also left in $LAST)
  local node=$1; shift
  local cli=$C0 shown=""
  [ "$node" = 1 ] && cli=$C1
  [ "$node" = 3 ] && cli=$C3 && shown="-datadir=node3 "
  LAST=$($cli "$@" 2>&1)
  echo "\`\`\`"
  echo "\$ time-cli $shown$*"
  echo "$LAST" | head -c 1500
  echo "\`\`\`"
}
H1=$($C0 getblockhash 1)
ADDR=$($C1 getnewaddress)
echo "### Blockchain"
ex 0 getblockchaininfo
ex 0 getblockcount
ex 0 getbestblockhash
ex 0 getblockhash 1
ex 0 getblock "$H1" 1
ex 0 getblockheader "$H1"
ex 0 getcommit 1
REWARD=$($C0 getblock "$H1" 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["tx"][0])')
ex 0 gettxout "$REWARD" 0
ex 0 gettxoutsetinfo
ex 0 getconsensusinfo
TX=$($C0 sendtoaddress "$ADDR" 2.5)
ex 0 getrawmempool
ex 0 getmempoolinfo
ex 0 getmempoolentry "$TX"
ex 1 waitfortransaction "$TX" 60
echo "### Raw transactions"
RAW=$($C0 getrawtransaction "$TX")
ex 0 getrawtransaction "$TX" true
ex 0 decoderawtransaction "$RAW"
ex 0 testmempoolaccept "[\"$RAW\"]"
ex 0 sendrawtransaction "$RAW"
echo "### Network"
ex 0 getconnectioncount
ex 0 getpeerinfo
ex 0 getnetworkinfo
ex 0 addnode 127.0.0.1:24202 add
ex 0 setban 10.0.0.9:24200 add 3600
ex 0 listbanned
ex 0 setban 10.0.0.9:24200 remove
echo "### Masternodes"
ex 0 masternodelist
ex 0 masternodestatus
# The spare node (node3) registers itself: its registration carries its operator key's
# proof of possession, so it is made where that key lives. Node 0 funds its wallet first.
OP=$($C3 masternodestatus | python3 -c 'import json,sys; print(json.load(sys.stdin)["operator"])')
P2P=$(sed -n '/^\[network\]/,/^\[/p' "$DIR/node3/config.toml" | grep '^listen' | cut -d'"' -f2)
FUND=$($C0 sendtoaddress "$($C3 getnewaddress)" 1010)
$C3 waitfortransaction "$FUND" 60 >/dev/null
ex 3 masternoderegister bronze "$OP" "$P2P"
MN=$LAST
$C3 waitfortransaction "$MN" 60 >/dev/null
ex 3 listlockedcollaterals
# The new masternode votes a couple of blocks after its registration's block.
sleep 6
ex 3 masternodestatus
ex 3 -named masternodeupdate id="$MN" rewardaddress="$ADDR"
$C3 waitfortransaction "$LAST" 60 >/dev/null
# Revoked, it stops voting; its collateral unlocks once evidence of its last votes can no
# longer enter a block (20 blocks on a local network): asked before, the unlock is refused.
ex 3 masternoderevoke "$MN"
REVOKED=$($C3 waitfortransaction "$LAST" 60 | python3 -c 'import json,sys; print(json.load(sys.stdin)["height"])')
ex 3 masternodeunlock "$MN"
while [ "$($C3 getblockcount)" -lt $((REVOKED + 20)) ]; do sleep 1; done
ex 3 masternodeunlock "$MN"
$C3 waitfortransaction "$LAST" 60 >/dev/null
echo "### Util and control"
ex 0 validateaddress "$ADDR"
ex 0 getmemoryinfo
ex 0 uptime
ex 0 help getblock
echo "### Wallet"
ex 1 getnewaddress
ex 1 getrawchangeaddress
ex 1 getbalance
ex 1 getbalances
ex 1 listunspent
ex 1 listtransactions
ex 1 listsinceblock "$H1"
ex 1 gettransaction "$TX"
PAID=$($C0 sendtoaddress "$ADDR" 1)
echo "\`\`\`"; echo "\$ time-cli sendtoaddress $ADDR 1"; echo "$PAID"; echo "\`\`\`"
# A wallet spends finalized coins only: wait for the change before paying again.
$C0 waitfortransaction "$PAID" 60 >/dev/null
ex 0 sendmany "" "{\"$ADDR\": 0.5}"
COIN=$($C1 listunspent | python3 -c 'import json,sys; c=json.load(sys.stdin)[0]; print(c["txid"], c["vout"])')
set -- $COIN
UNSIGNED=$($C1 createrawtransaction "[{\"txid\":\"$1\",\"vout\":$2}]" "{\"$ADDR\": 1}")
ex 1 createrawtransaction "[{\"txid\":\"$1\",\"vout\":$2}]" "{\"$ADDR\": 1}"
ex 1 signrawtransactionwithwallet "$UNSIGNED"
ex 1 encryptwallet "a long passphrase"
ex 1 walletpassphrase "a long passphrase" 60
ex 1 walletlock
ex 1 sendtoaddress "$ADDR" 1
echo "### Stopping"
ex 0 stop
