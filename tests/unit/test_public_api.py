"""The designed public surface of `gateway`: a sorted `__all__`, every name importable, one
exception root."""

from __future__ import annotations

import inspect

import gateway
from gateway import errors


def test_when_the_package_is_imported_then_all_is_sorted_and_every_name_resolves() -> None:
    assert gateway.__all__ == sorted(gateway.__all__)
    for name in gateway.__all__:
        assert getattr(gateway, name) is not None, name


def test_when_an_exception_is_public_then_it_derives_from_the_one_root() -> None:
    public_errors = [
        value
        for name in gateway.__all__
        if inspect.isclass(value := getattr(gateway, name)) and issubclass(value, BaseException)
    ]
    assert {e.__name__ for e in public_errors} == {
        "ConfigError",
        "GatewayError",
        "KeyringError",
        "UnknownLabelValueError",
    }
    for error in public_errors:
        assert issubclass(error, errors.GatewayError), error


def test_when_a_public_class_is_exported_then_it_says_what_it_owns() -> None:
    for name in gateway.__all__:
        value = getattr(gateway, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"
