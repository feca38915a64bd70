//! Alpine packages: `/lib/apk/db/installed`, one record per package (`P:` name, `V:` version,
//! `A:` arch, `L:` licence, `o:` origin, `D:` dependencies, `p:` provides, `F:`/`R:` the files
//! it owns). Every record in the database is installed: apk removes a package's record with it.

use std::collections::BTreeMap;

use super::Found;
use crate::fs::{Capture, Filesystem};
use crate::os::OsRelease;
use crate::package::{Ecosystem, Package};
use crate::purl;

const DB: &str = "lib/apk/db/installed";

pub(crate) fn catalog(fs: &Filesystem, os: Option<&OsRelease>) -> Found {
    let mut found = Found::default();
    let Some(Capture::Text(text)) = fs.resolve(DB) else {
        return found;
    };
    let text = String::from_utf8_lossy(text);
    let namespace = os
        .and_then(|o| o.id.clone())
        .unwrap_or_else(|| "alpine".into());
    let distro = purl::distro(os);
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    let mut depends: Vec<(usize, Vec<String>)> = Vec::new();
    for record in text.split("\n\n") {
        let mut fields: Vec<(char, &str)> = Vec::new();
        for line in record.lines() {
            // `K:value`: a one-byte ASCII key (a multi-byte first character is not a field, and
            // slicing after it would cut a character in two)
            if let [key, b':', ..] = line.as_bytes()
                && key.is_ascii()
            {
                fields.push((char::from(*key), &line[2..]));
            }
        }
        let get = |key: char| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let (Some(name), Some(version)) = (get('P'), get('V')) else {
            continue;
        };
        let arch = get('A').unwrap_or("");
        let origin = get('o').filter(|o| *o != name);
        let mut qualifiers = vec![("arch", arch)];
        if let Some(distro) = &distro {
            qualifiers.push(("distro", distro));
        }
        if let Some(origin) = origin {
            qualifiers.push(("upstream", origin));
        }
        let Some(purl) = purl::build("apk", Some(&namespace), name, Some(version), &qualifiers)
        else {
            continue;
        };
        let mut package = Package::new(Ecosystem::Apk, name, Some(version), purl.clone()).at(DB);
        package.license(get('L'));
        if !arch.is_empty() {
            package.properties.insert("gantry:arch".into(), arch.into());
        }
        by_name.insert(name.to_owned(), purl.clone());
        for provided in get('p').unwrap_or("").split_whitespace() {
            let provided = provided.split(['=', '<', '>', '~']).next().unwrap_or("");
            by_name
                .entry(provided.to_owned())
                .or_insert_with(|| purl.clone());
        }
        let index = found.packages.len();
        depends.push((
            index,
            get('D')
                .unwrap_or("")
                .split_whitespace()
                .filter(|d| !d.starts_with('!'))
                .map(|d| {
                    d.split(['=', '<', '>', '~'])
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .collect(),
        ));
        let mut dir = String::new();
        for (key, value) in &fields {
            match key {
                'F' => (*value).clone_into(&mut dir),
                'R' => found.owned.push((
                    if dir.is_empty() {
                        format!("/{value}")
                    } else {
                        format!("/{dir}/{value}")
                    },
                    purl.clone(),
                )),
                _ => {}
            }
        }
        found.packages.push(package);
    }
    found.link_by_name(&by_name, depends);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Change, LayerChanges, Node};

    /// Found by the property test: a line starting with a multi-byte character.
    #[test]
    fn a_line_starting_with_a_multibyte_character_is_not_a_field() {
        let mut fs = Filesystem::default();
        fs.apply(LayerChanges {
            changes: vec![Change::Put(
                DB.into(),
                Node::File(Capture::Text("é:x\nP:musl\nV:1.2.5-r0\n".as_bytes().into())),
            )],
        });
        let found = catalog(&fs, None);
        assert_eq!(found.packages.len(), 1);
        assert_eq!(found.packages[0].name, "musl");
    }
}
