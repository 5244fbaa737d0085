//! Subjects: the hierarchical address every event carries, such as
//! `order/init/1.1/icecream/udders/rumraisin/sg/lazada`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The names of the eight levels, in order.
pub const LEVELS: [&str; 8] = ["domain", "action", "version", "category", "brand", "product", "country", "channel"];

/// The longest subject accepted, in bytes.
pub const MAX_SUBJECT_LEN: usize = 255;

/// Why a text is not a subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    /// Not eight levels.
    #[error("a subject has 8 levels (domain/action/version/category/brand/product/country/channel), found {found}")]
    LevelCount {
        /// How many were found.
        found: usize,
    },
    /// A level is empty (`order//1.1/…`).
    #[error("the {level} level is empty")]
    EmptyLevel {
        /// Which level.
        level: &'static str,
    },
    /// A level holds a character outside `[a-z0-9._-]` (wildcards and `/` included).
    #[error("the {level} level {value:?} holds {found:?}; levels hold only a-z, 0-9, '.', '_' and '-'")]
    BadCharacter {
        /// Which level.
        level: &'static str,
        /// Its text.
        value: String,
        /// The first offending character.
        found: char,
    },
    /// The subject is longer than [`MAX_SUBJECT_LEN`].
    #[error("a subject is at most {MAX_SUBJECT_LEN} bytes, this one is {len}")]
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// A valid eight-level subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subject(String);

fn check_level(level: &'static str, value: &str) -> Result<(), SubjectError> {
    if value.is_empty() {
        return Err(SubjectError::EmptyLevel { level });
    }
    match value.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(*c))) {
        Some(found) => Err(SubjectError::BadCharacter { level, value: value.to_owned(), found }),
        None => Ok(()),
    }
}

impl Subject {
    /// Builds a subject from its eight levels, checking each.
    pub fn from_levels(levels: [&str; 8]) -> Result<Self, SubjectError> {
        for (name, value) in LEVELS.iter().zip(levels) {
            check_level(name, value)?;
        }
        let joined = levels.join("/");
        if joined.len() > MAX_SUBJECT_LEN {
            return Err(SubjectError::TooLong { len: joined.len() });
        }
        Ok(Self(joined))
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The eight levels.
    pub fn levels(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// One level by name (`"country"`), or `None` for an unknown name.
    pub fn level(&self, name: &str) -> Option<&str> {
        let index = LEVELS.iter().position(|l| *l == name)?;
        self.levels().nth(index)
    }
}

impl FromStr for Subject {
    type Err = SubjectError;
    fn from_str(s: &str) -> Result<Self, SubjectError> {
        if s.len() > MAX_SUBJECT_LEN {
            return Err(SubjectError::TooLong { len: s.len() });
        }
        let levels: Vec<&str> = s.split('/').collect();
        let levels: [&str; 8] =
            levels.as_slice().try_into().map_err(|_| SubjectError::LevelCount { found: levels.len() })?;
        Self::from_levels(levels)
    }
}

impl TryFrom<String> for Subject {
    type Error = SubjectError;
    fn try_from(s: String) -> Result<Self, SubjectError> {
        s.parse()
    }
}

impl From<Subject> for String {
    fn from(s: Subject) -> String {
        s.0
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_subject_parses_and_names_its_levels() {
        let s: Subject = "order/init/1.1/icecream/udders/rumraisin/sg/lazada".parse().unwrap();
        assert_eq!(s.level("product"), Some("rumraisin"));
        assert_eq!(s.level("channel"), Some("lazada"));
        assert_eq!(s.level("planet"), None);
    }

    #[test]
    fn malformed_subjects_are_clear_errors() {
        let err = |s: &str| s.parse::<Subject>().unwrap_err();
        assert_eq!(err("order/init/1.1"), SubjectError::LevelCount { found: 3 });
        assert_eq!(err("order//1.1/icecream/udders/mango/sg/web"), SubjectError::EmptyLevel { level: "action" });
        assert!(matches!(
            err("order/init/1.1/icecream/udders/*/sg/web"),
            SubjectError::BadCharacter { level: "product", found: '*', .. }
        ));
        assert!(matches!(
            err("order/init/1.1/icecream/udders/mango/sg/>"),
            SubjectError::BadCharacter { found: '>', .. }
        ));
        assert!(matches!(
            err(&format!("order/init/1.1/icecream/udders/{}/sg/web", "m".repeat(300))),
            SubjectError::TooLong { .. }
        ));
        let slash = Subject::from_levels(["order", "init", "1.1", "icecream", "udders", "a/b", "sg", "web"]);
        assert!(matches!(slash, Err(SubjectError::BadCharacter { level: "product", found: '/', .. })));
        assert!("order/init/1.1/icecream/udders/mango/sg/web/extra".parse::<Subject>().is_err());
    }
}
