"""Command line: ``groovescan decode | render | inspect | batch``.

The CLI only calls the public API. Every failure ends in one line on stderr and a
non-zero exit status: 2 for bad input or arguments, 1 for anything unexpected.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import warnings

from . import __version__
from .eq import CURVES
from .errors import GroovescanError, NoGrooveError, OutputError, ParameterError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
_SUBTYPES = {"float": "FLOAT", "16": "PCM_16", "24": "PCM_24"}


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


_NUMBER = r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"


def _number_pair(text, separators):
    """Two numbers written "A<sep>B" (any of ``separators``), or None if malformed."""
    match = re.fullmatch(_NUMBER + f"[{re.escape(separators)}]" + _NUMBER, text)
    return None if match is None else (float(match[1]), float(match[2]))


def _hint(**hint):
    """Check one geometry hint with the decoder's own rules; its message if refused."""
    from .geometry import check_hints

    try:
        return next(v for v in check_hints(**hint) if v is not None)
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _centre(text):
    pair = _number_pair(text, ",")
    if pair is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give the spiral centre as ROW,COL in pixels, e.g. --centre 8200,8350")
    return _hint(centre_px=pair)


def _radii(text):
    pair = _number_pair(text, "-,")
    if pair is None or not all(v > 0 for v in pair):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give the inner and outer groove radius in mm as R1-R2, e.g. --radii 40-85")
    try:
        return _hint(radii_mm=pair)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; e.g. --radii 40-85") from None


def _pitch(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give the groove pitch in mm, e.g. --pitch 0.28") from None
    try:
        return _hint(pitch_mm=value)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; e.g. --pitch 0.28") from None


def _geometry_hints(args):
    """The decode() keyword arguments of the --centre, --radii and --pitch options."""
    return dict(centre_px=args.centre, radii_mm=args.radii, pitch_mm=args.pitch)


def _check_output(path, force, allowed):
    """Fail before hours of work if the output cannot be written."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in allowed:
        raise OutputError(f"cannot write {ext or 'a file without extension'} ({path}); "
                          f"use one of: {', '.join(allowed)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"output folder {folder} does not exist; create it or choose another -o")
    if os.path.exists(path) and not force:
        raise OutputError(f"{path} exists; pass --force to overwrite it")


def _cmd_decode(args):
    from .io import peak_normalise, write_audio
    from .pipeline import decode

    _check_output(args.output, args.force, (".wav", ".flac"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = decode(args.scan, rpm=args.rpm, sr=args.sample_rate, eq=args.eq, dpi=args.dpi,
                        declick=not args.no_declick, denoise=args.denoise, progress=not args.quiet,
                        **_geometry_hints(args))
    audio, gain_db = peak_normalise(result.audio)
    write_audio(args.output, audio, sr=result.sr, subtype=_SUBTYPES[args.format], overwrite=args.force)
    if not args.quiet:
        print(result.report.summary())
        print(f"level           scaled by {gain_db:+.1f} dB to peak at -1 dBFS")
        print(f"wrote           {args.output} ({result.duration_s:.1f} s)")
    for w in caught:
        if not issubclass(w.category, RuntimeWarning):      # numeric noise is not news
            print(f"groovescan: warning: {w.message}", file=sys.stderr)
    return EXIT_OK


def _cmd_render(args):
    from .io import read_audio
    from .synth import render_scan_to_file

    _check_output(args.output, args.force, (".tif", ".tiff", ".png"))
    audio, sr = read_audio(args.audio)
    if args.duration:
        audio = audio[: int(args.duration * sr)]
    truth = render_scan_to_file(args.output, audio, sr=sr, preset=args.preset, dpi=args.dpi,
                                rpm=args.rpm, seed=args.seed, overwrite=args.force)
    if not args.quiet:
        print(f"wrote {args.output}: {args.preset} disc at {args.dpi:g} dpi, "
              f"{truth.n_turns:.1f} turns, {truth.duration_s:.1f} s at {truth.rpm:g} rpm")
    return EXIT_OK


def _print_warnings(caught):
    for w in caught:
        if not issubclass(w.category, RuntimeWarning):      # numeric noise is not news
            print(f"groovescan: warning: {w.message}", file=sys.stderr)


def _cmd_inspect(args):
    from .io import load_scan
    from .pipeline import decode
    from .plot import FIGURE_FORMATS, geometry_figure, inspect_figure, require_matplotlib, save_figure

    require_matplotlib()                    # before minutes of decoding, not after
    _check_output(args.output, args.force, FIGURE_FORMATS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scan = load_scan(args.scan, dpi=args.dpi)
        try:
            result = decode(scan, rpm=args.rpm, progress=not args.quiet, **_geometry_hints(args))
        except NoGrooveError as error:
            # the picture of what the geometry saw is what the user needs to give hints
            save_figure(geometry_figure(scan, error), args.output, overwrite=args.force)
            if not args.quiet:
                print(f"wrote           {args.output} (what the geometry saw; decoding failed)")
            raise
        figure = inspect_figure(scan, result)
        save_figure(figure, args.output, overwrite=args.force)
    if not args.quiet:
        print(result.report.summary())
        print(f"wrote           {args.output}")
    _print_warnings(caught)
    return EXIT_OK


def _cmd_batch(args):
    from .batch import batch_decode

    options = dict(rpm=args.rpm, sr=args.sample_rate, eq=args.eq, declick=not args.no_declick,
                   denoise=args.denoise, **_geometry_hints(args))    # the same hints for every scan
    if args.dpi is not None:
        options["dpi"] = args.dpi
    summary = batch_decode(args.scans_dir, args.output, workers=args.workers, overwrite=args.force,
                           scheduler=args.scheduler, progress=not args.quiet,
                           subtype=_SUBTYPES[args.format], **options)
    for outcome in summary.failed:
        print(f"groovescan: failed: {os.path.basename(outcome.scan)}: {outcome.message}", file=sys.stderr)
    if not args.quiet:
        print(summary.summary())
    return EXIT_OK if summary.ok else EXIT_INTERNAL


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _add_inspect_parser(sub):
    p = sub.add_parser("inspect", help="decode a scan and save a diagnostic report page (needs matplotlib)")
    p.add_argument("scan", help="scan image (TIFF, PNG or JPEG)")
    p.add_argument("-o", "--output", required=True, help="figure to write (.png, .pdf or .svg)")
    _add_decode_options(p, audio=False)
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or report")
    p.set_defaults(func=_cmd_inspect)


def _add_batch_parser(sub):
    p = sub.add_parser("batch", help="decode every scan in a folder (WAV + JSON sidecar each); "
                       "exit status 1 if any scan failed")
    p.add_argument("scans_dir", metavar="SCANS_DIR", help="folder of scans (.tif, .tiff, .png, .jpg, .jpeg)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="folder for NAME.wav and NAME.json (created if missing)")
    p.add_argument("--workers", type=_positive_int, help="processes decoding at once (default: one per CPU)")
    p.add_argument("--force", action="store_true", help="decode again scans already done")
    _add_decode_options(p, audio=True, batch=True)
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster, e.g. tcp://host:8786 (needs groovescan[dask]; "
                   "workers must see the same folders)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary line")
    p.set_defaults(func=_cmd_batch)


def _denoise_strength(text):
    from .pipeline import check_denoise

    try:
        return check_denoise(float(text))
    except (ValueError, ParameterError):
        raise argparse.ArgumentTypeError(f"{text!r}: give a strength from 0 (off) to 4") from None


def _add_decode_options(p, *, audio, batch=False):
    """The options of ``decode()`` shared by decode, inspect and batch (audio: output ones too;
    batch: the geometry hints apply to every scan of the folder)."""
    p.add_argument("--rpm", default="78", help="turntable speed: 78, 77.92, 78.26, 45, 33.333 (default 78)")
    p.add_argument("--dpi", type=_positive_float, help="scan resolution, overrides the file's metadata")
    every = " (the same for every scan)" if batch else ""
    p.add_argument("--centre", type=_centre, metavar="ROW,COL",
                   help="spiral centre in pixels of the scan (row from the top, column from the left), "
                   f"roughly; when automatic geometry fails{every}")
    p.add_argument("--radii", type=_radii, metavar="R1-R2",
                   help="inner and outer radius of the grooves in mm, e.g. 40-85 (or 40,85); "
                   f"when automatic geometry fails{every}")
    p.add_argument("--pitch", type=_pitch, metavar="MM",
                   help="groove pitch in mm, roughly (e.g. 0.28; the pitch found stays within 20 %%); "
                   f"when automatic geometry fails{every}")
    if audio:
        p.add_argument("--sample-rate", type=int, default=44100, help="output sample rate in Hz (default 44100)")
        p.add_argument("--eq", default="flat", help=f"playback curve: {', '.join(CURVES)} (default flat)")
        p.add_argument("--format", choices=sorted(_SUBTYPES), default="float",
                       help="sample format: float (default), 16 or 24 bit")
        p.add_argument("--no-declick", action="store_true", help="keep clicks from dust and scratches")
        p.add_argument("--denoise", type=_denoise_strength, default=0.0, metavar="STRENGTH",
                       help="suppress hiss: 0 off (default) .. 4; 1 = the noise measured between the walls")


def build_parser():
    parser = argparse.ArgumentParser(prog="groovescan", description="Play records from flatbed scans.")
    parser.add_argument("--version", action="version", version=f"groovescan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("decode", help="decode a scan to an audio file")
    p.add_argument("scan", help="scan image (TIFF, PNG or JPEG)")
    p.add_argument("-o", "--output", required=True, help="audio file to write (.wav or .flac)")
    _add_decode_options(p, audio=True)
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or report")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("render", help="render a realistic scan of a record from an audio file")
    p.add_argument("audio", help="audio file (WAV, FLAC, OGG)")
    p.add_argument("-o", "--output", required=True, help="scan to write (.tif or .png)")
    p.add_argument("--preset", default="bone", help="bone, shellac78 or lp (default bone)")
    p.add_argument("--dpi", type=_positive_float, default=1200, help="scan resolution (default 1200)")
    p.add_argument("--rpm", type=_positive_float, default=78.0, help="turntable speed (default 78)")
    p.add_argument("--duration", type=_positive_float, help="render only the first N seconds")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_render)
    _add_inspect_parser(sub)
    _add_batch_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:              # argparse already printed its one-line reason
        return int(exc.code or 0)
    try:
        return args.func(args)
    except GroovescanError as exc:
        print(f"groovescan: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("groovescan: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("groovescan: error: out of memory; decode on a machine with more RAM", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, never a traceback
        print(f"groovescan: internal error: {type(exc).__name__}: {exc} "
              f"(please report it with the scan's details)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
