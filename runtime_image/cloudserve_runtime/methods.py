"""Protocol-independent parts of Predict, Classify, Regress and metadata (spec §1.4-1.6, §3, §6).

REST and gRPC share these checks so both report TF Serving's texts: which signature a request
uses, whether a signature can classify or regress, and how model outputs become classification
and regression results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from google.protobuf import text_format
from tensorflow_serving.apis import get_model_metadata_pb2, input_pb2

from cloudserve_runtime.errors import failed_precondition, invalid_argument
from cloudserve_runtime.servable import DEFAULT_SIGNATURE, SavedModelServable, Signature

CLASSIFY_INPUTS = "inputs"
CLASSIFY_CLASSES = "classes"
CLASSIFY_SCORES = "scores"
REGRESS_OUTPUTS = "outputs"

Classification = list[tuple[bytes, float]]


def _debug(signature: Signature) -> str:
    return text_format.MessageToString(signature.definition)


def predict_signature_rest(servable: SavedModelServable, name: str) -> Signature:
    """The signature a REST predict names. Raises INVALID_ARGUMENT with TF Serving's REST text."""
    signature = servable.signature(name)
    if signature is None:
        raise invalid_argument(
            f'Serving signature name: "{name or DEFAULT_SIGNATURE}" not found in signature def'
        )
    return signature


def predict_signature_grpc(servable: SavedModelServable, name: str) -> Signature:
    """The signature a gRPC predict names. Raises FAILED_PRECONDITION with the gRPC text."""
    signature = servable.signature(name)
    if signature is None:
        raise failed_precondition(f'Serving signature key "{name or DEFAULT_SIGNATURE}" not found.')
    return signature


def _named_signature(servable: SavedModelServable, name: str) -> Signature:
    signature = servable.signature(name)
    if signature is None:
        raise invalid_argument(
            f"No signature was found with the name: {name or DEFAULT_SIGNATURE}"
        )
    return signature


def classify_signature(servable: SavedModelServable, name: str) -> Signature:
    """The signature a classify request names, checked like TF Serving's classifier.

    Raises:
        ServingError: INVALID_ARGUMENT when missing, or without the ``inputs`` input or without
            a ``classes``/``scores`` output.
    """
    signature = _named_signature(servable, name)
    if list(signature.inputs) != [CLASSIFY_INPUTS]:
        raise invalid_argument(
            f"No classification inputs found in SignatureDef: {_debug(signature)}"
        )
    if not {CLASSIFY_CLASSES, CLASSIFY_SCORES} & set(signature.outputs):
        raise invalid_argument(
            f"No classification outputs found in SignatureDef: {_debug(signature)}"
        )
    return signature


def regress_signature(servable: SavedModelServable, name: str) -> Signature:
    """The signature a regress request names, checked like TF Serving's regressor.

    Raises:
        ServingError: INVALID_ARGUMENT when missing, or without exactly the ``inputs`` input and
            the ``outputs`` output.
    """
    signature = _named_signature(servable, name)
    if list(signature.inputs) != [CLASSIFY_INPUTS]:
        raise invalid_argument(f"No regression inputs found in SignatureDef: {_debug(signature)}")
    if list(signature.outputs) != [REGRESS_OUTPUTS]:
        raise invalid_argument(f"No regression outputs found in SignatureDef: {_debug(signature)}")
    return signature


def serialized_examples(request_input: input_pb2.Input) -> list[bytes]:
    """Serialized tf.Examples of an ``Input``; context features are merged into every example.

    Raises:
        ServingError: INVALID_ARGUMENT ``Input is empty.`` when there are no examples.
    """
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        examples = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        with_context = request_input.example_list_with_context
        context = with_context.context.SerializeToString()
        examples = [context + e.SerializeToString() for e in with_context.examples]
    else:
        examples = []
    if not examples:
        raise invalid_argument("Input is empty.")
    return examples


def merge_context(examples: Sequence[bytes], context: bytes | None) -> list[bytes]:
    """Prefixes each serialized example with the serialized context (protobuf merge)."""
    if not context:
        return list(examples)
    return [context + example for example in examples]


def examples_tensor(examples: Sequence[bytes]) -> np.ndarray:
    """The ``[N]`` DT_STRING tensor fed to a classify/regress signature."""
    tensor = np.empty(len(examples), dtype=object)
    tensor[:] = list(examples)
    return tensor


def _check_batch(name: str, tensor: np.ndarray, batch: int) -> None:
    if tensor.ndim == 0 or tensor.shape[0] != batch:
        got = tensor.shape[0] if tensor.ndim else "scalar"
        raise invalid_argument(
            f"Input batch size did not match output batch size: {batch} vs. {got} ({name})"
        )


def check_classification_outputs(
    outputs: Mapping[str, np.ndarray], batch: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Validates a classifier's outputs and returns ``(classes, scores)`` (either may be None).

    Raises:
        ServingError: INVALID_ARGUMENT for output shapes or types a classifier cannot use.
    """
    scores = outputs.get(CLASSIFY_SCORES)
    classes = outputs.get(CLASSIFY_CLASSES)
    for name, tensor in ((CLASSIFY_SCORES, scores), (CLASSIFY_CLASSES, classes)):
        if tensor is None:
            continue
        _check_batch(name, tensor, batch)
        if tensor.ndim != 2:
            raise invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {list(tensor.shape)}"
            )
    if scores is not None and scores.dtype.kind != "f":
        raise invalid_argument(f"Expected scores Tensor of DT_FLOAT. Got: {scores.dtype}")
    if classes is not None and classes.dtype != object and classes.dtype.kind not in "SU":
        raise invalid_argument(f"Expected classes Tensor of DT_STRING. Got: {classes.dtype}")
    if scores is not None and classes is not None and scores.shape != classes.shape:
        raise invalid_argument(
            f"Tensors class and score should match in shape {list(classes.shape)} vs. "
            f"{list(scores.shape)}"
        )
    return classes, scores


def classification_results(
    classes: np.ndarray | None, scores: np.ndarray | None
) -> list[Classification]:
    """Per example, the (label, score) pairs of every class, from checked outputs.

    A missing ``classes`` output gives label ``b""``; a missing ``scores`` output gives 0.0.
    """
    present = scores if scores is not None else classes
    assert present is not None
    results: list[Classification] = []
    for row in range(present.shape[0]):
        entries: Classification = []
        for column in range(present.shape[1]):
            label = classes[row, column] if classes is not None else b""
            if isinstance(label, str):
                label = label.encode()
            score = float(scores[row, column]) if scores is not None else 0.0
            entries.append((bytes(label), score))
        results.append(entries)
    return results


def check_regression_outputs(outputs: Mapping[str, np.ndarray], batch: int) -> np.ndarray:
    """Validates a regressor's output and returns it flattened to ``[batch]``.

    Raises:
        ServingError: INVALID_ARGUMENT unless the output is DT_FLOAT shaped [B] or [B, 1].
    """
    values = outputs[REGRESS_OUTPUTS]
    if values.dtype != np.float32:
        raise invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {values.dtype}")
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise invalid_argument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{list(values.shape)}"
        )
    _check_batch(REGRESS_OUTPUTS, values, batch)
    return values.reshape(-1)


def check_grpc_inputs(signature: Signature, sent: Iterable[str]) -> None:
    """Checks a gRPC PredictRequest's input aliases against the signature (predict_util.cc).

    Raises:
        ServingError: INVALID_ARGUMENT with TF Serving's text.
    """
    sent_set = set(sent)
    wanted = set(signature.inputs)
    if sent_set == wanted:
        return

    def braces(names: Iterable[str]) -> str:
        return "{" + ",".join(sorted(names)) + "}"

    if len(sent_set) != len(wanted):
        raise invalid_argument(
            f"input size does not match signature: {len(sent_set)}!={len(wanted)} "
            f"len({braces(sent_set)}) != len({braces(wanted)}). "
            f"Sent extra: {braces(sent_set - wanted)}. "
            f"Missing but required: {braces(wanted - sent_set)}."
        )
    extra = sorted(sent_set - wanted)[0]
    raise invalid_argument(
        f"input tensor alias not found in signature: {extra}. "
        f"Inputs expected to be in the set {braces(wanted)}."
    )


def output_aliases(signature: Signature, output_filter: Sequence[str]) -> tuple[str, ...] | None:
    """The outputs a gRPC predict fetches: ``output_filter`` checked, or None for all.

    Raises:
        ServingError: INVALID_ARGUMENT for an unknown or duplicate alias.
    """
    if not output_filter:
        return None
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} Outputs expected to be in "
                "the set {" + ",".join(sorted(signature.outputs)) + "}."
            )
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return tuple(seen)


def signature_def_map(servable: SavedModelServable) -> get_model_metadata_pb2.SignatureDefMap:
    """The ``signature_def`` metadata of a servable."""
    result = get_model_metadata_pb2.SignatureDefMap()
    for name, definition in servable.signature_defs.items():
        result.signature_def[name].CopyFrom(definition)
    return result


