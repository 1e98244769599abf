//! The policy input as regorus values, built field by field.
//!
//! Going through `serde_json::Value` costs more than most policies take to evaluate (several
//! microseconds for a request with a dozen headers), so the input is built straight into the
//! engine's own value type. The subject part depends only on who asks and the authorization
//! snapshot, so the server builds it once per identity ([`SubjectValue`]) and reuses it.

use std::collections::BTreeMap;

use regorus::Value;

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
    let mut fields = BTreeMap::new();
    put(&mut fields, "method", text(request.method));
    put(&mut fields, "scheme", text(request.scheme));
    put(&mut fields, "host", text(request.host));
    put(&mut fields, "path", text(request.path));
    put(&mut fields, "query", text(request.query));
    let mut headers = BTreeMap::new();
    request.headers.each(|name, value| put(&mut headers, name, text(value)));
    put(&mut fields, "headers", Value::from(headers));
    if let Some(client) = request.client {
        put(&mut fields, "client", text(client));
    }
    Value::from(fields)
}

/// The whole input document; an anonymous request has no `subject` (undefined in Rego).
pub fn input_value(request: &RequestView<'_>, subject: Option<&SubjectValue>) -> Value {
    let mut fields = BTreeMap::new();
    put(&mut fields, "request", request_value(request));
    if let Some(subject) = subject {
        put(&mut fields, "subject", subject.0.clone());
    }
    Value::from(fields)
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
