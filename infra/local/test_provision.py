"""Tests that provision.py builds, on the local AWS, what template.yaml
deploys, and that template.yaml sets each function's environment the way
its code reads it.

Run from the repository root:
    infra/local/.venv/moto/bin/python -m unittest infra/local/test_provision.py
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import boto3
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_moto_launcher import start_launcher, stop_launcher  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KEY = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


def config_names(binary):
    """The variables a function's config.rs reads: (all, required)."""
    with open(os.path.join(ROOT, "functions", binary, "src", "config.rs")) as f:
        text = f.read()
    consts = dict(re.findall(r'pub const ([A-Z_]+): &str = "([A-Z_]+)";', text))
    # The names every function shares, imported from vault::config (named as
    # they are spelled: `AWS_REGION` is "AWS_REGION").
    for group in re.findall(r"^use vault::config::\{([^}]*)\};", text, re.M):
        consts.update({n: n for n in (s.strip() for s in group.split(",")) if re.fullmatch(r"[A-Z_]+", n)})
    required = {consts[c] for c in re.findall(r"env\.(?:required|bucket)\(\s*([A-Z_]+)", text)}
    # Settings vault::config reads for every function that calls its helper:
    # optional ones, and required ones.
    shared = {"env.retention(": "RETENTION_DAYS", "env.vault_lock(": "VAULT_OBJECT_LOCK"}
    shared_required = {"env.region()": "AWS_REGION", "env.org()": "CALLVAULT_ORG",
                       "env.catalog_table()": "CATALOG_TABLE", "env.vault_bucket()": "VAULT_BUCKET",
                       "env.recording_keys(": "RECORDING_KEYS"}
    required |= {name for call, name in shared_required.items() if call in text}
    names = set(consts.values()) | required | {name for call, name in shared.items() if call in text}
    return names, required


class ProvisionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.url = start_launcher()
        cls.env = dict(os.environ, AWS_ENDPOINT_URL=cls.url, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1",
                       AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        cls.out = tempfile.mkdtemp()
        run = subprocess.run(
            [sys.executable, os.path.join(HERE, "provision.py"), "--stack", "cv-test", "--out", cls.out,
             "--param", "Org=acme", "--param", f"RecordingKeyArn={KEY}", "--param", "RecordingTypes=calls,screens",
             "--param", "VaultObjectLock=GOVERNANCE", "--param", 'RetentionDays={"calls": 2557, "screens": 365}',
             "--param", "OidcIssuer=https://login.example.com/acme", "--param", "OidcClientId=player"],
            env=cls.env, capture_output=True, text=True, timeout=120)
        if run.returncode != 0:
            stop_launcher(cls.proc)
            raise AssertionError(f"provision.py failed ({run.returncode}):\n{run.stderr}")
        cls.summary = json.loads(run.stdout)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)
        stop_launcher(cls.proc)

    def client(self, service):
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))

    def test_the_buckets_are_the_templates(self):
        s3 = self.client("s3")
        res = self.summary["resources"]
        self.assertEqual(res["IngestBucket"], "cv-test-ingest-123456789012")
        self.assertEqual(res["VaultBucket"], "cv-test-vault-123456789012")
        self.assertEqual(res["EvidenceBucket"], "cv-test-evidence-123456789012")
        for logical in ("IngestBucket", "VaultBucket", "EvidenceBucket"):
            name = res[logical]
            self.assertEqual(s3.get_bucket_versioning(Bucket=name)["Status"], "Enabled")
            rule = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"][0]
            self.assertEqual(rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"], "AES256")
            block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
            self.assertTrue(all(block.values()) and len(block) == 4, block)
        # The vault: Object Lock, no default retention (each object is locked
        # until its own retain-until date, which no default may outlast).
        lock = s3.get_object_lock_configuration(Bucket=res["VaultBucket"])["ObjectLockConfiguration"]
        self.assertEqual(lock.get("ObjectLockEnabled"), "Enabled")
        self.assertNotIn("Rule", lock)
        # Evidence is always locked: the template's default, 2557 days.
        lock = s3.get_object_lock_configuration(Bucket=res["EvidenceBucket"])["ObjectLockConfiguration"]
        retention = lock["Rule"]["DefaultRetention"]
        self.assertEqual((retention["Mode"], retention["Days"]), ("GOVERNANCE", 2557))

    def test_the_catalog_queues_and_topic_are_the_templates(self):
        res = self.summary["resources"]
        ddb = self.client("dynamodb")
        table = ddb.describe_table(TableName=res["Catalog"])["Table"]
        self.assertEqual(res["Catalog"], "cv-test-catalog")
        self.assertEqual([(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]], [("pk", "HASH"), ("sk", "RANGE")])
        self.assertEqual(table["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
        index = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}["retention"]
        self.assertEqual([(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]],
                         [("recording_type", "HASH"), ("retain_until", "RANGE")])
        ttl = ddb.describe_time_to_live(TableName=res["Catalog"])["TimeToLiveDescription"]
        self.assertEqual((ttl["AttributeName"], ttl["TimeToLiveStatus"]), ("expires_at", "ENABLED"))
        sqs = self.client("sqs")
        for logical, name in (("DeadLetterQueue", "cv-test-dead-letters"), ("InvokeFailureQueue", "cv-test-invoke-failures")):
            self.assertEqual(sqs.get_queue_url(QueueName=name)["QueueUrl"], res[logical])
        topics = [t["TopicArn"] for t in self.client("sns").list_topics()["Topics"]]
        self.assertIn(res["AlertTopic"], topics)
        self.assertEqual(res["AlertTopic"], "arn:aws:sns:us-east-1:123456789012:cv-test-alerts")
        # What the local AWS cannot run is named, not dropped.
        skipped = " ".join(self.summary["not_provisioned"])
        for logical in ("EncryptRecording", "Playback", "KeyGuardian", "RotationAudit", "Retention", "Dashboard",
                        "DeadLettersAlarm"):
            self.assertIn(logical, skipped)

    def test_parameters_are_checked_as_cloudformation_would(self):
        for param, expected in (("Org=Acme Corp", "lower-case letters"), ("RecordingKeyArn=alias/x", "a KMS key ARN"),
                                ("KeyCacheTtlSeconds=7200", "not allowed"), ("FrameLength=1000", "not allowed")):
            args = {"Org": "acme", "RecordingKeyArn": KEY}
            name, value = param.split("=", 1)
            args[name] = value
            run = subprocess.run(
                [sys.executable, os.path.join(HERE, "provision.py"), "--stack", "cv-bad", "--out", self.out]
                + [a for k, v in args.items() for a in ("--param", f"{k}={v}")],
                env=self.env, capture_output=True, text=True, timeout=120)
            self.assertNotEqual(run.returncode, 0, param)
            self.assertIn(expected, run.stderr, param)
        # Conditional resources left out are named too.
        self.assertTrue(any("AlertEmailSubscription" in r for r in self.summary["not_deployed"]), self.summary)

    def test_each_function_gets_the_variables_its_code_reads(self):
        functions = self.summary["functions"]
        self.assertEqual(set(functions),
                         {"encrypt-recording", "playback", "key-guardian", "rotation-audit", "rekey", "retention",
                          "tag-sweep", "retention-hold", "retention-erase", "retention-erase-past-gov"})
        # The tag sweep is the rekey binary with a role of its own; the
        # retention duties are the retention binary, each told its duty.
        self.assertEqual(functions["tag-sweep"]["binary"], "rekey")
        self.assertNotIn("RETENTION_DUTY", functions["retention"]["environment"])
        for name, duty in (("retention-hold", "hold"), ("retention-erase", "erase"),
                           ("retention-erase-past-gov", "erase-past-governance")):
            f = functions[name]
            self.assertEqual((f["binary"], f["environment"]["RETENTION_DUTY"]), ("retention", duty))
        for name, f in functions.items():
            binary = f["binary"]
            env = f["environment"]
            names, required = config_names(binary)
            self.assertEqual(set(env) - names, set(), f"{binary}: template.yaml sets variables its code never reads")
            self.assertEqual(required - set(env), set(), f"{binary}: its code requires variables template.yaml never sets")
            with open(f["env_file"]) as fh:
                lines = dict(line.rstrip("\n").split("=", 1) for line in fh)
            self.assertEqual({k: v.strip("'") for k, v in lines.items()}, env)

    def test_the_recording_keys_and_settings_are_well_formed(self):
        functions = self.summary["functions"]
        for binary in ("encrypt-recording", "key-guardian", "rotation-audit", "rekey", "tag-sweep"):
            # Types that share their keys share an entry (vault::recording::RecordingKeys).
            keys = {t: arns for types, arns in json.loads(functions[binary]["environment"]["RECORDING_KEYS"]).items()
                    for t in types.split(",")}
            self.assertEqual(keys, {"calls": [KEY], "screens": [KEY]}, binary)
        enc = functions["encrypt-recording"]["environment"]
        self.assertEqual(enc["FRAME_LENGTH"], "65536")
        self.assertEqual(enc["DEAD_LETTER_QUEUE_URL"], self.summary["resources"]["DeadLetterQueue"])
        self.assertEqual(functions["playback"]["environment"]["KEY_CACHE_TTL_SECONDS"], "300")
        self.assertEqual(functions["key-guardian"]["environment"]["PROTECT_KEYS_IN_USE"], "false")
        self.assertEqual(functions["rotation-audit"]["environment"]["MAX_KEY_AGE_DAYS"], "365")
        rekey = functions["rekey"]["environment"]
        self.assertEqual((rekey["VAULT_BUCKET"], rekey["FRAME_LENGTH"]), (self.summary["resources"]["VaultBucket"], "65536"))
        for f in functions.values():
            self.assertEqual(f["environment"]["CATALOG_TABLE"], "cv-test-catalog")


if __name__ == "__main__":
    unittest.main()
