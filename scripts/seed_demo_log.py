"""Record a small, seeded trading log through an unchanged eventsourcing Application.

Interim main job until ``regledger demo`` (the audit domain) exists: orders are
placed and filled on a few desks, and every event goes through the chained
recorder of the database REGLEDGER_DATABASE_URL names.

Example:

    python scripts/seed_demo_log.py --orders 2000 --seed 7
"""

from __future__ import annotations

import argparse
import random
from decimal import Decimal
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from rich.progress import Progress

from ledger import PERSISTENCE_MODULE


class DemoOrder(Aggregate):
    @event("Placed")
    def __init__(self, isin: str, side: str, quantity: int, limit: Decimal) -> None:
        self.isin, self.side, self.quantity, self.limit = isin, side, quantity, limit
        self.filled = 0

    @event("Filled")
    def fill(self, quantity: int, price: Decimal, venue: str) -> None:
        self.filled += quantity


class DemoTrading(Application[UUID]):
    env = {"PERSISTENCE_MODULE": PERSISTENCE_MODULE}


INSTRUMENTS = ["DE0007164600", "US0378331005", "GB0002634946", "FR0000131104"]
VENUES = ["XETR", "XNAS", "XLON", "XPAR"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311 - reproducible demo data, not secrets
    app = DemoTrading()
    events = 0
    with Progress(transient=True) as progress:
        task = progress.add_task("recording orders", total=args.orders)
        for _ in range(args.orders):
            i = rng.randrange(len(INSTRUMENTS))
            quantity = rng.randrange(100, 10_000, 100)
            limit = Decimal(rng.randrange(1000, 50000)) / 100
            order = DemoOrder(INSTRUMENTS[i], rng.choice("BS"), quantity, limit)
            while order.filled < quantity:
                part = min(quantity - order.filled, rng.randrange(100, 5_000, 100))
                order.fill(part, order.limit, VENUES[i])
            app.save(order)
            events += order.version
            progress.advance(task)
    print(f"recorded {args.orders:,} orders as {events:,} events")
    app.close()


if __name__ == "__main__":
    main()
