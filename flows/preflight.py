"""What `jvn run`, `jvn serve` and a scheduled run check before they touch anything.

Each failed check is a ConfigError (exit 2, one line): the job's places
overlap, the inbox is missing, the rule file is unusable, the pseudonym key is missing, the feed is
unreadable or a run would take the live feed back in time.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from flows.common.config import ConfigError, pseudonym_key
from flows.common.errors import FeedError
from flows.common.feed_folder import live_snapshot
from flows.common.paths import check_separate, job_places
from transforms.rules import RuleFileError, load_rules


def check_configuration(
    rules: Path,
    *,
    warehouse: Path | None = None,
    inbox: Path | None = None,
    analytics: Path | None = None,
    feed: Path | None = None,
) -> None:
    """The places do not overlap (with `warehouse`), the inbox is there, the rules
    load, the key is set."""
    if warehouse is not None:
        check_separate(job_places(warehouse=warehouse, inbox=inbox, analytics=analytics, feed=feed))
    if inbox is not None and not inbox.is_dir():
        # A typo or an unmounted share: a run would publish "nothing new" and look fine.
        raise ConfigError(f"no inbox folder at {inbox}: check --inbox (or the mount)")
    try:
        load_rules(rules)
    except RuleFileError as error:
        raise ConfigError(str(error)) from None
    pseudonym_key()


def check_live_feed(as_of: date, feed_dir: Path, *, hint: str = "") -> None:
    """The live feed can be read, and is not for a later date than `as_of`."""
    try:
        live = live_snapshot(feed_dir)
    except FeedError as error:
        raise ConfigError(str(error)) from None
    if live is not None and as_of < live.as_of:
        raise ConfigError(
            f"the live feed in {feed_dir} is for {live.as_of}; a run for the earlier "
            f"date {as_of} would take it back in time{hint}"
        )


def check_can_run(
    as_of: date,
    feed_dir: Path,
    rules: Path,
    *,
    warehouse: Path | None = None,
    inbox: Path | None = None,
    analytics: Path | None = None,
    hint: str = "",
) -> None:
    """What a run checks before it touches anything; raises ConfigError.

    With `warehouse`, also that no two of the job's places overlap
    (flows/common/paths.py `check_separate`).
    """
    check_configuration(rules, warehouse=warehouse, inbox=inbox, analytics=analytics, feed=feed_dir)
    check_live_feed(as_of, feed_dir, hint=hint)
