"""Docker image references: parsing, normalisation and display.

The grammar is the one Docker's distribution library documents::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] path-component ["/" path-component]*
    domain     := host [":" port]
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex

A name's first component is a registry domain only when it contains a
``.`` or a ``:``, is ``localhost``, or has an uppercase letter; otherwise the
name lives on Docker Hub (``docker.io``), and a single-component Hub name
lives under ``library/``.
"""

import re

from engine import errors

DEFAULT_DOMAIN = 'docker.io'
LEGACY_DEFAULT_DOMAIN = 'index.docker.io'
OFFICIAL_REPO_PREFIX = 'library/'
DEFAULT_TAG = 'latest'
NAME_TOTAL_LENGTH_MAX = 255

_ALNUM = r'[a-z0-9]+'
_SEPARATOR = r'(?:[._]|__|[-]+)'
_PATH_COMPONENT = _ALNUM + r'(?:' + _SEPARATOR + _ALNUM + r')*'
_DOMAIN_COMPONENT = r'(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
_IPV6 = r'\[(?:[a-fA-F0-9:]+)\]'
_HOST = r'(?:' + _DOMAIN_COMPONENT + r'(?:\.' + _DOMAIN_COMPONENT + r')*|' + _IPV6 + r')'
_DOMAIN = _HOST + r'(?::[0-9]+)?'
_TAG = r'[\w][\w.-]{0,127}'
_DIGEST = r'[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}'
_NAME = (r'(?:' + _DOMAIN + r'/)?' + _PATH_COMPONENT +
         r'(?:/' + _PATH_COMPONENT + r')*')

REFERENCE_RE = re.compile(r'^(' + _NAME + r')(?::(' + _TAG + r'))?(?:@(' + _DIGEST + r'))?$')
TAG_RE = re.compile(r'^' + _TAG + r'$')
DIGEST_RE = re.compile(r'^' + _DIGEST + r'$')
SHA256_RE = re.compile(r'^sha256:[a-f0-9]{64}$')
HEX64_RE = re.compile(r'^[a-f0-9]{64}$')
ID_PREFIX_RE = re.compile(r'^(?:sha256:)?[a-f0-9]{1,64}$')


def _invalid(msg):
    return errors.InvalidArgument(msg)


class Reference(object):
    """A normalised reference: ``domain/path`` plus optional tag and digest."""

    __slots__ = ('domain', 'path', 'tag', 'digest')

    def __init__(self, domain, path, tag=None, digest=None):
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self):
        """The full repository name, e.g. ``docker.io/library/busybox``."""
        return self.domain + '/' + self.path

    def __str__(self):
        s = self.name
        if self.tag:
            s += ':' + self.tag
        if self.digest:
            s += '@' + self.digest
        return s

    def __repr__(self):
        return 'Reference(%r)' % str(self)

    def __eq__(self, other):
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def familiar_name(self):
        """The repository as Docker displays it (``busybox``, ``a/b``, ``localhost:5000/a``)."""
        if self.domain == DEFAULT_DOMAIN:
            if self.path.startswith(OFFICIAL_REPO_PREFIX) and \
                    '/' not in self.path[len(OFFICIAL_REPO_PREFIX):]:
                return self.path[len(OFFICIAL_REPO_PREFIX):]
            return self.path
        return self.name

    def familiar(self):
        """The whole reference as Docker displays it (``busybox:latest``)."""
        s = self.familiar_name()
        if self.tag:
            s += ':' + self.tag
        if self.digest:
            s += '@' + self.digest
        return s

    def with_tag(self, tag):
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest):
        return Reference(self.domain, self.path, None, digest)

    def tagged(self, default=DEFAULT_TAG):
        """Add the default tag when the reference has neither tag nor digest."""
        if self.tag or self.digest:
            return self
        return Reference(self.domain, self.path, default, None)


def _split_domain(name):
    i = name.find('/')
    first = name[:i] if i >= 0 else ''
    if i < 0 or (not any(c in first for c in '.:') and first != 'localhost' and
                 first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        domain, remainder = first, name[i + 1:]
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and '/' not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def validate_digest(digest):
    if not DIGEST_RE.match(digest or ''):
        raise _invalid('invalid digest format')
    algo, _, hexpart = digest.partition(':')
    if algo == 'sha256':
        if not HEX64_RE.match(hexpart):
            raise _invalid('invalid checksum digest length' if
                           len(hexpart) != 64 else 'invalid checksum digest format')
    elif algo == 'sha512':
        if not re.match(r'^[a-f0-9]{128}$', hexpart):
            raise _invalid('invalid checksum digest length')
    else:
        raise _invalid('unsupported digest algorithm')
    return digest


def validate_tag(tag):
    if not isinstance(tag, str) or not TAG_RE.match(tag):
        raise _invalid('invalid tag format')
    return tag


def parse(text, default_tag=False):
    """Parse and normalise a reference, as Docker's ParseNormalizedNamed.

    ``default_tag`` adds ``:latest`` when the text has neither tag nor digest.
    Raises InvalidArgument with Docker's wording on malformed input.
    """
    if not isinstance(text, str) or text == '':
        raise _invalid('invalid reference format: repository name must have '
                       'at least one component')
    if HEX64_RE.match(text):
        raise _invalid('invalid repository name (%s), cannot specify '
                       '64-byte hexadecimal strings' % text)
    m = REFERENCE_RE.match(text)
    if not m:
        if REFERENCE_RE.match(text.lower()):
            raise _invalid('invalid reference format: repository name must be '
                           'lowercase')
        raise _invalid('invalid reference format')
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise _invalid('invalid reference format: repository name must not '
                       'be more than %d characters' % NAME_TOTAL_LENGTH_MAX)
    domain, remainder = _split_domain(name)
    if remainder.lower() != remainder:
        raise _invalid('invalid reference format: repository name must be '
                       'lowercase')
    if not re.match(r'^' + _PATH_COMPONENT + r'(?:/' + _PATH_COMPONENT + r')*$',
                    remainder):
        raise _invalid('invalid reference format')
    if digest:
        validate_digest(digest)
    ref = Reference(domain, remainder, tag, digest)
    if default_tag:
        ref = ref.tagged()
    return ref


def parse_repository(repo):
    """Parse a repository name without tag or digest (for ``docker tag``)."""
    ref = parse(repo)
    if ref.tag or ref.digest:
        raise _invalid('invalid reference format: %s has a tag or digest' % repo)
    return ref


def normalize(text):
    """Return the canonical string of a reference with the default tag added."""
    return str(parse(text, default_tag=True))


def familiar(text):
    """Familiar form of a reference given as text (``busybox:latest``)."""
    return parse(text).familiar()


def familiar_name(text):
    return parse(text).familiar_name()


def is_full_id(text):
    """True for a complete image ID, bare or ``sha256:``-prefixed."""
    return bool(HEX64_RE.match(text) or SHA256_RE.match(text))


def is_id_prefix(text):
    """True when the text could be an (abbreviated) image ID."""
    return bool(ID_PREFIX_RE.match(text or ''))


def full_id(text):
    """``sha256:<hex>`` for a complete ID given with or without the prefix."""
    if HEX64_RE.match(text):
        return 'sha256:' + text
    if SHA256_RE.match(text):
        return text
    raise _invalid('invalid image ID: %s' % text)


def short_id(image_id):
    """Docker's 12-hex-digit short form of an ID."""
    hexpart = image_id.split(':', 1)[-1]
    return hexpart[:12]


def matches_id_prefix(image_id, text):
    """True when ``text`` abbreviates ``image_id`` (with or without sha256:)."""
    if not is_id_prefix(text):
        return False
    if text.startswith('sha256:'):
        return image_id.startswith(text)
    return image_id.startswith('sha256:' + text)
