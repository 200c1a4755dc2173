"""The `download` object of result images: a safe file name from the prompt and a shell-safe curl line."""

from __future__ import annotations

import re
import shlex

from imagegen_mcp.images.download import MAX_STEM_CHARS, download, shell_quote, suggested_filename

SAFE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\.(png|jpg|webp)$")


def test_file_name_is_the_prompt_in_safe_characters_with_the_types_extension() -> None:
    assert suggested_filename("A red fox, in SNOW!", "image/png", 0, 1) == "a-red-fox-in-snow.png"
    assert suggested_filename("Crème brûlée — top view", "image/jpeg", 0, 1) == "creme-brulee-top-view.jpg"
    assert suggested_filename("a fox", "image/webp", 2, 4) == "a-fox-3.webp"


def test_file_name_has_a_fallback_and_a_bounded_length() -> None:
    for prompt in ("日本の庭園", "!!!", "   ", "../../etc/passwd", "$(rm -rf ~)", "'; echo pwned; '"):
        name = suggested_filename(prompt, "image/png", 0, 1)
        assert SAFE.fullmatch(name), name
    assert suggested_filename("日本の庭園", "image/png", 0, 1) == "image.png"
    assert suggested_filename("日本の庭園", "image/png", 1, 2) == "image-2.png"
    long = suggested_filename("word " * 200, "image/png", 0, 1)
    assert SAFE.fullmatch(long) and len(long) <= MAX_STEM_CHARS + len(".png")
    assert not long.removesuffix(".png").endswith("-")
    one_word = suggested_filename("x" * 500, "image/png", 3, 4)
    assert one_word == "x" * MAX_STEM_CHARS + "-4.png"


def test_curl_line_quotes_the_url_for_a_posix_shell() -> None:
    url = "https://h.example/files/a.png?expires=1&sig=ab'c$(x)"
    line = download("a fox", "image/png", url, index=0, count=1)
    assert line["filename"] == "a-fox.png"
    assert shlex.split(line["curl"]) == ["curl", "-fsSL", "-o", "a-fox.png", url]
    assert line["curl"].startswith("curl -fsSL -o 'a-fox.png' '")
    assert shlex.split(shell_quote("it's")) == ["it's"]
