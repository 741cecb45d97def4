"""The README's set-up commands and CI must not drift apart."""

import re

from conftest import REPO


def _readme_commands():
    text = (REPO / "README.md").read_text()
    setup = text.split("## Set up", 1)[1]
    return re.findall(r"```bash\n(.+?)\n```", setup)[:2]


def test_ci_runs_the_readme_test_command():
    main_cmd, test_cmd = _readme_commands()
    assert "pytest" in test_cmd and "pytest" not in main_cmd
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci_lines, "'.ci/run' must call the README's test command verbatim"


def test_both_commands_install_the_pinned_cpu_torch():
    for cmd in _readme_commands():
        assert "pip install torch==2.13.0" in cmd
        assert "--no-build-isolation" in cmd
