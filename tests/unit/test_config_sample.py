"""The committed configuration samples match what the code generates, and
every option of ours explains itself."""

import configparser
import glob
import importlib.metadata
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERATOR_CONFIGS = sorted(glob.glob(
    os.path.join(REPO, 'etc', 'oslo-config-generator', '*.conf')))
OUR_PACKAGES = ('engine', 'novadocker', 'heat_plugin')


def _generator():
    exe = os.path.join(os.path.dirname(sys.executable), 'oslo-config-generator')
    return [exe] if os.path.exists(exe) else [
        sys.executable, '-m', 'oslo_config.generator']


def _our_entry_points():
    eps = importlib.metadata.entry_points(group='oslo.config.opts')
    return [ep for ep in eps if ep.value.split('.')[0].split(':')[0]
            in OUR_PACKAGES]


def test_generator_configs_exist():
    assert GENERATOR_CONFIGS, 'no etc/oslo-config-generator/*.conf'


@pytest.mark.parametrize('gen_config', GENERATOR_CONFIGS,
                         ids=os.path.basename)
def test_sample_is_up_to_date(gen_config, tmp_path):
    parser = configparser.ConfigParser(strict=False)
    parser.read(gen_config)
    committed = os.path.join(REPO, parser['DEFAULT']['output_file'])
    fresh = tmp_path / 'fresh.conf.sample'
    subprocess.run(_generator() + ['--config-file', gen_config,
                                   '--output-file', str(fresh)],
                   cwd=REPO, check=True, capture_output=True)
    with open(committed) as f:
        expected = f.read()
    assert fresh.read_text() == expected, (
        '%s is stale: run `make genconfig` and commit the result'
        % os.path.relpath(committed, REPO))


def test_our_namespaces_are_registered():
    names = {ep.name for ep in _our_entry_points()}
    assert 'novadocker.engine' in names


@pytest.mark.parametrize('ep', _our_entry_points(), ids=lambda ep: ep.name)
def test_every_option_has_help(ep):
    groups = ep.load()()
    assert groups, '%s lists no options' % ep.name
    missing = []
    for group, opts in groups:
        gname = getattr(group, 'name', group) or 'DEFAULT'
        for opt in opts:
            if not (opt.help or '').strip():
                missing.append('[%s] %s' % (gname, opt.name))
    assert not missing, 'options without help text: %s' % ', '.join(missing)
