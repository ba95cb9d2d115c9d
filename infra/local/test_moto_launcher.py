"""Tests that moto_launcher.py closes each measured moto KMS gap the way real KMS behaves.

Run from the repository root:
    infra/local/.venv/moto/bin/python -m unittest infra/local/test_moto_launcher.py
"""

import json
import os
import selectors
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_launcher.py")
START_TIMEOUT = 30


def oaep(digest):
    return padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)


def start_launcher():
    """Starts moto_launcher.py on a free loopback port: (process, endpoint URL).
    Raises, with the launcher's stderr, when it does not come up."""
    proc = subprocess.Popen(
        [sys.executable, LAUNCHER, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=START_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("READY http://127.0.0.1:"):
        proc.kill()
        _, stderr = proc.communicate()
        raise RuntimeError(
            f"moto_launcher did not print READY within {START_TIMEOUT}s "
            f"(stdout {line!r}, exit code {proc.returncode}):\n{stderr}"
        )
    return proc, line.split()[1]


def stop_launcher(proc):
    proc.terminate()
    try:
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"launcher exited with {proc.returncode} on SIGTERM")


class MotoLauncherTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc, cls.url = start_launcher()
        cls.kms = boto3.client(
            "kms",
            endpoint_url=cls.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}),
        )

    @classmethod
    def tearDownClass(cls):
        stop_launcher(cls.proc)

    # --- helpers ---

    def new_key(self, **kwargs):
        return self.kms.create_key(**kwargs)["KeyMetadata"]["Arn"]

    def describe(self, key):
        return self.kms.describe_key(KeyId=key)["KeyMetadata"]

    def assert_kms_error(self, code, call, **kwargs):
        with self.assertRaises(ClientError) as caught:
            call(**kwargs)
        error = caught.exception.response
        self.assertEqual(error["Error"]["Code"], code, error)
        self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], 400, error)
        return error["Error"]["Message"]

    def callvault(self, path, method="GET", body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with urllib.request.urlopen(request) as response:
            return json.load(response)

    def client(self, service, **config):
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}, **config),
        )

    def add_fault(self, **rule):
        self.addCleanup(self.callvault, "/_callvault/faults", method="DELETE")
        return self.callvault("/_callvault/faults", method="POST", body=rule)["id"]

    def faults(self):
        return self.callvault("/_callvault/faults")

    def crypto_calls(self, key):
        """Every operation that must respect the state of `key`, prepared while it is usable."""
        kms, other = self.kms, self.new_key()
        blob = kms.encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
        other_blob = kms.encrypt(KeyId=other, Plaintext=b"secret")["CiphertextBlob"]
        return {
            "Encrypt": lambda: kms.encrypt(KeyId=key, Plaintext=b"x"),
            "Decrypt": lambda: kms.decrypt(CiphertextBlob=blob),
            "GenerateDataKey": lambda: kms.generate_data_key(KeyId=key, KeySpec="AES_256"),
            "GenerateDataKeyWithoutPlaintext": lambda: kms.generate_data_key_without_plaintext(
                KeyId=key, NumberOfBytes=32
            ),
            "ReEncrypt(source)": lambda: kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=other),
            "ReEncrypt(destination)": lambda: kms.re_encrypt(
                CiphertextBlob=other_blob, DestinationKeyId=key
            ),
        }

    def assert_all_fail(self, calls, code, message):
        for name, call in calls.items():
            with self.subTest(name):
                self.assertEqual(self.assert_kms_error(code, call), message)

    # --- patch 1: key state ---

    def test_disabled_key_rejects_cryptographic_operations(self):
        key = self.new_key()
        calls = self.crypto_calls(key)
        self.kms.disable_key(KeyId=key)
        self.assert_all_fail(calls, "DisabledException", f"{key} is disabled.")
        self.kms.enable_key(KeyId=key)
        for call in calls.values():
            call()

    def test_key_pending_deletion_rejects_cryptographic_operations(self):
        key = self.new_key()
        calls = self.crypto_calls(key)
        self.kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
        self.assert_all_fail(calls, "KMSInvalidStateException", f"{key} is pending deletion.")

    # --- patches 2 and 3: key ARNs, CancelKeyDeletion ---

    def test_key_state_operations_accept_key_arn(self):
        key = self.new_key()
        self.kms.disable_key(KeyId=key)
        self.assertEqual(self.describe(key)["KeyState"], "Disabled")
        self.kms.enable_key(KeyId=key)
        self.assertEqual(self.describe(key)["KeyState"], "Enabled")
        scheduled = self.kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
        self.assertEqual(scheduled["KeyId"], key)
        self.assertEqual(self.describe(key)["KeyState"], "PendingDeletion")
        self.assertIn("DeletionDate", self.describe(key))
        self.assertEqual(self.kms.cancel_key_deletion(KeyId=key)["KeyId"], key)
        # Real KMS takes only a key id or key ARN here, not an alias.
        self.kms.create_alias(AliasName="alias/launcher-test", TargetKeyId=key)
        self.assert_kms_error("NotFoundException", self.kms.enable_key, KeyId="alias/launcher-test")

    def test_cancel_key_deletion_leaves_key_disabled(self):
        key = self.new_key()
        key_id = key.split("/")[-1]
        self.kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        self.kms.cancel_key_deletion(KeyId=key_id)
        metadata = self.describe(key)
        self.assertEqual(metadata["KeyState"], "Disabled")
        self.assertFalse(metadata["Enabled"])
        self.assertNotIn("DeletionDate", metadata)
        self.assert_kms_error("DisabledException", self.kms.encrypt, KeyId=key, Plaintext=b"x")

    # --- patch 4: real RSA ---

    def test_rsa_oaep_encryption_is_real(self):
        key = self.new_key(KeySpec="RSA_4096", KeyUsage="ENCRYPT_DECRYPT")
        der = self.kms.get_public_key(KeyId=key)["PublicKey"]
        public_key = serialization.load_der_public_key(der)
        self.assertEqual(public_key.key_size, 4096)

        for algorithm, digest in (("RSAES_OAEP_SHA_256", hashes.SHA256), ("RSAES_OAEP_SHA_1", hashes.SHA1)):
            with self.subTest(algorithm):
                local = public_key.encrypt(b"data key bytes", oaep(digest()))
                answer = self.kms.decrypt(
                    KeyId=key, CiphertextBlob=local, EncryptionAlgorithm=algorithm
                )
                self.assertEqual(answer["Plaintext"], b"data key bytes")
                self.assertEqual(answer["KeyId"], key)
                self.assertEqual(answer["EncryptionAlgorithm"], algorithm)

                remote = self.kms.encrypt(
                    KeyId=key, Plaintext=b"round trip", EncryptionAlgorithm=algorithm
                )
                self.assertEqual(remote["KeyId"], key)
                self.assertEqual(len(remote["CiphertextBlob"]), 512)
                answer = self.kms.decrypt(
                    KeyId=key, CiphertextBlob=remote["CiphertextBlob"], EncryptionAlgorithm=algorithm
                )
                self.assertEqual(answer["Plaintext"], b"round trip")

        wrong_hash = public_key.encrypt(b"x", oaep(hashes.SHA1()))
        self.assert_kms_error(
            "InvalidCiphertextException",
            self.kms.decrypt,
            KeyId=key,
            CiphertextBlob=wrong_hash,
            EncryptionAlgorithm="RSAES_OAEP_SHA_256",
        )
        self.assert_kms_error(
            "InvalidCiphertextException",
            self.kms.decrypt,
            KeyId=key,
            CiphertextBlob=b"\x01" * 512,
            EncryptionAlgorithm="RSAES_OAEP_SHA_256",
        )

        local = public_key.encrypt(b"x", oaep(hashes.SHA256()))
        self.kms.disable_key(KeyId=key)
        message = self.assert_kms_error(
            "DisabledException",
            self.kms.decrypt,
            KeyId=key,
            CiphertextBlob=local,
            EncryptionAlgorithm="RSAES_OAEP_SHA_256",
        )
        self.assertEqual(message, f"{key} is disabled.")

    # --- patch 5: call counter ---

    def test_call_counter_counts_and_resets(self):
        key = self.new_key()
        self.callvault("/_callvault/kms-calls/reset", method="POST")
        self.assertEqual(self.callvault("/_callvault/kms-calls"), {})

        blob = self.kms.generate_data_key(KeyId=key, KeySpec="AES_256")["CiphertextBlob"]
        self.kms.decrypt(CiphertextBlob=blob)
        self.kms.decrypt(CiphertextBlob=blob, KeyId=key)
        self.assertEqual(
            self.callvault("/_callvault/kms-calls"), {"GenerateDataKey": 1, "Decrypt": 2}
        )
        self.assertEqual(
            self.callvault("/_callvault/kms-calls/by-key"),
            {key: {"GenerateDataKey": 1, "Decrypt": 1}},
        )

        self.assertEqual(self.callvault("/_callvault/kms-calls/reset", method="POST"), {})
        self.assertEqual(self.callvault("/_callvault/kms-calls"), {})
        self.assertEqual(self.callvault("/_callvault/kms-calls/by-key"), {})

        self.kms.list_keys()
        self.assertEqual(self.callvault("/_callvault/kms-calls"), {"ListKeys": 1})
        urllib.request.urlopen(urllib.request.Request(self.url + "/moto-api/reset", method="POST"))
        self.assertEqual(self.callvault("/_callvault/kms-calls"), {})
        self.assertEqual(self.kms.list_keys()["Keys"], [])  # moto's own reset still works

    # --- patch 6: fault injection ---

    def test_fault_fails_only_the_matching_s3_upload_part(self):
        s3 = self.client("s3", s3={"addressing_style": "path"})
        s3.create_bucket(Bucket="vault-bucket")
        key = "dir/my file.bin"
        upload = s3.create_multipart_upload(Bucket="vault-bucket", Key=key)["UploadId"]
        # The path is matched as sent: the space in the key is percent-encoded.
        rule = self.add_fault(
            method="PUT",
            path_contains="/vault-bucket/dir/my%20file.bin",
            query_contains="partNumber=2",
            times=1,
            code="SlowDown",
            message="injected",
            status=503,
        )

        def upload_part(number):
            return s3.upload_part(
                Bucket="vault-bucket",
                Key=key,
                UploadId=upload,
                PartNumber=number,
                Body=bytes([number]) * (5 * 1024 * 1024 if number < 3 else 10),
            )["ETag"]

        etags = {1: upload_part(1)}
        with self.assertRaises(ClientError) as caught:
            upload_part(2)
        error = caught.exception.response
        self.assertEqual(error["Error"]["Code"], "SlowDown", error)
        self.assertEqual(error["Error"]["Message"], "injected", error)
        self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], 503, error)
        etags[3] = upload_part(3)
        etags[2] = upload_part(2)  # times=1: the retry goes through

        s3.complete_multipart_upload(
            Bucket="vault-bucket",
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]},
        )
        body = s3.get_object(Bucket="vault-bucket", Key=key)["Body"].read()
        self.assertEqual(body, b"\x01" * (5 * 1024 * 1024) + b"\x02" * (5 * 1024 * 1024) + b"\x03" * 10)
        [listed] = self.faults()
        self.assertEqual(listed["id"], rule)
        self.assertEqual(listed["path_contains"], "/vault-bucket/dir/my%20file.bin")
        self.assertEqual(
            (listed["matched"], listed["skipped"], listed["failed"], listed["times"]), (2, 0, 1, 1)
        )

    def test_fault_answers_a_query_protocol_request_in_its_own_error_format(self):
        sns = self.client("sns")
        topic = sns.create_topic(Name="fault-topic")["TopicArn"]
        self.add_fault(method="POST", path_contains="/", times=1, status=400, code="Throttled", message="slow")
        with self.assertRaises(ClientError) as caught:
            sns.publish(TopicArn=topic, Message="m")
        error = caught.exception.response
        self.assertEqual((error["Error"]["Code"], error["Error"]["Message"]), ("Throttled", "slow"), error)
        self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], 400, error)
        sns.publish(TopicArn=topic, Message="m")  # times=1: the next one goes through

    def test_fault_skips_then_fails_dynamodb_transactions(self):
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(
            TableName="fault-test",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.add_fault(
            target="DynamoDB_20120810.TransactWriteItems",
            skip=1,
            times=1,
            status=400,
            code="TransactionConflictException",
            message="injected conflict",
        )

        def transact(pk):
            dynamodb.transact_write_items(
                TransactItems=[{"Put": {"TableName": "fault-test", "Item": {"pk": {"S": pk}}}}]
            )

        transact("first")
        with self.assertRaises(ClientError) as caught:
            transact("second")
        error = caught.exception.response
        self.assertEqual(error["Error"]["Code"], "TransactionConflictException", error)
        self.assertEqual(error["Error"]["Message"], "injected conflict", error)
        self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], 400, error)
        self.assertEqual(
            error["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"],
            "TransactionConflictException",
        )
        transact("third")
        dynamodb.put_item(TableName="fault-test", Item={"pk": {"S": "not a transaction"}})

        items = dynamodb.scan(TableName="fault-test")["Items"]
        self.assertEqual(
            sorted(item["pk"]["S"] for item in items), ["first", "not a transaction", "third"]
        )
        [listed] = self.faults()
        self.assertEqual((listed["matched"], listed["skipped"], listed["failed"]), (3, 1, 1))

    # --- patch 9: DynamoDB isolation ---

    def test_a_cancelled_transaction_never_undoes_a_concurrent_write(self):
        """moto rolls a cancelled transaction back by restoring a copy of the whole
        table, taken before it started: unserialized, increments made meanwhile by
        other requests vanish with it (and the copy fails with HTTP 500 when the
        table changes under it). Real DynamoDB isolates transactions."""
        import concurrent.futures

        dynamodb = self.client("dynamodb", max_pool_connections=16)
        table = "isolation-test"
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        # A table big enough for the copy to take a while, as the catalog does in the tests.
        for batch in range(0, 1500, 25):
            dynamodb.batch_write_item(
                RequestItems={
                    table: [
                        {"PutRequest": {"Item": {"pk": {"S": f"row-{n}"}, "pad": {"S": "x" * 64}}}}
                        for n in range(batch, batch + 25)
                    ]
                }
            )
        counter = {"pk": {"S": "counter"}}

        def increment(_):
            dynamodb.update_item(
                TableName=table,
                Key=counter,
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

        def cancelled(_):
            with self.assertRaises(ClientError) as caught:
                dynamodb.transact_write_items(
                    TransactItems=[
                        {"Put": {"TableName": table, "Item": {"pk": {"S": "never"}}}},
                        {
                            "ConditionCheck": {
                                "TableName": table,
                                "Key": {"pk": {"S": "absent"}},
                                "ConditionExpression": "attribute_exists(pk)",
                            }
                        },
                    ]
                )
            code = caught.exception.response["Error"]["Code"]
            self.assertEqual(code, "TransactionCanceledException", caught.exception.response)

        increments = 400
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            work = [pool.submit(increment, i) for i in range(increments)]
            work += [pool.submit(cancelled, i) for i in range(60)]
            for done in work:
                done.result()

        item = dynamodb.get_item(TableName=table, Key=counter, ConsistentRead=True)["Item"]
        self.assertEqual(int(item["n"]["N"]), increments, "no increment undone by a rollback")
        self.assertNotIn("Item", dynamodb.get_item(TableName=table, Key={"pk": {"S": "never"}}))

    def test_faults_are_cleared_by_delete_and_by_moto_reset(self):
        self.callvault("/_callvault/kms-calls/reset", method="POST")
        self.add_fault(target="TrentService.ListKeys")
        self.add_fault(method="DELETE", path_contains="/no-such-bucket/")
        self.assertEqual(len(self.faults()), 2)
        with self.assertRaises(ClientError) as caught:
            self.kms.list_keys()
        error = caught.exception.response
        self.assertEqual(error["Error"]["Code"], "InternalError", error)
        self.assertEqual(error["ResponseMetadata"]["HTTPStatusCode"], 500, error)
        # A faulted KMS request is still counted.
        self.assertEqual(self.callvault("/_callvault/kms-calls"), {"ListKeys": 1})

        self.assertEqual(self.callvault("/_callvault/faults", method="DELETE"), {"removed": 2})
        self.assertEqual(self.faults(), [])
        self.kms.list_keys()

        self.add_fault(target="TrentService.ListKeys")
        self.assertEqual(len(self.faults()), 1)
        urllib.request.urlopen(urllib.request.Request(self.url + "/moto-api/reset", method="POST"))
        self.assertEqual(self.faults(), [])
        self.assertEqual(self.kms.list_keys()["Keys"], [])

    def test_fault_rule_without_matchers_is_rejected(self):
        for rule in ({}, {"status": 503, "times": 1}, {"method": "PUT", "path": "/typo"}, [1]):
            with self.subTest(rule):
                with self.assertRaises(urllib.error.HTTPError) as caught:
                    self.callvault("/_callvault/faults", method="POST", body=rule)
                self.assertEqual(caught.exception.code, 400)
                self.assertIn("message", json.load(caught.exception))
                caught.exception.close()
        self.assertEqual(self.faults(), [])

    # --- an unpatched path still works ---

    # --- patch 7: multi-Region keys ---

    def test_a_multi_region_key_decrypts_in_its_own_region_and_through_its_replica(self):
        primary = self.kms.create_key(MultiRegion=True)["KeyMetadata"]
        self.assertTrue(primary["KeyId"].startswith("mrk-"), primary)
        replica = self.kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion="us-west-2")["ReplicaKeyMetadata"]
        self.assertEqual(replica["Arn"], primary["Arn"].replace("us-east-1", "us-west-2"))
        west = boto3.client("kms", endpoint_url=self.url, region_name="us-west-2", aws_access_key_id="testing",
                            aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
        context = {"org": "acme"}
        data_key = self.kms.generate_data_key(KeyId=primary["Arn"], KeySpec="AES_256", EncryptionContext=context)
        for client, arn in ((self.kms, primary["Arn"]), (west, replica["Arn"])):
            answer = client.decrypt(KeyId=arn, CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=context)
            self.assertEqual((answer["Plaintext"], answer["KeyId"]), (data_key["Plaintext"], arn))
        # A single-Region key keeps moto's own blob, and its region.
        single = self.new_key()
        blob = self.kms.encrypt(KeyId=single, Plaintext=b"x")["CiphertextBlob"]
        self.assertEqual(self.kms.decrypt(CiphertextBlob=blob)["Plaintext"], b"x")
        with self.assertRaises(ClientError):
            west.decrypt(CiphertextBlob=blob)

    # --- patch 8: S3 GetObjectRetention ---

    def test_get_object_retention_answers_the_versions_lock(self):
        import datetime
        s3 = self.client("s3", s3={"addressing_style": "path"})
        s3.create_bucket(Bucket="patch8-locked", ObjectLockEnabledForBucket=True)
        until = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
        locked = s3.put_object(Bucket="patch8-locked", Key="k", Body=b"x", ObjectLockMode="COMPLIANCE",
                               ObjectLockRetainUntilDate=until)["VersionId"]
        free = s3.put_object(Bucket="patch8-locked", Key="k", Body=b"y")["VersionId"]
        got = s3.get_object_retention(Bucket="patch8-locked", Key="k", VersionId=locked)["Retention"]
        self.assertEqual((got["Mode"], got["RetainUntilDate"]), ("COMPLIANCE", until))
        with self.assertRaises(ClientError) as caught:
            s3.get_object_retention(Bucket="patch8-locked", Key="k", VersionId=free)
        self.assertEqual(caught.exception.response["Error"]["Code"], "NoSuchObjectLockConfiguration")
        s3.create_bucket(Bucket="patch8-plain")
        s3.put_object(Bucket="patch8-plain", Key="k", Body=b"z")
        with self.assertRaises(ClientError) as caught:
            s3.get_object_retention(Bucket="patch8-plain", Key="k")
        self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidRequest")

    def test_symmetric_data_key_with_encryption_context(self):
        key = self.new_key()
        context = {"purpose": "test", "tenant": "a"}
        data_key = self.kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=context)
        self.assertEqual(len(data_key["Plaintext"]), 32)
        answer = self.kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=context)
        self.assertEqual(answer["Plaintext"], data_key["Plaintext"])
        self.assertEqual(answer["KeyId"], key)
        self.assert_kms_error(
            "InvalidCiphertextException",
            self.kms.decrypt,
            CiphertextBlob=data_key["CiphertextBlob"],
            EncryptionContext={"purpose": "test", "tenant": "b"},
        )


if __name__ == "__main__":
    unittest.main()
