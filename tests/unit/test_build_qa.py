"""Unit tests for the small fixes the issue-6 QA made: the key=value form
of LABEL/ENV with a quoted first key (moby's parseNameVal decides on the
first word, quotes respected)."""

import unittest

import ddt

from engine import changes
from engine import errors


@ddt.ddt
class NameValuesTest(unittest.TestCase):

    @ddt.data(
        ('"quoted key"="a b" plain=x', [('quoted key', 'a b'), ('plain', 'x')]),
        ("'single q'=v", [('single q', 'v')]),
        ('a\\ b=c d=e', [('a b', 'c'), ('d', 'e')]),
        ('k=v', [('k', 'v')]),
        ('name value with spaces', [('name', 'value with spaces')]),
        ('k="v w" k2=$X', [('k', 'v w'), ('k2', 'x')]),
    )
    @ddt.unpack
    def test_pairs(self, text, expected):
        self.assertEqual(expected, changes._name_values(text, 'LABEL', {'X': 'x'}))

    @ddt.data(('"a b" c', '"a b"'), ('a "b c"', 'a'), ("'a\\' b", "'a\\'"),
              ('a\\ b c', 'a\\ b'), ('"unterminated', '"unterminated'))
    @ddt.unpack
    def test_first_word(self, text, word):
        self.assertEqual(word, changes._first_word(text))

    def test_label_change_with_a_quoted_key(self):
        cfg = changes.parse_changes(['LABEL "my key"="my value"'], {})
        self.assertEqual({'my key': 'my value'}, cfg['Labels'])

    def test_blank_key_still_refused(self):
        self.assertRaises(errors.InvalidArgument, changes._name_values,
                          '=v', 'LABEL', {})
