"""Export inspection: what is in a SavedModel directory, read without TensorFlow.

``saved_model.pb`` is decoded with a small protobuf wire-format reader that walks only the
fields cloudserve needs (tags, TF version, signature defs) and skips the graph by length, so
inspecting a 2 GB export is fast and needs no TensorFlow install.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cloudserve.errors import PreflightError
from cloudserve.records import ExportInfo, Finding, SignatureInfo, TensorInfo

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")

# tensorflow/core/framework/types.proto
DTYPE_NAMES = {
    0: "DT_INVALID",
    1: "DT_FLOAT",
    2: "DT_DOUBLE",
    3: "DT_INT32",
    4: "DT_UINT8",
    5: "DT_INT16",
    6: "DT_INT8",
    7: "DT_STRING",
    8: "DT_COMPLEX64",
    9: "DT_INT64",
    10: "DT_BOOL",
    11: "DT_QINT8",
    12: "DT_QUINT8",
    13: "DT_QINT32",
    14: "DT_BFLOAT16",
    15: "DT_QINT16",
    16: "DT_QUINT16",
    17: "DT_UINT16",
    18: "DT_COMPLEX128",
    19: "DT_HALF",
    20: "DT_RESOURCE",
    21: "DT_VARIANT",
    22: "DT_UINT32",
    23: "DT_UINT64",
}


# --------------------------------------------------------------------------- wire format


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 70:
            raise ValueError("varint too long")


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """Yield (field_number, value): ints for varints, memoryviews for length-delimited."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            yield number, buf[pos : pos + length]
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _map_entries(buf: memoryview) -> tuple[str, memoryview]:
    key, value = "", memoryview(b"")
    for number, v in _fields(buf):
        if number == 1:
            key = bytes(v).decode()
        elif number == 2:
            value = v
    return key, value


def _tensor_shape(buf: memoryview) -> tuple[int, ...] | None:
    """A ``TensorShapeProto``: its dimension sizes (-1 unknown), None for an unknown rank."""
    dims: list[int] = []
    unknown_rank = False
    for number, v in _fields(buf):
        if number == 2:
            size = 0
            for n, v2 in _fields(v):
                if n == 1:
                    size = _signed64(int(v2))
            dims.append(size)
        elif number == 3:
            unknown_rank = bool(v)
    return None if unknown_rank else tuple(dims)


def _tensor_info(buf: memoryview) -> TensorInfo:
    name, dtype, shape = "", "DT_INVALID", None
    for number, v in _fields(buf):
        if number == 1:
            name = bytes(v).decode()
        elif number == 2:
            dtype = DTYPE_NAMES.get(int(v), f"DT_{int(v)}")
        elif number == 3:
            shape = _tensor_shape(v)
    return TensorInfo(dtype=dtype, shape=shape, tensor_name=name)


def _signature(buf: memoryview) -> SignatureInfo:
    inputs: dict[str, TensorInfo] = {}
    outputs: dict[str, TensorInfo] = {}
    method = ""
    for number, v in _fields(buf):
        if number in (1, 2):
            key, value = _map_entries(v)
            (inputs if number == 1 else outputs)[key] = _tensor_info(value)
        elif number == 3:
            method = bytes(v).decode()
    return SignatureInfo(method=method, inputs=inputs, outputs=outputs)


#: graph ops that own a variable (resource variables, TF1 reference variables)
VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})
#: collections whose ops the TF1 loader runs after restoring the checkpoint
MAIN_OP_COLLECTIONS = ("saved_model_main_op", "legacy_init_op")


@dataclass(frozen=True)
class VariableUse:
    """Which variables the signatures read, and which of them TF1-style loading provides.

    TF Serving and TF1's ``loader.load`` restore exactly the variables the saver's restore op
    (``saver_def.restore_op_name``) writes, then run the main op. A Keras 3 model saved with
    ``tf.saved_model.save`` has signatures that capture other variable handles than the ones
    its restore function fills, so TF1-style loading leaves those unset ("Could not find
    variable ...") while TF2's object-graph loading (``tf.saved_model.load``) serves it.

    Attributes:
        read: variable node names the signatures read (through the top-level graph).
        unrestored: those of ``read`` neither the restore op nor the main op reaches.
    """

    read: tuple[str, ...] = ()
    unrestored: tuple[str, ...] = ()


def _node_name(tensor: str) -> str:
    return tensor.lstrip("^").split(":", 1)[0]


def _reachable(start: list[str], inputs: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [_node_name(t) for t in start if t]
    while stack:
        name = stack.pop()
        if name in seen or name not in inputs:
            continue
        seen.add(name)
        stack.extend(inputs[name])
    return seen


def _variable_use(meta: memoryview, signatures: dict[str, SignatureInfo]) -> VariableUse:
    """Walk the top-level graph (function bodies are skipped by length)."""
    inputs: dict[str, list[str]] = {}
    ops: dict[str, str] = {}
    restore_op = ""
    main_ops: list[str] = []
    for n, v in _fields(meta):
        if n == 2:  # GraphDef
            for n2, node in _fields(v):
                if n2 != 1:
                    continue
                name, op, ins = "", "", []
                for n3, v3 in _fields(node):
                    if n3 == 1:
                        name = bytes(v3).decode()
                    elif n3 == 2:
                        op = bytes(v3).decode()
                    elif n3 == 3:
                        ins.append(_node_name(bytes(v3).decode()))
                inputs[name], ops[name] = ins, op
        elif n == 3:  # SaverDef
            for n2, v2 in _fields(v):
                if n2 == 3:
                    restore_op = bytes(v2).decode()
        elif n == 4:  # collection_def map
            key, value = _map_entries(v)
            if key in MAIN_OP_COLLECTIONS:
                for n2, v2 in _fields(value):
                    if n2 == 1:  # NodeList
                        main_ops += [bytes(v3).decode() for n3, v3 in _fields(v2) if n3 == 1]
    tensors = [t.tensor_name for sig in signatures.values() for t in sig.outputs.values()]
    read = {name for name in _reachable(tensors, inputs) if ops[name] in VARIABLE_OPS}
    provided = _reachable([restore_op, *main_ops], inputs)
    return VariableUse(read=tuple(sorted(read)), unrestored=tuple(sorted(read - provided)))


def parse_saved_model(
    data: bytes,
) -> list[tuple[tuple[str, ...], str | None, dict[str, SignatureInfo], VariableUse]]:
    """Decode ``saved_model.pb`` into one (tags, tf_version, signatures, variable use) per
    MetaGraphDef."""
    graphs = []
    for number, meta in _fields(memoryview(data)):
        if number != 2:
            continue
        tags: list[str] = []
        tf_version: str | None = None
        signatures: dict[str, SignatureInfo] = {}
        for n, v in _fields(meta):
            if n == 1:  # MetaInfoDef
                for n2, v2 in _fields(v):
                    if n2 == 4:
                        tags.append(bytes(v2).decode())
                    elif n2 == 5:
                        tf_version = bytes(v2).decode() or None
            elif n == 5:  # signature_def map
                key, value = _map_entries(v)
                signatures[key] = _signature(value)
        graphs.append((tuple(tags), tf_version, signatures, _variable_use(meta, signatures)))
    return graphs


# --------------------------------------------------------------------------- layout


def _numeric(name: str) -> int | None:
    return int(name) if name.isdigit() else None


SAVED_MODEL_DOC = "https://www.tensorflow.org/guide/saved_model"
KERAS_EXPORT_DOC = "https://keras.io/api/models/model_saving_apis/export/"
KERAS_FIX = "export the Keras model with model.export(DIR) (a SavedModel), then pass DIR"


def export_error(
    finding_id: str, message: str, fix: str, source: str = SAVED_MODEL_DOC
) -> PreflightError:
    """A preflight error (exit 3) with one error finding about the export itself."""
    return PreflightError(
        f"preflight failed: {message}",
        findings=[Finding(finding_id, "error", message, fix=fix, source=source)],
    )


def resolve_export_dir(path: Path) -> tuple[Path, Path | None, int | None]:
    """Find the SavedModel directory for a user-given path.

    Returns (savedmodel_dir, base_path, version). ``path`` may be the SavedModel itself
    (its version is its numeric directory name, if it has one) or a TF-Serving base path
    holding numeric version directories (the highest one that holds a SavedModel wins).

    Raises:
        PreflightError: the path does not exist or holds no SavedModel (finding
            ``export.missing``, ``export.keras_file`` or ``export.no_saved_model``).
    """
    path = Path(path).expanduser()
    if path.suffix.lower() in (".keras", ".h5", ".hdf5") and (path.is_file() or not path.exists()):
        raise export_error(
            "export.keras_file",
            f"{path} is a Keras model file, not a SavedModel: targets serve SavedModels",
            KERAS_FIX,
            KERAS_EXPORT_DOC,
        )
    if not path.exists():
        raise export_error(
            "export.missing",
            f"export path {path} does not exist",
            "pass the directory that holds saved_model.pb (or its parent version dirs)",
        )
    if not path.is_dir():
        raise export_error(
            "export.no_saved_model",
            f"export path {path} is a file, not a SavedModel directory",
            "pass the directory that holds saved_model.pb",
        )
    if any((path / f).is_file() for f in SAVED_MODEL_FILES):
        return path, None, _numeric(path.name)
    versions = sorted(
        (v, child)
        for child in path.iterdir()
        if child.is_dir()
        and (v := _numeric(child.name)) is not None
        and any((child / f).is_file() for f in SAVED_MODEL_FILES)
    )
    if versions:
        version, child = versions[-1]
        return child, path, version
    keras_files = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".keras", ".h5"))
    raise export_error(
        "export.no_saved_model",
        f"no SavedModel in {path}: no saved_model.pb there nor in a numeric version directory"
        + (f" (it holds Keras file(s): {', '.join(keras_files[:3])})" if keras_files else ""),
        KERAS_FIX
        if keras_files
        else "export with model.export(DIR) (Keras) or tf.saved_model.save(obj, DIR); pass DIR",
        KERAS_EXPORT_DOC if keras_files else SAVED_MODEL_DOC,
    )


LINK_FIX = "replace the link with a copy of what it points to inside the export, or remove it"


def export_files(export_dir: Path) -> list[tuple[str, int]]:
    """Every file of an export as (relative POSIX path, size), sorted; links are followed.

    Symbolic links may point only inside the export: their targets are what a deploy copies,
    so linked files count towards the size and file-count checks like any other. Reads only.

    Raises:
        PreflightError: a link that leaves the export (``export.symlink``), one whose target
            is missing (``export.symlink``), or a link loop (``export.symlink_loop``): exit 3.
    """
    root = Path(export_dir).resolve()
    found: list[tuple[str, int]] = []

    def loop(relative: str) -> PreflightError:
        return export_error(
            "export.symlink_loop",
            f"{relative} in export {root} is part of a symbolic link loop",
            f"remove the looping link (find {root} -type l lists the links)",
        )

    def visit(directory: Path, prefix: str, chain: frozenset[Path]) -> None:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            relative, full = prefix + entry.name, Path(entry.path)
            if entry.is_symlink():
                try:
                    target = full.resolve(strict=True)
                except RuntimeError:  # Python < 3.13 reports a loop this way
                    raise loop(relative) from None
                except OSError as e:
                    if e.errno == errno.ELOOP:
                        raise loop(relative) from None
                    raise export_error(
                        "export.symlink",
                        f"{relative} in export {root} is a symbolic link to "
                        f"{os.readlink(full)}, which does not exist",
                        LINK_FIX,
                    ) from None
                if not target.is_relative_to(root):
                    raise export_error(
                        "export.symlink",
                        f"{relative} in export {root} is a symbolic link to {target}, outside "
                        "the export: deploying would copy that file",
                        LINK_FIX,
                    )
            else:
                target = full
            if target.is_dir():
                if target in chain:
                    raise loop(relative)
                visit(full, relative + "/", chain | {target})
            elif target.is_file():
                found.append((relative, target.stat().st_size))

    visit(root, "", frozenset({root}))
    return sorted(found)


def inspect(path: str | os.PathLike[str], *, tags: tuple[str, ...] = ("serve",)) -> ExportInfo:
    """Inspect a SavedModel export: files, size, signatures and the TF version that wrote it.

    Reads files only; never imports TensorFlow and never changes anything.

    Raises:
        PreflightError: the path holds no readable SavedModel, or no MetaGraph has ``tags``
            (one error finding, exit code 3).
    """
    export_dir, base_path, version = resolve_export_dir(Path(path))
    listing = export_files(export_dir)
    files = [relative for relative, _size in listing]
    total = sum(size for _relative, size in listing)
    pb = export_dir / "saved_model.pb"
    if not pb.is_file():
        raise export_error(
            "export.pbtxt",
            f"{export_dir} holds saved_model.pbtxt; cloudserve inspects only binary SavedModels",
            "re-export with model.export(DIR) or tf.saved_model.save, which write saved_model.pb",
        )
    try:
        graphs = parse_saved_model(pb.read_bytes())
    except (ValueError, UnicodeDecodeError) as e:
        raise export_error(
            "export.unreadable", f"{pb} is not a valid SavedModel ({e})", "re-export the model"
        ) from e
    wanted = set(tags)
    match = next((g for g in graphs if wanted <= set(g[0])), None)
    if match is None:
        found = [list(g[0]) for g in graphs]
        raise export_error(
            "export.tags",
            f"{pb} has no MetaGraph tagged {sorted(wanted)} (found: {found})",
            "export with the 'serve' tag (model.export and tf.saved_model.save do by default)",
        )
    graph_tags, tf_version, signatures, variables = match
    return ExportInfo(
        path=export_dir,
        base_path=base_path,
        version=None if version is None else str(version),
        total_bytes=total,
        file_count=len(files),
        files=tuple(files),
        tf_version=tf_version,
        saved_model_file="saved_model.pb",
        has_variables=(export_dir / "variables").is_dir(),
        signatures=signatures,
        tags=tuple(graph_tags),
        variables_read=variables.read,
        variables_unrestored=variables.unrestored,
    )
