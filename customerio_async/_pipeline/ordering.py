"""Ordering by key: an operation waits only for earlier, unresolved operations that touch
the same person or object.

``owner[key]`` is the batch holding the key's most recent undecided operation. A new
operation on that key joins that batch if it still takes operations (an open batch, or a
held one with room); if that batch is sealed or on the wire, it goes into a *held* batch that
depends on it and is released when it is decided. An operation touching several keys (a
merge: primary and secondary) waits for every key's batch. Unrelated operations never wait
behind another request: keys with nothing undecided go straight into the open batch.

The hot path (one key, its batch takes operations, or the key is free) is inlined in
:meth:`Pipeline.admit`; this module is the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from .batch import DONE, HELD, Batch

if TYPE_CHECKING:
    from .protocol import Admissible

__all__ = ["Ordering"]


class Ordering:
    """The key → batch map and the placement rules (see the module docstring).

    Args:
        new_held: Creates an empty held batch.
        open_batch: The current open batch with room for ``size`` more bytes (creates one).
        max_ops, max_bytes: Batch limits.
        ordered: ``False`` (``BatchConfig(ordering="none")``): keys are ignored, every
            operation joins the open batch (singles go on their own at once).
        groups: Key groups for operations waiting behind a batch (the bulk share of the
            request slots: each group can leave as its own request when the batch ahead is
            decided).
    """

    __slots__ = (
        "_max_bytes",
        "_max_ops",
        "_new_held",
        "_open_batch",
        "groups",
        "ordered",
        "owner",
    )

    def __init__(
        self,
        *,
        new_held: Callable[[], Batch],
        open_batch: Callable[[int], Batch],
        max_ops: int,
        max_bytes: int,
        ordered: bool = True,
        groups: int = 1,
    ) -> None:
        self.owner: dict[Hashable, Batch] = {}
        self.ordered = ordered
        self.groups = groups
        self._new_held = new_held
        self._open_batch = open_batch
        self._max_ops = max_ops
        self._max_bytes = max_bytes

    def live_owner(self, key: Hashable) -> Batch | None:
        """The batch holding ``key``'s most recent undecided operation, if any."""
        batch = self.owner.get(key)
        if batch is None:
            return None
        batch = batch.root()
        if batch.state == DONE:
            del self.owner[key]
            return None
        return batch

    def has_room(self, batch: Batch, size: int) -> bool:
        """Whether ``batch`` takes one more operation of ``size`` bytes."""
        return (
            batch.accepting
            and batch.count < self._max_ops
            and batch.size + size + 1 <= self._max_bytes
        )

    def place(self, op: Admissible, size: int) -> Batch:
        """The batch ``op`` joins (a single request gets a batch of its own)."""
        if not self.ordered:
            keys: list[Hashable] = []
        elif op.key is not None:
            keys = [op.key, *op.more_keys]
        else:
            keys = list(op.more_keys)
        owners: list[Batch] = []
        for key in keys:
            batch = self.live_owner(key)
            if batch is not None and batch not in owners:
                owners.append(batch)
        if op.single is not None:
            target = self._new_held()
            target.single = op.single
            target.accepting = False
            for owner in owners:
                target.depends_on(owner)
        elif not owners:
            target = self._open_batch(size)
        elif len(owners) == 1:
            first = keys[0] if keys else None
            target = self._after(owners[0], size, hash(first) % self.groups)
        else:
            target = self._new_held()
            for owner in owners:
                target.depends_on(owner)
        for key in keys:
            self.owner[key] = target
        target.keys.extend(keys)
        return target

    def _after(self, owner: Batch, size: int, group: int) -> Batch:
        """The batch for an operation that must follow ``owner``'s operations (``group``:
        its key's group, so operations waiting behind one batch form several batches)."""
        while True:
            if self.has_room(owner, size):
                return owner  # open, or held with room: order within a batch is kept
            nexts = owner.next
            nxt = nexts.get(group) if nexts is not None else None
            if nxt is None or nxt.state != HELD:
                nxt = self._new_held()
                nxt.depends_on(owner)
                owner.next = {**(nexts or {}), group: nxt}
                return nxt
            owner = nxt

    def forget(self, batch: Batch) -> None:
        """``batch`` is decided: its keys are free unless a later batch took them over."""
        owner = self.owner
        for key in batch.keys:
            holder = owner.get(key)
            if holder is batch or (holder is not None and holder.root() is batch):
                del owner[key]
        batch.keys = []
