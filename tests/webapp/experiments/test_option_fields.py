"""The form's inputs for distill_core's options are generated from the declarations: defaults, bounds,
choices and help come from distill_core, and a newly declared option gets an input, a config path and
an API schema entry without a change in the web app."""

from __future__ import annotations

from django import forms

from distill_core.options import Declared, Option, declared
from tests.webapp.contract import document, value_schema
from webapp.api.form_models import FormSpec, Range, form_model
from webapp.experiments import experiment_fields, option_fields
from webapp.experiments.configs import FORM_FIELDS, STUDENT_OPTION_FIELDS


def _schema_props():
    return document()["components"]["schemas"]["ExperimentCreate"]["properties"]


def test_every_generated_input_documents_its_options_bounds_default_and_help_in_the_api_schema():
    props = _schema_props()
    inputs = experiment_fields.ALL_INPUTS
    handmade = set(experiment_fields.HandMadeFields.base_fields)
    checked = 0
    for name, d in inputs.items():
        if name in handmade:
            continue
        prop, value, option = props[name], value_schema(props[name]), d.option
        assert prop["description"] == option.help, name
        if option.names():
            assert [v for v in value["enum"] if v is not None] == list(option.names()), name
        if isinstance(d.default, (int, float)) and not isinstance(d.default, bool) and d.default != option.unset:
            assert prop["default"] == d.default, name
            if option.low is not None:
                assert value.get("exclusiveMinimum" if option.low_open else "minimum") == option.low, name
            if option.high is not None:
                assert value.get("exclusiveMaximum" if option.high_open else "maximum") == option.high, name
            checked += 1
    assert checked >= 30


def test_every_declared_option_the_page_offers_maps_to_its_input():
    offered = {d.path for d in declared(__import__("distill_core.config").config.ExperimentConfig)
               if d.path not in option_fields.NOT_ON_FORM}
    assert offered <= set(FORM_FIELDS)
    for student, inputs in experiment_fields.STUDENT_INPUTS.items():
        assert {d.name for d in inputs.values()} == set(STUDENT_OPTION_FIELDS[student])


def test_a_new_declared_option_gets_an_input_named_by_the_rule_with_the_librarys_bounds():
    option = Option("Smooths the hard labels.", low=0.0, high=1.0)
    d = Declared("kd.label_smoothing", "float", 0.1, option)
    name = option_fields.form_name(d.path)
    field = option_fields.input_for(d, name)
    assert name == "label_smoothing" and option_fields.group_of(name, d) == "kd"
    assert isinstance(field, forms.FloatField) and (field.initial, field.min_value, field.max_value) == (0.1, 0.0, 1.0)
    documented = form_model("One", {name: field}, FormSpec(nullable=False)).model_json_schema()["properties"][name]
    assert documented == {"type": "number", "minimum": 0.0, "maximum": 1.0, "default": 0.1,
                          "description": "Smooths the hard labels.", "title": "Label Smoothing"}
    student = Declared("student.options.kernel", "int", 3, Option("Kernel width.", low=1, high=9))
    assert option_fields.group_of("cnn_kernel", student) == "cnn"


def test_an_exclusive_bound_is_checked_with_the_librarys_words():
    d = Declared("kd.sharpness", "float", 1.0, Option("How sharp.", low=0.0, low_open=True, high=5.0))
    field = option_fields.input_for(d, "sharpness")
    assert field.clean("2") == 2.0
    try:
        field.clean("0")
    except forms.ValidationError as exc:
        assert exc.messages == ["sharpness must be greater than 0 and at most 5 (got 0)."]
    else:
        raise AssertionError("0 was accepted")
    assert option_fields.ranges({"sharpness": d}) == {"sharpness": (0.0, 5.0, True, False)}
    assert Range(0.0, 5.0, True).constraints() == {"gt": 0.0, "le": 5.0}


def test_the_web_app_holds_no_copy_of_a_registry():
    source = "".join(open(m.__file__, encoding="utf-8").read() for m in (experiment_fields, option_fields))
    for copied in ('"T4-tiny"', '"T12-nano"', '"linear_growth"', '"linear_decay"'):  # labels may name some
        assert copied not in source, copied
