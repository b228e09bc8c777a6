"""Realtime: the durable event log, doorbells between processes, the websocket hub and client.

Services publish with `market.realtime.events.event_transaction`; clients read through
`/api/v1/ws` (see `market.realtime.endpoint` for the protocol).
"""
