//! GitHub Actions expressions (`${{ … }}`), the subset gantry's workflows use: literals, context
//! paths, `!`, `==`, `!=`, `&&`, `||`, parentheses and the functions `success`, `failure`,
//! `always`, `cancelled`, `format`, `contains`, `startsWith` and `fromJSON`. Anything else is an
//! error, so a workflow that starts using more fails this runner instead of being misread.

use serde_json::Value;

/// Looks a context path up (`inputs.image`, `steps.sign.outputs.digest`); `None` for a name the
/// runner does not know (an unknown context is an error, a missing property is null).
pub trait Contexts {
    /// The context named `name` (`inputs`, `github`, …).
    fn context(&self, name: &str) -> Option<Value>;
    /// Whether every job or step before this one succeeded (`success()`).
    fn succeeded(&self) -> bool;
}

/// GitHub's truthiness: `false`, `0`, `""` and `null` are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A value as text, as GitHub interpolates it.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Evaluates every `${{ }}` in `template`. A template that is one expression keeps its type.
pub fn render(template: &str, contexts: &dyn Contexts) -> Result<Value, String> {
    let trimmed = template.trim();
    if trimmed.starts_with("${{") && trimmed.ends_with("}}") && trimmed.matches("${{").count() == 1
    {
        return evaluate(&trimmed[3..trimmed.len() - 2], contexts);
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("unclosed expression in {template:?}"))?;
        out.push_str(&text(&evaluate(&rest[start + 3..start + end], contexts)?));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

/// Evaluates a condition (`if:`), with or without `${{ }}`. As on GitHub, a condition that calls
/// none of the status functions holds only when everything before succeeded (`success() && …`).
pub fn condition(source: &str, contexts: &dyn Contexts) -> Result<bool, String> {
    let trimmed = source.trim();
    let inner = trimmed
        .strip_prefix("${{")
        .and_then(|s| s.strip_suffix("}}"))
        .unwrap_or(trimmed);
    let lower = inner.to_ascii_lowercase();
    let status = ["success(", "failure(", "always(", "cancelled("]
        .iter()
        .any(|f| lower.contains(f));
    Ok((status || contexts.succeeded()) && truthy(&evaluate(inner, contexts)?))
}

/// Evaluates one expression.
pub fn evaluate(source: &str, contexts: &dyn Contexts) -> Result<Value, String> {
    let tokens = tokens(source)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
        contexts,
    };
    let value = parser.or()?;
    if parser.at != tokens.len() {
        return Err(format!("unexpected {:?} in {source:?}", tokens[parser.at]));
    }
    Ok(value)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
}

fn tokens(source: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("unclosed string in {source:?}")),
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(ch) => {
                        s.push(*ch);
                        i += 1;
                    }
                }
            }
            out.push(Token::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            out.push(Token::Num(
                number.parse().map_err(|e| format!("{number}: {e}"))?,
            ));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_-".contains(chars[i])) {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let op = ["==", "!=", "&&", "||", "<=", ">="]
                .into_iter()
                .find(|op| *op == two);
            if let Some(op) = op {
                out.push(Token::Op(op));
                i += 2;
            } else {
                let op = ["!", "(", ")", ".", ",", "[", "]", "<", ">"]
                    .into_iter()
                    .find(|op| op.starts_with(c))
                    .ok_or_else(|| format!("unexpected {c:?} in {source:?}"))?;
                out.push(Token::Op(op));
                i += 1;
            }
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    contexts: &'a dyn Contexts,
}

impl Parser<'_> {
    fn peek_op(&self, op: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Op(o)) if *o == op)
    }

    fn expect(&mut self, op: &str) -> Result<(), String> {
        if self.peek_op(op) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {op:?} at token {}", self.at))
        }
    }

    fn or(&mut self) -> Result<Value, String> {
        let mut left = self.and()?;
        while self.peek_op("||") {
            self.at += 1;
            let right = self.and()?;
            if !truthy(&left) {
                left = right;
            }
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Value, String> {
        let mut left = self.comparison()?;
        while self.peek_op("&&") {
            self.at += 1;
            let right = self.comparison()?;
            if truthy(&left) {
                left = right;
            }
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Value, String> {
        let left = self.unary()?;
        for op in ["==", "!="] {
            if self.peek_op(op) {
                self.at += 1;
                let right = self.unary()?;
                let equal = equals(&left, &right);
                return Ok(Value::Bool(if op == "==" { equal } else { !equal }));
            }
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Value, String> {
        if self.peek_op("!") {
            self.at += 1;
            return Ok(Value::Bool(!truthy(&self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Value, String> {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .ok_or("expression ends early")?;
        self.at += 1;
        match token {
            Token::Str(s) => Ok(Value::String(s)),
            Token::Num(n) => Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
            Token::Op("(") => {
                let value = self.or()?;
                self.expect(")")?;
                Ok(value)
            }
            Token::Ident(name) if self.peek_op("(") => self.call(&name),
            Token::Ident(name) => {
                let mut value = match name.as_str() {
                    "true" => return Ok(Value::Bool(true)),
                    "false" => return Ok(Value::Bool(false)),
                    "null" => return Ok(Value::Null),
                    _ => self
                        .contexts
                        .context(&name)
                        .ok_or_else(|| format!("unknown context {name:?}"))?,
                };
                loop {
                    if self.peek_op(".") {
                        self.at += 1;
                        let Some(Token::Ident(key)) = self.tokens.get(self.at).cloned() else {
                            return Err(format!("a property name after {name}."));
                        };
                        self.at += 1;
                        value = property(&value, &key);
                    } else if self.peek_op("[") {
                        self.at += 1;
                        let key = self.or()?;
                        self.expect("]")?;
                        value = property(&value, &text(&key));
                    } else {
                        return Ok(value);
                    }
                }
            }
            Token::Op(op) => Err(format!("unexpected {op:?}")),
        }
    }

    fn call(&mut self, name: &str) -> Result<Value, String> {
        self.expect("(")?;
        let mut args = Vec::new();
        while !self.peek_op(")") {
            args.push(self.or()?);
            if !self.peek_op(")") {
                self.expect(",")?;
            }
        }
        self.expect(")")?;
        let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
        match name.to_ascii_lowercase().as_str() {
            "success" => Ok(Value::Bool(self.contexts.succeeded())),
            "failure" => Ok(Value::Bool(!self.contexts.succeeded())),
            "always" => Ok(Value::Bool(true)),
            "cancelled" => Ok(Value::Bool(false)),
            "format" => {
                let mut out = text(&arg(0));
                for (i, value) in args.iter().enumerate().skip(1) {
                    out = out.replace(&format!("{{{}}}", i - 1), &text(value));
                }
                Ok(Value::String(out))
            }
            "contains" => Ok(Value::Bool(match arg(0) {
                Value::Array(items) => items.iter().any(|item| equals(item, &arg(1))),
                other => text(&other)
                    .to_lowercase()
                    .contains(&text(&arg(1)).to_lowercase()),
            })),
            "startswith" => Ok(Value::Bool(
                text(&arg(0))
                    .to_lowercase()
                    .starts_with(&text(&arg(1)).to_lowercase()),
            )),
            "fromjson" => {
                serde_json::from_str(&text(&arg(0))).map_err(|e| format!("fromJSON: {e}"))
            }
            other => Err(format!("the runner does not know the function {other}()")),
        }
    }
}

fn property(value: &Value, key: &str) -> Value {
    match value {
        Value::Object(map) => map
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map_or(Value::Null, |(_, v)| v.clone()),
        Value::Array(items) => key
            .parse::<usize>()
            .ok()
            .and_then(|i| items.get(i).cloned())
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// GitHub's loose equality: strings case-insensitively; across types, as numbers.
fn equals(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => number(a).is_some_and(|x| number(b) == Some(x)),
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Null => Some(0.0),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => Some(0.0),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fixed(Value, bool);
    impl Contexts for Fixed {
        fn context(&self, name: &str) -> Option<Value> {
            self.0.get(name).cloned()
        }
        fn succeeded(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn evaluates_what_the_workflows_use() {
        let c = Fixed(
            json!({"inputs": {"scan": "trivy", "target_env": "", "attest": true, "image": "r/a"},
                   "steps": {"sign": {"outputs": {"digest": "sha256:ab"}}},
                   "secrets": {}, "github": {"actor": "lars", "token": "t"}}),
            true,
        );
        let eval = |s: &str| evaluate(s, &c).expect(s);
        assert_eq!(eval("inputs.scan == 'TRIVY'"), json!(true));
        assert_eq!(eval("inputs.target_env != ''"), json!(false));
        assert_eq!(
            eval("secrets.registry_password || github.token"),
            json!("t")
        );
        assert_eq!(
            eval("inputs.scan != 'none' && inputs.scan || ''"),
            json!("trivy")
        );
        assert_eq!(eval("inputs.scan == 'none' && 'x' || ''"), json!(""));
        assert_eq!(
            eval(
                "steps.sign.outputs.digest && format('{0}@{1}', inputs.image, steps.sign.outputs.digest)"
            ),
            json!("r/a@sha256:ab")
        );
        assert_eq!(
            eval("!contains(fromJSON('[\"a\", \"b\"]'), 'b')"),
            json!(false)
        );
        assert_eq!(eval("always() && inputs.missing != ''"), json!(false));
        assert_eq!(
            render("x-${{ inputs.image }}-${{ inputs.attest }}", &c).expect("render"),
            json!("x-r/a-true")
        );
        assert!(
            evaluate("vars.X", &c).is_err(),
            "an unknown context is an error"
        );
        let failed = Fixed(c.0.clone(), false);
        assert!(
            !condition("inputs.scan == 'trivy'", &failed).expect("if"),
            "success() && …"
        );
        assert!(condition("always() && inputs.scan == 'trivy'", &failed).expect("if"));
        assert!(
            evaluate("hashFiles('x')", &c).is_err(),
            "so is an unknown function"
        );
    }
}
