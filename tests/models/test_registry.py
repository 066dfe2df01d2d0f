"""The registry is the one place a family is named; every family follows the contract."""

from __future__ import annotations

import inspect

import pytest

from clvmodel.config import MODEL_NAMES, PURCHASE_MODEL_NAMES
from clvmodel.models import registry
from clvmodel.models.base import FittedModel


@pytest.mark.parametrize("family", registry.FAMILIES, ids=lambda f: f.name)
def test_every_family_follows_the_contract(family: registry.Family) -> None:
    cls = registry.family_class(family.name)
    assert cls.name == family.name
    assert family.role in registry.ROLES and set(family.data) <= set(registry.DATA_KINDS)
    assert list(inspect.signature(cls.fit).parameters)[:2] == ["self", "data"]
    if family.role in ("purchase", "spend", "baseline"):
        assert issubclass(cls, FittedModel)
        assert cls.param_names and set(cls.columns) <= {"frequency", "recency", "T", "monetary_value"}
    if family.role == "purchase":
        signature = inspect.signature(cls.expected_purchases)
        # A covariate variant also takes each customer's encoded covariates (keyword only).
        extra = ["covariates"] if family.covariates else []
        assert list(signature.parameters) == ["self", "frequency", "recency", "T", "t", *extra]
        assert all(signature.parameters[k].kind is inspect.Parameter.KEYWORD_ONLY for k in ["t", *extra])


def test_the_config_reads_its_names_from_the_registry() -> None:
    assert MODEL_NAMES == tuple(f.name for f in registry.FAMILIES)
    assert PURCHASE_MODEL_NAMES == registry.names("purchase")
    assert registry.names("spend") == ("gamma_gamma",)
    assert registry.names(data="subscriptions") == ("sbg",)


def test_no_module_tests_a_model_name_outside_the_registry() -> None:
    """A string comparison with a registered name (``== "sbg"``, ``in ("bgnbd", ...)``) outside
    the registry and the family's own module is the coupling the registry removes. A role
    (``family.role == "challenger"``: the role and the family share the word) and a schema's
    ``Literal[...]`` marker are not names."""
    import ast
    from pathlib import Path

    import clvmodel

    root = Path(clvmodel.__file__).parent
    names = set(registry.names())
    found = []
    for path in root.rglob("*.py"):
        if path.name == "registry.py" or path.parent.name == "models":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
                sides = (node.left, *node.comparators)
                if any(isinstance(side, ast.Attribute) and side.attr == "role" for side in sides):
                    continue
                for side in sides:  # a name alone, or inside a tuple, list or set: `m in ("bgnbd", ...)`
                    elements = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
                    for element in elements:
                        if isinstance(element, ast.Constant) and element.value in names:
                            found.append(f"{path.relative_to(root)}:{node.lineno} {element.value!r}")
            literal = isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "Literal"
            if isinstance(node, ast.Subscript) and not literal and isinstance(node.slice, ast.Constant) and node.slice.value in names:
                found.append(f"{path.relative_to(root)}:{node.lineno} [{node.slice.value!r}]")
    assert found == []
