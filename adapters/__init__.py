"""Deploy targets, one sub-package each, imported as ``cloudserve_adapters.<name>``."""
