"""A fake ``ovs-vsctl`` for hosts without Open vSwitch (like the test hosts).

``FakeOvs(directory, bridges=('br-fake',))`` writes an executable
``<directory>/bin/ovs-vsctl`` that records each call (its arguments, one
call per line, tab-separated) and answers ``br-exists BR`` with 0 for the
given bridges and 2 otherwise (ovs-vsctl's codes); every other command
succeeds. Start an engine with ``PATH=<directory>/bin:$PATH`` (``.path``)
and it uses the fake; ``.calls()`` returns what it was asked.
"""

import os


class FakeOvs:
    def __init__(self, directory, bridges=('br-fake',)):
        self.bin_dir = os.path.join(directory, 'bin')
        os.makedirs(self.bin_dir, exist_ok=True)
        self.log = os.path.join(directory, 'ovs-vsctl.calls')
        open(self.log, 'w').close()
        known = ' '.join(bridges)
        script = os.path.join(self.bin_dir, 'ovs-vsctl')
        with open(script, 'w') as f:
            f.write('#!/bin/sh\n'
                    '(IFS="$(printf \'\\t\')"; echo "$*") >> %s\n'
                    'for a in "$@"; do\n'
                    '  case "$a" in --timeout=*) shift;; *) break;; esac\n'
                    'done\n'
                    'if [ "$1" = br-exists ]; then\n'
                    '  for b in %s; do [ "$b" = "$2" ] && exit 0; done\n'
                    '  exit 2\n'
                    'fi\n'
                    'exit 0\n' % (self.log, known))
        os.chmod(script, 0o755)

    @property
    def path(self):
        return self.bin_dir + os.pathsep + os.environ.get('PATH', '')

    def calls(self):
        with open(self.log) as f:
            return [line.rstrip('\n').split('\t') for line in f if line.strip()]
