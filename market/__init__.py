"""The eldercare web service: HTTP API, auth, booking lifecycle, realtime hub and CLI."""

__version__ = "0.1.0"
