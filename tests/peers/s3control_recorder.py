#!/usr/bin/env python3
"""A loopback S3 Control endpoint that records one request, and a checker of
that request against the S3 Control service model botocore ships.

The local AWS has no S3 Batch Operations, so the tests point `callvault
rekey` at this recorder (CALLVAULT_S3_CONTROL_ENDPOINT) and check the
CreateJob request it would send to S3 Control, field by field, against the
API model: the same model the AWS CLI and boto3 serialize from.

Usage
-----
  s3control_recorder.py serve RECORD PORT_FILE
      Listens on 127.0.0.1 (a free port, written to PORT_FILE), writes each
      request (method, path, headers, body) to RECORD as JSON and answers as
      CreateJob does (200, CreateJobResult with JobId job-recorded-<n>).
  s3control_recorder.py validate RECORD
      Parses RECORD's request with CreateJob's input shape (rest-xml: the
      body's elements by the members' XML names, the AccountId from its
      header), reports every element the model does not know, every enum
      value outside the model's list, and whatever botocore's own parameter
      validator finds (required members, types, lengths); prints JSON
      {"method", "path", "params", "errors"}.
"""

import json
import sys
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.session
import botocore.validate


def serve(record, port_file):
    count = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def _handle(self):
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            count["n"] += 1
            with open(record, "w") as f:
                json.dump({"method": self.command, "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()},
                           "body": body.decode("utf-8")}, f)
            answer = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                      "<CreateJobResult xmlns=\"http://awss3control.amazonaws.com/doc/2018-08-20/\">"
                      "<JobId>job-recorded-%d</JobId></CreateJobResult>" % count["n"]).encode()
            self.send_response(200)
            self.send_header("content-type", "application/xml")
            self.send_header("x-amz-request-id", "recorded")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_POST = do_PUT = do_GET = do_DELETE = _handle

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file, "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _parse(elem, shape, path, errors):
    kind = shape.type_name
    if kind == "structure":
        out = {}
        by_xml = {}
        for name, member in shape.members.items():
            if member.serialization.get("location"):
                continue
            by_xml[member.serialization.get("name", name)] = (name, member)
        for child in elem:
            tag = _local(child.tag)
            if tag not in by_xml:
                errors.append("%s/%s: the model's %s has no such member" % (path, tag, shape.name))
                continue
            name, member = by_xml[tag]
            if member.type_name == "list" and member.serialization.get("flattened"):
                out.setdefault(name, []).append(_parse(child, member.member, "%s/%s" % (path, tag), errors))
            else:
                out[name] = _parse(child, member, "%s/%s" % (path, tag), errors)
        return out
    if kind == "list":
        item = shape.member.serialization.get("name", "member")
        items = []
        for child in elem:
            if _local(child.tag) != item:
                errors.append("%s/%s: a list of %s holds <%s> elements" % (path, _local(child.tag), shape.name, item))
            items.append(_parse(child, shape.member, path + "/" + item, errors))
        return items
    if kind == "map":
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out = {}
        for entry in elem:
            if _local(entry.tag) != "entry":
                errors.append("%s/%s: a map's items are <entry> elements" % (path, _local(entry.tag)))
                continue
            parts = {_local(c.tag): c for c in entry}
            if set(parts) != {key_name, value_name}:
                errors.append("%s/entry: holds %s, not <%s> and <%s>" % (path, sorted(parts), key_name, value_name))
                continue
            out[_parse(parts[key_name], shape.key, path + "/key", errors)] = _parse(
                parts[value_name], shape.value, path + "/value", errors)
        return out
    text = elem.text or ""
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            errors.append("%s: %r is not an integer" % (path, text))
            return text
    if kind == "boolean":
        if text not in ("true", "false"):
            errors.append("%s: %r is not a boolean" % (path, text))
        return text == "true"
    if kind == "string" and shape.enum and text not in shape.enum:
        errors.append("%s: %r is not one of %s" % (path, text, shape.enum))
    return text


def validate(record):
    with open(record) as f:
        req = json.load(f)
    model = botocore.session.get_session().get_service_model("s3control")
    op = model.operation_model("CreateJob")
    errors = []
    if req["method"] != op.http["method"]:
        errors.append("method %s, the model says %s" % (req["method"], op.http["method"]))
    path = req["path"].split("?", 1)[0]
    if path != op.http["requestUri"]:
        errors.append("path %s, the model says %s" % (path, op.http["requestUri"]))
    shape = op.input_shape
    params = {}
    for name, member in shape.members.items():
        if member.serialization.get("location") == "header":
            value = req["headers"].get(member.serialization["name"].lower())
            if value is not None:
                params[name] = value
    wrapper = op._operation_model.get("input", {})  # the rest-xml body's root and namespace
    root = ET.fromstring(req["body"])
    expected_root = wrapper.get("locationName", shape.name)
    if _local(root.tag) != expected_root:
        errors.append("the body's root is <%s>, the model says <%s>" % (_local(root.tag), expected_root))
    namespace = wrapper.get("xmlNamespace", {}).get("uri")
    if namespace and not root.tag.startswith("{%s}" % namespace):
        errors.append("the body's namespace is not %s" % namespace)
    params.update(_parse(root, shape, "/" + _local(root.tag), errors))
    report = botocore.validate.ParamValidator().validate(params, shape)
    if report.has_errors():
        errors.extend(line.strip() for line in report.generate_report().splitlines()[1:] if line.strip())
    json.dump({"method": req["method"], "path": path, "params": params, "errors": errors}, sys.stdout, default=str)
    sys.stdout.write("\n")


def main(argv):
    if len(argv) == 4 and argv[1] == "serve":
        serve(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "validate":
        validate(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
