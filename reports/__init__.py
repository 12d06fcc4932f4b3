"""regledger reports package."""
