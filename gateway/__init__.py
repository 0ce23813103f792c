"""The pure core of the privacy gateway: events, consent, sink rules, decisions, operators.

Nothing here touches the network, Kafka, faust or the clock: time, keys and settings are passed in.
"""
