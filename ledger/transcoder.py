"""The ledger's event-state encoder: eventsourcing's ``JSONTranscoder`` bytes, made faster.

An event's ``state`` is what eventsourcing's ``JSONTranscoder`` writes (compact separators,
``ensure_ascii=False``, UTF-8; a registered type as ``{"_type_": name, "_data_": ...}``),
and the chain hashes those bytes (docs/FORMAT.md section 2). :class:`LedgerTranscoder`
writes the very same bytes with orjson (an order's state in about two thirds of the time:
formatting its dates and decimals is most of what is left), for every state made only of
the values whose orjson encoding is byte-for-byte json's: ``str``, ``int`` (64-bit),
``bool``, ``None``, ``dict`` with ``str`` keys, ``list``, ``tuple`` and the registered types
(Decimal, datetime, UUID, ...). Anything else (a float, whose shortest repr orjson writes
in its own style, a subclass, a non-string key, an integer past 64 bits, a lone surrogate)
goes to ``JSONTranscoder.encode`` unchanged, errors included. A property test holds the two
equal; decoding is ``JSONTranscoder``'s.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

__all__ = ["LedgerTranscoder"]


# What json encodes itself, never through a transcoding: a type in here, or a subclass of one.
_JSON_NATIVE = (str, int, float, dict, list, tuple)


class _NotPlain(Exception):
    """A value whose orjson bytes could differ from json's: encode the state with json."""


class LedgerTranscoder(JSONTranscoder):
    """``JSONTranscoder`` with the same output, faster on the states events hold."""

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(self._plain(obj))
        except (_NotPlain, orjson.JSONEncodeError, RecursionError):
            return super().encode(obj)

    def _plain(self, value: Any) -> Any:
        """``value`` with every registered type replaced by its ``_type_``/``_data_``
        object, as ``JSONTranscoder``'s ``default`` does; raises _NotPlain otherwise."""
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        if kind is dict:
            plain = {}
            for key, item in value.items():
                if type(key) is not str:
                    raise _NotPlain
                inner = type(item)  # the common values inline: one call less each
                if inner is str or item is None or inner is int or inner is bool:
                    plain[key] = item
                else:
                    plain[key] = self._plain(item)
            return plain
        if kind is list or kind is tuple:
            return [self._plain(item) for item in value]
        if isinstance(value, _JSON_NATIVE):  # a float, or a subclass json encodes natively
            raise _NotPlain
        transcoding = self.types.get(kind)
        if transcoding is None:
            raise _NotPlain
        return {"_type_": transcoding.name, "_data_": self._plain(transcoding.encode(value))}
