"""Functional tests: real mounts, real kernels, root."""


def pytest_configure(config):
    # pytest.ini registers it too; this keeps the marker known when the
    # functional tests are run on their own from another rootdir.
    config.addinivalue_line(
        'markers', 'functional: needs root, mounts and the real kernel')
