"""Probes of a running `udders up` for what the contract fuzzer cannot reach,
judged against the OpenAPI document it serves (scripts/check-contracts runs
this with the venv's Python):

  python probe.py BASE_URL OPENAPI_FILE [--header "Name: value"]...

  fallback-404   a path no route serves answers 404 as application/problem+json
  method-405     every documented path, asked with a method it does not
                 document, answers 405 with an Allow header, as a problem
  path-utf8      every operation with a path parameter, given a percent-encoded
                 byte that is not UTF-8 (%FF), answers a status the operation
                 documents, as a problem
  body-415       every operation with a JSON request body, sent text/plain,
                 answers 415 as a problem, and documents 415
  body-413       every operation with a JSON request body, sent more than
                 64 KiB of JSON, answers 413 as a problem, and documents 413
  event-stream   every GET whose 200 answer is documented as text/event-stream
                 (the fuzzer skips them: they never end) answers 200 with that
                 content type within 5 s, parameters left out

Each line of output is PASS or FAIL with the request, what the server
answered and what the document says. Exits 1 when any probe fails.
"""

import argparse
import json
import sys
import urllib.parse

import jsonschema
import requests

METHODS = ["get", "put", "post", "delete", "patch"]
PROBLEM = "application/problem+json"
TIMEOUT = 10


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("openapi")
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    base = args.base_url.rstrip("/")
    with open(args.openapi, encoding="utf-8") as f:
        doc = json.load(f)
    headers = {}
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip()] = value.strip()
    problem_schema = doc.get("components", {}).get("schemas", {}).get("Problem")
    results = []

    def record(name, ok, request, got, expected):
        results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'} {name}: {request} -> {got}" + ("" if ok else f"\n       expected {expected}"))

    def describe(response):
        ctype = response.headers.get("content-type", "(none)")
        body = response.text[:160].replace("\n", " ") if response.text else "(empty body)"
        return f"{response.status_code}, content type {ctype}, {body}"

    def problem_issue(response):
        """None when the answer is an RFC 9457 problem as the document's Problem schema says."""
        ctype = response.headers.get("content-type", "").split(";")[0].strip()
        if ctype != PROBLEM:
            return f"content type {ctype or '(none)'}, not {PROBLEM}"
        try:
            body = response.json()
        except ValueError:
            return "a body that is not JSON"
        if problem_schema is not None:
            try:
                jsonschema.validate(body, problem_schema)
            except jsonschema.ValidationError as e:
                return f"a body that is not a Problem: {e.message}"
        if body.get("status") != response.status_code:
            return f"a problem whose status {body.get('status')} is not the HTTP status"
        return None

    def send(method, path, **kwargs):
        h = dict(headers)
        h.update(kwargs.pop("headers", {}))
        return requests.request(method.upper(), base + path, headers=h, timeout=TIMEOUT, allow_redirects=False, **kwargs)

    paths = doc.get("paths", {})

    # fallback-404
    r = send("get", "/no-such-path/contract-probe")
    issue = problem_issue(r) if r.status_code == 404 else f"status {r.status_code}"
    record("fallback-404", issue is None, "GET /no-such-path/contract-probe", describe(r),
           f"404 as {PROBLEM} (the document: errors are problems); got {issue}")

    # method-405
    for path, item in sorted(paths.items()):
        documented = [m for m in METHODS if m in item]
        unused = next((m for m in ["delete", "patch", "put", "post", "get"] if m not in documented), None)
        if unused is None:
            continue
        concrete = fill_path(path, item, documented)
        r = send(unused, concrete)
        issues = []
        if r.status_code != 405:
            issues.append(f"status {r.status_code}, not 405")
        if "allow" not in {k.lower() for k in r.headers}:
            issues.append("no Allow header")
        if r.status_code == 405:
            issue = problem_issue(r)
            if issue:
                issues.append(issue)
        record("method-405", not issues, f"{unused.upper()} {concrete}", describe(r),
               f"405 with an Allow header, as {PROBLEM}; got {'; '.join(issues)}")

    for path, item in sorted(paths.items()):
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = list(item.get("parameters", [])) + list(op.get("parameters", []))
            path_params = [p for p in params if p.get("in") == "path" and "{" + p.get("name", "") + "}" in path]
            responses = op.get("responses", {})
            label = f"{method.upper()} {path}"

            # path-utf8
            if path_params:
                concrete = path
                for p in path_params:
                    concrete = concrete.replace("{" + p["name"] + "}", "%FF")
                r = send(method, concrete, **({"json": {}} if "requestBody" in op else {}))
                status = str(r.status_code)
                issues = []
                if status not in responses:
                    issues.append(f"status {status} not documented (documented: {', '.join(responses)})")
                if r.status_code >= 400:
                    issue = problem_issue(r)
                    if issue:
                        issues.append(issue)
                record("path-utf8", not issues, f"{method.upper()} {concrete}", describe(r),
                       f"a status {label} documents, as {PROBLEM}; got {'; '.join(issues)}")

            body = op.get("requestBody", {}).get("content", {})
            if "application/json" in body:
                concrete = fill_path(path, item, [method])
                # body-415
                r = send(method, concrete, data=b"{}", headers={"content-type": "text/plain"})
                issues = []
                if r.status_code != 415:
                    issues.append(f"status {r.status_code}, not 415")
                elif "415" not in responses:
                    issues.append("415 not documented")
                if r.status_code >= 400:
                    issue = problem_issue(r)
                    if issue:
                        issues.append(issue)
                record("body-415", not issues, f"{method.upper()} {concrete} (text/plain body)", describe(r),
                       f"415, documented by {label}, as {PROBLEM}; got {'; '.join(issues)}")
                # body-413
                big = json.dumps({"padding": "x" * (70 * 1024)}).encode()
                r = send(method, concrete, data=big, headers={"content-type": "application/json"})
                issues = []
                if r.status_code != 413:
                    issues.append(f"status {r.status_code}, not 413")
                elif "413" not in responses:
                    issues.append("413 not documented")
                if r.status_code >= 400:
                    issue = problem_issue(r)
                    if issue:
                        issues.append(issue)
                record("body-413", not issues, f"{method.upper()} {concrete} (70 KiB JSON body)", describe(r),
                       f"413, documented by {label}, as {PROBLEM}; got {'; '.join(issues)}")

            # event-stream
            ok_content = responses.get("200", {}).get("content", {})
            if method == "get" and ok_content and set(ok_content) == {"text/event-stream"}:
                concrete = fill_path(path, item, [method])
                issues = []
                try:
                    with requests.get(base + concrete, headers=headers, stream=True, timeout=5) as r:
                        ctype = r.headers.get("content-type", "")
                        got = f"{r.status_code} {ctype}"
                        if r.status_code != 200:
                            issues.append(f"status {r.status_code}")
                        if not ctype.startswith("text/event-stream"):
                            issues.append(f"content type {ctype or '(none)'}")
                except requests.RequestException as e:
                    got = f"no answer within 5 s ({type(e).__name__})"
                    issues.append(got)
                record("event-stream", not issues, f"GET {concrete}", got,
                       f"200 text/event-stream; got {'; '.join(issues)}")

    failed = results.count(False)
    print(f"probes: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def fill_path(path, item, methods):
    """The path with every {parameter} replaced by a harmless value."""
    for m in methods:
        for p in list(item.get("parameters", [])) + list(item.get(m, {}).get("parameters", [])):
            if p.get("in") == "path":
                path = path.replace("{" + p["name"] + "}", urllib.parse.quote("contract-probe", safe=""))
    return path


if __name__ == "__main__":
    sys.exit(main())
