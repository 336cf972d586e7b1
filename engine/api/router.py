"""Map (method, path) to route functions; ``{name}`` and ``{name:.*}`` patterns."""

import re
import urllib.parse

from engine import errors

_PARAM = re.compile(r'\{(\w+)(?::([^}]+))?\}')


class Router:
    def __init__(self):
        self._routes = []

    def add(self, method, pattern, func):
        regex = '^'
        pos = 0
        for m in _PARAM.finditer(pattern):
            regex += re.escape(pattern[pos:m.start()])
            regex += '(?P<%s>%s)' % (m.group(1), m.group(2) or '[^/]+')
            pos = m.end()
        regex += re.escape(pattern[pos:]) + '$'
        self._routes.append((method, re.compile(regex), func))

    def route(self, method, pattern):
        def decorator(func):
            self.add(method, pattern, func)
            return func
        return decorator

    def match(self, method, path):
        allowed = False
        for route_method, regex, func in self._routes:
            m = regex.match(path)
            if not m:
                continue
            if route_method == method or (method == 'HEAD' and route_method == 'GET'):
                params = {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
                return func, params
            allowed = True
        if allowed:
            raise MethodNotAllowed(method, path)
        raise errors.NotFound('page not found')


class MethodNotAllowed(errors.EngineError):
    status = 405

    def __init__(self, method, path):
        super().__init__('method %s not allowed for %s' % (method, path))
