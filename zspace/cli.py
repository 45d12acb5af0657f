"""``pipeline.py``'s command line: build | data | train | publish-models | status |
diff | clean.

Exit codes: 0 success, 1 (diff only) a figure changed, 2 bad input (configuration,
data path, model file, diff side, a profile name that is not a slug, a folder that
clean or publish-models would delete but no build made, a build folder a Dask worker
does not see), 3 a failed build step, 4 the build folder, or a model key being
trained, is in use by another process, 5 the machine lacks a tool a setting needs (a
C++ compiler for speed.fuse_batch_norm) or the Dask scheduler does not answer, 6 an
unexpected error (a bug: one line on the terminal, the traceback in the build log or a
temporary file), 7 the file system refused a write (full disk, read-only, a path
through a file, a name too long), 129 hung up (SIGHUP), 130 interrupted (Ctrl-C), 141
the reader of the output went away (a pipe closed), 143 terminated (SIGTERM).

The commands that build (build, data, train, publish-models) hold the lock of
``build/<profile>/``, write ``build/<profile>/build.log`` and keep everything but
their progress and messages off the terminal; ``-v`` shows everything live. They mark
the build folder with ``.zspace-build``; clean refuses a folder without that mark (or
a build's own layout) and removes only what builds made in it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from zspace import lock, ownership, paths
from zspace.config import Config, load_config
from zspace.errors import BuildBusy, BuildError, ZspaceError, file_system_failure

COMMANDS = {
    "build": "prepare data, train or load models, run the notebooks, render the report "
             "(the default)",
    "data": "prepare and cache the data set of the configuration",
    "train": "train every model of the configuration, or load it from the cache or "
             "from the published weights in models/<profile>/",
    "publish-models": "write the trained models' weights and manifests into "
                      "models/<profile>/ (training what is missing)",
    "status": "show each stage as fresh or stale, and why",
    "diff": "compare the figures of two builds, archived builds or git revisions "
            "(exit 1 when any figure changed)",
    "clean": "remove what builds made in the build folder (with --all, the data and "
             "model caches too); a folder no build made is refused",
}


def _common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    # Sub-commands accept the same options; SUPPRESS keeps them from resetting a value
    # given before the command name.
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    parser.add_argument(
        "--config", default=default(None), metavar="FILE|PROFILE",
        help="a TOML file or a profile in configs/ (smoke, default, celeba)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=default([]),
        metavar="KEY=VALUE", help="override one key, e.g. --set train.num_epochs=2 "
        "(repeatable; values are TOML literals)")
    parser.add_argument(
        "--build-dir", type=Path, default=default(None), metavar="DIR",
        help="where generated files go (default: build/)")
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default(False),
        help="no progress bars")
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default(False),
        help="show everything live: TensorFlow's notices, the notebook kernels' "
             "output (otherwise in build/<profile>/build.log)")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline.py",
        description="zspace: build the AE/VAE latent-space article series from a "
                    "data set and a configuration.",
        epilog="Exit codes: 0 ok, 1 (diff) a figure changed, 2 bad input, 3 a build "
               "step failed, 4 the build folder is in use, 5 a tool a setting needs "
               "is missing, 6 an unexpected error (the traceback goes to the log), 7 "
               "the file system refused a write (full, read-only, too long a name), "
               "129 hung up, 130 interrupted, 141 output pipe closed, 143 "
               "terminated.",
    )
    _common_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, text in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text)
        _common_options(sub, top=False)
        if name == "build":
            sub.add_argument("--force", action="store_true",
                             help="run the selected stages even if they are fresh")
            sub.add_argument("--only", action="append", default=[], metavar="STAGE",
                             help="consider only this stage (a notebook name or "
                                  "'report'; repeatable)")
        if name == "train":
            sub.add_argument("--retrain", action="store_true",
                             help="train afresh, ignoring the cache and the published "
                                  "weights")
        if name == "diff":
            _diff_options(sub)
        if name == "clean":
            sub.add_argument("--all", action="store_true",
                             help="also remove the data and model caches")
    return parser


def _diff_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "sides", nargs="*", metavar="SIDE",
        help="A and B: a build, site or figures folder, an archived build id (or "
             "'latest', 'previous'), or a git revision. None: the working figures/ "
             "against HEAD; one: that side against the working figures/")
    sub.add_argument(
        "--tolerance", type=float, default=None, metavar="RMS",
        help="RMS difference in [0, 1] up to which a figure counts as unchanged "
             "(default 0.5/255, half a grey level)")
    sub.add_argument("--json", type=Path, metavar="FILE",
                     help="also write the summary as JSON ('-': standard output)")
    sub.add_argument("--html", type=Path, metavar="DIR",
                     help="where the page goes (default: BUILD/diff/<A>-vs-<B>/)")
    sub.add_argument("--markdown", type=Path, metavar="FILE|DIR",
                     help="also write a Markdown summary of the changed figures for a "
                          "pull-request comment, with thumbnails beside it (a folder: "
                          "DIR/figure-diff.md)")


# The commands that write into build/<profile>/: one at a time per folder.
WORKING = ("build", "data", "train", "publish-models")


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled like Ctrl-C: kernels stopped, scratch files and
    the lock removed; the exit code is 128 + the signal's number, as a shell's."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signum)
        self.exit_code = 128 + signum
        self.what = "hung up" if signum == signal.SIGHUP else "terminated"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    # TensorFlow's C++ start-up notices (oneDNN, CPU features) are noise here; set
    # before anything imports TensorFlow, and inherited by the notebook kernels.
    # TensorFlow 2.21 prints absl's preamble and the oneDNN notice regardless, so the
    # working commands also send this process's C++ output to the build log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = make_parser().parse_args(argv)
    command = args.command or "build"
    log_file = None
    with _sigterm_as_interrupt():
        try:
            config = load_config(args.config or "default", args.overrides)
            if command not in WORKING:
                return HANDLERS[command](config, args)
            from zspace.pipeline.session import open_session

            folder = paths.profile_dir(args.build_dir, config.name)
            with open_session(folder, capture=True, verbose=args.verbose,
                              quiet=args.quiet) as session:
                log_file = session.log.path
                args.session = session
                return HANDLERS[command](config, args)
        except ZspaceError as error:
            print(f"error: {error}", file=sys.stderr)
            if log_file is not None and not isinstance(error, BuildBusy):
                print(f"the build log: {log_file}", file=sys.stderr)
            return error.exit_code
        except KeyboardInterrupt as interrupt:
            what = getattr(interrupt, "what", "interrupted")  # Ctrl-C: no Terminated
            with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
                print(f"\n{what}: the published report is unchanged; finished stages "
                      "and trained epochs are kept, and the next run resumes from "
                      "them", file=sys.stderr)
            return getattr(interrupt, "exit_code", 130)
        except BrokenPipeError:
            # The reader went away (``status | head``): nothing more to say to it.
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141  # 128 + SIGPIPE, as a shell reports it
        except OSError as error:
            failure = file_system_failure(
                error, log_file.parent if log_file is not None else None)
            if failure is None:
                return _unexpected(error, command, log_file)
            _log_traceback(log_file)
            print(f"error: {failure}", file=sys.stderr)
            if log_file is not None:
                print(f"the build log: {log_file}", file=sys.stderr)
            return failure.exit_code
        except Exception as error:
            return _unexpected(error, command, log_file)


# Exit code of an error zspace did not expect (a bug): not 1, which is diff's "a
# figure changed", so that a crash never reads as a result.
UNEXPECTED = 6


def _unexpected(error: Exception, command: str, log_file: Path | None) -> int:
    """Say in one line what went wrong and where its traceback is; return 6 (a bug,
    or a failure zspace does not know to name).

    The traceback goes to the build log where the command has one; otherwise (status,
    diff, clean, or a build that failed before its log opened) to a new
    ``zspace-<command>-*.log`` in the system's temporary folder.
    """
    where = _log_traceback(log_file) or _traceback_file(command)
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    print(f"error: unexpected {type(error).__name__}{': ' if first else ''}{first}",
          file=sys.stderr)
    if where is not None:
        print(f"the traceback is in {where}", file=sys.stderr)
    else:  # nowhere to write it: the terminal is the only record
        traceback.print_exc(file=sys.stderr)
    return UNEXPECTED


def _log_traceback(log_file: Path | None) -> Path | None:
    """Append the exception being handled to ``log_file``; its path, or None."""
    if log_file is None:
        return None
    try:
        with open(log_file, "a", encoding="utf-8") as log:
            traceback.print_exc(file=log)
    except OSError:
        return None
    return log_file


def _traceback_file(command: str) -> Path | None:
    """Write the exception being handled to a new temporary file; its path, or None."""
    try:
        handle, name = tempfile.mkstemp(prefix=f"zspace-{command}-", suffix=".log")
        with os.fdopen(handle, "w", encoding="utf-8") as log:
            log.write(f"{' '.join(sys.argv)}\n")
            traceback.print_exc(file=log)
    except OSError:
        return None
    return Path(name)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated(signum)

    # A closed terminal (SIGHUP) must clean up like SIGTERM: no scratch or lock left.
    # Under nohup SIGHUP is ignored on purpose, and stays so.
    numbers = [signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        numbers.append(signal.SIGHUP)
    previous = {number: signal.signal(number, terminate) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_data(config: Config, args: argparse.Namespace) -> int:
    from zspace.data import load_dataset

    dataset = load_dataset(config.data, args.build_dir, progress=not args.quiet)
    card = dataset.card
    print(f"data: {card.source}, {card.num_train} train + {card.num_test} test + "
          f"{card.num_val} validation images at {card.image_size} px, "
          f"{len(card.skipped)} skipped, "
          f"hash {card.content_hash[:12]}")
    for line in card.skipped[:10]:
        print(f"  skipped {line}")
    if len(card.skipped) > 10:
        print(f"  ... and {len(card.skipped) - 10} more (see the dataset card)")
    return 0


def run_train(config: Config, args: argparse.Namespace) -> int:
    from zspace.pipeline.engine import train

    trained = train(config, args.build_dir, retrain=getattr(args, "retrain", False),
                    progress=not args.quiet, session=getattr(args, "session", None))
    for result in trained:
        name = result.name
        how = "loaded" if result.loaded_from_cache else (
            f"trained {result.meta.get('epochs', '?')} epochs in "
            f"{result.seconds:.0f} s")
        source = result.meta.get("published", result.path)
        print(f"{name}: {how} ({source})")
    return 0


def run_publish_models(config: Config, args: argparse.Namespace) -> int:
    from zspace.data import load_dataset
    from zspace.release import release_models

    dataset = load_dataset(config.data, args.build_dir, progress=not args.quiet)
    for manifest in release_models(config, dataset, args.build_dir,
                                   progress=not args.quiet):
        final = manifest["final"]
        held_out = final.get("val_total_loss", final.get("val_loss"))
        print(f"{manifest['name']}: {manifest['epochs']} epochs, held-out loss "
              f"{held_out:.5g}, {manifest['seconds']:.0f} s of training -> "
              f"{manifest['manifest']}")
    return 0


def run_build(config: Config, args: argparse.Namespace) -> int:
    from zspace.pipeline.engine import build

    site = build(config, args.build_dir, force=getattr(args, "force", False),
                 only=tuple(getattr(args, "only", ())), progress=not args.quiet,
                 session=getattr(args, "session", None))
    index = site / "index.html"
    if not index.is_file():  # never point a reader at a page that is not there
        raise BuildError(f"the report has no {index}; build again with --force")
    print(f"report: {index}")
    return 0


# The widest name column of ``status``.
STATUS_WIDTH = 48


def run_status(config: Config, args: argparse.Namespace) -> int:
    from zspace.pipeline.engine import status

    rows = status(config, args.build_dir)
    # The column fits the names up to STATUS_WIDTH; a longer one gets a line of its
    # own, so one long name never pads every row.
    width = min(max(len(name) for name, _ in rows), STATUS_WIDTH)
    for name, state in rows:
        if len(name) > width:
            print(name)
            name = ""
        print(f"{name:<{width}}  {state}")
    folder = paths.profile_dir(args.build_dir, config.name)
    holder = lock.holder(folder)
    if holder is not None:
        print(f"building now: {lock.describe(holder)}")
    return 0


def run_diff(config: Config, args: argparse.Namespace) -> int:
    from zspace.diff import DEFAULT_TOLERANCE, DiffError, figure_diff, summary_text

    if len(args.sides) > 2:
        raise DiffError(f"diff takes at most two sides, got {len(args.sides)}: "
                        f"{' '.join(args.sides)}")
    old, new = (*args.sides, None, None)[:2]
    result, page = figure_diff(old or "HEAD", new, build_root=args.build_dir,
                               profile=config.name,
                               tolerance=(DEFAULT_TOLERANCE if args.tolerance is None
                                          else args.tolerance),
                               page_folder=args.html, json_file=args.json,
                               markdown=args.markdown)
    # With the JSON on standard output, the table goes to stderr to keep it parseable.
    stream = sys.stderr if str(args.json) == "-" else sys.stdout
    print(summary_text(result), file=stream)
    print(f"page: {page}", file=stream)
    return result.exit_code


def run_clean(config: Config, args: argparse.Namespace) -> int:
    root = paths.build_dir(args.build_dir)
    if not root.exists():
        print(f"nothing to clean: {root} does not exist")
        return 0
    # Only what a build made, in a folder a build made: a wrong --build-dir (".",
    # "~") is refused whole, and a build folder's other entries stay.
    ownership.check_build_root(root)
    made = ownership.made_by_build(root, caches=args.all)
    for folder in made:
        holder = lock.holder(folder)
        if holder is not None:
            raise BuildBusy(lock.busy_message(folder, holder))
    with contextlib.ExitStack() as held:
        if args.all:  # a model in training outside any build holds only its key
            for key_lock in sorted(paths.model_cache_dir(root).glob("*.partial.lock")):
                partial = key_lock.with_name(key_lock.name.removesuffix(".lock"))
                held.enter_context(lock.key_lock(partial, partial.name))
        for folder in made:
            shutil.rmtree(folder)
            print(f"removed {folder}")
    others = sorted(child.name for child in root.iterdir()
                    if child not in made and child.name not in (
                        ownership.MARKER, ownership.CACHE))
    if others:
        print(f"kept what no build made: {', '.join(others)}")
    return 0


HANDLERS = {"build": run_build, "data": run_data, "train": run_train,
            "publish-models": run_publish_models,
            "status": run_status, "diff": run_diff, "clean": run_clean}
