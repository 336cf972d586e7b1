"""Container names: validation and Docker-style generated names."""

import re
import secrets

from engine import errors

VALID_NAME = re.compile(r'^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$')

_LEFT = ('admiring', 'brave', 'clever', 'dazzling', 'eager', 'festive', 'gallant',
         'happy', 'inspiring', 'jolly', 'keen', 'loving', 'modest', 'nifty',
         'optimistic', 'peaceful', 'quirky', 'relaxed', 'serene', 'tender',
         'upbeat', 'vigilant', 'wonderful', 'youthful', 'zealous', 'bold',
         'calm', 'determined', 'elastic', 'focused')
_RIGHT = ('archimedes', 'babbage', 'curie', 'darwin', 'euler', 'franklin',
          'galileo', 'hopper', 'hypatia', 'johnson', 'kepler', 'lovelace',
          'mayer', 'noether', 'ostrom', 'pasteur', 'ramanujan', 'shannon',
          'turing', 'villani', 'wozniak', 'yonath', 'zhukovsky', 'bohr',
          'cerf', 'dijkstra', 'einstein', 'feynman', 'goldberg', 'hamilton')


def validate(name):
    """Return the name without its leading slash, or raise InvalidArgument."""
    if not VALID_NAME.match(name or ''):
        raise errors.InvalidArgument(
            'Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed' % name)
    return name.lstrip('/')


def generate(taken):
    """A free adjective_scientist name; a random suffix once the pairs run short."""
    for _ in range(10):
        name = '%s_%s' % (secrets.choice(_LEFT), secrets.choice(_RIGHT))
        if name not in taken:
            return name
    while True:
        name = '%s_%s%d' % (secrets.choice(_LEFT), secrets.choice(_RIGHT), secrets.randbelow(1000))
        if name not in taken:
            return name
