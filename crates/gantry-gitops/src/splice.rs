//! Where a scalar ends in the text, and how a new value is written in the old one's style.
//!
//! The parser gives each scalar's start; its end follows from the YAML grammar: a double-quoted
//! scalar ends at the matching unescaped `"`, a single-quoted one at the `'` that is not doubled,
//! a plain one is exactly its value on one line (a plain scalar has no escapes, so its text is its
//! value; one folded over several lines is refused).

use crate::yaml::Style;

/// The byte range of the scalar starting at byte `start`, or why it cannot be edited in place.
pub fn scalar_range(
    text: &str,
    start: usize,
    style: Style,
    value: &str,
) -> Result<(usize, usize), String> {
    let rest = &text[start..];
    match style {
        Style::Double => {
            if !rest.starts_with('"') {
                return Err("a double-quoted scalar that does not start with a quote".to_owned());
            }
            let mut escaped = false;
            for (offset, c) in rest.char_indices().skip(1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => return Ok((start, start + offset + 1)),
                    _ => {}
                }
            }
            Err("a double-quoted scalar without its closing quote".to_owned())
        }
        Style::Single => {
            if !rest.starts_with('\'') {
                return Err("a single-quoted scalar that does not start with a quote".to_owned());
            }
            let bytes = rest.as_bytes();
            let mut i = 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    return Ok((start, start + i + 1));
                }
                i += 1;
            }
            Err("a single-quoted scalar without its closing quote".to_owned())
        }
        Style::Plain => {
            if !rest.starts_with(value) || value.is_empty() {
                return Err(
                    "a plain scalar written over several lines (or empty): write it on one line"
                        .to_owned(),
                );
            }
            let end = start + value.len();
            match text[end..].chars().next() {
                None | Some(' ' | '\t' | '\r' | '\n' | ',' | ']' | '}') => Ok((start, end)),
                Some(other) => Err(format!(
                    "a plain scalar followed by {other:?} where its end was expected"
                )),
            }
        }
        Style::Block => Err("a block scalar (| or >): a digest belongs on one line".to_owned()),
    }
}

/// Whether `value` reads back as itself when written plain.
fn plain_safe(value: &str) -> bool {
    !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '@' | '-' | '+')
        })
        && !value.starts_with(['-', ':', '@'])
        && !value.ends_with(':')
        && value.parse::<f64>().is_err()
        && !matches!(
            value,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
}

/// `value` written in `style` (a plain value that would not read back as itself is double-quoted).
pub fn render(value: &str, style: Style) -> String {
    match style {
        Style::Single => format!("'{}'", value.replace('\'', "''")),
        Style::Plain if plain_safe(value) => value.to_owned(),
        _ => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_follow_the_grammar() {
        let text = "a: \"x\\\"y\" # c\nb: 'it''s' \nc: plain # note\nd: {e: f, g: h}\n";
        let at = |needle: &str| text.find(needle).expect("found");
        assert_eq!(
            scalar_range(text, at("\"x"), Style::Double, "x\"y"),
            Ok((at("\"x"), at(" # c")))
        );
        let single = at("'it");
        assert_eq!(
            scalar_range(text, single, Style::Single, "it's"),
            Ok((single, single + 7))
        );
        let plain = at("plain");
        assert_eq!(
            scalar_range(text, plain, Style::Plain, "plain"),
            Ok((plain, plain + 5))
        );
        let flow = at("f, g");
        assert_eq!(
            scalar_range(text, flow, Style::Plain, "f"),
            Ok((flow, flow + 1))
        );
        let last = at("h}");
        assert_eq!(
            scalar_range(text, last, Style::Plain, "h"),
            Ok((last, last + 1))
        );
        assert!(scalar_range("a: b\n  c\n", 3, Style::Plain, "b c").is_err());
    }

    #[test]
    fn values_keep_their_style() {
        let digest = "sha256:0123";
        assert_eq!(render(digest, Style::Plain), digest);
        assert_eq!(render(digest, Style::Double), "\"sha256:0123\"");
        assert_eq!(render(digest, Style::Single), "'sha256:0123'");
        assert_eq!(render("1.0", Style::Plain), "\"1.0\"");
        assert_eq!(render("a: b", Style::Plain), "\"a: b\"");
    }
}
