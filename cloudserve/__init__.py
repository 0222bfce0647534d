"""cloudserve: put a TensorFlow SavedModel into production.

Importing this package is cheap: it pulls in no TensorFlow and no cloud SDK.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
