"""schemathesis hooks for Warden: how to send an `application/x-ndjson` body (the import).

The OpenAPI document describes the import body as a string of NDJSON records; schemathesis
has no serializer for that media type, so the generated value is sent as it is (a string as
UTF-8, anything else as one JSON value per line).
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, list):
        return "".join(json.dumps(item) + "\n" for item in value).encode()
    return (json.dumps(value) + "\n").encode()
