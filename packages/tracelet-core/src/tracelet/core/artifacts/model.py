"""The artifact model: a typed, named bundle of files, serialized objects and external references.

Builders (`TraceletArtifact.add_*`) validate eagerly on the calling thread (missing files, paths that escape
the artifact, unknown serializers), so mistakes surface where they are made. Objects are serialized when the
artifact is logged (see `tracelet.core.artifacts.manager`), not when they are added.

Nothing here imports torch, sklearn or PyYAML: models are recognised by duck typing
(`tracelet.core.artifacts.detect`) and PyYAML is imported only when the `yaml` serializer is used.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import attrs
import cattrs

from tracelet.core.artifacts import detect, serializers
from tracelet.core.artifacts.kinds import ArtifactType, to_artifact_type
from tracelet.core.artifacts.paths import (
    ArtifactPathError,
    check_artifact_name,
    check_artifact_path,
    sha256_file,
)
from tracelet.core.contract.values import plain

logger = logging.getLogger("tracelet")


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


class ArtifactStatus(str, enum.Enum):
    """Where one backend's copy of a logged artifact stands (a str, so `result.status == "ok"` holds)."""

    PENDING = "pending"
    OK = "ok"
    FAILED = "failed"


PENDING, OK, FAILED = ArtifactStatus.PENDING, ArtifactStatus.OK, ArtifactStatus.FAILED


@attrs.define(repr=False)
class ArtifactResult:
    """What one backend made of a logged artifact.

    `log_artifact` returns results in the `pending` state; the backend's worker fills `uri`, `version` and
    `metadata` (state `ok`) or `error` (state `failed`) when it delivers. `wait()` blocks until then, and so
    does reading `uri`, `version`, `metadata`, `status`, `error` or `success` of a pending result (at most the
    run's stop timeout; then the value as it stands), except the ones the core fills before `log_artifact`
    returns: `version` (the version the backend stores it as when versions follow the logging order; the
    backend's answer replaces it) and, for the local store, `uri` and `metadata` too. `done` and `repr()`
    never wait.
    """

    backend: str
    uri: str = ""
    version: str = ""
    metadata: dict[str, Any] = attrs.field(factory=dict)
    error: str | None = None
    status: ArtifactStatus = attrs.field(default=PENDING, converter=ArtifactStatus)
    _done: threading.Event = attrs.field(factory=threading.Event, init=False, repr=False, eq=False)
    # Set by the artifact manager on the results it hands out: how long a read may wait, and the fields it
    # filled itself (read without waiting). None: a result made by a backend, never waited on.
    _read_timeout: float | None = attrs.field(default=None, init=False, repr=False, eq=False)
    _early: frozenset[str] = attrs.field(factory=frozenset, init=False, repr=False, eq=False)

    def _settle(self, field: str) -> None:
        timeout = self._read_timeout
        if timeout is not None and field not in self._early and not self._done.is_set():
            self._done.wait(timeout)

    def __repr__(self) -> str:
        fields = ("backend", "uri", "version", "metadata", "error", "status")
        return "ArtifactResult(" + ", ".join(f"{f}={_WAITLESS[f].__get__(self)!r}" for f in fields) + ")"

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


class _Settled:
    """A field of ArtifactResult whose read waits for a pending result first (see its docstring)."""

    def __init__(self, name: str, slot: Any) -> None:
        self.name = name
        self.slot = slot

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self.slot
        obj._settle(self.name)
        return self.slot.__get__(obj, owner)

    def __set__(self, obj: Any, value: Any) -> None:
        self.slot.__set__(obj, value)


_WAITLESS = {f: ArtifactResult.__dict__[f] for f in ("backend", "uri", "version", "metadata", "error", "status")}
# `status` and `error` too: `results["mlflow"].success` read right after `log_artifact` is the backend's answer,
# not "still pending" (`done` is the way to ask without waiting).
for _field in ("uri", "version", "metadata", "status", "error"):
    setattr(ArtifactResult, _field, _Settled(_field, _WAITLESS[_field]))


# -- the artifact ----------------------------------------------------------------------------------------------
SERIALIZERS = serializers.SERIALIZERS
UNSAFE_SERIALIZERS = serializers.UNSAFE_SERIALIZERS


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
        if not path.is_file():  # a FIFO, socket or device: reading it to checksum it would block or never end
            raise ValueError(f"add_file takes a regular file; {str(path)!r} is not one (a pipe, socket or device)")
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
        framework = detect.normalise_framework(framework) if framework else detect.detect_framework(model)
        info: dict[str, Any] = {"framework": framework, "class": detect.qualname(model)}
        if framework == "pytorch":
            serializer = "torch"
            info["parameters"] = detect.torch_parameter_count(model)
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
            info["input_example"] = detect.describe_example(input_example)
            ex_serializer = detect.example_serializer(input_example, framework)
            self.objects.append(ArtifactObject(input_example, f"{obj_name}_input_example", ex_serializer))
        self.metadata.setdefault("models", []).append(info)
        return self

    # -- serialization -------------------------------------------------------------------------------------------
    def serialize_object(self, obj: ArtifactObject, temp_dir: str) -> str:
        """Write one object under `temp_dir` with its serializer; return the file's path."""
        path = Path(temp_dir) / serializers.file_name(obj.name, obj.serializer)
        serializers.write(obj.obj, obj.serializer, path, what=f"object {obj.name!r} of artifact {self.name!r}")
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
    if obj.path is None:
        raise ValueError(f"object {obj.name!r} has no serialized file to load")
    return serializers.read(obj.path, obj.serializer)


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
