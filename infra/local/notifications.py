"""The ingest bucket's notifications, delivered on the local AWS as S3 delivers them on AWS.

Usage: python notifications.py --bucket INGEST --invoke-url URL [--queue NAME]

On AWS the ingest bucket notifies encrypt-recording of every new object
(template.yaml, IngestBucket's NotificationConfiguration). The local AWS
(moto) cannot invoke a function that runs under `cargo lambda watch`, but it
does deliver a bucket's notifications to an SQS queue. So this subscribes a
queue to the bucket's ObjectCreated events, then relays each event, as S3
sent it, to the function's Invoke API (`cargo lambda watch`'s, URL given),
one invocation per event, as S3's asynchronous invocation does. It prints one
line per object (what the function answered) and runs until stopped.

moto's events leave out fields S3 always sends (userIdentity,
requestParameters, responseElements; for a versioned bucket the object's
versionId; the sequencer), which the function's event type requires: the
relay adds them as S3 would, the version from HeadObject.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3


def subscribe(bucket: str, queue: str) -> str:
    """Creates the queue and points the bucket's ObjectCreated events at it; its URL."""
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"Id": "callvault-encrypt-recording", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
    return url


def invoke(invoke_url: str, event: str) -> str:
    """Invokes the function with the event; what it answered, in a few words."""
    request = urllib.request.Request(invoke_url, data=event.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as e:
        return f"failed: HTTP {e.code} {e.read()[:200].decode(errors='replace')}"
    except (urllib.error.URLError, TimeoutError, ValueError) as e:
        return f"failed: {e}"
    outcomes = [r.get("outcome", "?") for r in answer.get("recordings", [])] if isinstance(answer, dict) else []
    return ", ".join(outcomes) or json.dumps(answer)[:200]


def complete(event: dict) -> dict:
    """The event with the fields S3 sends and moto leaves out."""
    s3 = boto3.client("s3")
    for n, record in enumerate(event.get("Records", [])):
        record.setdefault("userIdentity", {"principalId": "AWS:local-uploader"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault("responseElements", {"x-amz-request-id": "local", "x-amz-id-2": "local"})
        obj, bucket = record["s3"]["object"], record["s3"]["bucket"]
        bucket.setdefault("ownerIdentity", {"principalId": "local"})
        if "versionId" not in obj:
            head = s3.head_object(Bucket=bucket["name"], Key=urllib.parse.unquote_plus(obj["key"]))
            if head.get("VersionId") not in (None, "null"):
                obj["versionId"] = head["VersionId"]
        obj.setdefault("sequencer", f"{time.time_ns():016X}{n:02X}")
    return event


def relay(queue_url: str, invoke_url: str) -> None:
    sqs = boto3.client("sqs")
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in messages.get("Messages", []):
            body = message["Body"]
            event = json.loads(body)
            if event.get("Event") == "s3:TestEvent":  # S3's check that the queue exists
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                continue
            keys = [urllib.parse.unquote_plus(r["s3"]["object"]["key"]) for r in event.get("Records", [])]
            started = time.monotonic()
            outcome = invoke(invoke_url, json.dumps(complete(event)))
            took = time.monotonic() - started
            for key in keys:
                print(f"new object {key}: encrypt-recording answered {outcome} ({took:.1f} s)", flush=True)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", required=True, help="the ingest bucket")
    parser.add_argument("--invoke-url", required=True, help="encrypt-recording's Invoke API URL")
    parser.add_argument("--queue", default="callvault-local-ingest-events", help="the queue to create")
    args = parser.parse_args()
    queue_url = subscribe(args.bucket, args.queue)
    print(f"READY {queue_url}", flush=True)
    try:
        relay(queue_url, args.invoke_url)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
