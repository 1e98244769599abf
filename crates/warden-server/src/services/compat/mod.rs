//! Calls shaped like other identity servers' APIs, for scripts written against them. Each
//! module maps the foreign shape onto Warden's own services and adds no rule of its own: the
//! same permissions, checks and audit events as the native calls.

pub mod kratos;
