"""The artifact model: a typed, named bundle of files, serialized objects and external references.

Builders (`TraceletArtifact.add_*`) validate eagerly on the calling thread (missing files, paths that escape
the artifact, unknown serializers), so mistakes surface where they are made. Objects are serialized when the
artifact is logged (see `tracelet.core.artifact_manager`), not when they are added.

Nothing here imports torch, sklearn or PyYAML: models are recognised by duck typing and PyYAML is imported
only when the `yaml` serializer is used.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import pickle
import re
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import urlparse

import attrs
import cattrs

from tracelet.core.values import plain
from tracelet.exceptions import TraceletException

logger = logging.getLogger("tracelet")

CHUNK = 1 << 20  # streaming buffer for checksums and copies: memory stays flat for any file size


class ArtifactType(enum.Enum):
    """Semantic artifact types; backends and `artifact_routing` route on them."""

    # ML Assets
    MODEL = "model"
    CHECKPOINT = "checkpoint"
    WEIGHTS = "weights"
    # Data Assets
    DATASET = "dataset"
    SAMPLE = "sample"
    # Media Assets
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    # Analysis Assets
    VISUALIZATION = "viz"
    REPORT = "report"
    # Configuration Assets
    CONFIG = "config"
    CODE = "code"
    # General Assets
    CUSTOM = "custom"


class ArtifactPathError(TraceletException, ValueError):
    """An artifact name or path that is empty or would escape the artifact's root."""


def to_artifact_type(value: Any) -> ArtifactType:
    """An ArtifactType from a member, its value ("viz") or its name ("VISUALIZATION")."""
    if isinstance(value, ArtifactType):
        return value
    if isinstance(value, str):
        try:
            return ArtifactType(value.lower())
        except ValueError:
            member = ArtifactType.__members__.get(value.upper())
            if member is not None:
                return member
    choices = ", ".join(t.value for t in ArtifactType)
    raise ValueError(f"unknown artifact type {value!r}; expected one of: {choices}")


def check_artifact_path(path: Any) -> str:
    """A path inside an artifact in normal form ("a/b.txt"); raises ArtifactPathError if it could escape."""
    if not isinstance(path, str) or not path.strip():
        raise ArtifactPathError(f"artifact path must be a non-empty string, got {path!r}")
    if "\x00" in path:
        raise ArtifactPathError(f"artifact path {path!r} contains a NUL byte")
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute() or PureWindowsPath(path).drive:
        raise ArtifactPathError(f"artifact path {path!r} is absolute; it must be relative to the artifact root")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArtifactPathError(f"artifact path {path!r} contains '..' and could escape the artifact root")
    if not parts:
        raise ArtifactPathError(f"artifact path {path!r} names no file")
    return "/".join(parts)


_BAD_NAME = re.compile(r"[/\\\x00]")


def check_artifact_name(name: Any) -> str:
    """Artifact names become one folder in stores: no separators, not hidden, not '.'/'..'."""
    if not isinstance(name, str) or not name.strip():
        raise ArtifactPathError(f"artifact name must be a non-empty string, got {name!r}")
    if _BAD_NAME.search(name) or name.startswith("."):
        raise ArtifactPathError(f"artifact name {name!r} must not contain '/', '\\' or NUL, nor start with '.'")
    return name


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    """(sha256 hex digest, size) of a file, read in fixed-size chunks."""
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb") as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
            size += n
    return digest.hexdigest(), size


def copy_hashing(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> tuple[str, int]:
    """Copy `src` to `dst` in one streaming pass, returning the (sha256, size) of the bytes actually copied.

    Hashing the copy (not the source before or after) means the recorded checksum always describes the
    snapshot, even if the training script is still writing the source.
    """
    digest = hashlib.sha256()
    size = 0
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while n := fin.readinto(buf):
            chunk = view[:n]
            digest.update(chunk)
            fout.write(chunk)
            size += n
    try:
        os.utime(dst, ns=(os.stat(src).st_atime_ns, os.stat(src).st_mtime_ns))
    except OSError:
        pass
    return digest.hexdigest(), size


# -- parts ---------------------------------------------------------------------------------------------------------
@attrs.define
class ArtifactFile:
    """A file within an artifact. `local_path` is absolute; `artifact_path` is relative to the artifact root."""

    local_path: str
    artifact_path: str
    description: str | None = None
    size_bytes: int = 0
    checksum: str | None = None  # sha256 hex digest


@attrs.define
class ArtifactObject:
    """A Python object within an artifact, written with `serializer` when the artifact is logged.

    `path` is the serialized file once there is one (in a snapshot or a store); `obj` is None for objects
    read back from a store until they are loaded.
    """

    obj: Any
    name: str
    serializer: str = "json"
    description: str | None = None
    path: str | None = None
    size_bytes: int | None = None
    checksum: str | None = None


@attrs.define
class ArtifactReference:
    """An external object (S3, GCS, HTTP, ...) recorded by URI instead of uploaded."""

    uri: str
    size_bytes: int | None = None
    description: str | None = None


PENDING, OK, FAILED = "pending", "ok", "failed"


@attrs.define
class ArtifactResult:
    """What one backend made of a logged artifact.

    `log_artifact` returns results in the `pending` state; the backend's worker fills `uri`, `version` and
    `metadata` (state `ok`) or `error` (state `failed`) when it delivers. `wait()` blocks until then.
    """

    backend: str
    uri: str = ""
    version: str = ""
    metadata: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None
    status: str = PENDING
    _done: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False, eq=False)

    @property
    def success(self) -> bool:
        return self.status == OK

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the backend has stored the artifact or failed; False if `timeout` passed first."""
        return self._done.wait(timeout)

    def to_dict(self) -> dict[str, Any]:
        return _converter.unstructure(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactResult:
        return _converter.structure(data, cls)


# -- the artifact ----------------------------------------------------------------------------------------------
SERIALIZERS = ("json", "yaml", "pickle")
_SUFFIX = {"json": ".json", "yaml": ".yaml", "pickle": ".pkl", "torch": ".pt"}
UNSAFE_SERIALIZERS = frozenset({"pickle", "torch"})  # loading them can run code


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@attrs.define(eq=False)
class TraceletArtifact:
    """An artifact under construction (builder methods return self) or read back from a backend."""

    name: str = attrs.field(validator=lambda _s, _a, v: check_artifact_name(v))
    type: ArtifactType = attrs.field(alias="artifact_type", converter=to_artifact_type)
    description: str | None = None
    files: list[ArtifactFile] = attrs.field(factory=list, kw_only=True)
    objects: list[ArtifactObject] = attrs.field(factory=list, kw_only=True)
    references: list[ArtifactReference] = attrs.field(factory=list, kw_only=True)
    metadata: dict[str, Any] = attrs.field(factory=dict, kw_only=True)
    created_at: datetime = attrs.field(factory=_utcnow, kw_only=True)
    version: str | None = attrs.field(default=None, kw_only=True)  # set by the store it was read from

    @property
    def size_bytes(self) -> int:
        """Bytes of files plus serialized objects (objects count once they have been serialized)."""
        return sum(f.size_bytes for f in self.files) + sum(o.size_bytes or 0 for o in self.objects)

    def _taken(self, artifact_path: str) -> bool:
        return any(f.artifact_path == artifact_path for f in self.files)

    # -- builders ------------------------------------------------------------------------------------------------
    def add_file(
        self, local_path: str, artifact_path: str | None = None, description: str | None = None
    ) -> TraceletArtifact:
        """Add a local file (checksummed now, streaming); returns self for chaining."""
        path = Path(local_path).expanduser()
        if not path.exists():
            raise FileNotFoundError(2, "artifact file not found", str(path))
        if path.is_dir():
            raise IsADirectoryError(21, "add_file takes a file; use add_dir for a folder", str(path))
        target = check_artifact_path(artifact_path if artifact_path is not None else path.name)
        if self._taken(target):
            raise ArtifactPathError(f"artifact {self.name!r} already has a file at {target!r}")
        checksum, size = sha256_file(path)
        self.files.append(ArtifactFile(os.path.abspath(path), target, description, size, checksum))
        return self

    def add_dir(self, local_dir: str, artifact_path: str | None = None) -> TraceletArtifact:
        """Add every file under a folder, keeping the relative layout (under `artifact_path` if given)."""
        root = Path(local_dir).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(2, "artifact folder not found", str(root))
        prefix = check_artifact_path(artifact_path) + "/" if artifact_path else ""
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.add_file(str(path), prefix + path.relative_to(root).as_posix())
        return self

    def add_object(
        self, obj: Any, name: str, serializer: str = "json", description: str | None = None
    ) -> TraceletArtifact:
        """Add a Python object, serialized with "json", "yaml" or "pickle" when the artifact is logged."""
        if serializer not in SERIALIZERS:
            raise ValueError(f"unknown serializer {serializer!r}; expected one of {', '.join(SERIALIZERS)}")
        self._add_object(obj, name, serializer, description)
        return self

    def _add_object(self, obj: Any, name: str, serializer: str, description: str | None) -> ArtifactObject:
        name = check_artifact_path(name)
        if any(o.name == name for o in self.objects):
            raise ArtifactPathError(f"artifact {self.name!r} already has an object named {name!r}")
        if serializer == "pickle":
            logger.warning(
                "tracelet: object %r of artifact %r is pickled; unpickling runs code, so get_artifact "
                "loads it only when asked (load=True)",
                name,
                self.name,
            )
        item = ArtifactObject(obj, name, serializer, description)
        self.objects.append(item)
        return item

    def add_reference(
        self, uri: str, size_bytes: int | None = None, description: str | None = None
    ) -> TraceletArtifact:
        """Add an external reference (s3://, gs://, https://, file://, ...) instead of uploading bytes."""
        if not isinstance(uri, str) or not urlparse(uri).scheme:
            raise ValueError(f"reference must be a URI with a scheme (s3://, https://, file://...), got {uri!r}")
        if size_bytes is not None and (not isinstance(size_bytes, int) or size_bytes < 0):
            raise ValueError(f"size_bytes must be a non-negative int, got {size_bytes!r}")
        self.references.append(ArtifactReference(uri, size_bytes, description))
        return self

    def add_model(
        self,
        model: Any,
        framework: str | None = None,
        input_example: Any | None = None,
        description: str | None = None,
    ) -> TraceletArtifact:
        """Add an ML model: a torch `nn.Module` is saved as its state_dict, an sklearn-style estimator
        (fit/predict/get_params) is pickled, and anything else is pickled with a warning."""
        framework = _normalise_framework(framework) if framework else detect_framework(model)
        info: dict[str, Any] = {"framework": framework, "class": _qualname(model)}
        if framework == "pytorch":
            serializer = "torch"
            info["parameters"] = _torch_parameter_count(model)
        elif framework == "sklearn":
            serializer = "pickle"
            try:
                info["params"] = plain(model.get_params())
            except Exception:  # a duck-typed estimator may not take get_params() without arguments
                pass
        else:
            serializer = "pickle"
            logger.warning(
                "tracelet: model %s is not a recognised framework model; it is pickled as a plain object",
                info["class"],
            )
        count = sum(1 for o in self.objects if o.name == "model" or o.name.startswith("model_"))
        obj_name = "model" if count == 0 else f"model_{count + 1}"
        if framework == "unknown":  # already warned above; skip add_object's pickle warning
            check_artifact_path(obj_name)
            self.objects.append(ArtifactObject(model, obj_name, serializer, description))
        else:
            self._add_object(model, obj_name, serializer, description)
        info["object"] = obj_name
        info["serializer"] = serializer
        if input_example is not None:
            info["input_example"] = _describe_example(input_example)
            ex_serializer = _example_serializer(input_example, framework)
            self.objects.append(ArtifactObject(input_example, f"{obj_name}_input_example", ex_serializer))
        self.metadata.setdefault("models", []).append(info)
        return self

    # -- serialization -------------------------------------------------------------------------------------------
    def serialize_object(self, obj: ArtifactObject, temp_dir: str) -> str:
        """Write one object under `temp_dir` with its serializer; return the file's path."""
        path = Path(temp_dir) / (obj.name + _SUFFIX.get(obj.serializer, ".bin"))
        path.parent.mkdir(parents=True, exist_ok=True)
        value = obj.obj
        if obj.serializer == "json":
            try:
                text = json.dumps(value, indent=2, allow_nan=True)
            except (TypeError, ValueError) as exc:
                raise TypeError(
                    f"object {obj.name!r} of artifact {self.name!r} is not JSON-serialisable ({exc}); "
                    "use serializer='yaml' or 'pickle'"
                ) from None
            path.write_text(text, encoding="utf-8")
        elif obj.serializer == "yaml":
            yaml = _import_yaml()
            try:
                text = yaml.safe_dump(value, sort_keys=False)
            except yaml.YAMLError as exc:
                raise TypeError(f"object {obj.name!r} cannot be written as YAML ({exc}); use 'pickle'") from None
            path.write_text(text, encoding="utf-8")
        elif obj.serializer == "pickle":
            with open(path, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        elif obj.serializer == "torch":
            torch = sys.modules.get("torch") or __import__("torch")
            state = value.state_dict() if callable(getattr(value, "state_dict", None)) else value
            torch.save(state, path)
        else:
            raise ValueError(f"unknown serializer {obj.serializer!r}")
        return str(path)

    def load_objects(self, unsafe: bool = False) -> TraceletArtifact:
        """Read serialized objects back into `obj`: json and yaml always, pickle and torch only if `unsafe`."""
        for o in self.objects:
            if o.obj is None and o.path and (unsafe or o.serializer not in UNSAFE_SERIALIZERS):
                o.obj = load_object(o)
        return self

    # -- dict form -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict: objects appear by name/serializer/path (a json object's value inline)."""
        return _converter.unstructure(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceletArtifact:
        return _converter.structure(data, cls)

    def __repr__(self) -> str:
        version = f" {self.version}" if self.version else ""
        return (
            f"<TraceletArtifact {self.name!r}{version} type={self.type.value} files={len(self.files)} "
            f"objects={len(self.objects)} references={len(self.references)}>"
        )


def load_object(obj: ArtifactObject) -> Any:
    """Deserialize an object from its `path`."""
    assert obj.path is not None
    if obj.serializer == "json":
        return json.loads(Path(obj.path).read_text(encoding="utf-8"))
    if obj.serializer == "yaml":
        return _import_yaml().safe_load(Path(obj.path).read_text(encoding="utf-8"))
    if obj.serializer == "pickle":
        with open(obj.path, "rb") as f:
            return pickle.load(f)  # noqa: S301 - only reached when the caller asked for unsafe loading
    if obj.serializer == "torch":
        torch = __import__("torch")
        return torch.load(obj.path, weights_only=True)
    raise ValueError(f"unknown serializer {obj.serializer!r}")


def _import_yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise ImportError("the 'yaml' serializer needs PyYAML: pip install pyyaml") from None
    return yaml


# -- model detection (duck typing, no framework imports) ------------------------------------------------------
def detect_framework(model: Any) -> str:
    """"pytorch" for a torch nn.Module (Lightning included), "sklearn" for an estimator, else "unknown"."""
    for klass in type(model).__mro__:
        if klass.__name__ == "Module" and (klass.__module__ or "").startswith("torch.nn"):
            return "pytorch"
    if all(callable(getattr(model, a, None)) for a in ("fit", "predict", "get_params")):
        return "sklearn"
    return "unknown"


def _normalise_framework(framework: str) -> str:
    f = framework.lower()
    return {"torch": "pytorch", "pytorch": "pytorch", "lightning": "pytorch", "scikit-learn": "sklearn"}.get(f, f)


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _torch_parameter_count(model: Any) -> int | None:
    try:
        return int(sum(p.numel() for p in model.parameters()))
    except Exception:
        return None


def _describe_example(example: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"class": _qualname(example)}
    shape = getattr(example, "shape", None)
    if shape is not None:
        try:
            info["shape"] = [int(d) for d in shape]
        except TypeError:
            pass
    dtype = getattr(example, "dtype", None)
    if dtype is not None:
        info["dtype"] = str(dtype)
    return info


def _example_serializer(example: Any, framework: str) -> str:
    if framework == "pytorch" and hasattr(example, "shape"):
        return "torch"
    try:
        json.dumps(example)
        return "json"
    except (TypeError, ValueError):
        return "pickle"


# -- dict conversion -------------------------------------------------------------------------------------------
_converter = cattrs.Converter()
_converter.register_unstructure_hook(datetime, lambda d: d.isoformat())
_converter.register_structure_hook(datetime, lambda v, _: v if isinstance(v, datetime) else datetime.fromisoformat(v))
_converter.register_structure_hook(ArtifactType, lambda v, _: to_artifact_type(v))


def _unstructure_object(o: ArtifactObject) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": o.name,
        "serializer": o.serializer,
        "description": o.description,
        "path": o.path,
        "size_bytes": o.size_bytes,
        "checksum": o.checksum,
    }
    if o.serializer == "json" and o.obj is not None:
        d["obj"] = o.obj
    return d


def _structure_object(d: dict[str, Any], _: Any) -> ArtifactObject:
    return ArtifactObject(
        d.get("obj"),
        d["name"],
        d.get("serializer", "json"),
        d.get("description"),
        d.get("path"),
        d.get("size_bytes"),
        d.get("checksum"),
    )


_converter.register_unstructure_hook(ArtifactObject, _unstructure_object)
_converter.register_structure_hook(ArtifactObject, _structure_object)


def guess_type(path: str | os.PathLike[str]) -> ArtifactType:
    """The artifact type a file's extension suggests (used for plain paths and watched folders)."""
    suffix = Path(path).suffix.lower()
    return EXTENSION_TYPES.get(suffix, ArtifactType.CUSTOM)


EXTENSION_TYPES: dict[str, ArtifactType] = {
    **dict.fromkeys((".pt", ".pth", ".ckpt"), ArtifactType.CHECKPOINT),
    **dict.fromkeys((".safetensors", ".bin", ".h5", ".weights"), ArtifactType.WEIGHTS),
    **dict.fromkeys((".onnx", ".pkl", ".joblib", ".pb", ".tflite", ".keras", ".mlmodel"), ArtifactType.MODEL),
    **dict.fromkeys((".csv", ".tsv", ".parquet", ".npy", ".npz", ".arrow", ".tfrecord", ".jsonl"), ArtifactType.DATASET),
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp"), ArtifactType.IMAGE),
    **dict.fromkeys((".wav", ".mp3", ".flac", ".ogg", ".m4a"), ArtifactType.AUDIO),
    **dict.fromkeys((".mp4", ".avi", ".mov", ".mkv", ".webm"), ArtifactType.VIDEO),
    **dict.fromkeys((".svg",), ArtifactType.VISUALIZATION),
    **dict.fromkeys((".html", ".htm", ".ipynb", ".pdf", ".md"), ArtifactType.REPORT),
    **dict.fromkeys((".yaml", ".yml", ".json", ".toml", ".ini", ".cfg"), ArtifactType.CONFIG),
    **dict.fromkeys((".py", ".sh"), ArtifactType.CODE),
}
