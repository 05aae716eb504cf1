"""EC2 spot prices, offerings and notices as a :class:`~adapters.protocols.SpotMarket`.

- Prices: ``describe_spot_price_history`` (paginated) for one product description
  (``Linux/UNIX`` by default); the price in force is the latest row per (type, zone).
- Offerings: every (type, zone) of the request on both capacity types. On-demand prices
  come from the on-demand catalogue (:func:`sim.catalog.load_catalogue`, the simulator's
  ``scenarios/data/spot/on_demand_prices.csv`` by default); a type must be in it. An
  offering is available when ``describe_instance_type_offerings`` lists the type in the
  zone, and a spot offering also needs a spot price there (without one it is priced at
  on-demand and unavailable).
- Notices: EventBridge rules for ``EC2 Spot Instance Interruption Warning`` and ``EC2
  Instance Rebalance Recommendation`` deliver to an SQS queue; :meth:`notices` drains it,
  deletes each message it parsed and keeps the notices in memory (a notice is returned
  until a call asks for a later ``since``). A message it cannot parse is logged, kept in
  :attr:`Ec2SpotMarket.rejected` and left on the queue (its redrive policy moves it to a
  dead-letter queue): never deleted unread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.aws.clients import AwsClients
from adapters.aws.spot_notices import MalformedNotice, RejectedMessage, parse_notice
from adapters.protocols import Offering, PricePoint, SpotNotice
from adapters.times import naive_utc, utc_now
from scenarios import data_path
from sim.catalog import InstanceType, load_catalogue, lookup

log = logging.getLogger(__name__)

SQS_BATCH = 10  # receive_message / delete_message_batch limit


class Ec2SpotMarket:
    """Spot prices and offerings from EC2, notices from an SQS queue.

    Parameters
    ----------
    clients
        The client factory (``ec2``; ``sqs`` when a queue is given).
    on_demand
        The on-demand catalogue of the clients' region (type -> price).
    notices_queue_url
        The SQS queue EventBridge delivers the notices to; ``None``: no notices are
        read (:meth:`notices` returns none).
    product_description
        The spot product priced (``"Linux/UNIX"``).
    clock
        Now as naive UTC (offerings are priced now).
    max_messages
        At most this many SQS messages read per :meth:`notices` call.
    """

    def __init__(
        self,
        clients: AwsClients,
        on_demand: Mapping[str, InstanceType],
        *,
        notices_queue_url: str | None = None,
        product_description: str = "Linux/UNIX",
        clock: Callable[[], datetime] = utc_now,
        max_messages: int = 1000,
    ) -> None:
        self._ec2 = clients.client("ec2")
        self._sqs = clients.client("sqs") if notices_queue_url else None
        self.on_demand = on_demand
        self.notices_queue_url = notices_queue_url
        self.product_description = product_description
        self.clock = clock
        self.max_messages = max_messages
        self.rejected: list[RejectedMessage] = []
        self._held: dict[tuple[str, str, datetime], SpotNotice] = {}

    @classmethod
    def with_shipped_catalogue(cls, clients: AwsClients, **kwargs: Any) -> Ec2SpotMarket:
        """With the on-demand catalogue the simulator ships, for the clients' region."""
        path = data_path("spot", "on_demand_prices.csv")
        return cls(clients, load_catalogue(path, region=clients.region), **kwargs)

    # ------------------------------------------------------------------ offerings

    def offerings(self, instance_types: Sequence[str], azs: Sequence[str]) -> Sequence[Offering]:
        """On-demand and spot offerings of every (type, zone), priced now."""
        if not instance_types or not azs:
            return ()
        prices = {
            (t, z): lookup(self.on_demand, t, source="on-demand catalogue", field="instance_type")
            for t in instance_types
            for z in azs
        }
        offered = self._offered(instance_types, azs)
        spot = self._latest_spot(instance_types, azs)
        result: list[Offering] = []
        for (itype, az), item in prices.items():
            here = (itype, az) in offered
            od = item.on_demand_usd_per_hour
            result.append(Offering(itype, az, "on-demand", od, here))
            price = spot.get((itype, az))
            result.append(Offering(itype, az, "spot", od if price is None else price,
                                   here and price is not None))  # fmt: skip
        return tuple(result)

    def price_history(
        self, instance_type: str, azs: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[PricePoint]:
        """Spot prices in force during [start, end), oldest first (EC2 also returns the
        price in force at ``start``, stamped when it was set)."""
        points = {
            (p.time, p.az): p
            for p in self._spot_rows([instance_type], azs, start=start, end=end)
            if p.time < end
        }
        return tuple(sorted(points.values(), key=lambda p: (p.time, p.az)))

    def _latest_spot(
        self, instance_types: Sequence[str], azs: Sequence[str]
    ) -> dict[tuple[str, str], float]:
        latest: dict[tuple[str, str], PricePoint] = {}
        for point in self._spot_rows(instance_types, azs, start=self.clock(), end=None):
            key = (point.instance_type, point.az)
            if key not in latest or point.time > latest[key].time:
                latest[key] = point
        return {key: p.price_usd_per_hour for key, p in latest.items()}

    def _spot_rows(
        self,
        instance_types: Sequence[str],
        azs: Sequence[str],
        *,
        start: datetime,
        end: datetime | None,
    ) -> Iterable[PricePoint]:
        kwargs: dict[str, Any] = {
            "InstanceTypes": list(instance_types),
            "ProductDescriptions": [self.product_description],
            "StartTime": start.replace(tzinfo=UTC),
            "Filters": [{"Name": "availability-zone", "Values": list(azs)}],
        }
        if end is not None:
            kwargs["EndTime"] = end.replace(tzinfo=UTC)
        paginator = self._ec2.get_paginator("describe_spot_price_history")
        for page in paginator.paginate(**kwargs):
            for row in page["SpotPriceHistory"]:
                stamp = naive_utc(row["Timestamp"])
                yield PricePoint(stamp, row["InstanceType"], row["AvailabilityZone"],
                                 float(row["SpotPrice"]))  # fmt: skip

    def _offered(self, instance_types: Sequence[str], azs: Sequence[str]) -> set[tuple[str, str]]:
        paginator = self._ec2.get_paginator("describe_instance_type_offerings")
        pages = paginator.paginate(
            LocationType="availability-zone",
            Filters=[
                {"Name": "instance-type", "Values": list(instance_types)},
                {"Name": "location", "Values": list(azs)},
            ],
        )
        return {
            (o["InstanceType"], o["Location"])
            for page in pages
            for o in page["InstanceTypeOfferings"]
        }

    # ------------------------------------------------------------------ notices

    def notices(self, since: datetime) -> Sequence[SpotNotice]:
        """Notices sent at or after ``since``, oldest first (drains the queue first)."""
        if self._sqs is not None:
            self._drain()
        self._held = {key: n for key, n in self._held.items() if n.time >= since}
        return tuple(sorted(self._held.values(), key=lambda n: (n.time, n.instance_id)))

    def _drain(self) -> None:
        """Read the queue until it is empty, ``max_messages`` were read, or a batch holds
        only messages this drain saw already (a short visibility timeout re-delivers
        the messages left on the queue)."""
        seen: set[str] = set()
        while len(seen) < self.max_messages:
            reply = self._sqs.receive_message(
                QueueUrl=self.notices_queue_url,
                MaxNumberOfMessages=min(SQS_BATCH, self.max_messages - len(seen)),
                WaitTimeSeconds=0,
            )
            messages = [m for m in reply.get("Messages", []) if m["MessageId"] not in seen]
            if not messages:
                return
            seen.update(m["MessageId"] for m in messages)
            parsed = [m for m in messages if self._keep(m)]
            if parsed:
                self._delete(parsed)

    def _keep(self, message: Mapping[str, Any]) -> bool:
        """Hold the notice of ``message``; report it instead if it is not one."""
        try:
            notice = parse_notice(str(message.get("Body", "")))
        except MalformedNotice as exc:
            rejected = RejectedMessage(str(message.get("MessageId", "?")), str(exc))
            self.rejected.append(rejected)
            log.warning(
                "spot notices queue %s: message %s left on the queue: %s",
                self.notices_queue_url, rejected.message_id, rejected.reason,
            )  # fmt: skip
            return False
        self._held[(notice.kind.value, notice.instance_id, notice.time)] = notice
        return True

    def _delete(self, messages: Sequence[Mapping[str, Any]]) -> None:
        reply = self._sqs.delete_message_batch(
            QueueUrl=self.notices_queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
        for failed in reply.get("Failed", []):  # it comes back; held notices are deduplicated
            log.warning(
                "spot notices queue %s: delete failed (%s): it will be read again",
                self.notices_queue_url, failed.get("Code"),
            )  # fmt: skip
