"""The matching engine: pure functions from open requests and helpers to assignments."""
