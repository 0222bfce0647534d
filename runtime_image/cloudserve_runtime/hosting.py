"""Cloud hosting contracts: SageMaker's ``serve`` and Vertex AI's ``AIP_*`` environment -> flags.

SageMaker starts the container as ``docker run <image> serve``; the image's ENTRYPOINT puts its
``--flag=value`` flags first, so ``serve`` is recognised as the first argument that is not such a
flag. It stands for ``--rest_api_port=${SAGEMAKER_BIND_TO_PORT:-8080}
--model_base_path=/opt/ml/model --model_name=${MODEL_NAME:-model}`` placed where ``serve`` is:
flags before it (the ENTRYPOINT's) lose to it, flags after it win. With
``SAGEMAKER_TFS_ENABLE_BATCHING=true`` it also enables batching with the
``SAGEMAKER_TFS_{MAX_BATCH_SIZE,BATCH_TIMEOUT_MICROS,NUM_BATCH_THREADS,MAX_ENQUEUED_BATCHES}``
parameters (defaults 8 and 1000 as in SageMaker's TF Serving container).

Vertex AI sets ``AIP_HTTP_PORT``, ``AIP_HEALTH_ROUTE``, ``AIP_PREDICT_ROUTE`` and
``AIP_STORAGE_URI``. They become ``--rest_api_port``, ``--rest_api_health_route``,
``--rest_api_predict_route`` and ``--saved_model_uri``, each only when the command line does not
set that flag itself (for ``AIP_STORAGE_URI``: nor ``--model_base_path``/``--model_config_file``).

:func:`stage_saved_model` turns a ``--saved_model_uri`` into a local base path, downloading
``gs://`` URIs with google-cloud-storage when that package is installed (it is not part of the
runtime image).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping

from cloudserve_runtime.storage import SAVED_MODEL_FILES

__all__ = ["HostingError", "hosting_argv", "stage_saved_model"]

SAGEMAKER_PORT = 8080
SAGEMAKER_MODEL_DIR = "/opt/ml/model"
_SAGEMAKER_BATCHING = (
    ("max_batch_size", "SAGEMAKER_TFS_MAX_BATCH_SIZE", "8"),
    ("batch_timeout_micros", "SAGEMAKER_TFS_BATCH_TIMEOUT_MICROS", "1000"),
    ("num_batch_threads", "SAGEMAKER_TFS_NUM_BATCH_THREADS", None),
    ("max_enqueued_batches", "SAGEMAKER_TFS_MAX_ENQUEUED_BATCHES", None),
)
_VERTEX_FLAGS = (
    ("rest_api_port", "AIP_HTTP_PORT"),
    ("rest_api_health_route", "AIP_HEALTH_ROUTE"),
    ("rest_api_predict_route", "AIP_PREDICT_ROUTE"),
)
_TRUE = {"true", "1", "yes", "t", "y", "on"}
_FALSE = {"false", "0", "no", "f", "n", "off", ""}


class HostingError(Exception):
    """A hosting environment variable or model URI that cannot be used; the message is one line."""


def hosting_argv(argv: list[str], env: Mapping[str, str]) -> list[str]:
    """Returns ``argv`` with the SageMaker ``serve`` argument and Vertex's ``AIP_*`` applied.

    Args:
        argv: the command line without the program name.
        env: the process environment.

    Returns:
        Server flags for :func:`cloudserve_runtime.flags.parse_flags`.

    Raises:
        HostingError: a hosting variable that is not a number where one is needed, or a bad
            ``SAGEMAKER_TFS_ENABLE_BATCHING`` value.
    """
    result = list(argv)
    serve = _serve_index(result)
    if serve is not None:
        result[serve:serve + 1] = _sagemaker_flags(result[serve + 1:], env)
    vertex = []
    for flag, variable in _VERTEX_FLAGS:
        if env.get(variable) and not _given(result, flag):
            if flag == "rest_api_port":
                _number(env, variable, None)
            vertex.append(f"--{flag}={env[variable]}")
    uri = env.get("AIP_STORAGE_URI")
    if uri and not any(
        _given(result, flag)
        for flag in ("saved_model_uri", "model_base_path", "model_config_file")
    ):
        vertex.append(f"--saved_model_uri={uri}")
    return vertex + result


def _serve_index(argv: list[str]) -> int | None:
    """Index of ``serve`` when it is the first argument that is not a ``--flag=value``."""
    for index, token in enumerate(argv):
        if token == "serve":
            return index
        if not (token.startswith("--") and "=" in token):
            return None
    return None


def _given(argv: list[str], flag: str) -> bool:
    return any(token == f"--{flag}" or token.startswith(f"--{flag}=") for token in argv)


def _number(env: Mapping[str, str], variable: str, default: str | None) -> str | None:
    value = env.get(variable, "").strip() or default
    if value is not None and not value.isdigit():
        raise HostingError(f"{variable} must be a non-negative integer, got {value!r}")
    return value


def _sagemaker_flags(after: list[str], env: Mapping[str, str]) -> list[str]:
    """The flags ``serve`` stands for; ``after`` are the flags following it (they win)."""
    port = _number(env, "SAGEMAKER_BIND_TO_PORT", str(SAGEMAKER_PORT))
    flags = [
        f"--rest_api_port={port}",
        f"--model_base_path={SAGEMAKER_MODEL_DIR}",
        f"--model_name={env.get('MODEL_NAME') or 'model'}",
    ]
    enable = env.get("SAGEMAKER_TFS_ENABLE_BATCHING", "").strip().lower()
    if enable not in _TRUE | _FALSE:
        raise HostingError(f"SAGEMAKER_TFS_ENABLE_BATCHING must be true or false, got {enable!r}")
    if enable in _TRUE:
        flags.append("--enable_batching=true")
        if not (_given(after, "batching_parameters_file") or _given(after, "batching_parameters")):
            fields = []
            for field, variable, default in _SAGEMAKER_BATCHING:
                value = _number(env, variable, default)
                if value is not None:
                    fields.append(f"{field} {{ value: {value} }}")
            flags.append("--batching_parameters=" + " ".join(fields))
    return flags


def stage_saved_model(uri: str, model_name: str, staging_dir: str) -> str:
    """Returns a local base path (a directory of version directories) serving ``uri``.

    A SavedModel directory (``saved_model.pb`` at its root) becomes version 1: a local one is
    linked as ``<staging_dir>/<model_name>/1``, a ``gs://`` one is downloaded there. A directory
    of version directories is used as is (local) or downloaded to ``<staging_dir>/<model_name>``.

    Args:
        uri: a local directory or ``gs://bucket/prefix``.
        model_name: the served model's name (the staged directory's name).
        staging_dir: an empty, writable directory that outlives the server.

    Raises:
        HostingError: google-cloud-storage is missing, the URI has no objects, or the download
            failed.
    """
    base_path = os.path.join(staging_dir, model_name)
    if not uri.startswith("gs://"):
        local = os.path.abspath(uri)
        if not any(os.path.isfile(os.path.join(local, name)) for name in SAVED_MODEL_FILES):
            return local
        os.makedirs(base_path)
        os.symlink(local, os.path.join(base_path, "1"))
        return base_path
    try:
        gcs = importlib.import_module("google.cloud.storage")
    except ImportError:
        raise HostingError(
            f"{uri} needs google-cloud-storage, which this image lacks: "
            "pip install google-cloud-storage (see runtime_image/README.md)"
        ) from None
    bucket, _, prefix = uri[len("gs://"):].partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    try:
        blobs = [
            blob for blob in gcs.Client().list_blobs(bucket, prefix=prefix)
            if not blob.name.endswith("/")
        ]
    except Exception as exc:  # google.api_core and auth errors: one line each
        raise HostingError(f"Could not list {uri}: {type(exc).__name__}: {exc}") from None
    names = [blob.name[len(prefix):] for blob in blobs]
    if not names:
        raise HostingError(f"No objects under {uri}")
    unsafe = [name for name in names if name.startswith("/") or ".." in name.split("/")]
    if unsafe:
        raise HostingError(f"Refusing to download {uri}: unsafe object name {unsafe[0]!r}")
    if any(name in names for name in SAVED_MODEL_FILES):
        target_dir = os.path.join(base_path, "1")
    else:
        target_dir = base_path
    try:
        for blob, name in zip(blobs, names, strict=True):
            target = os.path.join(target_dir, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            blob.download_to_filename(target)
    except Exception as exc:  # google.api_core errors, OSError: one line each
        raise HostingError(f"Could not download {uri}: {type(exc).__name__}: {exc}") from None
    return base_path
