"""Course benchmark: how long each chapter takes to run top to bottom in a fresh kernel, as a student runs it.

The budget is the course's promise: every chapter within 60 s and the whole course within 5 minutes on a
2-core CPU. The time per chapter includes starting its kernel. The exit status is 1 when a budget is missed.

``--write`` also records the run times in ``course/timings.json`` and rewrites each chapter's "**Time:**"
sentence from them: its prose, maths and code at study rates (``RATES``), plus the measured run time, so the
time a chapter states is computed, never guessed (``tests/test_course.py`` checks the two agree). ``--recount``
only recounts the words after an edit of the text, without running the chapters.

    python benchmarks/bench_course.py [--chapters 02 06] [--chapter-budget 60] [--total-budget 300] [--write|--recount]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import platform
import resource
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

COURSE = Path(__file__).resolve().parents[1] / "course"
TIMINGS = COURSE / "timings.json"
# Study rates, not skimming ones: a chapter is read to be able to do its assignment.
# Prose and printed results: 138 words a minute, Carver's (1992) "memorising" gear, the slowest of the reading
# rates he measured in college readers (learning 200, ordinary reading 300), where the reader must recall
# what was read. Maths and code: no study we know of measures them in words a minute, so these are our
# assumptions: maths 30 tokens a minute (a token is a word of the LaTeX source, so $\partial\mathcal{L}/\partial h$
# is 5: about 10 s for a short formula) and code 50 words a minute (read line by line, with its output).
RATES = {"prose": 138, "maths": 30, "code": 50}
MATHS = re.compile(r"\$\$.+?\$\$|\$[^$\n]+?\$", re.S)
TIME_SENTENCE = re.compile(r"\*\*Time:\*\* about \d+ minutes: [\d,]+ words\b.*? to run on [^.]*\.", re.S)


def words(text: str) -> int:
    return len(re.findall(r"\w+", text))


def word_counts(nb) -> dict[str, int]:
    """Words of the chapter's prose, maths and code (markdown and code cells), without the Time sentence."""
    markdown = "\n".join(TIME_SENTENCE.sub("", c.source) for c in nb.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return {"prose_words": words(MATHS.sub(" ", markdown)), "maths_words": words(" ".join(MATHS.findall(markdown))),
            "code_words": words(code)}


def output_words(nb) -> int:
    """Words of what an executed chapter prints: the reader reads its results too."""
    return words("\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])))


def reading_minutes(timing: dict) -> float:
    """Minutes to study a chapter's record: prose and printed results, maths and code, each at its rate."""
    return ((timing["prose_words"] + timing["output_words"]) / RATES["prose"]
            + timing["maths_words"] / RATES["maths"] + timing["code_words"] / RATES["code"])


def time_sentence(timing: dict) -> str:
    """The Time sentence for one chapter's record in timings.json."""
    minutes = round(reading_minutes(timing) + timing["run_seconds"] / 60)
    prose = timing["prose_words"] + timing["output_words"]
    total = prose + timing["maths_words"] + timing["code_words"]
    return (f"**Time:** about {minutes} minutes: {total:,} words to study, {prose:,} of text and printed "
            f"results at {RATES['prose']} a minute (Carver 1992's rate for reading to remember), "
            f"{timing['maths_words']:,} of maths at {RATES['maths']} and {timing['code_words']:,} of code at "
            f"{RATES['code']} (our assumptions: no study measured these), plus {round(timing['run_seconds'])} s "
            f"to run on {timing['cpus']} CPU cores.")


def time_cell(path: Path):
    """(notebook, its one markdown cell holding a Time sentence); exits with the reason when there is not one."""
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "markdown" and TIME_SENTENCE.search(c.source)]
    if len(cells) != 1:
        raise SystemExit(f"{path.name}: expected one markdown sentence matching {TIME_SENTENCE.pattern!r}")
    return nb, cells[0]


def write_times(executed: dict[str, tuple[float, nbformat.NotebookNode]]) -> None:
    """Record run time and words of each executed chapter (stem -> (wall seconds, executed notebook)) and
    rewrite those chapters' Time sentences from the record."""
    recorded = json.loads(TIMINGS.read_text()) if TIMINGS.is_file() else {}
    for stem, (seconds, run) in executed.items():
        recorded[stem] = {"run_seconds": round(seconds, 1), "cpus": os.cpu_count(), **word_counts(run),
                          "output_words": output_words(run)}
    write_sentences(recorded, list(executed))


def recount(stems: list[str]) -> None:
    """After an edit of the text only: recount the stored chapters' words and rewrite their Time sentences,
    keeping the recorded run time and printed words (test_chapter_executes checks those stay within 20%)."""
    recorded = json.loads(TIMINGS.read_text())
    for stem in stems:
        recorded[stem] = {**recorded[stem], **word_counts(nbformat.read(COURSE / f"{stem}.ipynb", as_version=4))}
        recorded[stem].pop("text_words", None)  # the record before prose, maths and code were counted apart
    write_sentences(recorded, stems)


def write_sentences(recorded: dict, stems: list[str]) -> None:
    for stem in stems:
        nb, cell = time_cell(COURSE / f"{stem}.ipynb")
        cell.source = TIME_SENTENCE.sub(lambda _: time_sentence(recorded[stem]), cell.source)
        nbformat.write(nb, COURSE / f"{stem}.ipynb")
    TIMINGS.write_text(json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")


def run_chapter(path: Path) -> tuple[float, float, nbformat.NotebookNode]:
    """(wall seconds, CPU seconds of the kernel, the executed notebook): on a busy machine the CPU time is the
    better estimate of what the chapter costs on an idle one."""
    nb = nbformat.read(path, as_version=4)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(COURSE)}}).execute()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", nargs="+", metavar="NN", help="chapter numbers (default: all)")
    parser.add_argument("--chapter-budget", type=float, default=60.0, help="seconds allowed per chapter")
    parser.add_argument("--total-budget", type=float, default=300.0, help="seconds allowed for the course")
    parser.add_argument("--write", action="store_true",
                        help="record the run times in course/timings.json and rewrite the chapters' Time sentences")
    parser.add_argument("--recount", action="store_true",
                        help="without running anything: recount the chapters' words and rewrite their Time sentences")
    args = parser.parse_args(argv)
    chapters = sorted(COURSE.glob("0*.ipynb"))
    if args.chapters:
        chapters = [p for p in chapters if p.name[:2] in args.chapters]
        if not chapters:
            parser.error(f"no chapter numbered {args.chapters} in {COURSE}")
    if args.recount:
        recount([p.stem for p in chapters])
        print(f"recounted the words of {len(chapters)} chapter(s) into {TIMINGS} and their Time sentences")
        return 0
    if args.write:
        for path in chapters:  # before the runs, not after: a missing sentence must not cost them
            time_cell(path)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    seconds, executed = {}, {}
    for path in chapters:
        seconds[path.stem], cpu, run = run_chapter(path)
        executed[path.stem] = seconds[path.stem], run
        flag = "" if seconds[path.stem] <= args.chapter_budget else f"   over the {args.chapter_budget:g} s budget"
        print(f"{path.stem:>28}: {seconds[path.stem]:6.1f} s wall, {cpu:6.1f} s CPU{flag}", flush=True)
    total = sum(seconds.values())
    print(f"{'total':>28}: {total:6.1f} s wall (budget {args.total_budget:g} s)")
    if args.write:
        write_times(executed)
        print(f"wrote {TIMINGS} and the Time sentences of {len(executed)} chapter(s)")
    within = total <= args.total_budget and max(seconds.values()) <= args.chapter_budget
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
