"""A model directory as hostile input: verify all of it, replace only our own, swap it in whole.

An MLflow model directory is code as much as data: ``mlflow.pyfunc.load_model`` (and so
``mlflow models serve``) imports whatever ``loader_module`` its ``MLmodel`` names and puts its
``code`` folder on ``sys.path``. This module never imports mlflow; it reads every file once,
checks it, and hands on the checked bytes:

* :func:`verify` — what ``clvmodel serve`` requires before it starts: ``MLmodel`` (parsed by
  :mod:`clvmodel.mlmodel`: bounded, no aliases) has exactly the ``python_function`` flavor, ``loader_module`` exactly
  ``clvmodel.tracking``, no ``code`` and no key that would load a Python object, a data path inside
  the directory; every file listed in ``clvmodel.manifest.json`` with its SHA-256 and no other
  file (but MLflow's registry note, checked to hold only a name and a version); no symbolic link;
  the JSON document valid (:meth:`TrainedModel.from_document`).
* :func:`check_replaceable` — what ``clvmodel train`` requires before it replaces an existing
  ``output.model_dir``: the folder is empty, or a model directory clvmodel wrote and nothing else
  (a user's file in it, or any folder that is not a model, is refused, never deleted).
* :func:`replace_dir` — the new directory takes the old one's place in one ``renameat2
  (RENAME_EXCHANGE)`` on Linux, so a reader opening the path sees the old model or the new one,
  never none. Where the exchange is not available (other systems, some file systems) the old
  directory is renamed aside into the marked staging folder and the new one renamed in: a reader
  can then miss the model for the time between two renames, and a run killed between them leaves
  the old model in the staging folder, where :func:`clvmodel.staging.clean_stale` puts it back.

The manifest detects corruption and files added by mistake, not tampering: whoever can edit the
directory can recompute the digests. Tampering is met by the structural checks above and by
validating the document's every field, whatever its checksum says.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from clvmodel import mlmodel
from clvmodel.artifact import CHALLENGER_DIR, TrainedModel, load_challenger
from clvmodel.config import excerpt, parse_yaml
from clvmodel.document import parse_json
from clvmodel.errors import ClvError
from clvmodel.integrity import MANIFEST_NAME, check_listing, check_manifest, read_tree, scan_tree

__all__ = ["LOADER_MODULE", "VerifiedModel", "verify", "check_replaceable", "replace_dir"]

#: The one loader a clvmodel MLmodel may name: installed code, never code from the directory.
LOADER_MODULE = "clvmodel.tracking"
#: Keys MLflow 3 writes into a ``loader_module`` python_function flavor. Anything else (e.g.
#: ``python_model``, ``cloudpickle_version``, ``model_code_path``) belongs to a flavor that
#: unpickles or imports an object, so it is refused rather than ignored.
_FLAVOR_KEYS = {"loader_module", "data", "code", "env", "python_version", "streamable", "config"}
#: Files of a model directory written before the manifest existed (replaceable, not servable).
_LEGACY_FILES = {"MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt", "input_example.json",
                 "serving_input_example.json", "registered_model_meta", "data/clvmodel.json",
                 f"{CHALLENGER_DIR}/challenger.json", f"{CHALLENGER_DIR}/challenger.skops"}
_REGISTRY_NOTE = "registered_model_meta"
#: A manifest lists at most MAX_TREE_FILES names with their digests: a few KB, never this.
_MAX_MANIFEST = 1 << 20


@dataclass
class VerifiedModel:
    """A model directory that passed :func:`verify`, with the bytes that were checked."""

    directory: Path
    files: dict[str, bytes]
    data_path: str
    document: dict[str, Any]
    model: TrainedModel


def _flavor_data(raw: bytes | None, origin: str) -> str:
    """The document's path inside the directory, from an ``MLmodel`` that names only our loader.

    ``raw`` is the ``MLmodel``'s bytes (``None``: there is none); the data file's presence is the
    caller's to check.
    """
    if raw is None:
        raise ClvError(f"{origin}: no MLmodel file; pass a directory written by clvmodel train")
    spec = mlmodel.parse(raw, origin)
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    if not isinstance(flavors, dict) or set(flavors) != {"python_function"}:
        names = sorted(map(str, flavors)) if isinstance(flavors, dict) else []
        raise ClvError(f"{origin}: MLmodel must have exactly the python_function flavor, has {names[:5]}; "
                       "another flavor loads other code, refusing it")
    conf = flavors["python_function"]
    if not isinstance(conf, dict):
        raise ClvError(f"{origin}: MLmodel's python_function flavor is not a mapping; refusing it")
    loader = conf.get("loader_module")
    if loader != LOADER_MODULE:
        raise ClvError(f"{origin}: MLmodel names loader_module {excerpt(loader)}, not {LOADER_MODULE!r}; "
                       "loading it would run that code, refusing it")
    if conf.get("code") is not None:
        raise ClvError(f"{origin}: MLmodel has a code entry ({excerpt(conf['code'])}); a clvmodel model carries "
                       "no code, refusing it")
    unknown = sorted(map(str, set(conf) - _FLAVOR_KEYS))
    if unknown:
        raise ClvError(f"{origin}: MLmodel's python_function flavor has unexpected keys "
                       f"{excerpt(unknown[:5])}; refusing it")
    return mlmodel.data_path(conf, origin)


def _data_present(files: dict[str, bytes] | dict[str, int], normal: str, origin: str) -> str:
    if normal not in files:
        raise ClvError(f"{origin}: MLmodel's data file {excerpt(normal)} is missing; copy the whole model directory")
    return normal


def _without_registry_note(files: dict[str, bytes], origin: str) -> dict[str, bytes]:
    """``files`` without MLflow's registry note, once it is checked to be only that.

    ``mlflow.register_model`` writes ``registered_model_meta`` (``model_name``, ``model_version``)
    into the run's model folder after training, so a model downloaded from the registry has a
    file its manifest cannot list. It is accepted as plain text of those two keys; nothing reads it.
    """
    raw = files.get(_REGISTRY_NOTE)
    if raw is None:
        return files
    try:
        note = parse_yaml(raw.decode("utf-8"), f"{origin}/{_REGISTRY_NOTE}") if len(raw) <= 4096 else None
    except (ClvError, yaml.YAMLError, UnicodeDecodeError):
        note = None
    if not (isinstance(note, dict) and set(note) <= {"model_name", "model_version"}
            and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in note.values())):
        raise ClvError(f"{origin}: {_REGISTRY_NOTE} is not MLflow's registry note (model_name, model_version only); "
                       "refusing it")
    return {name: data for name, data in files.items() if name != _REGISTRY_NOTE}


def _document(raw: bytes, origin: str) -> dict[str, Any]:
    document = parse_json(raw, origin, "the model is corrupted, retrain it")
    if not isinstance(document, dict):
        raise ClvError(f"{origin} is not a clvmodel model document; retrain the model")
    return document


def _directory(path: str | Path) -> Path:
    directory = Path(path)
    if directory.is_symlink():
        raise ClvError(f"{directory} is a symbolic link; pass the model directory itself")
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "not found"
        raise ClvError(f"model directory {directory} {what}; pass a directory written by clvmodel train")
    return directory


def verify(path: str | Path) -> VerifiedModel:
    """Verify a whole model directory before anything of it is used; see the module docstring.

    Raises
    ------
    ClvError
        The first check that fails, in one line naming the file.
    """
    directory = _directory(path)
    origin = str(directory)
    files = _without_registry_note(read_tree(directory, origin), origin)
    # The MLmodel's structure first: it says why a tampered directory is dangerous, and it holds
    # whatever the manifest says (an attacker can rewrite the manifest too).
    data_path = _data_present(files, _flavor_data(files.get(mlmodel.NAME), origin), origin)
    check_manifest(files, origin)
    document = _document(files[data_path], f"{origin}/{data_path}")
    model = TrainedModel.from_document(document, origin=origin)
    return VerifiedModel(directory, files, data_path, document, model)


def load_verified(verified: VerifiedModel) -> TrainedModel:
    """The trained model (with its challenger) built from the verified bytes only.

    The challenger's files are written from those bytes into a private temporary folder and read
    from there, so a file changed in the model directory after :func:`verify` is never used.
    """
    model = verified.model
    if verified.document.get("challenger"):
        with tempfile.TemporaryDirectory(prefix="clvmodel-verified-") as private:
            root = Path(private)
            for name, data in verified.files.items():
                if name.startswith(f"{CHALLENGER_DIR}/"):
                    target = root / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
            model.challenger = load_challenger(root, origin=str(verified.directory))
    return model


def check_replaceable(path: str | Path) -> None:
    """Refuse to replace ``path`` unless it is missing, an empty folder, or a model clvmodel wrote.

    Cheap for a folder that is not ours: ``MLmodel`` (at most 64 KB) is read first and the rest of
    the tree only ``lstat``-ed (names, kinds, sizes), so a user's folder is refused after reading a
    few KB whatever it holds; only a folder whose every file a clvmodel manifest lists is then read
    (at most :data:`clvmodel.integrity.MAX_TREE_BYTES`) and verified. ``clvmodel train`` calls it
    before reading any data, and again right before the swap.

    Raises
    ------
    ClvError
        One line saying why the folder is not replaced; nothing in it is touched.
    """
    directory = Path(path)
    if not os.path.lexists(directory):
        return
    advice = ("clvmodel train replaces only a model directory it wrote: set output.model_dir to a new or empty "
              "folder, or move this one away yourself")
    if directory.is_symlink():
        raise ClvError(f"output.model_dir {directory} is a symbolic link; {advice}")
    if not directory.is_dir():
        raise ClvError(f"output.model_dir {directory} is a file, not a folder; {advice}")
    if not any(directory.iterdir()):
        return
    origin = str(directory)
    try:
        # Cheapest first, reading nothing but small files: MLmodel (bounded) says whether the
        # folder is a clvmodel model at all; lstat gives the names and sizes; the manifest (or the
        # legacy file list) says whether every name is ours. Only then is the tree read whole.
        data_path = _flavor_data(mlmodel.read(directory, origin), origin)
        sizes = scan_tree(directory, origin)
        names = set(sizes) - {_REGISTRY_NOTE}
        _data_present(sizes, data_path, origin)
        if MANIFEST_NAME in names:
            if sizes[MANIFEST_NAME] > _MAX_MANIFEST:
                raise ClvError(f"{origin}: {MANIFEST_NAME} is not a clvmodel manifest; retrain the model")
            fd = os.open(directory / MANIFEST_NAME, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as handle:
                check_listing(handle.read(_MAX_MANIFEST + 1), names, origin)
        else:  # trained before the manifest: only the files clvmodel and MLflow wrote then
            extra = sorted(names - _LEGACY_FILES)
            if extra:
                raise ClvError(f"{origin}: file {excerpt(extra[0], 200)} was not written by clvmodel")
        files = _without_registry_note(read_tree(directory, origin), origin)
        data_path = _data_present(files, _flavor_data(files.get(mlmodel.NAME), origin), origin)
        if MANIFEST_NAME in files:
            check_manifest(files, origin)
        TrainedModel.from_document(_document(files[data_path], origin), origin=origin)
    except ClvError as err:
        # The first clause only: the advice for a model being served does not apply here.
        reason = str(err).removeprefix(f"{origin}: ").removeprefix(origin).strip().split("; ")[0]
        raise ClvError(f"output.model_dir {directory} exists and is not a clvmodel model directory ({reason}); "
                       f"{advice}") from None


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with Linux ``renameat2(RENAME_EXCHANGE)``; False when unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # no glibc 2.28+ (musl before 1.2.?, old systems)
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}:  # file system without it
        return False
    raise OSError(code, os.strerror(code), str(second))


def replace_dir(new: Path, directory: Path, staging: Path) -> None:
    """Put ``new`` (inside the marked ``staging`` folder) at ``directory``; see the module docstring.

    The previous directory ends inside ``staging``, which the caller removes.
    """
    if not os.path.lexists(directory):
        new.rename(directory)
        return
    if _exchange(new, directory):
        return
    previous = staging / "previous"
    directory.rename(previous)
    try:
        new.rename(directory)
    except BaseException:
        # The caller removes the staging folder: put the previous model back first, or it would
        # be deleted with it. (If even that fails, clvmodel.staging.clean_stale restores it.)
        if not os.path.lexists(directory):
            previous.rename(directory)
        raise


def remove_staging(staging: Path) -> None:
    """Remove a staging folder (the new model's leftovers or the previous model) and release its lock."""
    from clvmodel.staging import release

    release(staging)
