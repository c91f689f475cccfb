"""Benchmark only: the number of SQL queries of each request in an ``X-Query-Count`` header.

Never in the production settings: ``benchmarks/bench_settings.py`` (the product) and
``benchmarks/floor/settings.py`` (the floor) add it to ``MIDDLEWARE`` for ``make bench``. It
counts with ``connection.execute_wrapper``, so it works with ``DEBUG`` off and costs one function
call a query. It sits first in ``MIDDLEWARE`` and so sees every query of the request, the session
save included.
"""

from django.db import connections


class QueryCountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = 0

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
        return response
