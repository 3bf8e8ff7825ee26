"""Ask the course's trusted grader to check your latest submission: ``python -m reslab.selfcheck ASSIGNMENT``.

Run it in a terminal of your JupyterHub server after ``nbgrader submit`` (or the Assignment List's Submit):
the hub's self-check service grades your newest submission as the real grading will, on fresh secret inputs,
and answers with the points of each part, what went wrong and which known mistake your outputs match. The
instructor sets how many checks you get per hour. The grade itself is given after the deadline.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request


def ask(assignment: str, url: str | None = None, token: str | None = None) -> dict:
    """A student's request to the service (in a terminal of their hub server, the hub sets both variables)."""
    url = url or os.environ.get("AUTOGRADER_SELFCHECK_URL")
    token = token or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        raise ValueError("self-check needs AUTOGRADER_SELFCHECK_URL and JUPYTERHUB_API_TOKEN: run it in a terminal "
                         "of your JupyterHub server")
    request = urllib.request.Request(f"{url.rstrip('/')}/check/{urllib.parse.quote(assignment)}", data=b"",
                                     method="POST", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=1800) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            message = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            message = body.decode(errors="replace")[:500] or err.reason
        raise ValueError(f"self-check refused ({err.code}): {message}") from None


def table(answer: dict) -> str:
    """The answer as text: one line per part, then the notes."""
    lines = [f"{answer['assignment']}, submitted {answer['submitted']}: {answer['score']:g}/{answer['max_score']:g} "
             f"points (a self-check: the grade is given after the deadline; {answer['checks_left']} checks left "
             "this hour)"]
    for part in answer["parts"]:
        lines.append(f"  {part['name']}: {part['score']:g}/{part['max_score']:g} {part['status']}: {part['output']}")
    lines += [f"  note: {note}" for note in answer["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reslab.selfcheck", description=__doc__.split("\n")[0])
    parser.add_argument("assignment")
    args = parser.parse_args(argv)
    try:
        print(table(ask(args.assignment)))
    except (ValueError, OSError) as err:
        print(f"selfcheck: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
