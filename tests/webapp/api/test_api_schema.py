"""The OpenAPI document at /api/schema.json describes every API route."""

from __future__ import annotations

import json
import re

from tests.webapp.contract import document, value_schema
from webapp.api import urls as api_urls


def openapi_path(route: str) -> str:
    return "/api/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_the_schema_is_public_json_with_the_openapi_top_level_keys(client, db):
    response = client.get("/api/schema.json")
    assert response.status_code == 200 and response["Content-Type"].split(";")[0] == "application/json"
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.") and {"openapi", "info", "paths", "components"} <= set(schema)
    assert schema["info"]["title"] and schema["info"]["version"]


def test_every_api_route_is_in_the_schema(client, db):
    paths = client.get("/api/schema.json").json()["paths"]
    routes = {openapi_path(str(p.pattern)) for p in api_urls.urlpatterns if p.name not in {"not_found", *api_urls.NINJA_PAGES}}
    assert routes == set(paths)


def test_every_reference_in_the_schema_resolves(client, db):
    schema = client.get("/api/schema.json").json()
    text = json.dumps(schema)
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node = schema
        for part in ref.split("/"):
            assert part in node, ref
            node = node[part]


def test_every_path_parameter_is_declared(client, db):
    for path, item in client.get("/api/schema.json").json()["paths"].items():
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), path
            assert operation["responses"]


# --- generated from the forms and the registries (issue #15) ---------------------------------

def test_the_served_schema_is_the_generated_one(client, db):
    assert client.get("/api/schema.json").json() == json.loads(json.dumps(document()))


def test_every_input_of_the_experiment_form_is_documented_with_its_bounds_and_default():
    from webapp.experiments.experiment_form import ExperimentForm

    body = document()["components"]["schemas"]["ExperimentCreate"]
    assert set(body["properties"]) == set(ExperimentForm.base_fields) and len(body["properties"]) > 70
    assert body["required"] == ["name", "teacher", "dataset"] and body["additionalProperties"] is False
    temperature = body["properties"]["temperature"]
    assert temperature["default"] == 2.0
    assert (value_schema(temperature)["exclusiveMinimum"], value_schema(temperature)["maximum"]) == (0.0, 1000.0)
    epochs = value_schema(body["properties"]["epochs"])
    assert epochs["minimum"] == 1 and epochs["maximum"] == 1000
    assert value_schema(body["properties"]["pool"])["pattern"].startswith("^[a-z0-9]")
    assert "hidden_mse" in value_schema(body["properties"]["generate_loss"])["enum"]


def test_students_and_presets_are_the_registries_names():
    from distill_core.students import students
    from distill_core.students_transformer import TRANSFORMER_PRESETS

    props = document()["components"]["schemas"]["ExperimentCreate"]["properties"]
    assert sorted(s for s in value_schema(props["student_type"])["enum"] if s) == students.names() == [
        "bigru", "bilstm", "textcnn", "transformer"]
    assert {p for p in value_schema(props["tf_preset"])["enum"] if p} == set(TRANSFORMER_PRESETS) | {"custom"}


def test_the_dataset_and_checkpoint_bodies_come_from_their_forms():
    from webapp.registry.forms import DatasetForm

    schemas = document()["components"]["schemas"]
    assert set(schemas["DatasetUpload"]["properties"]) == set(DatasetForm.base_fields)
    assert schemas["DatasetUpload"]["properties"]["dev_ratio"] == {
        "type": "number", "minimum": 0.0, "maximum": 0.5, "default": 0.0, "title": "Dev Ratio",
        "description": DatasetForm.base_fields["dev_ratio"].help_text}
    assert schemas["CheckpointByPath"]["required"] == ["name", "path"]
    assert schemas["CheckpointArchive"]["properties"]["archive"]["format"] == "binary"


def test_the_answers_include_the_sweep_the_queue_place_and_the_log_tail():
    schema = json.loads(json.dumps(document()))
    created = schema["paths"]["/api/experiments/"]["post"]["responses"]["201"]["content"]["application/json"]
    assert created["schema"]["anyOf"] == [{"$ref": "#/components/schemas/ExperimentOut"},
                                          {"$ref": "#/components/schemas/SweepOut"}]
    experiment = schema["components"]["schemas"]["ExperimentOut"]
    assert {"queue", "log_tail", "eta_seconds"} <= set(experiment["required"])
    assert "config" in experiment["properties"] and "config" not in experiment["required"]


def test_a_field_type_the_generator_does_not_know_is_refused_not_guessed():
    import pytest
    from django import forms

    from webapp.api.form_models import FormSpec, form_model

    def schema(field):
        return form_model("One", {"x": field}, FormSpec(nullable=False)).model_json_schema()["properties"]["x"]

    assert schema(forms.FloatField(min_value=0.5, required=False))["type"] == "number"  # not its base's integer
    with pytest.raises(TypeError, match="DurationField"):
        schema(forms.DurationField())


# --- the contract checker itself --------------------------------------------------------------

def test_the_contract_refuses_an_undocumented_field_status_or_content_type():
    import pytest

    from tests.webapp.contract import ContractError, api_contract

    contract = api_contract()
    ok = json.dumps({"error": "Not found.", "fields": {}}).encode()
    contract.check("GET", "/api/datasets/7/", 404, "application/json", ok)
    with pytest.raises(ContractError, match="418 is not documented"):
        contract.check("GET", "/api/datasets/7/", 418, "application/json", ok)
    with pytest.raises(ContractError, match="Additional properties"):
        contract.check("GET", "/api/datasets/7/", 404, "application/json",
                       json.dumps({"error": "x", "fields": {}, "detail": "x"}).encode())
    with pytest.raises(ContractError, match="text/html"):
        contract.check("GET", "/api/datasets/7/", 404, "text/html", b"<h1>Not found</h1>")


def test_a_malformed_id_or_unknown_api_path_answers_the_json_404(api, db):
    for url in ("/api/experiments/-1/", "/api/experiments/1.5/cancel/", "/api/nothing/"):
        response = api.post(url) if url.endswith("cancel/") else api.get(url)
        assert response.status_code == 404 and response.json()["error"].startswith("No such API path")
    assert "Did you mean /api/experiments/ ?" in api.get("/api/experiments").json()["error"]
