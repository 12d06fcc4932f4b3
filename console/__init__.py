"""regledger console package."""
