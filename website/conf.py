"""Sphinx configuration of the course site (python -m website build passes its settings in the environment)."""
import json
import os
from pathlib import Path

_settings = json.loads(os.environ["RESLAB_SITE_SETTINGS"])
HUB_URL, REPO_URL = _settings["hub_url"], _settings["repo_url"]

project = "Residual connections in CNNs"
author = "the reslab course"
extensions = ["myst_nb"]
exclude_patterns = ["**.ipynb_checkpoints"]
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = [str(Path(__file__).parent / "static"), _settings["static"]]
html_extra_path = [_settings["extra"]]
html_css_files = ["site.css"]
html_js_files = [("site.js", {"type": "module"})]
html_copy_source = False
html_show_sourcelink = False
html_context = {"default_mode": "auto"}  # the theme logs a console error when none is set
html_theme_options = {"show_toc_level": 2, "use_download_button": False, "home_page_in_toc": True}
# maths typeset by the MathJax the build copied from npm into _static: nothing from a CDN
mathjax_path = "mathjax/tex-mml-chtml.js"
myst_enable_extensions = ["dollarmath", "amsmath"]

# chapters run once; their outputs are kept in a jupyter-cache keyed by their code cells' source
nb_execution_mode = "cache"
nb_execution_cache_path = str(Path(_settings["cache"]) / "jupyter_cache")
nb_output_folder = str(Path(_settings["cache"]) / "jupyter_execute")  # not beside the site folder
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True  # a failing chapter shows its traceback in the build log
# no ipywidgets manager from a CDN: the explorers' HTML output carries their PNG and the data they mount on
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None),
                              ("html", "application/vnd.jupyter.widget-state+json", None)]


def launch_links(app, pagename, templatename, context, doctree):
    """A line at the top of every notebook page: the notebook in the repository (or the site's copy) and,
    when a JupyterHub is configured, the notebook opened there."""
    if not pagename.startswith(("course/", "exercises/")) or "body" not in context:
        return
    path = pagename.split("/")
    path = "/".join(path[:-1] + [path[-1] + ".ipynb"])
    links = [f'<a class="reslab-repo" href="{REPO_URL}/{path}">the notebook in the repository</a>' if REPO_URL
             else f'<a class="reslab-repo" href="{context["pathto"]("notebooks/" + path, 1)}" download>'
                  f'download the notebook</a>']
    if HUB_URL:
        links.append(f'<a class="reslab-hub" href="{HUB_URL}/hub/user-redirect/lab/tree/{path}">'
                     f'open it on the class JupyterHub</a>')
    context["body"] = f'<p class="reslab-launch">Run it yourself: {" · ".join(links)}</p>' + context["body"]


def setup(app):
    app.connect("html-page-context", launch_links)
