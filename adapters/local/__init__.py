"""The ``local`` target: cloudserve's own runtime serving a model repository on this machine."""
