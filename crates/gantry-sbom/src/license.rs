//! Licences as CycloneDX wants them: an SPDX id where the text is one (ids as CycloneDX's own
//! `spdx.schema.json` lists them, `spdx-ids.txt`, so a strict validator accepts every id gantry
//! writes), an SPDX expression where the package states one, otherwise the text as a name.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde_json::{Value, json};

static IDS: LazyLock<BTreeSet<&'static str>> = LazyLock::new(|| {
    include_str!("spdx-ids.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});

/// Debian's DEP-5 short names that are not SPDX ids as written (DEP-5 predates SPDX's `-only`
/// and `-or-later`): `GPL-2+` is `GPL-2.0-or-later`, `Expat` is `MIT`.
fn debian(text: &str) -> Option<&'static str> {
    Some(match text {
        "GPL-1" => "GPL-1.0-only",
        "GPL-1+" => "GPL-1.0-or-later",
        "GPL-2" => "GPL-2.0-only",
        "GPL-2+" => "GPL-2.0-or-later",
        "GPL-3" => "GPL-3.0-only",
        "GPL-3+" => "GPL-3.0-or-later",
        "LGPL-2" => "LGPL-2.0-only",
        "LGPL-2+" => "LGPL-2.0-or-later",
        "LGPL-2.1" => "LGPL-2.1-only",
        "LGPL-2.1+" => "LGPL-2.1-or-later",
        "LGPL-3" => "LGPL-3.0-only",
        "LGPL-3+" => "LGPL-3.0-or-later",
        "AGPL-3" => "AGPL-3.0-only",
        "AGPL-3+" => "AGPL-3.0-or-later",
        "GFDL-1.2+" => "GFDL-1.2-or-later",
        "GFDL-1.3+" => "GFDL-1.3-or-later",
        "Expat" => "MIT",
        "BSD-2-clause" => "BSD-2-Clause",
        "BSD-3-clause" => "BSD-3-Clause",
        "BSD-4-clause" => "BSD-4-Clause",
        "Artistic" => "Artistic-1.0-Perl",
        "Apache-2" => "Apache-2.0",
        "MPL-2" => "MPL-2.0",
        "zlib" => "Zlib",
        _ => return None,
    })
}

/// The SPDX id `text` stands for, if it stands for exactly one (`MIT`, `GPL-2+`,
/// `Apache 2.0`).
fn id(text: &str) -> Option<&'static str> {
    if let Some(id) = IDS.get(text) {
        return Some(id);
    }
    if let Some(id) = debian(text) {
        return Some(id);
    }
    let expression = spdx::Expression::parse_mode(text, spdx::ParseMode::LAX).ok()?;
    let mut requirements = expression.requirements();
    let only = requirements.next()?;
    if requirements.next().is_some() || only.req.addition.is_some() {
        return None;
    }
    if only.req.license.id()?.is_gnu() && text.contains('+') {
        // `GPL-2.0+` parsed leniently loses its `+`: not the same licence; keep the text.
        return None;
    }
    IDS.get(only.req.license.id()?.name).copied()
}

/// Whether `text` is an SPDX expression joining licences (`MIT OR Apache-2.0`).
fn is_expression(text: &str) -> bool {
    spdx::Expression::parse(text)
        .is_ok_and(|e| e.requirements().count() > 1 || text.contains(" WITH "))
}

/// The `licenses` array of a component (empty when nothing is known).
pub(crate) fn licenses(texts: &[String]) -> Vec<Value> {
    if let [only] = texts
        && is_expression(only)
    {
        return vec![json!({ "expression": only })];
    }
    texts
        .iter()
        .map(|text| match id(text) {
            Some(id) => json!({ "license": { "id": id } }),
            None => json!({ "license": { "name": text } }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_expressions_and_names() {
        assert_eq!(
            licenses(&["MIT".into()]),
            vec![json!({"license": {"id": "MIT"}})]
        );
        assert_eq!(
            licenses(&["MIT OR Apache-2.0".into()]),
            vec![json!({"expression": "MIT OR Apache-2.0"})]
        );
        assert_eq!(
            licenses(&["public-domain".into()]),
            vec![json!({"license": {"name": "public-domain"}})]
        );
        assert_eq!(
            licenses(&["GPL-2+".into()]),
            vec![json!({"license": {"id": "GPL-2.0-or-later"}})]
        );
        assert_eq!(
            licenses(&["Expat".into()]),
            vec![json!({"license": {"id": "MIT"}})]
        );
        // two licences stated apart are two entries, never an expression
        assert_eq!(licenses(&["MIT".into(), "BSD-3-Clause".into()]).len(), 2);
    }
}
