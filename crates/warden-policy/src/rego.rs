//! Rego policies (through the regorus engine): every `*.rego` file of a directory, compiled
//! once.
//!
//! The query (default `data.warden.forward_auth`) must produce either a boolean (allow or not)
//! or an object `{allow, status, headers, body}`; anything else, or nothing, is a deny.
//!
//! Two regorus engines can run a policy. Its virtual machine (RVM) runs the policy compiled to
//! bytecode, several times faster than the tree-walking interpreter, and decides whenever it
//! can: it does not compile every Rego form yet (`with`, partial objects with constant keys
//! such as `headers["X-A"] := …`). The interpreter is the reference: it runs the policies the
//! VM cannot compile, and it makes the explanations (line coverage). A policy runs on the VM
//! only if both engines agree on the trial inputs at load time; [`Policy::runtime`] says which
//! one decides and why.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Rc, Value};
use serde::Serialize;

use crate::input::{Decision, PolicyInput, RequestInfo, RequestView, SubjectInfo};
use crate::value::{SubjectValue, input_value};
use crate::{PolicyError, one_line};

pub const DEFAULT_QUERY: &str = "data.warden.forward_auth";

/// The fields of a decision document, as rules of the query's package.
const FIELDS: [&str; 4] = ["allow", "status", "headers", "body"];

/// Instructions one VM evaluation may run: far above any forward-auth policy (the example
/// policy runs a few hundred), low enough that a runaway loop ends in milliseconds, as a deny.
const VM_INSTRUCTION_LIMIT: usize = 1_000_000;

/// Wall-clock time one evaluation may take on the interpreter (the VM counts instructions
/// instead): a decision sits on the hot path of every protected request, and a policy that
/// loops must not hold a server thread.
const EVALUATION_TIME_LIMIT: std::time::Duration = std::time::Duration::from_millis(100);

fn time_limit() -> ExecutionTimerConfig {
    ExecutionTimerConfig { limit: EVALUATION_TIME_LIMIT, check_interval: std::num::NonZeroU32::MIN.saturating_add(63) }
}

/// Policy loads so far in this process: each load's generation.
static LOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Engines and VMs kept for reuse at most (about one per concurrent request).
const SPARE: usize = 16;

/// Which regorus engine decides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "engine", rename_all = "snake_case")]
pub enum Runtime {
    /// The compiled policy on the virtual machine.
    Vm,
    /// The interpreter, because the VM could not take this policy.
    Interpreter { reason: String },
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Vm => f.write_str("vm"),
            Self::Interpreter { reason } => write!(f, "interpreter ({reason})"),
        }
    }
}

/// What the query names: one rule whose value is the decision, or a package whose `allow`,
/// `status`, `headers` and `body` rules are the decision's fields.
#[derive(Debug, Clone)]
enum Shape {
    Rule(String),
    Document(Vec<(&'static str, String)>),
}

/// A policy compiled for the VM, with its entry points.
struct VmProgram {
    program: Arc<Program>,
    shape: Shape,
    spare: Spare<RegoVM>,
}

/// Evaluators ready for another evaluation: making one (cloning the compiled engine, loading a
/// program) costs more than an evaluation, so each is reused.
struct Spare<T>(Mutex<Vec<T>>);

impl<T> Spare<T> {
    fn new() -> Self {
        Self(Mutex::new(Vec::new()))
    }

    fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    fn put(&self, item: T) {
        let mut spare = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < SPARE {
            spare.push(item);
        }
    }
}

pub struct Policy {
    interpreter: Interpreter,
    /// The compiled program, or why the interpreter decides instead.
    vm: Result<VmProgram, String>,
    files: Vec<PathBuf>,
    /// The request fields the policy may read (see `request_fields_read`).
    reads: RequestFields,
    /// Whether the same input always gets the same decision (see [`deterministic`]).
    deterministic: bool,
    /// Tells this load from every other in this process.
    generation: u64,
}

/// The policy on regorus's interpreter: the reference, and what makes explanations.
struct Interpreter {
    engine: Engine,
    query: String,
    spare: Spare<Engine>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("query", &self.interpreter.query)
            .field("files", &self.files)
            .field("runtime", &self.runtime())
            .finish_non_exhaustive()
    }
}

/// One evaluation with what decided it: the result document and the policy lines that ran.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub decision: Decision,
    pub result: serde_json::Value,
    /// `file:line: source` of every policy line the evaluation covered.
    pub covered: Vec<String>,
    /// The engine that decides this policy in the server.
    pub runtime: Runtime,
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
        engine.set_execution_timer_config(time_limit());
        let (mut reads, mut nondeterministic) = (RequestFields::default(), false);
        for file in &files {
            let source = std::fs::read_to_string(file).map_err(|e| PolicyError::Load(format!("{}: {e}", file.display())))?;
            reads = reads.union(request_fields_read(&source));
            nondeterministic |= !deterministic(&source);
            engine.add_policy(file.display().to_string(), source).map_err(|e| PolicyError::Load(e.to_string()))?;
        }
        let interpreter = Interpreter { engine, query: query.to_owned(), spare: Spare::new() };
        // Trial runs catch a query that names nothing or fails (an unsafe variable, an unknown
        // function, conflicting rules): those are load errors too.
        let trials = trial_inputs();
        let expected =
            trials.iter().map(|input| interpreter.decide(&input.to_value())).collect::<Result<Vec<_>, _>>().map_err(|e| match e {
                PolicyError::Eval(message) => PolicyError::Load(message),
                other => other,
            })?;
        let vm = interpreter.compile_for_vm().and_then(|vm| {
            let agrees = trials.iter().zip(&expected).all(|(input, want)| vm.decide(input.to_value()).is_ok_and(|got| got == *want));
            if agrees { Ok(vm) } else { Err("the VM and the interpreter disagree on a trial input".to_owned()) }
        });
        let generation = LOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Self { interpreter, vm, files, reads, deterministic: !nondeterministic, generation })
    }

    /// The policy files, for reload checks.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether the policy may read the request's headers; when it cannot, the server need not
    /// copy them into its input.
    pub fn reads_request_headers(&self) -> bool {
        self.reads.headers
    }

    /// The fields of `input.request` the policy may read: the same subject and the same values
    /// of these fields get the same decision from a deterministic policy.
    pub fn request_fields(&self) -> RequestFields {
        self.reads
    }

    /// Whether the same input always gets the same decision from this policy, so that a
    /// decision may be remembered: no builtin that reads the clock, randomness, the runtime or
    /// the network, and no `print` or `trace`, whose output a remembered decision would skip.
    pub fn is_deterministic(&self) -> bool {
        self.deterministic
    }

    /// Tells this load of a policy from every other load in the process, the same files
    /// reloaded included: what a remembered decision was made by.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The engine that decides, and why when it is not the VM.
    pub fn runtime(&self) -> Runtime {
        match &self.vm {
            Ok(_) => Runtime::Vm,
            Err(reason) => Runtime::Interpreter { reason: reason.clone() },
        }
    }

    pub fn evaluate(&self, input: &PolicyInput) -> Result<Decision, PolicyError> {
        self.evaluate_value(input.to_value())
    }

    /// [`Self::evaluate`] with the subject already converted (the server keeps it per identity).
    pub fn decide(&self, request: &RequestView<'_>, subject: Option<&SubjectValue>) -> Result<Decision, PolicyError> {
        self.evaluate_value(input_value(request, subject))
    }

    fn evaluate_value(&self, input: Value) -> Result<Decision, PolicyError> {
        match &self.vm {
            Ok(vm) => vm.decide(input),
            Err(_) => self.interpreter.decide(&input),
        }
    }

    /// Evaluates with coverage on, for `warden policy explain`.
    pub fn explain(&self, input: &PolicyInput) -> Result<Explanation, PolicyError> {
        let mut engine = self.interpreter.engine.clone();
        engine.set_enable_coverage(true);
        let value = self.interpreter.query_value(&mut engine, input.to_value())?;
        let result = match &value {
            Some(v) => {
                let json = v.to_json_str().map_err(|e| PolicyError::Eval(e.to_string()))?;
                serde_json::from_str(&json).map_err(|e| PolicyError::Eval(e.to_string()))?
            }
            None => serde_json::Value::Null,
        };
        let report = engine.get_coverage_report().map_err(|e| PolicyError::Eval(e.to_string()))?;
        let mut covered = Vec::new();
        for file in &report.files {
            let lines: Vec<&str> = file.code.lines().collect();
            for line in &file.covered {
                let text = lines.get((*line as usize).saturating_sub(1)).map_or("", |l| l.trim());
                covered.push(format!("{}:{line}: {text}", file.path));
            }
        }
        let decision = value.as_ref().map_or_else(Decision::default, decision_of_value);
        Ok(Explanation { decision, result, covered, runtime: self.runtime() })
    }
}

impl Interpreter {
    /// The query's decision.
    fn decide(&self, input: &Value) -> Result<Decision, PolicyError> {
        let mut engine = self.spare.take().unwrap_or_else(|| self.engine.clone());
        let result = self.query_value(&mut engine, input.clone());
        // A spare engine keeps no request, and one that failed is not trusted with another.
        if result.is_ok() {
            engine.set_input(Value::Null);
            self.spare.put(engine);
        }
        result.map(|value| value.as_ref().map_or_else(Decision::default, decision_of_value))
    }

    /// The query's value, `None` when undefined.
    fn query_value(&self, engine: &mut Engine, input: Value) -> Result<Option<Value>, PolicyError> {
        engine.set_input(input);
        let results = engine.eval_query(self.query.clone(), false).map_err(|e| PolicyError::Eval(e.to_string()))?;
        let value = results.result.into_iter().next().and_then(|r| r.expressions.into_iter().next()).map(|e| e.value);
        Ok(value.filter(|v| *v != Value::Undefined))
    }

    /// The program the VM runs for this query, or why there is none.
    fn compile_for_vm(&self) -> Result<VmProgram, String> {
        let mut engine = self.engine.clone();
        let shape = self.shape(&mut engine)?;
        let entries: Vec<&str> = match &shape {
            Shape::Rule(rule) => vec![rule.as_str()],
            Shape::Document(fields) => fields.iter().map(|(_, path)| path.as_str()).collect(),
        };
        let first: Rc<str> = entries.first().copied().unwrap_or_default().into();
        let compiled = engine.compile_with_entrypoint(&first).map_err(|e| e.to_string())?;
        let program = Compiler::compile_from_policy(&compiled, &entries).map_err(|e| one_line(&e.to_string()))?;
        Ok(VmProgram { program, shape, spare: Spare::new() })
    }

    /// Whether the query is one rule or a package of decision fields.
    fn shape(&self, engine: &mut Engine) -> Result<Shape, String> {
        let query = self.query.as_str();
        if engine.compile_with_entrypoint(&Rc::from(query)).is_ok() {
            return Ok(Shape::Rule(query.to_owned()));
        }
        // Any field that is a whole rule gives the compiled policy, whose rule table also
        // lists the paths that only prefix a rule (`headers` of `headers["X-A"] := …`).
        let path = |field: &str| format!("{query}.{field}");
        let compiled = FIELDS
            .iter()
            .find_map(|field| engine.compile_with_entrypoint(&Rc::from(path(field).as_str())).ok())
            .ok_or_else(|| format!("the query {query} names no rule and no package with allow, status, headers or body"))?;
        let rules = compiled.get_rules();
        Ok(Shape::Document(FIELDS.iter().map(|field| (*field, path(field))).filter(|(_, p)| rules.contains_key(p)).collect()))
    }
}

impl VmProgram {
    /// One evaluation on a (reused) VM.
    fn decide(&self, input: Value) -> Result<Decision, PolicyError> {
        let mut machine = self.spare.take().unwrap_or_else(|| {
            let mut machine = RegoVM::new();
            machine.load_program(self.program.clone());
            // The instruction limit bounds a VM run; a timer as well would only add clock reads.
            machine.set_max_instructions(VM_INSTRUCTION_LIMIT);
            machine
        });
        machine.set_input(input);
        let mut run = |entry: &str| match machine.execute_entry_point_by_name(entry) {
            Ok(value) => Ok(value),
            Err(e) => Err(PolicyError::Eval(e.to_string())),
        };
        let decision = match &self.shape {
            Shape::Rule(rule) => run(rule).map(|value| decision_of_value(&value)),
            // `allow` first (FIELDS order): the rules of fields that no longer matter are not run.
            Shape::Document(fields) => fields.iter().try_fold(Decision::default(), |mut decision, (field, entry)| {
                if matters(&decision, field) {
                    set_field(&mut decision, field, &run(entry)?);
                }
                Ok(decision)
            }),
        };
        // A spare VM keeps no request, and one that failed is not trusted with another.
        if decision.is_ok() {
            machine.set_input(Value::Null);
            self.spare.put(machine);
        }
        decision
    }
}

/// Reads the query's value: a boolean, or an object with `allow`, `status`, `headers`, `body`.
/// An allowing decision has no status or body: those describe a refusal.
fn decision_of_value(value: &Value) -> Decision {
    if let Ok(allow) = value.as_bool() {
        return Decision { allow: *allow, ..Decision::default() };
    }
    let mut decision = Decision::default();
    if let Ok(object) = value.as_object() {
        for field in FIELDS {
            if let Some(v) = object.get(&Value::from(field))
                && matters(&decision, field)
            {
                set_field(&mut decision, field, v);
            }
        }
    }
    decision
}

/// Whether `field` still matters once the fields before it (FIELDS order) are read: a
/// refusal's status and body do not, for a decision that allows.
fn matters(decision: &Decision, field: &str) -> bool {
    !(decision.allow && matches!(field, "status" | "body"))
}

/// Sets one field of `decision` from the policy's value; a value of the wrong type (or
/// undefined) leaves the field as it was: not allowed, no status, no headers, no body.
fn set_field(decision: &mut Decision, field: &str, value: &Value) {
    match field {
        "allow" => decision.allow = value.as_bool().is_ok_and(|a| *a),
        "status" => decision.status = value.as_u64().ok().and_then(|s| u16::try_from(s).ok()).filter(|s| (200..600).contains(s)),
        "headers" => {
            decision.headers = value
                .as_object()
                .map(|h| h.iter().filter_map(|(k, v)| Some((k.as_string().ok()?.to_string(), v.as_string().ok()?.to_string()))).collect())
                .unwrap_or_default();
        }
        "body" => decision.body = value.as_string().ok().map(ToString::to_string),
        _ => {}
    }
}

/// The fields of `input.request` a policy may read: what its decisions can depend on besides
/// the subject. The check may say a field is read wrongly, never that it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestFields {
    pub method: bool,
    pub scheme: bool,
    pub host: bool,
    pub path: bool,
    pub query: bool,
    pub headers: bool,
    pub client: bool,
}

impl RequestFields {
    pub const ALL: Self = Self { method: true, scheme: true, host: true, path: true, query: true, headers: true, client: true };

    fn union(self, other: Self) -> Self {
        Self {
            method: self.method || other.method,
            scheme: self.scheme || other.scheme,
            host: self.host || other.host,
            path: self.path || other.path,
            query: self.query || other.query,
            headers: self.headers || other.headers,
            client: self.client || other.client,
        }
    }

    fn field(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "method" => &mut self.method,
            "scheme" => &mut self.scheme,
            "host" => &mut self.host,
            "path" => &mut self.path,
            "query" => &mut self.query,
            "headers" => &mut self.headers,
            "client" => &mut self.client,
            _ => return None,
        })
    }
}

/// Rego reaches the input only through the keyword `input`. Every `input` outside comments
/// followed by `.subject` reads no request field, and one followed by `.request.` and a field's
/// name reads that field; anything else (`input.request` as a whole, `import input…`,
/// brackets, a mention in a string) counts as reading them all.
fn request_fields_read(source: &str) -> RequestFields {
    let source = &without_comments(source);
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = source.as_bytes();
    let mut read = RequestFields::default();
    for (at, _) in source.match_indices("input") {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        if before.is_some_and(|b| is_ident(b) || b == b'.') || bytes.get(at + 5).copied().is_some_and(is_ident) {
            continue; // part of another name (`myinput`, `data.input`, `inputs`)
        }
        let rest = &source[at + 5..];
        let whole_word = |prefix: &str| rest.starts_with(prefix) && !rest.as_bytes().get(prefix.len()).copied().is_some_and(is_ident);
        if whole_word(".subject") {
            continue;
        }
        let named = rest.strip_prefix(".request.").map(|after| &after[..after.bytes().position(|b| !is_ident(b)).unwrap_or(after.len())]);
        match named.and_then(|name| read.field(name)) {
            Some(field) => *field = true,
            None => return RequestFields::ALL,
        }
    }
    read
}

/// Builtins whose results do not follow from their arguments: the clock, randomness, the
/// runtime's environment, the network; and the ones that print.
const NONDETERMINISTIC: [&str; 9] =
    ["time.now_ns", "rand.", "uuid.rfc4122", "opa.runtime", "http.send", "net.lookup_ip_addr", "io.jwt.", "print(", "trace("];

/// Whether `source` calls none of [`NONDETERMINISTIC`] outside comments. Like
/// [`reads_request_headers`], it may say no wrongly (a name in a string), never yes.
fn deterministic(source: &str) -> bool {
    let source = without_comments(source);
    !NONDETERMINISTIC.iter().any(|builtin| source.contains(builtin))
}

/// `source` with its comments (from `#` outside a string to the end of the line) blanked.
fn without_comments(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let (mut in_string, mut in_raw, mut in_comment, mut escaped) = (false, false, false, false);
    for c in source.chars() {
        if in_comment {
            in_comment = c != '\n';
            out.push(if in_comment { ' ' } else { c });
            continue;
        }
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if in_raw {
            in_raw = c != '`';
        } else if c == '#' {
            in_comment = true;
            out.push(' ');
            continue;
        } else {
            in_string = c == '"';
            in_raw = c == '`';
        }
        out.push(c);
    }
    out
}

/// Inputs every policy is tried on at load: an anonymous request, and a signed-in user's.
fn trial_inputs() -> [PolicyInput; 2] {
    let request = RequestInfo {
        method: "GET".into(),
        scheme: "https".into(),
        host: "app.example.org".into(),
        path: "/".into(),
        headers: [("accept".to_owned(), "text/html".to_owned())].into(),
        ..RequestInfo::default()
    };
    let subject = SubjectInfo {
        id: "00000000-0000-7000-8000-000000000000".into(),
        name: "trial".into(),
        kind: "user".into(),
        auth_strength: "password".into(),
        token_kind: "session".into(),
        tenant: "default".into(),
        ..SubjectInfo::default()
    };
    [PolicyInput { request: request.clone(), subject: None }, PolicyInput { request, subject: Some(subject) }]
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

    /// `examples/policies`, found from where cargo runs the tests (not from where the test was
    /// compiled: a shared target directory may hold a build from another checkout).
    fn examples() -> PathBuf {
        let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        crate_dir.join("../../examples/policies")
    }

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
        assert_eq!((d.allow, d.status), (true, None), "a status (401 here) belongs to refusals only");
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
    fn the_vm_decides_what_it_compiles_and_the_interpreter_the_rest() {
        let dir = dir_with(POLICY);
        assert_eq!(Policy::load(dir.path(), DEFAULT_QUERY).unwrap().runtime(), Runtime::Vm);
        let shipped = examples();
        assert_eq!(Policy::load(&shipped, DEFAULT_QUERY).unwrap().runtime(), Runtime::Vm, "the example policy runs on the VM");

        // A partial object with a constant key: the VM cannot compile it yet, the interpreter
        // decides, and the decision is the same.
        let constant_key = POLICY.replace(r#"headers := {"X-Team": "ops"} if allow"#, r#"headers["X-Team"] := "ops" if allow"#);
        let dir = dir_with(&constant_key);
        let policy = Policy::load(dir.path(), DEFAULT_QUERY).unwrap();
        let Runtime::Interpreter { reason } = policy.runtime() else { panic!("expected the interpreter") };
        assert!(reason.contains("constant keys"), "{reason}");
        let d = policy.evaluate(&input("/private", "GET", Some(&["ops"]))).unwrap();
        assert!(d.allow);
        assert_eq!(d.headers.get("X-Team").map(String::as_str), Some("ops"), "the headers rule is not missed");
        assert_eq!(policy.evaluate(&input("/private", "POST", Some(&["ops"]))).unwrap().status, Some(403));
    }

    #[test]
    fn pooled_engines_decide_each_request_on_its_own_input_under_concurrent_use() {
        let constant_key = POLICY.replace(r#"headers := {"X-Team": "ops"} if allow"#, r#"headers["X-Team"] := "ops" if allow"#);
        for source in [POLICY.to_owned(), constant_key] {
            let dir = dir_with(&source);
            let policy = Policy::load(dir.path(), DEFAULT_QUERY).unwrap();
            std::thread::scope(|threads| {
                for t in 0..4 {
                    let policy = &policy;
                    threads.spawn(move || {
                        for i in 0..200 {
                            // Alternate allowed and refused requests, so that a VM or engine that
                            // kept anything of its previous evaluation would be caught.
                            let allowed = (i + t) % 2 == 0;
                            let d = policy.evaluate(&input("/private", if allowed { "GET" } else { "POST" }, Some(&["ops"]))).unwrap();
                            assert_eq!(d.allow, allowed, "{}", policy.runtime());
                            assert_eq!(d.status, if allowed { None } else { Some(403) });
                            assert_eq!(d.headers.contains_key("X-Team"), allowed);
                        }
                    });
                }
            });
        }
    }

    #[test]
    fn a_query_naming_one_rule_runs_on_the_vm() {
        let dir = dir_with(POLICY);
        let policy = Policy::load(dir.path(), "data.warden.forward_auth.allow").unwrap();
        assert_eq!(policy.runtime(), Runtime::Vm);
        assert!(policy.evaluate(&input("/public", "GET", None)).unwrap().allow);
        let d = policy.evaluate(&input("/private", "GET", None)).unwrap();
        assert_eq!((d.allow, d.status), (false, None), "a boolean rule says nothing but allow");
    }

    #[test]
    fn a_conflicting_allow_never_allows_on_either_engine() {
        // Two complete definitions of `allow` that disagree for alice: the interpreter makes it
        // an evaluation error, the VM an undefined rule; either way, a deny.
        let conflicting = "package warden.forward_auth\nimport rego.v1\nallow := true if input.subject\nallow := false if input.subject.name == \"alice\"\n";
        let dir = dir_with(conflicting);
        let policy = Policy::load(dir.path(), DEFAULT_QUERY).unwrap();
        assert_eq!(policy.runtime(), Runtime::Vm);
        let alice = input("/", "GET", Some(&[]));
        let mut bob = alice.clone();
        if let Some(s) = bob.subject.as_mut() {
            s.name = "bob".into();
        }
        assert!(policy.evaluate(&bob).unwrap().allow, "no conflict for others");
        assert!(!policy.evaluate(&alice).unwrap().allow, "the VM denies");
        assert!(matches!(policy.interpreter.decide(&alice.to_value()), Err(PolicyError::Eval(_))), "the interpreter fails");
    }

    #[test]
    fn a_runaway_policy_is_cut_short_and_denies_on_either_engine() {
        // Nine million iterations that find nothing, but only for /slow (the trial runs at
        // load ask for /).
        let slow = "package warden.forward_auth\nimport rego.v1\ndefault allow := false\nallow if input.request.path == \"/fast\"\n\
                    allow if {\n  input.request.path == \"/slow\"\n  some i in numbers.range(1, 3000)\n  some j in numbers.range(1, 3000)\n  i * j == -1\n}\n";
        let on_interpreter = format!("{slow}headers[\"X-A\"] := \"a\" if allow\n");
        for (source, runtime) in [(slow.to_owned(), "vm"), (on_interpreter, "interpreter")] {
            let dir = dir_with(&source);
            let policy = Policy::load(dir.path(), DEFAULT_QUERY).unwrap();
            assert!(policy.runtime().to_string().starts_with(runtime), "{}", policy.runtime());
            assert!(policy.evaluate(&input("/fast", "GET", None)).unwrap().allow);
            let err = policy.evaluate(&input("/slow", "GET", None)).unwrap_err();
            assert_eq!(err.code(), "policy.eval", "{runtime}: {err}");
            assert!(policy.evaluate(&input("/fast", "GET", None)).unwrap().allow, "{runtime}: still deciding afterwards");
        }
    }

    #[test]
    fn only_policies_that_may_read_the_headers_are_given_them() {
        assert!(!request_fields_read(POLICY).headers);
        assert!(!request_fields_read(&std::fs::read_to_string(examples().join("forward_auth.rego")).unwrap()).headers);
        assert!(request_fields_read(RICHER).headers);
        for may in [
            "allow if input.request.headers[\"x-team\"] == \"ops\"",
            "r := input.request\nallow if r.headers.a",
            "import input.request\nallow if request.headers.a",
            "allow if input[\"request\"][\"headers\"].a",
            "allow if some _ in input",
            "allow if input.request.pathx",
            "x := \"# a hash in a string\"; allow if input.request.headers.a",
            "x := `raw # string`; allow if input.request.headers.a",
            "x := \"an escaped \\\" quote # then\"; allow if input.request.headers.a",
            "allow if \"input.request\" == input.request.path",
        ] {
            assert!(request_fields_read(may).headers, "{may}");
        }
        for cannot in [
            "allow if input.request.path == \"/\"",
            "allow if { input.subject.name == \"alice\"; input.request.method == \"GET\" }",
            "myinput := 1\nallow if data.input.x\ninputs := 2",
            "allow if input.request.client == \"10.0.0.1\"",
            "# input.request.headers, in a comment only\nallow if input.request.path == \"/\" # input",
        ] {
            assert!(!request_fields_read(cannot).headers, "{cannot}");
        }
    }

    #[test]
    fn the_request_fields_a_policy_reads() {
        let fields = |source: &str| request_fields_read(source);
        let only = |f: fn(&mut RequestFields)| {
            let mut expected = RequestFields::default();
            f(&mut expected);
            expected
        };
        assert_eq!(
            fields(POLICY),
            only(|r| {
                r.method = true;
                r.path = true;
            })
        );
        let example = fields(&std::fs::read_to_string(examples().join("forward_auth.rego")).unwrap());
        assert_eq!(
            example,
            only(|r| {
                r.method = true;
                r.path = true;
            })
        );
        assert_eq!(fields("allow if input.subject.name == \"a\""), RequestFields::default());
        assert_eq!(fields("allow if input.request.host == \"a\" # input.request.path"), only(|r| r.host = true));
        assert_eq!(fields("allow if startswith(input.request.query, \"a\")"), only(|r| r.query = true));
        assert_eq!(fields("import input.request.client as c\nallow if c == \"1\""), only(|r| r.client = true));
        for everything in [
            "r := input.request\nallow if r.path == \"/\"",
            "import input.request\nallow if request.path == \"/\"",
            "allow if input[\"request\"].path == \"/\"",
            "allow if input.request.pathx",
            "allow if walk(input, [_, _])",
        ] {
            assert_eq!(fields(everything), RequestFields::ALL, "{everything}");
        }
    }

    #[test]
    fn only_policies_that_cannot_vary_may_be_remembered() {
        assert!(deterministic(POLICY));
        assert!(deterministic(&std::fs::read_to_string(examples().join("forward_auth.rego")).unwrap()));
        assert!(deterministic("# time.now_ns() in a comment only\nallow if input.request.path == \"/\""));
        for varies in [
            "allow if time.now_ns() > 0",
            "headers := {\"X-N\": sprintf(\"%d\", [rand.intn(\"x\", 10)])}",
            "allow if uuid.rfc4122(\"a\") != \"\"",
            "allow if { print(input.request.path); true }",
            "allow if opa.runtime().env.X == \"1\"",
        ] {
            assert!(!deterministic(varies), "{varies}");
        }
        let varying =
            Policy::load(dir_with("package warden.forward_auth\n\nimport rego.v1\n\nallow if time.now_ns() > 0\n").path(), DEFAULT_QUERY)
                .unwrap();
        assert!(!varying.is_deterministic());
        let fixed = Policy::load(dir_with(POLICY).path(), DEFAULT_QUERY).unwrap();
        assert!(fixed.is_deterministic());
        let again = Policy::load(dir_with(POLICY).path(), DEFAULT_QUERY).unwrap();
        assert_ne!(fixed.generation(), again.generation(), "each load is told apart");
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

    /// Policies using more of the language than the others here: iteration, `every`,
    /// comprehensions and builtins.
    const RICHER: &str = r#"
package warden.forward_auth

import rego.v1

default allow := false

admins := {"alice"}

allow if input.subject.name in admins

allow if {
    some p in input.subject.permissions
    startswith(p, "deploy:")
    glob.match("/policy/**", ["/"], input.request.path)
}

allow if {
    every g in input.subject.groups { g != "banned" }
    count(input.subject.groups) > 1
    regex.match(`^/(ops|staff)/`, input.request.path)
}

status := 429 if input.request.headers["x-flood"] == "1"

headers := {
    "X-Groups": concat(";", sort(input.subject.groups)),
    "X-Reads": sprintf("%d", [count([p | some p in input.subject.permissions; endswith(p, ":read")])]),
} if allow

body := sprintf("no entry for %s", [input.subject.name]) if {
    input.subject
    not allow
}
"#;

    fn request_strategy() -> impl proptest::strategy::Strategy<Value = RequestInfo> {
        use proptest::prelude::*;
        let method = prop::sample::select(vec!["GET", "HEAD", "POST", "DELETE"]);
        let prefix = prop::sample::select(vec!["/policy/open/", "/policy/ops/", "/policy/legal/", "/ops/", "/staff/", "/public", "/"]);
        (method, prefix, "[a-z/]{0,8}", any::<bool>()).prop_map(|(method, prefix, rest, flood)| RequestInfo {
            method: method.into(),
            scheme: "https".into(),
            host: "app.example.org".into(),
            path: format!("{prefix}{rest}"),
            headers: if flood { [("x-flood".to_owned(), "1".to_owned())].into() } else { std::collections::BTreeMap::default() },
            ..RequestInfo::default()
        })
    }

    fn subject_strategy() -> impl proptest::strategy::Strategy<Value = Option<SubjectInfo>> {
        use proptest::prelude::*;
        let groups = prop::sample::subsequence(vec!["ops", "staff", "dev", "banned"], 0..=4);
        let permissions = prop::sample::subsequence(vec!["deploy:run", "app:read", "app:write", "calendar:read"], 0..=4);
        let name = prop::sample::select(vec!["alice", "bob", "carol"]);
        proptest::option::of((name, groups, permissions)).prop_map(|s| {
            s.map(|(name, groups, permissions)| SubjectInfo {
                name: name.into(),
                groups: groups.into_iter().map(str::to_owned).collect(),
                permissions: permissions.into_iter().map(str::to_owned).collect(),
                kind: "user".into(),
                ..SubjectInfo::default()
            })
        })
    }

    /// The policies the property below runs, compiled once (not once per generated case).
    static COMPARED: std::sync::LazyLock<Vec<Policy>> = std::sync::LazyLock::new(|| {
        let shipped = std::fs::read_to_string(examples().join("forward_auth.rego")).unwrap();
        [POLICY, RICHER, shipped.as_str()].into_iter().map(|source| Policy::load(dir_with(source).path(), DEFAULT_QUERY).unwrap()).collect()
    });

    #[test]
    fn the_compared_policies_all_run_on_the_vm() {
        assert!(COMPARED.iter().all(|policy| policy.runtime() == Runtime::Vm), "{:?}", *COMPARED);
    }

    proptest::proptest! {
        /// The VM is an optimisation: wherever it decides, it decides as the interpreter does.
        #[test]
        fn the_vm_agrees_with_the_interpreter(request in request_strategy(), subject in subject_strategy()) {
            let input = PolicyInput { request, subject };
            for policy in COMPARED.iter() {
                let by_vm = policy.evaluate(&input).unwrap();
                let by_interpreter = policy.interpreter.decide(&input.to_value()).unwrap();
                proptest::prop_assert_eq!(by_vm, by_interpreter, "{:?}", policy);
            }
        }
    }
}
