"""Rules and choices are declared once: the activation table (nn.ACTIVATION_TABLE), the
parameter rules (validation.PARAMETERS), and everything that offers a choice reads them."""

from __future__ import annotations

import argparse

import array_api_compat.numpy as xp
import numpy as np
import pytest

from mlp_backends import nn, optim, validation
from mlp_backends.cli import build_parser
from mlp_backends.errors import InputError, InputTypeError


def _train_options() -> dict[str, argparse.Action]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {opt: a for a in sub.choices["train"]._actions for opt in a.option_strings}


@pytest.mark.parametrize(("option", "name"), [("--activation", "activation"), ("--init", "init"),
                                              ("--dtype", "dtype"), ("--optimizer", "optimizer")])
def test_the_cli_offers_exactly_what_the_api_accepts(option, name):
    assert tuple(_train_options()[option].choices) == validation.PARAMETERS[name].choices


def test_the_choice_tables_are_the_math_modules_names():
    assert validation.PARAMETERS["activation"].choices == nn.ACTIVATIONS == tuple(nn.ACTIVATION_TABLE)
    assert validation.PARAMETERS["optimizer"].choices == optim.OPTIMIZERS
    for name in optim.OPTIMIZERS:
        assert optim.make_optimizer(name, 0.1) is not None


@pytest.mark.parametrize("name", nn.ACTIVATIONS)
def test_each_activation_row_holds_its_function_and_derivative(name):
    row = nn.ACTIVATION_TABLE[name]
    z = np.linspace(-2, 2, 9)
    a = row.function(xp, z)
    np.testing.assert_array_equal(nn.activate(xp, name, z), a)
    g = np.full_like(z, 3.0)
    np.testing.assert_array_equal(nn.activation_grad(xp, name, a, g), row.derivative(xp, a, g))


def test_an_unknown_activation_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown activation 'swish'; choose one of sigmoid, relu, tanh, identity"):
        nn.activate(xp, "swish", np.zeros(2))
    with pytest.raises(ValueError, match="unknown activation"):
        nn.kernels(xp, "swish")


def test_numpys_in_place_kernels_cover_every_activation():
    numpy_inplace = pytest.importorskip("backends.numpy_inplace")
    for name in nn.ACTIVATIONS:
        k = numpy_inplace.kernels(name)
        z, b = np.linspace(-2, 2, 8).reshape(2, 4), np.linspace(-1, 1, 4)
        np.testing.assert_array_equal(k.activate(z.copy(), b), nn.activate(xp, name, z + b))


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_a_whole_number_may_be_numpys_everywhere_the_rule_is_used(value):
    for name, rule in validation.PARAMETERS.items():
        if isinstance(rule, validation.Whole):
            assert validation.check_param(name, value) == 3
            assert type(validation.check_param(name, value)) is int


@pytest.mark.parametrize("value", [True, 2.0, "3"])
def test_a_whole_number_is_never_a_bool_a_float_or_a_string(value):
    with pytest.raises(InputTypeError, match="epochs must be a whole number of 0 or more"):
        validation.check_param("epochs", value)


def test_a_whole_number_below_the_rules_floor_names_the_floor():
    with pytest.raises(InputError, match="patience must be a whole number of at least 1, got -1"):
        validation.check_param("patience", np.int64(-1))
