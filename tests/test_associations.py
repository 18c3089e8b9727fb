"""Associations: declaring, lazy reads, preloading, where_exists, dependent rows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import pydantic
import pytest
import sqlalchemy as sa
from pydantic import Field
from pydantic_core import PydanticCustomError

from activerecord import (
    ActiveRecord,
    Col,
    ForeignKeyViolation,
    OptimisticLockMixin,
    QueryError,
    RecordNotFound,
    SchemaError,
    SoftDeleteMixin,
    StaleRecordError,
    Transaction,
    UniqueViolation,
    UnknownColumnError,
    ValidationError,
    belongs_to,
    has_many,
    has_one,
)
from activerecord.associations import loading
from activerecord.backend.database import Database


class Model(ActiveRecord):
    """This module's models, on a MetaData of their own: a model of another module, of the
    demo or of a README block with the same table name cannot replace their tables."""

    __abstract__ = True
    __metadata__ = sa.MetaData()

Name = Annotated[str, Field(max_length=40)]


class Author(Model):
    __table_name__ = "as_authors"

    id: int | None = None
    name: Name
    status: Name = "active"
    books = has_many("Book", order_by="-title")
    profile = has_one("Profile")


class Book(SoftDeleteMixin, Model):
    __table_name__ = "as_books"

    id: int | None = None
    author_id: int | None = None
    title: Name
    author = belongs_to("Author")
    tags = has_many("Tag", through="Tagging")


class Tagging(Model):
    __table_name__ = "as_taggings"

    id: int | None = None
    book_id: int
    tag_id: int


class Tag(SoftDeleteMixin, Model):
    __table_name__ = "as_tags"

    id: int | None = None
    label: Name


class Profile(Model):
    __table_name__ = "as_profiles"

    id: int | None = None
    author_id: int
    bio: Name = ""


class Employee(Model):
    """A model related to itself."""

    __table_name__ = "as_employees"

    id: int | None = None
    manager_id: int | None = None
    name: Name
    manager = belongs_to("Employee", foreign_key="manager_id")
    reports = has_many("Employee", foreign_key="manager_id")


MODELS = (Author, Book, Tagging, Tag, Profile)


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    """The statements run on the database while the block runs."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)


def selects(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


@pytest.fixture
def library(fresh) -> dict[str, list[ActiveRecord]]:
    """Two authors (one with a profile), four books (one soft-deleted), tags on books."""
    fresh(*MODELS)
    authors = [Author(name="Le Guin"), Author(name="Herbert")]
    Author.batch_insert(authors)
    books = [
        Book(author_id=authors[0].id, title="Earthsea"),
        Book(author_id=authors[0].id, title="Dispossessed"),
        Book(author_id=authors[1].id, title="Dune"),
        Book(author_id=authors[1].id, title="Gone"),
    ]
    Book.batch_insert(books)
    books[3].delete()
    tags = [Tag(label="fantasy"), Tag(label="sf"), Tag(label="hidden")]
    Tag.batch_insert(tags)
    tags[2].delete()
    Tagging.batch_insert([
        Tagging(book_id=books[0].id, tag_id=tags[0].id),
        Tagging(book_id=books[1].id, tag_id=tags[1].id),
        Tagging(book_id=books[2].id, tag_id=tags[1].id),
        Tagging(book_id=books[2].id, tag_id=tags[2].id),
    ])
    Profile.create(author_id=authors[0].id, bio="Ursula")
    return {"authors": list(authors), "books": books, "tags": tags}


# -- declaring -----------------------------------------------------------------------------
def test_relations_are_not_fields_columns_or_dumped(db, library):
    assert "books" not in Author.model_fields and "author" not in Book.model_fields
    assert set(Author.__table__.c.keys()) == {"id", "name", "status"}
    author = Author.find(library["authors"][0].id)
    _ = author.books
    assert author.model_dump() == {"id": author.id, "name": "Le Guin", "status": "active"}
    assert "books" not in Author.query().to_dicts()[0]


def test_relation_attributes_resolve_on_first_ask():
    class Crate(Model):
        __table_name__ = "as_crates"
        id: int | None = None
        lids = has_many("CrateLid")

    class CrateLid(Model):
        __table_name__ = "as_crate_lids"
        id: int | None = None
        crate_id: int | None = None

    assert (Crate.lids.foreign_key, Crate.lids.target) == ("crate_id", CrateLid)
    with pytest.raises(AttributeError, match="nope"):
        _ = Crate.lids.nope


def test_conventions_and_options():
    assert Author.books.resolve().foreign_key == "author_id"
    assert Book.author.resolve().foreign_key == "author_id"
    assert Book.author.primary_key == "id"
    tags = Book.tags.resolve()
    assert (tags.foreign_key, tags.target_key, tags.through) == ("book_id", "tag_id", Tagging)
    assert Employee.reports.resolve().target is Employee


def test_unknown_target_is_schema_error_naming_model_and_relation():
    class Shelf(Model):
        __table_name__ = "as_shelves"
        id: int | None = None
        items = has_many("NoSuchModel")

    with pytest.raises(SchemaError, match=r"Shelf\.items .*NoSuchModel"):
        Shelf.items.resolve()
    with pytest.raises(SchemaError, match=r"Shelf\.items"):
        _ = Shelf(id=1).items


def test_missing_foreign_key_is_schema_error_naming_model_and_relation():
    class Lonely(Model):
        __table_name__ = "as_lonely"
        id: int | None = None
        books = has_many(Book)  # Book has no lonely_id
        writer = belongs_to(Author)  # Lonely has no author_id

    with pytest.raises(SchemaError, match=r"Lonely\.books .*Book has no field 'lonely_id'"):
        Lonely.books.resolve()
    with pytest.raises(SchemaError, match=r"Lonely\.writer .*Lonely has no field 'author_id'"):
        Lonely.writer.resolve()
    with pytest.raises(SchemaError, match=r"Lonely\.books"):
        Lonely.query().preload("books")


def test_bad_options_are_schema_errors():
    with pytest.raises(SchemaError, match="dependent"):
        has_many("Book", dependent="explode")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="dependent"):
        belongs_to("Author").__class__("belongs_to", "Author", dependent="delete")

    class Strict(Model):
        __table_name__ = "as_strict"
        id: int | None = None
        profiles = has_many(Profile, foreign_key="author_id", dependent="nullify")
        notes = has_many(Profile, foreign_key="author_id", dependent="soft_delete")

    with pytest.raises(SchemaError, match=r"Strict\.profiles .*optional"):
        Strict.profiles.resolve()
    with pytest.raises(SchemaError, match=r"Strict\.notes .*SoftDeleteMixin"):
        Strict.notes.resolve()


# -- reading -------------------------------------------------------------------------------
def test_lazy_load_once_then_cached(db, library):
    author = Author.find(library["authors"][0].id)
    with counting(db) as seen:
        titles = [b.title for b in author.books]
        again = author.books
    assert titles == ["Earthsea", "Dispossessed"]  # order_by="-title"
    assert again is author.books
    assert len(selects(seen)) == 1


def test_belongs_to_has_one_and_none(db, library):
    book = Book.find(library["books"][2].id)
    assert book.author.name == "Herbert"
    assert Author.find(library["authors"][0].id).profile.bio == "Ursula"
    assert Author.find(library["authors"][1].id).profile is None
    orphan = Book.create(title="Orphan")
    with counting(db) as seen:
        assert orphan.author is None
    assert seen == []  # no key, no query


def test_through_relation_joins_in_one_query_and_hides_soft_deleted(db, library):
    book = Book.find(library["books"][2].id)
    with counting(db) as seen:
        labels = [t.label for t in book.tags]
    assert labels == ["sf"]  # the soft-deleted tag is left out
    assert len(selects(seen)) == 1


def test_soft_deleted_children_are_left_out(db, library):
    herbert = Author.find(library["authors"][1].id)
    assert [b.title for b in herbert.books] == ["Dune"]


def test_refresh_drops_the_cache(db, library):
    author = Author.find(library["authors"][1].id)
    assert len(author.books) == 1
    Book.create(author_id=author.id, title="Children")
    assert len(author.books) == 1  # cached
    author.refresh()
    assert [b.title for b in author.books] == ["Dune", "Children"]


def test_belongs_to_follows_a_changed_key(db, library):
    book = Book.find(library["books"][0].id)
    assert book.author.name == "Le Guin"
    book.author_id = library["authors"][1].id
    assert book.author.name == "Herbert"


def test_assignment_sets_relation_and_keys(db, library):
    herbert = Author.find(library["authors"][1].id)
    book = Book(title="Messiah")
    with counting(db) as seen:
        book.author = herbert
    assert seen == []
    assert book.author is herbert and book.author_id == herbert.id
    book.save()
    assert Book.find(book.id).author_id == herbert.id
    saved = Book.find(library["books"][0].id)
    saved.author = herbert
    assert "author_id" in saved.changed_fields
    saved.author = None
    assert saved.author_id is None and saved.author is None
    new_books = [Book(title="x"), Book(title="y")]
    herbert.books = new_books
    assert herbert.books == new_books and {b.author_id for b in new_books} == {herbert.id}
    profile = Profile(author_id=0)
    herbert.profile = profile
    assert herbert.profile is profile and profile.author_id == herbert.id


def test_wrong_assignment_is_refused_and_changes_nothing(db, library):
    herbert = Author.find(library["authors"][1].id)
    book = Book.find(library["books"][2].id)
    with pytest.raises(ValidationError, match=r"Book\.author: expected Author"):
        book.author = Tag(label="x")  # type: ignore[assignment]
    with pytest.raises(ValidationError, match=r"Author\.books\[1\]: expected Book"):
        herbert.books = [Book(title="ok"), Tag(label="no")]
    with pytest.raises(ValidationError, match=r"Author\.books: expected a list"):
        herbert.books = None
    assert book.author_id == herbert.id and [b.title for b in herbert.books] == ["Dune"]
    profile = Profile(author_id=5)
    with pytest.raises(ValidationError, match=r"Profile\.author \w*|Profile.author_id"):
        Book.author.__set__(profile, None)  # type: ignore[arg-type]


# -- preloading ----------------------------------------------------------------------------
def test_preload_one_query_per_relation_per_level(db, library):
    with counting(db) as seen:
        authors = Author.query().order_by("id").preload("books", "books.tags", "profile").all()
    assert len(selects(seen)) == 4  # authors, books, tags (joined through taggings), profiles
    with counting(db) as seen:
        shown = [
            (a.name, [(b.title, [t.label for t in b.tags]) for b in a.books],
             a.profile.bio if a.profile else None)
            for a in authors
        ]
    assert seen == []
    assert shown == [
        ("Le Guin", [("Earthsea", ["fantasy"]), ("Dispossessed", ["sf"])], "Ursula"),
        ("Herbert", [("Dune", ["sf"])], None),
    ]


def test_preload_belongs_to_shares_the_parent(db, library):
    with counting(db) as seen:
        books = Book.query().order_by("id").preload("author.profile").all()
    assert len(selects(seen)) == 3
    assert books[0].author is books[1].author
    assert [b.author.name for b in books] == ["Le Guin", "Le Guin", "Herbert"]
    assert books[0].author.profile.bio == "Ursula" and books[2].author.profile is None


def test_preload_with_first_one_find_batches_each(db, library):
    ids = [a.id for a in library["authors"]]
    query = Author.query().preload("books")
    with counting(db) as seen:
        first = query.first()
        one = query.where({"id": ids[1]}).one()
        found = query.find(ids[0])
    assert len(selects(seen)) == 6
    assert first is not None and len(first.books) == 2
    assert [b.title for b in one.books] == ["Dune"] and len(found.books) == 2
    with pytest.raises(RecordNotFound):
        query.find(-1)
    with counting(db) as seen:
        batches = list(query.batches(1))
    # one books query per batch: 2 batches of one author, and the probe that finds no more
    assert [len(b[0].books) for b in batches] == [2, 1]
    assert len(selects(seen)) == 2 + 2 + 1
    assert [len(a.books) for a in query.each(1)] == [2, 1]


def test_preload_unknown_name_is_query_error_before_sql(db, library):
    with counting(db) as seen:
        with pytest.raises(QueryError, match="Author has no relation 'bookz'"):
            Author.query().preload("bookz")
        with pytest.raises(QueryError, match="Book has no relation 'nope'"):
            Author.query().preload("books.nope")
        with pytest.raises(QueryError, match="select"):
            Author.query().select("id").preload("books")
        with pytest.raises(QueryError, match="preload"):
            Author.query().preload("books").select("id")
    assert seen == []


def test_preload_chunks_keys_below_the_parameter_limit(db, library, monkeypatch):
    monkeypatch.setattr(loading, "_MAX_KEYS", 1)
    with counting(db) as seen:
        authors = Author.query().order_by("id").preload("books").all()
    assert len(selects(seen)) == 3  # the authors, then one book query per key
    assert [len(a.books) for a in authors] == [2, 1]


def test_preload_of_more_parents_than_the_backend_takes_parameters(db, fresh):
    fresh(*MODELS)
    count = 70_000  # above PostgreSQL's 65,535 and SQLite's 32,766 bound parameters
    Author.batch_insert_from_dicts(
        ({"name": f"a{i}"} for i in range(count)), return_records=False
    )
    last = Author.query().order_by("-id").first()
    assert last is not None
    Book.create(author_id=last.id, title="Last")
    authors = Author.query().preload("books").all()
    assert len(authors) == count
    assert sum(len(a.books) for a in authors) == 1 and authors[-1].books[0].title == "Last"


# -- where_exists --------------------------------------------------------------------------
def test_where_exists_and_not_exists(db, library):
    names = lambda q: sorted(a.name for a in q.all())  # noqa: E731
    assert names(Author.query().where_exists("books", {"title": "Dune"})) == ["Herbert"]
    assert names(Author.query().where_exists("books")) == ["Herbert", "Le Guin"]
    # Herbert's "Gone" is soft-deleted: it does not count
    assert names(Author.query().where_exists("books", "title = ?", "Gone")) == []
    assert names(Author.query().where_not_exists("profile")) == ["Herbert"]
    assert names(Author.query().where_exists("books", Book.c.title.like("E%"))) == ["Le Guin"]
    books = Book.query().where_exists("tags", {"label": "sf"}).order_by("id").all()
    assert [b.title for b in books] == ["Dispossessed", "Dune"]
    # the hidden tag does not count, through the join model either
    assert Book.query().where_exists("tags", {"label": "hidden"}).count() == 0
    assert Book.query().where_exists("author", {"name": "Herbert"}).count() == 1


def test_where_exists_in_update_and_delete(db, library):
    banned = library["authors"][1]
    Author.query().where({"id": banned.id}).update({"status": "banned"})
    assert Book.query().where_exists("author", {"status": "banned"}).delete() == 1
    assert [b.title for b in Book.query().order_by("id").all()] == ["Earthsea", "Dispossessed"]
    changed = Author.query().where_not_exists("books").update({"status": "idle"})
    assert changed == 1 and Author.find(banned.id).status == "idle"
    assert Book.query().where_exists("tags", {"label": "fantasy"}).hard_delete() == 1


def test_where_exists_unknown_relation_or_column(db, library):
    with pytest.raises(QueryError, match="no relation 'nope'"):
        Author.query().where_exists("nope")
    with pytest.raises(Exception, match="no column 'nope'"):
        Author.query().where_exists("books", {"nope": 1})


def test_self_referential_relation(db, fresh):
    fresh(Employee)
    boss = Employee.create(name="boss")
    staff = [Employee(name="a", manager_id=boss.id), Employee(name="b", manager_id=boss.id)]
    Employee.batch_insert(staff)
    assert [e.name for e in boss.reports] == ["a", "b"] and staff[0].manager.name == "boss"
    managers = Employee.query().where_exists("reports", {"name": "b"}).all()
    assert [m.name for m in managers] == ["boss"]
    assert Employee.query().where_not_exists("reports").count() == 2
    loaded = Employee.query().order_by("id").preload("reports", "manager").all()
    assert [len(e.reports) for e in loaded] == [2, 0, 0]
    assert loaded[1].manager is loaded[2].manager and loaded[0].manager is None
    # the subquery on the table being written: fine on every backend (MariaDB 10.3+ too)
    assert Employee.query().where_not_exists("reports").update({"name": "leaf"}) == 2
    assert Employee.query().where_exists("reports").delete() == 1
    assert sorted(e.name for e in Employee.query().all()) == ["leaf", "leaf"]


def test_has_one_through_and_dotted_target(db, library):
    class Shelfmark(Model):
        __table__ = Book.__table__  # a second model over the books' table
        id: int | None = None
        author_id: int | None = None
        title: Name
        first_tag = has_one("tests.test_associations.Tag", through=Tagging,
                            foreign_key="book_id", order_by="label")

    books = Shelfmark.query().where({"id": [b.id for b in library["books"][:3]]}).order_by("id")
    with counting(db) as seen:
        loaded = books.preload("first_tag").all()
    assert len(selects(seen)) == 2
    assert [b.first_tag.label if b.first_tag else None for b in loaded] == [
        "fantasy", "sf", "sf"]
    assert Shelfmark.first_tag.resolve().target is Tag


# -- dependent= ----------------------------------------------------------------------------
class Publisher(SoftDeleteMixin, Model):
    __table_name__ = "as_publishers"

    id: int | None = None
    name: Name
    series = has_many("Series", dependent="delete")
    imprints = has_many("Imprint", dependent="nullify")
    logo = has_one("Logo", dependent="soft_delete")


class Series(Model):
    __table_name__ = "as_series"

    id: int | None = None
    publisher_id: int
    volumes = has_many("Volume", dependent="delete")


class Volume(SoftDeleteMixin, Model):
    __table_name__ = "as_volumes"

    id: int | None = None
    series_id: int


class Imprint(Model):
    __table_name__ = "as_imprints"

    id: int | None = None
    publisher_id: int | None = None


class Logo(SoftDeleteMixin, Model):
    __table_name__ = "as_logos"

    id: int | None = None
    publisher_id: int


class LockedShop(OptimisticLockMixin, Model):
    __table_name__ = "as_locked_shops"

    id: int | None = None
    name: Name = ""
    items = has_many("ShopItem", foreign_key="shop_id", dependent="delete")


class ShopItem(Model):
    __table_name__ = "as_shop_items"

    id: int | None = None
    shop_id: int


PUBLISHING = (Publisher, Series, Volume, Imprint, Logo)


@pytest.fixture
def houses(fresh) -> list[Publisher]:
    """Two publishers, each with two series of two volumes, an imprint and a logo."""
    fresh(*PUBLISHING)
    publishers = [Publisher(name="p0"), Publisher(name="p1")]
    Publisher.batch_insert(publishers)
    series = [Series(publisher_id=p.id) for p in publishers for _ in range(2)]
    Series.batch_insert(series)
    Volume.batch_insert([Volume(series_id=s.id) for s in series for _ in range(2)])
    Imprint.batch_insert([Imprint(publisher_id=p.id) for p in publishers])
    Logo.batch_insert([Logo(publisher_id=p.id) for p in publishers])
    return publishers


def writes(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "DELETE"))]


def state(publisher_id: int) -> tuple[int, int, int, int, int]:
    """(series, live volumes, all volumes, imprints, live logos) of a publisher."""
    series_ids = [s.id for s in Series.query().where({"publisher_id": publisher_id}).all()]
    volumes = Volume.query().where({"series_id": series_ids or [-1]})
    return (
        len(series_ids), volumes.count(), volumes.with_deleted().count(),
        Imprint.query().where({"publisher_id": publisher_id}).count(),
        Logo.query().where({"publisher_id": publisher_id}).count(),
    )


def test_instance_delete_handles_dependents_one_statement_each(db, houses):
    gone, kept = houses
    with counting(db) as seen:
        assert Publisher.find(gone.id).delete()
    # volumes (soft), series, imprints (nullify), logo (soft), then the publisher (soft)
    assert len(writes(seen)) == 5
    assert state(gone.id) == (0, 0, 0, 0, 0)
    assert Volume.query().only_deleted().count() == 4  # marked, not removed
    assert Imprint.query().where({"publisher_id": None}).count() == 1
    assert Logo.query().only_deleted().count() == 1
    assert state(kept.id) == (2, 4, 4, 1, 1)


def test_query_delete_and_hard_delete_handle_dependents(db, houses):
    gone, kept = houses
    with counting(db) as seen:
        assert Publisher.query().where({"name": "p0"}).delete() == 1
    assert len(writes(seen)) == 5
    assert state(gone.id) == (0, 0, 0, 0, 0) and state(kept.id) == (2, 4, 4, 1, 1)
    assert Volume.query().only_deleted().count() == 4
    # hard_delete purges: the dependent "delete" rows go for real, soft-deleted ones included
    Volume.query().where({"id": Volume.query().first().id}).delete()  # one of p1's, marked
    assert Publisher.query().with_deleted().hard_delete(all_rows=True) == 2
    assert Series.query().count() == 0
    # p1's four volumes went (the marked one too); p0's marked ones lost their series before
    assert Volume.query().count() == 0 and Volume.query().only_deleted().count() == 4
    assert Imprint.query().where({"publisher_id": None}).count() == 2
    assert Logo.query().count() == 0 and Logo.query().only_deleted().count() == 2


def test_instance_hard_delete_purges_dependents(db, houses):
    gone, kept = houses
    assert Publisher.find(gone.id).hard_delete()
    assert Volume.query().with_deleted().count() == 4 and Series.query().count() == 2
    assert state(kept.id) == (2, 4, 4, 1, 1)


def test_failed_delete_leaves_dependents_as_they_were(db, fresh):
    fresh(LockedShop, ShopItem)
    shop = LockedShop.create(name="a")
    ShopItem.batch_insert([ShopItem(shop_id=shop.id) for _ in range(3)])
    other = LockedShop.find(shop.id)
    other.name = "b"
    other.save()
    with pytest.raises(StaleRecordError):
        shop.delete()
    assert ShopItem.query().count() == 3 and LockedShop.query().count() == 1
    assert other.delete() and ShopItem.query().count() == 0


def test_models_without_dependents_delete_in_one_statement(db, library):
    with counting(db) as seen:
        Author.find(library["authors"][1].id).delete()
        Author.query().where({"name": "Le Guin"}).delete()
    assert len(writes(seen)) == 2


def test_dependent_cycle_is_schema_error(db, fresh):
    class Node(Model):
        __table_name__ = "as_nodes"
        id: int | None = None
        node_id: int | None = None
        children = has_many("Node", dependent="delete")

    fresh(Node)
    root = Node.create()
    with pytest.raises(SchemaError, match=r"cycle: Node\.children -> Node\.children"):
        root.delete()
    assert Node.query().count() == 1


# -- graph insert ----------------------------------------------------------------------------
class Writer(Model):
    __table_name__ = "as_writers"

    id: int | None = None
    name: Name
    novels = has_many("Novel")
    bio = has_one("Bio")


class Novel(Model):
    __table_name__ = "as_novels"

    id: int | None = None
    writer_id: int | None = None
    title: Name
    writer = belongs_to("Writer")
    genres = has_many("Genre", through="NovelGenre")


class NovelGenre(Model):
    __table_name__ = "as_novel_genres"

    id: int | None = None
    novel_id: int
    genre_id: int


class Genre(Model):
    __table_name__ = "as_genres"

    id: int | None = None
    label: Annotated[str, Field(max_length=40), Col(unique=True)]


class Bio(Model):
    __table_name__ = "as_bios"

    id: int | None = None
    writer_id: int | None = None
    text: Name = ""


GRAPH = (Writer, Novel, NovelGenre, Genre, Bio)


def test_graph_insert_sets_keys_level_by_level(db, fresh):
    fresh(*GRAPH)
    shared = Genre(label="sf")
    writers = [Writer(name=f"w{i}") for i in range(3)]
    for i, writer in enumerate(writers):
        writer.novels = [Novel(title=f"n{i}{j}") for j in range(i)]
        for novel in writer.novels:
            novel.genres = [shared, Genre(label=novel.title)]
    writers[0].bio = Bio(text="first")
    assert Writer.batch_insert(writers, include=["novels", "novels.genres", "bio"]) == 3
    assert all(not w.is_new_record for w in writers) and shared.id is not None
    loaded = Writer.query().order_by("id").preload("novels.genres", "bio").all()
    assert [[n.title for n in w.novels] for w in loaded] == [[], ["n10"], ["n20", "n21"]]
    assert [sorted(g.label for g in n.genres) for n in loaded[2].novels] == [
        ["n20", "sf"], ["n21", "sf"]]
    assert loaded[0].bio.text == "first" and loaded[1].bio is None
    assert Genre.query().count() == 4  # the shared genre once
    assert NovelGenre.query().count() == 6


def test_graph_insert_of_parents_first_each_shared_parent_once(db, fresh):
    fresh(*GRAPH)
    saved = Writer.create(name="saved")
    new = Writer(name="new")
    novels = [Novel(title="a"), Novel(title="b"), Novel(title="c")]
    novels[0].writer = new
    novels[1].writer = new
    novels[2].writer = saved  # linked, not inserted again
    assert Novel.batch_insert(novels, include=["writer"]) == 3
    assert Writer.query().count() == 2
    assert [n.writer_id for n in novels] == [new.id, new.id, saved.id]


def test_graph_links_saved_children(db, fresh):
    fresh(*GRAPH)
    old = Writer.create(name="old")
    moved = Novel.create(title="moved", writer_id=old.id)
    moved.title = "retitled"  # its own change: linked only, not written
    writer = Writer(name="new")
    writer.novels = [moved, Novel(title="fresh")]
    Writer.batch_insert([writer], include=["novels"])
    assert Novel.query().count() == 2
    assert {n.title for n in Writer.find(writer.id).novels} == {"moved", "fresh"}
    assert Writer.find(old.id).novels == []
    assert moved.writer_id == writer.id and moved.changed_fields == {"title"}


def test_graph_of_a_saved_parent_inserts_only_its_new_children(db, fresh):
    fresh(*GRAPH)
    saved = Writer.create(name="saved")
    saved.name = "renamed"  # not written: a graph insert inserts, it does not save
    saved.novels = [Novel(title="n1"), Novel(title="n2")]
    saved.bio = Bio(text="b")
    with counting(db) as seen:
        assert Writer.batch_insert([saved], include=["novels", "bio"]) == 0
    assert not [s for s in seen if "as_writers" in s and not s.lstrip().startswith("SELECT")]
    assert Writer.find(saved.id).name == "saved" and saved.changed_fields == {"name"}
    assert [(n.writer_id, n.is_new_record) for n in saved.novels] == [(saved.id, False)] * 2
    loaded = Writer.query().preload("novels", "bio").find(saved.id)
    assert sorted(n.title for n in loaded.novels) == ["n1", "n2"] and loaded.bio.text == "b"


def test_graph_of_new_children_links_saved_parents_unchanged(db, fresh):
    fresh(*GRAPH)
    saved = Writer.create(name="saved")
    saved.name = "renamed"
    novels = [Novel(title="a", writer=saved), Novel(title="b", writer=Writer(name="new"))]
    assert Novel.batch_insert(novels, include=["writer"]) == 2
    assert Writer.query().count() == 2 and Writer.find(saved.id).name == "saved"
    assert saved.changed_fields == {"name"}
    assert [n.writer_id for n in novels] == [saved.id, novels[1].writer.id]


def test_graph_through_a_saved_record_links_each_pair_once(db, fresh):
    fresh(*GRAPH)
    novel = Novel.create(title="saved")
    old, other = Genre.create(label="old"), Genre.create(label="other")
    NovelGenre.create(novel_id=novel.id, genre_id=old.id)
    novel = Novel.query().preload("genres").find(novel.id)
    novel.genres = [*novel.genres, other, Genre(label="new")]  # old is linked already
    assert Novel.batch_insert([novel], include=["genres"]) == 0
    assert sorted(g.label for g in Novel.find(novel.id).genres) == ["new", "old", "other"]
    assert NovelGenre.query().count() == 3 and Genre.query().count() == 3
    fresh_novel = Novel(title="new", genres=[old, old])  # a new record: its pairs are new
    Novel.batch_insert([fresh_novel], include=["genres"])
    assert [g.label for g in Novel.find(fresh_novel.id).genres] == ["old"]


def test_graph_rollback_puts_saved_and_new_records_back(db, fresh):
    fresh(*GRAPH)
    old = Writer.create(name="old")
    moved = Novel.create(title="moved", writer_id=old.id)
    writer = Writer(name="new", novels=[moved, Novel(title="fresh")])
    with pytest.raises(RuntimeError):
        with Transaction():
            Writer.batch_insert([writer], include=["novels"])
            assert moved.writer_id == writer.id
            raise RuntimeError("the caller's transaction fails after the graph")
    assert (moved.writer_id, moved.changed_fields, moved.is_new_record) == (old.id, set(), False)
    assert (writer.id, writer.is_new_record) == (None, True)
    assert (writer.novels[1].id, writer.novels[1].writer_id) == (None, None)
    assert Novel.find(moved.id).writer_id == old.id and Writer.query().count() == 1
    Genre.create(label="taken")
    writer.novels[1].genres = [Genre(label="taken")]
    with pytest.raises(UniqueViolation):  # the graph itself fails, after relinking `moved`
        Writer.batch_insert([writer], include=["novels", "novels.genres"])
    assert (moved.writer_id, moved.changed_fields) == (old.id, set())
    assert Novel.find(moved.id).writer_id == old.id and Writer.query().count() == 1


# -- relations as constructor keywords ---------------------------------------------------
def test_relations_as_constructor_and_model_validate_keywords(db, fresh):
    fresh(*GRAPH)
    writer = Writer(
        name="w", novels=[Novel(title="a"), {"title": "b", "genres": [{"label": "g"}]}],
        bio={"text": "hi"},
    )
    assert [type(n) for n in writer.novels] == [Novel, Novel]
    assert writer.novels[1].genres[0].label == "g" and writer.bio.text == "hi"
    assert writer.model_dump() == {"id": None, "name": "w"}
    Writer.batch_insert([writer], include=["novels", "novels.genres", "bio"])
    loaded = Writer.query().preload("novels.genres", "bio").find(writer.id)
    assert sorted(n.title for n in loaded.novels) == ["a", "b"] and loaded.bio.text == "hi"
    assert [g.label for n in loaded.novels for g in n.genres] == ["g"]
    # as assignment after construction: keys set from the side that has one
    novel = Novel(title="c", writer=loaded)
    assert novel.writer is loaded and novel.writer_id == loaded.id
    keyed = Writer(id=41, name="k", novels=[{"title": "e"}])
    assert keyed.novels[0].writer_id == 41
    built = Writer.model_validate({"name": "v", "novels": [{"title": "d"}], "bio": None})
    assert [n.title for n in built.novels] == ["d"] and built.bio is None
    assert Writer.model_validate({"name": "plain"}).name == "plain"
    parsed = Writer.model_validate_json(
        '{"name": "j", "novels": [{"title": "t", "genres": [{"label": "g"}]}], "bio": null}')
    assert parsed.novels[0].genres[0].label == "g" and parsed.bio is None
    with pytest.raises(pydantic.ValidationError) as info:
        Writer.model_validate_json(b'{"name": "j", "novels": [{"title": 5}]}')
    assert [e["loc"] for e in info.value.errors()] == [("novels", 0, "title")]
    with pytest.raises(pydantic.ValidationError, match="json_invalid"):
        Writer.model_validate_json('{"name": "j", "novels": [')


def test_model_construct_sets_relations_given_as_keywords(db, fresh):
    """model_construct validates nothing, yet a relation given to it is set (as assigning it
    would: the keys that follow set), not silently dropped; a value of the wrong kind is
    refused as an assignment refuses it."""
    fresh(*GRAPH)
    writer = Writer.model_construct(name="m", novels=[Novel(title="a"), Novel(title="b")],
                                    bio=Bio(text="hi"))
    assert [n.title for n in writer.novels] == ["a", "b"] and writer.bio.text == "hi"
    assert writer.model_dump() == {"id": None, "name": "m"}
    Writer.batch_insert([writer], include=["novels", "bio"])
    loaded = Writer.query().preload("novels", "bio").find(writer.id)
    assert sorted(n.title for n in loaded.novels) == ["a", "b"] and loaded.bio.text == "hi"
    keyed = Writer.model_construct(id=7, name="k", novels=[Novel(title="c")])
    assert keyed.novels[0].writer_id == 7
    assert Novel.model_construct(title="d", writer=keyed).writer_id == 7
    with pytest.raises(ValidationError, match=r"Writer\.novels\[0\]: expected Novel"):
        Writer.model_construct(name="x", novels=[{"title": "e"}])
    assert Writer.model_construct(name="plain").name == "plain"


def test_constructor_keywords_refuse_bad_values_in_one_error(db, fresh):
    fresh(*GRAPH)
    with pytest.raises(pydantic.ValidationError) as info:
        Writer(name="x" * 50, novels=[{"title": 5}, Genre(label="no"), {"titel": "t"}], bio=[1])
    assert {e["loc"] for e in info.value.errors()} == {
        ("name",), ("novels", 0, "title"), ("novels", 1), ("novels", 2, "titel"), ("bio",)}
    with pytest.raises(pydantic.ValidationError, match="novels"):
        Writer(name="x", novels=None)
    with pytest.raises(pydantic.ValidationError, match=r"novels\.0\.genres\.0\.label"):
        Writer.model_validate({"name": "x", "novels": [{"title": "t", "genres": [{"label": 1}]}]})
    # the batch paths still refuse a relation's key they were not told to include
    with pytest.raises(UnknownColumnError, match="novels"):
        Writer.batch_insert_from_dicts([{"name": "x", "novels": [{"title": "t"}]}])
    assert Writer.query().count() == 0 and Novel.query().count() == 0


def test_graph_from_nested_dicts(db, fresh):
    fresh(*GRAPH)
    rows = [
        {"name": "x", "novels": [{"title": "t1", "genres": [{"label": "g"}]}],
         "bio": {"text": "b"}},
        {"name": "y"},
    ]
    built = Writer.batch_insert_from_dicts(rows, include=["novels.genres", "bio"])
    assert isinstance(built, list) and [w.name for w in built] == ["x", "y"]
    assert built[0].novels[0].writer_id == built[0].id and built[0].bio.writer_id == built[0].id
    assert [g.label for g in Novel.query().first().genres] == ["g"]
    assert Writer.batch_insert_from_dicts(
        [{"name": "z", "novels": []}], include=["novels"], return_records=False
    ) == 1


def test_graph_validation_names_the_path_before_anything_is_written(db, fresh):
    fresh(*GRAPH)
    writers = [Writer(name="ok"), Writer(name="bad")]
    writers[1].novels = [Novel(title="fine"), Novel.model_construct(title="x" * 50)]
    with pytest.raises(ValidationError, match=r"record 1 -> novels\[1\]: title: "):
        Writer.batch_insert(writers, include=["novels"])
    rows = [{"name": "a", "novels": [{"title": "t"}, {"title": 5}]}]
    with pytest.raises(ValidationError, match=r"record 0 -> novels\[1\]: title: "):
        Writer.batch_insert_from_dicts(rows, include=["novels"])
    with pytest.raises(UnknownColumnError, match=r"record 0 -> novels\[0\]: .*'titel'"):
        Writer.batch_insert_from_dicts([{"name": "a", "novels": [{"titel": "t"}]}],
                                       include=["novels"])
    with pytest.raises(QueryError, match="include: Writer has no relation 'books'"):
        Writer.batch_insert(writers, include=["books"])
    assert Writer.query().count() == 0 and all(w.id is None for w in writers)


def test_graph_refused_at_a_deep_level_names_every_path_and_keeps_the_outer_work(db, fresh):
    """Without hooks each level validates its chunks as it writes them: an invalid genre
    below writers and novels already sent rolls back the graph's rows only (an outer
    transaction's own work stays), puts every record back and names every invalid record of
    the graph by its path."""
    fresh(*GRAPH)
    writers = [Writer(name=f"w{i}") for i in range(3)]
    for i, writer in enumerate(writers):
        writer.novels = [Novel(title=f"n{i}{j}") for j in range(2)]
    writers[0].novels[0].genres = [Genre.model_construct(label="h" * 41), Genre(label="ok")]
    writers[2].novels[1].genres = [Genre.model_construct(label="g" * 41)]
    writers[1].novels[0].title = "fine"
    with Transaction():
        Writer.create(name="kept")
        with pytest.raises(ValidationError) as refused:
            Writer.batch_insert(writers, include=["novels", "novels.genres"])
    message = str(refused.value)
    assert "record 0 -> novels[0] -> genres[0]: label: " in message
    assert "record 2 -> novels[1] -> genres[0]: label: " in message
    assert "nothing was written" in message and "genres[1]" not in message
    assert [w.name for w in Writer.query().all()] == ["kept"]
    assert Novel.query().count() == 0 and Genre.query().count() == 0
    assert all(w.id is None and w.is_new_record for w in writers)
    assert all(n.id is None and n.writer_id is None and n.is_new_record
               for w in writers for n in w.novels)
    writers[0].novels[0].genres[0].label = "h"
    writers[2].novels[1].genres[0].label = "g"
    assert Writer.batch_insert(writers, include=["novels", "novels.genres"]) == 3
    assert sorted(g.label for g in Genre.query().all()) == ["g", "h", "ok"]


class HookedWriter(Model):
    __table_name__ = "as_hooked_writers"

    id: int | None = None
    name: Name
    novels = has_many("Novel", foreign_key="writer_id")

    def before_save(self) -> None:
        HOOKS_RAN.append(self.name)


HOOKS_RAN: list[str] = []


def test_graph_with_hooks_is_validated_before_any_hook_runs(db, fresh):
    """A graph whose models have hooks is validated whole before anything is written: a
    refused graph runs no hook."""
    fresh(HookedWriter, *GRAPH)
    HOOKS_RAN.clear()
    writer = HookedWriter(name="w")
    writer.novels = [Novel(title="a"), Novel.model_construct(title="x" * 50)]
    with pytest.raises(ValidationError, match=r"record 0 -> novels\[1\]: title: "):
        HookedWriter.batch_insert([writer], include=["novels"])
    assert HOOKS_RAN == [] and HookedWriter.query().count() == 0 and writer.id is None
    writer.novels[1].title = "b"
    HookedWriter.batch_insert([writer], include=["novels"])
    assert HOOKS_RAN == ["w"] and [n.writer_id for n in writer.novels] == [writer.id] * 2


def test_graph_failure_rolls_everything_back_and_puts_records_back(db, fresh):
    fresh(*GRAPH)
    Genre.create(label="taken")
    writer = Writer(name="w")
    writer.novels = [Novel(title="a"), Novel(title="b")]
    writer.novels[1].genres = [Genre(label="taken")]  # a unique key already there
    with pytest.raises(UniqueViolation):
        Writer.batch_insert([writer], include=["novels", "novels.genres"])
    assert Writer.query().count() == 0 and Novel.query().count() == 0
    assert writer.id is None and writer.is_new_record
    assert [(n.id, n.writer_id, n.is_new_record) for n in writer.novels] == [
        (None, None, True), (None, None, True)]
    writer.novels[1].genres = [Genre(label="free")]
    Writer.batch_insert([writer], include=["novels", "novels.genres"])
    assert Novel.query().count() == 2 and writer.novels[0].writer_id == writer.id


class Shelf(Model):
    __table_name__ = "as_shelves"

    id: int | None = None
    name: str
    boxes = has_many("Box")


class Box(Model):
    __table_name__ = "as_boxes"

    id: int | None = None
    shelf_id: int | None = None
    #: References as_labels under a deferred constraint: only the COMMIT checks it.
    label_id: int | None = None


@pytest.mark.backends("sqlite", "postgresql")
def test_graph_whose_commit_is_refused_puts_every_level_back(db):
    """The graph's own transaction marks its levels' records only once it commits: a COMMIT
    refused (a deferred constraint) after every level was written puts them all back."""
    with db.engine.begin() as conn:
        for table in ("as_boxes", "as_shelves", "as_labels"):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql("CREATE TABLE as_labels (id BIGINT PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE as_shelves (id BIGSERIAL PRIMARY KEY, name TEXT)"
                             if db.engine.dialect.name == "postgresql" else
                             "CREATE TABLE as_shelves (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql(
            "CREATE TABLE as_boxes (id {} PRIMARY KEY, shelf_id BIGINT, label_id BIGINT "
            "REFERENCES as_labels (id) DEFERRABLE INITIALLY DEFERRED)".format(
                "BIGSERIAL" if db.engine.dialect.name == "postgresql" else "INTEGER")
        )
        conn.exec_driver_sql("INSERT INTO as_labels (id) VALUES (1)")
    shelves = [Shelf(name=f"s{i}", boxes=[Box(label_id=1), Box(label_id=1)]) for i in range(3)]
    shelves[2].boxes[1].label_id = 99  # no such label: refused at COMMIT
    with pytest.raises(ForeignKeyViolation, match="commit failed"):
        Shelf.batch_insert(shelves, include=["boxes"])
    boxes = [box for shelf in shelves for box in shelf.boxes]
    assert [(s.id, s.is_new_record) for s in shelves] == [(None, True)] * 3
    assert [(b.id, b.shelf_id, b.is_new_record) for b in boxes] == [(None, None, True)] * 6
    assert Shelf.query().count() == 0 and Box.query().count() == 0
    shelves[2].boxes[1].label_id = 1
    assert Shelf.batch_insert(shelves, include=["boxes"]) == 3
    assert all(not r.is_new_record and not r.changed_fields for r in [*shelves, *boxes])
    assert [b.shelf_id for b in boxes] == [s.id for s in shelves for _ in range(2)]
    assert Box.query().where({"shelf_id": shelves[1].id}).count() == 2
    with db.engine.begin() as conn:
        for table in ("as_boxes", "as_shelves", "as_labels"):
            conn.exec_driver_sql(f"DROP TABLE {table}")


def test_readme_associations_block_runs(tmp_path):
    """The README's Associations example runs as written (after the tour, on its connection;
    alone it gets one of its own)."""
    import os
    import pathlib
    import re
    import subprocess
    import sys

    root = pathlib.Path(__file__).parent.parent
    readme = (root / "README.md").read_text()
    section = readme.split("## Associations\n", 1)[1]
    block = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    script = tmp_path / "associations.py"
    script.write_text('import activerecord\nactiverecord.connect("sqlite://")\n' + block)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr


def test_constructor_keywords_keep_a_validators_own_error():
    class Sack(Model):
        __table_name__ = "as_sacks"
        id: int | None = None
        items = has_many("SackItem")

    class SackItem(Model):
        __table_name__ = "as_sack_items"
        id: int | None = None
        sack_id: int | None = None
        n: int

        @pydantic.field_validator("n")
        @classmethod
        def positive(cls, value: int) -> int:
            if value < 0:
                raise PydanticCustomError("negative", "n is {n}, {braces} kept", {"n": value})
            return value

    with pytest.raises(pydantic.ValidationError) as info:
        Sack(items=[{"n": 1}, {"n": -1}])
    assert [(e["type"], e["loc"], e["msg"]) for e in info.value.errors()] == [
        ("negative", ("items", 1, "n"), "n is -1, {braces} kept")]
