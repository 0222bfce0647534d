"""``python -m cloudserve_runtime --port=8500 --rest_api_port=8501 --model_name=… …``.

The process ends with ``os._exit`` once :func:`main` has shut everything down: TensorFlow and
gRPC keep native daemon threads whose teardown during interpreter finalization can abort the
process, turning a clean exit 0 into SIGABRT.
"""

from __future__ import annotations

import os
import sys

from cloudserve_runtime.server import main

if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
