//! Group membership: the "member of" relation, kept acyclic, with its transitive closure.
//!
//! The store enforces the same rule inside its write transaction (it cannot hold the whole
//! graph in memory); this in-memory form is the reference the property tests pin down and the
//! shape the authorization index builds on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use uuid::Uuid;

use crate::CoreError;
use crate::model::SubjectKind;

/// A member of a group: any subject, identified by kind and id.
pub type Member = (SubjectKind, Uuid);

/// The direct-membership graph: group → its direct members.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    members: BTreeMap<Uuid, BTreeSet<Member>>,
}

impl Membership {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `member` to `group`, refusing a change that would make a group contain itself.
    pub fn add_member(&mut self, group: Uuid, member: Member) -> Result<bool, CoreError> {
        if let (SubjectKind::Group, inner) = member
            && (inner == group || self.is_effective_member(group, inner))
        {
            return Err(CoreError::MembershipCycle { group, member: inner });
        }
        Ok(self.members.entry(group).or_default().insert(member))
    }

    /// Removes `member` from `group`; returns whether it was a direct member.
    pub fn remove_member(&mut self, group: Uuid, member: Member) -> bool {
        self.members.get_mut(&group).is_some_and(|m| m.remove(&member))
    }

    /// Removes a group and every membership it took part in (as container or as member).
    /// Accounts are never removed.
    pub fn remove_group(&mut self, group: Uuid) {
        self.members.remove(&group);
        for members in self.members.values_mut() {
            members.remove(&(SubjectKind::Group, group));
        }
    }

    pub fn direct_members(&self, group: Uuid) -> impl Iterator<Item = &Member> {
        self.members.get(&group).into_iter().flatten()
    }

    /// Whether `subject_group` is (directly or through nesting) a member of `group`, treating
    /// `group` itself as not a member of itself.
    pub fn is_effective_member(&self, subject_group: Uuid, group: Uuid) -> bool {
        self.effective_members(group).contains(&(SubjectKind::Group, subject_group))
    }

    /// Every subject reachable from `group` through member edges (the transitive closure).
    pub fn effective_members(&self, group: Uuid) -> BTreeSet<Member> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<Uuid> = VecDeque::from([group]);
        let mut visited_groups = BTreeSet::from([group]);
        while let Some(g) = queue.pop_front() {
            for &member in self.direct_members(g) {
                seen.insert(member);
                if member.0 == SubjectKind::Group && visited_groups.insert(member.1) {
                    queue.push_back(member.1);
                }
            }
        }
        seen
    }

    /// Every group that `subject` is an effective member of.
    pub fn effective_groups(&self, subject: Member) -> BTreeSet<Uuid> {
        let mut parents: BTreeMap<Member, Vec<Uuid>> = BTreeMap::new();
        for (group, members) in &self.members {
            for member in members {
                parents.entry(*member).or_default().push(*group);
            }
        }
        let mut out = BTreeSet::new();
        let mut queue = VecDeque::from([subject]);
        while let Some(s) = queue.pop_front() {
            for &g in parents.get(&s).into_iter().flatten() {
                if out.insert(g) {
                    queue.push_back((SubjectKind::Group, g));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn gid(n: u8) -> Uuid {
        Uuid::from_u128(u128::from(n) + 1)
    }

    fn uid(n: u8) -> Uuid {
        Uuid::from_u128(u128::from(n) + 1000)
    }

    #[test]
    fn three_levels_and_a_cycle() {
        let mut m = Membership::new();
        m.add_member(gid(0), (SubjectKind::Group, gid(1))).unwrap();
        m.add_member(gid(1), (SubjectKind::Group, gid(2))).unwrap();
        m.add_member(gid(2), (SubjectKind::User, uid(0))).unwrap();
        assert!(m.effective_members(gid(0)).contains(&(SubjectKind::User, uid(0))));
        let err = m.add_member(gid(2), (SubjectKind::Group, gid(0))).unwrap_err();
        assert_eq!(err.code(), "group.cycle");
        assert!(m.add_member(gid(0), (SubjectKind::Group, gid(0))).is_err());
        m.remove_group(gid(1));
        assert!(!m.effective_members(gid(0)).contains(&(SubjectKind::User, uid(0))));
        assert!(m.effective_members(gid(2)).contains(&(SubjectKind::User, uid(0))));
    }

    /// Plain reachability by repeated relaxation, independent of the BFS above.
    fn reachable(edges: &[(u8, u8)], from: u8) -> BTreeSet<u8> {
        let mut out: BTreeSet<u8> = BTreeSet::new();
        loop {
            let before = out.len();
            for &(g, m) in edges {
                if g == from || out.contains(&g) {
                    out.insert(m);
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }

    proptest! {
        #[test]
        fn closure_is_reachability_and_graph_stays_acyclic(ops in proptest::collection::vec((0u8..12, 0u8..12, any::<bool>()), 0..80)) {
            let mut m = Membership::new();
            let mut accepted: Vec<(u8, u8)> = Vec::new();
            for (g, member, is_group) in ops {
                if is_group {
                    if m.add_member(gid(g), (SubjectKind::Group, gid(member))).is_ok() {
                        accepted.push((g, member));
                    }
                } else {
                    m.add_member(gid(g), (SubjectKind::User, uid(member))).unwrap();
                }
            }
            for g in 0u8..12 {
                let closure: BTreeSet<u8> = m.effective_members(gid(g)).into_iter()
                    .filter(|(k, _)| *k == SubjectKind::Group)
                    .map(|(_, id)| (id.as_u128() - 1) as u8)
                    .collect();
                let expected = reachable(&accepted, g);
                prop_assert_eq!(&closure, &expected);
                prop_assert!(!closure.contains(&g), "group {} contains itself", g);
            }
        }

        #[test]
        fn effective_groups_is_inverse_of_effective_members(edges in proptest::collection::vec((0u8..8, 0u8..8), 0..30), user_in in proptest::collection::vec(0u8..8, 0..4)) {
            let mut m = Membership::new();
            for (g, member) in edges {
                let _ = m.add_member(gid(g), (SubjectKind::Group, gid(member)));
            }
            for g in &user_in {
                m.add_member(gid(*g), (SubjectKind::User, uid(0))).unwrap();
            }
            let groups = m.effective_groups((SubjectKind::User, uid(0)));
            for g in 0u8..8 {
                prop_assert_eq!(groups.contains(&gid(g)), m.effective_members(gid(g)).contains(&(SubjectKind::User, uid(0))));
            }
        }
    }
}
