"""Procedural faces: the embedded default data set (SPEC section 1).

Every image is a pure function of ``(seed, index)``: its random generator is
``numpy.random.default_rng([seed, index])``, so any index renders alone, in any order
and in any process, and a batch is the same whatever the number of workers. A face is
drawn with PIL on a canvas :data:`SUPERSAMPLE` times larger than the target and then
reduced by averaging each SUPERSAMPLE x SUPERSAMPLE block of pixels (a box filter),
which anti-aliases every edge at a small fraction of a Lanczos filter's cost.

The layout follows aligned CelebA crops: the head fills most of the frame and the eyes
sit at about 42 % of the height. What varies, and is returned as the image's
attributes (:data:`ATTRIBUTE_NAMES`), is listed there with its unit.
"""

from __future__ import annotations

import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_context

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from zspace.config import DataConfig
from zspace.data.dataset import Dataset, DatasetCard, content_hash

#: The attributes of a face, in the column order of the attribute matrices. Names
#: ending in a category (``eyes_*``, ``hair_*`` colours and styles) are one-hot
#: indicators; ``bangs``, ``beard``, ``moustache``, ``glasses``, ``sunglasses``,
#: ``mouth_open`` and ``lipstick`` are 0/1 flags; the rest are continuous:
#: ``skin_tone`` 0 (lightest) to 1 (darkest); ``face_width`` the head's half-width as a
#: share of the frame; ``face_length`` its height over its width; ``jaw_taper`` 0
#: (round) to 1 (pointed chin); ``face_x``/``face_y`` the head centre's offset from its
#: usual place, share of the frame; ``rotation`` the head's roll in degrees (clockwise
#: positive); ``yaw`` -1 to 1 (turned to the image's left to its right); ``eye_size``,
#: ``eye_openness``, ``eye_spacing``, ``nose_length``, ``nose_width`` and
#: ``mouth_width`` relative to the head; ``brow_thickness`` share of the frame;
#: ``brow_tilt`` degrees (outer end raised positive); ``smile`` 0 to 1;
#: ``light_x``/``light_y`` the lighting gradient: the image is multiplied by
#: ``1 + light_x * x + light_y * y``, x and y running from -0.5 to 0.5 across it;
#: ``background_lightness`` 0 to 1; ``clutter`` the number of background shapes.
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "skin_tone", "face_width", "face_length", "jaw_taper",
    "face_x", "face_y", "rotation", "yaw",
    "eye_size", "eye_openness", "eye_spacing",
    "eyes_brown", "eyes_blue", "eyes_green", "eyes_gray",
    "brow_thickness", "brow_tilt",
    "nose_length", "nose_width",
    "mouth_width", "smile", "mouth_open", "lipstick",
    "hair_bald", "hair_short", "hair_long", "bangs",
    "hair_black", "hair_brown", "hair_blond", "hair_gray", "hair_red",
    "beard", "moustache", "glasses", "sunglasses",
    "light_x", "light_y", "background_lightness", "clutter",
)  # fmt: skip

#: Test images start at this index, so the test set is the same whatever num_train.
TEST_INDEX_OFFSET = 1_000_000_000
#: Validation images start here: a range of their own, shared with neither split.
VAL_INDEX_OFFSET = 2_000_000_000

#: Faces are drawn this many times larger than the target size, then reduced.
SUPERSAMPLE = 4

# Where the eyes sit (share of the frame from the top) and how far below them the
# head's centre is: an aligned CelebA crop has its eyes at about 42 % of the height.
_EYE_LINE = 0.42
_HEAD_BELOW_EYES = 0.035

_SKIN = np.array(
    [(255, 226, 204), (243, 200, 168), (226, 174, 134), (199, 140, 100),
     (164, 106, 72), (122, 78, 52), (84, 54, 40)], dtype=np.float64
)  # fmt: skip
_HAIR = {
    "black": ((22, 18, 16), (48, 38, 32)),
    "brown": ((62, 40, 26), (120, 82, 50)),
    "blond": ((176, 140, 80), (236, 208, 150)),
    "gray": ((130, 126, 122), (225, 222, 218)),
    "red": ((130, 50, 22), (190, 92, 44)),
}
_HAIR_P = (0.3, 0.35, 0.18, 0.07, 0.1)
_IRIS = {
    "brown": (92, 56, 30),
    "blue": (70, 118, 168),
    "green": (78, 118, 72),
    "gray": (118, 128, 136),
}
_IRIS_P = (0.6, 0.2, 0.12, 0.08)


class _Canvas:
    """A drawing surface whose coordinates are head-relative shares of the frame.

    The origin is the head's centre, x runs right and y down, and one unit is the
    frame's side; the head's roll is applied to every point, so all features turn
    with it.
    """

    def __init__(self, image: Image.Image, centre: tuple[float, float], roll: float):
        self.side = image.width
        self.opaque = ImageDraw.Draw(image)
        self.blend = ImageDraw.Draw(image, "RGBA")
        cos, sin = math.cos(math.radians(roll)), math.sin(math.radians(roll))
        # Row vectors: [x, y] @ matrix turns by the roll and scales to pixels.
        self.matrix = self.side * np.array([[cos, sin], [-sin, cos]])
        self.offset = self.side * np.asarray(centre)

    def map(self, xy: np.ndarray) -> list[float]:
        """Flatten (n, 2) head coordinates to PIL's [x0, y0, x1, y1, ...] pixels."""
        pixels = xy @ self.matrix
        pixels += self.offset
        return pixels.ravel().tolist()

    def polygon(self, xy: np.ndarray, fill: tuple) -> None:
        draw, fill = _pick_draw(self.opaque, self.blend, fill)
        draw.polygon(self.map(xy), fill=fill)

    def line(self, xy: np.ndarray, fill: tuple, width: float) -> None:
        draw, fill = _pick_draw(self.opaque, self.blend, fill)
        pixels = max(1, round(width * self.side))
        draw.line(self.map(xy), fill=fill, width=pixels, joint="curve")

    def ellipse(self, x: float, y: float, rx: float, ry: float, fill: tuple,
                points: int = 20) -> None:
        self.polygon(_unit_circle(points) * (rx, ry) + (x, y), fill)


def _pick_draw(opaque: ImageDraw.ImageDraw, blend: ImageDraw.ImageDraw,
               fill: tuple) -> tuple[ImageDraw.ImageDraw, tuple]:
    """The plain drawer for opaque colours, the blending one for translucent ones."""
    # PIL's blending path is about six times slower, even at full opacity.
    if fill[3] == 255:
        return opaque, fill[:3]
    return blend, fill


@lru_cache(maxsize=32)
def _steps(start: float, stop: float, count: int) -> np.ndarray:
    """A cached, read-only ``np.linspace(start, stop, count)``."""
    steps = np.linspace(start, stop, count)
    steps.flags.writeable = False
    return steps


@lru_cache(maxsize=16)
def _unit_circle(points: int) -> np.ndarray:
    """Evenly spaced points on the unit circle, (points, 2)."""
    angles = np.linspace(0.0, 2 * math.pi, points, endpoint=False)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _shade(colour: np.ndarray | tuple, factor: float, alpha: int = 255) -> tuple:
    """Colour times ``factor``, clipped, as an RGBA tuple of ints."""
    # Plain Python: for three numbers it is several times faster than numpy.
    r, g, b = colour
    return (min(255, max(0, int(r * factor))), min(255, max(0, int(g * factor))),
            min(255, max(0, int(b * factor))), alpha)


def _mix(a: tuple | np.ndarray, b: tuple | np.ndarray, t: float) -> np.ndarray:
    return np.asarray(a, dtype=np.float64) * (1 - t) + np.asarray(b) * t


@lru_cache(maxsize=1)
def _texture_bank() -> np.ndarray:
    """Sixteen smooth noise fields, (16, 32, 32) float in [0, 1].

    They are computed once per process from a fixed seed; each background picks one
    and turns, flips and tints it, which is far cheaper than fresh noise per image.
    """
    rng = np.random.default_rng(20240601)
    bank = np.zeros((16, 32, 32))
    for cells, weight in ((4, 1.0), (8, 0.5), (16, 0.25)):
        coarse = rng.random((16, cells, cells))
        bank += weight * np.kron(coarse, np.ones((32 // cells, 32 // cells)))
    # Kronecker blocks are squares; one box blur pass rounds them into blobs.
    padded = np.pad(bank, ((0, 0), (2, 2), (2, 2)), mode="wrap")
    smooth = sum(padded[:, i:i + 32, j:j + 32] for i in range(5) for j in range(5))
    smooth = smooth - smooth.min(axis=(1, 2), keepdims=True)
    return smooth / smooth.max(axis=(1, 2), keepdims=True)


def _sample_head(rng: np.random.Generator, male: bool) -> dict[str, float]:
    # Lighter skin is more common in CelebA; the beta skews the tone that way.
    return {
        "skin_tone": float(rng.beta(1.5, 2.3)),
        "face_width": float(rng.uniform(0.25, 0.31) + 0.01 * male),
        "face_length": float(rng.uniform(1.18, 1.42)),
        # Pointed chins are rarer among the male faces.
        "jaw_taper": float(rng.uniform(0.0, 0.6) + rng.uniform(0.0, 0.4 - 0.3 * male)),
        "face_x": float(np.clip(rng.normal(0.0, 0.02), -0.05, 0.05)),
        "face_y": float(np.clip(rng.normal(0.0, 0.015), -0.04, 0.04)),
        "rotation": float(np.clip(rng.normal(0.0, 4.0), -10.0, 10.0)),
        "yaw": float(np.clip(rng.normal(0.0, 0.35), -1.0, 1.0)),
    }


def _sample_features(rng: np.random.Generator, male: bool) -> dict[str, float]:
    smile = float(rng.random())
    iris = rng.choice(len(_IRIS), p=_IRIS_P)
    features = {
        "eye_size": float(rng.uniform(0.85, 1.2)),
        "eye_openness": float(rng.uniform(0.55, 1.0)),
        "eye_spacing": float(rng.uniform(0.88, 1.12)),
    }
    features.update({f"eyes_{name}": float(i == iris) for i, name in enumerate(_IRIS)})
    features.update({
        "brow_thickness": float(rng.uniform(0.010, 0.020) + 0.006 * male),
        "brow_tilt": float(rng.uniform(-12.0, 12.0)),
        "nose_length": float(rng.uniform(0.85, 1.2)),
        "nose_width": float(rng.uniform(0.8, 1.3)),
        "mouth_width": float(rng.uniform(0.8, 1.25)),
        "smile": smile,
        "mouth_open": float(smile > 0.5 and rng.random() < 0.6),
        "lipstick": float(not male and rng.random() < 0.55),
    })
    return features


def _sample_hair_and_extras(rng: np.random.Generator, male: bool) -> dict[str, float]:
    styles = ("bald", "short", "long")
    style = rng.choice(3, p=(0.1, 0.8, 0.1) if male else (0.0, 0.2, 0.8))
    colour = rng.choice(len(_HAIR), p=_HAIR_P)
    hair = {f"hair_{name}": float(i == style) for i, name in enumerate(styles)}
    hair["bangs"] = float(style != 0 and rng.random() < 0.22)
    hair.update({f"hair_{name}": float(i == colour) for i, name in enumerate(_HAIR)})
    beard = male and rng.random() < 0.3
    hair["beard"] = float(beard)
    hair["moustache"] = float(male and rng.random() < (0.7 if beard else 0.12))
    glasses = rng.random() < 0.14
    hair["glasses"] = float(glasses)
    hair["sunglasses"] = float(glasses and rng.random() < 0.3)
    return hair


def _sample_scene(rng: np.random.Generator) -> dict[str, float]:
    angle = rng.uniform(0.0, 2 * math.pi)
    strength = rng.uniform(0.0, 0.5)
    return {
        "light_x": float(strength * math.cos(angle)),
        "light_y": float(strength * math.sin(angle)),
        "background_lightness": float(rng.uniform(0.1, 0.95)),
        "clutter": float(rng.integers(0, 9)),
    }


def _sample_factors(rng: np.random.Generator) -> dict[str, float]:
    """Draw one face's attributes, keyed and ordered as :data:`ATTRIBUTE_NAMES`."""
    # A hidden coin ties beards, baldness and hair length together the way they
    # co-occur in photographs; it is not an attribute of its own.
    male = bool(rng.random() < 0.42)
    drawn = {
        **_sample_head(rng, male),
        **_sample_features(rng, male),
        **_sample_hair_and_extras(rng, male),
        **_sample_scene(rng),
    }
    return {name: drawn[name] for name in ATTRIBUTE_NAMES}


@dataclass
class _Face:
    """Lengths (shares of the frame, head-relative) and colours of one face."""

    half_width: float
    half_height: float
    taper: float
    eye_y: float
    eye_x: tuple[float, float]
    eye_width: tuple[float, float]
    eye_height: float
    nose_x: float
    nose_y: float
    nose_width: float
    mouth_x: float
    mouth_y: float
    mouth_width: float
    light: tuple[float, float]
    # Colours are (r, g, b) floats; tuples keep _shade's arithmetic plain Python.
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lips: tuple[float, float, float]


def _layout(factors: dict[str, float], rng: np.random.Generator) -> _Face:
    """Turn the attributes into lengths and colours (colours get a little jitter)."""
    f = factors
    hw = f["face_width"]
    hh = hw * f["face_length"]
    yaw = f["yaw"]
    eye_y = -_HEAD_BELOW_EYES
    eye_w = hw * 0.21 * f["eye_size"]
    eye_x = hw * 0.40 * f["eye_spacing"]
    tone = f["skin_tone"] * (len(_SKIN) - 1)
    low = min(int(tone), len(_SKIN) - 2)
    skin = _mix(_SKIN[low], _SKIN[low + 1], tone - low) + rng.normal(0, 5, 3)
    hair_name = next(n for n in _HAIR if f[f"hair_{n}"])
    dark, light = _HAIR[hair_name]
    iris_name = next(n for n in _IRIS if f[f"eyes_{n}"])
    lip_red = (196, 40, 70) if f["lipstick"] else (176, 84, 84)
    # A turned head shows its features shifted sideways and its far eye narrower.
    return _Face(
        half_width=hw,
        half_height=hh,
        taper=f["jaw_taper"],
        eye_y=eye_y,
        eye_x=(-eye_x + yaw * hw * 0.12, eye_x + yaw * hw * 0.12),
        eye_width=(eye_w * (1 - 0.3 * max(-yaw, 0)), eye_w * (1 - 0.3 * max(yaw, 0))),
        eye_height=eye_w * 0.5 * f["eye_openness"],
        nose_x=yaw * hw * 0.2,
        nose_y=eye_y + hh * 0.40 * f["nose_length"],
        nose_width=hw * 0.15 * f["nose_width"],
        mouth_x=yaw * hw * 0.15,
        mouth_y=eye_y + hh * 0.64,
        mouth_width=hw * 0.34 * f["mouth_width"],
        light=(f["light_x"], f["light_y"]),
        skin=tuple(skin.tolist()),
        hair=tuple(_mix(dark, light, rng.random()).tolist()),
        iris=tuple((np.asarray(_IRIS[iris_name]) + rng.normal(0, 8, 3)).tolist()),
        lips=tuple(_mix(skin, lip_red, 0.65 if f["lipstick"] else 0.35).tolist()),
    )


def _head_outline(face: _Face, scale: float = 1.0, shift: tuple = (0.0, 0.0),
                  start: float = 0.0, stop: float = 2 * math.pi,
                  points: int = 48) -> np.ndarray:
    """Points of the head's outline, (points, 2), from angle ``start`` to ``stop``.

    Angle 0 is the right cheek and pi/2 the chin (y runs down). The lower half narrows
    towards the chin by the jaw taper; a low taper squares the jaw instead.
    """
    t = np.linspace(start, stop, points, endpoint=stop - start < 2 * math.pi)
    cos, sin = np.cos(t), np.sin(t)
    squareness = 0.72 + 0.28 * face.taper
    x = np.sign(cos) * np.abs(cos) ** squareness
    x = x * (1 - (0.08 + 0.3 * face.taper) * np.clip(sin, 0, None) ** 2)
    return np.stack(
        [shift[0] + scale * face.half_width * x,
         shift[1] + scale * face.half_height * sin], axis=1
    )  # fmt: skip


def _random_colour(rng: np.random.Generator, lightness: float,
                   saturation: float = 0.5) -> np.ndarray:
    """A colour of about the given lightness and saturation (0 to 1), random hue."""
    spread = saturation * (2 * rng.random(3) - 1)
    return np.clip(lightness * 255 * (1 + spread), 0, 255)


def _background(rng: np.random.Generator, factors: dict[str, float],
                side: int) -> Image.Image:
    """A blurred, two-tone noise field with a few hard shapes in front of it."""
    lightness = factors["background_lightness"]
    field = _texture_bank()[rng.integers(16)]
    field = np.rot90(field, rng.integers(4))
    if rng.random() < 0.5:
        field = field[:, ::-1]
    saturation = rng.uniform(0.1, 0.6)
    near = _random_colour(rng, lightness, saturation)
    far = _random_colour(rng, lightness * rng.uniform(0.6, 1.2), saturation)
    # (32, 32, 3): a tint between two colours, plus a top-to-bottom drift.
    drift = _steps(-1.0, 1.0, 32)[:, None, None] * rng.normal(0, 25, 3)
    small = near + (far - near) * field[:, :, None] + drift
    small = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8))
    # Bilinear up to the target size, then nearest to the canvas: the final box
    # reduction gives back exactly the bilinear image, at a fifth of the cost of a
    # bilinear resize to the canvas.
    target = side // SUPERSAMPLE
    image = small.resize((target, target), Image.BILINEAR).resize((side, side),
                                                                  Image.NEAREST)
    drawers = ImageDraw.Draw(image), ImageDraw.Draw(image, "RGBA")
    for _ in range(int(factors["clutter"])):
        _clutter_shape(drawers, rng, side)
    return image


def _clutter_shape(drawers: tuple[ImageDraw.ImageDraw, ImageDraw.ImageDraw],
                   rng: np.random.Generator, side: int) -> None:
    """One background object: a panel, a light blob, a pole or a shard."""
    shade = _random_colour(rng, rng.uniform(0.1, 1.0), rng.uniform(0.0, 0.8))
    # Half the objects are solid, the rest see-through like glass or a blurred lamp.
    alpha = 255 if rng.random() < 0.5 else int(rng.integers(90, 255))
    draw, fill = _pick_draw(*drawers, _shade(shade, 1.0, alpha))
    x, y = rng.random(2) * side
    w, h = rng.uniform(0.05, 0.45, 2) * side
    kind = rng.integers(4)
    if kind == 0:
        draw.rectangle((x - w / 2, y - h / 2, x + w / 2, y + h / 2), fill=fill)
    elif kind == 1:
        radius = w / 3
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    elif kind == 2:
        end = rng.random(2) * side
        draw.line((x, y, *end), fill=fill, width=max(1, int(w / 8)))
    else:
        corners = rng.random((3, 2)) * side * 0.5 + (x, y) - side * 0.25
        draw.polygon(corners.ravel().tolist(), fill=fill)


def _draw_body(canvas: _Canvas, face: _Face, rng: np.random.Generator) -> None:
    """Shoulders in a shirt, the neck, and the shadow the chin casts on it."""
    hw, hh = face.half_width, face.half_height
    neck = hw * rng.uniform(0.5, 0.62)
    shirt = _random_colour(rng, rng.uniform(0.15, 0.9))
    top = hh + rng.uniform(0.1, 0.16)
    canvas.polygon(
        np.array([(-neck, 0.0), (neck, 0.0), (neck * 1.05, top + 0.1),
                  (-neck * 1.05, top + 0.1)]), _shade(face.skin, 0.8)
    )  # fmt: skip
    canvas.ellipse(0.0, top + 0.3, hw * 2.3, 0.3, _shade(shirt, 1.0), points=40)
    # The neckline: a V of bare skin, shallow or deep, below the neck.
    depth = rng.uniform(0.03, 0.12)
    canvas.polygon(
        np.array([(-neck * 1.2, top - 0.005), (neck * 1.2, top - 0.005),
                  (0.0, top + depth)]), _shade(face.skin, 0.84)
    )  # fmt: skip
    canvas.ellipse(0.0, hh * 0.9, hw * 0.6, 0.06, _shade(face.skin, 0.5, 90))


def _draw_ears(canvas: _Canvas, face: _Face) -> None:
    for side in (-1, 1):
        x = side * face.half_width * 0.97
        y = face.eye_y + 0.05
        rx, ry = face.half_width * 0.14, face.half_height * 0.17
        canvas.ellipse(x, y, rx, ry, _shade(face.skin, 0.88), points=16)
        canvas.ellipse(x + side * rx * 0.2, y, rx * 0.5, ry * 0.6,
                       _shade(face.skin, 0.7), points=12)


def _draw_head(canvas: _Canvas, face: _Face) -> None:
    """The head in three tones, the inner ones nudged towards the light.

    After the box reduction the steps blend into a soft rim of shadow on the
    side away from the light, which gives the head its roundness.
    """
    lx, ly = face.light
    for scale, nudge, tone in ((1.0, 0.0, 0.78), (0.97, 0.012, 0.9),
                               (0.92, 0.024, 1.0)):
        outline = _head_outline(face, scale, (lx * nudge, ly * nudge - 0.004))
        canvas.polygon(outline, _shade(face.skin, tone))
    # Cheeks: a faint warm blush under each eye.
    for x in face.eye_x:
        canvas.ellipse(x, face.nose_y, face.half_width * 0.22, face.half_height * 0.1,
                       (205, 90, 90, 28), points=14)


def _draw_eyes(canvas: _Canvas, face: _Face, rng: np.random.Generator) -> None:
    """Almond whites, iris and pupil, covered above and below by the lids."""
    u = _steps(-1.0, 1.0, 13)
    gaze = rng.normal(0.0, 0.15)
    white = _shade((236, 232, 226), rng.uniform(0.85, 1.0))
    for side, x, width in zip((-1, 1), face.eye_x, face.eye_width, strict=True):
        height = face.eye_height
        # The outer corner sits a little higher than the inner one.
        slant = 0.12 * height * side * u
        upper = np.stack([x + width * u, face.eye_y - height * (1 - u**2) ** 0.8
                          - slant], axis=1)
        lower = np.stack([x + width * u, face.eye_y + 0.75 * height * (1 - u**2)
                          - slant], axis=1)
        canvas.polygon(np.concatenate([upper, lower[::-1]]), white)
        radius = width * 0.44
        cx = x + gaze * width
        canvas.ellipse(cx, face.eye_y, radius, radius, _shade(face.iris, 1.0))
        canvas.ellipse(cx, face.eye_y, radius * 0.45, radius * 0.45, (12, 10, 10, 255))
        canvas.ellipse(cx + radius * 0.3, face.eye_y - radius * 0.3, radius * 0.18,
                       radius * 0.18, (255, 255, 255, 220), points=8)
        lid = np.stack([upper[:, 0], upper[:, 1] - width * 0.7], axis=1)
        canvas.polygon(np.concatenate([upper, lid[::-1]]), _shade(face.skin, 0.86))
        under = np.stack([lower[:, 0], lower[:, 1] + width * 0.5], axis=1)
        canvas.polygon(np.concatenate([lower, under[::-1]]), _shade(face.skin, 0.9))
        canvas.line(upper, (30, 20, 18, 255), 0.007)
        crease = np.stack([upper[2:-2, 0], upper[2:-2, 1] - height * 0.8], axis=1)
        canvas.line(crease, _shade(face.skin, 0.7, 160), 0.004)


def _draw_brows(canvas: _Canvas, face: _Face, factors: dict[str, float]) -> None:
    """Tapered, arched strokes above the eyes, thick at the inner end."""
    u = _steps(0.0, 1.0, 9)
    thickness = factors["brow_thickness"] * (1 - 0.55 * u)
    lift = math.tan(math.radians(factors["brow_tilt"]))
    colour = _shade(face.hair, 0.55 if factors["hair_blond"] else 0.85, 235)
    for side, x, width in zip((-1, 1), face.eye_x, face.eye_width, strict=True):
        inner, outer = x - side * width * 0.95, x + side * width * 1.2
        xs = inner + (outer - inner) * u
        base = face.eye_y - face.eye_height - width * 0.75
        ys = base - lift * abs(outer - inner) * u - 0.012 * np.sin(math.pi * u)
        top = np.stack([xs, ys - thickness / 2], axis=1)
        bottom = np.stack([xs, ys + thickness / 2], axis=1)
        canvas.polygon(np.concatenate([top, bottom[::-1]]), colour)


def _draw_nose(canvas: _Canvas, face: _Face) -> None:
    """A shadow down the side away from the light, the wings and the nostrils."""
    x, tip, width = face.nose_x, face.nose_y, face.nose_width
    away = -1.0 if face.light[0] > 0 else 1.0
    ridge = np.array([(x + away * width * 0.45, face.eye_y + 0.015),
                      (x + away * width * 0.6, tip - width * 0.5),
                      (x + away * width * 0.9, tip - width * 0.1)])
    canvas.line(ridge, _shade(face.skin, 0.7, 110), 0.012)
    canvas.ellipse(x, tip - width * 0.1, width * 0.55, width * 0.45,
                   _shade(face.skin, 1.08, 150), points=12)
    u = _steps(-1.0, 1.0, 9)
    wings = np.stack([x + width * u, tip + width * 0.35 * (1 - u**2) ** 0.5
                      - width * 0.3 * u**4], axis=1)
    canvas.line(wings, _shade(face.skin, 0.62, 200), 0.007)
    for side in (-1, 1):
        canvas.ellipse(x + side * width * 0.42, tip + width * 0.25, width * 0.22,
                       width * 0.12, _shade(face.skin, 0.35, 230), points=10)


def _draw_mouth(canvas: _Canvas, face: _Face, factors: dict[str, float]) -> None:
    """Two lips around a parting curve; a smile lifts the corners.

    An open mouth shows a dark gap between the lips with a row of teeth.
    """
    smile = factors["smile"]
    u = _steps(-1.0, 1.0, 15)
    xs = face.mouth_x + face.mouth_width * u * (1 + 0.08 * smile)
    bend = 1 - u**2
    parting = face.mouth_y + 0.01 * smile * bend - (0.03 * smile - 0.004) * u**2
    gap = 0.022 * smile * bend * factors["mouth_open"]
    # The upper lip dips at its centre (the bow); the lower lip is fuller.
    bow = 0.004 * np.exp(-((u / 0.18) ** 2))
    upper_top = parting - 0.012 * bend**0.6 + bow
    lower_bottom = parting + gap + 0.018 * bend**0.7
    lips = _shade(face.lips, 1.0)
    canvas.polygon(np.concatenate([np.stack([xs, upper_top], axis=1),
                                   np.stack([xs, lower_bottom], axis=1)[::-1]]), lips)
    line = np.stack([xs, parting], axis=1)
    if factors["mouth_open"]:
        inner = np.stack([xs, parting + gap], axis=1)
        canvas.polygon(np.concatenate([line, inner[::-1]]), (60, 20, 24, 255))
        teeth = np.stack([xs * 0.9 + face.mouth_x * 0.1, parting + gap * 0.5], axis=1)
        canvas.polygon(np.concatenate([line, teeth[::-1]]), (238, 234, 222, 255))
    canvas.line(line, _shade(face.lips, 0.45, 230), 0.005)
    canvas.line(np.stack([xs[4:-4], lower_bottom[4:-4] + 0.004], axis=1),
                _shade(face.skin, 0.8, 90), 0.006)


def _draw_beard(canvas: _Canvas, face: _Face, factors: dict[str, float],
                rng: np.random.Generator) -> None:
    """A jaw beard and a moustache; thin ones are translucent stubble."""
    colour = _shade(face.hair, 0.8, int(rng.uniform(140, 250)))
    mouth = face.mouth_width
    if factors["beard"]:
        jaw = _head_outline(face, 1.02, start=0.15, stop=math.pi - 0.15, points=24)
        top = face.nose_y + 0.02
        upper = np.array([(jaw[-1, 0], jaw[-1, 1]), (face.mouth_x - mouth * 1.3, top),
                          (face.mouth_x + mouth * 1.3, top)])
        canvas.polygon(np.concatenate([jaw, upper]), colour)
    if factors["moustache"]:
        u = _steps(-1.0, 1.0, 11)
        xs = face.mouth_x + mouth * 1.1 * u
        ys = face.mouth_y - 0.02 - 0.012 * (1 - u**2) + 0.02 * u**4
        canvas.line(np.stack([xs, ys], axis=1), colour, 0.022)


def _draw_hair_back(canvas: _Canvas, face: _Face, factors: dict[str, float],
                    rng: np.random.Generator) -> None:
    """Long hair: a mass behind the head that falls past the chin."""
    if not factors["hair_long"]:
        return
    hw, hh = face.half_width, face.half_height
    t = np.linspace(math.pi, 2 * math.pi, 20)
    crown = np.stack([hw * 1.2 * np.cos(t), -0.01 + hh * 1.1 * np.sin(t)], axis=1)
    length = hh * rng.uniform(1.1, 1.7)
    spread = hw * rng.uniform(1.25, 1.5)
    # Right side down, a wavy hem from right to left, left side back up.
    u = _steps(1.0, -1.0, 9)
    hem = np.stack([spread * u, length + 0.02 * np.sin(u * 9 + rng.random() * 6)],
                   axis=1)
    right = np.array([(spread, length * 0.6)])
    outline = np.concatenate([crown, right, hem, right[::-1] * (-1, 1)])
    canvas.polygon(outline, _shade(face.hair, 0.72))


def _draw_hair_front(canvas: _Canvas, face: _Face, factors: dict[str, float],
                     rng: np.random.Generator) -> None:
    """The cap over the skull with its hairline: high, or low for bangs."""
    hw, hh = face.half_width, face.half_height
    if factors["hair_bald"]:
        _draw_bald(canvas, face)
        return
    # How far the cap comes down the sides: long hair hides the ears.
    drop = 0.5 if factors["hair_long"] else -0.2
    t = np.linspace(math.pi - drop, 2 * math.pi + drop, 32)
    volume = rng.uniform(1.05, 1.14)
    outer = np.stack([hw * volume * np.cos(t), -0.015 + hh * 1.04 * np.sin(t)], axis=1)
    hairline = -hh * (0.3 if factors["bangs"] else rng.uniform(0.52, 0.64))
    temple = -hh * 0.1
    xs = np.linspace(hw * 0.9, -hw * 0.9, 17)
    part = rng.choice((-1.0, 1.0)) * rng.uniform(0.0, 0.04)
    ys = hairline + (temple - hairline) * (xs / (hw * 0.9)) ** 4 + part * xs / hw
    if factors["bangs"]:
        ys = ys + 0.012 * (np.arange(17) % 2)
    inner = np.concatenate([[(hw * 0.9, outer[-1, 1])], np.stack([xs, ys], axis=1),
                            [(-hw * 0.9, outer[0, 1])]])
    canvas.polygon(np.concatenate([outer, inner]), _shade(face.hair, 1.0))
    _draw_strands(canvas, face, outer, rng)
    # A sheen across the crown on the lit side.
    canvas.ellipse(face.light[0] * 0.1, -hh * 0.82, hw * 0.5, hh * 0.1,
                   _shade(face.hair, 1.3, 70), points=16)


def _draw_strands(canvas: _Canvas, face: _Face, outer: np.ndarray,
                  rng: np.random.Generator) -> None:
    """A few darker and lighter locks that follow the cap's rim over the crown."""
    # Only the part of the rim above the forehead: shrunk towards the head's
    # centre, it stays inside the hair instead of crossing the face.
    crown = outer[outer[:, 1] < -face.half_height * 0.45]
    for _ in range(3):
        first = rng.integers(len(crown) // 2)
        lock = crown[first:first + len(crown) // 2] * rng.uniform(0.8, 0.95)
        canvas.line(lock, _shade(face.hair, rng.choice((0.7, 1.3)), 80), 0.01)


def _draw_bald(canvas: _Canvas, face: _Face) -> None:
    """A shine on the scalp and a fringe of hair above each ear."""
    hw, hh = face.half_width, face.half_height
    canvas.ellipse(face.light[0] * 0.1, -hh * 0.72, hw * 0.45, hh * 0.14,
                   _shade(face.skin, 1.15, 120), points=16)
    for start in (math.pi + 0.05, 2 * math.pi - 0.75):
        fringe = _head_outline(face, 1.02, start=start, stop=start + 0.7, points=8)
        canvas.line(fringe, _shade(face.hair, 1.0), 0.025)


def _draw_glasses(canvas: _Canvas, face: _Face, factors: dict[str, float],
                  rng: np.random.Generator) -> None:
    """Two rounded rims joined by a bridge; sunglasses fill them dark."""
    if not factors["glasses"]:
        return
    frame = _shade(_random_colour(rng, rng.uniform(0.05, 0.6)), 1.0)
    width = rng.uniform(0.006, 0.013)
    cos, sin = _unit_circle(28).T
    # A superellipse: between a circle and a rectangle with round corners.
    rim_x, rim_y = np.sign(cos) * np.abs(cos) ** 0.6, np.sign(sin) * np.abs(sin) ** 0.6
    y = face.eye_y + 0.006
    inner_ends = []
    for side, x, eye in zip((-1, 1), face.eye_x, face.eye_width, strict=True):
        half_w, half_h = eye * 1.45, eye * rng.uniform(0.85, 1.0)
        rim = np.stack([x + half_w * rim_x, y + half_h * rim_y], axis=1)
        if factors["sunglasses"]:
            canvas.polygon(rim, (18, 20, 26, 235))
        canvas.line(np.concatenate([rim, rim[:1]]), frame, width)
        inner_ends.append((x - side * half_w, y - half_h * 0.3))
        temple = np.array([(x + side * half_w, y - half_h * 0.4),
                           (side * face.half_width * 0.98, face.eye_y)])
        canvas.line(temple, frame, width)
    canvas.line(np.array(inner_ends), frame, width)


@lru_cache(maxsize=8)
def _ramps(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-0.5, 0.5], (size, 1) and (1, size), float32."""
    steps = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    return steps[:, None], steps[None, :]


def _finish(image: Image.Image, factors: dict[str, float], size: int,
            rng: np.random.Generator) -> np.ndarray:
    """Reduce to the target size, light the scene with a gradient, add sensor grain."""
    small = np.asarray(image.reduce(SUPERSAMPLE), dtype=np.float32)
    rows, cols = _ramps(size)
    gain = 1.0 + factors["light_x"] * cols + factors["light_y"] * rows
    grain = rng.standard_normal(small.shape, dtype=np.float32) * 2.0
    return np.clip(small * gain[:, :, None] + grain + 0.5, 0, 255).astype(np.uint8)


def render_face(seed: int, index: int,
                size: int) -> tuple[np.ndarray, dict[str, float]]:
    """Draw one face and return it with its attributes.

    Args:
        seed: The data set's seed (0 or more).
        index: The image's index (0 or more); test images use indices from
            :data:`TEST_INDEX_OFFSET` on.
        size: Side of the square image in pixels.

    Returns:
        The image, (size, size, 3) uint8, and its attributes keyed and ordered as
        :data:`ATTRIBUTE_NAMES`.
    """
    if seed < 0 or index < 0 or size < 1:
        raise ValueError(f"seed and index must be 0 or more and size positive, got "
                         f"seed={seed}, index={index}, size={size}")
    rng = np.random.default_rng([seed, index])
    factors = _sample_factors(rng)
    face = _layout(factors, rng)
    image = _background(rng, factors, size * SUPERSAMPLE)
    centre = (0.5 + factors["face_x"],
              _EYE_LINE + _HEAD_BELOW_EYES + factors["face_y"])
    canvas = _Canvas(image, centre, factors["rotation"])
    _draw_hair_back(canvas, face, factors, rng)
    _draw_body(canvas, face, rng)
    _draw_ears(canvas, face)
    _draw_head(canvas, face)
    _draw_beard(canvas, face, factors, rng)
    _draw_eyes(canvas, face, rng)
    _draw_brows(canvas, face, factors)
    _draw_nose(canvas, face)
    _draw_mouth(canvas, face, factors)
    _draw_hair_front(canvas, face, factors, rng)
    _draw_glasses(canvas, face, factors, rng)
    return _finish(image, factors, size, rng), factors


def _render_chunk(seed: int, size: int,
                  indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Render the given indices; the unit of work a worker process receives."""
    images = np.empty((len(indices), size, size, 3), dtype=np.uint8)
    attributes = np.empty((len(indices), len(ATTRIBUTE_NAMES)), dtype=np.float32)
    for row, index in enumerate(indices):
        images[row], factors = render_face(seed, index, size)
        attributes[row] = list(factors.values())
    return images, attributes


def _render_many(indices: np.ndarray, size: int, seed: int, workers: int,
                 progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Render any list of indices, in chunks, in-process or over worker processes."""
    count = len(indices)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    attributes = np.empty((count, len(ATTRIBUTE_NAMES)), dtype=np.float32)
    workers = workers or os.cpu_count() or 1
    # Small chunks keep the bar moving and the workers evenly loaded; big enough
    # that pickling a chunk's result costs little next to drawing it.
    chunk = max(1, min(256, -(-count // (workers * 8))))
    starts = range(0, count, chunk)
    jobs = [indices[s:s + chunk].tolist() for s in starts]
    bar = tqdm(total=count, unit="img", desc=f"faces {size}px", disable=not progress,
               file=sys.stderr)
    with bar:
        if workers == 1 or len(jobs) <= 1:
            results = (_render_chunk(seed, size, job) for job in jobs)
            _collect(results, starts, images, attributes, bar)
        else:
            # Spawned, not forked, workers: the caller may hold threads (TensorFlow)
            # that a fork would copy in a locked state.
            context = get_context("spawn")
            processes = min(workers, len(jobs))
            with ProcessPoolExecutor(processes, mp_context=context) as pool:
                results = pool.map(_render_chunk, [seed] * len(jobs),
                                   [size] * len(jobs), jobs)
                _collect(results, starts, images, attributes, bar)
    return images, attributes


def _collect(results, starts: range, images: np.ndarray, attributes: np.ndarray,
             bar: tqdm) -> None:
    for start, (chunk_images, chunk_attributes) in zip(starts, results, strict=True):
        images[start:start + len(chunk_images)] = chunk_images
        attributes[start:start + len(chunk_images)] = chunk_attributes
        bar.update(len(chunk_images))


def generate(count: int, image_size: int, seed: int, start: int = 0, workers: int = 0,
             progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Render the faces with indices ``start`` to ``start + count - 1``.

    The result depends only on the arguments other than ``workers`` and
    ``progress``: each face is drawn from its own ``(seed, index)`` generator.

    Args:
        count: Number of faces (0 or more).
        image_size: Side of the square images in pixels.
        seed: The data set's seed (0 or more).
        start: Index of the first face.
        workers: Worker processes; 0 means one per core, 1 renders in this process.
        progress: Show a progress bar on stderr.

    Returns:
        Images, (count, image_size, image_size, 3) uint8, and attributes,
        (count, len(ATTRIBUTE_NAMES)) float32, one row per image.
    """
    if count < 0 or workers < 0:
        raise ValueError(f"count and workers must be 0 or more, got count={count}, "
                         f"workers={workers}")
    indices = np.arange(start, start + count, dtype=np.int64)
    return _render_many(indices, image_size, seed, workers, progress)


def load_synthetic(config: DataConfig, progress: bool = True) -> Dataset:
    """Render the synthetic data set a configuration describes.

    Training faces have indices 0 to ``num_train - 1``; test faces start at
    :data:`TEST_INDEX_OFFSET` and validation faces at :data:`VAL_INDEX_OFFSET`, so
    each split stays the same when another's size changes. All are rendered in one
    pool of workers.

    Args:
        config: Uses ``image_size``, ``num_train``, ``num_test``, ``num_val``,
            ``seed`` and ``workers``.
        progress: Show a progress bar on stderr.

    Returns:
        The data set, with attributes and a filled-in card.
    """
    indices = np.concatenate([
        np.arange(config.num_train, dtype=np.int64),
        TEST_INDEX_OFFSET + np.arange(config.num_test, dtype=np.int64),
        VAL_INDEX_OFFSET + np.arange(config.num_val, dtype=np.int64),
    ])
    images, attributes = _render_many(indices, config.image_size, config.seed,
                                      config.workers, progress)
    ends = np.cumsum([config.num_train, config.num_test])
    train, test, val = np.split(images, ends)
    train_attributes, test_attributes, val_attributes = np.split(attributes, ends)
    val, val_attributes = (val, val_attributes) if config.num_val else (None, None)
    card = DatasetCard(
        source="synthetic",
        location=f"procedural generator zspace.data.synthetic, seed {config.seed}",
        num_train=config.num_train,
        num_test=config.num_test,
        num_val=config.num_val,
        image_size=config.image_size,
        content_hash=content_hash(train, test, val),
        attribute_names=ATTRIBUTE_NAMES,
        preparation=(f"drawn at {SUPERSAMPLE}x ({config.image_size * SUPERSAMPLE} px) "
                     f"and downsampled to {config.image_size} px with a "
                     f"{SUPERSAMPLE}x{SUPERSAMPLE} box filter"),
    )
    return Dataset(train=train, test=test, train_attributes=train_attributes,
                   test_attributes=test_attributes, card=card, val=val,
                   val_attributes=val_attributes)
