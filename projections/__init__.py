"""regledger projections package."""
