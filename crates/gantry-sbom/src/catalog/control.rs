//! The `Field: value` format with indented continuation lines that dpkg's status file, Python's
//! METADATA and jar manifests share (RFC 822 headers, more or less).

/// One record: fields in file order (a field may repeat, as `Classifier` does).
pub(crate) type Record = Vec<(String, String)>;

/// Splits `text` into records separated by blank lines. `first_only` stops after the first record
/// (METADATA: the body after the headers is the description, not more fields).
pub(crate) fn records(text: &str, first_only: bool) -> Vec<Record> {
    let mut out = Vec::new();
    let mut current: Record = Vec::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
                if first_only {
                    return out;
                }
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The first value of `key` (case-insensitive, as dpkg compares field names).
pub(crate) fn field<'a>(record: &'a Record, key: &str) -> Option<&'a str> {
    record
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// Every value of `key`.
pub(crate) fn fields<'a>(record: &'a Record, key: &'a str) -> impl Iterator<Item = &'a str> {
    record
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_lines_and_blank_separators() {
        let text = "Package: a\nDescription: one\n two\n\n\nPackage: b\r\nVersion: 1\r\n";
        let records = records(text, false);
        assert_eq!(records.len(), 2);
        assert_eq!(field(&records[0], "description"), Some("one\ntwo"));
        assert_eq!(field(&records[1], "Version"), Some("1"));
        assert_eq!(super::records(text, true).len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = records(&text, false);
        }
    }
}
