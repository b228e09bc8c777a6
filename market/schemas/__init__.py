"""Request parsing at the edge and response shaping."""
