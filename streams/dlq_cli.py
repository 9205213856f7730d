"""`dispatchflow dlq list|replay`: read the dead-letter topics, put letters back on their source."""

from __future__ import annotations

import argparse
import json
import sys

from contracts.topics import TopicsFile, TopicsFileError, load_topics
from dispatchflow.commands import CommandRegistry, HelpFormatter
from dispatchflow.settings import setting_help
from streams.cli import add_broker_flags, settings_from_args
from streams.dlq import (
    Letter,
    LetterFilter,
    Refusal,
    dlq_topic_of,
    plan_replay,
    read_letters,
    replay_letters,
)
from streams.kafka_config import aiokafka_kwargs, run_on_broker

#: Letters `dlq list` shows when `--limit` is not given.
DEFAULT_LIST_LIMIT = 50
#: Characters of a dead letter's message shown by `dlq list`.
MESSAGE_CHARS = 60
_REFUSAL_TEXT = {
    Refusal.TRUNCATED: "truncated (dlq.truncated: cut to fit, not the whole record)",
    Refusal.PER_FIX: "per-fix (dlq.index: one fix of a ping batch, not the record)",
    Refusal.NO_SOURCE: "without a readable source (dlq.topic / dlq.partition)",
}


class _UsageError(ValueError):
    """A flag the topics file does not support (an unknown topic)."""


def _topics(args: argparse.Namespace) -> TopicsFile:
    settings = settings_from_args(args)
    return load_topics(app_id=settings.app_id)


def _dlq_topics(topics: TopicsFile, topic: str | None) -> list[str]:
    """The dead-letter topics to read: every one, or the one of `topic`."""
    every = list(topics.dead_letter_topics())
    if topic is None:
        return every
    wanted = dlq_topic_of(topic)
    if wanted not in every:
        msg = f"{topic} has no dead-letter topic in topics.yaml (those with one: "
        msg += ", ".join(t.removesuffix("_dlq") for t in every) + ")"
        raise _UsageError(msg)
    return [wanted]


def _filter(args: argparse.Namespace) -> LetterFilter:
    try:
        return LetterFilter(
            reason=args.reason,
            partition=args.partition,
            offset_from=getattr(args, "offset_from", None),
            offset_to=getattr(args, "offset_to", None),
        )
    except ValueError as exc:
        raise _UsageError(str(exc)) from None


def _position(topic: str | None, partition: int | None, offset: int | None) -> str:
    return f"{topic or '?'}[{'?' if partition is None else partition}]@{offset!s:<4}"


def _line(letter: Letter) -> str:
    said = letter.dlq
    source = _position(said.source_topic, said.source_partition, said.source_offset)
    message = " ".join((said.message or "").split())
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 1] + "…"
    notes = []
    if said.index is not None:
        notes.append(f"fix {said.index}")
    if said.truncated:
        notes.append(f"cut: {said.truncated}")
    extra = f" ({', '.join(notes)})" if notes else ""
    return (
        f"{source:<30} {said.reason or '?':<22} {message:<{MESSAGE_CHARS}} "
        f"{letter.preview()}{extra}"
    )


def _list(args: argparse.Namespace) -> int:
    try:
        topics = _topics(args)
        selected = _dlq_topics(topics, args.topic)
        chosen = _filter(args)
    except (TopicsFileError, _UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    settings = settings_from_args(args)
    letters = run_on_broker(settings, read_letters(aiokafka_kwargs(settings), selected))
    matching = [letter for letter in letters if chosen.matches(letter)]
    newest = sorted(
        matching, key=lambda x: (x.timestamp_ms, x.dlq_topic, x.dlq_partition, x.dlq_offset)
    )
    shown = newest[-args.limit :] if args.limit > 0 else []
    if args.json:
        document = {
            "total": len(matching),
            "shown": len(shown),
            "letters": [letter.as_json() for letter in shown],
        }
        print(json.dumps(document, indent=2))
        return 0
    if shown:
        print(f"{'source topic[partition]@offset':<30} {'reason':<22} {'message':<60} value")
        for letter in shown:
            print(_line(letter))
    print(f"{len(shown)} of {len(matching)} dead letters shown (newest last)")
    return 0


def _replay(args: argparse.Namespace) -> int:
    try:
        topics = _topics(args)
        (selected,) = _dlq_topics(topics, args.topic)
        chosen = _filter(args)
    except (TopicsFileError, _UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    settings = settings_from_args(args)
    client = aiokafka_kwargs(settings)
    letters = run_on_broker(settings, read_letters(client, [selected]))
    plan = plan_replay(letter for letter in letters if chosen.matches(letter))
    source = selected.removesuffix("_dlq")
    if args.dry_run:
        print(f"dry run: would replay {len(plan.replay)} dead letters of {selected} to {source}")
        for letter in plan.replay:
            print(f"    {_line(letter)}")
    else:
        replayed = run_on_broker(settings, replay_letters(client, plan.replay))
        print(f"replayed {replayed} dead letters of {selected} to {source}")
    for refusal, count in sorted(plan.refused.items()):
        print(f"refused {count} {_REFUSAL_TEXT[refusal]}")
    return 1 if plan.refused else 0


def _non_negative(text: str) -> int:
    """A non-negative integer (for argparse)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", help="only letters with this dlq.reason (e.g. schema_invalid)")
    parser.add_argument(
        "--partition", type=_non_negative, help="only letters of this source partition"
    )
    parser.add_argument(
        "--app-id", dest="app_id", help=setting_help("app_id", "app id for ${app_id} in names")
    )
    add_broker_flags(parser)


def register(registry: CommandRegistry) -> None:
    """Attach `dlq list` and `dlq replay`."""
    dlq = registry.top.add_parser(
        "dlq",
        help="list the dead letters of every *_dlq topic, or replay them to their source topic",
        description=(
            "Dead letters keep their source record (key, value, headers) and say why and where "
            "from in dlq.* headers. `list` shows them; `replay` puts their records back on the "
            "source topic once the cause is fixed."
        ),
    )
    dlq.set_defaults(handler=lambda _args: _usage())
    sub = dlq.add_subparsers(title="actions", metavar="ACTION")

    text = (
        "show dead letters: source topic, partition and offset, reason, message and the start "
        "of the value (newest last)"
    )
    listing = sub.add_parser("list", help=text, description=text, formatter_class=HelpFormatter)
    listing.set_defaults(handler=_list)
    listing.add_argument(
        "--topic", help="only this source topic's letters (its name or its _dlq name)"
    )
    listing.add_argument(
        "--limit",
        type=_non_negative,
        default=DEFAULT_LIST_LIMIT,
        help="show at most this many (the newest)",
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_common(listing)

    text = (
        "produce the records held by dead letters again to their source topic and partition: "
        "same key and value, source headers (dlq.* dropped, original.* renamed back), the "
        "letter's timestamp. Letters cut to fit (dlq.truncated) and single fixes of a ping "
        "batch (dlq.index) are refused and counted; exits 1 if any was"
    )
    replay = sub.add_parser("replay", help=text, description=text, formatter_class=HelpFormatter)
    replay.set_defaults(handler=_replay)
    replay.add_argument(
        "--topic",
        required=True,
        help="the source topic whose letters to replay (its name or its _dlq name)",
    )
    replay.add_argument(
        "--offset-from",
        type=_non_negative,
        help="only letters whose source offset is at least this",
    )
    replay.add_argument(
        "--offset-to",
        type=_non_negative,
        help="only letters whose source offset is at most this (inclusive)",
    )
    replay.add_argument(
        "--dry-run", action="store_true", help="print what would be replayed; produce nothing"
    )
    _add_common(replay)


def _usage() -> int:
    print("usage: dispatchflow dlq {list,replay} ...", file=sys.stderr)
    return 2
