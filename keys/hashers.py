"""The password hasher: argon2id with a cost chosen by measurement, computed in memory that is
kept for the next hash.

``benchmarks/argon2_cost.py`` on the 2-core reference machine (median of 10 hashes):

==========================  =========
parameters                  time
==========================  =========
t=2, m=19 MiB, p=1 (OWASP)   15 ms
t=2, m=46 MiB, p=1           63 ms
t=3, m=64 MiB, p=2           65 ms   <- chosen
t=2, m=100 MiB, p=8 (Django) 90 ms
t=3, m=64 MiB, p=1          123 ms
==========================  =========

Why t=3, m=64 MiB, p=2: an attacker's cost grows with time x memory (192 MiB-passes, over four
times OWASP's minimum of 38), while two lanes let a 2-core server finish a hash in about 65 ms,
faster than Django's default and well inside a sign-in's budget. That is with two threads, one a
lane; the hash is computed in ``ARGON2_THREADS`` threads (settings, default 1: about 110 ms here).
A server under load has a busy worker on every core: a second thread per hash then only takes a
core from the other worker, and argon2 joins its threads 12 times a hash (t=3 passes of 4
slices), each time leaving a core idle while the slower lane finishes. ``make bench``, 2 sync
workers, app-key activations, median of three runs each way on 2026-12-05: 1.68 cores busy and
10.5 activations/s with two threads, 1.84 and 11.8 with one; the same CPU per hash.

64 MiB per concurrent hash keeps memory bounded (16 simultaneous sign-ins need 1 GiB).
Existing hashes are upgraded on the next successful sign-in when these numbers change (Django's
``must_update``).

The memory is kept. Django's hasher (``argon2.low_level.hash_secret``) lets the argon2 library
``malloc`` its 64 MiB for every hash and ``free`` it afterwards; that size is always a fresh
``mmap``, so each hash first takes 16,384 page faults while the kernel zeroes the pages, and
gives them back at the end. On the 2-core reference machine (a VM) that was a quarter of a
hash's CPU: 182-201 ms a hash (median of 15) with fresh memory, 135-146 ms with the memory kept
(``tests/test_hashers.py`` counts the faults). So the hash is computed here through argon2's
own ``argon2_ctx`` (``argon2.low_level.core``) with memory callbacks that hand it a block from a
small pool and take it back. The cost parameters, the result and the encoded string are the
same as Django's (tested both ways); argon2 still wipes the memory before it calls the free
callback (its ``clear_internal_memory``), so no password-derived block stays in the pool. A
worker keeps at most ``POOL_SIZE`` blocks (64 MiB each) resident between hashes: its memory
stays at the peak it reached anyway during the first hash, instead of going up and down.
"""

from __future__ import annotations

import base64
import hmac
import threading
from typing import Any

from argon2 import Parameters, extract_parameters
from argon2.exceptions import HashingError
from argon2.low_level import core, error_to_str, ffi, lib
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.utils.encoding import force_bytes

# Blocks kept between hashes, per process: a sync worker hashes one password at a time; a
# threaded server that hashes more at once allocates the extra blocks for that hash only.
POOL_SIZE = 1

_lock = threading.Lock()
_pool: dict[int, list[Any]] = {}
_lent: dict[int, Any] = {}
_new_block = ffi.new_allocator(should_clear_after_alloc=False)


def _allocate(memory: Any, size: int) -> int:
    with _lock:
        free = _pool.get(size)
        block = free.pop() if free else None
    if block is None:
        block = _new_block("uint8_t[]", size)
    address = int(ffi.cast("uintptr_t", block))
    with _lock:
        _lent[address] = block
    memory[0] = block
    return lib.ARGON2_OK


def _free(memory: Any, size: int) -> None:
    # argon2 has wiped the block (clear_internal_memory) before it calls this.
    with _lock:
        block = _lent.pop(int(ffi.cast("uintptr_t", memory)), None)
        if block is not None:
            free = _pool.setdefault(size, [])
            if len(free) < POOL_SIZE:
                free.append(block)
    # A block not kept is released when its last reference goes, here.


def _callbacks() -> tuple[Any, Any] | None:
    """The two C callbacks, or None where the system refuses to make them (cffi's callbacks
    need memory that is writable and executable, which some hardened kernels deny): the hasher
    then works as Django's, a fresh block each hash."""
    try:
        return (
            ffi.callback(
                "int(uint8_t **, size_t)", _allocate, error=lib.ARGON2_MEMORY_ALLOCATION_ERROR
            ),
            ffi.callback("void(uint8_t *, size_t)", _free),
        )
    except Exception:  # MemoryError or OSError from libffi's closure allocation
        return None


CALLBACKS = _callbacks()


def threads_for(params: Parameters) -> int:
    """The threads that compute a hash of ``params``: ``ARGON2_THREADS`` (settings), at most
    one a lane. The lanes are a parameter of the hash (its result depends on them); the threads
    are not: any number from 1 to the lanes gives the same bytes."""
    wanted = getattr(settings, "ARGON2_THREADS", 1)
    return max(1, min(int(wanted), params.parallelism))


def raw_hash(password: bytes, salt: bytes, params: Parameters) -> bytes:
    """argon2's raw output for these inputs (``argon2_ctx``), its memory from the pool (from
    ``malloc``, as Django's, where the callbacks could not be made), computed in
    :func:`threads_for` threads."""
    hash_len = params.hash_len
    out = ffi.new("uint8_t[]", hash_len)
    c_password = ffi.new("uint8_t[]", password)
    c_salt = ffi.new("uint8_t[]", salt)
    context = ffi.new(
        "argon2_context *",
        {
            "out": out,
            "outlen": hash_len,
            "pwd": c_password,
            "pwdlen": len(password),
            "salt": c_salt,
            "saltlen": len(salt),
            "secret": ffi.NULL,
            "secretlen": 0,
            "ad": ffi.NULL,
            "adlen": 0,
            "t_cost": params.time_cost,
            "m_cost": params.memory_cost,
            "lanes": params.parallelism,
            "threads": threads_for(params),
            "version": params.version,
            "allocate_cbk": CALLBACKS[0] if CALLBACKS else ffi.NULL,
            "free_cbk": CALLBACKS[1] if CALLBACKS else ffi.NULL,
            "flags": lib.ARGON2_DEFAULT_FLAGS,
        },
    )
    try:
        result = core(context, params.type.value)
        if result != lib.ARGON2_OK:
            raise HashingError(error_to_str(result))
        return bytes(ffi.buffer(out, hash_len))
    finally:
        # The password's copy does not wait for the garbage collector.
        ffi.memmove(c_password, b"\0" * len(password), len(password))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


class CSAMArgon2PasswordHasher(Argon2PasswordHasher):
    algorithm = "argon2"
    time_cost = 3
    memory_cost = 64 * 1024
    parallelism = 2

    def encode(self, password: str, salt: str) -> str:
        params = self.params()
        salt_bytes = force_bytes(salt)
        digest = raw_hash(force_bytes(password), salt_bytes, params)
        # argon2's own encoding (encode_string): what argon2.low_level.hash_secret returns.
        return (
            f"{self.algorithm}$argon2{params.type.name.lower()}"
            f"$v={params.version}"
            f"$m={params.memory_cost},t={params.time_cost},p={params.parallelism}"
            f"${_b64(salt_bytes)}${_b64(digest)}"
        )

    def verify(self, password: str, encoded: str) -> bool:
        algorithm, rest = encoded.split("$", 1)
        if algorithm != self.algorithm:
            raise ValueError(f"not an {self.algorithm} hash")
        try:
            params = extract_parameters("$" + rest)
            _variety, version, _costs, b64salt, b64hash = rest.split("$")
            expected = _unb64(b64hash)
            salt = _unb64(b64salt)
        except Exception:  # not the shape argon2 writes: Django's own path says what it is
            return super().verify(password, encoded)
        if version != f"v={params.version}" or len(expected) != params.hash_len:
            return super().verify(password, encoded)
        try:
            digest = raw_hash(force_bytes(password), salt, params)
        except HashingError:  # parameters argon2 refuses (checked before any memory is taken)
            return super().verify(password, encoded)
        return hmac.compare_digest(digest, expected)
