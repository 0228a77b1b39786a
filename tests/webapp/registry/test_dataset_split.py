"""A dataset uploaded as one file can hold out seeded dev/test fractions; the split is reproducible."""

from __future__ import annotations

from pathlib import Path

from tests.webapp.factories import TRAIN_ROWS, tsv
from tests.webapp.registry.test_dataset_upload import assert_refused, post, upload
from webapp.registry.models import Dataset


def rows(path: str) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def test_a_seeded_ratio_split_holds_out_dev_and_test(alice_client, acme, settings):
    response = post(alice_client, acme, dev_ratio="0.2", test_ratio="0.1", split_seed="7")
    assert response.status_code == 302, response.context["form"].errors
    dataset = Dataset.objects.get()
    train, dev, test = rows(dataset.train_path), rows(dataset.dev_path), rows(dataset.test_path)
    assert (len(train), len(dev), len(test)) == (12, 4, 2)  # 18 rows: round(3.6) and round(1.8)
    assert sorted(train + dev + test) == sorted(tsv(TRAIN_ROWS).splitlines())
    assert dataset.stats["dev"]["rows"] == 4 and dataset.stats["test"]["rows"] == 2


def test_the_same_seed_gives_the_same_split_and_another_seed_another(alice_client, acme, settings):
    post(alice_client, acme, name="a", dev_ratio="0.3", split_seed="1")
    post(alice_client, acme, name="b", dev_ratio="0.3", split_seed="1")
    post(alice_client, acme, name="c", dev_ratio="0.3", split_seed="2")
    a, b, c = (rows(Dataset.objects.get(name=n).dev_path) for n in "abc")
    assert a == b and a != c


def test_a_header_is_kept_in_every_split_of_a_csv(alice_client, acme, settings):
    csv_text = "label,text\n" + "".join(f'{label},"{text}, really"\n' for text, label in TRAIN_ROWS)
    response = post(alice_client, acme, format="csv", has_header="on", text_column="text", label_column="label",
                    train_file=upload("train.csv", csv_text), dev_ratio="0.25")
    assert response.status_code == 302, response.context["form"].errors
    dataset = Dataset.objects.get()
    assert rows(dataset.dev_path)[0] == "label,text" and rows(dataset.train_path)[0] == "label,text"
    assert dataset.stats["dev"]["rows"] + dataset.stats["train"]["rows"] == 18


def test_a_file_and_a_ratio_for_one_split_is_refused(alice_client, acme, settings):
    response = post(alice_client, acme, dev_file=upload("dev.tsv", tsv(TRAIN_ROWS[:3])), dev_ratio="0.1")
    assert_refused(response, settings, "dev_ratio", "not both")


def test_too_few_rows_to_hold_out_is_refused_and_nothing_stays(alice_client, acme, settings):
    response = post(alice_client, acme, train_file=upload("train.tsv", tsv(TRAIN_ROWS[:2])), dev_ratio="0.1")
    assert_refused(response, settings, "dev_ratio", "too few to hold out")


def test_out_of_range_ratios_are_refused(alice_client, acme, settings):
    for value in ("0.9", "-0.1", "nan", "1e400"):
        response = post(alice_client, acme, test_ratio=value)
        assert response.status_code == 400 and "test_ratio" in response.context["form"].errors, value
