//! How times travel in JSON: RFC 3339 in UTC with exactly three fractional digits
//! (`2026-12-06T01:55:36.120Z`), the store's precision. A fixed width means that equal times
//! print equally, that text order is time order, and that a client never has to guess whether
//! `…:36Z` and `…:36.120Z` came from the same clock. Any RFC 3339 time is accepted on input.
//!
//! Use as `#[serde(with = "warden_core::timestamp")]`, or `timestamp::option` for optional
//! fields (with `default, skip_serializing_if = "Option::is_none"`: absent, never `null`).

use serde::{Deserialize, Deserializer, Serializer};
use time::format_description::BorrowedFormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const FIXED: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The fixed-width text of a time (in UTC, milliseconds truncated).
pub fn format(t: OffsetDateTime) -> String {
    t.to_offset(UtcOffset::UTC).format(FIXED).unwrap_or_else(|_| t.to_string())
}

/// Any RFC 3339 time.
pub fn parse(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text, &Rfc3339)
}

pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*t))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// The same for an optional time.
pub mod option {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    #[allow(clippy::ref_option)]
    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
        Option::<String>::deserialize(d)?.map(|text| super::parse(&text).map_err(serde::de::Error::custom)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn every_time_prints_at_one_width_in_utc() {
        assert_eq!(format(datetime!(2026-12-06 01:55:36 UTC)), "2026-12-06T01:55:36.000Z");
        assert_eq!(format(datetime!(2026-12-06 01:55:36.12 UTC)), "2026-12-06T01:55:36.120Z");
        assert_eq!(format(datetime!(2026-12-06 01:55:36.123_456 UTC)), "2026-12-06T01:55:36.123Z");
        assert_eq!(format(datetime!(2026-12-06 03:55:36.5 +02:00)), "2026-12-06T01:55:36.500Z");
    }

    #[test]
    fn any_rfc3339_time_is_read() {
        for text in ["2026-12-06T01:55:36Z", "2026-12-06T01:55:36.5Z", "2026-12-06T02:55:36.500+01:00"] {
            let t = parse(text).unwrap();
            assert_eq!(t.to_offset(UtcOffset::UTC).date(), datetime!(2026-12-06 0:00 UTC).date(), "{text}");
        }
        assert!(parse("yesterday").is_err());
    }
}
