"""Upsert: insert the new rows, update the existing ones, and know which was which.

Runs on SQLite by default; set AR_URL to use another database.
"""

import os
from typing import Annotated

from pydantic import Field

import activerecord
from activerecord import (
    ActiveRecord,
    Col,
    SoftDeleteMixin,
    TimestampMixin,
    UpsertResult,
    col,
    excluded,
    greatest,
)


class Player(SoftDeleteMixin, TimestampMixin, ActiveRecord):
    __table_name__ = "example_upsert_players"

    id: int | None = None
    nick: Annotated[str, Field(max_length=40), Col(unique=True)]
    games: int = 0
    best: int = 0


activerecord.connect(os.environ.get("AR_URL", "sqlite://"))
Player.drop_table()
Player.create_table()

first = [Player(nick="ada", games=1, best=10), Player(nick="bob", games=1, best=7)]
print(Player.batch_upsert(first, conflict="nick"))  # two inserted

# A day of results: games add up, the best score is kept, a new player arrives.
results = [
    {"nick": "ada", "games": 2, "best": 8},
    {"nick": "cy", "games": 1, "best": 3},
    {"nick": "bob", "games": 0, "best": 7},   # nothing changes for bob
]
result = Player.batch_upsert(
    results,
    conflict=["nick"],
    update={
        "games": col("games") + excluded("games"),
        "best": greatest(col("best"), excluded("best")),
    },
)
assert result == UpsertResult(inserted=1, updated=1, unchanged=1), result
print(result)
print(sorted((p.nick, p.games, p.best) for p in Player.query()))

# Instances get their keys back, new or existing; the same key twice: the last one wins.
again = [Player(nick="ada", games=5), Player(nick="dee"), Player(nick="dee", best=1)]
print(Player.batch_upsert(again, conflict="nick", update=["games", "best"]))
print([(p.nick, p.id) for p in again])

# Skip what exists; soft-deleted rows stay deleted unless revive=True.
Player.query().where({"nick": "bob"}).delete()
print(Player.batch_insert([Player(nick="bob"), Player(nick="eve")], on_conflict="ignore"))
print(Player.batch_upsert([Player(nick="bob", games=9)], conflict="nick", revive=True))
print(Player.query().count())
