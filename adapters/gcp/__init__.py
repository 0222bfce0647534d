"""The ``gcp`` deploy target: Vertex AI (``aiplatform`` v1) and Cloud Storage.

Importing this package imports no Google library; the SDKs load on first use
(:mod:`cloudserve_adapters.gcp.sdk`).
"""
