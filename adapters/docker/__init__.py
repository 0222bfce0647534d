"""The ``docker`` target: one cloudserve runtime container per model on a Docker host."""
