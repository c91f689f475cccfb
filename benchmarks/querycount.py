"""Benchmark only: per request, the SQL queries in an ``X-Query-Count`` header, the CPU time of
the thread that served it in ``X-Thread-CPU-ms`` (argon2's second lane runs in a thread of its own
and is not in it: the workers' total CPU comes from ``/proc``), and the CPU of the argon2 hashes
it computed, both lanes, in ``X-Hash-CPU-ms`` (measured with the process's CPU clock around the
hasher: a sync worker runs nothing else meanwhile).

Never in the production settings: ``benchmarks/bench_settings.py`` (the product) and
``benchmarks/floor/settings.py`` (the floor) add it to ``MIDDLEWARE`` for ``make bench``. It
counts with ``connection.execute_wrapper``, so it works with ``DEBUG`` off and costs one function
call a query. It sits first in ``MIDDLEWARE`` and so sees every query of the request, the session
save included.
"""

import time

from django.contrib.auth.hashers import Argon2PasswordHasher
from django.db import connections

from keys.hashers import CSAMArgon2PasswordHasher

_hash_cpu = [0.0]


class _Timed:
    def encode(self, password, salt):
        started = time.process_time()
        try:
            return super().encode(password, salt)
        finally:
            _hash_cpu[0] += time.process_time() - started

    def verify(self, password, encoded):
        started = time.process_time()
        try:
            return super().verify(password, encoded)
        finally:
            _hash_cpu[0] += time.process_time() - started


class TimedArgon2Hasher(_Timed, CSAMArgon2PasswordHasher):
    """The product's hasher (``keys/hashers.py``: its cost, its memory kept between hashes),
    timing its own CPU."""


class TimedStockArgon2Hasher(_Timed, Argon2PasswordHasher):
    """The floor's: Django's own argon2 hasher (a fresh 64 MiB for every hash) at the product's
    cost (time, memory, lanes: whatever ``keys/hashers.py`` says), timing its own CPU."""

    time_cost = CSAMArgon2PasswordHasher.time_cost
    memory_cost = CSAMArgon2PasswordHasher.memory_cost
    parallelism = CSAMArgon2PasswordHasher.parallelism


class QueryCountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = 0
        started = time.thread_time()
        _hash_cpu[0] = 0.0

        def counter(execute, sql, params, many, context):
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        wrappers = [connection.execute_wrapper(counter) for connection in connections.all()]
        for wrapper in wrappers:
            wrapper.__enter__()
        try:
            response = self.get_response(request)
        finally:
            for wrapper in reversed(wrappers):
                wrapper.__exit__(None, None, None)
        response["X-Query-Count"] = str(count)
        response["X-Thread-CPU-ms"] = f"{(time.thread_time() - started) * 1000:.2f}"
        response["X-Hash-CPU-ms"] = f"{_hash_cpu[0] * 1000:.2f}"
        return response
