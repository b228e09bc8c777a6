"""Services: the only place that opens transactions and changes state."""
