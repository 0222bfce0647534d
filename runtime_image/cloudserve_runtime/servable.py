"""One loaded SavedModel version: its own Graph and Session, signatures run by tensor name.

Signatures are run through ``Session._make_callable_from_options`` with the signature's tensor
names as feeds and fetches, like TF Serving's C++ ``Session::Run``. Unlike the public
``Session.run``, that path does not check feed shapes against the graph's static shapes, so a
``[3]`` feed into an ``x`` declared ``[-1, 1]`` works when the graph allows it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2

from cloudserve_runtime.errors import ServingError, as_serving_error

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAG = "serve"


@dataclass(frozen=True)
class Signature:
    """A SignatureDef reduced to what the request path needs.

    Attributes:
        name: signature key in the SavedModel.
        method_name: e.g. ``tensorflow/serving/predict``.
        inputs: alias -> (dtype enum name such as ``"DT_FLOAT"``, tensor name such as ``"x:0"``).
        outputs: alias -> (dtype enum name, tensor name).
        definition: the SignatureDef proto itself.
    """

    name: str
    method_name: str
    inputs: dict[str, tuple[str, str]]
    outputs: dict[str, tuple[str, str]]
    definition: meta_graph_pb2.SignatureDef


def _tensor_map(infos: Mapping[str, meta_graph_pb2.TensorInfo]) -> dict[str, tuple[str, str]]:
    return {
        alias: (types_pb2.DataType.Name(info.dtype), info.name) for alias, info in infos.items()
    }


def session_config(intra_op_threads: int, inter_op_threads: int) -> config_pb2.ConfigProto:
    """Returns the ConfigProto for a servable session (0 lets TensorFlow choose)."""
    return config_pb2.ConfigProto(
        intra_op_parallelism_threads=intra_op_threads,
        inter_op_parallelism_threads=inter_op_threads,
        allow_soft_placement=True,
    )


class SavedModelServable:
    """A SavedModel loaded into a private Graph and Session.

    Thread-safe: any number of threads may call :meth:`run` at once.
    """

    def __init__(
        self, path: str, *, intra_op_threads: int = 0, inter_op_threads: int = 0,
        tags: tuple[str, ...] = (SERVE_TAG,),
    ) -> None:
        """Loads the SavedModel at ``path`` (blocks; raises on any load failure)."""
        self.path = path
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(
            graph=self._graph, config=session_config(intra_op_threads, inter_op_threads)
        )
        try:
            with self._graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self._session, list(tags), path)
        except BaseException:
            self._session.close()
            raise
        self.signature_defs: dict[str, meta_graph_pb2.SignatureDef] = dict(
            meta_graph.signature_def
        )
        self._signatures = {
            name: Signature(
                name=name, method_name=sig.method_name, inputs=_tensor_map(sig.inputs),
                outputs=_tensor_map(sig.outputs), definition=sig,
            )
            for name, sig in self.signature_defs.items()
        }
        self._callables: dict[tuple[tuple[str, ...], tuple[str, ...]], Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def signature(self, name: str) -> Signature | None:
        """Returns the signature called ``name`` (``""`` means serving_default), or None."""
        return self._signatures.get(name or DEFAULT_SIGNATURE)

    def run(
        self, signature: Signature, inputs: Mapping[str, np.ndarray],
        output_aliases: tuple[str, ...] | None = None,
    ) -> dict[str, np.ndarray]:
        """Runs ``signature`` on ``inputs`` (keyed by input alias); blocks until done.

        Args:
            signature: a signature of this servable.
            inputs: input alias -> array; every alias must be a signature input.
            output_aliases: which outputs to fetch; None fetches all.

        Returns:
            Output alias -> array.

        Raises:
            ServingError: with the TensorFlow status code of a failed run.
        """
        aliases = tuple(output_aliases) if output_aliases is not None else tuple(signature.outputs)
        feed_aliases = tuple(inputs)
        feeds = tuple(signature.inputs[alias][1] for alias in feed_aliases)
        fetches = tuple(signature.outputs[alias][1] for alias in aliases)
        run_callable = self._callable(feeds, fetches)
        try:
            values = run_callable(*(inputs[alias] for alias in feed_aliases))
        except tf.errors.OpError as exc:
            raise as_serving_error(exc) from None
        except (TypeError, ValueError) as exc:
            raise ServingError("INVALID_ARGUMENT", str(exc)) from None
        return {alias: np.asarray(value) for alias, value in zip(aliases, values, strict=True)}

    def _callable(self, feeds: tuple[str, ...], fetches: tuple[str, ...]) -> Callable[..., Any]:
        key = (feeds, fetches)
        found = self._callables.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._callables.get(key)
            if found is None:
                options = config_pb2.CallableOptions(feed=list(feeds), fetch=list(fetches))
                try:
                    found = self._session._make_callable_from_options(options)
                except tf.errors.OpError as exc:
                    raise as_serving_error(exc) from None
                self._callables[key] = found
        return found

    def close(self) -> None:
        """Releases the session (call only once no run is in flight)."""
        self._callables.clear()
        self._session.close()
