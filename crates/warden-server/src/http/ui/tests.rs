use super::admin::{ListQuery, Pager};
use super::*;

#[test]
fn a_form_error_belongs_to_its_field_or_to_the_page() {
    let e: ServiceError = CoreError::validation("password", "too short").into();
    let error = FieldError::of(&e);
    assert_eq!(error.field, "password");
    let chrome = Chrome { title: "t".into(), csrf: "c".into(), nav: None, notice: None, error: Some(error) };
    assert_eq!(chrome.field_error("password"), Some("Invalid password: too short"));
    assert_eq!(chrome.field_error("name"), None);
    assert_eq!(chrome.page_error(&["name", "password"]), None, "shown next to the input, not above the form");
    assert_eq!(chrome.page_error(&["name"]), Some("Invalid password: too short"), "a field the page has no input for");
    // A server fault says nothing of itself.
    let internal = FieldError::of(&ServiceError::Internal("SELECT … failed: disk I/O".into()));
    assert_eq!((internal.field.as_str(), internal.message.as_str()), ("", "This is not possible right now; try again later."));
    assert!(message_of(&CoreError::NotElevated.into()).contains("re-authenticate"));
}

#[test]
fn form_values_are_read_as_people_type_them() {
    assert!(ticked(Some("on")) && ticked(Some("true")));
    assert!(!ticked(None) && !ticked(Some("")) && !ticked(Some("off")) && !ticked(Some("false")));
    assert_eq!(filled(Some("  x ")), Some("x".to_owned()));
    assert_eq!(filled(Some("   ")), None);
    assert_eq!(lines(" a \n\n b\r\n"), ["a", "b"]);
}

#[test]
fn times_show_in_utc_to_the_minute() {
    let t = time::macros::datetime!(2026-12-06 10:42:59 +02:00);
    assert_eq!(when(t), "2026-12-06 08:42 UTC");
    // However deep a template holds it.
    let held: &&time::OffsetDateTime = &&t;
    assert_eq!(when(held), "2026-12-06 08:42 UTC");
}

#[test]
fn a_list_pages_by_its_cursor_and_keeps_the_search() {
    let q = ListQuery { prefix: Some(" al ".into()), cursor: None };
    let pager = Pager::new("/admin/users", &q, Some("alice&bob"));
    assert_eq!(pager.next.as_deref(), Some("/admin/users?prefix=al&cursor=alice%26bob"));
    assert_eq!(pager.first, None, "already on the first page");
    let deeper = ListQuery { prefix: None, cursor: Some("m".into()) };
    let pager = Pager::new("/admin/users", &deeper, None);
    assert_eq!((pager.next, pager.first.as_deref()), (None, Some("/admin/users")));
}

#[test]
fn a_form_posted_from_an_expired_session_returns_to_its_page() {
    let headers = |referer: &str| {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("id.example.org"));
        h.insert(header::REFERER, HeaderValue::from_str(referer).unwrap());
        h
    };
    assert_eq!(referring_page(&headers("https://id.example.org/account/profile?x=1")).as_deref(), Some("/account/profile?x=1"));
    // Another host's page, or a host that only starts like this one: nowhere in particular.
    assert_eq!(referring_page(&headers("https://evil.example/account")), None);
    assert_eq!(referring_page(&headers("https://id.example.org.evil.example/account")), None);
    assert_eq!(referring_page(&HeaderMap::new()), None);
}
