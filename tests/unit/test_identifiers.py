"""Unit and property tests of the domain's identifier and value validators.

Check digits are verified twice: by ``domain.identifiers`` and by the small reference
implementations below, written differently on purpose (ISO 7064's digit-by-digit
remainder, Luhn summed from the left), so one bug cannot hide in both.
"""

from __future__ import annotations

import doctest
import string
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import domain.errors
import domain.identifiers
from domain.errors import (
    ApprovalRequired,
    DomainError,
    InvalidField,
    InvalidTransition,
    RuleViolation,
    SeparationOfDutiesViolated,
)
from domain.identifiers import (
    ACTIVE_CURRENCIES,
    ISIN_SPECIAL_PREFIXES,
    ISO_3166_ALPHA2,
    KNOWN_MICS,
    currency,
    decimal,
    isin,
    isin_check_digit,
    lei,
    lei_check_digits,
    mic,
    non_empty,
    one_of,
    probability,
    sha256_hex,
    utc_timestamp,
)

ALPHABET = string.ascii_uppercase + string.digits
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# --- independent reference computations ---------------------------------------------------

LETTER_VALUES = {letter: str(10 + i) for i, letter in enumerate(string.ascii_uppercase)}


def converted(text: str) -> str:
    return "".join(LETTER_VALUES.get(ch, ch) for ch in text)


def reference_mod97(text: str) -> int:
    """ISO 7064 MOD 97-10 remainder, digit by digit (no big integers)."""
    remainder = 0
    for ch in converted(text):
        remainder = (remainder * 10 + ord(ch) - ord("0")) % 97
    return remainder


def reference_luhn_valid(digits: str) -> bool:
    """Luhn over a full digit string (check digit last), summed from the left."""
    total = 0
    parity = len(digits) % 2  # digits at this index parity, from the left, are doubled
    for index, ch in enumerate(digits):
        n = int(ch)
        if index % 2 == parity:
            n = n * 2 - 9 if n >= 5 else n * 2
        total += n
    return total % 10 == 0


def message(excinfo: pytest.ExceptionInfo[InvalidField]) -> str:
    return str(excinfo.value)


# --- errors --------------------------------------------------------------------------------


def test_exception_tree() -> None:
    assert issubclass(InvalidField, DomainError)
    assert issubclass(InvalidField, ValueError)
    assert issubclass(RuleViolation, DomainError)
    assert not issubclass(RuleViolation, ValueError)
    for rule in (ApprovalRequired, SeparationOfDutiesViolated, InvalidTransition):
        assert issubclass(rule, RuleViolation)
        assert rule.__doc__
    assert str(InvalidTransition("order O-1 is already filled")) == "order O-1 is already filled"
    assert set(domain.errors.__all__) == {
        "DomainError",
        "InvalidField",
        "RuleViolation",
        "ApprovalRequired",
        "SeparationOfDutiesViolated",
        "InvalidTransition",
    }


def test_invalid_field_attributes_and_message() -> None:
    error = InvalidField("qty", 5, "must be even")
    assert (error.field, error.value, error.problem) == ("qty", 5, "must be even")
    assert str(error) == "qty=5 must be even"


def test_invalid_field_truncates_long_reprs_to_80_characters() -> None:
    exactly_80 = "x" * 78  # repr adds two quotes
    assert str(InvalidField("f", exactly_80, "p")) == f"f='{exactly_80}' p"
    long_value = "y" * 200
    text = str(InvalidField("f", long_value, "p"))
    assert text == "f='" + "y" * 76 + "... p"
    assert len(text.removeprefix("f=").removesuffix(" p")) == 80


def test_docstring_examples() -> None:
    for module in (domain.identifiers, domain.errors):
        result = doctest.testmod(module)
        assert result.failed == 0
    assert doctest.testmod(domain.identifiers).attempted >= 12


# --- LEI -------------------------------------------------------------------------------------

REAL_LEIS = [
    "5493001KJTIIGC8Y1R12",  # the LEI of GLEIF's own examples (Bloomberg Finance L.P.)
    "7LTWFZYICNSX8D621K86",  # Deutsche Bank AG
    "R0MUWSFPU8MPRO8K5P83",  # BNP Paribas SA
    "HWUPKR0MPOU8FGXBT394",  # Apple Inc.
    "8I5DZWZKVSZI1NUHU748",  # JPMorgan Chase & Co.
    "529900T8BM49AURSDO55",  # registered with a German LOU (prefix 529900)
]


@pytest.mark.parametrize("code", REAL_LEIS)
def test_real_leis_validate(code: str) -> None:
    assert reference_mod97(code) == 1
    assert lei(code) == code
    assert lei_check_digits(code[:18]) == code[18:]


def test_constructed_leis() -> None:
    assert lei_check_digits("529900ABCDEF123456") == "97"
    assert lei_check_digits("984500AAAABBBBCCCC") == "84"
    for code in ("529900ABCDEF12345697", "984500AAAABBBBCCCC84"):
        assert reference_mod97(code) == 1
        assert lei(code) == code


def test_lei_wrong_check_digit() -> None:
    with pytest.raises(InvalidField) as excinfo:
        lei("5493001KJTIIGC8Y1R13")
    assert message(excinfo) == (
        "lei='5493001KJTIIGC8Y1R13' has a wrong check digit (ISO 17442: mod 97 must be 1)"
    )
    assert excinfo.value.field == "lei"
    assert excinfo.value.value == "5493001KJTIIGC8Y1R13"


def test_lei_changed_body_character() -> None:
    with pytest.raises(InvalidField, match="wrong check digit"):
        lei("7LTWFZYICNSX8D621K87")
    with pytest.raises(InvalidField, match="wrong check digit"):
        lei("7LTWFZYICNSX8D631K86")


def test_lei_wrong_length() -> None:
    with pytest.raises(InvalidField) as excinfo:
        lei("5493001KJTIIGC8Y1R1", field="issuer_lei")
    assert message(excinfo) == (
        "issuer_lei='5493001KJTIIGC8Y1R1' must be 20 characters (ISO 17442), got 19"
    )


def test_lei_lowercase_is_refused_not_uppercased() -> None:
    with pytest.raises(InvalidField) as excinfo:
        lei("5493001kjtiigc8y1r12")
    assert message(excinfo) == "lei='5493001kjtiigc8y1r12' must be upper case (ISO 17442)"


def test_lei_other_format_errors() -> None:
    with pytest.raises(InvalidField) as excinfo:
        lei("5493001KJTIIGC8Y1-12")
    assert message(excinfo) == "lei='5493001KJTIIGC8Y1-12' may hold only A-Z and 0-9 (ISO 17442)"
    with pytest.raises(InvalidField) as excinfo:
        lei("5493001KJTIIGC8Y1R1A")
    assert message(excinfo) == (
        "lei='5493001KJTIIGC8Y1R1A' must end in two numeric check digits (ISO 17442)"
    )
    with pytest.raises(InvalidField) as excinfo:
        lei(12345)  # type: ignore[arg-type]
    assert message(excinfo) == "lei=12345 is a int, not a string"


def test_lei_check_digits_00_and_01_are_refused() -> None:
    # Find a prefix whose MOD 97-10 digits are 98: then "01" also gives remainder 1.
    prefix = next(
        p for p in (f"529900{n:012d}" for n in range(10_000)) if lei_check_digits(p) == "98"
    )
    assert reference_mod97(prefix + "01") == 1
    assert lei(prefix + "98") == prefix + "98"
    with pytest.raises(InvalidField, match="outside 02-98"):
        lei(prefix + "01")


def test_lei_check_digits_rejects_bad_prefix() -> None:
    with pytest.raises(InvalidField) as excinfo:
        lei_check_digits("ABC")
    assert message(excinfo) == "lei prefix='ABC' must be 18 characters, got 3"


def test_mod97_misses_some_digit_for_letter_substitutions() -> None:
    """A digit put for a letter changes the converted length; MOD 97-10 can miss that."""
    original, substituted = "OO3SB09GLSHV616MTS47", "OO3SBU9GLSHV616MTS47"
    assert lei(original) == original
    assert lei(substituted) == substituted


lei_prefixes = st.text(alphabet=ALPHABET, min_size=18, max_size=18)


@given(lei_prefixes)
def test_every_prefix_with_its_check_digits_validates(prefix: str) -> None:
    digits = lei_check_digits(prefix)
    assert len(digits) == 2
    assert 2 <= int(digits) <= 98
    assert reference_mod97(prefix + digits) == 1
    assert lei(prefix + digits) == prefix + digits


@given(lei_prefixes)
def test_mod97_detects_every_same_kind_single_substitution(prefix: str) -> None:
    code = prefix + lei_check_digits(prefix)
    for position, old in enumerate(code):
        kind = string.digits if old in string.digits else string.ascii_uppercase
        for new in kind:
            if new == old:
                continue
            changed = code[:position] + new + code[position + 1 :]
            assert reference_mod97(changed) != 1
            with pytest.raises(InvalidField):
                lei(changed)


@given(lei_prefixes, st.integers(0, 19), st.sampled_from(ALPHABET))
def test_any_single_substitution_is_refused_or_mod97_equivalent(
    prefix: str, position: int, new: str
) -> None:
    """Mixed digit/letter substitutions: lei() agrees exactly with the reference check."""
    code = prefix + lei_check_digits(prefix)
    changed = code[:position] + new + code[position + 1 :]
    if changed == code:
        return
    accepted_by_reference = (
        set(changed[18:]) <= set(string.digits)
        and changed[18:] not in ("00", "01")
        and reference_mod97(changed) == 1
    )
    try:
        lei(changed)
    except InvalidField:
        assert not accepted_by_reference
    else:
        assert accepted_by_reference


# --- ISIN ------------------------------------------------------------------------------------

REAL_ISINS = [
    "US0378331005",  # Apple Inc.
    "DE0007164600",  # SAP SE
    "GB0002634946",  # BAE Systems plc
    "FR0000131104",  # BNP Paribas SA
    "US5949181045",  # Microsoft Corp.
    "IE00B4L5Y983",  # iShares Core MSCI World UCITS ETF
    "XS2314659447",  # a Eurobond (international, Euroclear/Clearstream)
]


@pytest.mark.parametrize("code", REAL_ISINS)
def test_real_isins_validate(code: str) -> None:
    assert reference_luhn_valid(converted(code))
    assert isin(code) == code
    assert isin_check_digit(code[:11]) == code[11]


def test_ez_isin_for_an_otc_fx_forward() -> None:
    """ANNA DSB allocates EZ ISINs to OTC derivatives, e.g. an FX forward."""
    prefix = "EZ9724VTXK2"
    assert isin_check_digit(prefix) == "2"
    assert reference_luhn_valid(converted(prefix + "2"))
    assert isin("EZ9724VTXK22") == "EZ9724VTXK22"


def test_isin_wrong_check_digit() -> None:
    with pytest.raises(InvalidField) as excinfo:
        isin("US0378331006")
    assert message(excinfo) == "isin='US0378331006' has a wrong check digit (ISO 6166: Luhn)"


def test_isin_unknown_country() -> None:
    code = "QQ0378331" + "00"
    code += isin_check_digit(code)  # a correct check digit: only the country is wrong
    with pytest.raises(InvalidField) as excinfo:
        isin(code, field="instrument")
    assert message(excinfo) == (
        f"instrument={code!r} has unknown country code 'QQ' "
        "(not ISO 3166-1 nor an ISIN special prefix)"
    )


def test_isin_lowercase_length_and_format() -> None:
    with pytest.raises(InvalidField) as excinfo:
        isin("us0378331005")
    assert message(excinfo) == "isin='us0378331005' must be upper case (ISO 6166)"
    with pytest.raises(InvalidField) as excinfo:
        isin("US037833100")
    assert message(excinfo) == "isin='US037833100' must be 12 characters (ISO 6166), got 11"
    with pytest.raises(InvalidField) as excinfo:
        isin("1S0378331005")
    assert message(excinfo) == (
        "isin='1S0378331005' must start with a two-letter country code (ISO 6166)"
    )
    with pytest.raises(InvalidField) as excinfo:
        isin("US037833100X")
    assert message(excinfo) == "isin='US037833100X' must end in a numeric check digit (ISO 6166)"


def test_luhn_misses_some_letter_substitutions() -> None:
    """A letter is two converted digits; Luhn can miss a change of both."""
    assert isin("USP8IX4EA4Q4") == "USP8IX4EA4Q4"
    assert isin("USH8IX4EA4Q4") == "USH8IX4EA4Q4"


def test_country_tables() -> None:
    assert len(ISO_3166_ALPHA2) == 249
    assert {"DE", "US", "GB", "FR", "SS", "BQ", "CW", "SX", "AX"} <= ISO_3166_ALPHA2
    assert {"XS", "EU", "EZ", "QQ", "XK", "UK"}.isdisjoint(ISO_3166_ALPHA2)
    assert {"XS", "EU", "EZ"} <= ISIN_SPECIAL_PREFIXES
    assert ISIN_SPECIAL_PREFIXES.isdisjoint(ISO_3166_ALPHA2)


isin_prefixes = st.builds(
    lambda country, body: country + body,
    st.sampled_from(sorted(ISO_3166_ALPHA2 | ISIN_SPECIAL_PREFIXES)),
    st.text(alphabet=ALPHABET, min_size=9, max_size=9),
)


@given(isin_prefixes)
def test_every_isin_prefix_with_its_check_digit_validates(prefix: str) -> None:
    code = prefix + isin_check_digit(prefix)
    assert reference_luhn_valid(converted(code))
    assert isin(code) == code


@given(isin_prefixes)
def test_isin_any_other_check_digit_fails(prefix: str) -> None:
    right = isin_check_digit(prefix)
    for wrong in string.digits:
        if wrong != right:
            with pytest.raises(InvalidField, match="wrong check digit"):
                isin(prefix + wrong)


@given(isin_prefixes, st.integers(2, 10), st.sampled_from(string.digits))
def test_isin_single_digit_change_in_body_fails(prefix: str, position: int, new: str) -> None:
    """A digit for a digit is one changed digit in the converted string: Luhn sees it."""
    code = prefix + isin_check_digit(prefix)
    if code[position] not in string.digits or code[position] == new:
        return
    changed = code[:position] + new + code[position + 1 :]
    assert not reference_luhn_valid(converted(changed))
    with pytest.raises(InvalidField, match="wrong check digit"):
        isin(changed)


@given(st.text(alphabet=string.digits, min_size=2, max_size=30), st.data())
def test_luhn_detects_any_single_digit_change(digits: str, data: st.DataObject) -> None:
    """Over any converted string: fix it up to be Luhn-valid, then change one digit."""
    base = digits[:-1] + next(d for d in string.digits if reference_luhn_valid(digits[:-1] + d))
    position = data.draw(st.integers(0, len(base) - 1))
    new = data.draw(st.sampled_from(string.digits).filter(lambda d: d != base[position]))
    assert not reference_luhn_valid(base[:position] + new + base[position + 1 :])


# --- MIC and currency ------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["XETR", "XPAR", "XLON", "XNAS", "XOFF", "XXXX", "BATE", "MTAA"])
def test_mic_valid(code: str) -> None:
    assert mic(code) == code


def test_mic_invalid() -> None:
    with pytest.raises(InvalidField) as excinfo:
        mic("XET")
    assert message(excinfo) == "venue='XET' must be 4 characters (ISO 10383), got 3"
    with pytest.raises(InvalidField) as excinfo:
        mic("xetr")
    assert message(excinfo) == "venue='xetr' must be upper case (ISO 10383)"
    with pytest.raises(InvalidField) as excinfo:
        mic("XE-R", field="execution_venue")
    assert message(excinfo) == "execution_venue='XE-R' may hold only A-Z and 0-9 (ISO 10383)"


def test_known_mics_are_all_well_formed() -> None:
    assert {"XETR", "XPAR", "XLON", "XNAS", "XNYS", "XOFF", "XXXX", "CHIX", "TRQX"} <= KNOWN_MICS
    for code in KNOWN_MICS:
        assert mic(code) == code


def test_currency() -> None:
    assert currency("EUR") == "EUR"
    assert currency("USD", field="settlement_currency") == "USD"
    with pytest.raises(InvalidField) as excinfo:
        currency("EURO")
    assert message(excinfo) == "currency='EURO' is not an active ISO 4217 currency code"
    with pytest.raises(InvalidField) as excinfo:
        currency("eur")
    assert message(excinfo) == "currency='eur' must be upper case (ISO 4217)"
    with pytest.raises(InvalidField) as excinfo:
        currency("XYZ")
    assert message(excinfo) == "currency='XYZ' is not an active ISO 4217 currency code"
    with pytest.raises(InvalidField, match="not an active"):
        currency("HRK")  # replaced by the euro on 2023-01-01
    with pytest.raises(InvalidField, match="not an active"):
        currency("DEM")


def test_currency_table() -> None:
    assert 160 <= len(ACTIVE_CURRENCIES) <= 190
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in ACTIVE_CURRENCIES)
    assert {"EUR", "USD", "GBP", "JPY", "CHF", "CNY", "SLE", "VES", "ZWG", "XCG"} <= (
        ACTIVE_CURRENCIES
    )


# --- decimal -------------------------------------------------------------------------------


def test_decimal_accepts_decimal_int_and_string() -> None:
    assert decimal(Decimal("101.25"), "price") == Decimal("101.25")
    assert decimal(7, "qty") == Decimal(7)
    assert decimal(" 0.0001 ", "tick") == Decimal("0.0001")
    assert decimal("-3.5", "pnl") == Decimal("-3.5")
    assert decimal("1E+3", "qty") == Decimal(1000)


def test_decimal_refuses_float_with_exact_message() -> None:
    with pytest.raises(InvalidField) as excinfo:
        decimal(0.1, "price")
    assert message(excinfo) == "price=0.1 is a binary float; give a Decimal or a string"


@pytest.mark.parametrize("value", [Decimal("NaN"), "NaN", "sNaN", "Infinity", Decimal("-Inf")])
def test_decimal_refuses_non_finite(value: object) -> None:
    with pytest.raises(InvalidField, match="is not a finite number"):
        decimal(value, "price")


def test_decimal_other_refusals() -> None:
    with pytest.raises(InvalidField) as excinfo:
        decimal("12,5", "price")
    assert message(excinfo) == "price='12,5' is not a decimal number"
    with pytest.raises(InvalidField, match="not a decimal number"):
        decimal("1_000", "qty")
    with pytest.raises(InvalidField) as excinfo:
        decimal(True, "qty")
    assert message(excinfo) == "qty=True is a bool, not a number"
    with pytest.raises(InvalidField) as excinfo:
        decimal(None, "qty")
    assert message(excinfo) == "qty=None is a NoneType, not a number"


def test_decimal_positive() -> None:
    assert decimal("0.01", "qty", positive=True) == Decimal("0.01")
    for value in ("0", "-0", "-1"):
        with pytest.raises(InvalidField) as excinfo:
            decimal(value, "qty", positive=True)
        assert message(excinfo) == f"qty={value!r} must be greater than 0"


def test_decimal_max_places() -> None:
    assert decimal("101.2500", "price", max_places=2) == Decimal("101.2500")
    assert decimal("100", "price", max_places=0) == Decimal(100)
    assert decimal("1E+2", "price", max_places=0) == Decimal(100)
    assert decimal("0.000", "price", max_places=0) == Decimal(0)
    with pytest.raises(InvalidField) as excinfo:
        decimal("101.255", "price", max_places=2)
    assert message(excinfo) == "price='101.255' has 3 decimal places; at most 2 allowed"
    # exact even beyond the default 28-digit context precision
    long_value = "1." + "0" * 40 + "1"
    with pytest.raises(InvalidField, match="has 41 decimal places; at most 40 allowed"):
        decimal(long_value, "price", max_places=40)


# --- utc_timestamp ---------------------------------------------------------------------------


def test_utc_timestamp_converts_offsets_to_utc() -> None:
    result = utc_timestamp("2024-03-01T10:15:30.123456+01:00", "sent_at")
    assert result == datetime(2024, 3, 1, 9, 15, 30, 123456, tzinfo=UTC)
    assert result.tzinfo is UTC
    aware = datetime(2024, 3, 1, 4, 0, tzinfo=timezone(timedelta(hours=-5)))
    converted_aware = utc_timestamp(aware, "sent_at")
    assert converted_aware == datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    assert converted_aware.tzinfo is UTC


def test_utc_timestamp_accepts_z() -> None:
    result = utc_timestamp("2024-03-01T09:15:30.000001Z", "sent_at")
    assert result == datetime(2024, 3, 1, 9, 15, 30, 1, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_utc_timestamp_refuses_naive() -> None:
    with pytest.raises(InvalidField) as excinfo:
        utc_timestamp(datetime(2024, 3, 1, 9, 0), "sent_at")
    assert message(excinfo) == (
        "sent_at=datetime.datetime(2024, 3, 1, 9, 0) has no time zone; give UTC"
    )
    with pytest.raises(InvalidField) as excinfo:
        utc_timestamp("2024-03-01T09:00:00", "sent_at")
    assert message(excinfo) == "sent_at='2024-03-01T09:00:00' has no time zone; give UTC"


def test_utc_timestamp_other_refusals() -> None:
    with pytest.raises(InvalidField) as excinfo:
        utc_timestamp("yesterday", "sent_at")
    assert message(excinfo) == "sent_at='yesterday' is not an ISO 8601 timestamp"
    with pytest.raises(InvalidField) as excinfo:
        utc_timestamp(1709283600, "sent_at")
    assert message(excinfo) == "sent_at=1709283600 is a int, not a datetime or ISO 8601 string"
    with pytest.raises(InvalidField) as excinfo:  # valid where it was written, not in UTC
        utc_timestamp("9999-12-31T23:59:59-05:00", "sent_at")
    assert message(excinfo) == (
        "sent_at='9999-12-31T23:59:59-05:00' is out of range once converted to UTC"
    )


# --- text, choices, probability, hashes ----------------------------------------------------


def test_non_empty() -> None:
    assert non_empty("  momentum-v2 ", "strategy") == "momentum-v2"
    assert non_empty("x" * 5, "strategy", max_len=5) == "xxxxx"
    with pytest.raises(InvalidField) as excinfo:
        non_empty("   ", "strategy")
    assert message(excinfo) == "strategy='   ' must not be empty"
    with pytest.raises(InvalidField) as excinfo:
        non_empty("abcdef", "strategy", max_len=5)
    assert message(excinfo) == "strategy='abcdef' is longer than 5 characters"
    with pytest.raises(InvalidField) as excinfo:
        non_empty(None, "strategy")
    assert message(excinfo) == "strategy=None is a NoneType, not a string"


def test_one_of() -> None:
    assert one_of("SELL", "side", ("BUY", "SELL")) == "SELL"
    with pytest.raises(InvalidField) as excinfo:
        one_of("HOLD", "side", {"SELL", "BUY", "SHORT"})
    assert message(excinfo) == "side='HOLD' must be one of BUY, SELL, SHORT"
    with pytest.raises(InvalidField, match="must be one of BUY, SELL"):
        one_of(1, "side", ["SELL", "BUY"])


def test_probability() -> None:
    assert probability("0", "confidence") == Decimal(0)
    assert probability(1, "confidence") == Decimal(1)
    assert probability("0.975", "agreement_rate") == Decimal("0.975")
    with pytest.raises(InvalidField) as excinfo:
        probability("1.01", "confidence")
    assert message(excinfo) == "confidence='1.01' must be between 0 and 1"
    with pytest.raises(InvalidField, match="must be between 0 and 1"):
        probability(Decimal("-0.001"), "confidence")
    with pytest.raises(InvalidField, match="binary float"):
        probability(0.5, "confidence")


def test_sha256_hex() -> None:
    assert sha256_hex(EMPTY_SHA256, "dataset_hash") == EMPTY_SHA256
    for bad in (EMPTY_SHA256.upper(), EMPTY_SHA256[:-1], EMPTY_SHA256[:-1] + "g"):
        with pytest.raises(InvalidField, match=r"is not 64 lower-case hex characters \(SHA-256\)"):
            sha256_hex(bad, "dataset_hash")
    with pytest.raises(InvalidField) as excinfo:
        sha256_hex("abc", "dataset_hash")
    assert message(excinfo) == "dataset_hash='abc' is not 64 lower-case hex characters (SHA-256)"
