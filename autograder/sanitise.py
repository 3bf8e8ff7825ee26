"""Student-made HTML made inert, for every page an instructor or a student opens (feedback, class report).

Two layers. nh3 (html5ever's parser, linear time) keeps only markup that neither runs nor loads nor styles:
no script, no event handler, no ``style``, no ``id``, no ``class`` (a kept class name such as ``jp-Dialog``
would be styled by the page's own CSS: fixed, full-window, on top), links only to http(s) and mailto,
images only as inline PNG/JPEG/GIF data. And the page puts student content in a ``CONTAINED`` box whose
painting is clipped to itself, so whatever slips through the first layer cannot cover the page's own elements;
its ``HEAD`` carries a Content-Security-Policy that forbids every script and every network load.
"""
from __future__ import annotations

import nh3

CSP = ("default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
       "form-action 'none'; base-uri 'none'")
HEAD = (f"<meta charset='utf-8'><meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
        "<meta name='referrer' content='no-referrer'>")
# position:relative + contain:paint makes the box the containing block of its fixed and absolute descendants
# and clips their painting to it; isolation keeps their z-index inside it
CONTAINED = "position:relative;contain:layout paint;isolation:isolate;overflow:auto"
MATHML = {"math", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac", "msqrt",
          "mroot", "mover", "munder", "munderover", "mtable", "mtr", "mtd", "mstyle", "mpadded", "mphantom",
          "menclose", "semantics", "annotation"}
TAGS = (nh3.ALLOWED_TAGS | MATHML | {"div", "span", "pre", "table", "thead", "tbody", "tr", "th", "td", "img",
                                     "details", "summary", "section"})
ATTRIBUTES = {"*": {"title"}, "a": {"href"}, "img": {"src", "alt", "width", "height"},
              "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"},
              **{tag: {"mathvariant", "display", "stretchy", "fence", "separator", "lspace", "rspace", "accent",
                       "columnalign", "width", "notation"} for tag in MATHML}}
IMAGES = ("data:image/png", "data:image/jpeg", "data:image/gif")


def sanitise(fragment: str) -> str:
    """Student-made HTML without anything that runs, loads or takes the page's own styles."""
    return _clean(fragment, ATTRIBUTES)


def sanitise_page(fragment: str) -> str:
    """HTML that our own template wrapped around content already passed through ``sanitise``: the template's
    class names are kept (they style the notebook), everything that runs or loads still goes."""
    return _clean(fragment, {**ATTRIBUTES, "*": ATTRIBUTES["*"] | {"class"}})


def _clean(fragment: str, attributes: dict) -> str:
    return nh3.clean(fragment, tags=TAGS, attributes=attributes, url_schemes={"http", "https", "mailto", "data"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True, attribute_filter=_safe_url)


def _safe_url(tag: str, attribute: str, value: str) -> str | None:
    """Images may only be inline raster data, links may not be data: (a page of its own, with its own scripts)."""
    scheme = value.strip().lower()
    if attribute == "src":
        return value if scheme.startswith(IMAGES) else None
    if attribute == "href":
        return None if scheme.startswith("data:") else value
    return value
