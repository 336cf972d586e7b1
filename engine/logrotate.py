"""Container log options and rotation (Docker's json-file max-size/max-file).

conmon writes the log (k8s-file format) to ``<container>/container.log``.
With ``--log-size-max N`` conmon itself rotates: before a write would take
the file past N bytes it opens ``container.log.tmp`` (O_TRUNC|O_CREAT) and
renames it over ``container.log``.  On its own that drops the old file; we
make it a rotation with hard links:

* every log file gets a second, permanent name ``container.log.<seq>``
  (seq grows with age: higher is newer), so conmon's rename only removes
  the ``container.log`` name of the old file and its data stays;
* the engine pre-creates the next file as ``container.log.<seq+1>`` and
  links it as ``container.log.tmp``: conmon opens that very inode (O_TRUNC
  on an empty file is harmless), so even when the engine reacts late --
  or is not running at all -- the file that was current is kept;
* on every rotation (inotify: IN_MOVED_TO container.log) the engine links
  the new current file if needed, pre-creates the next one and deletes the
  oldest files beyond max-file.

Nothing is lost while the engine keeps up (it has a whole file's worth of
output to react).  While the engine is down conmon still rotates: the
pre-created file keeps one rotation, later rotations drop the file they
replace, so the disk use stays bounded at about (max-file + 1) x max-size
and the newest output survives.  Readers (``engine.logs``) read the files
in sequence order and follow across rotations.
"""

import collections
import errno
import gzip
import os
import re
import shutil
import threading

from oslo_log import log as logging

from engine import conf as conf_mod
from engine import errors

LOG = logging.getLogger(__name__)

LOG_NAME = 'container.log'
TMP_NAME = LOG_NAME + '.tmp'           # conmon's fixed name for the next file
_SEGMENT_RE = re.compile(r'^container\.log\.([0-9]{1,18})(\.gz)?$')
GZ = '.gz'

# Options of Docker's json-file driver: the ones we honour, and the ones
# Docker knows that this engine cannot honour (refused rather than ignored).
SUPPORTED_OPTS = ('max-size', 'max-file', 'compress', 'mode')
UNSUPPORTED_OPTS = ('labels', 'labels-regex', 'env', 'env-regex', 'tag', 'max-buffer-size')
# Docker's other built-in drivers: known names, not offered here.
OTHER_DOCKER_DRIVERS = ('none', 'local', 'syslog', 'journald', 'gelf', 'fluentd',
                        'awslogs', 'splunk', 'etwlogs', 'gcplogs', 'logentries')
LOG_DRIVERS = ('json-file', 'k8s-file')


# -- sizes and options --------------------------------------------------------

_DECIMAL = {'k': 1000, 'm': 1000 ** 2, 'g': 1000 ** 3, 't': 1000 ** 4, 'p': 1000 ** 5}


def parse_size(text):
    """Docker's units.FromHumanSize: '100k', '10m', '1.5g', '20MB', '7' -> bytes.

    Decimal units as Docker (k = 1000), case-insensitive, an optional space
    before the suffix and an optional 'b' or 'ib' after it.
    """
    if not isinstance(text, str):
        raise errors.InvalidArgument('invalid size: %r' % (text,))
    sep = max(text.rfind(ch) for ch in '0123456789. ')
    if sep < 0:
        raise errors.InvalidArgument("invalid size: '%s'" % text)
    if text[sep] == ' ':
        num, suffix = text[:sep], text[sep + 1:]
    else:
        num, suffix = text[:sep + 1], text[sep + 1:]
    if not re.match(r'^[0-9]*\.?[0-9]*$', num) or num in ('', '.'):
        raise errors.InvalidArgument("invalid size: '%s'" % text)
    size = float(num)
    if not suffix:
        return int(size)
    low = suffix.lower()
    if len(low) > 3:
        raise errors.InvalidArgument("invalid suffix: '%s'" % low)
    if low == 'b':
        return int(size)
    mul = _DECIMAL.get(low[0])
    if mul is None or (len(low) == 2 and low[1] != 'b') or (len(low) == 3 and low[1:] != 'ib'):
        raise errors.InvalidArgument("invalid suffix: '%s'" % low)
    return int(size * mul)


def _parse_bool(text):
    # Go's strconv.ParseBool
    if text in ('1', 't', 'T', 'TRUE', 'true', 'True'):
        return True
    if text in ('0', 'f', 'F', 'FALSE', 'false', 'False'):
        return False
    raise errors.InvalidArgument('strconv.ParseBool: parsing "%s": invalid syntax' % text)


def engine_defaults():
    """([engine] log_max_size, log_max_file) as strings for LogConfig.Config."""
    size = conf_mod.engine_option('log_max_size') or ''
    files = conf_mod.engine_option('log_max_file')
    return size.strip(), files


def check_engine_defaults():
    """Refuse a bad [engine] log_max_size / log_max_file at engine start."""
    size, files = engine_defaults()
    if size and size != '0':
        try:
            if parse_size(size) <= 0:
                raise errors.InvalidArgument('must be positive')
        except errors.InvalidArgument as exc:
            raise errors.InvalidArgument('[engine] log_max_size %r: %s' % (size, exc))
    if files is not None and files < 1:
        raise errors.InvalidArgument('[engine] log_max_file must be at least 1')


def validate_log_config(log_config, with_defaults=False):
    """Check HostConfig.LogConfig; return {'Type', 'Config'} (a new dict).

    ``with_defaults`` fills max-size and max-file from the engine options
    when the request gives none, as dockerd merges its daemon log-opts.
    """
    if log_config is None:
        log_config = {}
    if not isinstance(log_config, dict):
        raise errors.InvalidArgument('HostConfig.LogConfig must be a JSON object')
    driver = log_config.get('Type') or 'json-file'
    if not isinstance(driver, str):
        raise errors.InvalidArgument('HostConfig.LogConfig.Type must be a string')
    if driver not in LOG_DRIVERS:
        if driver in OTHER_DOCKER_DRIVERS:
            raise errors.InvalidArgument(
                "log driver '%s' is not supported by this engine; use json-file or "
                "k8s-file" % driver)
        raise errors.InvalidArgument(
            'error looking up logging plugin %s: plugin "%s" not found' % (driver, driver))
    opts = log_config.get('Config') or {}
    if not isinstance(opts, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in opts.items()):
        raise errors.InvalidArgument('HostConfig.LogConfig.Config must map names to strings')
    opts = dict(opts)
    mode = opts.get('mode', '')
    if mode not in ('', 'blocking', 'non-blocking'):
        raise errors.InvalidArgument('logger: logging mode not supported: %s' % mode)
    if mode == 'non-blocking':
        raise errors.InvalidArgument("log opt mode 'non-blocking' is not supported by this "
                                     "engine yet: conmon always blocks the writer")
    for key in opts:
        if key in UNSUPPORTED_OPTS:
            raise errors.InvalidArgument("log opt '%s' is not supported by this engine yet"
                                         % key)
        if key not in SUPPORTED_OPTS:
            raise errors.InvalidArgument("unknown log opt '%s' for %s log driver"
                                         % (key, driver))
    if with_defaults:
        default_size, default_files = engine_defaults()
        if 'max-size' not in opts and default_size and default_size != '0':
            opts['max-size'] = default_size
            if 'max-file' not in opts and default_files:
                opts['max-file'] = str(default_files)
    limits(opts)  # value checks, with Docker's messages
    return {'Type': driver, 'Config': opts}


def limits(opts):
    """(max size in bytes or None, max files) of validated LogConfig.Config."""
    size = None
    if 'max-size' in opts:
        size = parse_size(opts['max-size'])
        if size <= 0:
            raise errors.InvalidArgument('max-size must be a positive number')
        if size >= 1 << 63:  # Docker's int64; conmon's too
            raise errors.InvalidArgument("invalid size: '%s'" % opts['max-size'])
    files = 1
    if 'max-file' in opts:
        text = opts['max-file']
        if not re.match(r'^[+-]?[0-9]{1,18}$', text):
            raise errors.InvalidArgument('strconv.Atoi: parsing "%s": invalid syntax' % text)
        files = int(text)
        if files < 1:
            raise errors.InvalidArgument('max-file cannot be less than 1')
    if 'compress' in opts and _parse_bool(opts['compress']):
        if files == 1 or size is None:
            raise errors.InvalidArgument('compress cannot be true when max-file is less '
                                         'than 2 or max-size is not set')
    return size, files


def compress_of(opts):
    try:
        return _parse_bool(opts.get('compress', 'false'))
    except errors.InvalidArgument:
        return False


def container_limits(host_config):
    """(max size or None, max files) of a stored container's HostConfig."""
    opts = ((host_config or {}).get('LogConfig') or {}).get('Config') or {}
    try:
        return limits(opts)
    except errors.InvalidArgument:
        return None, 1


# -- the files ----------------------------------------------------------------

def _segment_path(directory, seq):
    return os.path.join(directory, '%s.%d' % (LOG_NAME, seq))


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _segments(directory, with_paths=False):
    """{seq: stat} of the numbered log files (regular files only); with
    ``with_paths`` {seq: (path, stat)}.  A file being compressed has both
    names for a moment: the plain one wins."""
    found = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return found
    for name in sorted(names):  # 'N' sorts before 'N.gz'
        m = _SEGMENT_RE.match(name)
        if not m or int(m.group(1)) in found:
            continue
        path = os.path.join(directory, name)
        st = _lstat(path)
        if st is not None and os.path.stat.S_ISREG(st.st_mode):
            found[int(m.group(1))] = (path, st) if with_paths else st
    return found


def open_log_file(path):
    """A log file for reading, gzip-compressed or not; a plain file that
    was compressed since it was listed is read from its .gz."""
    if path.endswith(GZ):
        return gzip.open(path, 'rb')
    try:
        return open(path, 'rb')
    except FileNotFoundError:
        return gzip.open(path + GZ, 'rb')


def compress_file(path):
    """gzip a rotated log file to PATH.gz (atomically), then drop PATH.

    If the file was pruned (max-file) meanwhile, its .gz goes too.
    """
    gz_path = path + GZ
    tmp = gz_path + '.tmp'
    try:
        with open(path, 'rb') as src, open(tmp, 'wb') as raw:
            os.fchmod(raw.fileno(), 0o600)
            with gzip.GzipFile(fileobj=raw, mode='wb', compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    except FileNotFoundError:
        _unlink(tmp)
        return
    os.rename(tmp, gz_path)
    if not os.path.exists(path):
        _unlink(gz_path)  # pruned while we compressed it
        return
    _unlink(path)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def log_files(log_path):
    """The files of a container's log, oldest first: [(path, seq, inode)].

    The last one is the current file (conmon's); files numbered after it
    (the pre-created next one) are left out.  A current file not numbered
    yet is listed under its own name with seq None.
    """
    directory = os.path.dirname(log_path)
    segs = _segments(directory, with_paths=True)
    cur = _lstat(log_path)
    out = []
    seen = set()
    for seq in sorted(segs):
        path, st = segs[seq]
        if st.st_ino in seen:
            continue
        seen.add(st.st_ino)
        out.append((path, seq, st.st_ino))
        if cur is not None and st.st_ino == cur.st_ino:
            return out
    if cur is not None:
        # Not numbered (no rotation, or not adopted yet): newest of all, but
        # the pre-created empty files numbered above the others go.
        out = [f for f in out if _size(f[0])]
        out.append((log_path, None, cur.st_ino))
    return out


def _size(path):
    st = _lstat(path)
    return st.st_size if st is not None else 0


def prepare_start(log_path, max_size):
    """Before conmon starts (``max_size``: the rotation size or None).

    conmon counts the bytes it wrote itself, from zero, whatever the size of
    the file it appends to.  A previous run's file up to half max-size is
    kept current (runs share files, as in Docker, so a crash-looping
    container does not use a file per run; it ends at most 1.5 x max-size);
    a larger one is numbered and its name taken away, so conmon starts a
    new file and the old one is a rotated file.
    """
    directory = os.path.dirname(log_path)
    tmp = os.path.join(directory, TMP_NAME)
    segs = _segments(directory)
    inodes = {st.st_ino for st in segs.values()}
    tmp_st = _lstat(tmp)
    if tmp_st is not None and tmp_st.st_ino not in inodes:
        os.unlink(tmp)  # a half-done rotation of a crashed conmon
    if not max_size:
        return
    cur = _lstat(log_path)
    if cur is None or cur.st_size <= max_size // 2:
        return
    if cur.st_ino not in inodes and cur.st_size:
        os.link(log_path, _segment_path(directory, max(segs or [0]) + 1))
    os.unlink(log_path)


def adopt(log_path, max_file):
    """After a rotation (or at start): number the current file, pre-create
    the next one, delete the oldest beyond ``max_file``.  Safe to run at any
    time, concurrently with conmon (never with itself: one rotator).

    Returns the paths of the rotated files not compressed yet.
    """
    directory = os.path.dirname(log_path)
    tmp = os.path.join(directory, TMP_NAME)
    segs = _segments(directory)
    by_ino = {}
    for seq in sorted(segs):
        by_ino.setdefault(segs[seq].st_ino, seq)
    top = max(segs or [0])
    cur = _lstat(log_path)
    if cur is None:
        return []
    cur_seq = by_ino.get(cur.st_ino)
    if cur_seq is None:
        new = top + 1
        try:
            os.link(log_path, _segment_path(directory, new))
        except FileNotFoundError:
            return []
        st = os.lstat(_segment_path(directory, new))
        if st.st_ino in by_ino:
            # conmon rotated between our stat and link: the name we linked
            # already had a number; drop the duplicate.
            os.unlink(_segment_path(directory, new))
            cur_seq = by_ino[st.st_ino]
        else:
            by_ino[st.st_ino] = new
            segs[new] = st
            cur_seq = top = new
    tmp_st = _lstat(tmp)
    if (tmp_st is not None and tmp_st.st_ino in by_ino and by_ino[tmp_st.st_ino] < cur_seq
            and not tmp_st.st_size):
        # The pre-created file is numbered below a file conmon made while we
        # were late: renumber it (it is empty and unused) above the current.
        old = by_ino[tmp_st.st_ino]
        top += 1
        os.rename(_segment_path(directory, old), _segment_path(directory, top))
        segs[top] = segs.pop(old)
    if tmp_st is None:
        top += 1
        path = _segment_path(directory, top)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            os.close(fd)
            try:
                os.link(path, tmp)
            except FileExistsError:
                os.unlink(path)  # conmon is mid-rotation: next time
        except FileExistsError:
            pass
    # Keep the newest max_file files up to the current one.
    kept = [seq for seq in sorted(segs) if seq <= cur_seq]
    for seq in kept[:-max_file] if max_file > 0 else []:
        _unlink(_segment_path(directory, seq))
        _unlink(_segment_path(directory, seq) + GZ)
    return [_segment_path(directory, seq) for seq in kept[-max_file:]
            if seq < cur_seq and os.path.exists(_segment_path(directory, seq))]


class LogRotator:
    """One thread reacts to conmon's rotations of every watched container;
    another compresses rotated files (compress=true) so a big file never
    delays a rotation."""

    def __init__(self):
        self._lock = threading.Lock()
        self._watches = {}   # wd -> (cid, log_path, max_file, compress)
        self._by_cid = {}    # cid -> wd
        self._inotify = None
        self._thread = None
        self._stopped = False
        self._adopt_lock = threading.Lock()  # adopt() never runs twice at once
        self._compress_cond = threading.Condition(self._lock)
        self._to_compress = collections.OrderedDict()  # path -> None
        self._compressor = None

    def _ensure(self):
        if self._inotify is None:
            import inotify_simple
            self._inotify = inotify_simple.INotify()
            self._thread = threading.Thread(target=self._run, name='log-rotator', daemon=True)
            self._thread.start()

    def prepare_start(self, log_path, max_size):
        """prepare_start() of a container about to start, never while a
        late rotation event of its previous run is being handled."""
        with self._adopt_lock:
            prepare_start(log_path, max_size)

    def watch(self, cid, log_path, host_config):
        """Follow the rotations of a started container's log."""
        import inotify_simple
        opts = ((host_config or {}).get('LogConfig') or {}).get('Config') or {}
        _, max_file = container_limits(host_config)
        entry = (cid, log_path, max_file, compress_of(opts))
        with self._lock:
            if self._stopped:
                return
            self._ensure()
            try:
                wd = self._inotify.add_watch(os.path.dirname(log_path),
                                             inotify_simple.flags.MOVED_TO)
            except OSError as exc:
                LOG.warning('cannot watch the log of %s: %s', cid[:12], exc)
                return
            self._watches[wd] = entry
            self._by_cid[cid] = wd
        self._adopt(*entry)

    def unwatch(self, cid):
        with self._lock:
            wd = self._by_cid.pop(cid, None)
            entry = self._watches.pop(wd, None) if wd is not None else None
            if wd is not None and self._inotify is not None:
                try:
                    self._inotify.rm_watch(wd)
                except OSError:
                    pass  # the directory is gone already
        if entry is not None:
            self._adopt(*entry)

    def _adopt(self, cid, log_path, max_file, compress):
        try:
            with self._adopt_lock:
                rotated = adopt(log_path, max_file)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                LOG.warning('log rotation of %s: %s', cid[:12], exc)
            return
        if compress and rotated:
            with self._lock:
                if self._stopped:
                    return
                for path in rotated:
                    self._to_compress[path] = None
                if self._compressor is None:
                    self._compressor = threading.Thread(target=self._compress_loop,
                                                        name='log-compressor', daemon=True)
                    self._compressor.start()
                self._compress_cond.notify()

    def _compress_loop(self):
        while True:
            with self._lock:
                while not self._to_compress and not self._stopped:
                    self._compress_cond.wait()
                if self._stopped:
                    return
                path, _ = self._to_compress.popitem(last=False)
            try:
                compress_file(path)
            except OSError as exc:
                LOG.warning('compressing %s: %s', path, exc)

    def _run(self):
        while not self._stopped:
            try:
                events = self._inotify.read(timeout=1000)
            except OSError as exc:
                LOG.warning('log rotator: %s', exc)
                continue
            wanted = set()
            overflow = False
            for event in events:
                if event.wd == -1:
                    overflow = True
                elif event.name == LOG_NAME:
                    wanted.add(event.wd)
            with self._lock:
                if overflow:
                    entries = list(self._watches.values())
                else:
                    entries = [self._watches[wd] for wd in wanted if wd in self._watches]
            for entry in entries:
                self._adopt(*entry)

    def close(self):
        with self._lock:
            self._stopped = True
            self._compress_cond.notify_all()
            threads = [self._thread, self._compressor]
        for thread in threads:
            if thread is not None:
                thread.join(3)
        if self._inotify is not None:
            self._inotify.close()
