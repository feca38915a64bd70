//! What a cataloguer finds: packages with their purl, licences, where they were found and what
//! they depend on.

use std::collections::{BTreeMap, BTreeSet};

/// The package ecosystems gantry catalogues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[expect(missing_docs, reason = "the names are the ecosystems")]
pub enum Ecosystem {
    Deb,
    Apk,
    Rpm,
    Npm,
    Python,
    Go,
    Cargo,
    Maven,
    NuGet,
}

impl Ecosystem {
    /// The name used in outputs and counts (`deb`, `npm`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Deb => "deb",
            Self::Apk => "apk",
            Self::Rpm => "rpm",
            Self::Npm => "npm",
            Self::Python => "python",
            Self::Go => "go",
            Self::Cargo => "cargo",
            Self::Maven => "maven",
            Self::NuGet => "nuget",
        }
    }

    /// Whether packages of this ecosystem are the operating system's.
    pub fn is_os(self) -> bool {
        matches!(self, Self::Deb | Self::Apk | Self::Rpm)
    }

    /// Every ecosystem, in output order.
    pub const ALL: [Self; 9] = [
        Self::Deb,
        Self::Apk,
        Self::Rpm,
        Self::Npm,
        Self::Python,
        Self::Go,
        Self::Cargo,
        Self::Maven,
        Self::NuGet,
    ];
}

/// One package found in the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// Its name as the ecosystem spells it (with the npm scope, the Maven group, the Go module path).
    pub name: String,
    /// Its version, when the source states one.
    pub version: Option<String>,
    /// Its canonical package URL.
    pub purl: String,
    /// Licences as the source states them (an SPDX expression, or free text).
    pub licenses: Vec<String>,
    /// The paths (without a leading `/`) the package was found at.
    pub locations: BTreeSet<String>,
    /// The purls of the packages it depends on (resolved against what was found).
    pub depends: BTreeSet<String>,
    /// Language packages this OS package owns (their purls), listed here instead of on their own.
    pub owns: BTreeSet<String>,
    /// Further facts (`arch`, the source package, …) as CycloneDX properties.
    pub properties: BTreeMap<String, String>,
    /// The component type: `library`, or `application` for a binary's main module.
    pub application: bool,
}

impl Package {
    /// A package with no licences, locations, dependencies or properties yet.
    pub fn new(ecosystem: Ecosystem, name: &str, version: Option<&str>, purl: String) -> Self {
        Self {
            ecosystem,
            name: name.to_owned(),
            version: version.map(str::to_owned),
            purl,
            licenses: Vec::new(),
            locations: BTreeSet::new(),
            depends: BTreeSet::new(),
            owns: BTreeSet::new(),
            properties: BTreeMap::new(),
            application: false,
        }
    }

    /// The same package found at `path`.
    #[must_use]
    pub fn at(mut self, path: &str) -> Self {
        self.locations.insert(path.to_owned());
        self
    }

    /// Adds the licence when there is one.
    pub fn license(&mut self, license: Option<&str>) {
        if let Some(license) = license.map(str::trim).filter(|l| !l.is_empty())
            && !self.licenses.iter().any(|l| l == license)
        {
            self.licenses.push(license.to_owned());
        }
    }

    /// Takes in what `other` (the same purl found elsewhere) knows.
    pub fn merge(&mut self, other: Self) {
        self.locations.extend(other.locations);
        self.depends.extend(other.depends);
        self.owns.extend(other.owns);
        for license in other.licenses {
            self.license(Some(&license));
        }
        for (key, value) in other.properties {
            self.properties.entry(key).or_insert(value);
        }
        self.application |= other.application;
    }
}
