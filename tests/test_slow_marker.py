"""The `slow` marker: registered, and the conftest lists name tests that exist."""

import configparser
from pathlib import Path

import conftest

TESTS = Path(__file__).resolve().parent


def test_the_marker_is_registered():
    config = configparser.ConfigParser()
    config.read(TESTS.parent / "setup.cfg")
    assert any(line.startswith("slow:") for line in config["tool:pytest"]["markers"].splitlines())


def test_every_listed_slow_file_and_test_exists():
    for name in conftest.SLOW_FILES:
        assert (TESTS / name).is_file(), name
    for name, functions in conftest.SLOW_TESTS.items():
        source = (TESTS / name).read_text()
        for function in functions:
            assert f"\ndef {function}(" in source, f"{name}::{function}"


class FakeItem:
    def __init__(self, file, name):
        self.path = TESTS / file
        self.name = f"{name}[case]"
        self.originalname = name
        self.markers = []

    def add_marker(self, marker):
        self.markers.append(marker.name)


def test_listed_files_and_tests_get_the_marker():
    items = [FakeItem("test_distributed.py", "test_anything"),
             FakeItem("test_losses.py", "test_class_matches_keras"),
             FakeItem("test_losses.py", "test_get_config_round_trip"),
             FakeItem("test_module.py", "test_class_matches_keras")]
    conftest.pytest_collection_modifyitems(None, items)
    assert [item.markers for item in items] == [["slow"], ["slow"], [], []]
