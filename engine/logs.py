"""Read container logs written by conmon in the k8s-file format.

Each line is ``TIMESTAMP STREAM TAG TEXT`` where TAG is ``F`` for a full
line and ``P`` for a partial one (conmon splits long lines and flushes
output that lacks a newline).  Docker's log API returns the text with the
newline restored for full lines.
"""

import collections
import os
import time

from engine import logrotate
from engine import util

STREAMS = {b'stdout': 1, b'stderr': 2}


def parse_line(line):
    """-> (timestamp text, stream number, payload bytes) or None if malformed."""
    parts = line.rstrip(b'\n').split(b' ', 3)
    if len(parts) < 3 or parts[1] not in STREAMS:
        return None
    ts, stream, tag = parts[0], parts[1], parts[2]
    text = parts[3] if len(parts) > 3 else b''
    if tag.startswith(b'F'):
        text += b'\n'
    return ts.decode('ascii', 'replace'), STREAMS[stream], text


def docker_timestamp(k8s_ts):
    """conmon writes +00:00 offsets; Docker prints RFC 3339 with nanoseconds and Z."""
    try:
        return util.rfc3339_ns(util.parse_rfc3339_ns(k8s_ts))
    except ValueError:
        return k8s_ts


def _entries(f):
    for raw in f:
        if not raw.endswith(b'\n'):
            # A line conmon is still writing: leave it for the next read.
            f.seek(-len(raw), os.SEEK_CUR)
            return
        entry = parse_line(raw)
        if entry:
            yield entry


def _lines(entries):
    """Group records into lines for --tail: conmon splits a long write into
    partial records ending with the full one."""
    pending = {}
    for entry in entries:
        if entry[2].endswith(b'\n'):
            yield pending.pop(entry[1], []) + [entry]
        else:
            pending.setdefault(entry[1], []).append(entry)
    for rest in pending.values():  # a last line without its newline yet
        yield rest


def _file_entries(path):
    """Every complete record of a log file that is no longer written."""
    try:
        f = logrotate.open_log_file(path)
    except FileNotFoundError:
        return  # rotated away (max-file) since it was listed
    with f:
        yield from _entries(f)


def read(path, stdout=True, stderr=True, since_ns=0, until_ns=0, tail=None,
         follow=False, is_running=None, poll_interval=0.05):
    """Yield (timestamp text, stream, bytes) records of a container's log.

    ``path`` is conmon's current file; rotated files (engine.logrotate) are
    read first, oldest first.  ``tail`` keeps the last N records of what
    exists now; with ``follow`` new records are yielded while
    ``is_running()`` says the writer lives, across rotations.  Yields None
    while idle so the caller can check its client.
    """
    wanted = {1: stdout, 2: stderr}

    def keep(entry):
        if not wanted[entry[1]]:
            return False
        if since_ns or until_ns:
            ns = util.parse_rfc3339_ns(entry[0])
            if since_ns and ns < since_ns:
                return False
            if until_ns and ns > until_ns:
                return False
        return True

    files = logrotate.log_files(path)
    f = None
    while files and f is None:
        cur_path, cur_seq, _ = files[-1]
        try:
            f = open(cur_path, 'rb')
        except FileNotFoundError:  # rotated meanwhile: list again
            files = logrotate.log_files(path)
    if f is None:
        return
    older = [p for p, _, _ in files[:-1]]
    try:
        if tail is not None and tail >= 0:
            backlog = collections.deque(_lines(e for e in _entries(f) if keep(e)), maxlen=tail)
            for older_path in reversed(older):
                if len(backlog) >= tail:
                    break
                earlier = list(_lines(e for e in _file_entries(older_path) if keep(e)))
                backlog.extendleft(reversed(earlier[-(tail - len(backlog)):]))
            if tail == 0:
                backlog.clear()
            for line in backlog:
                yield from line
        else:
            for older_path in older:
                yield from (e for e in _file_entries(older_path) if keep(e))
            yield from (e for e in _entries(f) if keep(e))
        if not follow:
            return
        while True:
            running = is_running() if is_running else False
            got = False
            for entry in _entries(f):
                got = True
                if until_ns and util.parse_rfc3339_ns(entry[0]) > until_ns:
                    return
                if keep(entry):
                    yield entry
            if not got:
                following = _next_file(path, f, cur_seq)
                if following is not None:
                    # conmon closed the old file before replacing it: what
                    # is in it now is all there is.
                    for entry in _entries(f):
                        if keep(entry):
                            yield entry
                    f.close()
                    f, cur_seq = following
                    continue
            if not running:
                return
            if not got:
                yield None
                time.sleep(poll_interval)
    finally:
        f.close()


def _next_file(path, f, cur_seq):
    """(open file, seq) of the file after ``f`` once conmon rotated, else None."""
    try:
        if os.stat(path).st_ino == os.fstat(f.fileno()).st_ino:
            return None
    except FileNotFoundError:
        return None
    ino = os.fstat(f.fileno()).st_ino
    files = logrotate.log_files(path)
    if cur_seq is None:
        cur_seq = next((seq for _, seq, i in files if i == ino), None)
    if cur_seq is None:
        # Our file was never numbered and is gone: go on with the current one.
        candidates = files[-1:]
    else:
        candidates = [x for x in files if x[1] is None or x[1] > cur_seq]
    for p, seq, _ in candidates:
        try:
            return logrotate.open_log_file(p), seq
        except FileNotFoundError:
            continue
    return None
