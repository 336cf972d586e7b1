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


def run_section(demo, name, first_step):
    """Run ``demo.run()`` with steps numbered from ``first_step``; on any
    failure say which step and why, and always ``demo.clean_up()``.
    Returns the process exit status."""
    import traceback
    STEP[0] = first_step - 1
    try:
        demo.run()
    except BaseException as exc:
        print(file=sys.stderr)
        if isinstance(exc, DemoFailure):
            print('!! step %d: %s' % (STEP[0], exc), file=sys.stderr)
        else:
            print('!! step %d failed:' % STEP[0], file=sys.stderr)
            traceback.print_exc()
        demo.clean_up()
        return 1
    demo.clean_up()
    bold('')
    bold('== the %s section took %.1f s' % (name, time.monotonic() - T0))
    return 0
