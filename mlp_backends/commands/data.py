"""`mlp-backends data convert` and `data export`: write data files."""

from __future__ import annotations

import argparse
import time

from .common import PROG, examples


def convert(args) -> int:
    """Convert a source into a folder of .npy files, once."""
    from ..convert import convert

    started = time.perf_counter()
    rows, features, dtype = convert(args.source, args.folder, target=args.target)
    print(f"wrote {rows} rows x {features} features ({dtype}) and their labels to {args.folder} "
          f"in {time.perf_counter() - started:.1f} s; train with --data {args.folder}")
    return 0


def export(args) -> int:
    """Write a source as a .csv, .npz or IDX file."""
    from ..exporting import export

    rows, features, files = export(args.source, args.file, target=args.target)
    print(f"wrote {rows} rows x {features} features and their labels to {' and '.join(map(str, files))}")
    return 0


def add_parsers(sub, debug) -> None:
    """`data convert` and `data export` as subcommands of `sub`, with the shared `debug` options."""
    p = sub.add_parser(
        "convert", parents=[debug], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="convert a data source once into a folder of .npy files, which training reads from disk",
        description="Convert a data source (a .csv, .npz or IDX file, a built-in set) into a new folder "
                    "holding X.npy and y.npy, a block at a time. Training on that folder reads it "
                    "memory-mapped, a buffer at a time: data larger than memory train on one machine.",
        epilog=examples(f"{PROG} data convert big.csv big/", f"{PROG} data convert flowers.csv f/ --target species",
                         f"{PROG} data convert ~/mnist/train-images-idx3-ubyte.gz mnist/"))
    p.add_argument("source", metavar="SOURCE", help="a .csv, .npz or *-idx3-ubyte[.gz] file (or a built-in set)")
    p.add_argument("folder", metavar="FOLDER", help="the new folder to write (must not exist yet)")
    p.add_argument("--target", metavar="COLUMN", help="a CSV's label column (default: the last)")
    p.set_defaults(func=convert)

    p = sub.add_parser(
        "export", parents=[debug], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="write a data source (a built-in set, synthetic:...) as a .csv, .npz or IDX file",
        description="Write a data source as a file that train, predict and evaluate read: a .csv with a "
                    "header (built-in sets keep their feature and class names), an .npz with X and y, or an "
                    "MNIST-format *-images-idx3-ubyte[.gz] file with its *-labels-idx1-ubyte[.gz] partner.",
        epilog=examples(f"{PROG} data export iris flowers.csv --target species",
                         f"{PROG} data export synthetic:n=500,d=8,classes=3 own.npz",
                         f"{PROG} data export digits digits-images-idx3-ubyte.gz"))
    p.add_argument("source", metavar="SOURCE", help="a built-in set, synthetic:..., or a file")
    p.add_argument("file", metavar="FILE", help="the file to write: .csv, .npz or *-images-idx3-ubyte[.gz]")
    p.add_argument("--target", metavar="COLUMN", default="target", help="a CSV's label column name (default: target)")
    p.set_defaults(func=export)
