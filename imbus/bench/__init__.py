"""`python -m imbus.bench`: measure a running bus server under load, over HTTP on
loopback, the way browsers use it.

Scenarios (one table row each; `--json` adds one JSON object per scenario):
  pingpong   one poller, one message at a time: latency of the whole path
  broadcast  N pollers on one channel: time until the last poller has it, statements
             per broadcast (must not grow with N)
  fanout     N pollers on M channels, R messages/s to random channels: latency, rate
  idle       N polls held open: server RSS and CPU (`--server-pid`), then one broadcast
  soak       senders and churning pollers for `--duration` s: memory over time, no
             error, nothing lost or duplicated
  late       a transaction commits after a later send its poller already passed: the
             row still arrives; its delay from commit to receipt (needs `--dsn`)

Every run reports latency p50/p90/p99/max (from a stamp taken just before the send
call to receipt; see `stats`), delivered/s, lost, duplicated, HTTP and JSON-RPC
errors, and the SQL statements the server ran (`pg_stat_statements` via `--dsn`).

  python -m imbus serve --port 8099 &
  python -m imbus.bench --url http://127.0.0.1:8099 --dsn "<the DSN it printed>" \\
      --server-pid $! broadcast --pollers 10000

Against Odoo 14: `--url http://127.0.0.1:8072 --odoo-db DB --login L --password P`
(`--odoo-send route` to send by `/longpolling/send`; docs/odoo-bench.md).
Only loopback targets are accepted. Every scenario stops by itself (`--deadline`).
"""
