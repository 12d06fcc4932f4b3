"""regledger domain package."""
