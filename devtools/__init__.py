"""Dev tools: the local Kafka broker, the demo, the load generator and synthetic traffic.

Installed by the same project, used by `make run`, the tests and the benchmarks. The runtime
(`gateway/`, `topologies/`) never imports this package (ruff bans it), and the image does not
ship it: there `gateway local`, `gateway demo` and `gateway loadgen` do not exist.
"""
