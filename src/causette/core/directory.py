"""The directory of connected people: who is here, in which rooms, with what profile.

Every node keeps a replica, updated only by presence operations received from the bus, so that
people lists and member counts are answered from memory (no database round trip) and agree
across nodes. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from causette.core.models import Gender, Profile

AGE_BANDS: dict[str, tuple[int, int]] = {
    "18-25": (18, 25),
    "26-35": (26, 35),
    "36-50": (36, 50),
    "51+": (51, 200),
}


@dataclass(frozen=True, slots=True)
class PeopleFilter:
    scope: Literal["site", "room"] = "site"
    room: str = ""
    gender: Gender | None = None
    age_band: str | None = None
    dep: str = ""
    region: str = ""

    def matches(self, p: Profile) -> bool:
        if self.gender is not None and p.gender != self.gender:
            return False
        if self.age_band is not None:
            low, high = AGE_BANDS[self.age_band]
            if not low <= p.age <= high:
                return False
        if self.dep and p.dep != self.dep:
            return False
        return not (self.region and p.region != self.region)


class Directory:
    def __init__(self) -> None:
        self._people: dict[str, Profile] = {}
        self._rooms_of: dict[str, set[str]] = {}
        self._members: dict[str, set[str]] = {}
        #: Which node holds each person's connection ("" when unknown: a single node).
        self._owner: dict[str, str] = {}

    # --- updates (from presence operations) ------------------------------------------------
    def here(self, profile: Profile, rooms: Iterable[str], node: str = "") -> None:
        """The person is connected, in these rooms, held by ``node`` (replaces what was
        known, owner included: the latest node to announce a person holds them)."""
        self.gone(profile.id)
        self._people[profile.id] = profile
        self._owner[profile.id] = node
        joined = set(rooms)
        self._rooms_of[profile.id] = joined
        for room in joined:
            self._members.setdefault(room, set()).add(profile.id)

    def gone(self, person_id: str, node: str = "") -> set[str]:
        """The person is no longer connected; return the rooms they were listed in. With
        ``node``, only if that node still holds them (else nothing changes)."""
        if node and self._owner.get(person_id, node) != node:
            return set()
        self._owner.pop(person_id, None)
        self._people.pop(person_id, None)
        rooms = self._rooms_of.pop(person_id, set())
        for room in rooms:
            members = self._members.get(room)
            if members is not None:
                members.discard(person_id)
                if not members:
                    del self._members[room]
        return rooms

    def join(self, person_id: str, room: str) -> None:
        rooms = self._rooms_of.get(person_id)
        if rooms is None:  # not connected: the next ``here`` carries the rooms
            return
        rooms.add(room)
        self._members.setdefault(room, set()).add(person_id)

    def leave(self, person_id: str, room: str) -> None:
        rooms = self._rooms_of.get(person_id)
        if rooms is not None:
            rooms.discard(room)
        members = self._members.get(room)
        if members is not None:
            members.discard(person_id)
            if not members:
                del self._members[room]

    def replace_node(self, node: str, people: Iterable[tuple[Profile, Iterable[str]]]) -> None:
        """A node's snapshot: exactly ``people`` are held by ``node``. Its people not listed
        are gone; listed people held by another node stay with it (that node announced them
        after this snapshot was taken: a snapshot never takes a person over)."""
        listed = {}
        for profile, rooms in people:
            listed[profile.id] = (profile, rooms)
        for person_id in self.held_by(node):
            if person_id not in listed:
                self.gone(person_id, node)
        for person_id, (profile, rooms) in listed.items():
            owner = self._owner.get(person_id)
            if owner is None or owner == node:
                self.here(profile, rooms, node)

    # --- queries ----------------------------------------------------------------------------
    def owner(self, person_id: str) -> str | None:
        """The node holding the person ("" when unknown), or None when they are not here."""
        return self._owner.get(person_id)

    def held_by(self, node: str) -> list[str]:
        return [person_id for person_id, owner in self._owner.items() if owner == node]

    def get(self, person_id: str) -> Profile | None:
        return self._people.get(person_id)

    def is_here(self, person_id: str) -> bool:
        return person_id in self._people

    def rooms_of(self, person_id: str) -> set[str]:
        return set(self._rooms_of.get(person_id, ()))

    def online_count(self) -> int:
        return len(self._people)

    def counts(self) -> dict[str, int]:
        return {room: len(members) for room, members in self._members.items()}

    def query(
        self,
        flt: PeopleFilter,
        *,
        hidden: frozenset[str] | set[str] = frozenset(),
        near: Profile | None = None,
        limit: int = 300,
    ) -> tuple[list[Profile], int]:
        """People matching the filter, minus ``hidden``; sorted by pseudonym, or with ``near``
        by closeness (same département, then same region, then the rest). Returns the first
        ``limit`` and the total count."""
        if flt.scope == "room":
            ids: Iterable[str] = self._members.get(flt.room, ())
        else:
            ids = self._people.keys()
        found = [
            p
            for pid in ids
            if pid not in hidden and (p := self._people.get(pid)) is not None and flt.matches(p)
        ]
        if near is not None:
            found.sort(
                key=lambda p: (
                    0 if p.id == near.id else 1,
                    0 if p.dep == near.dep else (1 if p.region == near.region else 2),
                    p.name.casefold(),
                )
            )
        else:
            found.sort(key=lambda p: p.name.casefold())
        return found[:limit], len(found)
