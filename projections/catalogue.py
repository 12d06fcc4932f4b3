"""Every projection regledger maintains, by name."""

from __future__ import annotations

from .core import Projection, ProjectionError
from .governance import (
    DEPLOYMENTS_VIEW,
    DORA_VIEW,
    MODEL_VERSIONS_VIEW,
    ROLLBACKS_VIEW,
    SHADOW_COMPARISONS_VIEW,
    SLO_BREACHES_VIEW,
    USER_ACTIONS_VIEW,
)
from .trading import (
    COMPLIANCE_CHECKS_VIEW,
    MARKET_DATA_VIEW,
    ORDERS_VIEW,
    RISK_CALCULATIONS_VIEW,
    TRADE_DECISIONS_VIEW,
    TRANSACTIONS_VIEW,
)

__all__ = ["PROJECTIONS", "by_name"]

PROJECTIONS: tuple[Projection, ...] = (
    TRANSACTIONS_VIEW,
    ORDERS_VIEW,
    TRADE_DECISIONS_VIEW,
    MARKET_DATA_VIEW,
    RISK_CALCULATIONS_VIEW,
    COMPLIANCE_CHECKS_VIEW,
    DEPLOYMENTS_VIEW,
    ROLLBACKS_VIEW,
    DORA_VIEW,
    USER_ACTIONS_VIEW,
    SHADOW_COMPARISONS_VIEW,
    MODEL_VERSIONS_VIEW,
    SLO_BREACHES_VIEW,
)


def by_name(names: list[str] | tuple[str, ...]) -> list[Projection]:
    """The projections called ``names`` (all of them for none), in catalogue order.

    >>> [p.name for p in by_name(["orders", "transactions"])]
    ['transactions', 'orders']
    """
    known = {p.name: p for p in PROJECTIONS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ProjectionError(
            f"no projection named {', '.join(unknown)}; the projections are {', '.join(known)}"
        )
    return [p for p in PROJECTIONS if not names or p.name in names]
