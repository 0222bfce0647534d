"""One loaded SavedModel version: its own Graph and Session, signatures run by tensor name.

Signatures are run through ``Session._make_callable_from_options`` with the signature's tensor
names as feeds and fetches, like TF Serving's C++ ``Session::Run``. Unlike the public
``Session.run``, that path does not check feed shapes against the graph's static shapes, so a
``[3]`` feed into an ``x`` declared ``[-1, 1]`` works when the graph allows it.

Exports TF1-style loading cannot run (a Keras 3 model saved with ``tf.saved_model.save``: its
signatures read variable handles the saver's restore op never fills, tensorflow/serving#2250)
are detected right after that load, by asking the session which of the variables the
signatures read are initialized, and loaded again through TF2 object-graph loading
(``tf.saved_model.load``); their signatures are then called as concrete functions, with the
same SignatureDefs, inputs, outputs and error codes.

Like TF Serving, a version replays its warm-up records
(``assets.extra/tf_serving_warmup_requests``, a TFRecord file of ``PredictionLog``) before the
constructor returns, so it only becomes AVAILABLE warm; a record that fails fails the load.
"""

from __future__ import annotations

import logging
import os
import threading
import time
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
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
#: TF Serving's cap on warm-up records (saved_model_warmup_util.cc)
MAX_WARMUP_RECORDS = 1000
_VARIABLE_OPS = frozenset({"VarHandleOp"})

log = logging.getLogger(__name__)


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
        """Loads the SavedModel at ``path``, then replays its warm-up records.

        Blocks; raises on any load failure, and ServingError when a warm-up record fails.
        """
        self.path = path
        self._graph = tf.Graph()
        self._session = tf.compat.v1.Session(
            graph=self._graph, config=session_config(intra_op_threads, inter_op_threads)
        )
        #: signature name -> concrete function, when loaded through TF2 object-graph loading
        self._functions: dict[str, Any] | None = None
        self._loaded: Any = None
        try:
            with self._graph.as_default():
                meta_graph = tf.compat.v1.saved_model.loader.load(self._session, list(tags), path)
            if self._unrestored_variables(meta_graph):
                self._session.close()
                self._loaded = tf.saved_model.load(path, tags=list(tags))
                self._functions = dict(self._loaded.signatures)
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
        try:
            self.warm_up()
        except BaseException:
            self.close()
            raise

    def _unrestored_variables(self, meta_graph: meta_graph_pb2.MetaGraphDef) -> list[str]:
        """Resource variables the signatures read that the TF1 restore left uninitialized."""
        graph = self._graph
        starts = [
            graph.get_operation_by_name(info.name.split(":", 1)[0])
            for sig in meta_graph.signature_def.values()
            for info in sig.outputs.values()
        ]
        seen: set[str] = set()
        handles = []
        while starts:
            op = starts.pop()
            if op.name in seen:
                continue
            seen.add(op.name)
            if op.type in _VARIABLE_OPS:
                handles.append(op)
            starts.extend(t.op for t in op.inputs)
            starts.extend(op.control_inputs)
        if not handles:
            return []
        with graph.as_default():
            checks = [
                tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0]) for op in handles
            ]
        flags = self._session.run(checks)
        return [op.name for op, ok in zip(handles, flags, strict=True) if not ok]

    def warm_up(self) -> int:
        """Replays ``assets.extra/tf_serving_warmup_requests`` like TF Serving; returns the
        number of records run (0 without the file).

        Predict, classify and regress logs are run through their signatures; other log
        kinds are skipped. Raises ServingError (INVALID_ARGUMENT for a bad file or more than
        1000 records, else the failed run's error), which fails the version's load.
        """
        from tensorflow_serving.apis import prediction_log_pb2

        file = os.path.join(self.path, WARMUP_FILE)
        if not tf.io.gfile.exists(file):
            return 0
        count = 0
        try:
            records = list(tf.compat.v1.io.tf_record_iterator(file))
        except tf.errors.OpError as exc:
            raise ServingError("INVALID_ARGUMENT", f"Invalid warmup data file {file}: {exc}") \
                from None
        if len(records) > MAX_WARMUP_RECORDS:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {file}",
            )
        started = time.monotonic()
        for raw in records:
            record = prediction_log_pb2.PredictionLog()
            try:
                record.ParseFromString(raw)
            except Exception:  # protobuf's DecodeError: the record is not a PredictionLog
                raise ServingError(
                    "INVALID_ARGUMENT", f"Failed to parse warmup record from {file}"
                ) from None
            if self._replay(record):
                count += 1
        log.info(
            "Finished reading warmup data for model at %s. Number of warmup records read: %d. "
            "Elapsed time (microseconds): %d.",
            file, count, (time.monotonic() - started) * 1e6,
        )
        return count

    def _replay(self, log: Any) -> bool:
        from cloudserve_runtime import methods

        kind = log.WhichOneof("log_type")
        if kind == "predict_log":
            request = log.predict_log.request
            signature = methods.predict_signature_grpc(self, request.model_spec.signature_name)
            expected = ",".join(sorted(signature.inputs))
            for alias in request.inputs:
                if alias not in signature.inputs:
                    raise ServingError(
                        "INVALID_ARGUMENT",
                        f"Warmup record: input tensor alias not found in signature: {alias}. "
                        f"Inputs expected to be in the set {{{expected}}}.",
                    )
            inputs = {alias: tf.make_ndarray(t) for alias, t in request.inputs.items()}
            self.run(signature, inputs, tuple(request.output_filter) or None)
            return True
        if kind in ("classify_log", "regress_log"):
            request = getattr(log, kind).request
            name = request.model_spec.signature_name
            signature = (
                methods.classify_signature(self, name)
                if kind == "classify_log"
                else methods.regress_signature(self, name)
            )
            examples = methods.examples_tensor(methods.serialized_examples(request.input))
            self.run(signature, {methods.CLASSIFY_INPUTS: examples})
            return True
        return False

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
        if self._functions is not None:
            return self._call_function(signature, inputs, aliases)
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

    def _call_function(
        self, signature: Signature, inputs: Mapping[str, np.ndarray], aliases: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        """Runs a signature of an object-graph-loaded export as its concrete function."""
        function = self._functions[signature.name]
        try:
            outputs = function(**{alias: tf.convert_to_tensor(v) for alias, v in inputs.items()})
        except tf.errors.OpError as exc:
            raise as_serving_error(exc) from None
        except (TypeError, ValueError) as exc:
            raise ServingError("INVALID_ARGUMENT", str(exc)) from None
        return {alias: outputs[alias].numpy() for alias in aliases}

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
        self._functions = None
        self._loaded = None
