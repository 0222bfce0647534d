"""cloudserve runtime: a TensorFlow-Serving-compatible batching model server."""
