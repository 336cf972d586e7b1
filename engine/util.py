"""Small helpers shared by the engine's parts."""

import datetime
import hashlib
import json
import os
import secrets
import tempfile


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data, mode=0o644, sync=True):
    """Write bytes to ``path`` so readers see the old or the new file, never half of one."""
    if isinstance(data, str):
        data = data.encode()
    dirname = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(dir=dirname, prefix='.tmp-')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if sync:
        fsync_dir(dirname)


def atomic_write_json(path, obj, mode=0o644, sync=True):
    atomic_write(path, json.dumps(obj, sort_keys=True).encode(), mode, sync)


def read_json(path, default=None):
    try:
        with open(path, 'rb') as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def root_tag(root):
    """Eight hex digits naming the engine at ``root`` on the host: its
    cgroup parent, its default bridge when another engine owns
    novadocker0, its firewall rules."""
    return hashlib.sha256(os.path.abspath(root).encode()).hexdigest()[:8]


def new_id():
    """A 64-hex-digit identifier, like Docker's container and exec IDs."""
    return secrets.token_hex(32)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(ts=None):
    """Docker's timestamp format: RFC 3339 with nanoseconds and a Z."""
    if ts is None:
        ts = utcnow()
    elif isinstance(ts, (int, float)):
        ts = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    ns = ts.microsecond * 1000
    return ts.strftime('%Y-%m-%dT%H:%M:%S') + '.%09dZ' % ns


ZERO_TIME = '0001-01-01T00:00:00Z'


def parse_rfc3339(text):
    """Parse Docker/RFC 3339 timestamps to epoch seconds; the zero time gives 0."""
    if not text or text == ZERO_TIME:
        return 0.0
    return parse_rfc3339_ns(text) / 1e9


def makedirs(path, mode=0o700):
    os.makedirs(path, mode=mode, exist_ok=True)
    return path


def parse_rfc3339_ns(text):
    """Parse an RFC 3339 timestamp (any fraction, Z or offset) to epoch nanoseconds."""
    text = text.strip()
    if text.endswith('Z'):
        text = text[:-1] + '+00:00'
    main, dot, rest = text.partition('.')
    frac = ''
    tz = ''
    if dot:
        i = 0
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac, tz = rest[:i], rest[i:]
    elif len(main) > 19:
        main, tz = main[:19], main[19:]
    dt = datetime.datetime.fromisoformat(main + (tz or '+00:00'))
    return int(dt.timestamp()) * 1_000_000_000 + int((frac + '000000000')[:9] or 0)


def rfc3339_ns(ns):
    """Epoch nanoseconds to Docker's RFC 3339 form with nine fraction digits."""
    secs, frac = divmod(int(ns), 1_000_000_000)
    dt = datetime.datetime.fromtimestamp(secs, datetime.timezone.utc)
    return dt.strftime('%Y-%m-%dT%H:%M:%S') + '.%09dZ' % frac


def parse_time_arg(text):
    """Docker's since/until query values: unix seconds (with fraction) or RFC 3339.

    Returns epoch nanoseconds; empty gives 0.
    """
    if not text:
        return 0
    try:
        secs, _, frac = text.partition('.')
        return int(secs) * 1_000_000_000 + int((frac + '000000000')[:9] or 0)
    except ValueError:
        pass
    try:
        return parse_rfc3339_ns(text)
    except ValueError:
        from engine import errors
        raise errors.InvalidArgument('invalid time value %r: use unix seconds or RFC 3339' % text)
