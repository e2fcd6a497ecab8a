"""Pictures of the visualisation tools: ranking lists (DMF Fig. 4), attention overlays (Fig. 5), token bars.

Ranking lists are composed pixel by pixel with PIL, so their size and the border colours are exact;
attention overlays use ``pytorch_grad_cam.utils.image.show_cam_on_image`` (OpenCV's JET colour map, half
image, half heat map) in a matplotlib grid; token bars are matplotlib bar charts. Matplotlib runs on
its Agg backend (no display needed).

Ranking list layout (:class:`RankingLayout`), all in pixels, ``k`` gallery columns after the query::

    cell_h = cell height (128 by default), cell_w = round(cell_h * W_test / H_test)  (INPUT.SIZE_TEST = H, W)
    tile   = cell + a BORDER-wide frame on every side: (cell_w + 2 * BORDER) x (cell_h + 2 * BORDER)
    width  = 2 * MARGIN + (k + 1) * tile_w + k * GAP + QUERY_GAP
    height = 2 * MARGIN + TITLE_H + tile_h + LABEL_H

Column 0 (the query) starts at ``x = MARGIN``, gallery rank r (1..k) at
``x = MARGIN + QUERY_GAP + r * (tile_w + GAP)``; every tile starts at ``y = MARGIN + TITLE_H``. The frame is
:data:`GREEN` for a gallery image of the query's identity, :data:`RED` otherwise, :data:`QUERY_GREY` around
the query; slots beyond the gallery's end stay white. The title (two lines) names the query and its AP, then
the number of same-identity same-camera gallery images left out (Market-1501 protocol; said first, since a
line too long for a narrow list is cut with an ellipsis); under each tile are the rank, identity and
distance. A contact sheet stacks ranking lists vertically (same width, heights added).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["BORDER", "GAP", "GREEN", "LABEL_H", "MARGIN", "QUERY_GAP", "QUERY_GREY", "RED", "TITLE_H", "GalleryTile",
           "RankingLayout", "attention_figure", "contact_sheet", "draw_ranking_list", "draw_text_ranking_list",
           "token_bar_figure", "NEUTRAL"]

#: Ranking-list layout constants, in pixels (see the module docstring).
MARGIN, BORDER, GAP, QUERY_GAP = 8, 4, 4, 12
#: Font size and line height of the ranking-list texts, in pixels.
FONT_SIZE, LINE_H = 11, 14
#: Title band (two lines) above the tiles and label band (two lines) under them, in pixels.
TITLE_H, LABEL_H = 2 * LINE_H + 4, 2 * LINE_H + 2
#: Frame colours (RGB): same identity as the query, another identity, the query.
GREEN, RED, QUERY_GREY = (0, 170, 0), (220, 0, 0), (128, 128, 128)
_WHITE, _BLACK = (255, 255, 255), (0, 0, 0)
#: Frame of a gallery image whose identity is unknown (a free-text query on a folder of images), RGB.
NEUTRAL = (70, 110, 200)


@dataclass(frozen=True)
class RankingLayout:
    """Pixel geometry of one ranking list (see the module docstring for the formulas).

    Args:
        k: gallery columns after the query (>= 1).
        cell_w, cell_h: size of each image inside its frame, in pixels.
    """

    k: int
    cell_w: int
    cell_h: int

    @classmethod
    def for_test_size(cls, k: int, cell_h: int, size_test: Sequence[int]) -> RankingLayout:
        """Layout whose cells have the aspect of ``INPUT.SIZE_TEST`` ``(H, W)``: cell_w = round(cell_h * W / H).

        Raises:
            ValueError: ``k`` < 1, ``cell_h`` < 16 or a size that is not two positive numbers.
        """
        if k < 1:
            raise ValueError(f"--k {k}: expected at least 1 gallery image per list")
        if cell_h < 16:
            raise ValueError(f"--cell-height {cell_h}: expected at least 16 pixels")
        if len(size_test) != 2 or min(size_test) <= 0:
            raise ValueError(f"INPUT.SIZE_TEST {list(size_test)}: expected [height, width] in pixels")
        height, width = size_test
        return cls(int(k), max(1, round(cell_h * width / height)), int(cell_h))

    @property
    def tile_w(self) -> int:
        """Tile width: ``cell_w + 2 * BORDER``."""
        return self.cell_w + 2 * BORDER

    @property
    def tile_h(self) -> int:
        """Tile height: ``cell_h + 2 * BORDER``."""
        return self.cell_h + 2 * BORDER

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the ranking-list image in pixels."""
        width = 2 * MARGIN + (self.k + 1) * self.tile_w + self.k * GAP + QUERY_GAP
        height = 2 * MARGIN + TITLE_H + self.tile_h + LABEL_H
        return width, height

    def tile_box(self, column: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of column ``column``'s tile (0 = query, r = gallery rank r), x1/y1 exclusive.

        Raises:
            ValueError: ``column`` outside 0..k.
        """
        if not 0 <= column <= self.k:
            raise ValueError(f"column {column}: expected 0 (query) .. {self.k}")
        x0 = MARGIN + (QUERY_GAP if column else 0) + column * (self.tile_w + GAP)
        y0 = MARGIN + TITLE_H
        return x0, y0, x0 + self.tile_w, y0 + self.tile_h


@dataclass(frozen=True)
class GalleryTile:
    """One gallery image of a ranking list.

    Attributes:
        path: image file. rank: 1-based rank among the gallery images kept by the evaluation rule.
        pid: identity (None when unknown). distance: distance to the query (``TEST.METRIC``). match: same
        identity as the query.
    """

    path: str
    rank: int
    pid: int | None
    distance: float
    match: bool


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.ImageFont) -> str:
    """``text`` cut (with an ellipsis) to at most ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _read_cell(path: str, layout: RankingLayout) -> Image.Image:
    """The image at ``path`` as RGB, resized to the cell (bicubic)."""
    with Image.open(path) as image:
        return image.convert("RGB").resize((layout.cell_w, layout.cell_h), Image.Resampling.BICUBIC)


def _tile(canvas: Image.Image, draw: ImageDraw.ImageDraw, layout: RankingLayout, column: int, path: str,
          colour: tuple[int, int, int], lines: Sequence[str], font: ImageFont.ImageFont) -> None:
    x0, y0, x1, y1 = layout.tile_box(column)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour)
    canvas.paste(_read_cell(path, layout), (x0 + BORDER, y0 + BORDER))
    for i, line in enumerate(lines):
        draw.text((x0, y1 + 1 + i * LINE_H), _fit(draw, line, layout.tile_w + GAP, font), fill=_BLACK, font=font)


def _list_canvas(layout: RankingLayout, num_gallery: int, title: str, caption: str
                 ) -> tuple[Image.Image, ImageDraw.ImageDraw, ImageFont.ImageFont]:
    """A white ranking-list canvas with its two title lines; refuses more gallery tiles than ``layout.k``."""
    if num_gallery > layout.k:
        raise ValueError(f"{num_gallery} gallery images for a {layout.k}-column ranking list")
    canvas = Image.new("RGB", layout.size, _WHITE)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    width = layout.size[0] - 2 * MARGIN
    draw.text((MARGIN, MARGIN), _fit(draw, title, width, font), fill=_BLACK, font=font)
    draw.text((MARGIN, MARGIN + LINE_H), _fit(draw, caption, width, font), fill=_BLACK, font=font)
    return canvas, draw, font


def draw_ranking_list(layout: RankingLayout, query_path: str, query_pid: int, query_camid: int,
                      gallery: Sequence[GalleryTile], title: str, caption: str) -> Image.Image:
    """One ranking list: the query, then up to ``layout.k`` gallery images framed green / red (DMF Fig. 4).

    Args:
        layout: the geometry (image size ``layout.size``).
        query_path, query_pid, query_camid: the query image and its labels.
        gallery: the ranked gallery images (at most ``layout.k``; missing slots stay white).
        title: first title line (query, AP); caption: second line (ranking rule, skipped images).

    Returns:
        RGB ``PIL.Image`` of ``layout.size`` pixels.

    Raises:
        ValueError: more gallery tiles than ``layout.k``. OSError: an image cannot be read (names the file).
    """
    canvas, draw, font = _list_canvas(layout, len(gallery), title, caption)
    _tile(canvas, draw, layout, 0, query_path, QUERY_GREY, ("query", f"id {query_pid} cam {query_camid}"), font)
    for column, entry in enumerate(gallery, start=1):
        _tile(canvas, draw, layout, column, entry.path, GREEN if entry.match else RED,
              (f"#{entry.rank} id {entry.pid}", f"d={entry.distance:.4g}"), font)
    return canvas


def _wrap(draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.ImageFont) -> list[str]:
    """``text`` broken into lines of at most ``width`` pixels (at spaces; a longer word is cut)."""
    lines: list[str] = []
    for word in text.split():
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(candidate, font=font) <= width:
            lines[-1] = candidate
        else:
            lines.append(_fit(draw, word, width, font))
    return lines


def draw_text_ranking_list(layout: RankingLayout, description: str, gallery: Sequence[GalleryTile],
                           title: str, caption: str, known: bool = True) -> Image.Image:
    """A text-to-image ranking list: the description in the query column, then the top-k gallery images.

    Same geometry and colours as :func:`draw_ranking_list` (image size ``layout.size``); the query tile holds
    the description, wrapped (cut with an ellipsis when it does not fit). Frames are :data:`GREEN` / :data:`RED`
    when the query's identity is ``known``, else :data:`NEUTRAL`.

    Raises:
        ValueError: more gallery tiles than ``layout.k``. OSError: an image cannot be read (names the file).
    """
    canvas, draw, font = _list_canvas(layout, len(gallery), title, caption)
    x0, y0, x1, y1 = layout.tile_box(0)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=QUERY_GREY)
    draw.rectangle((x0 + BORDER, y0 + BORDER, x1 - 1 - BORDER, y1 - 1 - BORDER), fill=_WHITE)
    lines = _wrap(draw, description, layout.cell_w - 4, font)
    fits = max(1, (layout.cell_h - 4) // LINE_H)
    if len(lines) > fits:
        lines = lines[:fits - 1] + [_fit(draw, lines[fits - 1] + " …", layout.cell_w - 4, font)]
    for i, line in enumerate(lines):
        draw.text((x0 + BORDER + 2, y0 + BORDER + 2 + i * LINE_H), line, fill=_BLACK, font=font)
    draw.text((x0, y1 + 1), "text query", fill=_BLACK, font=font)
    for column, entry in enumerate(gallery, start=1):
        colour = (GREEN if entry.match else RED) if known else NEUTRAL
        label = f"#{entry.rank} id {entry.pid}" if entry.pid is not None else f"#{entry.rank}"
        _tile(canvas, draw, layout, column, entry.path, colour, (label, f"d={entry.distance:.3g}"), font)
    return canvas


def contact_sheet(images: Sequence[Image.Image]) -> Image.Image:
    """Ranking lists stacked top to bottom: width = the widest, height = the sum of heights (white fill).

    Raises:
        ValueError: no images.
    """
    if not images:
        raise ValueError("contact sheet: no ranking lists to stack")
    width = max(image.width for image in images)
    sheet = Image.new("RGB", (width, sum(image.height for image in images)), _WHITE)
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    return sheet


def _agg_figure(size: tuple[float, float]):
    """A matplotlib ``Figure`` of ``size`` inches at 100 dpi on an Agg canvas (pyplot and GUI backends unused)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    return figure


def attention_figure(images: np.ndarray, maps: np.ndarray, column_labels: Sequence[str],
                     row_labels: Sequence[str], title: str = ""):
    """Grid "input | model A | model B ..." with each map overlaid on its image (DMF Fig. 5).

    Args:
        images: float32 ``(N, H, W, 3)`` RGB in [0, 1].
        maps: float32 ``(N, M, H, W)`` in [0, 1], one per image and model.
        column_labels: M model names (column titles after "input").
        row_labels: N image names (left of each row).
        title: figure title.

    Returns:
        A matplotlib ``Figure`` (Agg canvas; save with ``savefig``), 1 + M columns by N rows.

    Raises:
        ValueError: shapes or label counts that do not match.
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    if images.ndim != 4 or maps.ndim != 4 or maps.shape[0] != images.shape[0] or \
            maps.shape[2:] != images.shape[1:3]:
        raise ValueError(f"images {images.shape} and maps {maps.shape}: expected (N, H, W, 3) and (N, M, H, W)")
    count, models = maps.shape[:2]
    if len(column_labels) != models or len(row_labels) != count:
        raise ValueError(f"{len(column_labels)} column / {len(row_labels)} row labels for {models} models and "
                         f"{count} images")
    height, width = images.shape[1:3]
    cell_w = 1.6
    cell_h = min(max(cell_w * height / width, 1.0), 4.0)
    figure = _agg_figure((cell_w * (models + 1), cell_h * count + (0.5 if title else 0.2)))
    axes = figure.subplots(count, models + 1, squeeze=False)
    for row in range(count):
        image = np.clip(images[row], 0.0, 1.0).astype(np.float32)
        panels = [image] + [show_cam_on_image(image, np.clip(maps[row, m], 0, 1), use_rgb=True)
                            for m in range(models)]
        for column, panel in enumerate(panels):
            axis = axes[row, column]
            axis.imshow(panel, interpolation="bilinear")
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(["input", *column_labels][column], fontsize=9)
        axes[row, 0].set_ylabel(row_labels[row], fontsize=7)
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def token_bar_figure(entries: Sequence[tuple[str, str, Sequence[str], np.ndarray]], columns: int):
    """Per-token attention bars: one subplot per (description, model), descriptions in rows, models in columns.

    Args:
        entries: ``(model label, description, tokens, weights)`` in row-major order (description by
            description, models inside), ``weights`` float ``(T,)`` for the T ``tokens``.
        columns: models per row.

    Returns:
        A matplotlib ``Figure``; subplot i has exactly ``len(tokens)`` bars (``Axes.patches``), labelled with
        the tokens.

    Raises:
        ValueError: no entries, a count not divisible by ``columns``, or tokens and weights of different lengths.
    """
    if not entries or columns < 1 or len(entries) % columns:
        raise ValueError(f"{len(entries)} token-attention panels for {columns} model column(s)")
    rows = len(entries) // columns
    longest = max(len(tokens) for _, _, tokens, _ in entries)
    figure = _agg_figure((max(3.0, 0.3 * longest + 1.0) * columns, 2.6 * rows))
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, (label, text, tokens, weights) in enumerate(entries):
        if len(tokens) != len(weights):
            raise ValueError(f"{len(tokens)} tokens but {len(weights)} weights for {text!r}")
        axis = axes[index // columns, index % columns]
        axis.bar(np.arange(len(tokens)), np.asarray(weights, dtype=np.float64), color="tab:blue")
        axis.set_xticks(np.arange(len(tokens)), labels=list(tokens), rotation=90, fontsize=7)
        axis.set_ylabel("[cls] rollout", fontsize=7)
        axis.tick_params(axis="y", labelsize=7)
        short = text if len(text) <= 48 else text[:47] + "…"
        axis.set_title(f"{label}: \"{short}\"", fontsize=8)
    figure.tight_layout()
    return figure
