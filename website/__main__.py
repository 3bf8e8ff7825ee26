"""python -m website build [--out _site] [--hub-url URL] [--repo-url URL]"""
import argparse
import os
import sys
from pathlib import Path

from .build import build


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m website", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the static site into a folder any static host serves")
    b.add_argument("--out", type=Path, default=Path("_site"), help="the site folder (default: _site)")
    b.add_argument("--cache", type=Path, default=Path("_build/site"),
                   help="the execution cache and generated sources, kept between builds (default: _build/site)")
    b.add_argument("--hub-url", default=os.environ.get("RESLAB_HUB_URL", ""),
                   help="a JupyterHub to open each notebook on (default: $RESLAB_HUB_URL; none: no hub links)")
    b.add_argument("--repo-url", default=os.environ.get("RESLAB_REPO_URL", ""),
                   help="the repository's web address, e.g. https://github.com/ORG/REPO/blob/main "
                        "(default: $RESLAB_REPO_URL; none: the pages link the notebook files the site carries)")
    args = parser.parse_args(argv)
    try:
        seconds = build(args.out, cache=args.cache, hub_url=args.hub_url, repo_url=args.repo_url)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"website: {error}", file=sys.stderr)
        return 1
    print(f"website: built {args.out}/ in {seconds:.0f} s; serve it with "
          f"'python -m http.server -d {args.out}' and open http://localhost:8000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
