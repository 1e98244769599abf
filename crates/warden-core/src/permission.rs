//! Permissions and the permission tree.
//!
//! A permission is an opaque string (`roster:read`, `calendar:events:write:move`, or a JSON
//! document). With trees on, the configured permissions are split on `:` into a tree: granting
//! a node grants every configured permission below it. A node resolves to its *leaves*, the
//! configured permissions with nothing configured below them; a permission that is not a node
//! of the tree passes through unchanged. With trees off only exact matches count.

use std::collections::{BTreeMap, BTreeSet};

use crate::CoreError;

pub const MAX_PERMISSION_LEN: usize = 512;

/// Checks a permission string: not empty, bounded, no control characters.
pub fn validate_permission(permission: &str) -> Result<(), CoreError> {
    if permission.trim().is_empty() {
        return Err(CoreError::validation("permission", "must not be empty"));
    }
    if permission.len() > MAX_PERMISSION_LEN {
        return Err(CoreError::validation("permission", format!("must be at most {MAX_PERMISSION_LEN} bytes")));
    }
    if permission.chars().any(char::is_control) || permission != permission.trim() {
        return Err(CoreError::validation("permission", format!("{permission:?} has control characters or surrounding spaces")));
    }
    Ok(())
}

/// The configured permission tree (or its absence).
#[derive(Debug, Clone, Default)]
pub struct PermissionTree {
    enabled: bool,
    /// Every node (configured permissions and their `:`-prefixes) → the leaves below it.
    leaves: BTreeMap<String, BTreeSet<String>>,
}

impl PermissionTree {
    /// A tree of `configured` permissions, or a flat set when `enabled` is false.
    pub fn new(enabled: bool, configured: &[String]) -> Result<Self, CoreError> {
        let mut tree = Self { enabled, leaves: BTreeMap::new() };
        if !enabled {
            return Ok(tree);
        }
        let configured: BTreeSet<&str> = configured.iter().map(String::as_str).collect();
        for p in &configured {
            validate_permission(p)?;
            if p.split(':').any(str::is_empty) {
                return Err(CoreError::validation("permissions", format!("{p:?} has an empty segment")));
            }
        }
        let is_leaf = |p: &str| !configured.iter().any(|q| q.len() > p.len() && q.starts_with(p) && q.as_bytes()[p.len()] == b':');
        for leaf in configured.iter().copied().filter(|p| is_leaf(p)) {
            let mut end = leaf.len();
            loop {
                tree.leaves.entry(leaf[..end].to_owned()).or_default().insert(leaf.to_owned());
                match leaf[..end].rfind(':') {
                    Some(colon) => end = colon,
                    None => break,
                }
            }
        }
        Ok(tree)
    }

    /// Warden's own `warden:*` permissions always form a tree.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `permission` is a node of the tree.
    pub fn is_node(&self, permission: &str) -> bool {
        self.enabled && self.leaves.contains_key(permission)
    }

    /// The leaves a granted permission stands for (itself when it is not a node).
    pub fn expand(&self, granted: &str) -> Vec<String> {
        match self.leaves.get(granted).filter(|_| self.enabled) {
            Some(leaves) => leaves.iter().cloned().collect(),
            None => vec![granted.to_owned()],
        }
    }

    /// Whether a set of resolved (expanded) permissions grants `requested`: every leaf below
    /// a node, or the exact string otherwise.
    pub fn grants(&self, resolved: &impl Fn(&str) -> bool, requested: &str) -> bool {
        match self.leaves.get(requested).filter(|_| self.enabled) {
            Some(leaves) => leaves.iter().all(|leaf| resolved(leaf)),
            None => resolved(requested),
        }
    }

    /// The node of `granted` that covers `requested`, for explanations: `Some(granted)` when
    /// granting `granted` grants `requested`.
    pub fn covers(&self, granted: &str, requested: &str) -> bool {
        if granted == requested {
            return true;
        }
        let (Some(g), Some(r)) = (self.leaves.get(granted), self.leaves.get(requested)) else { return false };
        self.enabled && r.is_subset(g)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn calendar() -> PermissionTree {
        let configured: Vec<String> = [
            "calendar:events:read",
            "calendar:events:write",
            "calendar:events:write:create",
            "calendar:events:write:update",
            "calendar:events:write:delete",
            "calendar:events:write:move",
        ]
        .map(String::from)
        .into();
        PermissionTree::new(true, &configured).unwrap()
    }

    #[test]
    fn the_calendar_example() {
        let tree = calendar();
        assert_eq!(
            tree.expand("calendar:events:write"),
            ["calendar:events:write:create", "calendar:events:write:delete", "calendar:events:write:move", "calendar:events:write:update"]
        );
        let all = tree.expand("calendar");
        assert_eq!(all.len(), 5);
        assert!(all.contains(&"calendar:events:read".to_owned()));
        assert!(!all.contains(&"calendar:events:write".to_owned()), "write has children: not a leaf");
        assert_eq!(tree.expand("roster:read"), ["roster:read"], "outside the tree passes through");
        assert_eq!(tree.expand("calendar:events:write:move"), ["calendar:events:write:move"]);
    }

    #[test]
    fn grants_and_covers() {
        let tree = calendar();
        let resolved: BTreeSet<String> = tree.expand("calendar:events:write").into_iter().collect();
        let has = |p: &str| resolved.contains(p);
        assert!(tree.grants(&has, "calendar:events:write:move"));
        assert!(tree.grants(&has, "calendar:events:write"));
        assert!(!tree.grants(&has, "calendar:events:read"));
        assert!(!tree.grants(&has, "calendar"));
        assert!(tree.covers("calendar", "calendar:events:write:move"));
        assert!(!tree.covers("calendar:events:write", "calendar:events:read"));
        assert!(!tree.covers("calendar:events", "calendar:eventsx"));
    }

    #[test]
    fn flat_mode_is_exact() {
        let tree = PermissionTree::new(false, &["a:b".into(), "a:b:c".into()]).unwrap();
        assert_eq!(tree.expand("a:b"), ["a:b"]);
        let has = |p: &str| p == "a:b";
        assert!(!tree.grants(&has, "a:b:c"));
        assert!(tree.grants(&has, "a:b"));
    }

    #[test]
    fn bad_permissions_refused() {
        assert!(validate_permission("").is_err());
        assert!(validate_permission(" x").is_err());
        assert!(validate_permission("a\nb").is_err());
        assert!(validate_permission(r#"{"resource": "doc", "action": "read"}"#).is_ok());
        assert!(PermissionTree::new(true, &["a::b".into()]).is_err());
    }

    proptest! {
        /// A tree grant is exactly the union of the leaves below the granted nodes.
        #[test]
        fn tree_grant_is_union_of_leaves(
            perms in proptest::collection::btree_set("[abc](:[abc]){0,3}", 1..12),
            grants in proptest::collection::vec("[abc](:[abc]){0,3}", 1..4),
            probe in "[abc](:[abc]){0,3}",
        ) {
            let configured: Vec<String> = perms.iter().cloned().collect();
            let tree = PermissionTree::new(true, &configured).unwrap();
            let resolved: BTreeSet<String> = grants.iter().flat_map(|g| tree.expand(g)).collect();
            let leaves: Vec<&String> = configured.iter().filter(|p| !configured.iter().any(|q| q.starts_with(&format!("{p}:")))).collect();
            // Every resolved permission is a configured leaf or a pass-through grant.
            for r in &resolved {
                prop_assert!(leaves.contains(&r) || grants.contains(r));
            }
            // A configured leaf is resolved iff some grant is it or an ancestor of it.
            for leaf in &leaves {
                let expected = grants.iter().any(|g| *leaf == g || leaf.starts_with(&format!("{g}:")));
                prop_assert_eq!(resolved.contains(*leaf), expected, "leaf {}", leaf);
            }
            let has = |p: &str| resolved.contains(p);
            if tree.is_node(&probe) {
                let below: Vec<String> = tree.expand(&probe);
                prop_assert_eq!(tree.grants(&has, &probe), below.iter().all(|l| resolved.contains(l)));
            }
        }
    }
}
