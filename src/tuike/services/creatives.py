"""Creatives: text links, uploaded banners (checked) and HTML snippets (sanitised).

A banner upload is accepted only when Pillow decodes it as PNG, JPEG, GIF or WebP, its file
is at most ``TUIKE_BANNER_MAX_BYTES`` and its sides are between 1 and ``MAX_SIDE`` pixels;
SVG is refused (it can carry script). The file is kept in the database so that every
stateless node serves it at ``/creatives/{id}/image``.

An HTML snippet is cleaned by nh3 (the ammonia sanitiser) down to a few presentational tags,
``http``/``https`` URLs only, no scripts, event handlers or styles. ``{link}`` in it stands
for the affiliate's tracking link and is filled in when the gallery shows it.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

import nh3
from markupsafe import escape
from PIL import Image, UnidentifiedImageError
from sqlalchemy import Connection, insert, select, update

from tuike.domain.catalog import Creative, Program
from tuike.domain.errors import InvalidField, NotFound
from tuike.services.catalog import create_creative
from tuike.services.clock import utcnow
from tuike.storage import catalog as repo
from tuike.storage import tables as t

MAX_SIDE = 3000
LINK_MACRO = "{link}"
CONTENT_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
EXTENSIONS = {v: k.lower().replace("jpeg", "jpg") for k, v in CONTENT_TYPES.items()}
# The IAB's standard ad units: a banner of one of these sizes is labelled with its name.
IAB_SIZES = {
    (300, 250): "Medium Rectangle",
    (336, 280): "Large Rectangle",
    (728, 90): "Leaderboard",
    (970, 90): "Large Leaderboard",
    (970, 250): "Billboard",
    (300, 600): "Half Page",
    (160, 600): "Wide Skyscraper",
    (120, 600): "Skyscraper",
    (320, 50): "Mobile Banner",
    (320, 100): "Large Mobile Banner",
    (468, 60): "Banner",
    (250, 250): "Square",
    (200, 200): "Small Square",
}
SNIPPET_TAGS = {
    "a", "b", "br", "div", "em", "i", "img", "p", "small", "span", "strong", "u",
}  # fmt: skip
SNIPPET_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height", "title"},
    "*": {"class"},
}
MAX_SNIPPET = 20_000


@dataclass(frozen=True, slots=True)
class BannerFile:
    """A checked banner file: its type, size in pixels and bytes."""

    content_type: str
    width: int
    height: int
    data: bytes

    @property
    def iab_name(self) -> str:
        """The IAB name of the banner's size, or an empty string."""
        return IAB_SIZES.get((self.width, self.height), "")


def check_banner(data: bytes, max_bytes: int) -> BannerFile:
    """Decode and check an uploaded banner (raises InvalidField with the reason)."""
    if not data:
        raise InvalidField("file", "choose an image file to upload")
    if len(data) > max_bytes:
        raise InvalidField(
            "file", f"is {len(data):,} bytes; banners may be at most {max_bytes:,} bytes"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt = image.format or ""
                width, height = image.size
                if fmt in CONTENT_TYPES and width * height <= MAX_SIDE * MAX_SIDE:
                    image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Warning) as exc:
        raise InvalidField("file", "is not a PNG, JPEG, GIF or WebP image") from exc
    if fmt not in CONTENT_TYPES:
        raise InvalidField("file", f"is {fmt or 'an unknown format'}; use PNG, JPEG, GIF or WebP")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise InvalidField(
            "file", f"is {width}×{height} pixels; each side must be 1 to {MAX_SIDE} pixels"
        )
    return BannerFile(CONTENT_TYPES[fmt], width, height, data)


def sanitise_snippet(markup: str) -> str:
    """Return an HTML snippet with everything but a few presentational tags removed."""
    if len(markup) > MAX_SNIPPET:
        raise InvalidField("body", f"must be at most {MAX_SNIPPET:,} characters")
    clean = nh3.clean(
        markup,
        tags=SNIPPET_TAGS,
        attributes=SNIPPET_ATTRIBUTES,
        url_schemes={"http", "https"},
        link_rel="sponsored noopener",
        strip_comments=True,
    ).strip()
    if not clean:
        raise InvalidField("body", "has no HTML left once scripts and unsafe markup are removed")
    return clean


def image_path(creative_id: int, content_type: str) -> str:
    """The path at which a stored banner is served."""
    return f"/creatives/{creative_id}/image.{EXTENSIONS[content_type]}"


def snippet_for(creative: Creative, link_url: str, base_url: str) -> str:
    """Return the HTML an affiliate pastes to show a creative with their tracking link."""
    href = escape(link_url)
    if creative.kind == "html" and creative.body:
        return creative.body.replace(LINK_MACRO, str(href))
    if creative.image_url:
        src = creative.image_url
        if src.startswith("/"):
            src = base_url.rstrip("/") + src
        size = ""
        if creative.width and creative.height:
            size = f' width="{creative.width}" height="{creative.height}"'
        return (
            f'<a href="{href}" rel="sponsored"><img src="{escape(src)}"{size}'
            f' alt="{escape(creative.name)}"></a>'
        )
    return f'<a href="{href}" rel="sponsored">{escape(creative.body or creative.name)}</a>'


def add_text_link(
    conn: Connection, program: Program, *, name: str, text: str, landing_url: str | None = None
) -> Creative:
    """Add a text link: the anchor text affiliates place around their tracking link."""
    text = " ".join((text or "").split())
    if not text or len(text) > 500:
        raise InvalidField("body", "the link text must be 1 to 500 characters")
    creative = create_creative(
        conn, program=program, kind="text", name=name, landing_url=landing_url or None
    )
    return _set_body(conn, creative, text)


def add_snippet(
    conn: Connection, program: Program, *, name: str, markup: str, landing_url: str | None = None
) -> Creative:
    """Add an HTML snippet, sanitised; ``{link}`` stands for the tracking link."""
    clean = sanitise_snippet(markup)
    creative = create_creative(
        conn, program=program, kind="html", name=name, landing_url=landing_url or None
    )
    return _set_body(conn, creative, clean)


def add_banner(
    conn: Connection,
    program: Program,
    *,
    name: str,
    data: bytes,
    max_bytes: int,
    landing_url: str | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Creative:
    """Store an uploaded banner after checking its format, bytes and pixel size.

    When the merchant states a size, the file must have exactly that size.
    """
    banner = check_banner(data, max_bytes)
    if (width or height) and (width, height) != (banner.width, banner.height):
        raise InvalidField(
            "file",
            f"is {banner.width}×{banner.height} pixels, not the stated {width}×{height}",
        )
    creative = create_creative(
        conn,
        program=program,
        kind="banner",
        name=name,
        landing_url=landing_url or None,
        width=banner.width,
        height=banner.height,
    )
    conn.execute(
        insert(t.creative_images).values(
            creative_id=creative.id,
            content_type=banner.content_type,
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            data=data,
            created_at=utcnow(),
        )
    )
    conn.execute(
        update(t.creatives)
        .where(t.creatives.c.id == creative.id)
        .values(image_url=image_path(creative.id, banner.content_type))
    )
    return _reload(conn, creative.id)


def set_status(conn: Connection, creative: Creative, status: str) -> Creative:
    """Archive a creative (it leaves the gallery; its links keep working) or restore it."""
    if status not in ("active", "archived"):
        raise InvalidField("status", "must be active or archived")
    conn.execute(update(t.creatives).where(t.creatives.c.id == creative.id).values(status=status))
    return _reload(conn, creative.id)


def get_image(conn: Connection, creative_id: int) -> Any:
    """Return a stored banner file (content_type, sha256, data) of an active creative."""
    row = conn.execute(
        select(
            t.creative_images.c.content_type, t.creative_images.c.sha256, t.creative_images.c.data
        )
        .join(t.creatives, t.creatives.c.id == t.creative_images.c.creative_id)
        .where(t.creative_images.c.creative_id == creative_id, t.creatives.c.status == "active")
    ).first()
    if row is None:
        raise NotFound("creative")
    return row


def _set_body(conn: Connection, creative: Creative, body: str) -> Creative:
    conn.execute(update(t.creatives).where(t.creatives.c.id == creative.id).values(body=body))
    return _reload(conn, creative.id)


def _reload(conn: Connection, creative_id: int) -> Creative:
    creative = repo.get_creative(conn, creative_id)
    assert creative is not None
    return creative
