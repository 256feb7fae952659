"""Validates real responses against openapi.yaml.

Spec(path).validate(method, raw_path, status, headers, body) finds the
operation by method and path template (the raw, still percent-encoded path
is split on "/" first, exactly as the server does, so "%2F" in a key stays
inside its segment), then the response by status (or "default"), and checks
that the Content-Type is one the response lists and that a JSON body
(application/json or application/problem+json) matches its schema.

OpenAPI 3.0 schemas are turned into JSON Schema first: $ref is resolved,
`nullable: true` becomes a "null" alternative, `format: int64` gets its
range, allOf members that declare properties are merged into their parent,
and every object schema that lists properties and says nothing about
additionalProperties is made strict (additionalProperties: false). The
document itself stays open for additions; the tests hold the server to
exactly what it documents.

A request that matches no path, or a method the path does not have, must be
answered with a Problem (404 NOT_FOUND or 405 METHOD_NOT_ALLOWED).
"""
import copy
import json
import re

import jsonschema
import yaml

INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1
METHODS = ("get", "head", "put", "post", "delete", "patch", "options")


class ValidationFailure(AssertionError):
    pass


class Spec:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        self.doc = yaml.safe_load(self.raw)
        self._converted = {}
        self.routes = []  # (segments, path template, path item)
        for template, item in self.doc["paths"].items():
            self.routes.append((template.strip("/").split("/"), template, item))
        self.problem_schema = self.schema({"$ref": "#/components/schemas/Problem"})
        self.error_codes = set(self.resolve({"$ref": "#/components/schemas/ErrorCode"})["enum"])

    # -- references and conversion ------------------------------------
    def resolve(self, node):
        seen = 0
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            seen += 1
            assert seen < 20, "reference loop at " + ref
        return node

    def schema(self, schema):
        """The JSON Schema (draft 7) for an OpenAPI 3.0 schema object."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._converted:
            self._converted[key] = self._convert(schema, 0)
        return self._converted[key]

    def _convert(self, s, depth):
        assert depth < 64, "schema too deep (a recursive $ref?)"
        if isinstance(s, dict) and "$ref" in s:
            return self._convert(self.resolve(s), depth + 1)
        if not isinstance(s, dict):
            return s
        s = copy.deepcopy(s)
        for k in ("discriminator", "xml", "externalDocs", "example", "deprecated"):
            s.pop(k, None)
        if "properties" in s:
            s["properties"] = {k: self._convert(v, depth + 1) for k, v in s["properties"].items()}
        if isinstance(s.get("additionalProperties"), dict):
            s["additionalProperties"] = self._convert(s["additionalProperties"], depth + 1)
        if "items" in s:
            s["items"] = self._convert(s["items"], depth + 1)
        if "not" in s:
            s["not"] = self._convert(s["not"], depth + 1)
        for k in ("oneOf", "anyOf"):
            if k in s:
                s[k] = [self._convert(x, depth + 1) for x in s[k]]
        if "allOf" in s:
            keep = []
            for member in (self._convert(x, depth + 1) for x in s["allOf"]):
                if "properties" in member or member.get("type") == "object":
                    # Merge: the parent becomes the object with every property.
                    s.setdefault("properties", {}).update(member.get("properties", {}))
                    req = set(s.get("required", [])) | set(member.get("required", []))
                    if req:
                        s["required"] = sorted(req)
                    s["type"] = "object"
                    for k in ("allOf", "oneOf", "anyOf", "not"):
                        if k in member:
                            keep.append({k: member[k]})
                    if member.get("additionalProperties") is not None and "additionalProperties" not in s:
                        s["additionalProperties"] = member["additionalProperties"]
                else:
                    keep.append(member)
            if keep:
                s["allOf"] = keep
            else:
                del s["allOf"]
        if s.get("format") == "int64":
            s.setdefault("minimum", INT64_MIN)
            s.setdefault("maximum", INT64_MAX)
        if "properties" in s and "additionalProperties" not in s:
            s["additionalProperties"] = False
        if s.pop("nullable", False):
            if "type" in s:
                s["type"] = [s["type"], "null"]
                if "enum" in s:
                    s["enum"] = list(s["enum"]) + [None]
            else:
                s = {"anyOf": [s, {"type": "null"}]}
        return s

    # -- routing --------------------------------------------------------
    def find(self, method, raw_path):
        """(template, operation) for a request; operation None when the path
        exists without this method; (None, None) when no path matches."""
        path = raw_path.split("?", 1)[0]
        segs = path[1:].split("/")  # an empty last segment stays (the empty sortkey)
        best = None
        for pattern, template, item in self.routes:
            if len(pattern) != len(segs):
                continue
            literal = 0
            for p, s in zip(pattern, segs):
                if p.startswith("{") and p.endswith("}"):
                    continue
                if p != s:
                    break
                literal += 1
            else:
                if best is None or literal > best[0]:
                    best = (literal, template, item)
        if best is None:
            return None, None
        item = best[2]
        op = item.get(method.lower())
        return best[1], op

    def operation(self, method, template):
        return self.doc["paths"][template].get(method.lower())

    # -- validation -----------------------------------------------------
    def validate(self, method, raw_path, status, headers, body, accept=None):
        """Raises ValidationFailure when the response is not what the document
        says. headers: lower-case names. body: bytes. accept: the request's
        Accept header: an operation that serves raw bytes by default (a
        cell's value, with the Content-Type stored with it, which may well be
        application/json) gives its JSON form only when asked for it."""
        template, op = self.find(method, raw_path)
        ctype = (headers.get("content-type") or "").split(";")[0].strip().lower()
        where = "%s %s -> %s" % (method, raw_path[:200], status)
        if op is None:
            # Routing errors: 404 NOT_FOUND without a path, 405 with one.
            want = 404 if template is None else 405
            if status != want:
                raise ValidationFailure("%s: no operation in openapi.yaml for this request" % where)
            if want == 405 and "allow" not in headers:
                raise ValidationFailure("%s: 405 without an Allow header" % where)
            self._validate_problem(where, status, ctype, body, self.problem_schema)
            return
        responses = op.get("responses", {})
        resp = responses.get(str(status)) or responses.get("%dXX" % (status // 100)) \
            or responses.get("default")
        if resp is None:
            raise ValidationFailure("%s: status %s is not documented for %s %s (documented: %s)"
                                    % (where, status, method.upper(), template, sorted(responses)))
        resp = self.resolve(resp)
        content = resp.get("content") or {}
        if method.upper() == "HEAD" or status in (204, 304):
            if body:
                raise ValidationFailure("%s: a body where none is allowed" % where)
            return
        if not content:
            if body:
                raise ValidationFailure("%s: a body (%s) where the document lists none" % (where, ctype))
            return
        media = None
        for name, m in content.items():
            if name == ctype or name == "*/*" or (name.endswith("/*") and ctype.startswith(name[:-1])):
                media = m
                break
        if media is None:
            if "application/octet-stream" in content and method.upper() == "GET" and status == 200:
                return  # a cell served with the Content-Type stored with it
            raise ValidationFailure("%s: Content-Type %r not among %s" % (where, ctype, sorted(content)))
        if ctype not in ("application/json", "application/problem+json"):
            return
        if status < 400 and "application/octet-stream" in content and \
                "application/json" not in (accept or ""):
            return  # raw bytes stored as application/json
        schema = self.schema(media.get("schema", {}))
        if ctype == "application/problem+json":
            self._validate_problem(where, status, ctype, body, schema)
            return
        self._validate_json(where, body, schema)

    def _validate_json(self, where, body, schema):
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise ValidationFailure("%s: the body is not JSON (%s): %r" % (where, e, body[:200]))
        errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            msgs = "; ".join("at %s: %s" % ("/".join(map(str, e.path)) or "(root)", e.message[:300])
                             for e in errors[:5])
            raise ValidationFailure("%s: does not match openapi.yaml: %s\nbody: %s"
                                    % (where, msgs, body[:1000]))
        return doc

    def _validate_problem(self, where, status, ctype, body, schema):
        if ctype != "application/problem+json":
            raise ValidationFailure("%s: an error with Content-Type %r, not application/problem+json"
                                    % (where, ctype))
        doc = self._validate_json(where, body, schema)
        if doc["status"] != status:
            raise ValidationFailure("%s: problem status %s differs from the HTTP status" % (where, doc["status"]))
        want_type = "/problems/" + doc["code"].lower().replace("_", "-")
        if doc["type"] != want_type:
            raise ValidationFailure("%s: problem type %r, want %r" % (where, doc["type"], want_type))


def kebab(code):
    return code.lower().replace("_", "-")


def route_params(template):
    return re.findall(r"{(\w+)}", template)
