"""Multi-turn RFT agents: the rollout contract, a team's agent file packaged as a Lambda, the pre-job check."""
