//! The policy input as regorus values, built field by field.
//!
//! Going through `serde_json::Value` costs more than most policies take to evaluate (several
//! microseconds for a request with a dozen headers), so the input is built straight into the
//! engine's own value type. The subject part depends only on who asks and the authorization
//! snapshot, so the server builds it once per identity ([`SubjectValue`]) and reuses it.

use std::collections::BTreeMap;

use regorus::Value;
use regorus::value::Object;

use crate::input::{PolicyInput, RequestView, SubjectInfo};

/// A subject as policies see it (`input.subject`), ready to be put into many inputs: cloning
/// it shares the value, it does not copy it.
#[derive(Debug, Clone)]
pub struct SubjectValue(Value);

impl SubjectValue {
    pub fn new(subject: &SubjectInfo) -> Self {
        let mut fields = BTreeMap::new();
        put(&mut fields, "id", text(&subject.id));
        put(&mut fields, "name", text(&subject.name));
        put(&mut fields, "kind", text(&subject.kind));
        if let Some(email) = &subject.email {
            put(&mut fields, "email", text(email));
        }
        if let Some(display_name) = &subject.display_name {
            put(&mut fields, "display_name", text(display_name));
        }
        put(&mut fields, "groups", texts(&subject.groups));
        put(&mut fields, "roles", texts(&subject.roles));
        put(&mut fields, "permissions", texts(&subject.permissions));
        put(&mut fields, "auth_strength", text(&subject.auth_strength));
        put(&mut fields, "token_kind", text(&subject.token_kind));
        put(&mut fields, "tenant", text(&subject.tenant));
        Self(Value::from(fields))
    }
}

/// `input.request`: the same document `serde_json` would make of a [`crate::RequestInfo`].
pub fn request_value(request: &RequestView<'_>) -> Value {
    let templates = templates();
    let (mut fields, client) = match request.client {
        Some(client) => (templates.request.clone(), Some(client)),
        None => (templates.request_without_client.clone(), None),
    };
    let k = &templates.keys;
    fields.insert(k.method.clone(), interned(request.method));
    fields.insert(k.scheme.clone(), interned(request.scheme));
    fields.insert(k.host.clone(), text(request.host));
    fields.insert(k.path.clone(), text(request.path));
    fields.insert(k.query.clone(), text(request.query));
    let mut headers = BTreeMap::new();
    request.headers.each(|name, value| put(&mut headers, name, text(value)));
    let headers = if headers.is_empty() { templates.no_headers.clone() } else { Value::from(headers) };
    fields.insert(k.headers.clone(), headers);
    if let Some(client) = client {
        fields.insert(k.client.clone(), text(client));
    }
    Value::from(fields)
}

/// The whole input document; an anonymous request has no `subject` (undefined in Rego).
pub fn input_value(request: &RequestView<'_>, subject: Option<&SubjectValue>) -> Value {
    let templates = templates();
    let request = request_value(request);
    let mut fields = match subject {
        Some(subject) => {
            let mut fields = templates.input.clone();
            fields.insert(templates.keys.subject.clone(), subject.0.clone());
            fields
        }
        None => templates.input_without_subject.clone(),
    };
    fields.insert(templates.keys.request.clone(), request);
    Value::from(fields)
}

/// The documents' shapes, made once. An [`Object`] built from a map is stored as a sorted slice;
/// setting the value of a key it already has keeps it so, so filling a copy of a template
/// costs one allocation for the slice, where building each document from a map costs one per
/// key name, the map's nodes, and the conversion.
struct Templates {
    keys: Keys,
    request: Object,
    request_without_client: Object,
    input: Object,
    input_without_subject: Object,
    /// `{}`, for requests whose headers are not listed.
    no_headers: Value,
}

struct Keys {
    request: Value,
    subject: Value,
    method: Value,
    scheme: Value,
    host: Value,
    path: Value,
    query: Value,
    headers: Value,
    client: Value,
}

/// Methods and schemes that almost every request has, as values made once.
const INTERNED: [&str; 11] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "http", "https"];

fn templates() -> &'static Templates {
    static TEMPLATES: std::sync::LazyLock<Templates> = std::sync::LazyLock::new(|| {
        let keys = Keys {
            request: text("request"),
            subject: text("subject"),
            method: text("method"),
            scheme: text("scheme"),
            host: text("host"),
            path: text("path"),
            query: text("query"),
            headers: text("headers"),
            client: text("client"),
        };
        let object = |names: &[&Value]| -> Object {
            let map: BTreeMap<Value, Value> = names.iter().map(|k| ((*k).clone(), Value::Null)).collect();
            match Value::from(map) {
                Value::Object(object) => Object::clone(&object),
                _ => unreachable!("a map makes an object"),
            }
        };
        let k = &keys;
        let request_without_client = object(&[&k.method, &k.scheme, &k.host, &k.path, &k.query, &k.headers]);
        let request = object(&[&k.method, &k.scheme, &k.host, &k.path, &k.query, &k.headers, &k.client]);
        let input = object(&[&k.request, &k.subject]);
        let input_without_subject = object(&[&k.request]);
        Templates { keys, request, request_without_client, input, input_without_subject, no_headers: Value::from(BTreeMap::new()) }
    });
    &TEMPLATES
}

/// `text` as a value, shared with earlier requests when it is a common method or scheme.
fn interned(text: &str) -> Value {
    static VALUES: std::sync::LazyLock<Vec<Value>> = std::sync::LazyLock::new(|| INTERNED.iter().map(|t| Value::from(*t)).collect());
    match INTERNED.iter().position(|t| *t == text) {
        Some(i) => VALUES[i].clone(),
        None => Value::from(text),
    }
}

impl PolicyInput {
    /// This input as the engine's value (what `serde_json` would give, built directly).
    pub fn to_value(&self) -> Value {
        input_value(&self.request.view(), self.subject.as_ref().map(SubjectValue::new).as_ref())
    }
}

fn put(fields: &mut BTreeMap<Value, Value>, name: &str, value: Value) {
    fields.insert(Value::from(name), value);
}

fn text(s: &str) -> Value {
    Value::from(s)
}

fn texts(list: &[String]) -> Value {
    Value::from(list.iter().map(|s| text(s)).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RequestInfo;

    fn full() -> PolicyInput {
        PolicyInput {
            request: RequestInfo {
                method: "GET".into(),
                scheme: "https".into(),
                host: "app.example.org".into(),
                path: "/a/b".into(),
                query: "x=1&y=\"2\"".into(),
                headers: [("accept".to_owned(), "text/html".to_owned()), ("x-empty".to_owned(), String::new())].into(),
                client: Some("203.0.113.7".into()),
            },
            subject: Some(SubjectInfo {
                id: "0192".into(),
                name: "alice".into(),
                kind: "user".into(),
                email: Some("alice@example.org".into()),
                display_name: Some("Alice Ünïcode".into()),
                groups: vec!["ops".into(), "staff".into()],
                roles: vec![],
                permissions: vec!["deploy:run".into()],
                auth_strength: "password".into(),
                token_kind: "session".into(),
                tenant: "default".into(),
            }),
        }
    }

    /// The direct build is an optimisation of the serde route: both give the same document,
    /// with and without the optional parts.
    #[test]
    fn the_same_document_as_through_json() {
        let mut anonymous = full();
        anonymous.subject = None;
        anonymous.request.client = None;
        let mut sparse = full();
        if let Some(s) = sparse.subject.as_mut() {
            s.email = None;
            s.display_name = None;
        }
        for input in [full(), anonymous, sparse, PolicyInput::default()] {
            let through_json = Value::from(serde_json::to_value(&input).unwrap());
            assert_eq!(input.to_value(), through_json, "{input:?}");
        }
    }
}
