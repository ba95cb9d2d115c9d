"""Prints template.yaml as CloudFormation sees it after the SAM transform, as
JSON, so cfn-lint can check what is deployed (dependency cycles, intrinsic
functions in the generated resources) and not only the SAM source.

    sam_transform.py TEMPLATE > transformed.json
"""

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class NoManagedPolicies:
    """The template names no managed policies by name (each function has its
    own role), so the transform needs no IAM lookup and runs offline."""

    def load(self):
        return {}


def main():
    with open(sys.argv[1]) as f:
        template = yaml_parse(f.read())
    # What `sam package` does: the local code becomes an S3 object.
    for logical, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://packaged-code/{logical}.zip"
    json.dump(transform(template, {}, NoManagedPolicies()), sys.stdout, indent=1)


if __name__ == "__main__":
    main()
