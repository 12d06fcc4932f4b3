"""regledger streams package."""
