//! Wildcard patterns over subjects.
//!
//! - `*` alone matches exactly one level; `abc*` one level starting with `abc`;
//! - `>` as the last token matches one or more remaining levels;
//! - `**` matches zero or more levels anywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::subject::Subject;

/// Why a text is not a pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// The pattern is empty.
    #[error("a pattern must not be empty")]
    Empty,
    /// A token is empty (`order//>`).
    #[error("token {index} of the pattern is empty")]
    EmptyToken {
        /// Its position, from 0.
        index: usize,
    },
    /// `>` stands somewhere other than last.
    #[error("'>' may only be the last token")]
    TailNotLast,
    /// A `*` inside a token other than at its end (`a*b`, `*a`).
    #[error("token {token:?}: '*' is a whole token, a trailing prefix wildcard (abc*), or part of '**'")]
    MisplacedStar {
        /// The token.
        token: String,
    },
    /// A character a subject level cannot hold.
    #[error("token {token:?} holds {found:?}; tokens hold a-z, 0-9, '.', '_', '-' and wildcards")]
    BadCharacter {
        /// The token.
        token: String,
        /// The first offending character.
        found: char,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Prefix(String),
    One,
    Tail,
    AnyLevels,
}

/// A parsed wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern {
    text: String,
    #[serde(skip)]
    tokens: Vec<Token>,
}

impl FromStr for Pattern {
    type Err = PatternError;
    fn from_str(text: &str) -> Result<Self, PatternError> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut tokens = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let token = match *part {
                "" => return Err(PatternError::EmptyToken { index }),
                "*" => Token::One,
                "**" => Token::AnyLevels,
                ">" if index + 1 == parts.len() => Token::Tail,
                ">" => return Err(PatternError::TailNotLast),
                _ => {
                    let (body, prefix) = match part.strip_suffix('*') {
                        Some(body) => (body, true),
                        None => (*part, false),
                    };
                    if body.contains('*') {
                        return Err(PatternError::MisplacedStar { token: (*part).to_owned() });
                    }
                    if let Some(found) =
                        body.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(*c)))
                    {
                        return Err(PatternError::BadCharacter { token: (*part).to_owned(), found });
                    }
                    if prefix { Token::Prefix(body.to_owned()) } else { Token::Literal(body.to_owned()) }
                }
            };
            // `**/**` is the same as `**`; folding keeps matching linear.
            if !(token == Token::AnyLevels && tokens.last() == Some(&Token::AnyLevels)) {
                tokens.push(token);
            }
        }
        Ok(Self { text: text.to_owned(), tokens })
    }
}

/// One level as a matcher sees it: a known value, or any value (a template's
/// variable level, when checking what a pattern could match).
#[derive(Debug, Clone, Copy)]
pub enum LevelValue<'a> {
    /// A concrete level.
    Is(&'a str),
    /// Any value at all.
    Any,
}

impl Token {
    fn accepts(&self, level: LevelValue<'_>) -> bool {
        match (self, level) {
            (Token::One, _) | (_, LevelValue::Any) => true,
            (Token::Literal(l), LevelValue::Is(v)) => l == v,
            (Token::Prefix(p), LevelValue::Is(v)) => v.starts_with(p.as_str()),
            (Token::Tail | Token::AnyLevels, _) => unreachable!("multi-level tokens are matched by `walk`"),
        }
    }
}

fn walk(tokens: &[Token], levels: &[LevelValue<'_>]) -> bool {
    match tokens.split_first() {
        None => levels.is_empty(),
        Some((Token::Tail, _)) => !levels.is_empty(),
        Some((Token::AnyLevels, rest)) => (0..=levels.len()).any(|skip| walk(rest, &levels[skip..])),
        Some((token, rest)) => match levels.split_first() {
            Some((level, more)) => token.accepts(*level) && walk(rest, more),
            None => false,
        },
    }
}

impl Pattern {
    /// True when the subject matches.
    pub fn matches(&self, subject: &Subject) -> bool {
        let levels: Vec<LevelValue<'_>> = subject.levels().map(LevelValue::Is).collect();
        walk(&self.tokens, &levels)
    }

    /// True when some subject with these levels could match (levels given as
    /// [`LevelValue::Any`] stand for any value).
    pub fn could_match(&self, levels: &[LevelValue<'_>]) -> bool {
        walk(&self.tokens, levels)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl TryFrom<String> for Pattern {
    type Error = PatternError;
    fn try_from(s: String) -> Result<Self, PatternError> {
        s.parse()
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.text
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(s: &str) -> Subject {
        s.parse().unwrap()
    }

    fn pattern(p: &str) -> Pattern {
        p.parse().unwrap()
    }

    #[test]
    fn the_seed_patterns_work_as_written() {
        let rumraisin_sg_lazada = subject("order/init/1.1/icecream/udders/rumraisin/sg/lazada");
        let valid_sg_web = subject("order/valid/1.1/icecream/udders/mango/sg/web");
        let valid_my_store711 = subject("order/valid/1.2/icecream/udders/mango/my/store711");
        let credit_reserved = subject("credit/reserved/1.1/icecream/udders/mango/sg/web");

        let every_order_event = pattern("order/>");
        assert!(every_order_event.matches(&rumraisin_sg_lazada));
        assert!(every_order_event.matches(&valid_my_store711));
        assert!(!every_order_event.matches(&credit_reserved));

        let validate_1_1 = pattern("order/init/1.1/>");
        assert!(validate_1_1.matches(&rumraisin_sg_lazada));
        assert!(!validate_1_1.matches(&valid_sg_web));
        assert!(!validate_1_1.matches(&subject("order/init/1.2/icecream/udders/mango/us/web")));

        let valid_in_sg = pattern("order/valid/*/icecream/**/sg/*");
        assert!(valid_in_sg.matches(&valid_sg_web));
        assert!(!valid_in_sg.matches(&valid_my_store711));
        assert!(!valid_in_sg.matches(&rumraisin_sg_lazada));

        let from_711 = pattern("order/*/*/*/*/*/*/store711");
        assert!(from_711.matches(&valid_my_store711));
        assert!(!from_711.matches(&valid_sg_web));
    }

    #[test]
    fn the_rules_at_their_edges() {
        let s = subject("order/init/1.2/icecream/udders/mango/us/web");
        assert!(pattern("order/init/1.2/**/us/*").matches(&s), "the version 1.2 US rule set");
        assert!(!pattern("order/init/1.1/**/us/*").matches(&s));
        assert!(pattern("**").matches(&s), "** matches everything");
        assert!(pattern("**/web").matches(&s));
        assert!(pattern("order/**/icecream/udders/mango/us/web").matches(&s), "** may match one level");
        assert!(!pattern("order/init/1.2/icecream/**/udders/mango/us/web/x").matches(&s));
        assert!(pattern("order/init/1.2/icecream/udders/mango/us/web/**").matches(&s), "** may match zero levels");
        assert!(!pattern("order/init/1.2/icecream/udders/mango/us/web/>").matches(&s), "> needs at least one level");
        assert!(pattern("ord*/in*/*/*/*/*/*/*").matches(&s));
        assert!(pattern("order/init/*/*/*/mango*/*/*").matches(&s), "a prefix matches the whole word too");
        assert!(!pattern("order/*").matches(&s), "* is exactly one level");
    }

    #[test]
    fn malformed_patterns_are_clear_errors() {
        assert_eq!("".parse::<Pattern>().unwrap_err(), PatternError::Empty);
        assert_eq!("order/>/init".parse::<Pattern>().unwrap_err(), PatternError::TailNotLast);
        assert_eq!("order//>".parse::<Pattern>().unwrap_err(), PatternError::EmptyToken { index: 1 });
        assert!(matches!("a*b/>".parse::<Pattern>().unwrap_err(), PatternError::MisplacedStar { .. }));
        assert!(matches!("*a/>".parse::<Pattern>().unwrap_err(), PatternError::MisplacedStar { .. }));
        assert!(matches!("Order/>".parse::<Pattern>().unwrap_err(), PatternError::BadCharacter { found: 'O', .. }));
    }
}
