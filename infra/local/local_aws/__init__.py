"""The local AWS: moto server, patched to behave like real AWS KMS, plus test aids.

No AWS account is reachable from development machines or CI, so tests and the demo
run against this. ``infra/local/moto_launcher.py`` is the entry point that runs
``server.main``; the patches are numbered as in docs/local-aws.md:

- kms_patches: patches 1-4 and 7, moto's KMS made to behave like real KMS
  (7: multi-Region key ids kept whole);
- call_counter: patch 5, the KMS call counter (/_callvault/kms-calls);
- faults: patch 6, fault injection (/_callvault/faults);
- s3_patches: patch 8, S3 GetObjectRetention;
- dynamodb_serial: patch 9, DynamoDB requests one at a time (moto's transactions are not isolated);
- server: the command line, the middleware stack and the HTTP server.
"""
