"""The prompts: basic and detailed image prompts."""

from __future__ import annotations

from .framing import Surface


def register(surface: Surface) -> None:
    """Register the prompts."""
    server = surface.server

    @server.prompt(name="basic", title="Basic image prompt", description="Generate an image from a description.")
    def basic(description: str) -> str:
        return f"Use the generate_image tool to create an image of: {description}"

    @server.prompt(
        name="detailed",
        title="Detailed image prompt",
        description="Generate an image from a subject plus style, mood and lighting.",
    )
    def detailed(subject: str, style: str = "", mood: str = "", lighting: str = "") -> str:
        parts = [f"Subject: {subject}"]
        parts += [
            f"{label}: {value}" for label, value in (("Style", style), ("Mood", mood), ("Lighting", lighting)) if value
        ]
        return "Use the generate_image tool to create an image with these details.\n" + "\n".join(parts)
