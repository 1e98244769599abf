//! Host and path patterns: `*` matches within one segment (no `/`, and for hosts no `.`),
//! `**` matches anything, `?` one character; everything else matches itself, ASCII
//! case-insensitively.
//!
//! Paths too are matched without regard to case: an application that reads `/Admin` as
//! `/admin` (a case-insensitive file system, a router configured so) would otherwise be
//! reached past a `/admin/**` rule. The price is that `/public/**` also lets `/PUBLIC/x`
//! through, which a case-sensitive application treats as another path, one it rarely has.
//! Paths are matched in their canonical form (see [`crate::canonical`]).
//!
//! The text comes from the client, so matching must cost at most in proportion to the
//! pattern times the text, whatever either holds: a backtracking matcher takes exponential
//! time on `/**/a/**/b` against a long path of `a`s. This one tracks the set of text positions
//! each pattern token can reach, and takes the common shapes (a literal, `PREFIX/**`) without
//! any of that.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    shape: Shape,
    separator: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**`
    Any,
}

/// A pattern that needs no position tracking.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// No wildcard at all.
    Exact(Vec<u8>),
    /// A literal followed by `**` (`/api/**`; `**` alone is the empty prefix).
    Prefix(Vec<u8>),
    General,
}

impl Glob {
    /// A path pattern (`/api/**`, `/users/*/avatar`); case-insensitive.
    pub fn path(pattern: &str) -> Self {
        Self::new(pattern.as_bytes(), b'/')
    }

    /// A host pattern (`*.example.org`, `app.example.org`); case-insensitive.
    pub fn host(pattern: &str) -> Self {
        Self::new(pattern.to_ascii_lowercase().as_bytes(), b'.')
    }

    fn new(pattern: &[u8], separator: u8) -> Self {
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            let token = match pattern[i] {
                b'*' if pattern.get(i + 1) == Some(&b'*') => {
                    i += 1;
                    Token::Any
                }
                b'*' => Token::Star,
                b'?' => Token::One,
                c => {
                    if let Some(Token::Literal(literal)) = tokens.last_mut() {
                        literal.push(c);
                        i += 1;
                        continue;
                    }
                    Token::Literal(vec![c])
                }
            };
            // `****` is `**`.
            if !(token == Token::Any && tokens.last() == Some(&Token::Any)) {
                tokens.push(token);
            }
            i += 1;
        }
        let shape = match tokens.as_slice() {
            [] => Shape::Exact(Vec::new()),
            [Token::Literal(l)] => Shape::Exact(l.clone()),
            [Token::Any] => Shape::Prefix(Vec::new()),
            [Token::Literal(l), Token::Any] => Shape::Prefix(l.clone()),
            _ => Shape::General,
        };
        Self { tokens, shape, separator }
    }

    pub fn matches(&self, text: &str) -> bool {
        let text = text.as_bytes();
        match &self.shape {
            Shape::Exact(literal) => text.len() == literal.len() && starts_with_at(literal, text, 0),
            Shape::Prefix(literal) => starts_with_at(literal, text, 0),
            Shape::General => self.matches_general(text),
        }
    }

    /// Tracks, token by token, the sorted text positions the pattern so far can end at.
    fn matches_general(&self, text: &[u8]) -> bool {
        let sep = self.separator;
        let mut at = vec![0usize];
        let mut next = Vec::new();
        for token in &self.tokens {
            next.clear();
            match token {
                Token::Literal(literal) => {
                    next.extend(at.iter().filter(|&&p| starts_with_at(literal, text, p)).map(|p| p + literal.len()));
                }
                Token::One => next.extend(at.iter().filter(|&&p| p < text.len() && text[p] != sep).map(|p| p + 1)),
                Token::Star => {
                    // Each position reaches itself and every position up to the next separator;
                    // `from` skips what an earlier position already reached (the list is sorted).
                    let mut from = 0;
                    for &p in &at {
                        let end = text[p..].iter().position(|&c| c == sep).map_or(text.len(), |i| p + i);
                        next.extend(p.max(from)..=end);
                        from = from.max(end + 1);
                    }
                }
                Token::Any => next.extend(at[0]..=text.len()),
            }
            if next.is_empty() {
                return false;
            }
            std::mem::swap(&mut at, &mut next);
        }
        at.last() == Some(&text.len())
    }
}

/// Whether `text[at..]` starts with `literal`, ignoring ASCII case.
fn starts_with_at(literal: &[u8], text: &[u8], at: usize) -> bool {
    text.get(at..at + literal.len()).is_some_and(|window| window.eq_ignore_ascii_case(literal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(Glob::path("/api/**").matches("/api/v1/users"));
        assert!(Glob::path("/api/**").matches("/api/"));
        assert!(!Glob::path("/api/**").matches("/apix"));
        assert!(!Glob::path("/api/**").matches("/api"));
        assert!(Glob::path("/users/*/avatar").matches("/users/alice/avatar"));
        assert!(Glob::path("/users/*/avatar").matches("/users//avatar"));
        assert!(!Glob::path("/users/*/avatar").matches("/users/a/b/avatar"));
        assert!(Glob::path("/").matches("/"));
        assert!(!Glob::path("/").matches("/x"));
        assert!(Glob::path("/**").matches("/anything/at/all"));
        assert!(Glob::path("**").matches(""));
        assert!(Glob::path("/file?.txt").matches("/file1.txt"));
        assert!(!Glob::path("/file?.txt").matches("/file.txt"));
        assert!(!Glob::path("/a?b").matches("/a/b"), "? does not match the separator");
        assert!(Glob::path("/**/*.js").matches("/static/app/main.js"));
        assert!(!Glob::path("/**/*.js").matches("/main.js"), "both slashes are literal: `/**/` is not optional");
        assert!(!Glob::path("/**/*.js").matches("/main.js/x"));
        assert!(Glob::path("/a/**/b").matches("/a/x/y/b"));
        assert!(Glob::path("/a/**/b").matches("/a//b"));
        assert!(!Glob::path("/a/**/b").matches("/a/b"));
        assert!(Glob::path("/*/*").matches("/x/y"));
        assert!(!Glob::path("/*/*").matches("/x"));
        assert!(Glob::path("/***").matches("/x/y"), "*** is **");
        assert!(Glob::path("/API/**").matches("/api/x"), "paths are case-insensitive");
        assert!(Glob::path("/admin/**").matches("/Admin/users"));
        assert!(Glob::path("/admin/*/edit").matches("/ADMIN/x/EDIT"));
        assert!(Glob::path("/caf%C3%A9").matches("/caf%c3%a9"));
    }

    #[test]
    fn hosts() {
        assert!(Glob::host("*.example.org").matches("App.Example.org"));
        assert!(!Glob::host("*.example.org").matches("a.b.example.org"));
        assert!(Glob::host("**.example.org").matches("a.b.example.org"));
        assert!(!Glob::host("*.example.org").matches("example.org"));
        assert!(!Glob::host("app.example.org").matches("app.example.org.evil.com"));
        assert!(Glob::host("App.Example.ORG").matches("app.example.org"));
        assert!(Glob::host("api-?.example.org").matches("API-1.example.org"));
    }

    /// The naive recursive matcher, kept as the reference the fast one must agree with.
    fn reference(p: &[u8], t: &[u8], sep: u8) -> bool {
        match p {
            [] => t.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=t.len()).any(|i| reference(rest, &t[i..], sep)),
            [b'*', rest @ ..] => {
                let limit = t.iter().position(|c| *c == sep).unwrap_or(t.len());
                (0..=limit).any(|i| reference(rest, &t[i..], sep))
            }
            [b'?', rest @ ..] => !t.is_empty() && t[0] != sep && reference(rest, &t[1..], sep),
            [c, rest @ ..] => t.first() == Some(c) && reference(rest, &t[1..], sep),
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_backtracking(pattern in "[ab/*?]{0,8}", text in "[ab/]{0,10}") {
            proptest::prop_assert_eq!(Glob::path(&pattern).matches(&text), reference(pattern.as_bytes(), text.as_bytes(), b'/'));
        }
    }

    /// A pattern a backtracking matcher needs exponential time for, on a long hostile path:
    /// answered at once (in debug builds too) because each token visits each position once.
    #[test]
    fn hostile_paths_cost_in_proportion() {
        let path = format!("/{}", "a/".repeat(4000));
        assert!(!Glob::path("/**/a/**/a/**/a/**/b").matches(&path));
        let segment = format!("/{}", "a".repeat(8000));
        assert!(!Glob::path("/*a*a*a*a*b").matches(&segment));
        assert!(Glob::path("/*a*a*a*a*").matches(&segment));
    }
}
