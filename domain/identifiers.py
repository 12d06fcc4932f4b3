"""Pure validators for the identifiers and values the domain's commands carry.

Each validator returns the normalised value or raises :class:`~domain.errors.InvalidField`
naming the field and the offending value. None of them does I/O, and none of them guesses:
a lower-case LEI or currency code is refused, not silently upper-cased, because a ledger
must record what it was given or refuse it.

Standards:

* LEI: ISO 17442, check digits by ISO 7064 MOD 97-10.
* ISIN: ISO 6166, country prefix from ISO 3166-1 alpha-2 or an ISIN special prefix,
  check digit by the Luhn algorithm over the letters-to-numbers converted string.
* MIC: ISO 10383, format only (see :func:`mic`).
* Currency: ISO 4217 alphabetic codes.
* Timestamps: ISO 8601 with an offset, kept in UTC to the microsecond (MiFID II RTS 25).
"""

from __future__ import annotations

import string
from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from domain.errors import InvalidField

__all__ = [
    "cfi",
    "ACTIVE_CURRENCIES",
    "ISIN_SPECIAL_PREFIXES",
    "ISO_3166_ALPHA2",
    "KNOWN_MICS",
    "currency",
    "decimal",
    "isin",
    "isin_check_digit",
    "lei",
    "lei_check_digits",
    "mic",
    "non_empty",
    "one_of",
    "probability",
    "sha256_hex",
    "utc_timestamp",
]

_DIGITS = frozenset(string.digits)
_UPPER = frozenset(string.ascii_uppercase)
_ALNUM = _UPPER | _DIGITS
_LOWER_HEX = frozenset("0123456789abcdef")


def _codes(table: str) -> frozenset[str]:
    """The white-space separated codes of ``table``."""
    return frozenset(table.split())


# ISO 3166-1 alpha-2: all 249 officially assigned codes (cross-checked against the
# Debian iso-codes 4.15 data). User-assigned codes such as XK (Kosovo) are not in it.
ISO_3166_ALPHA2: frozenset[str] = _codes(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET
    FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
    HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT
    JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ
    OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA
    RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
    UA UG UM US UY UZ
    VA VC VE VG VI VN VU
    WF WS
    YE YT
    ZA ZM ZW
    """
)

# ISIN prefixes that are not ISO 3166 countries: XS (international securities cleared
# through Euroclear/Clearstream), EU (European Union issuance), EZ (ANNA Derivatives Service
# Bureau, OTC derivatives), and the other ANNA-allocated special prefixes.
ISIN_SPECIAL_PREFIXES: frozenset[str] = frozenset(
    {"XS", "EU", "EZ", "QS", "QT", "XA", "XB", "XC", "XD", "XF"}
)

# ISO 4217 List One alphabetic codes in use, including the funds codes (BOV, CHE, CHW, CLF,
# COU, MXV, USN, UYI, UYW), precious metals, SDR and the testing / no-currency codes
# (XTS, XXX). Kept: codes the ISO list still carried at their recent replacement (ANG, CUC,
# SLL, ZWL) so historical events replay. Added since the iso-codes 4.15 data: ZWG (2024)
# and XCG (2025). Removed: HRK (Croatia adopted the euro on 2023-01-01).
ACTIVE_CURRENCIES: frozenset[str] = _codes(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN
    BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK
    DJF DKK DOP DZD
    EGP ERN ETB EUR
    FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD
    HKD HNL HTG HUF
    IDR ILS INR IQD IRR ISK
    JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN
    NAD NGN NIO NOK NPR NZD
    OMR
    PAB PEN PGK PHP PKR PLN PYG
    QAR
    RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV
    WST
    XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX
    YER
    ZAR ZMW ZWG ZWL
    """
)

# A few major venues, for the demo and for display. Not enforced: see mic().
KNOWN_MICS: frozenset[str] = frozenset(
    {
        "XETR",  # Xetra (Deutsche Boerse)
        "XFRA",  # Boerse Frankfurt
        "XEUR",  # Eurex
        "XPAR",  # Euronext Paris
        "XAMS",  # Euronext Amsterdam
        "XBRU",  # Euronext Brussels
        "XLIS",  # Euronext Lisbon
        "XMSM",  # Euronext Dublin
        "XMIL",  # Euronext Milan (Borsa Italiana)
        "XOSL",  # Oslo Boers
        "XLON",  # London Stock Exchange
        "XSWX",  # SIX Swiss Exchange
        "XMAD",  # Bolsa de Madrid
        "XWBO",  # Wiener Boerse
        "XSTO",  # Nasdaq Stockholm
        "XHEL",  # Nasdaq Helsinki
        "XCSE",  # Nasdaq Copenhagen
        "BATE",  # Cboe Europe BXE
        "CHIX",  # Cboe Europe CXE
        "TRQX",  # Turquoise
        "AQXE",  # Aquis Exchange
        "XNAS",  # Nasdaq
        "XNYS",  # New York Stock Exchange
        "XCME",  # Chicago Mercantile Exchange
        "XTKS",  # Tokyo Stock Exchange
        "XHKG",  # Hong Kong Exchanges
        "XASX",  # ASX
        "XOFF",  # off-venue (OTC, not on a trading venue)
        "XXXX",  # no venue / not applicable
    }
)


# Identifiers already found valid. Orders repeat the same few instruments and entities, and
# a check digit is the same every time: a hit skips the computation (only exact str values,
# so a hit is the string that was checked). Bounded: emptied when full.
_VALID_LEIS: set[str] = set()
_VALID_ISINS: set[str] = set()
_VALID_MAX = 65_536


def _remember(valid: set[str], value: str) -> str:
    if len(valid) >= _VALID_MAX:
        valid.clear()
    valid.add(value)
    return value


def _is_str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidField(field, value, f"is a {type(value).__name__}, not a string")
    return value


def _check_alnum_upper(value: str, field: str, standard: str) -> None:
    """Refuse anything but A-Z and 0-9, naming lower case explicitly."""
    if value != value.upper() and set(value.upper()) <= _ALNUM:
        raise InvalidField(field, value, f"must be upper case ({standard})")
    if not set(value) <= _ALNUM:
        raise InvalidField(field, value, f"may hold only A-Z and 0-9 ({standard})")


# Letters to numbers as ISO 7064 / ISO 6166 do: 0-9 stay, A=10 ... Z=35 (a table for
# str.translate: it runs once per identifier of every recorded order).
_LETTER_NUMBERS = {ord(ch): str(int(ch, 36)) for ch in string.ascii_uppercase}


def _to_digits(value: str) -> str:
    """Letters to numbers as ISO 7064 / ISO 6166 do: 0-9 stay, A=10 ... Z=35."""
    return value.translate(_LETTER_NUMBERS)


# --- LEI ---------------------------------------------------------------------------------


def lei_check_digits(prefix18: str) -> str:
    """The two ISO 7064 MOD 97-10 check digits that complete an 18-character LEI prefix.

    >>> lei_check_digits("5493001KJTIIGC8Y1R")
    '12'
    """
    _is_str(prefix18, "lei prefix")
    if len(prefix18) != 18:
        raise InvalidField("lei prefix", prefix18, f"must be 18 characters, got {len(prefix18)}")
    _check_alnum_upper(prefix18, "lei prefix", "ISO 17442")
    return f"{98 - int(_to_digits(prefix18 + '00')) % 97:02d}"


def lei(value: str, field: str = "lei") -> str:
    """An ISO 17442 Legal Entity Identifier: 20 of A-Z/0-9 ending in two check digits.

    The letters-to-numbers converted string, read as one integer, must be 1 modulo 97
    (ISO 7064 MOD 97-10). That catches every single substitution of a digit by a digit
    or of a letter by a letter, and every swap of two adjacent characters of the same
    kind; a digit put for a letter (or back) changes the converted string's length and
    can escape it, as it can in every MOD 97-10 scheme over letters.

    >>> lei("5493001KJTIIGC8Y1R12")
    '5493001KJTIIGC8Y1R12'
    """
    if type(value) is str and value in _VALID_LEIS:
        return value
    _is_str(value, field)
    if len(value) != 20:
        raise InvalidField(field, value, f"must be 20 characters (ISO 17442), got {len(value)}")
    _check_alnum_upper(value, field, "ISO 17442")
    if not set(value[18:]) <= _DIGITS:
        raise InvalidField(field, value, "must end in two numeric check digits (ISO 17442)")
    if int(_to_digits(value)) % 97 != 1:
        raise InvalidField(field, value, "has a wrong check digit (ISO 17442: mod 97 must be 1)")
    if value[18:] in ("00", "01"):
        # 00 and 01 can only stand where 97 or 98 was meant: MOD 97-10 yields 02..98.
        raise InvalidField(field, value, "has check digits outside 02-98 (ISO 7064 MOD 97-10)")
    return _remember(_VALID_LEIS, value)


# --- ISIN --------------------------------------------------------------------------------


# Digit characters to their Luhn values, plain and doubled (2 * d, minus 9 when over 9),
# as bytes.translate tables: summing the translated bytes runs in C.
_LUHN_PLAIN = bytes.maketrans(string.digits.encode(), bytes(range(10)))
_LUHN_DOUBLED = bytes.maketrans(
    string.digits.encode(), bytes(2 * d - 9 * (d > 4) for d in range(10))
)


def _luhn_check_digit(digits: str) -> str:
    """The Luhn digit to append to ``digits``: double every second digit from the right."""
    reverse = digits[::-1].encode("ascii")
    # The rightmost digit is doubled: the check digit will stand after it.
    total = sum(reverse[0::2].translate(_LUHN_DOUBLED)) + sum(reverse[1::2].translate(_LUHN_PLAIN))
    return str(-total % 10)


def isin_check_digit(prefix11: str) -> str:
    """The Luhn check digit that completes an 11-character ISIN prefix (ISO 6166).

    >>> isin_check_digit("US037833100")
    '5'
    """
    _is_str(prefix11, "isin prefix")
    if len(prefix11) != 11:
        raise InvalidField("isin prefix", prefix11, f"must be 11 characters, got {len(prefix11)}")
    _check_alnum_upper(prefix11, "isin prefix", "ISO 6166")
    return _luhn_check_digit(_to_digits(prefix11))


def isin(value: str, field: str = "isin") -> str:
    """An ISO 6166 ISIN: country or special prefix, 9 of A-Z/0-9, one Luhn check digit.

    >>> isin("DE0007164600")
    'DE0007164600'
    """
    if type(value) is str and value in _VALID_ISINS:
        return value
    _is_str(value, field)
    if len(value) != 12:
        raise InvalidField(field, value, f"must be 12 characters (ISO 6166), got {len(value)}")
    _check_alnum_upper(value, field, "ISO 6166")
    prefix = value[:2]
    if not set(prefix) <= _UPPER:
        raise InvalidField(field, value, "must start with a two-letter country code (ISO 6166)")
    if prefix not in ISO_3166_ALPHA2 and prefix not in ISIN_SPECIAL_PREFIXES:
        raise InvalidField(
            field,
            value,
            f"has unknown country code {prefix!r} (not ISO 3166-1 nor an ISIN special prefix)",
        )
    if value[11] not in _DIGITS:
        raise InvalidField(field, value, "must end in a numeric check digit (ISO 6166)")
    if _luhn_check_digit(_to_digits(value[:11])) != value[11]:
        raise InvalidField(field, value, "has a wrong check digit (ISO 6166: Luhn)")
    return _remember(_VALID_ISINS, value)


# --- MIC and currency --------------------------------------------------------------------


def mic(value: str, field: str = "venue") -> str:
    """An ISO 10383 Market Identifier Code: four of A-Z/0-9, e.g. XETR, or XOFF off-venue.

    Only the format is checked. The ISO 10383 registry is republished every month (venues
    open, close and are renamed), and a MIC that was valid when an order was sent stays the
    right thing to record even after it is withdrawn, so a frozen list here would refuse
    true events. :data:`KNOWN_MICS` names a few major venues for display; it is not enforced.

    >>> mic("XOFF")
    'XOFF'
    """
    _is_str(value, field)
    if len(value) != 4:
        raise InvalidField(field, value, f"must be 4 characters (ISO 10383), got {len(value)}")
    _check_alnum_upper(value, field, "ISO 10383")
    return value


def cfi(value: str, field: str = "cfi") -> str:
    """An ISO 10962 Classification of Financial Instruments code: six letters A-Z.

    RTS 22 asks for it for instruments without an ISIN on a venue (e.g. OTC FX
    forwards). ``X`` marks an attribute that does not apply, so only the shape is
    checked, not each attribute's table.

    >>> cfi("JFTXFP")
    'JFTXFP'
    """
    _is_str(value, field)
    if len(value) != 6 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise InvalidField(field, value, "must be 6 upper-case letters A-Z (ISO 10962)")
    return value


def currency(value: str, field: str = "currency") -> str:
    """An active ISO 4217 alphabetic currency code, upper case.

    >>> currency("EUR")
    'EUR'
    """
    _is_str(value, field)
    if value in ACTIVE_CURRENCIES:
        return value
    if value.upper() in ACTIVE_CURRENCIES:
        raise InvalidField(field, value, "must be upper case (ISO 4217)")
    raise InvalidField(field, value, "is not an active ISO 4217 currency code")


# --- numbers, times, text ----------------------------------------------------------------


def decimal(
    value: object, field: str, *, positive: bool = False, max_places: int | None = None
) -> Decimal:
    """A finite exact decimal from a Decimal, an int or a numeric string; never a float.

    ``positive`` requires a value above zero; ``max_places`` bounds the decimal places
    that carry information (trailing zeros do not count: ``1.50`` has one).

    >>> decimal("101.25", "price", positive=True, max_places=4)
    Decimal('101.25')
    """
    number: Decimal
    if isinstance(value, bool):
        raise InvalidField(field, value, "is a bool, not a number")
    if isinstance(value, float):
        raise InvalidField(field, value, "is a binary float; give a Decimal or a string")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        text = value.strip()
        if "_" in text:
            raise InvalidField(field, value, "is not a decimal number")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidField(field, value, "is not a decimal number") from None
    else:
        raise InvalidField(field, value, f"is a {type(value).__name__}, not a number")
    if not number.is_finite():
        raise InvalidField(field, value, "is not a finite number")
    if positive and number <= 0:
        raise InvalidField(field, value, "must be greater than 0")
    if max_places is not None:
        places = _decimal_places(number)
        if places > max_places:
            raise InvalidField(
                field, value, f"has {places} decimal places; at most {max_places} allowed"
            )
    return number


def _decimal_places(number: Decimal) -> int:
    """Decimal places of a finite ``number``, trailing zeros not counted (exact, no context)."""
    if number.is_zero():
        return 0
    digits, exponent = number.as_tuple().digits, number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: checked by the caller
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


def utc_timestamp(
    value: object,
    field: str,
    *,
    error: type[InvalidField] = InvalidField,
    kinds: str = "a datetime or ISO 8601 string",
) -> datetime:
    """An aware datetime or ISO 8601 string with an offset (or ``Z``), converted to UTC.

    Python datetimes hold microseconds, the granularity MiFID II RTS 25 asks of the
    fastest trading; finer fractions in a string are truncated by the ISO parser. A refusal
    is ``error`` (an InvalidField) naming ``field``; ``kinds`` says what is accepted.

    >>> utc_timestamp("2024-03-01T10:15:30.123456+01:00", "sent_at").isoformat()
    '2024-03-01T09:15:30.123456+00:00'
    """
    moment: datetime
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise error(field, value, "is not an ISO 8601 timestamp") from None
    else:
        raise error(field, value, f"is a {type(value).__name__}, not {kinds}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise error(field, value, "has no time zone; give UTC")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-05:00: past the year 9999 in UTC
        raise error(field, value, "is out of range once converted to UTC") from None


def non_empty(value: object, field: str, max_len: int = 200) -> str:
    """A string, stripped of surrounding white space, neither empty nor over ``max_len``.

    >>> non_empty("  momentum-v2 ", "strategy")
    'momentum-v2'
    """
    text = _is_str(value, field).strip()
    if not text:
        raise InvalidField(field, value, "must not be empty")
    if len(text) > max_len:
        raise InvalidField(field, value, f"is longer than {max_len} characters")
    return text


def one_of(value: object, field: str, allowed: Collection[str]) -> str:
    """``value`` itself, when it is one of the ``allowed`` strings.

    >>> one_of("BUY", "side", {"BUY", "SELL"})
    'BUY'
    """
    if not isinstance(value, str) or value not in allowed:
        raise InvalidField(field, value, "must be one of " + ", ".join(sorted(allowed)))
    return value


def probability(value: object, field: str) -> Decimal:
    """A decimal between 0 and 1 inclusive, e.g. a model's confidence or an agreement rate.

    >>> probability("0.95", "confidence")
    Decimal('0.95')
    """
    number = decimal(value, field)
    if not Decimal(0) <= number <= Decimal(1):
        raise InvalidField(field, value, "must be between 0 and 1")
    return number


def sha256_hex(value: object, field: str) -> str:
    """A SHA-256 digest as 64 lower-case hex characters (data-lineage hashes).

    >>> sha256_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "data")
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    text = _is_str(value, field)
    if len(text) != 64 or not set(text) <= _LOWER_HEX:
        raise InvalidField(field, value, "is not 64 lower-case hex characters (SHA-256)")
    return text
