"""The whole stack on one machine (``python -m launcher``): Redis, one worker, the API."""
