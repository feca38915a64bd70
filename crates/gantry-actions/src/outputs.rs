//! Typed outputs: a tool declares its outputs once, as a struct, and the declaration, the
//! `action.yml` spec and what the run sets cannot disagree.
//!
//! ```
//! gantry_actions::outputs! {
//!     /// What the tool reports.
//!     pub struct Report {
//!         /// The digest.
//!         digest: "digest",
//!         /// The reference it was written to.
//!         target_ref: "target-ref",
//!     }
//! }
//! let report = Report { digest: "sha256:…".into(), ..Report::default() };
//! assert_eq!(Report::SPEC[1].name, "target-ref");
//! let outcome = gantry_actions::Outcome::success().with_outputs(&report);
//! assert_eq!(outcome.outputs()[0], ("digest".to_owned(), "sha256:…".to_owned()));
//! ```

/// A tool's outputs as one value: their names and descriptions (for `action.yml`) and their
/// values in declared order.
pub trait Outputs {
    /// Every output, in the order it is written.
    const SPEC: &'static [crate::OutputSpec];
    /// `(name, value)` for every output, in [`Self::SPEC`]'s order.
    fn pairs(&self) -> Vec<(&'static str, String)>;
}

/// Declares a tool's outputs: a struct of `String` fields, each with its output name and its doc
/// comment as the description, implementing [`Outputs`].
#[macro_export]
macro_rules! outputs {
    (
        $(#[doc = $doc:literal])*
        pub struct $name:ident {
            $(
                #[doc = $field_doc:literal]
                $field:ident : $output:literal
            ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name {
            $(
                #[doc = $field_doc]
                pub $field: String,
            )*
        }

        impl $name {
            /// Every output, in the order it is written.
            pub const SPEC: &'static [$crate::OutputSpec] = &[
                $($crate::OutputSpec {
                    name: $output,
                    description: $field_doc.trim_ascii(),
                },)*
            ];
        }

        impl $crate::outputs::Outputs for $name {
            const SPEC: &'static [$crate::OutputSpec] = $name::SPEC;
            fn pairs(&self) -> Vec<(&'static str, String)> {
                vec![$(($output, self.$field.clone()),)*]
            }
        }
    };
}
