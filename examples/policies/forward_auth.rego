# An example forward-auth policy for Warden; Warden's integration tests use it as is.
#
# Warden asks a policy when the first matching `[[forward_auth.rule]]` has
# `action = "policy"`, or when no rule matches at all. It compiles every `*.rego` file of
# `forward_auth.policy_dir`, evaluates `forward_auth.policy_query` (default
# `data.warden.forward_auth`, i.e. this package) and reloads the files when they change. A file
# that does not compile is refused with an error in the log, and the policy in force stays.
#
# INPUT
#
#   input.request      the original request, as the proxy forwarded it
#     .method          "GET"                      (upper case)
#     .scheme          "https"
#     .host            "app.example.org"          (lower case, without port or trailing dot)
#     .path            "/policy/ops/dashboard"    canonical: unreserved escapes decoded,
#                                                 ;parameters dropped, // merged, . and ..
#                                                 resolved; letter case kept, so compare
#                                                 lower(input.request.path) where case should
#                                                 not matter (docs/integrations/README.md,
#                                                 "The canonical request"). The path as sent
#                                                 is in .headers["x-forwarded-uri"] (Traefik,
#                                                 Caddy) or ["x-original-url"] (nginx).
#     .query           "tab=1"                    ("" when none; as sent)
#     .headers         {"accept": "text/html", …} (lower-case names; Authorization and
#                                                  Cookie are never shown to policies)
#     .client          "203.0.113.7"              the rightmost X-Forwarded-For entry that is
#                                                 not a trusted proxy (absent when there is
#                                                 none)
#
#   input.subject      who is asking; absent (undefined) without a valid credential
#     .id              "0192…"                    the account's id
#     .name            "alice"
#     .kind            "user" | "service_account"
#     .email           "alice@example.org"        (absent when none)
#     .display_name    "Alice Liddell"            (absent when none)
#     .groups          ["ops", "staff"]           effective memberships (transitive)
#     .roles           ["deployer"]               roles bound to it, directly or by groups
#     .permissions     ["deploy:run"]             resolved in `tenant` (and the rule's
#                                                 namespace, when the rule names one)
#     .auth_strength   "password" | "token"       (later also "mfa", "passkey")
#     .token_kind      "session" | "api_token" | "basic"
#     .tenant          "default"
#
# RESULT
#
#   The query yields either a boolean (allow or not) or an object with these fields; anything
#   else, or nothing, denies:
#     allow    true lets the request through (200 to the proxy, with the identity headers)
#     status   the status of a refusal (default 401 without a subject, else 403)
#     headers  {"Name": "value"}: on allow sent to the proxy with the identity headers (list
#              them in the proxy's configuration to pass them on); on deny sent to the client.
#              Framing headers (Content-Length, Transfer-Encoding, Connection, …) are dropped.
#     body     the body of a refusal
#   `allow` is read first; for an allowed request only `headers` is evaluated besides.
#   Without a subject, a refusal with no status or 401 is treated like a missing credential:
#   browsers are sent to sign in, API clients get 401 with WWW-Authenticate.
#
# Try it offline: `warden policy test --policy examples/policies --input examples/policies/request.json`
# (allow, with X-Remote-Policy: ops-read); `warden policy explain` shows the lines that decided.

package warden.forward_auth

import rego.v1

default allow := false

# /policy/open/…: anyone, signed in or not.
open if startswith(input.request.path, "/policy/open/")

# /policy/ops/…: members of ops, reading only.
ops_read if {
	startswith(input.request.path, "/policy/ops/")
	"ops" in input.subject.groups
	input.request.method in {"GET", "HEAD"}
}

# /policy/legal/…: nobody, whoever asks.
legal_hold if startswith(input.request.path, "/policy/legal/")

allow if open

allow if ops_read

# The application learns which part of the policy let the request through. (Written as a
# whole object: `headers["X-Remote-Policy"] := …` works too, but the interpreter runs it,
# several times slower than the VM; see docs/integrations/README.md.)
reason := "open" if open

reason := "ops-read" if ops_read

headers := {"X-Remote-Policy": reason}

status := 451 if legal_hold

status := 403 if {
	not allow
	not legal_hold
	input.subject
}

body := "Unavailable for legal reasons." if legal_hold

body := "Members of ops only, and only to read." if {
	startswith(input.request.path, "/policy/ops/")
	not allow
	input.subject
}
