"""Public ids come from a buffer of the OS's random bytes (decision 11): same shape as before,
never repeated, and never shared with a forked process."""

from __future__ import annotations

import multiprocessing
import re

from causette import ids


def test_public_ids_keep_their_shape_and_do_not_repeat() -> None:
    source = ids.RandomIds()
    made = [source.message_id() for _ in range(3 * ids.RandomBytes.SIZE // 12)]  # refills
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{16}", m) for m in made)
    assert len(set(made)) == len(made)
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", source.person_id())
    assert re.fullmatch(r"[A-Za-z0-9_-]{8}", source.epoch())


def test_the_buffer_hands_out_each_byte_once() -> None:
    pool = ids.RandomBytes()
    taken = b"".join(pool.take(7) for _ in range(ids.RandomBytes.SIZE // 7))
    assert len(taken) == ids.RandomBytes.SIZE // 7 * 7
    # A take that does not fit in what is left gets fresh bytes, not a short answer.
    assert len(pool.take(ids.RandomBytes.SIZE)) == ids.RandomBytes.SIZE


def _child_ids(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put([ids.public_token(12) for _ in range(50)])


def test_a_forked_process_does_not_hand_out_the_parents_ids() -> None:
    ids.public_token(12)  # the parent's buffer is full of bytes not handed out yet
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(timeout=30)
    ours = [ids.public_token(12) for _ in range(50)]
    assert not set(ours) & set(theirs)
