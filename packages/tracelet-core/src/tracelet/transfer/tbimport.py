"""`tracelet import-tb`: TensorBoard event files → local runs (then `tracelet sync` sends them anywhere).

Guarantees:

- **TensorBoard's own reader.** Files are read with `tensorboard`'s `LegacyEventFileLoader` (what its
  `EventAccumulator` reads with), one event at a time: memory stays bounded by one journal frame and one event
  beyond the reader's own read buffer (TensorBoard's block size), however many points a file holds (a test
  imports 200,000 scalars). `tensorboard` is imported only here.
- **One run per run directory.** Every directory holding event files is one run; its path below LOGDIR
  (`a/b`) is the run's name, so nested directories stay as name prefixes. A `SummaryWriter.add_hparams`
  session (its own subdirectory) is a run too, as TensorBoard shows it. Event files of a directory are read
  in name order (TensorBoard's names start with the creation time).
- **What becomes what.** Scalars → metrics with their step and wall time. An hparams session → params
  (`session_start_info.hparams`), its metrics are the scalars of its directory. Text → a tag `<tag>` (the
  name given to `add_text`, without the `/text_summary` its writers append, as a live capture names it) when a
  tag has one short value (≤ `TEXT_TAG_MAX` characters), else a `report` artifact `text-<tag>` (a Markdown
  file with every step). With `with_media`: histograms → a `viz` artifact `histogram-<tag>` (JSON lines of
  buckets per step), images → an `image` artifact `image-<tag>` (one PNG per step). Without it they are
  counted as skipped. Other plugins' data (audio, PR curves, graphs, ...) is counted as skipped.
- **Recognised on a second import.** The run id is derived from the run directory's absolute path, and the
  run records its event files' names and sizes (`import` in run.json): the same files again → the existing
  run is reported, nothing is written. Files that changed (a run that went on) → the run is imported again
  in place; backend runs it was synced to are kept, and the next sync replays it into them from the first
  event (MLflow keeps one copy of a repeated point).
- The run is written like a finished live run (status FINISHED, tags `["tensorboard"]`, `created_at` and
  `ended_at` from the first and last wall times), directly in the journal format (`tracelet.core.engine.journal`),
  since a live run would stamp every point with the import's time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import attrs

from tracelet.core.contract.records import ARTIFACT, METRIC, PARAMS, TAGS
from tracelet.core.engine import journal
from tracelet.exceptions import ConfigurationError
from tracelet.transfer.progress import Progress
from tracelet.transfer.state import SYNC_KEY

TEXT_TAG_MAX = 500
TEXT_SUFFIX = "/text_summary"  # what torch's and tensorboardX's add_text append to the tag
CHUNK = journal.FRAME_EVENTS  # events per journal append: memory per run stays at one frame
IMPORT_TAG = "tensorboard"


@attrs.define
class ImportedRun:
    run_id: str
    name: str
    path: Path
    events: int = 0  # journal events written (0 for an existing run)
    existing: bool = False  # recognised from an earlier import
    skipped: dict[str, int] = attrs.field(factory=dict)  # data not imported, by kind


def _run_dirs(logdir: Path) -> list[Path]:
    """Directories holding event files, in path order (TensorBoard's own test of an event file's name)."""
    from tensorboard.backend.event_processing import io_wrapper

    found = []
    for root, dirs, files in os.walk(logdir):
        dirs.sort()
        if any(io_wrapper.IsSummaryEventsFile(f) for f in files):
            found.append(Path(root))
    return found


def _event_files(run_dir: Path) -> list[Path]:
    from tensorboard.backend.event_processing import io_wrapper

    return sorted(p for p in run_dir.iterdir() if p.is_file() and io_wrapper.IsSummaryEventsFile(p.name))


def _fingerprint(files: list[Path]) -> dict[str, int]:
    return {f.name: f.stat().st_size for f in files}


def _run_id(run_dir: Path) -> str:
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return f"tb-{digest}"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name).strip("._") or "default"


def import_tb(
    logdir: str | os.PathLike[str],
    *,
    project: str | None = None,
    dir: str | os.PathLike[str] | None = None,
    with_media: bool = False,
    progress: bool | None = False,
    out: TextIO | None = None,
) -> list[ImportedRun]:
    """Import every run under `logdir` into the local store `dir` (default TRACELET_DIR); see the module doc."""
    from tracelet import store

    base = Path(logdir)
    if not base.is_dir():
        raise ConfigurationError(f"import-tb: {logdir} is not a directory")
    runs_dirs = _run_dirs(base)
    if not runs_dirs:
        raise ConfigurationError(f"import-tb: no TensorBoard event files (events.out.tfevents.*) under {logdir}")
    project = project or base.resolve().name or "tensorboard"
    root = Path(dir) if dir is not None else store.default_root()
    total_bytes = sum(f.stat().st_size for d in runs_dirs for f in _event_files(d))
    bar = Progress.create(progress, out, f"import-tb {base}", total_bytes, unit="bytes")
    done_bytes = 0
    results = []
    for run_dir in runs_dirs:
        rel = run_dir.relative_to(base).as_posix()
        name = rel if rel != "." else base.resolve().name
        files = _event_files(run_dir)
        result = _import_one(
            run_dir,
            files,
            name,
            project,
            root / _safe(project),
            with_media,
            lambda n, base=done_bytes: bar.update(base + n),
        )
        done_bytes += sum(f.stat().st_size for f in files)
        bar.update(done_bytes)
        results.append(result)
    bar.close()
    return results


class _Writer:
    """Streams events of one run into its journal, a frame at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.journal = journal.JournalWriter(run_dir)
        self.pending: list[tuple] = []
        self.count = 0

    def add(self, event: tuple) -> None:
        self.pending.append(event)
        if len(self.pending) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.journal.append(self.count, self.pending)
            self.count += len(self.pending)
            self.pending = []

    def close(self) -> None:
        self.flush()
        self.journal.close()


def _import_one(
    src: Path, files: list[Path], name: str, project: str, project_dir: Path, with_media: bool, on_bytes: Any
) -> ImportedRun:
    run_id = _run_id(src)
    dest = project_dir / run_id
    fingerprint = _fingerprint(files)
    meta_path = dest / journal.META_FILE
    synced: dict[str, Any] = {}
    if meta_path.exists():
        old = journal.read_meta(dest)
        if (old.get("import") or {}).get("files") == fingerprint:
            return ImportedRun(run_id, name, dest, existing=True)
        # Re-imported: its backend runs are kept, to be replayed from the first event by the next sync.
        for backend, entry in (old.get(SYNC_KEY) or {}).items():
            if isinstance(entry, dict) and entry.get("run_id"):
                synced[backend] = {**entry, "cursor": 0, "ended": False, "status": None, "artifacts": []}
    # run.json is written last: a folder without it is no run to readers, and an interrupted import is
    # simply done again by the next one.
    if dest.exists():
        shutil.rmtree(dest)
    try:
        return _write_run(src, files, name, project, run_id, dest, fingerprint, with_media, on_bytes, synced)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _write_run(
    src: Path,
    files: list[Path],
    name: str,
    project: str,
    run_id: str,
    out: Path,
    fingerprint: dict[str, int],
    with_media: bool,
    on_bytes: Any,
    synced: dict[str, Any],
) -> ImportedRun:
    # The legacy loader, as TensorBoard's EventAccumulator reads: legacy values (simple_value, histo, image) are
    # handled as they are, without converting each into a tensor first.
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    writer = _Writer(out)
    result = ImportedRun(run_id, name, out)
    media = _Media(out, with_media)
    texts: dict[str, list[tuple[int, float, str]]] = {}
    plugins: dict[str, str] = {}  # tag -> plugin name (TF2 writers put the metadata on a tag's first value only)
    first = last = None
    read = 0
    for path in files:
        for event in LegacyEventFileLoader(str(path)).Load():
            wall = float(event.wall_time)
            if event.HasField("summary"):
                first = wall if first is None else min(first, wall)
                last = wall if last is None else max(last, wall)
                for value in event.summary.value:
                    _value(value, int(event.step), wall, plugins, writer, texts, media, result)
        read += path.stat().st_size
        on_bytes(read)
    for tag, points in texts.items():
        if len(points) == 1 and len(points[0][2]) <= TEXT_TAG_MAX:
            writer.add((TAGS, {tag: points[0][2]}, points[0][1]))
        else:
            media.text(tag, points, writer)
    media.finish(writer)
    writer.close()
    created = datetime.fromtimestamp(first if first is not None else os.path.getmtime(files[0]), timezone.utc)
    ended = datetime.fromtimestamp(last if last is not None else created.timestamp(), timezone.utc)
    result.events = writer.count
    journal.write_meta(
        out,
        {
            "run_id": run_id,
            "name": name,
            "project": project,
            "created_at": created.isoformat(),
            "ended_at": ended.isoformat(),
            "status": "FINISHED",
            "tags": [IMPORT_TAG],
            "backends": ["local"],
            "events": writer.count,
            "metadata": {"source": "tensorboard", "logdir": str(src.resolve())},
            "import": {
                "source": "tensorboard",
                "path": str(src.resolve()),
                "files": fingerprint,
                "skipped": result.skipped,
            },
            **({SYNC_KEY: synced} if synced else {}),
        },
    )
    return result


def _value(
    value: Any,
    step: int,
    wall: float,
    plugins: dict[str, str],
    writer: _Writer,
    texts: dict[str, list[tuple[int, float, str]]],
    media: _Media,
    result: ImportedRun,
) -> None:
    kind = value.WhichOneof("value")
    if kind == "simple_value":  # the common case first: a legacy scalar (torch's add_scalar)
        writer.add((METRIC, value.tag, float(value.simple_value), step, wall))
        return
    tag = value.tag
    plugin = value.metadata.plugin_data.plugin_name
    if plugin:
        plugins[tag] = plugin
    else:
        plugin = plugins.get(tag, "")
    if kind == "histo":
        plugin = "histograms"
        if media.enabled:
            media.histogram(tag, step, wall, _legacy_buckets(value.histo))
            return
    elif kind == "image":
        plugin = "images"
        if media.enabled:
            media.image(tag, step, [value.image.encoded_image_string])
            return
    elif plugin == "scalars":
        writer.add((METRIC, tag, _scalar(value.tensor), step, wall))
        return
    elif plugin == "hparams":
        params = _hparams(value.metadata.plugin_data.content)
        if params:
            writer.add((PARAMS, params, wall))
        return
    elif plugin == "text":
        texts.setdefault(_text_tag(tag), []).append((step, wall, _text(value.tensor)))
        return
    elif plugin == "histograms" and media.enabled:
        from tensorboard.util import tensor_util

        media.histogram(tag, step, wall, tensor_util.make_ndarray(value.tensor).tolist())
        return
    elif plugin == "images" and media.enabled:
        media.image(tag, step, list(value.tensor.string_val)[2:])  # [width, height, image, ...]
        return
    name = plugin or kind or "unknown"
    result.skipped[name] = result.skipped.get(name, 0) + 1


def _legacy_buckets(histo: Any) -> list[list[float]]:
    """A HistogramProto as [[left, right, count], ...], the form TensorBoard's histograms plugin uses."""
    out, left = [], float(histo.min)
    for right, count in zip(histo.bucket_limit, histo.bucket):
        if count:
            out.append([left, min(float(right), float(histo.max)), float(count)])
        left = float(right)
    return out


def _text_tag(tag: str) -> str:
    """The name the script gave `add_text`: PyTorch's and tensorboardX's writers store `add_text("notes", ...)`
    as `notes/text_summary`, while a live run captured by tracelet-torch records it as `notes`."""
    return tag.removesuffix(TEXT_SUFFIX) or tag


def _scalar(tensor: Any) -> float:
    if len(tensor.float_val) == 1:  # the common case, without building an array
        return float(tensor.float_val[0])
    if len(tensor.double_val) == 1:
        return float(tensor.double_val[0])
    from tensorboard.util import tensor_util

    return float(tensor_util.make_ndarray(tensor).item())


def _text(tensor: Any) -> str:
    from tensorboard.util import tensor_util

    values = tensor_util.make_ndarray(tensor).flatten().tolist()
    return "\n".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values)


def _hparams(content: bytes) -> dict[str, Any]:
    from tensorboard.plugins.hparams import metadata as hp_metadata
    from tensorboard.plugins.hparams import plugin_data_pb2

    data = plugin_data_pb2.HParamsPluginData.FromString(content)
    if data.version != hp_metadata.PLUGIN_DATA_VERSION or data.WhichOneof("data") != "session_start_info":
        return {}
    out: dict[str, Any] = {}
    for key, val in data.session_start_info.hparams.items():
        kind = val.WhichOneof("kind")
        if kind == "number_value":
            number = val.number_value
            out[key] = int(number) if number.is_integer() and abs(number) < 2**53 else number
        elif kind == "string_value":
            out[key] = val.string_value
        elif kind == "bool_value":
            out[key] = val.bool_value
    return out


class _Media:
    """Text, histograms and images gathered on disk (not in memory) and logged as artifacts at the end."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self._work: Path | None = None
        self._hist: dict[str, Any] = {}
        self._images: set[str] = set()
        self._last_wall = 0.0

    def _folder(self, *parts: str) -> Path:
        if self._work is None:
            self._work = Path(tempfile.mkdtemp(prefix="tracelet-tb-"))
        path = self._work.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def histogram(self, tag: str, step: int, wall: float, buckets: list[list[float]]) -> None:
        if tag not in self._hist:
            self._hist[tag] = open(self._folder("hist") / f"{len(self._hist)}.jsonl", "w", encoding="utf-8")
        self._hist[tag].write(json.dumps({"step": step, "wall_time": wall, "buckets": buckets}) + "\n")
        self._last_wall = max(self._last_wall, wall)

    def image(self, tag: str, step: int, encoded: list[bytes]) -> None:
        folder = self._folder("img", hashlib.sha256(tag.encode()).hexdigest()[:16])
        for i, data in enumerate(encoded):
            suffix = f"_{i}" if len(encoded) > 1 else ""
            (folder / f"step_{step:08d}{suffix}.png").write_bytes(data)
        self._images.add(tag)

    def text(self, tag: str, points: list[tuple[int, float, str]], writer: _Writer) -> None:
        path = self._folder("text") / f"{hashlib.sha256(tag.encode()).hexdigest()[:16]}.md"
        with open(path, "w", encoding="utf-8") as f:
            for step, _wall, text in points:
                f.write(f"## step {step}\n\n{text}\n\n")
        self._log(writer, f"text-{tag}", "report", [(path, f"{_safe(tag)}.md")], points[-1][1])

    def finish(self, writer: _Writer) -> None:
        try:
            for i, (tag, f) in enumerate(self._hist.items()):
                f.close()
                path = self._folder("hist") / f"{i}.jsonl"
                self._log(writer, f"histogram-{tag}", "viz", [(path, f"{_safe(tag)}.jsonl")], self._last_wall)
            for tag in sorted(self._images):
                folder = self._folder("img", hashlib.sha256(tag.encode()).hexdigest()[:16])
                files = [(p, f"{_safe(tag)}/{p.name}") for p in sorted(folder.iterdir())]
                self._log(writer, f"image-{tag}", "image", files, self._last_wall)
        finally:
            if self._work is not None:
                shutil.rmtree(self._work, ignore_errors=True)

    def _log(self, writer: _Writer, name: str, kind: str, files: list[tuple[Path, str]], wall: float) -> None:
        """Snapshot into the run's staging folder, store as a local version, and journal the artifact event."""
        from tracelet.core.artifacts import TraceletArtifact
        from tracelet.core.artifacts import folder as local_folder

        artifact = TraceletArtifact(_artifact_name(name), kind, "imported from TensorBoard")
        token = uuid.uuid4().hex
        staging = journal.staging_root(self.run_dir) / token
        for path, rel in files:
            dst = staging / "files" / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dst)
            artifact.add_file(str(dst), rel)
        local_folder.store(journal.artifacts_root(self.run_dir), artifact)
        payload = {
            "token": token,
            "targets": ["local"],
            "staging": str(staging),
            "artifact": artifact.to_dict(),
            "snapshots": {},
        }
        writer.add((ARTIFACT, payload, wall))


def _artifact_name(name: str) -> str:
    """Artifact names are one folder: no separators (TensorBoard tags use '/')."""
    return name.replace("/", "_").replace("\\", "_").lstrip(".") or "tensorboard"
