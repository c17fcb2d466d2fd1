"""Sweeps: variants of one end-to-end run, their plan under the quotas, and the leaderboard that picks a winner."""
