"""Provisions template.yaml's storage on the local AWS, and writes each
function's environment as template.yaml would set it.

    provision.py --stack NAME --out DIR [--param Name=Value ...]

template.yaml is the one place that names the buckets, the table, the queues
and the topic and sets each function's environment; this reads it, resolves
its intrinsic functions (Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::Split,
Fn::If and the conditions) for a stack NAME in the local account, creates:

- AWS::S3::Bucket: the name, versioning, default encryption, public access
  block, Object Lock when the template enables it;
- AWS::DynamoDB::Table: key schema, attributes, billing mode, time to live;
- AWS::SQS::Queue, AWS::SNS::Topic: the names and retention;
- AWS::SecretsManager::Secret: the name, and a value generated as its
  GenerateSecretString says (random characters of that length);

and writes DIR/<function>.env for each AWS::Serverless::Function (Globals and
the function's own Environment.Variables, the binary from its
Metadata.BuildProperties.Binary), then prints a JSON summary: every logical
id's physical name, and each function's env file. Whatever the local AWS
cannot run (Lambda, EventBridge rules, alarms, IAM) is listed under
"not_provisioned" so nothing is skipped silently.
"""

import argparse
import json
import os
import re
import secrets
import string
import sys

import boto3
import botocore.exceptions
import yaml

ACCOUNT = "123456789012"  # the local AWS's account
TAGS = ["Ref", "Condition", "Base64", "Cidr", "FindInMap", "GetAtt", "GetAZs", "ImportValue", "Join",
        "Select", "Split", "Sub", "If", "Not", "Equals", "And", "Or", "Transform"]


class TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags, as their long forms."""


def _construct(tag):
    name = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _tag in TAGS:
    TemplateLoader.add_constructor(f"!{_tag}", _construct(_tag))


class Stack:
    def __init__(self, template, stack_name, region, params):
        self.t = template
        self.resources = template.get("Resources", {})
        self.pseudo = {
            "AWS::StackName": stack_name,
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": region,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": None,
        }
        self.params = {}
        for name, spec in template.get("Parameters", {}).items():
            if name in params:
                value = params.pop(name)
            elif "Default" in spec:
                value = str(spec["Default"])
            else:
                sys.exit(f"provision: parameter {name} has no default: pass --param {name}=...")
            self.check(name, spec, value)
            if spec.get("Type") == "CommaDelimitedList":
                value = [v for v in value.split(",")] if value else []
            self.params[name] = value
        if params:
            sys.exit(f"provision: template.yaml has no parameters {sorted(params)}")
        self.conditions = {}

    @staticmethod
    def check(name, spec, value):
        """Refuses a value CloudFormation would refuse (pattern, allowed
        values, bounds), with the template's constraint description."""
        why = spec.get("ConstraintDescription", "")
        items = value.split(",") if spec.get("Type") == "CommaDelimitedList" else [value]
        for item in items:
            ok = True
            if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], item):
                ok = False
            if "AllowedValues" in spec and item not in [str(v) for v in spec["AllowedValues"]]:
                ok = False
            if spec.get("Type") == "Number":
                try:
                    n = float(item)
                    ok = ok and spec.get("MinValue", n) <= n <= spec.get("MaxValue", n)
                except ValueError:
                    ok = False
            if not ok:
                sys.exit(f"provision: parameter {name}={value!r} is not allowed by template.yaml"
                         + (f": {why}" if why else ""))

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.eval(self.t["Conditions"][name]))
        return self.conditions[name]

    def physical(self, logical):
        r = self.resources[logical]
        props = r.get("Properties", {})
        kind = r["Type"]
        if kind == "AWS::S3::Bucket":
            return self.eval(props["BucketName"])
        if kind == "AWS::DynamoDB::Table":
            return self.eval(props["TableName"])
        if kind == "AWS::SNS::Topic":
            return f"arn:aws:sns:{self.pseudo['AWS::Region']}:{ACCOUNT}:{self.eval(props['TopicName'])}"
        if kind == "AWS::SQS::Queue":
            return self.queue_url(self.eval(props["QueueName"]))
        if kind == "AWS::Serverless::Function":
            return self.eval(props["FunctionName"])
        if kind == "AWS::SecretsManager::Secret":  # Ref is the ARN, known once it exists
            return boto3.client("secretsmanager").describe_secret(SecretId=self.eval(props["Name"]))["ARN"]
        raise ValueError(f"Ref to {logical} ({kind}) has no local equivalent")

    def queue_url(self, name):
        return boto3.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]

    def attribute(self, logical, attr):
        r = self.resources[logical]
        props = r.get("Properties", {})
        region = self.pseudo["AWS::Region"]
        kind = r["Type"]
        if kind == "AWS::S3::Bucket" and attr == "Arn":
            return f"arn:aws:s3:::{self.physical(logical)}"
        if kind == "AWS::DynamoDB::Table" and attr == "Arn":
            return f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{self.physical(logical)}"
        if kind == "AWS::SQS::Queue" and attr == "Arn":
            return f"arn:aws:sqs:{region}:{ACCOUNT}:{self.eval(props['QueueName'])}"
        if kind == "AWS::SQS::Queue" and attr == "QueueName":
            return self.eval(props["QueueName"])
        if kind == "AWS::SNS::Topic" and attr == "TopicArn":
            return self.physical(logical)
        raise ValueError(f"GetAtt {logical}.{attr} has no local equivalent")

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.physical(name)

    def sub(self, arg):
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self.eval(v) for k, v in arg[1].items()})

        def one(m):
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name and name.split(".", 1)[0] in self.resources:
                return str(self.attribute(*name.split(".", 1)))
            value = self.ref(name)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def eval(self, v):
        if isinstance(v, list):
            return [x for x in (self.eval(i) for i in v) if x is not None]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                return self.ref(arg)
            if k == "Condition":
                return self.condition(arg)
            if k == "Fn::Sub":
                return self.sub(arg)
            if k == "Fn::GetAtt":
                return self.attribute(*(arg if isinstance(arg, list) else arg.split(".", 1)))
            if k == "Fn::Join":
                if not isinstance(arg[0], str):
                    raise ValueError(f"Fn::Join's delimiter must be a literal string in CloudFormation: {arg[0]!r}")
                return arg[0].join(str(x) for x in self.eval(arg[1]))
            if k == "Fn::Split":
                if not isinstance(arg[0], str):
                    raise ValueError(f"Fn::Split's delimiter must be a literal string in CloudFormation: {arg[0]!r}")
                return self.eval(arg[1]).split(arg[0])
            if k == "Fn::Select":
                return self.eval(arg[1])[int(self.eval(arg[0]))]
            if k == "Fn::If":
                return self.eval(arg[1] if self.condition(arg[0]) else arg[2])
            if k == "Fn::Equals":
                a, b = self.eval(arg[0]), self.eval(arg[1])
                return str(a) == str(b)
            if k == "Fn::Not":
                return not self.eval(arg[0])
            if k == "Fn::And":
                return all(self.eval(a) for a in arg)
            if k == "Fn::Or":
                return any(self.eval(a) for a in arg)
            if k.startswith("Fn::"):
                raise ValueError(f"{k} is not supported by the local provisioner")
        return {k: x for k, x in ((k, self.eval(x)) for k, x in v.items()) if x is not None}


CREATED = ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SNS::Topic",
           "AWS::SecretsManager::Secret")


def create(stack, logical, r):
    kind = r["Type"]
    if kind not in CREATED:
        return None
    props = stack.eval(r.get("Properties", {}))
    if kind == "AWS::S3::Bucket":
        s3 = boto3.client("s3")
        name = props["BucketName"]
        lock = props.get("ObjectLockEnabled") is True
        s3.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if lock else {}))
        if "VersioningConfiguration" in props:
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]})
        if "BucketEncryption" in props:
            rules = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": r["ServerSideEncryptionByDefault"]["SSEAlgorithm"]}}
                     for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]]
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
        if lock and "ObjectLockConfiguration" in props and "Rule" in props["ObjectLockConfiguration"]:
            retention = dict(props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"])
            retention["Days"] = int(retention["Days"])
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": retention}})
        return name
    if kind == "AWS::DynamoDB::Table":
        ddb = boto3.client("dynamodb")
        name = props["TableName"]
        extra = {}
        if props.get("GlobalSecondaryIndexes"):
            extra["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        ddb.create_table(TableName=name, BillingMode=props.get("BillingMode", "PROVISIONED"),
                         AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"], **extra)
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"],
                                                                               "Enabled": ttl["Enabled"]})
        return name
    if kind == "AWS::SQS::Queue":
        attrs = {k: str(props[k]) for k in ("MessageRetentionPeriod", "VisibilityTimeout") if k in props}
        return boto3.client("sqs").create_queue(QueueName=props["QueueName"], Attributes=attrs)["QueueUrl"]
    if kind == "AWS::SNS::Topic":
        return boto3.client("sns").create_topic(Name=props["TopicName"])["TopicArn"]
    if kind == "AWS::SecretsManager::Secret":
        # GenerateSecretString as Secrets Manager does it: random characters.
        spec = props.get("GenerateSecretString", {})
        alphabet = string.ascii_letters + string.digits
        if not spec.get("ExcludePunctuation"):
            alphabet += string.punctuation
        value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
        return boto3.client("secretsmanager").create_secret(Name=props["Name"], SecretString=value)["ARN"]
    return None


def env_value(v):
    """A variable's value as CloudFormation writes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(env_value(x) for x in v)
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--template", default=os.path.join(os.path.dirname(__file__), "..", "..", "template.yaml"))
    ap.add_argument("--stack", required=True)
    ap.add_argument("--out", required=True, help="directory for the functions' env files")
    ap.add_argument("--param", action="append", default=[], help="Name=Value, a template parameter")
    args = ap.parse_args()
    bad = [p for p in args.param if "=" not in p]
    if bad:
        sys.exit(f"provision: --param takes Name=Value, not {bad}")
    params = dict(p.split("=", 1) for p in args.param)
    with open(args.template) as f:
        template = yaml.load(f, Loader=TemplateLoader)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    stack = Stack(template, args.stack, region, params)

    created, skipped, not_deployed = {}, [], []
    for logical, r in stack.resources.items():
        if "Condition" in r and not stack.condition(r["Condition"]):
            not_deployed.append(f"{logical} (condition {r['Condition']} is false)")
            continue
        physical = create(stack, logical, r)
        if physical is None:
            skipped.append(f"{logical} ({r['Type']})")
        else:
            created[logical] = physical

    globals_env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    functions = {}
    os.makedirs(args.out, exist_ok=True)
    for logical, r in stack.resources.items():
        if r["Type"] != "AWS::Serverless::Function":
            continue
        binary = r.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if not binary:
            sys.exit(f"provision: {logical} has no Metadata.BuildProperties.Binary")
        env = dict(globals_env)
        env.update(r["Properties"].get("Environment", {}).get("Variables", {}))
        env = {k: env_value(stack.eval(v)) for k, v in env.items()}
        env["AWS_REGION"] = region
        name = stack.eval(r["Properties"].get("FunctionName", logical))
        # Each function by its name without the stack's prefix: the binary's
        # name, except where two functions run one binary (rekey and
        # tag-sweep).
        short = name[len(args.stack) + 1:] if name.startswith(args.stack + "-") else binary
        path = os.path.join(args.out, f"{short}.env")
        with open(path, "w") as f:
            for k, v in sorted(env.items()):
                f.write(k + "='" + v.replace("'", "'\\''") + "'\n")
        functions[short] = {"logical_id": logical, "binary": binary, "env_file": path, "environment": env}
        register_function(name, {k: v for k, v in env.items() if k != "AWS_REGION"})
        functions[short]["function_name"] = name

    json.dump({"stack": args.stack, "parameters": stack.params, "resources": created,
               "functions": functions, "not_provisioned": skipped, "not_deployed": not_deployed},
              sys.stdout, indent=2)
    print()


def register_function(name, env):
    """The function's configuration in the emulator's Lambda (a placeholder
    package: the code runs under cargo lambda), so that what reads a
    deployment's settings (`callvault keys`: GetFunctionConfiguration) reads
    them here as on AWS."""
    import io
    import zipfile
    iam, lam = boto3.client("iam"), boto3.client("lambda")
    # Several provisioners may race to create the one role: whoever loses reads it.
    try:
        role = iam.create_role(RoleName="callvault-local-functions", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    except botocore.exceptions.ClientError:
        role = iam.get_role(RoleName="callvault-local-functions")["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\necho 'runs under cargo lambda locally'\n")
    try:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": env})
    except botocore.exceptions.ClientError:
        lam.create_function(FunctionName=name, Runtime="provided.al2023", Role=role, Handler="bootstrap",
                            Code={"ZipFile": buf.getvalue()}, Environment={"Variables": env})


if __name__ == "__main__":
    main()
