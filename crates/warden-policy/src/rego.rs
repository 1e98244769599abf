//! Rego policies (through the regorus engine): every `*.rego` file of a directory, compiled
//! once; each evaluation works on a clone of the compiled engine.
//!
//! The query (default `data.warden.forward_auth`) must produce either a boolean (allow or not)
//! or an object `{allow, status, headers, body}`; anything else, or nothing, is a deny.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use regorus::{Engine, Value};

use crate::PolicyError;
use crate::input::{Decision, PolicyInput};

pub const DEFAULT_QUERY: &str = "data.warden.forward_auth";

pub struct Policy {
    engine: Engine,
    query: String,
    files: Vec<PathBuf>,
    /// Engines ready for another evaluation: cloning the compiled engine costs more than
    /// evaluating, so each is reused (a new input replaces the old one).
    spare: std::sync::Mutex<Vec<Engine>>,
}

impl Clone for Policy {
    fn clone(&self) -> Self {
        Self { engine: self.engine.clone(), query: self.query.clone(), files: self.files.clone(), spare: std::sync::Mutex::new(Vec::new()) }
    }
}

/// Engines kept for reuse at most (about one per concurrent request).
const SPARE_ENGINES: usize = 16;

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy").field("query", &self.query).field("files", &self.files).finish_non_exhaustive()
    }
}

/// One evaluation with what decided it: the result document and the policy lines that ran.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    pub decision: Decision,
    pub result: serde_json::Value,
    /// `file:line: source` of every policy line the evaluation covered.
    pub covered: Vec<String>,
}

impl Policy {
    /// Compiles every `*.rego` file in `dir` (sorted by name). A directory without policies,
    /// a syntax error, or a query that cannot be evaluated is an error.
    pub fn load(dir: &Path, query: &str) -> Result<Self, PolicyError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| PolicyError::Load(format!("{}: {e}", dir.display())))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rego"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(PolicyError::Load(format!("no .rego files in {}", dir.display())));
        }
        let mut engine = Engine::new();
        for file in &files {
            let source = std::fs::read_to_string(file).map_err(|e| PolicyError::Load(format!("{}: {e}", file.display())))?;
            engine.add_policy(file.display().to_string(), source).map_err(|e| PolicyError::Load(e.to_string()))?;
        }
        let policy = Self { engine, query: query.to_owned(), files, spare: std::sync::Mutex::new(Vec::new()) };
        // A trial run on an empty request catches a query that names nothing or fails (an
        // unsafe variable, an unknown function, conflicting rules): those are load errors too.
        policy.evaluate(&PolicyInput::default()).map_err(|e| match e {
            PolicyError::Eval(message) => PolicyError::Load(message),
            other => other,
        })?;
        Ok(policy)
    }

    /// The policy files, for reload checks.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    pub fn evaluate(&self, input: &PolicyInput) -> Result<Decision, PolicyError> {
        let spare = self.spare.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let mut engine = spare.unwrap_or_else(|| self.engine.clone());
        let result = self.run_value(&mut engine, input).map(|value| value.as_ref().map_or_else(Decision::default, decision_of_value));
        let mut spare = self.spare.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if spare.len() < SPARE_ENGINES {
            spare.push(engine);
        }
        drop(spare);
        result
    }

    /// The query's value, `None` when undefined.
    fn run_value(&self, engine: &mut Engine, input: &PolicyInput) -> Result<Option<Value>, PolicyError> {
        let input = serde_json::to_value(input).map_err(|e| PolicyError::Eval(e.to_string()))?;
        engine.set_input(Value::from(input));
        let results = engine.eval_query(self.query.clone(), false).map_err(|e| PolicyError::Eval(e.to_string()))?;
        let value = results.result.into_iter().next().and_then(|r| r.expressions.into_iter().next()).map(|e| e.value);
        Ok(value.filter(|v| *v != Value::Undefined))
    }

    fn run(&self, engine: &mut Engine, input: &PolicyInput) -> Result<serde_json::Value, PolicyError> {
        let input = serde_json::to_value(input).map_err(|e| PolicyError::Eval(e.to_string()))?;
        engine.set_input(Value::from(input));
        let results = engine.eval_query(self.query.clone(), false).map_err(|e| PolicyError::Eval(e.to_string()))?;
        let Some(value) = results.result.into_iter().next().and_then(|r| r.expressions.into_iter().next()).map(|e| e.value) else {
            return Ok(serde_json::Value::Null);
        };
        if value == Value::Undefined {
            return Ok(serde_json::Value::Null);
        }
        let json = value.to_json_str().map_err(|e| PolicyError::Eval(e.to_string()))?;
        serde_json::from_str(&json).map_err(|e| PolicyError::Eval(e.to_string()))
    }

    /// Evaluates with coverage on, for `warden policy explain`.
    pub fn explain(&self, input: &PolicyInput) -> Result<Explanation, PolicyError> {
        let mut engine = self.engine.clone();
        engine.set_enable_coverage(true);
        let result = self.run(&mut engine, input)?;
        let report = engine.get_coverage_report().map_err(|e| PolicyError::Eval(e.to_string()))?;
        let mut covered = Vec::new();
        for file in &report.files {
            let lines: Vec<&str> = file.code.lines().collect();
            for line in &file.covered {
                let text = lines.get((*line as usize).saturating_sub(1)).map_or("", |l| l.trim());
                covered.push(format!("{}:{line}: {text}", file.path));
            }
        }
        Ok(Explanation { decision: decision_of(&result), result, covered })
    }
}

/// [`decision_of`] on the engine's own value, without a trip through JSON text (the hot path).
fn decision_of_value(value: &Value) -> Decision {
    if let Ok(allow) = value.as_bool() {
        return Decision { allow: *allow, ..Decision::default() };
    }
    let Ok(object) = value.as_object() else { return Decision::default() };
    let field = |name: &str| object.get(&Value::from(name));
    let headers = field("headers")
        .and_then(|h| h.as_object().ok())
        .map(|h| h.iter().filter_map(|(k, v)| Some((k.as_string().ok()?.to_string(), v.as_string().ok()?.to_string()))).collect())
        .unwrap_or_default();
    Decision {
        allow: field("allow").and_then(|a| a.as_bool().ok()).copied().unwrap_or(false),
        status: field("status").and_then(|s| s.as_u64().ok()).and_then(|s| u16::try_from(s).ok()).filter(|s| (200..600).contains(s)),
        headers,
        body: field("body").and_then(|b| b.as_string().ok()).map(ToString::to_string),
    }
}

/// Reads the query's result: a boolean, or an object with `allow`, `status`, `headers`, `body`.
fn decision_of(result: &serde_json::Value) -> Decision {
    match result {
        serde_json::Value::Bool(allow) => Decision { allow: *allow, ..Decision::default() },
        serde_json::Value::Object(map) => {
            let headers: BTreeMap<String, String> = map
                .get("headers")
                .and_then(|h| h.as_object())
                .map(|h| h.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect())
                .unwrap_or_default();
            Decision {
                allow: map.get("allow").and_then(serde_json::Value::as_bool).unwrap_or(false),
                status: map
                    .get("status")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (200..600).contains(s)),
                headers,
                body: map.get("body").and_then(|b| b.as_str()).map(str::to_owned),
            }
        }
        _ => Decision::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{RequestInfo, SubjectInfo};

    const POLICY: &str = r#"
package warden.forward_auth

import rego.v1

default allow := false

allow if input.request.path == "/public"

allow if {
    "ops" in input.subject.groups
    input.request.method == "GET"
}

status := 401 if not input.subject
status := 403 if { input.subject; not allow }

headers := {"X-Team": "ops"} if allow
"#;

    fn dir_with(policy: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.rego"), policy).unwrap();
        dir
    }

    fn input(path: &str, method: &str, groups: Option<&[&str]>) -> PolicyInput {
        PolicyInput {
            request: RequestInfo {
                method: method.into(),
                path: path.into(),
                host: "app.example.org".into(),
                scheme: "https".into(),
                ..RequestInfo::default()
            },
            subject: groups.map(|g| SubjectInfo {
                name: "alice".into(),
                groups: g.iter().map(|x| (*x).to_owned()).collect(),
                ..SubjectInfo::default()
            }),
        }
    }

    #[test]
    fn decisions_from_a_policy() {
        let dir = dir_with(POLICY);
        let policy = Policy::load(dir.path(), DEFAULT_QUERY).unwrap();
        let d = policy.evaluate(&input("/public", "GET", None)).unwrap();
        assert!(d.allow);
        let d = policy.evaluate(&input("/private", "GET", None)).unwrap();
        assert_eq!((d.allow, d.status), (false, Some(401)));
        let d = policy.evaluate(&input("/private", "GET", Some(&["ops"]))).unwrap();
        assert!(d.allow);
        assert_eq!(d.headers.get("X-Team").map(String::as_str), Some("ops"));
        let d = policy.evaluate(&input("/private", "POST", Some(&["ops"]))).unwrap();
        assert_eq!((d.allow, d.status), (false, Some(403)));
        let explained = policy.explain(&input("/private", "GET", Some(&["ops"]))).unwrap();
        assert!(explained.covered.iter().any(|l| l.contains("\"ops\" in input.subject.groups")), "{:?}", explained.covered);
    }

    #[test]
    fn bad_policies_are_refused() {
        let dir = dir_with("package warden.forward_auth\n\nallow if {");
        assert_eq!(Policy::load(dir.path(), DEFAULT_QUERY).unwrap_err().code(), "policy.invalid");
        let empty = tempfile::tempdir().unwrap();
        assert!(Policy::load(empty.path(), DEFAULT_QUERY).is_err());
    }

    #[test]
    fn a_bare_boolean_or_nothing() {
        let dir = dir_with("package warden.forward_auth\nimport rego.v1\nallow := true\n");
        let policy = Policy::load(dir.path(), "data.warden.forward_auth.allow").unwrap();
        assert!(policy.evaluate(&PolicyInput::default()).unwrap().allow);
        let policy = Policy::load(dir.path(), "data.warden.forward_auth.nothing").unwrap();
        assert!(!policy.evaluate(&PolicyInput::default()).unwrap().allow, "undefined is deny");
    }
}
