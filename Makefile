# Developer targets. The test suite itself: uv run --no-sync pytest -n auto

SOAK_SECONDS ?= 600
UV_RUN = uv run --no-sync

.PHONY: chaos soak

# the short chaos suite (also part of the normal test run)
chaos:
	$(UV_RUN) pytest tests/chaos -m chaos -q -n 2

# the long form: kill rounds and crowd phases for SOAK_SECONDS, then a JSON summary
soak:
	$(UV_RUN) python -m tests.chaos.soak --seconds $(SOAK_SECONDS)
