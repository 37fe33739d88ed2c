//! The Data-Service's state and its answers, without sockets: points and
//! values, registration, the IPC lines and the HTTP API.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::http_server::HttpRequest;

/// The Data-Service's listen backlog.
pub const LISTEN_BACKLOG: i32 = 5;
/// Entries of per-key history kept (each write appends one).
pub const HISTORY_LIMIT: usize = 1000;

const DATA_TYPES: [(&str, u32); 5] = [
    ("float", 40001),
    ("int", 41001),
    ("bool", 42001),
    ("string", 43001),
    ("raw", 44001),
];

/// How the IPC side behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkBehaviour {
    /// As the real server.
    Normal,
    /// Accepts connections and never answers.
    Frozen,
    /// Answers a line that is not JSON.
    Garbage,
    /// Answers a 1 MB line.
    HugeLine,
    /// Closes without answering.
    CloseEarly,
    /// Answers after this many milliseconds.
    SlowMillis(u64),
}

/// One registered point.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Its key.
    pub key: String,
    /// Its id in this process.
    pub id: String,
    /// Its Modbus-style address.
    pub address: Option<u32>,
    /// The value used when a write does not coerce.
    pub default: Value,
    /// `float`, `int`, `bool`, `string` or `raw`.
    pub data_type: String,
    /// Units.
    pub units: String,
    /// Current value.
    pub value: Value,
    /// `GOOD` or `BAD`.
    pub quality: &'static str,
    /// Last write (Unix seconds).
    pub timestamp: f64,
    /// Last change of value (Unix seconds).
    pub last_change: f64,
    /// Writes applied (the history length, capped at 1,000).
    pub history: usize,
}

/// The store and what the double saw.
#[derive(Debug)]
pub struct Store {
    points: BTreeMap<String, Point>,
    ids: HashMap<String, String>,
    used_addresses: HashMap<u32, String>,
    next_address: [u32; 5],
    pub(super) rng: u64,
    /// The IPC request lines received, in order.
    requests: RequestLog,
    /// The HTTP API requests, as `METHOD PATH BODY`, in order.
    api_requests: RequestLog,
    /// The writes applied, as (key, value written), in order, up to
    /// [`WRITE_LOG_ENTRIES`].
    writes: Vec<(String, Value)>,
    /// IPC requests answered.
    pub answered: u64,
    /// Writes applied to registered keys.
    pub applied: u64,
    /// Writes dropped because the key was not registered.
    pub dropped_unregistered: u64,
    pub(super) behaviour: SinkBehaviour,
}

/// Bytes of requests each log keeps: all a test makes. The demo and the
/// benchmarks run for minutes and must not grow without end (at 10,000
/// tags every 100 ms, the bulk lines alone are some 6 MB a second).
const REQUEST_LOG_BYTES: usize = 64 << 20;

/// Applied writes each store keeps, for the simulated-time tests (a few
/// hundred each); the benchmarks apply far more and keep only these.
const WRITE_LOG_ENTRIES: usize = 100_000;

/// Requests kept for inspection, in order, up to [`REQUEST_LOG_BYTES`].
#[derive(Debug, Default)]
struct RequestLog {
    lines: Vec<String>,
    bytes: usize,
}

impl RequestLog {
    fn record(&mut self, line: &str) {
        if self.bytes + line.len() <= REQUEST_LOG_BYTES {
            self.bytes += line.len();
            self.lines.push(line.to_string());
        }
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        bytes = (nanos.as_nanos() as u64 ^ u64::from(std::process::id())).to_le_bytes();
    }
    u64::from_le_bytes(bytes) | 1
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl Store {
    /// An empty store whose ids are random, as the real server's are.
    pub fn new() -> Self {
        Self::with_seed(seed())
    }

    /// An empty store whose ids follow from `seed`: the same run, the same
    /// ids (for simulated-time tests).
    pub fn with_seed(seed: u64) -> Self {
        Store {
            points: BTreeMap::new(),
            ids: HashMap::new(),
            used_addresses: HashMap::new(),
            next_address: DATA_TYPES.map(|(_, start)| start),
            rng: seed | 1,
            requests: RequestLog::default(),
            api_requests: RequestLog::default(),
            writes: Vec::new(),
            answered: 0,
            applied: 0,
            dropped_unregistered: 0,
            behaviour: SinkBehaviour::Normal,
        }
    }

    fn new_id(&mut self) -> String {
        let mut id = String::with_capacity(32);
        for _ in 0..2 {
            // xorshift64*
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            id.push_str(&format!(
                "{:016x}",
                self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
            ));
        }
        id
    }

    /// A restart: every registration and id is gone, and ids change; the
    /// request and write logs go on.
    pub fn restart(&mut self) {
        let requests = std::mem::take(&mut self.requests);
        let api_requests = std::mem::take(&mut self.api_requests);
        let writes = std::mem::take(&mut self.writes);
        let next_seed = self.rng.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        *self = Store::with_seed(next_seed);
        self.requests = requests;
        self.api_requests = api_requests;
        self.writes = writes;
    }

    /// IPC request lines received so far, in order.
    pub fn request_lines(&self) -> &[String] {
        &self.requests.lines
    }

    /// The writes applied so far, as (key, value written), in order.
    pub fn applied_writes(&self) -> &[(String, Value)] {
        &self.writes
    }

    /// HTTP API requests received so far (`METHOD PATH BODY`), in order.
    pub fn api_request_lines(&self) -> &[String] {
        &self.api_requests.lines
    }

    /// Every registered key's value.
    pub fn values(&self) -> BTreeMap<String, Value> {
        self.points
            .iter()
            .map(|(k, p)| (k.clone(), p.value.clone()))
            .collect()
    }

    /// The registered points.
    pub fn points(&self) -> &BTreeMap<String, Point> {
        &self.points
    }

    /// Registers one point as `POST /register` does.
    pub fn register(
        &mut self,
        spec: &Map<String, Value>,
        allow_conflict: bool,
    ) -> Result<String, String> {
        let key = match spec.get("key") {
            Some(Value::String(k)) if !k.is_empty() => k.clone(),
            _ => return Err("key required".into()),
        };
        let data_type = match spec.get("data_type") {
            None | Some(Value::Null) => "float".to_string(),
            Some(Value::String(t)) if DATA_TYPES.iter().any(|(n, _)| n == t) => t.clone(),
            Some(other) => return Err(format!("invalid data_type: {other}")),
        };
        let type_index = DATA_TYPES
            .iter()
            .position(|(n, _)| *n == data_type)
            .unwrap_or(0);
        let default = spec
            .get("default")
            .cloned()
            .unwrap_or_else(|| type_default(&data_type));
        let units = spec
            .get("units")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let requested = spec
            .get("address")
            .and_then(Value::as_u64)
            .map(|a| a as u32);
        if let Some(existing) = self.points.get(&key)
            && requested.is_some()
            && requested == existing.address
            && existing.default == default
            && existing.data_type == data_type
            && existing.units == units
        {
            return Ok(existing.id.clone());
        }
        let address = match requested {
            Some(a) => {
                if let Some(owner) = self.used_addresses.get(&a)
                    && owner != &key
                    && !allow_conflict
                {
                    return Err(format!("address {a} already in use by {owner}"));
                }
                a
            }
            None => {
                let (_, start) = DATA_TYPES[type_index];
                let next = self.next_address[type_index];
                if next >= start + 1000 {
                    return Err(format!("address range exhausted for data_type {data_type}"));
                }
                self.next_address[type_index] += 1;
                next
            }
        };
        self.used_addresses.insert(address, key.clone());
        let id = match self.points.get(&key) {
            Some(p) => p.id.clone(),
            None => self.new_id(),
        };
        let now = unix_now();
        let value = self
            .points
            .get(&key)
            .map_or_else(|| default.clone(), |p| p.value.clone());
        self.ids.insert(id.clone(), key.clone());
        self.points.insert(
            key.clone(),
            Point {
                key,
                id: id.clone(),
                address: Some(address),
                default,
                data_type,
                units,
                value,
                quality: "GOOD",
                timestamp: now,
                last_change: now,
                history: 0,
            },
        );
        Ok(id)
    }

    fn apply(&mut self, key: &str, value: &Value) -> bool {
        let Some(point) = self.points.get_mut(key) else {
            self.dropped_unregistered += 1;
            return false;
        };
        let (stored, quality) = match coerce(value, &point.data_type) {
            Some(v) => (v, "GOOD"),
            None => (point.default.clone(), "BAD"),
        };
        let now = unix_now();
        if stored != point.value {
            point.last_change = now;
        }
        point.value = stored;
        point.quality = quality;
        point.timestamp = now;
        point.history = (point.history + 1).min(HISTORY_LIMIT);
        self.applied += 1;
        if self.writes.len() < WRITE_LOG_ENTRIES {
            self.writes.push((key.to_string(), value.clone()));
        }
        true
    }

    /// Answers one IPC request line (without its newline).
    pub fn handle_ipc(&mut self, line: &str) -> Value {
        self.requests.record(line);
        let request: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return json!({"ok": false, "error": format!("invalid json: {e}")}),
        };
        let action = request.get("action").and_then(Value::as_str).unwrap_or("");
        let null = Value::Null;
        match action {
            "write" => {
                let Some(key) = request.get("key").and_then(Value::as_str) else {
                    return json!({"ok": false, "error": "key required"});
                };
                let key = key.to_string();
                self.apply(&key, request.get("value").unwrap_or(&null));
                json!({"ok": true})
            }
            "write_by_id" => {
                let Some(id) = request.get("id").and_then(Value::as_str) else {
                    return json!({"ok": false, "error": "id required"});
                };
                match self.ids.get(id).cloned() {
                    Some(key) => {
                        self.apply(&key, request.get("value").unwrap_or(&null));
                        json!({"ok": true, "key": key})
                    }
                    None => json!({"ok": false, "error": "id not found"}),
                }
            }
            "bulk_write_by_id" => {
                let Some(updates) = request.get("updates").and_then(Value::as_array) else {
                    return json!({"ok": false, "error": "updates must be a list"});
                };
                let mut results = Vec::with_capacity(updates.len());
                for update in updates {
                    let id = update.get("id").and_then(Value::as_str).unwrap_or("");
                    match self.ids.get(id).cloned() {
                        Some(key) => {
                            self.apply(&key, update.get("value").unwrap_or(&null));
                            results.push(json!({"id": id, "ok": true, "key": key}));
                        }
                        None => {
                            results.push(json!({"id": id, "ok": false, "error": "id not found"}))
                        }
                    }
                }
                json!({"ok": true, "results": results})
            }
            _ => json!({"ok": false, "error": "unknown action"}),
        }
    }

    pub(super) fn handle_http(&mut self, request: &HttpRequest) -> (u16, Value) {
        self.handle_api(&request.method, &request.path, &request.body)
    }

    /// Answers one HTTP API request: the status and the JSON body.
    pub fn handle_api(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        self.api_requests.record(&format!(
            "{method} {path} {}",
            String::from_utf8_lossy(body)
        ));
        let body = || serde_json::from_slice::<Value>(body).ok();
        match (method, path) {
            ("GET", "/health") => (200, json!({"status": "ok"})),
            ("GET", "/data") => (
                200,
                Value::Object(self.points.iter().map(|(k, p)| (k.clone(), p.value.clone())).collect()),
            ),
            ("GET", "/detailed") => (
                200,
                Value::Object(
                    self.points
                        .iter()
                        .map(|(k, p)| {
                            (
                                k.clone(),
                                json!({"key": k, "value": p.value, "default": p.default,
                                       "address": p.address, "data_type": p.data_type,
                                       "units": p.units, "timestamp": p.timestamp,
                                       "quality": p.quality, "last_change": p.last_change}),
                            )
                        })
                        .collect(),
                ),
            ),
            ("GET", "/datapoints") => (
                200,
                Value::Array(
                    self.points
                        .values()
                        .map(|p| {
                            json!({"key": p.key, "address": p.address, "data_type": p.data_type,
                                   "units": p.units, "current_value": p.value, "quality": p.quality})
                        })
                        .collect(),
                ),
            ),
            ("POST", "/register") => match body() {
                Some(Value::Object(spec)) => {
                    let allow = spec.get("allow_address_conflict").and_then(Value::as_bool).unwrap_or(false);
                    match self.register(&spec, allow) {
                        Ok(id) => (200, json!({"ok": true, "id": id})),
                        Err(error) => (400, json!({"detail": error})),
                    }
                }
                _ => (400, json!({"detail": "invalid body"})),
            },
            ("POST", "/register/bulk") => match body() {
                Some(Value::Object(spec)) => (200, self.register_bulk(&spec)),
                _ => (400, json!({"detail": "invalid body"})),
            },
            _ => (404, json!({"detail": "Not Found"})),
        }
    }

    fn register_bulk(&mut self, spec: &Map<String, Value>) -> Value {
        let allow = spec
            .get("allow_address_conflict")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let points = spec
            .get("points")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut results = Vec::new();
        let mut errors = Vec::new();
        let mut successful = 0;
        for (index, point) in points.iter().enumerate() {
            let Some(point) = point.as_object() else {
                errors.push(json!({"index": index, "error": "point must be an object"}));
                continue;
            };
            let Some(key) = point.get("key").and_then(Value::as_str) else {
                errors.push(json!({"index": index, "error": "key required"}));
                continue;
            };
            match self.register(point, allow) {
                Ok(id) => {
                    successful += 1;
                    results.push(json!({"index": index, "key": key, "id": id, "ok": true}));
                }
                Err(error) => {
                    results.push(json!({"index": index, "key": key, "ok": false, "error": error}));
                }
            }
        }
        let failed = points.len() - successful;
        json!({"ok": failed == 0, "total_points": points.len(), "successful": successful,
               "failed": failed, "results": results, "errors": errors})
    }
}

fn type_default(data_type: &str) -> Value {
    match data_type {
        "float" => json!(0.0),
        "int" => json!(0),
        "bool" => json!(false),
        "string" => json!(""),
        _ => Value::Null,
    }
}

/// The store's coercion of a written value to the point's type.
fn coerce(value: &Value, data_type: &str) -> Option<Value> {
    match (data_type, value) {
        ("float", Value::Number(n)) => n.as_f64().map(|f| json!(f)),
        ("float", Value::Bool(b)) => Some(json!(if *b { 1.0 } else { 0.0 })),
        ("float", Value::String(s)) => s.trim().parse::<f64>().ok().map(|f| json!(f)),
        ("int", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
            .map(|i| json!(i)),
        ("int", Value::Bool(b)) => Some(json!(i64::from(*b))),
        ("int", Value::String(s)) => s.trim().parse::<i64>().ok().map(|i| json!(i)),
        ("bool", Value::Bool(b)) => Some(json!(b)),
        ("bool", Value::Number(n)) => n.as_f64().map(|f| json!(f != 0.0)),
        ("string", Value::String(s)) => Some(json!(s)),
        ("string", Value::Null) => None,
        ("string", other) => Some(json!(other.to_string())),
        ("raw", other) => Some(other.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixStream;

    use super::super::DataServiceDouble;
    use super::*;
    use crate::pyjson::dumps;

    fn spec(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn the_request_log_keeps_lines_up_to_its_byte_budget() {
        let mut log = RequestLog::default();
        let line = "x".repeat(REQUEST_LOG_BYTES / 4);
        for _ in 0..5 {
            log.record(&line);
        }
        log.record("y");
        assert_eq!(log.lines.len(), 4);
        assert_eq!(log.bytes, REQUEST_LOG_BYTES);
    }

    #[test]
    fn writes_to_unregistered_keys_are_dropped_but_answered_ok() {
        let mut store = Store::new();
        assert_eq!(
            store.handle_ipc(r#"{"action":"write","key":"nobody","value":1}"#),
            json!({"ok": true})
        );
        assert_eq!(store.dropped_unregistered, 1);
        assert!(store.points().is_empty());
        let id = store
            .register(&spec(json!({"key": "a", "data_type": "int"})), false)
            .unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        store.handle_ipc(r#"{"action":"write","key":"a","value":7}"#);
        assert_eq!(store.points()["a"].value, json!(7));
        assert_eq!(store.points()["a"].history, 1);
    }

    #[test]
    fn ipc_answers_every_form_of_protocols_section_2() {
        let mut store = Store::new();
        let id = store
            .register(&spec(json!({"key": "t", "data_type": "float"})), false)
            .unwrap();
        let by_id = store.handle_ipc(&format!(
            r#"{{"action":"write_by_id","id":"{id}","value":2}}"#
        ));
        assert_eq!(by_id, json!({"ok": true, "key": "t"}));
        assert_eq!(store.points()["t"].value, json!(2.0));
        assert_eq!(
            store.handle_ipc(r#"{"action":"write_by_id","id":"00","value":2}"#),
            json!({"ok": false, "error": "id not found"})
        );
        let bulk = store.handle_ipc(&format!(
            r#"{{"action":"bulk_write_by_id","updates":[{{"id":"{id}","value":3}},{{"id":"x","value":4}}]}}"#
        ));
        assert_eq!(
            bulk,
            json!({"ok": true, "results": [{"id": id, "ok": true, "key": "t"}, {"id": "x", "ok": false, "error": "id not found"}]})
        );
        assert_eq!(
            store.handle_ipc(r#"{"action":"write"}"#),
            json!({"ok": false, "error": "key required"})
        );
        assert_eq!(
            store.handle_ipc(r#"{"action":"write_by_id"}"#),
            json!({"ok": false, "error": "id required"})
        );
        assert_eq!(
            store.handle_ipc(r#"{"action":"bulk_write_by_id","updates":5}"#),
            json!({"ok": false, "error": "updates must be a list"})
        );
        assert_eq!(
            store.handle_ipc(r#"{"action":"nope"}"#),
            json!({"ok": false, "error": "unknown action"})
        );
        let invalid = store.handle_ipc("{oops");
        assert_eq!(invalid["ok"], json!(false));
        assert!(
            invalid["error"]
                .as_str()
                .unwrap()
                .starts_with("invalid json: ")
        );
        assert_eq!(
            dumps(&json!({"ok": true, "key": "t"})),
            r#"{"ok": true, "key": "t"}"#,
            "the server's own JSON has a space after ':' and ','"
        );
    }

    #[test]
    fn values_that_do_not_coerce_become_the_default_with_bad_quality() {
        let mut store = Store::new();
        store
            .register(
                &spec(json!({"key": "i", "data_type": "int", "default": -1})),
                false,
            )
            .unwrap();
        store.handle_ipc(r#"{"action":"write","key":"i","value":"abc"}"#);
        assert_eq!(
            (
                store.points()["i"].value.clone(),
                store.points()["i"].quality
            ),
            (json!(-1), "BAD")
        );
        store.handle_ipc(r#"{"action":"write","key":"i","value":3.9}"#);
        assert_eq!(
            (
                store.points()["i"].value.clone(),
                store.points()["i"].quality
            ),
            (json!(3), "GOOD")
        );
    }

    #[test]
    fn registration_allocates_per_type_ranges_and_is_idempotent_with_the_same_fields() {
        let mut store = Store::new();
        let first = store.register(&spec(json!({"key": "f"})), false).unwrap();
        assert_eq!(store.points()["f"].address, Some(40001));
        store
            .register(&spec(json!({"key": "b", "data_type": "bool"})), false)
            .unwrap();
        assert_eq!(store.points()["b"].address, Some(42001));
        // Same address, default, data_type and units: same id, nothing moves.
        let again = store
            .register(&spec(json!({"key": "f", "address": 40001, "default": 0.0, "data_type": "float", "units": ""})), false)
            .unwrap();
        assert_eq!(again, first);
        assert_eq!(store.points()["f"].address, Some(40001));
        // Without its address: a new address, the old one stays mapped.
        store.register(&spec(json!({"key": "f"})), false).unwrap();
        assert_eq!(store.points()["f"].address, Some(40002));
        assert_eq!(store.used_addresses[&40001], "f");
        assert_eq!(
            store.register(&spec(json!({"key": "g", "address": 40002})), false),
            Err("address 40002 already in use by f".to_string())
        );
    }

    #[test]
    fn bulk_registration_reports_an_exhausted_range_per_point() {
        let mut store = Store::new();
        let mut points: Vec<Value> = (0..1001)
            .map(|i| json!({"key": format!("s{i}"), "data_type": "string"}))
            .collect();
        points.push(json!({"key": "x", "data_type": "int"}));
        points.push(json!({"units": "no key"}));
        let answer = store.register_bulk(&spec(
            json!({"points": points, "allow_address_conflict": false}),
        ));
        assert_eq!(answer["ok"], json!(false));
        assert_eq!(answer["total_points"], json!(1003));
        assert_eq!(answer["successful"], json!(1001));
        assert_eq!(answer["failed"], json!(2));
        assert_eq!(answer["results"].as_array().unwrap().len(), 1002);
        assert_eq!(
            answer["results"][1000],
            json!({"index": 1000, "key": "s1000", "ok": false, "error": "address range exhausted for data_type string"})
        );
        assert_eq!(answer["results"][1001]["ok"], json!(true));
        assert_eq!(
            answer["errors"],
            json!([{"index": 1002, "error": "key required"}])
        );
    }

    #[test]
    fn the_http_api_serves_every_endpoint_of_section_3() {
        let mut store = Store::new();
        let get = |store: &mut Store, path: &str| {
            store.handle_http(&HttpRequest {
                method: "GET".into(),
                path: path.into(),
                body: Vec::new(),
            })
        };
        assert_eq!(get(&mut store, "/health"), (200, json!({"status": "ok"})));
        let (status, answer) = store.handle_http(&HttpRequest {
            method: "POST".into(),
            path: "/register".into(),
            body: br#"{"key": "k", "data_type": "int", "units": "rpm"}"#.to_vec(),
        });
        assert_eq!(status, 200);
        assert_eq!(answer["ok"], json!(true));
        assert_eq!(get(&mut store, "/data"), (200, json!({"k": 0})));
        let (_, detailed) = get(&mut store, "/detailed");
        assert_eq!(detailed["k"]["address"], json!(41001));
        assert_eq!(detailed["k"]["units"], json!("rpm"));
        assert_eq!(detailed["k"]["quality"], json!("GOOD"));
        assert!(
            detailed["k"].get("id").is_none(),
            "ids appear only in register answers"
        );
        let (_, points) = get(&mut store, "/datapoints");
        assert_eq!(
            points,
            json!([{"key": "k", "address": 41001, "data_type": "int", "units": "rpm", "current_value": 0, "quality": "GOOD"}])
        );
        let (status, _) = store.handle_http(&HttpRequest {
            method: "POST".into(),
            path: "/register".into(),
            body: br#"{"units": "x"}"#.to_vec(),
        });
        assert_eq!(status, 400);
        assert_eq!(get(&mut store, "/nope").0, 404);
    }

    #[test]
    fn a_restart_forgets_registrations_and_changes_ids() {
        let dir = std::env::temp_dir().join(format!("dss-double-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("ds.sock");
        let mut double = DataServiceDouble::start(&socket).unwrap();
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let before = double.register("k", "float").unwrap();
        double.restart().unwrap();
        assert!(double.values().is_empty());
        let after = double.register("k", "float").unwrap();
        assert_ne!(before, after);
        let mut conn = UnixStream::connect(&socket).unwrap();
        conn.write_all(
            format!("{{\"action\":\"write_by_id\",\"id\":\"{before}\",\"value\":1}}\n").as_bytes(),
        )
        .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "{\"ok\": false, \"error\": \"id not found\"}\n");
        drop(double);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
