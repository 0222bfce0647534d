"""The ``azure`` target: Azure Machine Learning managed online endpoints (``azure-ai-ml``)."""
