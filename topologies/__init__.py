"""Kafka wiring for the gateway: the local broker, the faust app, agents, tables and sinks.

Depends on `gateway`; `gateway` never imports this package.
"""

__version__ = "0.1.0"
