"""Build the site: generate the Sphinx sources from course/ and exercises/, run Sphinx with myst-nb (chapters
executed once and kept in a jupyter-cache keyed by their code), then write the explorers' data."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
MATHJAX = HERE / "node_modules" / "mathjax" / "es5"
# the controls a page's explorer moves, those its chapter's "Try:" asks for (each grid costs build time)
FREE = {"02_vanishing_gradients": ["depth", "residual", "activation", "init", "norm"],
        "04_identity_add": ["depth", "residual", "block", "activation", "norm"],
        "06_scale_operations": ["shortcut_scale", "branch_scale", "norm"]}
DEFAULT_FREE = ["depth", "residual", "activation", "norm"]
# the papers the chapters cite, by a phrase of their title, with where to read them
PAPERS = {
    "Gradient-based learning applied to document recognition": "https://doi.org/10.1109/5.726791",
    "A guide to convolution arithmetic": "https://arxiv.org/abs/1603.07285",
    "Network in network": "https://arxiv.org/abs/1312.4400",
    "Understanding the effective receptive field": "https://arxiv.org/abs/1701.04128",
    "Understanding the difficulty of training deep feedforward": "https://proceedings.mlr.press/v9/glorot10a.html",
    "Delving deep into rectifiers": "https://arxiv.org/abs/1502.01852",
    "Batch normalization: accelerating": "https://arxiv.org/abs/1502.03167",
    "Deep residual learning for image recognition": "https://arxiv.org/abs/1512.03385",
    "The shattered gradients problem": "https://arxiv.org/abs/1702.08591",
    "A mean field theory of batch normalization": "https://arxiv.org/abs/1902.08129",
    "Net2Net": "https://arxiv.org/abs/1511.05641",
    "Accurate, large minibatch SGD": "https://arxiv.org/abs/1706.02677",
    "Identity mappings in deep residual networks": "https://arxiv.org/abs/1603.05027",
    "Residual networks behave like ensembles": "https://arxiv.org/abs/1605.06431",
    "Highway networks": "https://arxiv.org/abs/1505.00387",
    "Inception-v4": "https://arxiv.org/abs/1602.07261",
    "Fixup initialization": "https://arxiv.org/abs/1901.09321",
    "ReZero is all you need": "https://arxiv.org/abs/2003.04887",
    "Batch normalization biases residual blocks": "https://arxiv.org/abs/2002.10444",
    "Going deeper with image transformers": "https://arxiv.org/abs/2103.17239",
    "DeepNet: scaling Transformers": "https://arxiv.org/abs/2203.00555",
    "Fashion-MNIST": "https://arxiv.org/abs/1708.07747",
    "Densely connected convolutional networks": "https://arxiv.org/abs/1608.06993",
    "Aggregated residual transformations": "https://arxiv.org/abs/1611.05431",
    "Deep networks with stochastic depth": "https://arxiv.org/abs/1603.09382",
    "Wide residual networks": "https://arxiv.org/abs/1605.07146",
    "Visualizing the loss landscape": "https://arxiv.org/abs/1712.09913",
    "Dive into Deep Learning": "https://d2l.ai",
}
HOW_TO = """\
```{{admonition}} How to get and hand in this assignment
:class: tip
**Get it**: on the class JupyterHub, open the *Assignments* tab and fetch `{name}`; otherwise clone the
course repository and open <a href="{download}" download><code>exercises/{name}/{name}.ipynb</code></a> in JupyterLab
(`bash scripts/setup.sh`, then `jupyter lab`).
**Work**: fill in every cell marked `YOUR CODE HERE`, keep the names the task prescribes, and run the
visible checks under each part; a failing check names a known mistake when it recognises one.
**Check**: *Validate* in the notebook's toolbar; on the hub, `python -m reslab.selfcheck {name}` in a
terminal grades your latest submission on a fresh seed (a few times an hour).
**Hand in**: *Submit* in the *Assignments* tab on the hub, or the notebook file by your class's channel.
This page shows the task text only; the code you write goes in the notebook.
```
"""


def chapters() -> list[Path]:
    found = sorted((ROOT / "course").glob("0*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no chapters in {ROOT / 'course'}")
    return found


def assignments() -> list[Path]:
    return sorted((ROOT / "exercises").glob("a0*/a0*.ipynb"))


def title(nb) -> str:
    heading = "".join(nb.cells[0].source).splitlines()[0]
    return heading.lstrip("# ").strip()


def minutes(nb) -> str:
    found = re.search(r"\*\*Time:\*\*\s*about (\d+) minutes", "".join(nb.cells[0].source))
    return found.group(1) if found else "?"


def references(nb) -> list[str]:
    for cell in nb.cells:
        text = "".join(cell.source)
        if "## References" in text:
            items = re.split(r"\n- ", text.split("## References", 1)[1])
            return [" ".join(item.split()) for item in items if item.strip()]
    return []


def task_page(path: Path) -> nbformat.NotebookNode:
    """The release notebook as a page: how to get and hand it in, the task text, the given code and the
    visible checks; solution cells keep only their placeholder. Refuses hidden tests."""
    nb = nbformat.read(path, as_version=4)
    name = path.stem
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if "HIDDEN TESTS" in cell.source or "### BEGIN SOLUTION" in cell.source:
            raise ValueError(f"{path} holds hidden tests or a solution: exercises/ must be nbgrader's release")
        if meta.get("solution") and cell.cell_type == "code":
            cell.source = "# YOUR CODE HERE (in the notebook)"
        cell.outputs = [] if cell.cell_type == "code" else None
        if cell.outputs is None:
            del cell["outputs"]
    nb.metadata["mystnb"] = {"execution_mode": "off"}  # a task page shows text; running it would fail
    download = f"../../notebooks/exercises/{name}/{name}.ipynb"
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(HOW_TO.format(name=name, download=download)))
    return nb


def write_attachments(nb: nbformat.NotebookNode, folder: Path) -> None:
    """Markdown cells' attached images (the assignments' block diagrams) as files beside the page, each
    ``attachment:NAME`` pointing at its file: the page's builder resolves no cell attachments."""
    for index, cell in enumerate(nb.cells):
        for name, bundle in cell.pop("attachments", {}).items():
            mime, data = next(iter(bundle.items()))
            if not mime.startswith("image/") or "/" in name or name.startswith("."):
                continue
            file = f"attachment-{index}-{name}"
            (folder / file).write_bytes(base64.b64decode(data))
            cell.source = cell.source.replace(f"attachment:{name}", file)


def landing(chapter_nbs: dict[str, nbformat.NotebookNode], tasks: list[Path]) -> str:
    rows, cited = [], {}
    for stem, nb in chapter_nbs.items():
        task = next((t for t in tasks if t.stem[1:3] == stem[:2]), None)
        task_link = f"[{task.stem}](exercises/{task.stem}/{task.stem}.ipynb)" if task else ""
        rows.append(f"| [{title(nb)}](course/{stem}.ipynb) | {minutes(nb)} min | {task_link} |")
        for ref in references(nb):
            cited.setdefault(ref, []).append(stem[:2].lstrip("0"))
    total = sum(int(minutes(nb)) for nb in chapter_nbs.values() if minutes(nb) != "?")
    papers = []
    for ref, where in cited.items():
        url = next((u for phrase, u in PAPERS.items() if phrase.lower() in ref.lower()), None)
        ref = ref.replace("*", "")
        papers.append(f"- {f'[{ref}]({url})' if url else ref} (chapter {', '.join(where)})")
    toc_course = "\n".join(f"course/{stem}" for stem in chapter_nbs)
    toc_tasks = "\n".join(f"exercises/{t.stem}/{t.stem}" for t in tasks)
    return f"""# Residual connections in CNNs

Eight chapters that take you from convolution basics to full ResNets and what came after. Every claim is an
experiment; here you read each chapter with the outputs it printed when this site was built, from the
course's shipped reference runs. The gradient-flow explorers of chapters 2, 4 and 6 work in this page
without a kernel: their numbers were computed ahead by the course library over a grid of their controls.
To run the code yourself, open a chapter's notebook (a link at the top of every page).

## The learning path

Read the chapters in order; each ends with its assignment. About {total} minutes in all, each chapter's
time counted from its words at 175 words a minute plus its measured run.

| chapter | time | assignment |
|---|---:|---|
{chr(10).join(rows)}

## The papers

{chr(10).join(papers)}

```{{toctree}}
:caption: Chapters
:maxdepth: 1
:hidden:
{toc_course}
```

```{{toctree}}
:caption: Assignments
:maxdepth: 1
:hidden:
{toc_tasks}
```
"""


def _library_hash() -> str:
    """Changes whenever the library code behind the explorers' numbers changes."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "reslab").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def flow_data(out: Path, cache: Path) -> list[str]:
    """Write the data of every explorer found on the built pages into _static/flow/, cached per library."""
    from reslab.widgets.flow import FlowSettings
    from reslab.widgets.static import flow_grid

    target = out / "_static" / "flow"
    target.mkdir(parents=True, exist_ok=True)
    written, version = [], _library_hash()
    for page in sorted((out / "course").glob("*.html")):
        text = page.read_text()
        for settings, grid in re.findall(r'data-settings="([^"]+)" data-grid="([^"]+)"', text):
            start = FlowSettings(**json.loads(settings.replace("&quot;", '"')))
            free = FREE.get(page.stem, DEFAULT_FREE)
            kept = cache / "flow" / f"{version}-{'-'.join(free)}-{grid}"
            if not kept.exists():
                kept.parent.mkdir(parents=True, exist_ok=True)
                kept.write_text(json.dumps(flow_grid(start, free), separators=(",", ":")))
            shutil.copyfile(kept, target / grid)
            written.append(f"{page.stem}: {grid}")
    return written


def keep_execution(executed: nbformat.NotebookNode, source: Path, cache: Path = Path("_build/site")) -> None:
    """Keep a chapter executed elsewhere in the build's jupyter-cache, keyed by its code like the build's own
    runs, so the next build shows these outputs instead of running the chapter again (tests/test_course.py
    runs every chapter anyway). Execute it without nbclient's timing metadata: the key covers cell metadata."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    get_cache(str(cache / "jupyter_cache")).cache_notebook_bundle(
        CacheBundleIn(executed, str(source)), check_validity=False, overwrite=True)


def build(out: Path, cache: Path = Path("_build/site"), hub_url: str = "", repo_url: str = "") -> float:
    """Build the site into ``out``; returns the seconds it took."""
    from sphinx.cmd.build import build_main

    started = time.perf_counter()
    out, cache = out.resolve(), cache.resolve()
    if not (MATHJAX / "tex-mml-chtml.js").exists():
        raise FileNotFoundError(f"MathJax is not installed in {MATHJAX.parent}: run 'bash scripts/setup.sh' "
                                "(it runs 'npm ci' in website/)")
    src, static, extra = cache / "src", cache / "static", cache / "extra"
    for folder in (src, static, extra):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    chapter_nbs = {}
    for path in chapters():
        (src / "course").mkdir(exist_ok=True)
        shutil.copyfile(path, src / "course" / path.name)
        chapter_nbs[path.stem] = nbformat.read(path, as_version=4)
    tasks = assignments()
    for path in tasks:
        (src / "exercises" / path.stem).mkdir(parents=True)
        page = task_page(path)
        write_attachments(page, src / "exercises" / path.stem)
        nbformat.write(page, src / "exercises" / path.stem / path.name)
    for path in [*chapters(), *tasks]:  # the notebooks themselves, for readers without the repository
        copy = extra / "notebooks" / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
    (src / "index.md").write_text(landing(chapter_nbs, tasks))
    for part in ("tex-mml-chtml.js", "input", "output/chtml", "a11y", "ui", "adaptors"):
        source, target = MATHJAX / part, static / "mathjax" / part
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copyfile)(source, target)
    from reslab.widgets.static import ESM
    shutil.copyfile(ESM, static / ESM.name)
    settings = {"hub_url": hub_url.rstrip("/"), "repo_url": repo_url.rstrip("/"), "cache": str(cache),
                "static": str(static), "extra": str(extra)}
    os.environ["RESLAB_SITE_SETTINGS"] = json.dumps(settings)  # read by conf.py
    code = build_main(["-b", "html", "-q", "-c", str(HERE), str(src), str(out)])
    if code:
        raise RuntimeError(f"Sphinx failed (exit {code}); its messages are above")
    if not flow_data(out, cache):
        raise RuntimeError("no gradient-flow explorer found on the chapter pages")
    return time.perf_counter() - started
