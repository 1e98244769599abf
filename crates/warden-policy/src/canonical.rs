//! The canonical path and host of a forwarded request: what rules and policies judge.
//!
//! A reverse proxy passes the request target on as the client wrote it, and the application
//! behind it interprets it: it decodes `%61` to `a`, resolves `..`, merges `//`, and servlet
//! containers drop `;` parameters. A rule that matched the text as sent would judge another
//! path than the one the application serves (`/static/../admin` is `/admin`). So a path is
//! brought to one form before anything matches it, and a path whose meaning depends on which
//! application reads it is refused rather than guessed at. The rules are listed in
//! docs/integrations/README.md; in short:
//!
//! - percent-encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; other escapes
//!   stay, with upper-case hex digits, and characters a path may not hold raw are escaped;
//! - `;` parameters are removed from every segment (`/a;x/b` is `/a/b`), as servlet
//!   containers do;
//! - repeated slashes are one, and `.` and `..` segments are resolved;
//! - refused: a path that does not start with `/`; a control character, backslash or `#`, raw
//!   or encoded; an encoded slash; a malformed escape; an encoded `%` that starts another
//!   escape (`%252e`); a `;` parameter on an empty or dot segment (`/..;/`); and `..` in a path
//!   that also has an empty segment (`/a//../b` is `/b` to some applications, `/a/b` to others).
//!
//! Letter case is kept: path patterns match it case-insensitively (see [`crate::glob`]).
//!
//! A host is lower case (left to the caller: hosts are matched case-insensitively), without
//! its port and without a trailing dot; an IPv6 literal keeps its brackets.

use std::borrow::Cow;

use crate::PolicyError;

fn refuse(reason: &'static str) -> PolicyError {
    PolicyError::Path(reason)
}

/// Characters a path holds as they are: unreserved, sub-delims but `;`, `:`, `@` and `/`.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,=:@/".contains(&b)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The canonical form of `path` (the request target's path, without the query), or why it is
/// refused. A path that is canonical already is returned as it is, without copying.
pub fn canonical_path(path: &str) -> Result<Cow<'_, str>, PolicyError> {
    if !path.starts_with('/') {
        return Err(refuse("the path does not start with /"));
    }
    if is_canonical(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(path)?;
    Ok(Cow::Owned(resolve(&decoded)?))
}

/// Whether `path` has only plain characters and no segment to merge or resolve.
fn is_canonical(path: &str) -> bool {
    let segments = path[1..].split('/');
    path.bytes().all(is_plain) && segments.clone().all(|s| s != "." && s != "..") && !path[1..].split('/').rev().skip(1).any(str::is_empty)
}

/// Decodes unreserved characters, upper-cases the other escapes and escapes what may not
/// stand raw, refusing what must not be in a path at all.
fn decode(path: &str) -> Result<String, PolicyError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        let byte = if b == b'%' {
            let (Some(high), Some(low)) = (bytes.get(i).copied().and_then(hex), bytes.get(i + 1).copied().and_then(hex)) else {
                return Err(refuse("the path has a malformed percent-encoding"));
            };
            i += 2;
            let value = high * 16 + low;
            match value {
                b'/' => return Err(refuse("the path has an encoded slash (%2F)")),
                v if is_unreserved(v) => {
                    out.push(char::from(v));
                    continue;
                }
                v => v,
            }
        } else {
            b
        };
        match byte {
            b'\\' => return Err(refuse("the path has a backslash")),
            b'#' if b != b'%' => return Err(refuse("the path has a fragment mark (#)")),
            c if c.is_ascii_control() => return Err(refuse("the path has a control character")),
            // A raw plain character; `;` (raw) separates parameters below.
            c if b != b'%' && (is_plain(c) || c == b';') => out.push(char::from(c)),
            c => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(c >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(c & 15)]));
            }
        }
    }
    // An encoded `%` before two hex digits: an application that decodes twice reads another path.
    let twice =
        out.match_indices("%25").any(|(at, _)| out.as_bytes().get(at + 3..at + 5).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
    if twice {
        return Err(refuse("the path is percent-encoded twice (%25 before two hex digits)"));
    }
    Ok(out)
}

/// Removes `;` parameters, merges slashes and resolves dot segments of a decoded path.
fn resolve(decoded: &str) -> Result<String, PolicyError> {
    let mut parts = Vec::new();
    for segment in decoded[1..].split('/') {
        let name = match segment.split_once(';') {
            Some(("" | "." | "..", _)) => {
                return Err(refuse("the path has a ; parameter on an empty or dot segment"));
            }
            Some((name, _)) => name,
            None => segment,
        };
        parts.push(name);
    }
    let last = parts.len() - 1;
    let merged = parts[..last].iter().any(|s| s.is_empty());
    if merged && parts.contains(&"..") {
        return Err(refuse("the path has .. and an empty segment, which applications resolve differently"));
    }
    let mut kept: Vec<&str> = Vec::with_capacity(parts.len());
    for segment in &parts {
        match *segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            name => kept.push(name),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for name in &kept {
        out.push('/');
        out.push_str(name);
    }
    // A path that ends in a segment that was removed (`/a/`, `/a/.`, `/a/b/..`) ends with a slash.
    if kept.is_empty() || matches!(parts[last], "" | "." | "..") {
        out.push('/');
    }
    Ok(out)
}

/// The host of `authority` (`host[:port]` as sent in `Host` or `X-Forwarded-Host`): without
/// the port and a trailing dot, an IPv6 literal with its brackets; letter case is left as it
/// is. Refuses an authority that is not a DNS name, an IPv4 address or an IPv6 literal, with
/// at most a numeric port.
pub fn host_of(authority: &str) -> Result<&str, PolicyError> {
    let bad = |reason| PolicyError::Host(reason);
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or(bad("an IPv6 literal without its closing bracket"))?;
        let literal = &rest[..end];
        if literal.is_empty() || !literal.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err(bad("not an IPv6 literal"));
        }
        (&authority[..end + 2], &rest[end + 1..])
    } else {
        let end = authority.find(':').unwrap_or(authority.len());
        (&authority[..end], &authority[end..])
    };
    if let Some(digits) = port.strip_prefix(':') {
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the port is not a number"));
        }
    } else if !port.is_empty() {
        return Err(bad("something follows the host"));
    }
    if host.starts_with('[') {
        return Ok(host);
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(bad("not a host name"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(path: &str) -> String {
        canonical_path(path).unwrap_or_else(|e| panic!("{path}: {e}")).into_owned()
    }

    fn refused(path: &str) -> bool {
        canonical_path(path).is_err()
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for path in ["/", "/admin/users", "/a/b/", "/a-b_c~d.e/f:g@h!$&'()*+,=", "/.well-known/x", "/a/..b/c.."] {
            assert!(matches!(canonical_path(path), Ok(Cow::Borrowed(p)) if p == path), "{path}");
        }
    }

    /// Every attack path of issue 10, and its neighbours: each is the admin path or refused.
    #[test]
    fn the_attack_paths_are_the_paths_they_reach() {
        for path in [
            "/static/../admin/users",
            "/static/%2e%2e/admin/users",
            "/static/%2E%2E/admin/users",
            "/static/.%2e/admin/users",
            "//admin/users",
            "/./admin/users",
            "/%61dmin/users",
            "/%41dmin/users",
            "/admin;x/users",
            "/admin;/users",
            "/static/x/../../admin/users",
            "/../admin/users",
            "/admin/./users",
            "/admin/users/.",
        ] {
            let c = canonical(path).to_ascii_lowercase();
            assert!(c == "/admin/users" || c == "/admin/users/", "{path} is {c}");
        }
        assert_eq!(canonical("/Admin/users"), "/Admin/users", "case is kept; patterns ignore it");
        for path in [
            "/admin%2Fusers",
            "/admin%2fusers",
            "/static/..%2Fadmin/users",
            "/static/..;/admin/users",
            "/static/%2e%2e;x/admin/users",
            "/static/.;/admin",
            "/;x/admin",
            "/static/%252e%252e/admin/users",
            "/static\\..\\admin",
            "/static/%5C../admin",
            "/admin%00/users",
            "/admin%0a",
            "/admin\t",
            "/admin%7F",
            "/admin/x#/../../static/y",
            "/admin/%zz",
            "/admin/%4",
            "/admin/%",
            "/admin//../static/x",
            "//../admin",
            "admin/users",
            "",
            "*",
        ] {
            assert!(refused(path), "{path} must be refused, not read as {:?}", canonical_path(path));
        }
    }

    #[test]
    fn decoding_merging_and_resolving() {
        assert_eq!(canonical("/a/%7e%7Eb"), "/a/~~b");
        assert_eq!(canonical("/caf%c3%a9"), "/caf%C3%A9", "other escapes stay, in upper case");
        assert_eq!(canonical("/caf\u{e9}"), "/caf%C3%A9", "raw characters a path may not hold are escaped");
        assert_eq!(canonical("/a b\"<>{}|^`"), "/a%20b%22%3C%3E%7B%7D%7C%5E%60");
        assert_eq!(canonical("/a%3Bb/c"), "/a%3Bb/c", "an encoded ; is no parameter");
        assert_eq!(canonical("/app.jsp;jsessionid=1A"), "/app.jsp");
        assert_eq!(canonical("/a;x=1/b;y/c"), "/a/b/c");
        assert_eq!(canonical("/a//b///c//"), "/a/b/c/");
        assert_eq!(canonical("/a/b/.."), "/a/");
        assert_eq!(canonical("/a/b/../"), "/a/");
        assert_eq!(canonical("/a/."), "/a/");
        assert_eq!(canonical("/.."), "/");
        assert_eq!(canonical("/../../x"), "/x", ".. stops at the root");
        assert_eq!(canonical("/a/%2e"), "/a/");
        assert_eq!(canonical("/a/%25"), "/a/%25", "a lone encoded % is a character");
        assert_eq!(canonical("/a/100%25off"), "/a/100%25off");
        assert!(refused("/a/%25%41%42"), "%25 before hex digits, once decoded, is refused too");
        assert_eq!(canonical("/tags/%23rust"), "/tags/%23rust", "an encoded # is a character");
        assert_eq!(canonical("/a/./b//c"), "/a/b/c", "merging without .. is unambiguous");
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("app.example.org").unwrap(), "app.example.org");
        assert_eq!(host_of("app.example.org.").unwrap(), "app.example.org");
        assert_eq!(host_of("app.example.org.:8443").unwrap(), "app.example.org");
        assert_eq!(host_of("App.Example.org:443").unwrap(), "App.Example.org", "case is the caller's");
        assert_eq!(host_of("10.0.0.1:80").unwrap(), "10.0.0.1");
        assert_eq!(host_of("[2001:db8::1]:8080").unwrap(), "[2001:db8::1]");
        assert_eq!(host_of("[::ffff:10.0.0.1]").unwrap(), "[::ffff:10.0.0.1]");
        assert_eq!(host_of("my_host").unwrap(), "my_host");
        for bad in [
            "",
            ".",
            ":80",
            "app..example.org",
            ".app.example.org",
            "app.example.org..",
            "app.example.org:",
            "app.example.org:80x",
            "app.example.org:123456",
            "app.example.org:80:81",
            "user@app.example.org",
            "app.example.org/x",
            "app%2eexample.org",
            "app example.org",
            "[2001:db8::1",
            "[2001:db8::1]x",
            "[]",
            "[evil.example]",
        ] {
            assert!(host_of(bad).is_err(), "{bad:?} must be refused, not read as {:?}", host_of(bad));
        }
    }

    /// What a lenient application makes of a path: every escape decoded, `;` parameters
    /// dropped, slashes merged and dot segments resolved, letter case ignored.
    fn lenient(path: &str) -> String {
        let bytes = path.as_bytes();
        let mut decoded = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
                (b'%', Some(h), Some(l)) => {
                    decoded.push(h * 16 + l);
                    i += 3;
                }
                (b, _, _) => {
                    decoded.push(b);
                    i += 1;
                }
            }
        }
        let text = String::from_utf8_lossy(&decoded).to_ascii_lowercase();
        let mut kept: Vec<&str> = Vec::new();
        for segment in text.split('/') {
            match segment.split(';').next().unwrap_or_default() {
                "" | "." => {}
                ".." => {
                    kept.pop();
                }
                name => kept.push(name),
            }
        }
        format!("/{}", kept.join("/"))
    }

    proptest::proptest! {
        /// Whatever the request, a canonical path is canonical, and an application that reads
        /// the request leniently is under `/admin` exactly when the canonical path is.
        #[test]
        fn canonical_paths_mean_what_applications_read(
            path in "/((\\.|\\.\\.|%2e|%2E|admin|Admin|%61dmin|x|;x|/|%2f|%41|%25|%252e)/?){0,6}",
        ) {
            if let Ok(c) = canonical_path(&path) {
                let again = canonical_path(&c).ok().map(Cow::into_owned);
                proptest::prop_assert_eq!(again.as_deref(), Some(c.as_ref()), "canonical twice");
                let under = |p: &str| p == "/admin" || p.starts_with("/admin/");
                let c_lower = c.to_ascii_lowercase();
                proptest::prop_assert_eq!(under(&lenient(&path)), under(lenient(&c_lower).as_str()), "{} is {}", path, c);
            }
        }
    }
}
