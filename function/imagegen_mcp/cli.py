"""Command line: `imagegen-mcp serve | generate | models | keys create | usage`."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from . import base64_codec
from .config import Settings


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    env_file = getattr(args, "config", None)
    if env_file is not None and not Path(env_file).is_file():
        raise SystemExit(f"config file {env_file} does not exist")
    return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]


# The bounds uvicorn offers (it has no header-read timeout; docs/security.md says what Cloud Run's front end adds).
# The Dockerfile CMD passes the same values as flags (a test compares them).
class UvicornLimits(TypedDict):
    timeout_keep_alive: int
    h11_max_incomplete_event_size: int
    limit_concurrency: int
    backlog: int


UVICORN_LIMITS: UvicornLimits = {
    "timeout_keep_alive": 5,  # idle keep-alive connections closed after 5 s
    "h11_max_incomplete_event_size": 16 * 1024,  # request line + headers held per connection
    "limit_concurrency": 1000,  # connections + tasks before 503s, below the usual 1024 file-descriptor limit
    "backlog": 2048,
}


def _listen(host: str, port: int) -> socket.socket:
    """Bind and listen before announcing anything, so a busy port is one clear error and no \"listening\" line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=UVICORN_LIMITS["backlog"])


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .access.auth import check_startup
    from .app import create_app

    overrides: dict[str, Any] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    settings = _settings(args, **overrides)
    try:
        check_startup(settings, settings.host)
    except Exception as exc:
        print(f"imagegen-mcp: refusing to start: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    try:
        sock = _listen(settings.host, settings.port)
    except OSError as exc:
        print(f"imagegen-mcp: cannot listen on {settings.host}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    if port != settings.port:  # --port 0: links and the printed URL use the port the system chose
        settings = settings.model_copy(update={"port": port})
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # the peer must not choose its own address and scheme (docs/security-auth.md)
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or None,
        lifespan="on",
        **UVICORN_LIMITS,
    )
    print(
        f"imagegen-mcp listening on http://{settings.host}:{port}/mcp "
        f"(storage={settings.storage}, auth={settings.auth_label})",
        file=sys.stderr,
        flush=True,
    )
    with sock:
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def _local_image(ref: str, max_bytes: int) -> str:
    """A local file path as a data URL (the CLI runs on the user's machine); any other reference unchanged."""
    path = Path(ref).expanduser()
    looks_like_path = ref.startswith(("/", "./", "../", "~")) or path.suffix.lower() in _IMAGE_SUFFIXES
    if "://" in ref or ref.lower().startswith("data:") or not (looks_like_path or path.is_file()):
        return ref
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SystemExit(f"imagegen-mcp: {ref} is larger than {max_bytes} bytes (IMAGEGEN_MAX_INPUT_IMAGE_BYTES)")
        data = path.read_bytes()
    except OSError as exc:
        raise SystemExit(f"imagegen-mcp: cannot read {ref}: {exc.strerror}") from exc
    return "data:;base64," + base64_codec.encode_text(data)


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif"}


async def _generate(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    from .access.caller import Caller
    from .catalog import GenerationOptions
    from .deps import build_deps
    from .errors import ImageGenError
    from .tools import CallContext, ImageTools

    deps = build_deps(settings)
    try:
        await deps.store.startup_check()

        async def progress(step: float, message: str) -> None:
            print(f"… {message}", file=sys.stderr, flush=True)

        call = CallContext(Caller(id="cli", kind="none"), uuid.uuid4().hex, progress=progress)
        options = GenerationOptions(
            n=args.n,
            aspect_ratio=args.aspect_ratio,
            image_size=args.image_size,
            output_format=args.output_format,
            seed=args.seed,
            background=args.background,
            quality=args.quality,
            negative_prompt=args.negative_prompt,
        )
        try:
            outcome = await ImageTools(deps).run(
                call,
                prompt=args.prompt,
                model=args.model,
                options=options,
                preview=args.preview is not None,
                images=args.image or None,
                mask=args.mask,
            )
        except ImageGenError as err:
            return {"error": err.to_dict()}
        result = dict(outcome.structured)
        if args.preview is not None and outcome.preview is not None:
            await asyncio.to_thread(Path(args.preview).write_bytes, outcome.preview[0])
            result["preview"] = str(args.preview)
        return result
    finally:
        await deps.aclose()


def cmd_generate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    limit = settings.max_input_image_bytes
    args.image = [_local_image(ref, limit) for ref in args.image] if args.image else None
    args.mask = _local_image(args.mask, limit) if args.mask is not None else None
    result = asyncio.run(_generate(settings, args))
    if args.json:
        print(json.dumps(result, indent=2))
    elif "error" in result:
        print(f"error: {result['error']['code']}: {result['error']['message']}", file=sys.stderr)
    else:
        for image in result["images"]:
            location = image["uri"].removeprefix("file://") if image["uri"].startswith("file://") else image["uri"]
            print(f"{image['id']}  {image['width']}x{image['height']}  {location}")
            print(f"  {image['url']}")
        if "preview" in result:
            print(f"preview: {result['preview']}")
    return 1 if "error" in result else 0


async def _models(settings: Settings) -> dict[str, Any]:
    from .deps import build_deps
    from .tools import ImageTools

    deps = build_deps(settings)
    try:
        return await ImageTools(deps).list_models()
    finally:
        await deps.aclose()


def cmd_models(args: argparse.Namespace) -> int:
    listing = asyncio.run(_models(_settings(args)))
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print(f"default model: {listing['default_model']}")
    for m in listing["models"]:
        state = f"via {m['provider']}" if m["available"] else f"unavailable: {m.get('unavailable_reason')}"
        print(f"  {m['id']:<42} {state}")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from .access.keys import create_api_key, describe_new_key

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    key, record = create_api_key(
        args.label,
        expires_days=args.expires_days,
        models=models,
        daily_images=args.daily_images,
        monthly_usd=args.monthly_usd,
    )
    print(describe_new_key(key, record, secret_id=_settings(args).api_keys_secret))
    return 0


def _moment(text: str) -> datetime:
    """`YYYY-MM-DD` (midnight UTC) or an ISO 8601 time (UTC unless it names an offset)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _usage(settings: Settings, since: datetime, until: datetime, by: str) -> dict[str, Any]:
    from .deps import build_state
    from .usage.records import UsageLog, summarize

    state = build_state(settings)
    try:
        records = await UsageLog(state, retention_days=settings.usage_retention_days).between(since, until)
    finally:
        await state.aclose()
    field = {"key": "key_id", "model": "model", "principal": "principal"}[by]
    report = summarize(records, field)
    groups = report.pop("by_" + field)
    return {"since": since.isoformat(), "until": until.isoformat(), "by": by, **report, "groups": groups}


def cmd_usage(args: argparse.Namespace) -> int:
    from .usage.quotas import month_start

    now = datetime.now(UTC)
    since = args.since or month_start(now)
    until = args.until or now + timedelta(seconds=1)
    report = asyncio.run(_usage(_settings(args), since, until, args.by))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"usage from {since.isoformat()} until {until.isoformat()} (estimated USD; unpriced images not in it)")
    row = "{:<44} {:>7} {:>8} {:>14} {:>9}"
    print(row.format(args.by, "calls", "images", "estimated_usd", "unpriced"))
    for name, totals in [*report["groups"].items(), ("total", report)]:
        usd = f"{totals['estimated_cost_usd']:.6f}"
        print(row.format(name, totals["calls"], totals["images"], usd, totals["unpriced_images"]))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    from .doc_tables import capability_matrix, config_table, update_readme

    if args.table == "update":
        changed = update_readme(Path(args.readme))
        print(f"{args.readme}: {'updated' if changed else 'up to date'}")
        return 0
    print(config_table() if args.table == "config" else capability_matrix())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagegen-mcp", description="Remote MCP endpoint for image generation.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP MCP endpoint")
    serve.add_argument("--host", default=None, help="interface (default IMAGEGEN_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default IMAGEGEN_PORT, PORT or 8080)")
    serve.add_argument("--config", default=None, help="env file with IMAGEGEN_* settings")
    serve.set_defaults(func=cmd_serve)

    gen = sub.add_parser(
        "generate",
        help="generate (or, with --image, edit) one-shot and print where it went",
        description="Generate images (or edit, with --image) once, in this process, and print where they went.",
    )
    gen.add_argument("prompt", help="what to draw (with --image: the change to make)")
    gen.add_argument("--model", default=None, help="model id from `imagegen-mcp models` (default: the default model)")
    gen.add_argument("--n", type=int, default=1, help="how many images (the model's max_n applies; default 1)")
    gen.add_argument("--aspect-ratio", default=None, help="e.g. 1:1, 3:2, 16:9 (model-dependent)")
    gen.add_argument("--image-size", default=None, help="resolution class 1K/2K/4K where the model supports it")
    gen.add_argument(
        "--output-format", default="png", choices=["png", "jpeg", "webp"], help="file format (default png)"
    )
    gen.add_argument(
        "--background",
        default=None,
        choices=["transparent", "opaque", "auto"],
        help="transparent needs a model that supports it",
    )
    gen.add_argument(
        "--quality", default=None, choices=["low", "medium", "high", "auto"], help="quality tier, where supported"
    )
    gen.add_argument("--negative-prompt", default=None, help="what to avoid, where the model supports it")
    gen.add_argument("--seed", type=int, default=None, help="seed for reproducible outputs, where supported")
    gen.add_argument(
        "--image",
        action="append",
        metavar="REF",
        help="input image (repeatable): edit instead of generate. A local file path, an https URL, gs:// URI, "
        "data URL or the id of an earlier output",
    )
    gen.add_argument("--mask", default=None, metavar="REF", help="mask PNG with alpha, same size as the first image")
    gen.add_argument(
        "--preview",
        default=None,
        metavar="FILE",
        help="also write a small preview (long side IMAGEGEN_PREVIEW_MAX_PX) of the first image to FILE",
    )
    gen.add_argument("--json", action="store_true", help="print the structured result as JSON")
    gen.add_argument("--config", default=None, help="env file with IMAGEGEN_* settings and provider keys")
    gen.set_defaults(func=cmd_generate)

    models = sub.add_parser("models", help="list the catalog and what is available here")
    models.add_argument("--json", action="store_true")
    models.add_argument("--config", default=None)
    models.set_defaults(func=cmd_models)

    docs = sub.add_parser("docs", help="print a generated README table (config reference or capability matrix)")
    docs.add_argument("table", choices=["config", "models", "update"], help="`update` rewrites the README's tables")
    docs.add_argument("--readme", default="README.md")
    docs.set_defaults(func=cmd_docs)

    keys = sub.add_parser("keys", help="bearer API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key: prints it once, and the hash record to store")
    create.add_argument("--label", required=True)
    create.add_argument("--expires-days", type=int, default=None)
    create.add_argument("--models", default=None, help="comma-separated model ids this key may use")
    create.add_argument("--daily-images", type=int, default=None, help="quota: images per UTC day")
    create.add_argument("--monthly-usd", type=float, default=None, help="quota: estimated USD per calendar month")
    create.add_argument("--config", default=None)
    create.set_defaults(func=cmd_keys_create)

    usage = sub.add_parser("usage", help="usage and estimated cost from the state store, grouped")
    usage.add_argument("--since", type=_moment, default=None, help="from (default: start of this month, UTC)")
    usage.add_argument("--until", type=_moment, default=None, help="until, exclusive (default: now)")
    usage.add_argument("--by", choices=["key", "model", "principal"], default="key")
    usage.add_argument("--json", action="store_true")
    usage.add_argument("--config", default=None)
    usage.set_defaults(func=cmd_usage)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        return 0
    except Exception as exc:  # configuration errors: one clear line, no traceback
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            print(f"imagegen-mcp: invalid configuration:\n{exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
