"""Inputs of the affiliate report: files, globs, directories, stdin, gzip;
and the integrity bookkeeping (seq segments per node, duplicates, gaps,
restarts), in memory bounded by the number of segments, not records.
"""

import glob
import os
import re
import shutil
import sys
import tempfile
import zlib


class InputError(Exception):
    pass


class Source:
    def __init__(self, path, display):
        self.path = path          # None: stdin (spooled later)
        self.display = display
        self.node_hint = node_from_path(display)
        self.lines = 0            # lines read (pass 1)
        self.records = 0          # valid records
        self.malformed = 0
        self.error = None         # e.g. a gzip stream cut short
        self.nodes = set()
        self.spool = None
        self.gzip = False

    def open(self):
        """Binary file, gzip by magic bytes."""
        if self.path is None and self.spool is None:
            fd, self.spool = tempfile.mkstemp(prefix='affiliate-report-')
            with os.fdopen(fd, 'wb') as out:
                shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        path = self.spool or self.path
        f = open(path, 'rb')
        head = f.peek(2)[:2] if hasattr(f, 'peek') else b''
        if head == b'\x1f\x8b':
            self.gzip = True
            return GzipReader(f)
        return f

    def cleanup(self):
        if self.spool:
            try:
                os.unlink(self.spool)
            except OSError:
                pass
            self.spool = None


# gzip, read forward: zlib checks each member's CRC and length (as
# gzip.GzipFile), in reads of GZ_CHUNK compressed bytes rather than 8 KB

GZ_CHUNK = 1 << 17


def gunzip(f, size):
    """The data of gzip file f (every member, with the zero padding
    gzip.GzipFile allows between them), in pieces of at most size bytes."""
    d = zlib.decompressobj(31)
    data = b''
    while True:
        if d.eof:
            data = d.unused_data.lstrip(b'\0')
            while not data:
                data = f.read(GZ_CHUNK)
                if not data:
                    return
                data = data.lstrip(b'\0')
            d = zlib.decompressobj(31)
        elif not data:
            data = f.read(GZ_CHUNK)
        out = d.decompress(data, size)
        data = d.unconsumed_tail
        if out:
            yield out
        elif not data and not d.eof:
            data = f.read(GZ_CHUNK)
            if not data:
                raise EOFError('Compressed file ended before the '
                               'end-of-stream marker was reached')


class GzipReader:
    """readinto(), read() and close() of a gzip file, by gunzip()."""

    def __init__(self, f):
        self.f = f
        self.pieces = gunzip(f, 1 << 16)
        self.rest = memoryview(b'')
        self.error = None

    def readinto(self, view):
        """Fills view, but at the end.  An error comes after the data
        before it (as from gzip.GzipFile)."""
        if self.error is not None:
            e, self.error = self.error, None
            raise e
        done = 0
        while done < len(view):
            rest = self.rest
            if not rest:
                try:
                    rest = memoryview(next(self.pieces, b''))
                except (OSError, EOFError, zlib.error) as e:
                    if not done:
                        raise
                    self.error = e
                    break
                if not rest:
                    break
            n = min(len(view) - done, len(rest))
            view[done:done + n] = rest[:n]
            self.rest = rest[n:]
            done += n
        return done

    def read(self, size):
        """size bytes, fewer only at the end."""
        out = []
        while size > 0:
            rest = self.rest
            if not rest:
                rest = memoryview(next(self.pieces, b''))
                if not rest:
                    break
            out.append(rest[:size])
            self.rest = rest[size:]
            size -= len(out[-1])
        return b''.join(out)

    def close(self):
        self.f.close()


def line_blocks(f, size):
    """The file in blocks of whole lines: (buffer, end) where buffer[:end]
    holds lines that end with a newline, about size bytes; the last block
    does not end with a newline when the file does not.  The buffer is
    the same bytearray each time, overwritten by the next block."""
    buf = bytearray(size)
    view = memoryview(buf)
    have = 0              # bytes in buf, from its start
    while True:
        n = f.readinto(view[have:])
        if not n:
            break
        have += n
        cut = buf.rfind(b'\n', 0, have) + 1
        if not cut:
            if have == len(buf):
                # a line longer than the buffer: make it larger
                view.release()
                buf.extend(bytes(len(buf)))
                view = memoryview(buf)
            continue
        yield buf, cut
        view[:have - cut] = view[cut:have]
        have -= cut
    view.release()
    if have:
        yield buf, have


ROTATED = re.compile(r'(?:\.gz)?(?:[.-][0-9]+)*(?:\.gz)?\Z')


def node_from_path(display):
    """A node name for records without "node": the file name without its
    rotation suffix (affiliate.log.2.gz -> affiliate.log), keeping the
    directory so that two nodes' logs in two directories stay apart."""
    if display == '-':
        return '(stdin)'
    return ROTATED.sub('', display) or display


def expand(args):
    """Sources for the command-line operands, each file once."""
    out = []
    seen = {}
    for a in args or ['-']:
        if a == '-':
            out.append(Source(None, '-'))
            continue
        if os.path.isdir(a):
            names = sorted(n for n in os.listdir(a) if not n.startswith('.'))
            paths = [os.path.join(a, n) for n in names
                     if os.path.isfile(os.path.join(a, n))]
            if not paths:
                raise InputError('%s: directory holds no files' % a)
        elif os.path.exists(a):
            paths = [a]
        elif glob.has_magic(a):
            paths = sorted(p for p in glob.glob(a) if os.path.isfile(p))
            if not paths:
                raise InputError('%s: no file matches' % a)
        else:
            raise InputError('%s: no such file or directory' % a)
        for p in paths:
            try:
                st = os.stat(p)
                with open(p, 'rb'):
                    pass
            except OSError as e:
                raise InputError('%s: %s' % (p, e.strerror))
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen[key] = p
            out.append(Source(p, p))
    return out


# --- integrity ---------------------------------------------------------------
#
# A segment is a run of records of one node, read from one input, with
# contiguous seq numbers (each one more than the last).  A record that does
# not continue its input's segment starts a new one, after a check against
# the node's closed segments: if one holds its seq and its ts lies within
# that segment's time span, it is a copy of a record already read (a batch
# written twice, or the same records in two files), and so are the next
# records while they continue that segment.  Runs (from one start of nginx
# to its stop) are told apart by time: a restart starts again at seq 1,
# later than everything before.

class Seg:
    __slots__ = ('node', 'lo', 'hi', 'ts_lo', 'ts_hi', 'src', 'line',
                 'no_id', 'first_id')

    def __init__(self, node, seq, ts, src, line, first_id):
        self.node = node
        self.lo = self.hi = seq
        self.ts_lo = self.ts_hi = ts
        self.src = src
        self.line = line
        self.no_id = 0
        self.first_id = first_id


class NodeStat:
    """One sequence of seq numbers: a node's zone, that is a node and the
    log file (without rotation suffix) its zone writes.  A node with two
    zones writes two logs, each numbered from 1."""

    def __init__(self, node, log, derived):
        self.node = node
        self.log = log
        self.derived = derived    # node taken from the file name
        self.duplicates = 0
        self.closed = []          # segments

    @property
    def records(self):
        return sum(s.hi - s.lo + 1 for s in self.closed)

    @property
    def no_id(self):
        return sum(s.no_id for s in self.closed)


class Integrity:
    def __init__(self):
        self.nodes = {}
        self.malformed = []       # (display, line, reason), first N
        self.malformed_count = 0
        self.max_listed = 1000

    def node(self, node, log, derived):
        n = self.nodes.get((node, log))
        if n is None:
            n = self.nodes[(node, log)] = NodeStat(node, log, derived)
        return n

    def copy_elsewhere(self, ns, seq, ts, rid):
        """A segment of the same node in another log that starts with this
        very record (same seq, ts and id): the file is a copy."""
        if rid is None:
            return None
        for other in self.nodes.values():
            if other is ns or other.node != ns.node:
                continue
            for s in other.closed:
                if s.lo == seq and s.ts_lo == ts and s.first_id == rid:
                    return s
        return None

    def bad(self, src, lineno, reason):
        src.malformed += 1
        self.malformed_count += 1
        if len(self.malformed) < self.max_listed:
            self.malformed.append((src.display, lineno, reason))

    def find_copy(self, ns, seq, ts):
        for s in ns.closed:
            if s.lo <= seq <= s.hi and s.ts_lo <= ts <= s.ts_hi:
                return s
        return None

    def limit(self, ns, seq):
        lim = None
        for s in ns.closed:
            if s.lo > seq and (lim is None or s.lo < lim):
                lim = s.lo
        return lim if lim is not None else 1 << 62

    def runs(self, ns):
        """[{first, last, segments, gaps: [(after, count, ts_a, ts_b)]}]"""
        segs = sorted(ns.closed, key=lambda s: (s.ts_lo, s.lo))
        runs = []
        cur = None
        for s in segs:
            if cur is None or s.lo == 1 or s.lo <= cur['max']:
                cur = {'segs': [], 'max': 0}
                runs.append(cur)
            cur['segs'].append(s)
            cur['max'] = max(cur['max'], s.hi)
        out = []
        for r in runs:
            ss = sorted(r['segs'], key=lambda s: s.lo)
            gaps = []
            hi = ss[0].hi
            ts_hi = ss[0].ts_hi
            for s in ss[1:]:
                if s.lo > hi + 1:
                    gaps.append((hi, s.lo - hi - 1, ts_hi, s.ts_lo))
                if s.hi > hi:
                    hi, ts_hi = s.hi, s.ts_hi
            out.append({'first': ss[0].lo, 'last': hi,
                        'ts_first': min(s.ts_lo for s in ss),
                        'ts_last': max(s.ts_hi for s in ss),
                        'where': '%s:%d' % (ss[0].src, ss[0].line),
                        'gaps': gaps})
        return out
