"""Associations: load a nested JSON file (authors, their books, the books' tags, a profile) as
one object graph, read it back with preloads, filter with where_exists, delete with dependents.

Runs on SQLite by default; set AR_URL to use another database.
"""

import json
import os
import pathlib
from typing import Annotated

from pydantic import Field

import activerecord
from activerecord import ActiveRecord, belongs_to, has_many, has_one

Text = Annotated[str, Field(max_length=100)]


class Author(ActiveRecord):
    __table_name__ = "example_graph_authors"

    id: int | None = None
    name: Text
    books = has_many("Book", order_by="title", dependent="delete")
    profile = has_one("Profile", dependent="delete")


class Book(ActiveRecord):
    __table_name__ = "example_graph_books"

    id: int | None = None
    author_id: int | None = None
    title: Text
    author = belongs_to("Author")
    tags = has_many("Tag", through="Tagging")


class Tagging(ActiveRecord):
    __table_name__ = "example_graph_taggings"

    id: int | None = None
    book_id: int
    tag_id: int


class Tag(ActiveRecord):
    __table_name__ = "example_graph_tags"

    id: int | None = None
    label: Text


class Profile(ActiveRecord):
    __table_name__ = "example_graph_profiles"

    id: int | None = None
    author_id: int | None = None
    bio: Text = ""


MODELS = (Author, Book, Tagging, Tag, Profile)

db = activerecord.connect(os.environ.get("AR_URL", "sqlite://"))
tables = [m.__table__ for m in MODELS]
activerecord.drop_all(tables=tables)
activerecord.create_all(tables=tables)

# One call: authors, then books with author_id set, then tags and the Tagging rows.
rows = json.loads((pathlib.Path(__file__).parent / "data" / "library.json").read_text())
authors = Author.batch_insert_from_dicts(rows, include=["books", "books.tags", "profile"])
print(f"inserted {len(authors)} authors, {Book.query().count()} books, "
      f"{Tag.query().count()} tags, {Tagging.query().count()} taggings")

# One query per relation per level, whatever the number of authors.
for author in Author.query().order_by("id").preload("books.tags", "profile").all():
    bio = author.profile.bio if author.profile else "-"
    books = "; ".join(f"{b.title} [{', '.join(t.label for t in b.tags)}]" for b in author.books)
    print(f"{author.name} ({bio}): {books or 'no books'}")

fantasy = Author.query().where_exists("books", {"title": "A Wizard of Earthsea"}).one()
assert fantasy.name == "Ursula K. Le Guin"
assert [a.name for a in Author.query().where_not_exists("books").all()] == ["Octavia E. Butler"]
assert Book.query().where_exists("tags", {"label": "desert"}).one().author.name == "Frank Herbert"

# dependent="delete": the books and the profile go in the same transaction.
Author.query().where_exists("books", {"title": "Dune"}).delete()
assert Book.query().count() == 2 and Profile.query().count() == 1
print("deleted Frank Herbert and his book")
activerecord.drop_all(tables=tables)
