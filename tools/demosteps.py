"""Step printing shared by the demo's Python sections (tools/nova_demo.py,
tools/heat_demo.py): numbered steps that carry on from tools/demo.sh's,
the call each step makes, and a failure type that stops the section."""

import sys
import time

T0 = time.monotonic()
STEP = [0]
BOLD = sys.stdout.isatty()


class DemoFailure(Exception):
    pass


def bold(text):
    print('\033[1m%s\033[0m' % text if BOLD else text, flush=True)


def step(what, call=None):
    STEP[0] += 1
    print()
    bold('== %d. %s' % (STEP[0], what))
    if call:
        print('>>> %s' % call, flush=True)


def say(text):
    print('   %s' % text, flush=True)


def fail(text):
    raise DemoFailure(text)
