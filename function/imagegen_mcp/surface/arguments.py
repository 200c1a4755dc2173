"""Tool arguments: the shared option parameters (schema from the catalog's values) and readable validation."""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..catalog import GenerationOptions
from ..errors import ImageGenError, clip, invalid

# Every value some catalog model supports (tests/unit/test_tool_arguments.py derives them from catalog.json);
# catalog.check_options then answers per model.
AspectRatio = Literal[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8", "8:1"
]
ImageSize = Literal["512", "1K", "2K", "4K"]
Quality = Literal["low", "medium", "high", "xhigh", "max", "auto"]
Background = Literal["transparent", "opaque", "auto"]
OutputFormat = Literal["png", "jpeg", "webp"]
MAX_N = 4
MODEL_ID_CHARS = 200
NEGATIVE_PROMPT_CHARS = 2000


def _option(name: str, kind: Any, default: Any, description: str, **bounds: Any) -> inspect.Parameter:
    annotation = Annotated[kind, Field(description=description, **bounds)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# The options generate_image and edit_image share, published in each tool's signature (and so its schema).
OPTION_PARAMETERS: tuple[inspect.Parameter, ...] = (
    _option(
        "model",
        str | None,
        None,
        "Model id from list_models; omit for the deployment's default.",
        max_length=MODEL_ID_CHARS,
    ),
    _option("n", int, 1, "How many images (1-4; the model's max_n applies).", ge=1, le=MAX_N),
    _option("aspect_ratio", AspectRatio | None, None, "Aspect ratio, e.g. 1:1, 3:2, 16:9 (model-dependent)."),
    _option("image_size", ImageSize | None, None, "Resolution class 512/1K/2K/4K where the model supports it."),
    _option("quality", Quality | None, None, "Quality tier where the model supports it."),
    _option(
        "background", Background | None, None, "transparent/opaque/auto (transparent needs a model that supports it)."
    ),
    _option(
        "negative_prompt",
        str | None,
        None,
        "What to avoid, where the model supports it.",
        max_length=NEGATIVE_PROMPT_CHARS,
    ),
    _option("seed", int | None, None, "Seed for reproducible outputs, where supported.", ge=0, le=2**31 - 1),
    _option("output_format", OutputFormat, "png", "png, jpeg or webp."),
    _option(
        "preview",
        bool | None,
        None,
        "Include one small inline image of the first result (≤384 px, ≤40 KB) so you can see it; false to leave "
        "it out. Default: on (the deployment may turn it off).",
    ),
)
_OPTION_NAMES = frozenset(GenerationOptions.__dataclass_fields__)

ImageToolBody = Callable[..., Awaitable[Any]]


def with_generation_options(body: ImageToolBody) -> ImageToolBody:
    """Publish the shared option parameters in `body`'s signature; `body` receives them as `options`."""
    published = inspect.signature(body, eval_str=True)
    shared = {p.name for p in OPTION_PARAMETERS} | {"options"}
    own = [p for p in published.parameters.values() if p.name not in shared]
    signature = published.replace(parameters=[*own, *OPTION_PARAMETERS])

    async def tool(**kwargs: Any) -> Any:
        options = GenerationOptions(**{name: kwargs.pop(name) for name in _OPTION_NAMES})
        return await body(options=options, **kwargs)

    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(tool, attribute, getattr(body, attribute))
    # The SDK reads parameters through inspect.signature and the Context parameter through get_type_hints.
    tool.__signature__ = signature  # type: ignore[attr-defined]
    tool.__annotations__ = {
        **{p.name: p.annotation for p in signature.parameters.values()},
        "return": signature.return_annotation,
    }
    return tool


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


def arguments_model(fn: Callable[..., Any], skip: frozenset[str]) -> type[BaseModel]:
    """A model of `fn`'s published parameters (minus `skip`) that refuses unknown arguments."""
    fields: dict[str, Any] = {}
    for param in inspect.signature(fn, eval_str=True).parameters.values():
        if param.name in skip:
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (param.annotation, default)
    return create_model(f"{fn.__name__}_arguments", __base__=_Strict, **fields)


def _describe(error: Any, accepted: list[str]) -> str:
    """One pydantic error as a sentence naming the argument, never echoing more than a short prefix of it."""
    where = ".".join(str(part) for part in error["loc"]) or "arguments"
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "extra_forbidden":
        return f"unknown argument {clip(where)!r}; accepted arguments: {', '.join(accepted)}"
    if kind == "missing":
        return f"{where} is required"
    if kind == "literal_error":
        return f"{where} must be one of {ctx.get('expected', '')} (got {clip(repr(error.get('input')))})"
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        bounds = {"less_than_equal": "at most", "greater_than_equal": "at least", "less_than": "below"}
        word = bounds.get(kind, "above")
        limit = next(iter(ctx.values()), "")
        return f"{where} must be {word} {limit} (got {clip(repr(error.get('input')))})"
    if kind == "string_too_long":
        return f"{where} must be at most {ctx.get('max_length')} characters (got {len(str(error.get('input')))})"
    if kind == "string_too_short":
        return f"{where} must be at least {ctx.get('min_length')} character(s)"
    if kind == "too_long":
        return f"{where} must have at most {ctx.get('max_length')} items"
    if kind == "too_short":
        return f"{where} must have at least {ctx.get('min_length')} item(s)"
    message = str(error.get("msg", "is invalid")).replace("Input should", "must").replace("Value error, ", "")
    return f"{where}: {message}" if message[:1].isupper() else f"{where} {message}"


def _json_decoded(model: type[BaseModel], arguments: dict[str, Any]) -> dict[str, Any]:
    """Arguments sent as JSON inside a string (`"[\"a\"]"` for a list), decoded as the SDK does before it validates."""
    decoded = dict(arguments)
    for name, value in arguments.items():
        field = model.model_fields.get(name)
        if field is None or not isinstance(value, str) or field.annotation is str:
            continue
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            continue
        if not isinstance(parsed, str | int | float):
            decoded[name] = parsed
    return decoded


def check_arguments(model: type[BaseModel], arguments: dict[str, Any] | None) -> ImageGenError | None:
    """None when `arguments` fit the tool's parameters, else an `invalid_argument` error saying why, readably."""
    try:
        model.model_validate(_json_decoded(model, arguments or {}))
    except ValidationError as exc:
        accepted = list(model.model_fields)
        problems = [_describe(e, accepted) for e in exc.errors(include_url=False)]
        return invalid("; ".join(problems[:5]), accepted_arguments=accepted)
    return None


def literal_values(alias: Any) -> tuple[str, ...]:
    """The values of one of the Literal aliases above."""
    return tuple(get_args(alias))
