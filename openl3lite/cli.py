"""``l3embed``: the command-line interface.

Embedding commands (``audio``, ``image``, ``video``) share one batch-job loop: expand inputs
(files, folders searched recursively, glob patterns), skip existing outputs unless
``--overwrite``, write each output atomically, keep going past bad files, and finish with a
summary line and a non-zero exit status if any file failed.
"""

import argparse
import functools
import glob
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import click

import openl3lite  # noqa: F401 (sets TF_CPP_MIN_LOG_LEVEL to 3 unless the user set it)

from . import checks
from .errors import OpenL3liteError
from .facts import (AUDIO_EMBEDDING_SIZES, AUDIO_EXTENSIONS, CONTENT_TYPES, DEFAULT_BATCH_SIZE,
                    DEFAULT_CONTENT_TYPE, DEFAULT_ENGINE, DEFAULT_HOP_SIZE, DEFAULT_INPUT_REPR,
                    DEFAULT_RESAMPLER, ENGINES, EXPORT_FORMATS, EXPORT_PARTS, FRONTENDS,
                    IMAGE_EMBEDDING_SIZES, IMAGE_EXTENSIONS, INPUT_REPRS, RESAMPLERS,
                    VIDEO_EXTENSIONS)
from .quiet import import_backend_quietly, wants_tensorflow_messages  # noqa: F401 (public)
from .training import config as train_config


# ---------------------------------------------------------------- input expansion

def expand_inputs(inputs, extensions):
    """Turn CLI inputs into a sorted, de-duplicated list of files.

    Parameters
    ----------
    inputs : sequence of str
        Files (taken as given), folders (searched recursively for ``extensions``) or glob
        patterns (``**`` allowed).
    extensions : tuple of str
        Lower-case extensions, with the dot, that folder searches keep.

    Returns
    -------
    files : list of str
    unmatched : list of str
        Inputs that named nothing.
    """
    files, unmatched = [], []
    for item in inputs:
        if os.path.isdir(item):
            found = [os.path.join(root, name)
                     for root, _, names in os.walk(item) for name in names
                     if name.lower().endswith(extensions) and not name.startswith(".")]
            files.extend(sorted(found))
            if not found:
                unmatched.append(item)
        elif os.path.isfile(item):
            files.append(item)
        else:
            matches = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            files.extend(matches)
            if not matches:
                unmatched.append(item)
    seen, unique = set(), []
    for path in files:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique, unmatched


#: The usage error of an embedding command given nothing to embed.
NO_INPUTS = "give INPUTS (files, folders or glob patterns) or --files-from LIST"


def parse_file_list(lines):
    """The paths of a file list: one a line, surrounding white space removed; blank lines and
    lines starting with ``#`` are left out (write ``./#name`` for a file named ``#name``).

    Parameters
    ----------
    lines : iterable of str

    Returns
    -------
    list of str
    """
    paths = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            paths.append(text)
    return paths


def read_file_list(source):
    """The paths listed in the file ``source``, or on standard input for ``-``, as
    :func:`parse_file_list` reads them (undecodable bytes kept as ``os.fsdecode`` keeps them).

    Raises
    ------
    click.BadParameter
        The list cannot be read.
    """
    encoding, errors = sys.getfilesystemencoding(), "surrogateescape"
    if source == "-":
        stream = click.get_binary_stream("stdin")
        return parse_file_list(stream.read().decode(encoding, errors).splitlines())
    try:
        with open(source, encoding=encoding, errors=errors) as f:
            return parse_file_list(f)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {source}: {exc.strerror or exc}",
                                 param_hint="--files-from") from None


def shard_of(path, n_shards):
    """Which of ``n_shards`` shards a path belongs to: a stable hash (BLAKE2b) of the
    normalised path, the same in every run, on every machine and whatever the other inputs.

    Parameters
    ----------
    path : str
    n_shards : int

    Returns
    -------
    int
        In ``range(n_shards)``.
    """
    import hashlib

    digest = hashlib.blake2b(os.fsencode(os.path.normpath(path)), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


class ShardParam(click.ParamType):
    """``I/N``: the I-th of N shards, counted from 0."""

    name = "I/N"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        index, sep, count = str(value).partition("/")
        try:
            index, count = int(index), int(count)
        except ValueError:
            index = count = None
        if not sep or count is None:
            self.fail(f"expected I/N (two integers, e.g. 0/4), got {value!r}", param, ctx)
        if count < 1:
            self.fail(f"N must be at least 1, got {value!r}", param, ctx)
        if not 0 <= index < count:
            self.fail(f"I must be from 0 to N-1 = {count - 1} (shards count from 0), got "
                      f"{value!r}", param, ctx)
        return index, count


def select_inputs(inputs, files_from, shard, extensions):
    """The files a command embeds: ``inputs`` and the paths of ``files_from``, expanded by
    :func:`expand_inputs`, then only those of ``shard``.

    Parameters
    ----------
    inputs : sequence of str
    files_from : str or None
        A file list (``-``: standard input), as :func:`read_file_list` reads it.
    shard : (int, int) or None
        ``(I, N)``: keep the inputs with :func:`shard_of` equal to I. Inputs that name nothing
        are sharded the same way, so exactly one shard reports each.
    extensions : tuple of str

    Returns
    -------
    files : list of str
    unmatched : list of str

    Raises
    ------
    click.UsageError
        Neither inputs nor a file list.
    """
    items = list(inputs)
    if files_from is not None:
        items += read_file_list(files_from)
    elif not items:
        raise click.UsageError(NO_INPUTS)
    files, unmatched = expand_inputs(items, extensions)
    if shard is not None:
        index, count = shard
        files = [p for p in files if shard_of(p, count) == index]
        unmatched = [p for p in unmatched if shard_of(p, count) == index]
    return files, unmatched


# ---------------------------------------------------------------- the shared batch job

@dataclass
class JobSummary:
    """Outcome of a batch job."""

    processed: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    failed: list = field(default_factory=list)  # (path, reason)

    def line(self):
        """One-line summary."""
        return (f"{len(self.processed)} processed, {len(self.skipped)} skipped (output exists), "
                f"{len(self.failed)} failed")


def run_job(files, outputs_of, process, overwrite, quiet, unmatched=(), execute=None):
    """Process files, never stopping at a bad one.

    Parameters
    ----------
    files : list of str
    outputs_of : callable
        path -> list of output paths it writes.
    process : callable
        path -> None; writes the outputs (atomically) or raises.
    overwrite : bool
        Replace existing outputs.
    quiet : bool
        No progress bar and no per-file messages (errors and the library's warnings about an
        input, e.g. audio shorter than a window, are still reported, one line each).
    unmatched : sequence of str
        Inputs that named no file; reported as failures.
    execute : callable, optional
        list of paths to process -> iterable of :class:`openl3lite.jobs.Outcome`, one per
        path in any order (e.g. :func:`openl3lite.raydata.run_job_on_ray`). Default: each
        path through :func:`openl3lite.jobs.attempt` with ``process``, one after the other.

    Returns
    -------
    JobSummary
    """
    from .jobs import attempt
    from .quiet import progress_bar

    summary = JobSummary()
    for item in unmatched:
        summary.failed.append((item, "no such file, or no supported file matched"))
        click.echo(f"error: {item}: no such file, or no supported file matched", err=True)
    todo = _paths_to_process(files, outputs_of, overwrite, quiet, summary)
    if execute is None:
        outcomes = (attempt(process, path) for path in todo)
    else:
        outcomes = execute(todo)
    bar = progress_bar(total=len(todo), unit="file", disable=quiet or len(todo) < 2,
                       desc="files")
    try:
        for outcome in outcomes:
            _report(outcome, outputs_of(outcome.path), summary, quiet)
            bar.update()
    finally:
        bar.close()
    click.echo(summary.line(), err=bool(summary.failed))
    return summary


def _paths_to_process(files, outputs_of, overwrite, quiet, summary):
    """The files to process: not those whose outputs exist (unless ``overwrite``; they are
    recorded as skipped) nor those whose output another input already claims (failed)."""
    from tqdm.auto import tqdm

    claimed, todo = {}, []
    for path in files:
        outputs = outputs_of(path)
        clash = next((claimed[o] for o in outputs if o in claimed), None)
        if clash is not None:
            reason = f"its output would overwrite that of {clash}; use --suffix or --output-dir"
            summary.failed.append((path, reason))
            tqdm.write(f"error: {path}: {reason}", file=sys.stderr)
            continue
        for o in outputs:
            claimed[o] = path
        if not overwrite and all(os.path.exists(o) for o in outputs):
            summary.skipped.append(path)
            if not quiet:
                tqdm.write(f"skipped {path}: {', '.join(outputs)} exists (--overwrite replaces it)")
            continue
        todo.append(path)
    return todo


def _report(outcome, outputs, summary, quiet):
    """Print what happened to one file (its warnings, then the error or what it wrote) and
    record it in ``summary``."""
    from tqdm.auto import tqdm

    for text in outcome.warnings:
        tqdm.write(f"warning: {text}", file=sys.stderr)
    if not outcome.ok:
        summary.failed.append((outcome.path, outcome.reason))
        tqdm.write(f"error: {outcome.message}", file=sys.stderr)
        return
    summary.processed.append(outcome.path)
    if not quiet:
        tqdm.write(f"wrote {', '.join(outputs)}")


def _with_path(path, exc):
    from .jobs import with_path

    return with_path(path, exc)


def _finish(summary):
    """End a batch command: exit status 1 if any file failed; on success return normally (so
    that ``main()`` called from Python returns, as OpenL3's does)."""
    if summary.failed:
        sys.exit(1)


# ---------------------------------------------------------------- shared options

def _common_output_options(func):
    options = [
        click.option("--output-dir", "-o", type=click.Path(file_okay=False), default=None,
                     help="Folder for the .npz outputs (created if needed). Default: beside each "
                          "input."),
        click.option("--suffix", "-x", default=None,
                     help="Added to output names: x.wav -> x_SUFFIX.npz."),
        click.option("--overwrite", "-ow", is_flag=True,
                     help="Replace existing outputs (default: skip inputs whose output exists)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars or per-file messages."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _ray_address(ctx, param, value):
    """``--ray``'s address, refused if it names an existing path (``--ray DIR`` took an input
    as the address) or if Ray is not installed (said before any model is loaded)."""
    if value is None:
        return value
    if value != "local" and os.path.exists(value):
        raise click.BadParameter(
            f"took {value!r}, an existing path, as the Ray cluster's address; put --ray after "
            "the inputs or before another option, or write --ray=ADDRESS", ctx, param)
    from .raydata import require_ray

    try:
        require_ray()
    except OpenL3liteError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


def _input_and_engine_options(func):
    options = [
        click.option("--files-from", type=click.Path(dir_okay=False, allow_dash=True),
                     default=None, metavar="LIST",
                     help="Also embed the paths listed in LIST, one a line (- reads standard "
                          "input); blank lines and lines starting with # are left out. Each "
                          "is taken as an INPUT: a file, folder or glob pattern."),
        click.option("--shard", type=ShardParam(), default=None,
                     help="Embed only shard I of N (I from 0 to N-1) of the inputs: N runs with "
                          "the same inputs and I = 0..N-1 cover every input exactly once, "
                          "chosen by a stable hash of its path (e.g. a SLURM job array: "
                          "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)."),
        click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
                     metavar="[ADDRESS]", callback=_ray_address,
                     help="Run on Ray Data actors, each loading the model once (needs "
                          "pip install 'openl3lite[ray]'): on a new local cluster, or on the "
                          "cluster at ADDRESS (auto, HOST:PORT, ray://HOST:PORT). Inputs and "
                          "outputs must be at the same paths on every node. Put it after the "
                          "inputs, or write --ray=ADDRESS."),
        click.option("--ray-workers", type=POSITIVE_INT, default=None,
                     help="With --ray: actors (model copies) to run. Default: as many as the "
                          "cluster's CPUs (or GPUs, with --ray-gpus) allow."),
        click.option("--ray-cpus", type=POSITIVE_FLOAT, default=1.0, show_default=True,
                     metavar="N", help="With --ray: CPUs each actor reserves."),
        click.option("--ray-gpus", type=click.FloatRange(min=0), default=0.0,
                     show_default=True, metavar="N",
                     help="With --ray: GPUs each actor reserves (e.g. 1, or 0.5 for two "
                          "actors a GPU)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class ModelArgument(click.ParamType):
    """A model name (``l3embed models`` lists them) or an existing weights file."""

    name = "MODEL"

    def convert(self, value, param, ctx):
        from . import registry

        if registry.is_model_name(value) or os.path.isfile(value):
            return value
        self.fail(f"{value!r} is neither a model name (see `l3embed models`) nor an existing "
                  "file", param, ctx)


MODEL = ModelArgument()


def positive_float(value):
    """OpenL3's argument type for positive numbers: ``float(value)`` if it is over 0.

    Raises
    ------
    argparse.ArgumentTypeError
        For anything that is not a positive number.
    """
    try:
        number = float(value)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"expected a positive float, error message: {exc}")
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive float, got {value!r}")
    return number


def positive_int(value):
    """OpenL3's argument type for positive integers: ``int(value)`` if it is over 0.

    Raises
    ------
    argparse.ArgumentTypeError
    """
    try:
        number = int(value)
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"expected a positive int, error message: {exc}")
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {value!r}")
    return number


class _Checked(click.ParamType):
    """A click type that parses the text with ``parse`` and checks the value with one of
    :mod:`openl3lite.checks`' functions, so the CLI refuses what the API refuses, saying the
    same (``Invalid value for --OPTION: VALUE: RULE``)."""

    def __init__(self, parse, check, name):
        self.parse, self.check, self.name = parse, check, name

    def convert(self, value, param, ctx):
        if not isinstance(value, str):  # a default, or a value given from Python
            text, number = repr(value), value
        else:
            text = value
            try:
                number = self.parse(value)
            except ValueError:
                self.fail(f"{value!r} is not {'an integer' if self.parse is int else 'a number'}",
                          param, ctx)
        try:
            return self.check(number)
        except OpenL3liteError as exc:
            self.fail(f"{text}: {str(exc).split(': ', 1)[-1]}", param, ctx)


POSITIVE_FLOAT = _Checked(float, functools.partial(checks.check_positive_number, "value"),
                          "SECONDS")
POSITIVE_INT = _Checked(int, functools.partial(checks.check_positive_int, "value"), "N")
#: A batch size: an integer of at least 1 (:func:`openl3lite.checks.check_batch_size`).
BATCH_SIZE = _Checked(int, checks.check_batch_size, "N")
#: A hop in seconds of at least one sample at 48 kHz (:func:`openl3lite.checks.check_hop_size`).
HOP_SIZE = _Checked(float, checks.check_hop_size, "SECONDS")


def _engine_option(func):
    return click.option(
        "--engine", type=click.Choice(ENGINES), default=DEFAULT_ENGINE, show_default=True,
        help="Where exact mode runs the network: Keras, or the network converted once to ONNX "
             "(cached by its weights' sha256, verified against Keras) and run by ONNX Runtime "
             "or OpenVINO (pip install 'openl3lite[export]'). Fast mode's trunk runs in "
             "Keras.")(func)


def _audio_options(func):
    """The audio options of ``l3embed audio``."""
    return _add_options(func, _audio_option_list(with_resampler=True))


def _video_audio_options(func):
    """The audio options of ``l3embed video``: no --resampler (ffmpeg decodes a video's sound
    track at 48 kHz itself)."""
    return _add_options(func, _audio_option_list(with_resampler=False))


def _add_options(func, options):
    for option in reversed(options):
        func = option(func)
    return func


def _audio_option_list(with_resampler):
    options = [
        click.option("--model", "model_path", type=MODEL, default=None,
                     help="A model name (`l3embed models`; OpenL3's are downloaded on first "
                          "use) or a weights file (an openl3lite model file or an OpenL3 .h5). "
                          "Default: OpenL3's openl3-<input-repr>-<content-type>, as OpenL3 "
                          "chooses it."),
        click.option("--input-repr", "-i", type=click.Choice(INPUT_REPRS), default=None,
                     help="Spectrogram representation: which OpenL3 model by default "
                          f"({DEFAULT_INPUT_REPR} if not given); with --model, the model's "
                          "own."),
        click.option("--content-type", "-c", type=click.Choice(CONTENT_TYPES),
                     default=DEFAULT_CONTENT_TYPE, show_default=True,
                     help="Which OpenL3 model by default: trained on music or environmental "
                          "sound."),
        click.option("--audio-embedding-size", "-as",
                     type=click.Choice([str(n) for n in AUDIO_EMBEDDING_SIZES]),
                     default=str(AUDIO_EMBEDDING_SIZES[0]), show_default=True,
                     help="Audio embedding size."),
        click.option("--no-audio-centering", "-n", is_flag=True,
                     help="Do not centre the first window on t=0 (no 0.5 s zero padding)."),
        click.option("--audio-hop-size", "-t", type=HOP_SIZE, default=DEFAULT_HOP_SIZE,
                     show_default=True, help="Hop between 1-second windows, in seconds."),
        click.option("--audio-batch-size", "-ab", type=BATCH_SIZE, default=DEFAULT_BATCH_SIZE,
                     show_default=True, help="Windows per network batch (memory grows with it)."),
        click.option("--frontend", "--audio-frontend", "-af", "frontend",
                     type=click.Choice(FRONTENDS), default=FRONTENDS[0], show_default=True,
                     help="Spectrogram frontend (OpenL3's two)."),
    ]
    if with_resampler:
        options.append(click.option(
            "--resampler", type=click.Choice(RESAMPLERS), default=DEFAULT_RESAMPLER,
            show_default=True, help="kaiser_best matches OpenL3 exactly; soxr_* are much faster."))
    options.append(click.option(
        "--fast", is_flag=True,
        help="Fast mode (approximate): compute the spectrogram and the convolutional trunk once "
             "over long spans and pool each window's region; several times faster at short "
             "hops (exact where it would not save half the work). Default: exact."))
    return options


def _image_options(func):
    options = [
        click.option("--image-embedding-size", "-is",
                     type=click.Choice([str(n) for n in IMAGE_EMBEDDING_SIZES]),
                     default=str(IMAGE_EMBEDDING_SIZES[0]), show_default=True,
                     help="Image embedding size."),
        click.option("--image-batch-size", "-ib", type=BATCH_SIZE, default=DEFAULT_BATCH_SIZE,
                     show_default=True, help="Images per network batch."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _needs_backend(command):
    """Decorate a command that runs a network: import the backend quietly first (after click
    has parsed the arguments, so ``--help`` and usage errors stay fast)."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        import_backend_quietly()
        return command(*args, **kwargs)
    return run


def _fail_setup(exc):
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


# ---------------------------------------------------------------- commands

class _Group(click.Group):
    """The ``l3embed`` group: like any click group on the command line, but ``main()`` called
    from Python returns after a successful command instead of raising ``SystemExit(0)``, as
    OpenL3's ``cli.main()`` does. Failures still exit: 1 when a file failed, 2 for a usage or
    set-up error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            status = super().main(args, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            click.echo("Aborted!", err=True)
            sys.exit(1)
        if isinstance(status, int) and status != 0:
            sys.exit(status)
        return None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="openl3lite")
def main():
    """L3-Net embeddings of audio, images and video, and training of new L3-Net weights.

    Each embedding command writes one .npz per input with arrays `embedding` (T, D) and
    `timestamps` (T,), named as OpenL3 names them.

    TensorFlow's start-up messages are not shown; set TF_CPP_MIN_LOG_LEVEL (e.g. to 0) to see
    them.
    """


@main.command()
@click.argument("inputs", nargs=-1)
@_common_output_options
@_audio_options
@_input_and_engine_options
@_engine_option
def audio(inputs, output_dir, suffix, overwrite, quiet, model_path, input_repr, content_type,
          audio_embedding_size, no_audio_centering, audio_hop_size, audio_batch_size, frontend,
          resampler, fast, files_from, shard, ray_address, ray_workers, ray_cpus, ray_gpus,
          engine):
    """Embed audio files: INPUTS are files, folders (searched recursively) or glob patterns.

    WAV, FLAC, OGG/Opus, MP3 and AIFF are read directly; M4A/AAC, WMA and other formats ffmpeg
    knows (also a video's sound track) are decoded by ffmpeg first.
    """
    from .jobs import AudioJob

    files, unmatched = select_inputs(inputs, files_from, shard, AUDIO_EXTENSIONS)
    job = AudioJob(model=model_path, input_repr=input_repr, content_type=content_type,
                   embedding_size=int(audio_embedding_size), frontend=frontend,
                   center=not no_audio_centering, hop_size=audio_hop_size,
                   batch_size=audio_batch_size, resampler=resampler,
                   mode="fast" if fast else "exact", output_dir=output_dir, suffix=suffix,
                   overwrite=overwrite, verbose=not quiet, engine=engine)
    _run_embedding_job(job, files, unmatched, quiet, ray_address, ray_workers, ray_cpus,
                       ray_gpus)


@main.command()
@click.argument("inputs", nargs=-1)
@_common_output_options
@click.option("--model", "model_path", type=MODEL, default=None,
              help="A model name (`l3embed models`) or a weights file (openl3lite or OpenL3 "
                   ".h5). Default: OpenL3's image weights for --input-repr / --content-type.")
@click.option("--input-repr", "-i", type=click.Choice(INPUT_REPRS), default=None,
              help="Which OpenL3 image model by default (OpenL3 trained one per audio "
                   f"representation; {DEFAULT_INPUT_REPR} if not given).")
@click.option("--content-type", "-c", type=click.Choice(CONTENT_TYPES),
              default=DEFAULT_CONTENT_TYPE, show_default=True,
              help="Which OpenL3 image model by default.")
@_image_options
@_input_and_engine_options
@_engine_option
def image(inputs, output_dir, suffix, overwrite, quiet, model_path, input_repr, content_type,
          image_embedding_size, image_batch_size, files_from, shard, ray_address, ray_workers,
          ray_cpus, ray_gpus, engine):
    """Embed image files: INPUTS are files, folders (searched recursively) or glob patterns."""
    from .jobs import ImageJob

    files, unmatched = select_inputs(inputs, files_from, shard, IMAGE_EXTENSIONS)
    job = ImageJob(model=model_path, input_repr=input_repr, content_type=content_type,
                   embedding_size=int(image_embedding_size), batch_size=image_batch_size,
                   output_dir=output_dir, suffix=suffix, overwrite=overwrite, engine=engine)
    _run_embedding_job(job, files, unmatched, quiet, ray_address, ray_workers, ray_cpus,
                       ray_gpus)


@main.command()
@click.argument("inputs", nargs=-1)
@_common_output_options
@_video_audio_options
@_image_options
@click.option("--image-model", "image_model_path", type=MODEL, default=None,
              help="Separate image weights (OpenL3 ships audio and image weights in separate "
                   "files): a model name or file. Default: --model's image part, or OpenL3's "
                   "image weights for --input-repr / --content-type.")
@_input_and_engine_options
@_engine_option
def video(inputs, output_dir, suffix, overwrite, quiet, model_path, input_repr, content_type,
          audio_embedding_size, no_audio_centering, audio_hop_size, audio_batch_size, frontend,
          fast, image_embedding_size, image_batch_size, image_model_path, files_from,
          shard, ray_address, ray_workers, ray_cpus, ray_gpus, engine):
    """Embed videos' audio tracks and frames: writes NAME_audio.npz and NAME_image.npz."""
    from .jobs import VideoJob

    files, unmatched = select_inputs(inputs, files_from, shard, VIDEO_EXTENSIONS)
    job = VideoJob(model=model_path, image_model=image_model_path, input_repr=input_repr,
                   content_type=content_type, audio_embedding_size=int(audio_embedding_size),
                   image_embedding_size=int(image_embedding_size), frontend=frontend,
                   center=not no_audio_centering, hop_size=audio_hop_size,
                   audio_batch_size=audio_batch_size, image_batch_size=image_batch_size,
                   mode="fast" if fast else "exact", output_dir=output_dir, suffix=suffix,
                   overwrite=overwrite, verbose=not quiet, engine=engine)
    _run_embedding_job(job, files, unmatched, quiet, ray_address, ray_workers, ray_cpus,
                       ray_gpus)


def _run_embedding_job(job, files, unmatched, quiet, ray_address, ray_workers, ray_cpus,
                       ray_gpus):
    """Run ``job`` over ``files`` in this process (after loading its model(s)) or on Ray (whose
    actors load them: not this process, which would take a GPU's memory on a GPU node), and
    exit 1 if any file failed, 2 if the model(s) or the cluster failed."""
    if ray_address is None and (ray_workers is not None or ray_cpus != 1 or ray_gpus):
        raise click.UsageError("--ray-workers, --ray-cpus and --ray-gpus size the actors of "
                               "--ray: add --ray (or --ray ADDRESS)")
    execute = None
    try:
        if ray_address is not None:  # Ray's presence: checked when --ray was parsed
            from .raydata import run_job_on_ray

            execute = functools.partial(run_job_on_ray, job, address=ray_address,
                                        workers=ray_workers, cpus_per_worker=ray_cpus,
                                        gpus_per_worker=ray_gpus)
        else:
            job.load()
        summary = run_job(files, job.outputs, job.process, job.overwrite, quiet, unmatched,
                          execute)
    except OpenL3liteError as exc:
        _fail_setup(exc)
    _finish(summary)


@main.command()
@click.argument("videos", nargs=-1, required=True)
@click.option("--output-dir", "-o", required=True, type=click.Path(file_okay=False),
              help="Dataset folder (created; an existing one is extended).")
@click.option("--fps", type=float, default=4.0, show_default=True,
              help="Frames per second kept from each video.")
@click.option("--workers", "-w", type=int, default=2, show_default=True,
              help="Videos decoded in parallel.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def prepare(videos, output_dir, fps, workers, quiet):
    """Decode VIDEOS (files, folders or globs) once into a dataset that training samples from.

    Audio is stored at 48 kHz mono and frames at --fps with the shorter side 256 px. Corrupt or
    audio-less videos are reported and skipped; re-running adds new videos only.
    """
    from .errors import OpenL3liteError
    from .training.prepare import prepare_dataset

    files, unmatched = expand_inputs(videos, VIDEO_EXTENSIONS)
    for item in unmatched:
        click.echo(f"error: {item}: no such file, or no video matched", err=True)
    try:
        report = prepare_dataset(files, output_dir, fps=fps, workers=workers,
                                 progress=not quiet)
    except OpenL3liteError as exc:
        _fail_setup(exc)
    failed = len(report.failed) + len(unmatched)
    click.echo(report.line() if not unmatched else
               f"{report.line()} (+{len(unmatched)} inputs matched nothing)", err=bool(failed))
    sys.exit(1 if failed else 0)


def _architecture_of(ctx, model_path, input_repr, width):
    """``--input-repr`` and ``--width`` for a run started from ``model_path``: the file's,
    unless given on the command line."""
    from click.core import ParameterSource

    from .training.train import initial_model_metadata

    metadata = initial_model_metadata(model_path)

    def given(name):
        return ctx.get_parameter_source(name) is not ParameterSource.DEFAULT

    return (input_repr if given("input_repr") else metadata.input_repr,
            width if given("width") else metadata.width)


def _from_config(name, more_help=""):
    """``default``, ``show_default`` and ``help`` of the ``l3embed train`` option of a
    TrainConfig field: the library's default and description (written once, in
    :mod:`openl3lite.training.config`), plus ``more_help`` for what only the CLI does."""
    default = train_config.default_of(name)
    return {"default": default, "show_default": default is not None,
            "help": train_config.help_of(name) + more_help}


@main.command()
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--output-dir", "-o", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder (config, metrics.csv, curves.png, checkpoints). Keep it outside "
                   "your source tree.")
@click.option("--input-repr", "-i", type=click.Choice(train_config.choices_of("input_repr")),
              **_from_config("input_repr"))
@click.option("--width", type=float, **_from_config("width"))
@click.option("--batch-size", "-b", type=int, **_from_config("batch_size"))
@click.option("--negatives", type=click.Choice(train_config.choices_of("negatives")),
              **_from_config("negatives"))
@click.option("--head-init", type=click.Choice(train_config.choices_of("head_init")),
              **_from_config("head_init"))
@click.option("--steps", type=int, **_from_config("steps"))
@click.option("--learning-rate", "--lr", type=float, **_from_config("learning_rate"))
@click.option("--weight-decay", type=float, **_from_config("weight_decay"))
@click.option("--val-fraction", type=float, **_from_config("val_fraction"))
@click.option("--heldout", "heldout_dir", type=click.Path(exists=True, file_okay=False),
              **_from_config("heldout_dir"))
@click.option("--seed", type=int, **_from_config("seed"))
@click.option("--checkpoint-every", type=int, **_from_config("checkpoint_every"))
@click.option("--eval-every", type=int, **_from_config("eval_every"))
@click.option("--bn-batches", type=int, **_from_config("bn_batches"))
@click.option("--speed-jitter", type=float, **_from_config("speed_jitter"))
@click.option("--init-from", "init_from", type=click.Path(dir_okay=False), metavar="MODEL",
              **_from_config("init_from", " --width and --input-repr default to the file's."))
@click.option("--workers", "-w", type=int, **_from_config("workers"))
@click.option("--resume", is_flag=True, help="Continue the run in --output-dir from its latest "
                                              "checkpoint.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
@_needs_backend
def train(ctx, dataset_dir, run_dir, input_repr, width, batch_size, negatives, head_init, steps,
          learning_rate, weight_decay, val_fraction, heldout_dir, seed, checkpoint_every,
          eval_every, bn_batches, speed_jitter, init_from, workers, resume, quiet):
    """Train L3-Net on audio-visual correspondence from a prepared DATASET_DIR.

    Ctrl-C writes a checkpoint and stops; --resume continues exactly where a run stopped (also
    after a crash). Export the result with `l3embed export`.
    """
    from .errors import OpenL3liteError
    from .training.train import train as run_training

    try:
        if init_from:
            input_repr, width = _architecture_of(ctx, init_from, input_repr, width)
        result = run_training(dataset_dir, run_dir, input_repr=input_repr, width=width,
                              batch_size=batch_size, steps=steps, val_fraction=val_fraction,
                              seed=seed, learning_rate=learning_rate,
                              weight_decay=weight_decay, checkpoint_every=checkpoint_every,
                              eval_every=eval_every, resume=resume, workers=workers,
                              progress=not quiet, heldout_dir=heldout_dir,
                              negatives=negatives, head_init=head_init,
                              bn_batches=bn_batches, speed_jitter=speed_jitter,
                              init_from=init_from)
    except OpenL3liteError as exc:
        _fail_setup(exc)
    state = "interrupted (checkpoint written) at" if result.interrupted else "finished at"
    click.echo(f"training {state} step {result.step}: {result.metrics}")
    sys.exit(130 if result.interrupted else 0)


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Model name (default: the output's base name).")
@click.option("--overwrite", "-ow", is_flag=True, help="Replace an existing output file.")
@click.option("--bn-batches", type=click.IntRange(min=0), default=0, show_default=True,
              help="First recompute the BatchNorm statistics on N training batches of the run's "
                   "dataset (for runs trained with --bn-batches 0; training otherwise does this "
                   "before every checkpoint).")
@_needs_backend
def export(run_dir, output, name, overwrite, bn_batches):
    """Export a training run's audio and image subnetworks (and fusion head) to OUTPUT, a
    weights file that --model and the load_*_from_path functions accept."""
    from .errors import OpenL3liteError
    from .training.export import export_model

    if os.path.exists(output) and not overwrite:
        _fail_setup(f"{output} exists; use --overwrite to replace it")
    try:
        metadata = export_model(run_dir, output,
                                name or os.path.splitext(os.path.basename(output))[0],
                                bn_batches=bn_batches)
    except OpenL3liteError as exc:
        _fail_setup(exc)
    click.echo(f"wrote {output} ({metadata.input_repr}, width {metadata.width})")


@main.command("export-model")
@click.argument("model_path", metavar="MODEL", type=MODEL)
@click.option("--format", "-f", "fmt", type=click.Choice(EXPORT_FORMATS), required=True,
              help="onnx (checked in ONNX Runtime), tflite (checked in ai-edge-litert) or "
                   "saved_model (a folder, checked in TensorFlow).")
@click.option("--part", type=click.Choice(EXPORT_PARTS), default="audio", show_default=True,
              help="Which network: audio (waveform in, spectrogram inside) or image.")
@click.option("--embedding-size", type=click.Choice(["6144", "8192", "512"]), default=None,
              help="Embedding size (default: 6144 for audio, 8192 for image).")
@click.option("--output", "-o", "output", required=True, type=click.Path(),
              help="Output file (a folder for saved_model); the metadata goes to OUTPUT.json.")
@click.option("--overwrite", "-ow", is_flag=True, help="Replace an existing output.")
def export_model_command(model_path, fmt, part, embedding_size, output, overwrite):
    """Export MODEL's audio or image embedding network for deployment (ONNX, TFLite or
    SavedModel), with a JSON metadata file, after checking it against the Keras model.

    MODEL is a model name (`l3embed models`) or a weights file. Not to be confused with
    `l3embed export`, which turns a training run into a model file.
    """
    from .deploy import export_model

    size = int(embedding_size) if embedding_size else None
    if size is not None and size not in {"audio": AUDIO_EMBEDDING_SIZES,
                                         "image": IMAGE_EMBEDDING_SIZES}[part]:
        raise click.BadParameter(f"{size} is not an embedding size of the {part} network",
                                 param_hint="--embedding-size")
    if os.path.lexists(output) and not overwrite:
        _fail_setup(f"{output} exists; use --overwrite to replace it")
    import_backend_quietly()  # after the checks above, so that they answer at once
    try:
        metadata = export_model(model_path, fmt, output, part=part, embedding_size=size,
                                overwrite=overwrite)
    except OpenL3liteError as exc:
        _fail_setup(exc)
    worst = max(metadata["verification"].values(), key=lambda v: v["max_rel_diff"])
    click.echo(f"wrote {output} and {output}.json ({fmt}, {part}, {metadata['embedding_size']}-D;"
               f" largest difference from Keras {worst['max_rel_diff']:.2g} of the embedding's "
               "scale)")


@main.command()
@click.argument("labels")
@click.option("--modality", type=click.Choice(["audio", "image"]), default="audio",
              show_default=True, help="Whether the labelled clips are sounds or images.")
@click.option("--model", "model_paths", multiple=True, type=MODEL,
              help="Weights file to evaluate (repeatable). Default: the released default model.")
@click.option("--random-baseline/--no-random-baseline", default=True, show_default=True,
              help="Also evaluate the same network with random weights.")
@click.option("--logmel-baseline/--no-logmel-baseline", default=True, show_default=True,
              help="Also evaluate log-mel statistics (audio only).")
@click.option("--embedding-size", type=int, default=512, show_default=True,
              help="Embedding size (audio 6144/512, image 8192/512).")
@click.option("--train-groups", default=None, help="Comma-separated groups (CSV 'group' "
                                                   "column) to train the classifier on.")
@click.option("--test-groups", default=None, help="Comma-separated groups to test on.")
@click.option("--test-fraction", type=float, default=0.25, show_default=True,
              help="Held-out share when neither groups nor a split column are given.")
@click.option("--kfold", type=int, default=0, help="Also report k-fold cross-validation.")
@click.option("--hop-size", type=HOP_SIZE, default=0.25, show_default=True,
              help="Audio window hop in seconds.")
@click.option("--plot", is_flag=True, help="Also draw embedding_map.png: 2-D t-SNE maps of "
                                           "every feature set (the model, random weights, "
                                           "log-mel) side by side, coloured by label.")
@click.option("--output-dir", "-o", default=None, type=click.Path(file_okay=False),
              help="Write report.json, report.md and confusion matrices here.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@_needs_backend
def evaluate(labels, modality, model_paths, random_baseline, logmel_baseline, embedding_size,
             train_groups, test_groups, test_fraction, kfold, hop_size, plot, output_dir, quiet):
    """Linear-probe accuracy of embeddings on LABELS: a folder `ROOT/<label>/<file>` or a CSV with
    columns `path,label[,group][,split]`.

    A file that cannot be read is reported and left out; the report says how many were, and the
    command then exits with status 1."""
    from . import evaluation, models
    from .errors import OpenL3liteError

    if plot and not output_dir:
        raise click.BadParameter("--plot needs --output-dir to write the map to",
                                 param_hint="--plot")
    split = lambda text: [g.strip() for g in text.split(",")] if text else None
    failures = []
    try:
        suffixes = AUDIO_EXTENSIONS if modality == "audio" else IMAGE_EXTENSIONS
        clips = evaluation.load_clip_set(labels, suffixes)
        plan = (split(train_groups), split(test_groups), test_fraction, kfold)
        evaluation.check_probe_plan(clips, *plan)
        feature_sets = {}
        loaded = []
        for path in model_paths or [None]:
            if modality == "audio":
                model = (models.load_audio_embedding_model_from_path(path, None, embedding_size)
                         if path else models.load_audio_embedding_model(
                             embedding_size=embedding_size))
            else:
                model = (models.load_image_embedding_model_from_path(path, embedding_size)
                         if path else models.load_image_embedding_model(
                             embedding_size=embedding_size))
            loaded.append(model)
        # the first model's pass finds the unreadable files; later feature sets leave them out
        first, *others = loaded
        feature_sets[first.metadata.name] = _features(evaluation, clips, first, modality,
                                                      hop_size, quiet, failures)
        if failures:
            failed = {path for path, _ in failures}
            clips = clips.subset([i for i, p in enumerate(clips.paths) if p not in failed])
            evaluation.check_probe_plan(clips, *plan)
        for model in others:
            feature_sets[model.metadata.name] = _features(evaluation, clips, model, modality,
                                                         hop_size, quiet)
        if random_baseline:
            meta = loaded[0].metadata
            rand = (models.random_audio_model(meta.input_repr, embedding_size, meta.width)
                    if modality == "audio" else
                    models.random_image_model(embedding_size, meta.width))
            feature_sets[f"random weights (width {meta.width})"] = _features(
                evaluation, clips, rand, modality, hop_size, quiet)
        if logmel_baseline and modality == "audio":
            feature_sets["log-mel statistics"] = evaluation.logmel_features(
                clips.paths, progress=not quiet)
        report = evaluation.evaluate(clips, feature_sets, *plan)
        report["skipped"] = failures
    except OpenL3liteError as exc:
        _fail_setup(exc)
    click.echo(evaluation.format_report(report))
    if output_dir:
        evaluation.write_report(report, output_dir)
        if plot:
            from .plots import plot_embedding_maps

            plot_embedding_maps(feature_sets, clips.labels,
                                os.path.join(output_dir, "embedding_map.png"))
        click.echo(f"report written to {output_dir}")
    if failures:
        click.echo(f"{len(failures)} file(s) could not be read and were left out", err=True)
        sys.exit(1)


def _features(evaluation, clips, model, modality, hop_size, quiet, failures=None):
    """Features of every clip; with a ``failures`` list, unreadable clips are reported, added
    to it and left out (otherwise the first one raises)."""
    if modality == "audio":
        features = evaluation.audio_clip_features(clips.paths, model, hop_size,
                                                  progress=not quiet, failures=failures)
    else:
        features = evaluation.image_clip_features(clips.paths, model, progress=not quiet,
                                                  failures=failures)
    for path, message in failures or []:
        click.echo(f"error: {_with_path(path, message)}", err=True)
    return features


@main.command("evaluate-avc")
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("dataset_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--pairs", type=int, default=2048, show_default=True,
              help="Frame/clip pairs to score (half of them corresponding).")
@click.option("--batch-size", "-b", type=BATCH_SIZE, default=64, show_default=True,
              help="Pairs per network batch (memory grows with it).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the pairs: the same seed scores the same pairs.")
@click.option("--random-baseline/--no-random-baseline", default=True, show_default=True,
              help="Also score the same network with random weights.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_needs_backend
def evaluate_avc(model_path, dataset_dir, pairs, batch_size, seed, random_baseline, quiet):
    """Audio-visual correspondence accuracy of MODEL_PATH (a file from `l3embed export`) on
    pairs sampled from DATASET_DIR (from `l3embed prepare`, e.g. videos never used in
    training)."""
    from . import evaluation
    from .errors import OpenL3liteError
    from .l3net import L3Net

    try:
        trained = L3Net.from_file(model_path, "evaluate-avc")
        models = {trained.metadata.name: trained}
        if random_baseline:
            models[f"random weights (width {trained.width:g})"] = L3Net.random(
                trained.input_repr, trained.width)
        for name, model in models.items():
            result = evaluation.avc_accuracy(model, dataset_dir, pairs, batch_size, seed,
                                             progress=not quiet)
            click.echo(f"{name}: AVC accuracy {result['accuracy']:.4f} "
                       f"(+/- {result['stderr']:.4f}) on {result['n_pairs']} pairs; "
                       f"corresponding {result['positive_accuracy']:.4f}, "
                       f"not corresponding {result['negative_accuracy']:.4f}; "
                       f"loss {result['loss']:.4f}")
    except OpenL3liteError as exc:
        _fail_setup(exc)


@main.command()
@click.argument("videos", nargs=-1, required=True)
@click.option("--output-dir", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for NAME_localize.npz, the PNGs in NAME_localize/ and "
                   "NAME_localize.mp4.")
@click.option("--model", "model_path", type=MODEL, default=None,
              help="A whole AVC network: a file written by `l3embed export` (both "
                   "subnetworks, their pool4 stages and the fusion head) or a shipped model's "
                   "name. Default: the shipped "
                   "demonstration model (OpenL3's published weights have no fusion head).")
@click.option("--fps", type=float, default=1.0, show_default=True,
              help="Frames per second to localise (0: every frame).")
@click.option("--png/--no-png", default=True, show_default=True,
              help="Write a heatmap overlay and a spectrogram map PNG per frame.")
@click.option("--video", "mp4", is_flag=True,
              help="Also write an annotated .mp4 (overlays at --fps, with the sound).")
@click.option("--batch-size", type=BATCH_SIZE, default=8, show_default=True,
              help="Frames per network batch.")
@click.option("--overwrite", "-ow", is_flag=True,
              help="Replace existing outputs (default: skip videos whose outputs exist).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or per-file messages.")
@_needs_backend
def localize(videos, output_dir, model_path, fps, png, mp4, batch_size, overwrite, quiet):
    """Where the sound comes from: correspondence maps of VIDEOS (files, folders or globs).

    For each frame taken and the 1-second audio around it, the trained fusion head scores the
    audio against every position of the image's feature map (a heatmap over the frame) and the
    frame against every time-frequency position of the audio's (a map over the spectrogram).
    """
    from . import localize as loc
    from . import registry
    from .l3net import L3Net

    if fps < 0:
        raise click.BadParameter(f"must be positive (or 0 for every frame), got {fps}",
                                 param_hint="--fps")
    files, unmatched = expand_inputs(videos, VIDEO_EXTENSIONS)
    try:
        model = L3Net.from_file(model_path or registry.demonstration_model_name(),
                                "localisation")
    except OpenL3liteError as exc:
        _fail_setup(exc)

    def outputs_of(path):
        names = loc.output_names(path, output_dir)
        return [names["npz"]] + ([names["mp4"]] if mp4 else [])

    def process(path):
        result = loc.localize_video(path, model, fps=fps or None, batch_size=batch_size)
        loc.write_localization(result, output_dir, png=png, mp4=mp4)

    _finish(run_job(files, outputs_of, process, overwrite, quiet, unmatched))


@main.command("models")
def list_models_command():
    """List every model: the shipped ones and OpenL3's published weights, with whether each is
    installed, its size, licence and what it is. OpenL3's are downloaded on first use or with
    `l3embed download`."""
    from . import hub, registry

    entries = registry.all_models()
    default = registry.openl3_model_name()  # OpenL3's defaults: mel256, music
    labels = {e.name: e.name + (" (default)" if e.name == default else "") for e in entries}
    width = max(map(len, labels.values()))
    for entry in entries:
        state = "installed" if registry.is_installed(entry.name) else "not installed"
        click.echo(f"{labels[entry.name]:<{width}}  {state:<13}  "
                   f"{registry.size_text(entry.name):<30}  {entry.licence}")
        click.echo(f"{'':<{width}}  {entry.description}")
        click.echo(f"{'':<{width}}  {entry.parameters_text()}")
    click.echo(f"\nOpenL3's weights: {hub.licence_text()}")
    click.echo(f"Weights cache: {hub.cache_dir() / 'openl3'} (set OPENL3LITE_HOME to move it)")


@main.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--from", "from_file", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="FILE",
              help="Install this .h5.gz, downloaded by hand, instead of downloading it (checked "
                   "against the same pinned git blob id). Needs a single NAME and --part "
                   "unless the file name says which part it is.")
@click.option("--part", type=click.Choice(["audio", "image"]), default=None,
              help="With --from: which part of the model the file is (default: read off the "
                   "file name, openl3_audio_... or openl3_image_...).")
@click.option("--timeout", type=POSITIVE_FLOAT, default=60.0, show_default=True,
              help="Seconds without data before a download is abandoned.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def download(names, from_file, part, timeout, quiet):
    """Fetch OpenL3's published weights NAME... (e.g. openl3-mel256-music; `all` for every
    one) into the cache, for machines that will run offline later. Each file is checked against
    the git blob id OpenL3's repository pins before anything is installed."""
    from . import hub, registry

    entries = registry.all_models()
    if "all" in names:
        names = [e.name for e in entries if e.kind == "openl3"]
    failed = 0
    for name in names:
        try:
            entry = registry.get_model(name)
            if entry.kind != "openl3":
                click.echo(f"{name}: shipped with openl3lite, nothing to download")
                continue
            if from_file:
                records = [_part_of_file(entry, from_file, part, len(names))]
                path = hub.install_from_file(records[0], from_file)
                click.echo(f"installed {path} (from {from_file})")
                continue
            for record in entry.parts.values():
                already = hub.is_installed(record)
                path = hub.fetch(record, progress=not quiet, timeout=timeout)
                click.echo(f"{'already installed' if already else 'installed'}: {path}")
        except OpenL3liteError as exc:
            failed += 1
            click.echo(f"error: {exc}", err=True)
    if failed:
        sys.exit(1)


def _part_of_file(entry, from_file, part, n_names):
    if n_names != 1:
        raise OpenL3liteError("--from installs one file: give a single model NAME")
    if part is None:
        base = os.path.basename(from_file)
        part = next((m for m in entry.parts if f"_{m}_" in base), None)
        if part is None:
            raise OpenL3liteError(f"{from_file}: cannot tell from its name whether it is the "
                                  f"audio or image part of {entry.name}; pass --part")
    return entry.parts[part]


# ---------------------------------------------------------------- OpenL3 0.4.2's CLI functions

def get_file_list(input_list):
    """OpenL3's input expansion: files (made absolute) and the files directly inside folders.

    Parameters
    ----------
    input_list : iterable of str
        Not a single string.

    Returns
    -------
    list of str

    Raises
    ------
    argparse.ArgumentTypeError
        If ``input_list`` is a string or not iterable.
    OpenL3liteError
        If an item is neither a file nor a folder.
    """
    if isinstance(input_list, str) or not isinstance(input_list, Iterable):
        raise argparse.ArgumentTypeError("input_list must be iterable (and not a string)")
    files = []
    for item in input_list:
        if os.path.isfile(item):
            files.append(os.path.abspath(item))
        elif os.path.isdir(item):
            files.extend(path for path in (os.path.join(item, name) for name in os.listdir(item))
                         if os.path.isfile(path))
        else:
            raise OpenL3liteError(f"could not find {item}")
    return files


def parse_args(args):
    """Parse an OpenL3 command line (``MODALITY INPUTS... [options]``) into OpenL3's namespace.

    The options are ``l3embed``'s (OpenL3's names and short forms among them); the result has
    OpenL3's attribute names: ``modality``, ``inputs``, ``output_dir``, ``suffix``,
    ``input_repr``, ``content_type``, ``audio_embedding_size``, ``no_audio_centering``,
    ``audio_hop_size``, ``audio_batch_size``, ``image_embedding_size``, ``image_batch_size``,
    ``audio_frontend``, ``overwrite``, ``quiet`` (and openl3lite's own options).

    Raises
    ------
    SystemExit
        With status 2 on a usage error, as argparse does.
    """
    args = list(args)
    if not args or args[0] not in ("audio", "image", "video"):
        click.echo("usage: l3embed {audio,image,video} INPUTS... [options]", err=True)
        click.echo(f"error: the modality must be audio, image or video, got "
                   f"{args[0] if args else 'nothing'}", err=True)
        sys.exit(2)
    command = main.commands[args[0]]
    try:
        ctx = command.make_context(args[0], args[1:], resilient_parsing=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    params = dict(ctx.params)
    if not params["inputs"] and params.get("files_from") is None:
        click.UsageError(NO_INPUTS, ctx).show()
        sys.exit(2)
    namespace = argparse.Namespace(
        modality=args[0], inputs=list(params.pop("inputs")),
        input_repr=params.pop("input_repr", None) or DEFAULT_INPUT_REPR,
        audio_frontend=params.pop("frontend", FRONTENDS[0]),
        audio_embedding_size=int(params.pop("audio_embedding_size", AUDIO_EMBEDDING_SIZES[0])),
        image_embedding_size=int(params.pop("image_embedding_size", IMAGE_EMBEDDING_SIZES[0])),
        no_audio_centering=params.pop("no_audio_centering", False),
        audio_hop_size=params.pop("audio_hop_size", DEFAULT_HOP_SIZE),
        audio_batch_size=params.pop("audio_batch_size", DEFAULT_BATCH_SIZE),
        image_batch_size=params.pop("image_batch_size", DEFAULT_BATCH_SIZE),
        content_type=params.pop("content_type", DEFAULT_CONTENT_TYPE))
    for key, value in params.items():
        setattr(namespace, key, value)
    return namespace


def run(modality, inputs, output_dir=None, suffix=None, input_repr=DEFAULT_INPUT_REPR,
        content_type=DEFAULT_CONTENT_TYPE, audio_embedding_size=6144, audio_center=True,
        audio_hop_size=DEFAULT_HOP_SIZE, audio_batch_size=DEFAULT_BATCH_SIZE,
        image_embedding_size=8192, image_batch_size=DEFAULT_BATCH_SIZE, audio_frontend="kapre",
        overwrite=False, verbose=False):
    """OpenL3 0.4.2's ``cli.run``: embed files with OpenL3's model for ``input_repr`` and
    ``content_type``, stopping at the first bad file (``l3embed`` itself keeps going).

    Parameters
    ----------
    modality : str
        ``audio``, ``image`` or ``video``.
    inputs : str or iterable of str
        A file, or files and folders (:func:`get_file_list`).
    Other parameters as :func:`openl3lite.process_audio_file`,
    :func:`openl3lite.process_image_file` and :func:`openl3lite.process_video_file`.

    Raises
    ------
    OpenL3liteError
        Invalid inputs or modality, or a bad file.
    SystemExit
        With status -1 when no file was found (OpenL3's behaviour), after saying so.
    """
    from . import api, models

    if isinstance(inputs, str):
        file_list = [inputs]
    elif isinstance(inputs, Iterable):
        file_list = get_file_list(inputs)
    else:
        raise OpenL3liteError(f"invalid input: {inputs!r}")
    if not file_list:
        print(f"openl3lite: No files found in {inputs}. Aborting.")
        sys.exit(-1)
    if modality not in ("audio", "image", "video"):
        raise OpenL3liteError(f"invalid modality: {modality!r} (audio, image or video)")
    common = {"output_dir": output_dir, "suffix": suffix, "overwrite": overwrite,
              "verbose": verbose}
    if modality in ("audio", "video"):
        audio_model = models.load_audio_embedding_model(input_repr, content_type,
                                                        audio_embedding_size, audio_frontend)
    if modality in ("image", "video"):
        image_model = models.load_image_embedding_model(input_repr, content_type,
                                                        image_embedding_size)
    if modality == "audio":
        api.process_audio_file(file_list, model=audio_model, center=audio_center,
                               hop_size=audio_hop_size, batch_size=audio_batch_size,
                               frontend=audio_frontend, **common)
    elif modality == "image":
        api.process_image_file(file_list, model=image_model, batch_size=image_batch_size,
                               **common)
    else:
        api.process_video_file(file_list, audio_model=audio_model, image_model=image_model,
                               audio_center=audio_center, audio_hop_size=audio_hop_size,
                               audio_batch_size=audio_batch_size,
                               image_batch_size=image_batch_size, audio_frontend=audio_frontend,
                               **common)
    if verbose:
        print("openl3lite: Done!")


if __name__ == "__main__":  # pragma: no cover
    main()
