"""Rows a transaction wrote, kept loaded until it ends.

The session's identity map holds its objects weakly: code that keeps only an id and asks
``session.get`` for it later reloads a row it wrote a moment ago (a check-in did it 18 times,
about 29% of its time). ``keep`` holds an object for the session's life, so ``session.get``
answers from memory; ``attach_written`` makes a row written by a Core ``INSERT`` (an event)
such an object without reading it back; ``insert_row`` writes a new object that way (one
``INSERT ... RETURNING id``, without the unit of work's flush). ``new_row`` builds a new
object as its model's constructor would, at a fraction of the cost (a check-in makes six).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic_core import PydanticUndefined
from sqlalchemy import insert, inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import instance_state
from sqlmodel import Session, SQLModel

from cxdesk.store.prepared import Prepared

IN_HAND_KEY = "cxdesk_in_hand"
GIVEN_KEY = "cxdesk_given"

Model = TypeVar("Model", bound=SQLModel)


_DEFAULTS: dict[type[Any], tuple[Any, list[tuple[str, Any, Callable[[], Any] | None]]]] = {}
"""Per model, its class manager and each field's default value or factory
(``PydanticUndefined``: required)."""


def new_row(model: type[Model], values: Mapping[str, Any]) -> Model:
    """A new (transient) object of the table ``model`` with ``values``, every other field at
    its model default: what ``model(**values)`` makes (SQLModel does not validate a table
    model's values), without its per-field instrumented assignments. A missing required
    field raises TypeError."""
    found = _DEFAULTS.get(model)
    if found is None:
        found = _DEFAULTS[model] = (inspect(model).class_manager, [
            (name, info.default, info.default_factory)  # type: ignore[misc]
            for name, info in model.model_fields.items()
        ])  # fmt: skip
    manager, defaults = found
    row = manager.new_instance()
    fields = row.__dict__
    for name, default, factory in defaults:
        if name in values:
            fields[name] = values[name]
        elif factory is not None:
            fields[name] = factory()
        elif default is PydanticUndefined:
            raise TypeError(f"{model.__name__} needs {name}")
        else:
            fields[name] = default
    return row


def keep(session: Session, row: Model) -> Model:
    """Hold ``row`` (an object of ``session``) until the session closes; returns it."""
    session.info.setdefault(IN_HAND_KEY, []).append(row)
    return row


def note_given(session: Session, row: SQLModel) -> None:
    """Remember ``row``, an object the caller handed in (the acting user, from another
    session), for ``given_or_get``: what its operation wrote refers to it by id."""
    session.info.setdefault(GIVEN_KEY, {})[(type(row), getattr(row, "id", None))] = row


def given_or_get(session: Session, model: type[Model], row_id: int) -> Model | None:
    """The object of ``model`` with ``row_id`` the caller handed in (``note_given``), else
    ``session.get``'s (the check-in's volunteer is not read back by its workflows)."""
    given: Model | None = session.info.get(GIVEN_KEY, {}).get((model, row_id))
    return given if given is not None else get(session, model, row_id)


def get(session: Session, model: type[Model], row_id: int) -> Model | None:
    """``session.get(model, row_id)``: the loaded object of the session's identity map
    straight (a check-in asks 17 times, about 10 µs each through ``session.get``'s argument
    handling); anything else (not loaded, expired, a subclass) through ``session.get``."""
    found = session.identity_map.get((model, (row_id,), None))
    if found is None or type(found) is not model or instance_state(found).expired:
        return session.get(model, row_id)
    return found


def attach_written(session: Session, model: type[Model], values: dict[str, Any]) -> Model:
    """The row of ``model`` this transaction just wrote with ``values`` (its primary key
    included) as a loaded object of ``session``, kept in hand: no SELECT reads it back."""
    return written(session, new_row(model, values))


_INSERTS: dict[tuple[str, bool], Prepared] = {}
"""Per table, its ``INSERT`` of every column (the id given) or of every column but the id
(``RETURNING`` it): compiled once."""


def insert_row(session: Session, row: Model) -> Model:
    """Write the new object ``row`` (its defaults filled in by its model; its id, if set, taken
    as it is) with one INSERT and make it a loaded object of ``session``, kept in hand, its id
    set: what ``session.add`` and a flush would do for a table with no server-side defaults or
    ORM hooks (a ticket's: ``store.tickets.create_ticket``)."""
    table: Any = row.__table__  # type: ignore[attr-defined]
    given = getattr(row, "id", None) is not None
    statement = _INSERTS.get((table.name, given))
    if statement is None:
        keys = [column.name for column in table.columns if given or column.name != "id"]
        insert_all = insert(table) if given else insert(table).returning(table.c.id)
        statement = _INSERTS[(table.name, given)] = Prepared(insert_all, keys=keys)
    assert statement.keys is not None
    values = new_values(row, statement.keys)
    if given:
        statement.execute(session, values)
    else:
        set_new(row, id=statement.scalar(session, values))
    return written(session, row)


def set_new(row: SQLModel, **values: Any) -> None:
    """Set fields of a new object about to be ``written``: a transient one takes each (no
    listener on it) in its ``__dict__``, as SQLModel's and SQLAlchemy's instrumented assignment
    would put it (``written`` then forgets the change they would have noted); any other object,
    or field, through that assignment."""
    state = instance_state(row)
    transient = state.key is None and state.session_id is None
    manager = state.manager
    fields, fields_set = row.__dict__, row.__pydantic_fields_set__
    for name, value in values.items():
        if transient and not manager[name].dispatch.set:
            fields[name] = value
            fields_set.add(name)
        else:
            setattr(row, name, value)


def new_values(row: Model, names: Sequence[str], prefix: str = "") -> dict[str, Any]:
    """The new object ``row``'s fields ``names`` (each keyed ``prefix`` + its name), as its
    INSERT is given them."""
    fields = row.__dict__  # a new object holds every field (no instrumented reads)
    return {prefix + name: fields[name] if name in fields else getattr(row, name) for name in names}


def written(session: Session, row: Model) -> Model:
    """``row``, just written with its id (by ``insert_row``, or by its caller), as a loaded
    object of ``session``, kept in hand.

    An object of a row written in a savepoint that was rolled back stays in the identity map
    (nothing expires it), and SQLite hands its id to the next row: that one replaces it.

    What ``make_transient_to_detached`` and ``session.add`` do, done directly for an object
    that holds every attribute of a model without relationships, in a session with no attach
    listeners (a check-in attaches seven: through the two calls, a tenth of its time went to
    working out that nothing was unloaded, nothing cascaded and nobody listened); any other
    through the two calls."""
    state = instance_state(row)
    mapper = state.mapper
    attributes = _ATTRIBUTES.get(mapper)
    if attributes is None:
        attributes = _ATTRIBUTES[mapper] = _attributes(mapper)
    listeners = session.dispatch
    if (
        not attributes
        or state.key is not None
        or state.session_id
        or state._deleted
        or not attributes <= state.dict.keys()
        or listeners.before_attach
        or listeners.after_attach
        or listeners.detached_to_persistent
        or state.manager.dispatch.expire  # told of the (no) attributes expired
    ):
        return _written_slowly(session, row)
    state.key = key = (mapper._identity_class, (state.dict["id"],), state.identity_token)
    state._commit_all(state.dict)  # as if just read: every attribute is the row's
    identity_map = session.identity_map
    stale = identity_map.get(key)
    if stale is not None:
        session.expunge(stale)
    session._autobegin_t()
    state._orphaned_outside_of_session = False
    identity_map.add(state)
    state.session_id = session.hash_key
    return keep(session, row)


_ATTRIBUTES: dict[Any, frozenset[str]] = {}
"""Per mapper, its attributes if ``written`` may attach its objects directly (one primary key,
``id``; no relationships, no inheritance), else empty."""


def _attributes(mapper: Any) -> frozenset[str]:
    simple = (
        [column.key for column in mapper.primary_key] == ["id"]
        and not mapper.relationships
        and mapper.inherits is None
        and mapper._identity_class is mapper.class_
    )
    return frozenset(mapper.class_manager) if simple else frozenset()


def _written_slowly(session: Session, row: Model) -> Model:
    make_transient_to_detached(row)  # as if just read: every attribute is the row's
    stale = session.identity_map.get(inspect(row).key)
    if stale is not None:
        session.expunge(stale)
    session.add(row)
    return keep(session, row)
