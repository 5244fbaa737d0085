//! The wildcard matcher against a naive reference: each pattern turned into a
//! regular expression over `/level/level/…`, token by token.

use proptest::prelude::*;
use regex::Regex;
use udders_contracts::{Pattern, Subject};

/// The reference: `*` = one level, `abc*` = one level starting with abc,
/// `>` = one or more levels, `**` = zero or more levels, literal = itself.
fn reference(pattern: &str, subject: &str) -> bool {
    let mut re = String::from("^");
    for token in pattern.split('/') {
        re.push_str(&match token {
            "*" => "/[^/]+".to_owned(),
            ">" => "(/[^/]+)+".to_owned(),
            "**" => "(/[^/]+)*".to_owned(),
            t if t.ends_with('*') => format!("/{}[^/]*", regex::escape(&t[..t.len() - 1])),
            t => format!("/{}", regex::escape(t)),
        });
    }
    re.push('$');
    Regex::new(&re).unwrap().is_match(&format!("/{subject}"))
}

const WORDS: [&str; 6] = ["order", "init", "1.1", "sg", "mango", "web"];

fn level() -> impl Strategy<Value = String> {
    prop_oneof![prop::sample::select(WORDS.to_vec()).prop_map(str::to_owned), "[a-z0-9]{1,3}",]
}

fn subject() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 8).prop_map(|l| l.join("/"))
}

fn pattern() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        3 => level(),
        2 => Just("*".to_owned()),
        2 => Just("**".to_owned()),
        1 => level().prop_map(|l| format!("{}*", &l[..l.len().min(2)])),
    ];
    (prop::collection::vec(token, 1..10), any::<bool>()).prop_map(|(mut tokens, tail)| {
        if tail {
            tokens.push(">".to_owned());
        }
        tokens.join("/")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn the_matcher_agrees_with_the_reference(p in pattern(), s in subject()) {
        let parsed: Pattern = p.parse().unwrap();
        let subject: Subject = s.parse().unwrap();
        prop_assert_eq!(parsed.matches(&subject), reference(&p, &s), "pattern {} subject {}", p, s);
    }

    #[test]
    fn a_pattern_built_from_a_subject_matches_it(s in subject(), cut in 0usize..8, kind in 0u8..4) {
        let levels: Vec<&str> = s.split('/').collect();
        let p = match kind {
            0 => format!("{}/>", levels[..cut.max(1)].join("/")),
            1 => format!("**/{}", levels[cut..].join("/")),
            2 => levels.iter().enumerate().map(|(i, l)| if i == cut { "*" } else { l }).collect::<Vec<_>>().join("/"),
            _ => s.clone(),
        };
        let p = if kind == 0 && cut.max(1) == 8 { s.clone() } else { p };
        prop_assert!(p.parse::<Pattern>().unwrap().matches(&s.parse().unwrap()), "{} should match {}", p, s);
    }
}
