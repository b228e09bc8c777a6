"""Emergency calls: acknowledgement, escalation on a timer, the call record."""
