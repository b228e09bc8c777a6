"""Check-in visits to elders by policy tier: records, major changes, the overdue queue."""
