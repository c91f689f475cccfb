"""The password hasher computes Django's argon2 hash in memory it keeps (keys/hashers.py)."""

import resource
import threading

import pytest
from argon2.exceptions import HashingError
from argon2.low_level import ffi
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, make_password

from keys import hashers
from keys.hashers import CSAMArgon2PasswordHasher, raw_hash

PASSWORDS = ["Correct-Horse-9x", "", "é€漢字🔑 spaced out", "x" * 1000, "pass$word$with$dollars"]


class StockAtOurCost(Argon2PasswordHasher):
    """Django's own hasher with the product's parameters."""

    time_cost = CSAMArgon2PasswordHasher.time_cost
    memory_cost = CSAMArgon2PasswordHasher.memory_cost
    parallelism = CSAMArgon2PasswordHasher.parallelism


class DjangoDefaults(Argon2PasswordHasher):
    """Django's default cost (t=2, 100 MiB, 8 lanes): a hash stored before ours."""


class Small(Argon2PasswordHasher):
    time_cost, memory_cost, parallelism = 1, 1024, 1


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_encoded_hash_is_django_s_byte_for_byte(password):
    ours, stock = CSAMArgon2PasswordHasher(), StockAtOurCost()
    salt = ours.salt()
    encoded = ours.encode(password, salt)
    assert encoded == stock.encode(password, salt)
    assert encoded.startswith("argon2$argon2id$v=19$m=65536,t=3,p=2$")
    assert stock.verify(password, encoded)
    assert ours.verify(password, encoded)
    assert not ours.verify(password + "!", encoded)


@pytest.mark.parametrize("other", [StockAtOurCost, DjangoDefaults, Small])
def test_hashes_made_by_django_verify_and_wrong_passwords_do_not(other):
    ours = CSAMArgon2PasswordHasher()
    encoded = other().encode("Correct-Horse-9x", ours.salt())
    assert ours.verify("Correct-Horse-9x", encoded)
    assert not ours.verify("correct-horse-9x", encoded)
    # A hash of another cost is upgraded at the next sign-in, as with Django's hasher.
    assert ours.must_update(encoded) == (other is not StockAtOurCost)


def test_other_argon2_varieties_and_odd_strings_behave_as_with_django():
    ours, stock = CSAMArgon2PasswordHasher(), StockAtOurCost()
    import argon2

    argon2i = "argon2" + argon2.PasswordHasher(
        time_cost=1, memory_cost=1024, parallelism=1, type=argon2.Type.I
    ).hash("Correct-Horse-9x")
    assert ours.verify("Correct-Horse-9x", argon2i)
    assert not ours.verify("other", argon2i)
    for odd in ("argon2$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$", "argon2$nonsense"):
        try:
            expected = stock.verify("Correct-Horse-9x", odd)
        except Exception as error:  # compared below, whatever it is
            with pytest.raises(type(error)):
                ours.verify("Correct-Horse-9x", odd)
        else:
            assert ours.verify("Correct-Horse-9x", odd) == expected


def test_through_django_s_api_with_the_project_settings():
    encoded = make_password("Correct-Horse-9x")
    assert encoded.startswith("argon2$argon2id$v=19$m=65536,t=3,p=2$")
    assert check_password("Correct-Horse-9x", encoded)
    assert not check_password("Correct-Horse-9", encoded)


def test_the_memory_is_kept_a_second_hash_takes_no_page_faults():
    ours, stock = CSAMArgon2PasswordHasher(), StockAtOurCost()
    salt = ours.salt()
    ours.encode("warm-up", salt)
    stock.encode("warm-up", salt)
    before = faults()
    stock.encode("Correct-Horse-9x", salt)
    fresh = faults() - before
    before = faults()
    ours.encode("Correct-Horse-9x", salt)
    kept = faults() - before
    pages = CSAMArgon2PasswordHasher.memory_cost * 1024 // resource.getpagesize()
    assert fresh >= pages * 0.9, fresh  # Django's: every page of the 64 MiB, every time
    assert kept < pages * 0.05, kept


def test_the_kept_memory_holds_nothing_of_the_password_after_a_hash():
    ours = CSAMArgon2PasswordHasher()
    ours.encode("Correct-Horse-9x", ours.salt())
    size = CSAMArgon2PasswordHasher.memory_cost * 1024
    pooled = hashers._pool[size]
    assert len(pooled) == hashers.POOL_SIZE
    assert not hashers._lent
    memory = ffi.buffer(pooled[0])
    assert len(memory) == size
    assert memory[:].count(0) == size  # argon2 wiped it before handing it back


def test_concurrent_hashes_are_right_and_the_pool_stays_bounded():
    ours = CSAMArgon2PasswordHasher()
    salt = ours.salt()
    expected = {p: StockAtOurCost().encode(p, salt) for p in ("a-1", "b-2", "c-3", "d-4")}
    results: dict[str, str] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(len(expected))

    def run(password: str) -> None:
        try:
            start.wait()
            results[password] = ours.encode(password, salt)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(p,)) for p in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == expected
    assert not hashers._lent
    assert all(len(blocks) <= hashers.POOL_SIZE for blocks in hashers._pool.values())


def test_without_the_callbacks_the_same_hash_in_fresh_memory(monkeypatch):
    """Where the system refuses cffi's callbacks (keys.hashers.CALLBACKS is None), argon2
    allocates its memory itself, as with Django's hasher: the same strings."""
    monkeypatch.setattr(hashers, "CALLBACKS", None)
    ours, stock = CSAMArgon2PasswordHasher(), StockAtOurCost()
    salt = ours.salt()
    before = faults()
    encoded = ours.encode("Correct-Horse-9x", salt)
    pages = CSAMArgon2PasswordHasher.memory_cost * 1024 // resource.getpagesize()
    assert faults() - before >= pages * 0.9
    assert encoded == stock.encode("Correct-Horse-9x", salt)
    assert ours.verify("Correct-Horse-9x", encoded)
    assert not ours.verify("Correct-Horse-9", encoded)


def test_argon2_s_refusals_are_hashing_errors():
    with pytest.raises(HashingError):
        raw_hash(b"pw", b"short", Small().params())
    assert not hashers._lent


@pytest.mark.parametrize(("setting", "expected"), [(1, 1), (2, 2), (8, 2)])
def test_a_hash_is_computed_in_argon2_threads_settings_says_at_most_one_a_lane(
    settings, monkeypatch, setting, expected
):
    """``ARGON2_THREADS`` reaches argon2's context; the result is the same in one thread or
    two (the lanes, a parameter of the hash, stay 2)."""
    seen = []
    real_core = hashers.core

    def core(context, kind):
        seen.append((context.threads, context.lanes))
        return real_core(context, kind)

    monkeypatch.setattr(hashers, "core", core)
    ours, stock = CSAMArgon2PasswordHasher(), StockAtOurCost()
    salt = ours.salt()
    settings.ARGON2_THREADS = setting
    encoded = ours.encode("Correct-Horse-9x", salt)
    assert ours.verify("Correct-Horse-9x", encoded)
    assert seen == [(expected, 2), (expected, 2)]
    assert encoded == stock.encode("Correct-Horse-9x", salt)


def test_one_thread_by_default(settings):
    """The project's default (the test settings use two: tests/settings.py)."""
    from csam_activation import settings as project_settings

    assert project_settings.ARGON2_THREADS == 1
    del settings.ARGON2_THREADS
    assert hashers.threads_for(CSAMArgon2PasswordHasher().params()) == 1
