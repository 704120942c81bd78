"""Shared by the easyvqa and tiny-shapes sources: the colour and shape vocabulary and captions."""

from __future__ import annotations

COLORS = ("red", "green", "blue", "yellow", "teal", "brown", "gray", "black")
SHAPES = ("circle", "rectangle", "triangle")


def caption(color: str, shape: str) -> str:
    """The training caption written from an image's own colour and shape answers."""
    return f"a {color} {shape}."


def question_type(answer: str) -> str:
    if answer in ("yes", "no"):
        return "yes/no"
    return "color" if answer in COLORS else "shape"


def answer_type(answer: str) -> str:
    """VQA answer types: yes/no, number, other."""
    return "yes/no" if answer in ("yes", "no") else "other"
