"""A consume-transform-produce application (confluent-kafka), run as its own process by
test_exactly_once.py so that it can be killed with SIGKILL at any point.

    python ctp_app.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID

It reads INPUT as a member of GROUP, writes one OUTPUT record per input record
(``out-<input value>``) and commits its input offsets in the same transaction
(send_offsets_to_transaction), a transaction per batch of up to 50 records. It
exits 0 once it has caught up and been idle for 3 seconds. An abortable error
aborts the transaction and rewinds to the committed offsets; a fatal one (a
fenced producer) exits 2, for the supervisor to start it again.
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def rewind(consumer: Consumer) -> None:
    parts = consumer.assignment()
    if not parts:
        return
    committed = consumer.committed(parts, timeout=10)
    for tp in committed:
        consumer.seek(TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0))


def main() -> int:
    bootstrap, input_topic, output_topic, group, txn_id = sys.argv[1:6]
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": 6000,
    })
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "transactional.id": txn_id,
        "transaction.timeout.ms": 10000,
        "linger.ms": 5,
    })
    producer.init_transactions(30)
    consumer.subscribe([input_topic])
    idle_since = time.monotonic()
    while True:
        msgs = [m for m in consumer.consume(50, 0.5) if m.error() is None]
        if not msgs:
            if time.monotonic() - idle_since > 3 and consumer.assignment():
                break
            continue
        idle_since = time.monotonic()
        try:
            producer.begin_transaction()
            for m in msgs:
                producer.produce(output_topic, key=m.key(), value=b"out-" + m.value(),
                                 partition=m.partition())
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()),
                consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
        except KafkaException as e:
            err = e.args[0]
            if err.fatal():
                print(f"fatal: {err}", file=sys.stderr, flush=True)
                return 2
            print(f"aborting: {err}", file=sys.stderr, flush=True)
            try:
                producer.abort_transaction(30)
            except KafkaException as e2:
                if e2.args[0].fatal():
                    return 2
            rewind(consumer)
    consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
