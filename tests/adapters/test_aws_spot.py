"""Ec2SpotMarket: offerings (moto's instance-type offerings and synthetic spot rows,
on-demand prices from the shipped catalogue), realistic price history through the Stubber,
and notices from an EventBridge rule -> SQS queue."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber

from adapters.aws.spot import Ec2SpotMarket
from adapters.aws.spot_notices import MalformedNotice, parse_notice
from adapters.protocols import NoticeKind, Offering, PricePoint, SpotMarket
from sim.errors import InputError

pytestmark = pytest.mark.aws

NOW = datetime(2024, 5, 1, 12, 0)
DETAIL_TYPES = ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"]


def test_offerings_on_both_capacity_types(aws) -> None:
    market = Ec2SpotMarket.with_shipped_catalogue(aws, clock=lambda: NOW)
    assert isinstance(market, SpotMarket)
    offers = {
        (o.instance_type, o.az, o.capacity_type): o
        for o in market.offerings(["c5.2xlarge", "p4d.24xlarge"], ["us-east-1a", "us-east-1f"])
    }
    assert len(offers) == 8
    assert offers["c5.2xlarge", "us-east-1a", "on-demand"] == Offering(
        "c5.2xlarge", "us-east-1a", "on-demand", 0.34, True
    )
    # moto's synthetic spot row: price 0.00001 wherever the type is offered
    assert offers["c5.2xlarge", "us-east-1f", "spot"] == Offering(
        "c5.2xlarge", "us-east-1f", "spot", 0.00001, True
    )
    # p4d.24xlarge is not offered in us-east-1f: unavailable on both, spot priced on-demand
    assert offers["p4d.24xlarge", "us-east-1f", "on-demand"].available is False
    assert offers["p4d.24xlarge", "us-east-1f", "spot"] == Offering(
        "p4d.24xlarge", "us-east-1f", "spot", 32.7726, False
    )


def test_a_type_missing_from_the_catalogue_is_an_input_error(aws) -> None:
    market = Ec2SpotMarket.with_shipped_catalogue(aws, clock=lambda: NOW)
    with pytest.raises(InputError, match=r"c5\.xlargee"):
        market.offerings(["c5.xlargee"], ["us-east-1a"])


def _row(az: str, price: str, when: datetime) -> dict:
    return {"AvailabilityZone": az, "InstanceType": "m5.large", "ProductDescription": "Linux/UNIX",
            "SpotPrice": price, "Timestamp": when.replace(tzinfo=UTC)}  # fmt: skip


def test_price_history_pages_oldest_first_through_the_stubber(aws) -> None:
    # moto's history is one synthetic row; EC2's real answer (newest first, the price in
    # force at StartTime included, several pages) is stubbed and checked against the model
    market = Ec2SpotMarket.with_shipped_catalogue(aws)
    start, end = datetime(2024, 5, 1, 0, 0), datetime(2024, 5, 1, 6, 0)
    expected = {
        "InstanceTypes": ["m5.large"], "ProductDescriptions": ["Linux/UNIX"],
        "StartTime": start.replace(tzinfo=UTC), "EndTime": end.replace(tzinfo=UTC),
        "Filters": [{"Name": "availability-zone", "Values": ["us-east-1a", "us-east-1b"]}],
    }  # fmt: skip
    with Stubber(aws.client("ec2")) as stub:
        stub.add_response(
            "describe_spot_price_history",
            {"SpotPriceHistory": [_row("us-east-1b", "0.038900", datetime(2024, 5, 1, 5, 12, 44)),
                                  _row("us-east-1a", "0.041200", datetime(2024, 5, 1, 3, 47, 9))],
             "NextToken": "AAEAAU0XbUpk0pQFJvLLOdn2V0="},
            expected,
        )  # fmt: skip
        stub.add_response(
            "describe_spot_price_history",
            {"SpotPriceHistory": [_row("us-east-1a", "0.039700", datetime(2024, 4, 30, 21, 2, 31)),
                                  _row("us-east-1b", "0.037500", datetime(2024, 4, 30, 19, 55, 3))],
             "NextToken": ""},
            {**expected, "NextToken": "AAEAAU0XbUpk0pQFJvLLOdn2V0="},
        )  # fmt: skip
        history = market.price_history("m5.large", ["us-east-1a", "us-east-1b"], start, end)
        stub.assert_no_pending_responses()
    assert history == (
        PricePoint(datetime(2024, 4, 30, 19, 55, 3), "m5.large", "us-east-1b", 0.0375),
        PricePoint(datetime(2024, 4, 30, 21, 2, 31), "m5.large", "us-east-1a", 0.0397),
        PricePoint(datetime(2024, 5, 1, 3, 47, 9), "m5.large", "us-east-1a", 0.0412),
        PricePoint(datetime(2024, 5, 1, 5, 12, 44), "m5.large", "us-east-1b", 0.0389),
    )


# --------------------------------------------------------------------------- notices


def _visible(boto_client, url: str) -> tuple[int, int]:
    attributes = boto_client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]))  # fmt: skip


def test_notices_from_eventbridge_through_sqs(aws, boto_client, notices_queue, send_notice) -> None:
    warned = datetime(2024, 5, 1, 11, 58, 5)
    send_notice(DETAIL_TYPES[1], "i-0b22a22eec53b9321", warned - timedelta(minutes=3))
    action = {"instance-action": "terminate"}
    send_notice(DETAIL_TYPES[0], "i-0a11f11aab42a8210", warned, **action)
    send_notice("EC2 Instance State-change Notification", "i-0c3", warned, state="stopping")
    boto_client("sqs").send_message(QueueUrl=notices_queue, MessageBody="{not json")
    market = Ec2SpotMarket.with_shipped_catalogue(aws, notices_queue_url=notices_queue)
    notices = market.notices(datetime(2024, 5, 1, 11, 50))
    assert [(n.kind, n.instance_id, n.az) for n in notices] == [
        (NoticeKind.REBALANCE, "i-0b22a22eec53b9321", "us-east-1a"),
        (NoticeKind.INTERRUPTION, "i-0a11f11aab42a8210", "us-east-1a"),
    ]
    assert notices[1].action_time == warned + timedelta(minutes=2)
    assert notices[0].action_time is None
    # the malformed message is reported and left on the queue; the parsed ones deleted
    assert [r.reason for r in market.rejected] == [
        "body is not JSON (Expecting property name enclosed in double quotes at char 1)"
    ]
    assert _visible(boto_client, notices_queue) == (0, 1)
    # notices are held until a later ``since`` passes them
    assert market.notices(warned) == notices[1:]
    assert market.notices(warned + timedelta(seconds=1)) == ()


def test_without_a_queue_there_are_no_notices(aws) -> None:
    assert Ec2SpotMarket.with_shipped_catalogue(aws).notices(NOW) == ()


EVENT = {
    "version": "0", "id": "1e5527d7-bb36-4607-3370-4164db56a40e",
    "detail-type": "EC2 Spot Instance Interruption Warning", "source": "aws.ec2",
    "account": "123456789012", "time": "2024-05-01T11:58:05Z", "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0a11f11aab42a8210"],
    "detail": {"instance-id": "i-0a11f11aab42a8210", "instance-action": "terminate"},
}  # fmt: skip


def test_a_notice_through_sns_and_with_a_regional_arn() -> None:
    wrapped = json.dumps({"Type": "Notification", "MessageId": "m", "Message": json.dumps(EVENT)})
    notice = parse_notice(wrapped)
    assert (notice.kind, notice.az, notice.time) == (
        NoticeKind.INTERRUPTION, None, datetime(2024, 5, 1, 11, 58, 5),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"source": "aws.ec3"}, "is not aws.ec2"),
        ({"detail": {"instance-action": "stop"}}, "instance-id None"),
        ({"time": "yesterday"}, "not an ISO 8601 time"),
    ],
)
def test_malformed_notices_say_why(change, reason) -> None:
    with pytest.raises(MalformedNotice, match=reason):
        parse_notice(json.dumps({**EVENT, **change}))
