//! `/etc/os-release` (or `/usr/lib/os-release`): which distribution the image is.

use std::collections::BTreeMap;

/// The facts of `os-release` gantry uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID` (`debian`, `alpine`, `fedora`).
    pub id: Option<String>,
    /// `VERSION_ID` (`12`, `3.20.3`).
    pub version_id: Option<String>,
    /// `VERSION_CODENAME` (`bookworm`).
    pub version_codename: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
    /// `NAME`.
    pub name: Option<String>,
}

impl OsRelease {
    /// Parses the shell-like `KEY=value` lines (quotes and backslash escapes as os-release(5)
    /// allows them); unknown keys and malformed lines are ignored.
    pub fn parse(text: &str) -> Self {
        let mut values = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            values.insert(key.trim().to_owned(), unquote(value.trim()));
        }
        let mut take = |key: &str| values.remove(key).filter(|v| !v.is_empty());
        Self {
            id: take("ID"),
            version_id: take("VERSION_ID"),
            version_codename: take("VERSION_CODENAME"),
            pretty_name: take("PRETTY_NAME"),
            name: take("NAME"),
        }
    }
}

fn unquote(value: &str) -> String {
    let inner = if value.len() >= 2
        && ((value.starts_with('"') && value.ends_with('"'))
            || (value.starts_with('\'') && value.ends_with('\'')))
    {
        &value[1..value.len() - 1]
    } else {
        value
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_os_release_parses() {
        let os = OsRelease::parse(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n# comment\nbroken line\n",
        );
        assert_eq!(os.id.as_deref(), Some("debian"));
        assert_eq!(os.version_id.as_deref(), Some("12"));
        assert_eq!(os.version_codename.as_deref(), Some("bookworm"));
        assert_eq!(
            os.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }

    #[test]
    fn escapes_and_single_quotes() {
        let os = OsRelease::parse("ID='alpine'\nNAME=\"say \\\"hi\\\"\"\n");
        assert_eq!(os.id.as_deref(), Some("alpine"));
        assert_eq!(os.name.as_deref(), Some("say \"hi\""));
    }
}
