"""The risk board's local users (password hashes, never passwords) and its session key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from swanwatch.store.base import StoreBase, insert, upsert
from swanwatch.store.tables import BOARD_SECRETS, BOARD_USERS


@dataclass(frozen=True)
class BoardUser:
    """A local user: the name they sign in with, their password's hash, and the owner
    identity (as the accounts source spells owners) that "Mine" shows."""

    name: str
    password_hash: str
    owner: str
    created_at: datetime


class UsersStore(StoreBase):
    """Local users of the board, and the key its sessions are signed with."""

    def save_user(self, user: BoardUser) -> None:
        """Add the user, or replace their hash and owner."""
        row = {
            "name": user.name,
            "password_hash": user.password_hash,
            "owner": user.owner,
            "created_at": user.created_at,
        }
        with self._tx() as conn:
            upsert(conn, BOARD_USERS, [row], ["name"])

    def user(self, name: str) -> BoardUser | None:
        query = select(BOARD_USERS).where(BOARD_USERS.c.name == name)
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else _user(row)

    def users(self) -> list[BoardUser]:
        query = select(BOARD_USERS).order_by(BOARD_USERS.c.name)
        with self._read() as conn:
            return [_user(r) for r in conn.execute(query)]

    def remove_user(self, name: str) -> bool:
        with self._tx() as conn:
            done = conn.execute(BOARD_USERS.delete().where(BOARD_USERS.c.name == name))
        return bool(done.rowcount)

    def board_secret(self, now: datetime) -> str:
        """The board's random session key: made once, then the same for every replica."""
        with self._tx() as conn:
            stmt = (
                insert(conn, BOARD_SECRETS)
                .values(name="session", value=secrets.token_urlsafe(32), created_at=now)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            conn.execute(stmt)
            value = conn.execute(
                select(BOARD_SECRETS.c.value).where(BOARD_SECRETS.c.name == "session")
            ).scalar_one()
        return str(value)


def _user(row: object) -> BoardUser:
    return BoardUser(
        name=row.name,  # type: ignore[attr-defined]
        password_hash=row.password_hash,  # type: ignore[attr-defined]
        owner=row.owner,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
    )
