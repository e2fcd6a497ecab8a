"""Tests for fastreid_dmf.data.descriptions (FineGPR text descriptions)."""

from __future__ import annotations

import re

import pytest

import fastreid_dmf  # noqa: F401  (applies the fast-reid compat shim)
from fastreid_dmf.data.descriptions import (
    AGE_WORDS,
    DESCRIPTION_MODES,
    build_description,
    environment_words,
    keyword_description,
    sentence_description,
)
from fastreid_dmf.data.finegpr_format import (
    ATTRIBUTE_NAMES,
    ATTRIBUTE_VALUES,
    ILLUMINATIONS,
    WEATHERS,
    FineGPRCodes,
    parse_finegpr_filename,
)

BASE = {
    "gender": "male",
    "age": "adult",
    "hair_length": "short",
    "glasses": "no",
    "short_sleeve": "yes",
    "dress": "no",
    "boots": "yes",
    "hat": "yes",
    "bag": "no",
    "top_length": "short",
    "shoes": "light",
    "upper_color": "blue",
    "lower_color": "black",
}
# c28 = 0 degrees (front), w03 = overcast, l05 = afternoon, p01 = urban
CODES = parse_finegpr_filename("0001_c28_w03_l05_p01.jpg")
ACCESSORIES = ("glasses", "dress", "boots", "hat", "bag")


def _with(**changes: str) -> dict[str, str]:
    attrs = dict(BASE)
    attrs.update(changes)
    return attrs


def _keywords(attrs: dict[str, str], codes: FineGPRCodes | None = CODES) -> list[str]:
    return keyword_description(attrs, codes).split(", ")


def test_base_fixture_is_complete() -> None:
    assert set(BASE) == set(ATTRIBUTE_NAMES)


def test_keywords_match_dmf_fig2_example() -> None:
    # DMF paper Fig. 2 lists these keywords for a male adult with a hat in an overcast afternoon.
    words = _keywords(_with(boots="no"))
    assert words[:12] == [
        "male", "adult", "short hair", "blue upper clothes", "black lower clothes", "short sleeves",
        "short top", "light shoes", "hat", "overcast", "afternoon", "front view",
    ]
    assert words[12:] == ["urban scene"]


def test_keywords_name_every_attribute_value() -> None:
    attrs = _with(gender="female", age="older", hair_length="long", short_sleeve="no", top_length="long",
                  shoes="dark", upper_color="red", lower_color="green",
                  glasses="yes", dress="yes", boots="yes", hat="yes", bag="yes")
    words = _keywords(attrs, None)
    for expected in ("female", "old", "long hair", "red upper clothes", "green lower clothes", "long sleeves",
                     "long top", "dark shoes", *ACCESSORIES):
        assert expected in words
    assert len(words) == 8 + len(ACCESSORIES)


@pytest.mark.parametrize("accessory", ACCESSORIES)
def test_accessory_named_only_when_yes(accessory: str) -> None:
    others_no = {name: "no" for name in ACCESSORIES}
    assert accessory not in _keywords(_with(**others_no))
    assert accessory in _keywords(_with(**{**others_no, accessory: "yes"}))
    sentence_no = sentence_description(_with(**others_no), CODES)
    sentence_yes = sentence_description(_with(**{**others_no, accessory: "yes"}), CODES)
    assert not re.search(rf"\b{accessory}\b", sentence_no)
    assert re.search(rf"\b{accessory}\b", sentence_yes)
    assert "This person also" not in sentence_no
    verb = "carries" if accessory == "bag" else "wears"
    assert f"This person also {verb} " in sentence_yes


def test_sentence_follows_finegpr_c_template_with_fixed_grammar() -> None:
    sentence = sentence_description(_with(age="teenager"), CODES)
    assert sentence.startswith("There is a young male with short hair, who wears ")
    assert "short blue upper-body clothes with short sleeves" in sentence
    assert "black lower-body clothes, and light shoes" in sentence
    assert " in an overcast afternoon" in sentence
    assert "with a front viewpoint" in sentence
    assert sentence.endswith("This person also wears boots and a hat.")
    assert " a overcast" not in sentence and " a adult" not in sentence and " a old" not in sentence


@pytest.mark.parametrize("age, article", [("teenager", "a"), ("adult", "an"), ("older", "an")])
def test_sentence_age_words_and_articles(age: str, article: str) -> None:
    assert sentence_description(_with(age=age)).startswith(f"There is {article} {AGE_WORDS[age]} male ")
    assert AGE_WORDS[age] in _keywords(_with(age=age))


def test_sentence_lists_several_accessories() -> None:
    sentence = sentence_description(_with(glasses="yes", dress="yes", boots="yes", hat="yes", bag="yes"))
    assert sentence.endswith("This person also wears glasses, a dress, boots and a hat, and carries a bag.")


@pytest.mark.parametrize("mode", DESCRIPTION_MODES)
@pytest.mark.parametrize("name", ATTRIBUTE_NAMES)
def test_changing_any_attribute_changes_the_text(mode: str, name: str) -> None:
    reference = build_description(BASE, CODES, mode)
    for value in ATTRIBUTE_VALUES[name]:
        if value != BASE[name]:
            assert build_description(_with(**{name: value}), CODES, mode) != reference, (name, value)


@pytest.mark.parametrize("mode", DESCRIPTION_MODES)
def test_all_attribute_combinations_of_one_column_give_distinct_texts(mode: str) -> None:
    for name in ATTRIBUTE_NAMES:
        texts = {build_description(_with(**{name: v}), CODES, mode, False) for v in ATTRIBUTE_VALUES[name]}
        assert len(texts) == len(ATTRIBUTE_VALUES[name]), name


@pytest.mark.parametrize("mode", DESCRIPTION_MODES)
def test_colours_appear_for_upper_and_lower(mode: str) -> None:
    for colour in ATTRIBUTE_VALUES["upper_color"]:
        text = build_description(_with(upper_color=colour, lower_color=colour), CODES, mode)
        assert f"{colour} upper" in text and f"{colour} lower" in text


def test_environment_words() -> None:
    assert environment_words(CODES) == {
        "weather": "overcast", "illumination": "afternoon", "viewpoint": "front", "scene": "urban"}
    side = parse_finegpr_filename("0001_c01_w07_l01_p03.jpg")  # 90 degrees, snowlight, midnight, wild
    assert environment_words(side) == {
        "weather": "snowlight", "illumination": "midnight", "viewpoint": "right side", "scene": "wild"}


@pytest.mark.parametrize("weather", range(1, len(WEATHERS) + 1))
@pytest.mark.parametrize("illumination", [1, 4, len(ILLUMINATIONS)])
def test_environment_in_both_modes(weather: int, illumination: int) -> None:
    codes = FineGPRCodes(1, 10, weather, illumination, 5)  # c10 = 180 degrees = back, p05 = wild
    w, light = WEATHERS[weather - 1], ILLUMINATIONS[illumination - 1]
    sentence = build_description(BASE, codes, "sentence")
    article = "an" if w[0] in "aeiou" else "a"
    assert f" in {article} {w} {light}, with a back viewpoint." in sentence
    keywords = build_description(BASE, codes, "keywords").split(", ")
    assert keywords[-4:] == [w, light, "back view", "wild scene"]


@pytest.mark.parametrize("mode", DESCRIPTION_MODES)
def test_environment_off_is_identity_only(mode: str) -> None:
    other = FineGPRCodes(1, 19, 6, 7, 3)  # 270 degrees (left side), blizzard, night, wild
    off = build_description(BASE, CODES, mode, with_environment=False)
    assert off == build_description(BASE, other, mode, with_environment=False)
    assert off == build_description(BASE, None, mode, with_environment=False)
    for word in ("overcast", "afternoon", "front", "urban", "blizzard", "night", "left", "wild", "view"):
        assert word not in off
    on = build_description(BASE, CODES, mode, with_environment=True)
    assert on != off
    assert on != build_description(BASE, other, mode, with_environment=True)
    assert "left-side viewpoint" in build_description(BASE, other, "sentence")


def test_sentence_has_no_scene_but_keywords_do() -> None:
    urban, wild = FineGPRCodes(1, 28, 3, 5, 1), FineGPRCodes(1, 28, 3, 5, 3)
    assert build_description(BASE, urban, "sentence") == build_description(BASE, wild, "sentence")
    assert build_description(BASE, urban, "keywords") != build_description(BASE, wild, "keywords")


def test_modes_differ_and_are_deterministic() -> None:
    sentence = build_description(BASE, CODES, "sentence")
    keywords = build_description(BASE, CODES, "keywords")
    assert sentence != keywords
    assert sentence.startswith("There is") and not keywords.startswith("There is")
    assert build_description(dict(reversed(list(BASE.items()))), CODES, "sentence") == sentence
    assert build_description(BASE, parse_finegpr_filename("0001_c28_w03_l05_p01.jpg"), "keywords") == keywords


def test_default_mode_is_sentence() -> None:
    assert build_description(BASE, CODES) == sentence_description(BASE, CODES)


@pytest.mark.parametrize("bad_mode", ["caption", "", "Sentence", "keyword"])
def test_unknown_mode_raises(bad_mode: str) -> None:
    with pytest.raises(ValueError) as info:
        build_description(BASE, CODES, bad_mode)
    message = str(info.value)
    assert repr(bad_mode) in message
    assert "'sentence'" in message and "'keywords'" in message


def test_environment_needs_codes() -> None:
    with pytest.raises(ValueError, match="FineGPRCodes"):
        build_description(BASE, None, "sentence", with_environment=True)


def test_missing_attribute_raises() -> None:
    attrs = dict(BASE)
    del attrs["hat"]
    with pytest.raises(ValueError, match="'hat'"):
        build_description(attrs, CODES)


def test_unknown_attribute_value_raises() -> None:
    with pytest.raises(ValueError) as info:
        build_description(_with(upper_color="magenta"), CODES, "keywords")
    assert "'magenta'" in str(info.value) and "upper_color" in str(info.value)
