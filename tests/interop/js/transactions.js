// KafkaJS's transactional producer against Strand, driven by test_exactly_once.py.
//
//   node transactions.js BOOTSTRAP TOPIC
//
// Commits a transaction of 3 records, aborts one of 2, commits one of 1 (records
// "commit-<n>", "abort-<n>"), then starts a second producer with the same transactional
// id and checks that the first one is fenced. Prints one JSON line with what happened.
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'kafkajs-interop', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const id = `kafkajs-${topic}`;
  const first = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
  await first.connect();
  const send = async (producer, values, commit) => {
    const txn = await producer.transaction();
    await txn.send({ topic, messages: values.map((v) => ({ value: v })) });
    if (commit) await txn.commit(); else await txn.abort();
  };
  await send(first, ['commit-0', 'commit-1', 'commit-2'], true);
  await send(first, ['abort-0', 'abort-1'], false);
  await send(first, ['commit-3'], true);

  const second = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
  await second.connect();
  await send(second, ['commit-4'], true);
  let fenced = null;
  try {
    await send(first, ['late'], true);
  } catch (e) {
    fenced = e.type || e.name || String(e);
  }
  await second.disconnect();
  await first.disconnect().catch(() => {});
  console.log(JSON.stringify({ ok: true, fenced }));
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, error: String(e && e.stack || e) }));
  process.exit(1);
});
