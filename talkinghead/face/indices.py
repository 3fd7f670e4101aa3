"""Named groups of mediapipe face-mesh indices (478 points with irises).

Kept in one place so every stage agrees on what "the lips" or "the left eye" are.
"Left/right" are as seen in the image (the subject's right eye is LEFT_EYE).
"""

from __future__ import annotations

import numpy as np

# Inner lip contour, corner to corner.
UPPER_INNER_LIP = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LOWER_INNER_LIP = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
# Outer lip contour, corner to corner.
UPPER_OUTER_LIP = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LOWER_OUTER_LIP = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
INNER_MOUTH_POLYGON = UPPER_INNER_LIP + LOWER_INNER_LIP[-2:0:-1]
LIP_TOP, LIP_BOTTOM = 13, 14  # inner-lip midpoints: the mouth-opening measure

# Points that move with the mouth and jaw (lips, surrounding skin, chin, lower jaw line).
MOUTH_JAW = sorted(
    set(UPPER_INNER_LIP + LOWER_INNER_LIP + UPPER_OUTER_LIP + LOWER_OUTER_LIP)
    | {
        # lip body between contours
        62,
        76,
        77,
        96,
        89,
        90,
        179,
        180,
        85,
        86,
        15,
        16,
        316,
        315,
        403,
        404,
        319,
        320,
        325,
        307,
        292,
        306,
        183,
        42,
        74,
        184,
        41,
        73,
        38,
        72,
        11,
        12,
        268,
        302,
        271,
        303,
        272,
        304,
        407,
        408,
        # skin below the lower lip and the chin
        57,
        43,
        106,
        182,
        83,
        18,
        313,
        406,
        335,
        273,
        287,
        204,
        194,
        201,
        200,
        421,
        418,
        424,
        32,
        140,
        171,
        175,
        396,
        369,
        262,
        208,
        199,
        428,
        211,
        170,
        169,
        135,
        138,
        215,
        177,
        431,
        395,
        394,
        364,
        367,
        435,
        401,
        148,
        152,
        377,
        176,
        400,
        149,
        150,
        136,
        172,
        378,
        379,
        365,
        397,
        288,
        58,
        214,
        434,
        210,
        430,
        202,
        212,
        422,
        432,
    }
)

# Eyelids: upper-lid point i closes onto lower-lid point i.
LEFT_EYE_UPPER = [246, 161, 160, 159, 158, 157, 173]
LEFT_EYE_LOWER = [7, 163, 144, 145, 153, 154, 155]
RIGHT_EYE_UPPER = [466, 388, 387, 386, 385, 384, 398]
RIGHT_EYE_LOWER = [249, 390, 373, 374, 380, 381, 382]
LEFT_EYE_CORNERS = (33, 133)
RIGHT_EYE_CORNERS = (263, 362)
LEFT_IRIS = [468, 469, 470, 471, 472]
RIGHT_IRIS = [473, 474, 475, 476, 477]
LEFT_EYE_CONTOUR = [33] + LEFT_EYE_UPPER + [133] + LEFT_EYE_LOWER[::-1]
RIGHT_EYE_CONTOUR = [263] + RIGHT_EYE_UPPER + [362] + RIGHT_EYE_LOWER[::-1]

# Points that do not move with expression: used to fit head pose and the canonical frame.
RIGID = [
    10,
    151,
    9,
    8,
    168,
    6,
    197,
    195,
    5,
    4,
    1,
    33,
    133,
    362,
    263,
    127,
    356,
    234,
    454,
    98,
    327,
    129,
    358,
    109,
    338,
    67,
    297,
]

# Face outline (forehead round the jaw), used for masks.
FACE_OVAL = [
    10,
    338,
    297,
    332,
    284,
    251,
    389,
    356,
    454,
    323,
    361,
    288,
    397,
    365,
    379,
    378,
    400,
    377,
    152,
    148,
    176,
    149,
    150,
    136,
    172,
    58,
    132,
    93,
    234,
    127,
    162,
    21,
    54,
    103,
    67,
    109,
]


def inter_ocular(points: np.ndarray) -> float:
    """Distance between iris centres: the face-size unit used throughout."""
    return float(np.linalg.norm(points[LEFT_IRIS[0], :2] - points[RIGHT_IRIS[0], :2]))


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip gap (points 13/14) divided by the inter-ocular distance."""
    return float(np.linalg.norm(points[LIP_TOP, :2] - points[LIP_BOTTOM, :2]) / max(inter_ocular(points), 1e-6))


def eye_aspect_ratio(points: np.ndarray) -> float:
    """Lid gap over eye width, both eyes averaged: ~0.25-0.35 open, < 0.12 closed."""
    vals = []
    for up, lo, (a, b) in (
        (LEFT_EYE_UPPER, LEFT_EYE_LOWER, LEFT_EYE_CORNERS),
        (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, RIGHT_EYE_CORNERS),
    ):
        gap = np.linalg.norm(points[up[1:-1], :2] - points[lo[1:-1], :2], axis=1).mean()
        vals.append(gap / max(np.linalg.norm(points[a, :2] - points[b, :2]), 1e-6))
    return float(np.mean(vals))
