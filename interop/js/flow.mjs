// An exchange's deposit-and-payout flow, run against timed by a stock Bitcoin RPC library
// from the npm registry, used as its documentation shows, with no change:
//
//     node flow.mjs PAYER_URL PAYEE_URL     (each http://user:password@host:port/)
//
// The same flow as ../python/flow.py. Exits non-zero, saying what differed, on a failure.
import Client from 'bitcoin-core';

function connect(url) {
  const parsed = new URL(url);
  return new Client({
    host: `${parsed.protocol}//${parsed.host}`,
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
    timeout: 180000,
  });
}

function check(condition, what) {
  if (!condition) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
}

async function rpcError(call) {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return null;
}

const [payerUrl, payeeUrl] = process.argv.slice(2);
const payer = connect(payerUrl);
const payee = connect(payeeUrl);
const show = (value) => JSON.stringify(value);

// Read the chain.
const count = await payer.command('getblockcount');
check(Number.isInteger(count) && count >= 0, `getblockcount gave ${show(count)}`);
const info = await payer.command('getblockchaininfo');
check(info.blocks >= count, `getblockchaininfo gave ${show(info)}`);
const best = await payer.command('getbestblockhash');
check(typeof best === 'string' && best.length === 64, `getbestblockhash gave ${show(best)}`);
check((await payer.command('getblockhash', 0)) === info.genesis, 'getblockhash 0 is not the genesis');

// The deposit loop's cursor before the payment.
const cursor = (await payee.command('listsinceblock')).lastblock;

// An address, and a payment to it.
const address = await payee.command('getnewaddress');
const amount = 12.34560002;
const txid = await payer.command('sendtoaddress', address, amount);
check(typeof txid === 'string' && txid.length === 64, `sendtoaddress gave ${show(txid)}`);

// Finality is awaited; then the deposit loop sees it (the wallet follows the block just
// after the store, so it is read again until then).
const waited = await payee.command('waitfortransaction', txid, 120);
check(waited.finalized === true, `waitfortransaction gave ${show(waited)}`);
const deadline = Date.now() + 10000;
let since;
let deposits;
for (;;) {
  since = await payee.command('listsinceblock', cursor);
  deposits = since.transactions.filter(
    (e) => e.txid === txid && e.category === 'receive' && e.confirmations >= 1,
  );
  if (deposits.length > 0 || Date.now() > deadline) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
check(deposits.length === 1, `listsinceblock from ${cursor} gave ${show(since)}`);
const [deposit] = deposits;
check(deposit.address === address, `deposit address ${show(deposit)}`);
check(deposit.amount === amount, `deposit amount ${deposit.amount} != ${amount}`);
check(deposit.finalized === true && deposit.blockhash.length === 64, `deposit ${show(deposit)}`);
check(Array.isArray(since.removed) && since.removed.length === 0, `removed is ${show(since.removed)}`);
const again = await payee.command('listsinceblock', since.lastblock);
check(again.transactions.every((e) => e.txid !== txid), `seen twice: ${show(again)}`);
const sent = await payer.command('gettransaction', txid);
check(sent.amount === -amount && sent.fee < 0, `gettransaction gave ${show(sent)}`);

// An overspend, and an unknown method, are the library's RpcError with Bitcoin Core's codes.
const overspend = await rpcError(() => payer.command('sendtoaddress', address, 99999999));
check(overspend !== null && overspend.code === -6, `overspend error ${overspend}`);
const unknown = await rpcError(() => payer.command('nosuchmethod'));
check(unknown !== null && unknown.code === -32601, `unknown method error ${unknown}`);
console.log(`bitcoin-core (npm): ok (deposit ${txid} in block ${deposit.blockheight})`);
