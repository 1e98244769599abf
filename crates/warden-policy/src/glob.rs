//! Host and path patterns: `*` matches within one segment (no `/`, and for hosts no `.`),
//! `**` matches anything, `?` one character; everything else matches itself, ASCII
//! case-insensitively for hosts.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Vec<u8>,
    separator: u8,
}

impl Glob {
    /// A path pattern (`/api/**`, `/users/*/avatar`).
    pub fn path(pattern: &str) -> Self {
        Self { pattern: pattern.as_bytes().to_vec(), separator: b'/' }
    }

    /// A host pattern (`*.example.org`, `app.example.org`); case-insensitive.
    pub fn host(pattern: &str) -> Self {
        Self { pattern: pattern.to_ascii_lowercase().into_bytes(), separator: b'.' }
    }

    pub fn matches(&self, text: &str) -> bool {
        let text = if self.separator == b'.' { text.to_ascii_lowercase().into_bytes() } else { text.as_bytes().to_vec() };
        matches(&self.pattern, &text, self.separator)
    }
}

fn matches(p: &[u8], t: &[u8], sep: u8) -> bool {
    match p {
        [] => t.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=t.len()).any(|i| matches(rest, &t[i..], sep)),
        [b'*', rest @ ..] => {
            let limit = t.iter().position(|c| *c == sep).unwrap_or(t.len());
            (0..=limit).any(|i| matches(rest, &t[i..], sep))
        }
        [b'?', rest @ ..] => !t.is_empty() && t[0] != sep && matches(rest, &t[1..], sep),
        [c, rest @ ..] => t.first() == Some(c) && matches(rest, &t[1..], sep),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(Glob::path("/api/**").matches("/api/v1/users"));
        assert!(Glob::path("/api/**").matches("/api/"));
        assert!(!Glob::path("/api/**").matches("/apix"));
        assert!(Glob::path("/users/*/avatar").matches("/users/alice/avatar"));
        assert!(!Glob::path("/users/*/avatar").matches("/users/a/b/avatar"));
        assert!(Glob::path("/").matches("/"));
        assert!(!Glob::path("/").matches("/x"));
        assert!(Glob::path("/**").matches("/anything/at/all"));
        assert!(Glob::path("/file?.txt").matches("/file1.txt"));
    }

    #[test]
    fn hosts() {
        assert!(Glob::host("*.example.org").matches("App.Example.org"));
        assert!(!Glob::host("*.example.org").matches("a.b.example.org"));
        assert!(Glob::host("**.example.org").matches("a.b.example.org"));
        assert!(!Glob::host("*.example.org").matches("example.org"));
        assert!(!Glob::host("app.example.org").matches("app.example.org.evil.com"));
    }
}
