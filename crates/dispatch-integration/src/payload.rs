//! What a dispatch sends, checked against GitHub's limits before anything is sent.

use serde_json::{Map, Value};

/// `workflow_dispatch`: at most 25 inputs.
pub const MAX_INPUTS: usize = 25;
/// `workflow_dispatch` inputs and `repository_dispatch` payloads: at most 65,535 characters of
/// JSON.
pub const MAX_JSON_CHARS: usize = 65_535;
/// `repository_dispatch`: at most 10 top-level keys in `client_payload`.
pub const MAX_PAYLOAD_KEYS: usize = 10;
/// `repository_dispatch`: `event_type` at most 100 characters.
pub const MAX_EVENT_TYPE_CHARS: usize = 100;

/// A dispatch GitHub would refuse (or mangle), found before it is sent.
#[derive(Debug)]
pub enum PayloadError {
    /// The extra inputs are neither a JSON object of strings nor `key=value` lines.
    BadInputs(String),
    /// An extra input uses a name gantry sends itself.
    Reserved(String),
    /// Too many inputs.
    TooManyInputs(usize),
    /// Too much JSON.
    TooLong(usize),
    /// Too many payload keys.
    TooManyKeys(usize),
    /// The event type is empty or too long.
    EventType(usize),
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadInputs(why) => write!(f, "inputs: {why}"),
            Self::Reserved(name) => write!(
                f,
                "inputs: {name:?} is set by gantry itself (image, digest, source and correlation)"
            ),
            Self::TooManyInputs(n) => write!(
                f,
                "{n} workflow inputs, GitHub accepts at most {MAX_INPUTS} (gantry's 6 included)"
            ),
            Self::TooLong(n) => write!(
                f,
                "the inputs are {n} characters of JSON, GitHub accepts at most {MAX_JSON_CHARS}"
            ),
            Self::TooManyKeys(n) => write!(
                f,
                "client_payload has {n} top-level keys, GitHub accepts at most {MAX_PAYLOAD_KEYS}"
            ),
            Self::EventType(n) => write!(
                f,
                "event-type is {n} characters, GitHub accepts 1 to {MAX_EVENT_TYPE_CHARS}"
            ),
        }
    }
}

impl std::error::Error for PayloadError {}

/// What gantry itself sends with every dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The image under test.
    pub image: String,
    /// Its digest.
    pub digest: String,
    /// The service repository.
    pub source_repository: String,
    /// Its commit.
    pub source_commit: String,
    /// The calling run's page (empty outside Actions).
    pub source_run_url: String,
    /// The correlation id.
    pub correlation_id: String,
}

/// The input names gantry sends.
pub const RESERVED: [&str; 6] = [
    "image",
    "digest",
    "source_repository",
    "source_commit",
    "source_run_url",
    "correlation_id",
];

impl Payload {
    fn fields(&self) -> [(&'static str, &str); 6] {
        [
            ("image", &self.image),
            ("digest", &self.digest),
            ("source_repository", &self.source_repository),
            ("source_commit", &self.source_commit),
            ("source_run_url", &self.source_run_url),
            ("correlation_id", &self.correlation_id),
        ]
    }

    /// `workflow_dispatch` inputs: gantry's six and `extra`, all strings, within GitHub's
    /// limits.
    pub fn workflow_inputs(
        &self,
        extra: &Map<String, Value>,
    ) -> Result<Map<String, Value>, PayloadError> {
        let mut inputs: Map<String, Value> = self
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        for (key, value) in extra {
            if RESERVED.contains(&key.as_str()) {
                return Err(PayloadError::Reserved(key.clone()));
            }
            inputs.insert(key.clone(), value.clone());
        }
        if inputs.len() > MAX_INPUTS {
            return Err(PayloadError::TooManyInputs(inputs.len()));
        }
        let chars = Value::Object(inputs.clone()).to_string().chars().count();
        if chars > MAX_JSON_CHARS {
            return Err(PayloadError::TooLong(chars));
        }
        Ok(inputs)
    }

    /// `repository_dispatch` `client_payload`: gantry's six, and `extra` under `inputs`.
    pub fn client_payload(
        &self,
        event_type: &str,
        extra: &Map<String, Value>,
    ) -> Result<Map<String, Value>, PayloadError> {
        let length = event_type.chars().count();
        if length == 0 || length > MAX_EVENT_TYPE_CHARS {
            return Err(PayloadError::EventType(length));
        }
        let mut payload: Map<String, Value> = self
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        if !extra.is_empty() {
            payload.insert("inputs".to_owned(), Value::Object(extra.clone()));
        }
        if payload.len() > MAX_PAYLOAD_KEYS {
            return Err(PayloadError::TooManyKeys(payload.len()));
        }
        let chars = Value::Object(payload.clone()).to_string().chars().count();
        if chars > MAX_JSON_CHARS {
            return Err(PayloadError::TooLong(chars));
        }
        Ok(payload)
    }
}

/// The extra inputs: a JSON object of strings, or `key=value` lines (blank lines and `#` comments
/// skipped).
pub fn parse_inputs(text: &str) -> Result<Map<String, Value>, PayloadError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(Map::new());
    }
    if trimmed.starts_with('{') {
        let value: Value = serde_json::from_str(trimmed)
            .map_err(|e| PayloadError::BadInputs(format!("not JSON: {e}")))?;
        let Value::Object(map) = value else {
            unreachable!("starts with {{")
        };
        if let Some((key, _)) = map.iter().find(|(_, v)| !v.is_string()) {
            return Err(PayloadError::BadInputs(format!(
                "{key:?} is not a string (workflow_dispatch inputs are strings: quote numbers and booleans)"
            )));
        }
        return Ok(map);
    }
    let mut map = Map::new();
    for (number, line) in trimmed.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(PayloadError::BadInputs(format!(
                "line {} is not key=value: {line:?}",
                number + 1
            )));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(PayloadError::BadInputs(format!(
                "line {} has no key",
                number + 1
            )));
        }
        if map
            .insert(key.to_owned(), Value::from(value.trim()))
            .is_some()
        {
            return Err(PayloadError::BadInputs(format!("{key:?} is given twice")));
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> Payload {
        Payload {
            image: "ghcr.io/acme/billing".into(),
            digest: "sha256:00".into(),
            source_repository: "acme/billing".into(),
            source_commit: "abc".into(),
            source_run_url: String::new(),
            correlation_id: "gantry-1".into(),
        }
    }

    #[test]
    fn inputs_parse_as_json_or_lines() {
        let lines = parse_inputs("suite=smoke\n# comment\n\nregion = eu\n").expect("lines");
        assert_eq!(lines["suite"], "smoke");
        assert_eq!(lines["region"], "eu");
        let json = parse_inputs(r#"{"suite": "smoke"}"#).expect("json");
        assert_eq!(json["suite"], "smoke");
        for bad in [r#"{"n": 3}"#, "{", "novalue", "a=1\na=2", "=x"] {
            assert!(parse_inputs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_are_checked_before_sending() {
        let many: Map<String, Value> = (0..20)
            .map(|i| (format!("k{i}"), Value::from("v")))
            .collect();
        assert!(matches!(
            payload().workflow_inputs(&many),
            Err(PayloadError::TooManyInputs(26))
        ));
        let nineteen: Map<String, Value> = (0..19)
            .map(|i| (format!("k{i}"), Value::from("v")))
            .collect();
        assert_eq!(payload().workflow_inputs(&nineteen).expect("25").len(), 25);
        let long: Map<String, Value> =
            std::iter::once(("big".to_owned(), Value::from("x".repeat(65_600)))).collect();
        assert!(matches!(
            payload().workflow_inputs(&long),
            Err(PayloadError::TooLong(_))
        ));
        let reserved: Map<String, Value> =
            std::iter::once(("digest".to_owned(), Value::from("sha256:ff"))).collect();
        assert!(matches!(
            payload().workflow_inputs(&reserved),
            Err(PayloadError::Reserved(_))
        ));
        assert!(matches!(
            payload().client_payload(&"e".repeat(101), &Map::new()),
            Err(PayloadError::EventType(101))
        ));
        assert!(payload().client_payload("integration", &many).is_ok());
    }
}
