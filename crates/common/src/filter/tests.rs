use std::collections::HashMap;

use proptest::prelude::*;

use super::*;

fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn matches(expression: &str, message: &HashMap<String, String>) -> bool {
    Sql92Filter::compile(expression)
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .matches(|name| message.get(name).map(String::as_str))
}

#[test]
fn truth_table_of_the_supported_predicates() {
    let m = props(&[
        ("a", "7"),
        ("b", "x"),
        ("d", "2.5"),
        ("neg", "-3"),
        ("TAGS", "TagA"),
        ("flag", "TRUE"),
        ("word", "hello world"),
        ("nan", "abc"),
    ]);
    let table: &[(&str, bool)] = &[
        ("a > 5", true),
        ("a > 7", false),
        ("a >= 7", true),
        ("a < 7.5", true),
        ("a <= 6", false),
        ("a = 7", true),
        ("a = 7.0", true),
        ("a <> 7", false),
        ("a <> 8", true),
        ("7 = a", true),
        ("5 < a", true),
        ("d > 2", true),
        ("d = 2.5", true),
        ("d < 2.4", false),
        ("neg < -2", true),
        ("neg = -3L", true),
        ("a > neg", true),
        ("b = 'x'", true),
        ("b = 'X'", false),
        ("b <> 'y'", true),
        ("a = '7'", true),
        ("a = '7.0'", false),
        ("flag = TRUE", true),
        ("flag = FALSE", false),
        ("TAGS = 'TagA'", true),
        ("a > 5 AND b = 'x'", true),
        ("a > 5 AND b = 'y'", false),
        ("a > 50 OR b = 'x'", true),
        ("NOT a > 5", false),
        ("NOT (a > 5)", false),
        ("NOT b = 'y'", true),
        ("c IS NULL", true),
        ("a IS NULL", false),
        ("c IS NOT NULL", false),
        ("b IS NOT NULL", true),
        ("a BETWEEN 2 AND 7", true),
        ("a BETWEEN 2 AND 4", false),
        ("a BETWEEN 7.0 AND 7.0", true),
        ("a NOT BETWEEN 2 AND 4", true),
        ("a NOT BETWEEN 2 AND 7", false),
        ("d BETWEEN 2 AND 3", true),
        ("b IN ('x', 'y')", true),
        ("b IN ('y')", false),
        ("b NOT IN ('y', 'z')", true),
        ("b NOT IN ('x')", false),
        ("a IN ('7')", true),
        ("word CONTAINS 'lo w'", true),
        ("word CONTAINS 'bye'", false),
        ("word NOT CONTAINS 'bye'", true),
        ("word STARTSWITH 'hell'", true),
        ("word NOT STARTSWITH 'hell'", false),
        ("word ENDSWITH 'world'", true),
        ("word ENDSWITH 'hello'", false),
        ("word NOT ENDSWITH 'hello'", true),
        ("word CONTAINS ''", false),
        ("TRUE", true),
        ("FALSE", false),
        ("true and not false", true),
        (
            "a > 5 -- the threshold\n AND /* and the kind */ b = 'x'",
            true,
        ),
        // A value that is not a number makes a numeric comparison unknown, not an error.
        ("nan > 5", false),
        ("NOT (nan > 5)", false),
        ("nan = 5", false),
        ("nan > 5 OR b = 'x'", true),
    ];
    for (expression, expected) in table {
        assert_eq!(matches(expression, &m), *expected, "{expression}");
    }
}

#[test]
fn a_missing_property_matches_no_comparison_either_way() {
    let m = props(&[("b", "x")]);
    for expression in [
        "c > 5",
        "c <= 5",
        "c = 'x'",
        "c <> 'x'",
        "NOT (c = 'x')",
        "NOT c > 5",
        "c BETWEEN 1 AND 2",
        "c NOT BETWEEN 1 AND 2",
        "c IN ('x')",
        "c NOT IN ('x')",
        "c CONTAINS 'x'",
        "c NOT CONTAINS 'x'",
        "NOT (c CONTAINS 'x')",
        "c > 5 AND b = 'x'",
    ] {
        assert!(!matches(expression, &m), "{expression}");
    }
    // UNKNOWN OR TRUE is TRUE; UNKNOWN AND FALSE is FALSE (so NOT of it is TRUE).
    assert!(matches("c > 5 OR b = 'x'", &m));
    assert!(matches("NOT (c > 5 AND b = 'y')", &m));
}

#[test]
fn keywords_are_case_insensitive_and_properties_are_not() {
    let m = props(&[("Color", "red")]);
    assert!(matches("Color in ('red') and color is null", &m));
    assert!(matches(
        "Color Between 1 And 2 or Color NOT in ('blue')",
        &m
    ));
}

#[test]
fn strings_escape_quotes_by_doubling() {
    let m = props(&[("s", "it's")]);
    assert!(matches("s = 'it''s'", &m));
}

fn error(expression: &str) -> FilterError {
    match Sql92Filter::compile(expression) {
        Ok(f) => panic!("{expression} compiled to {:?}", f.root()),
        Err(e) => e,
    }
}

#[test]
fn bad_expressions_say_where_and_what_was_expected() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "",
            1,
            "expected a property, a literal, NOT or `(`, found end of expression",
        ),
        ("a >", 4, "found end of expression"),
        ("a > 5 AND", 10, "expected a property, a literal"),
        ("a >> 5", 4, "found `>`"),
        ("(a > 5", 7, "expected `)`, AND or OR"),
        (
            "a > 5)",
            6,
            "expected AND, OR or the end of the expression, found `)`",
        ),
        ("a = 'x", 5, "a closing `'`"),
        ("a", 2, "expected a comparison (=, <>"),
        (
            "a NOT LIKE 'x'",
            7,
            "BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT",
        ),
        ("a IS 5", 6, "expected NULL or NOT NULL, found number 5"),
        ("a IN ()", 7, "a string literal for IN"),
        ("a IN (1, 2)", 7, "a string literal for IN, found number 1"),
        ("a IN ('x' 'y')", 11, "`,` or `)` closing the IN list"),
        ("a BETWEEN 1 OR 2", 13, "AND between the bounds of BETWEEN"),
        ("a CONTAINS 5", 12, "a string literal for CONTAINS"),
        ("a = #", 5, "found character `#`"),
        ("a = 007", 5, "without leading zeros"),
        ("a > -b", 6, "a number after `-`"),
        // Semantic checks RocketMQ makes at compile time.
        ("a > 'x'", 5, "'x' cannot be compared with >"),
        ("TRUE <= a", 1, "TRUE cannot be compared with <="),
        (
            "a BETWEEN 'a' AND 'z'",
            11,
            "cannot be compared with BETWEEN",
        ),
        (
            "a BETWEEN 5 AND 2",
            11,
            "low bound of BETWEEN (5) is greater than the high bound (2)",
        ),
        ("'x' IN ('x')", 1, "IN applies to a property"),
        ("a = NULL", 5, "IS NULL"),
        (
            "a = 99999999999999999999",
            5,
            "does not fit in a 64-bit integer",
        ),
    ];
    for (expression, column, text) in cases {
        let e = error(expression);
        assert_eq!(e.column(), *column, "{expression}: {e}");
        assert!(e.to_string().contains(text), "{expression}: {e}");
    }
}

#[test]
fn encoded_properties_are_read_in_place() {
    let encoded = b"a\x017\x02b\x01x\x02empty\x01\x02TAGS\x01TagA\x02";
    assert_eq!(encoded_property(encoded, "a"), Some("7"));
    assert_eq!(encoded_property(encoded, "TAGS"), Some("TagA"));
    assert_eq!(encoded_property(encoded, "empty"), None);
    assert_eq!(encoded_property(encoded, "c"), None);
    let f = Sql92Filter::compile("a > 5 AND b = 'x' AND TAGS = 'TagA' AND empty IS NULL").unwrap();
    assert!(f.matches_encoded(encoded));
    assert!(!f.matches_encoded(b"a\x014\x02b\x01x"));
}

/// A boolean formula over three atoms whose truth is known: TRUE, FALSE and UNKNOWN.
#[derive(Debug, Clone)]
enum Formula {
    Atom(u8),
    Not(Box<Formula>),
    And(Box<Formula>, Box<Formula>),
    Or(Box<Formula>, Box<Formula>),
}

const ATOMS: [&str; 3] = ["t = 1", "t = 2", "missing = 1"];

fn formula() -> impl Strategy<Value = Formula> {
    (0u8..3)
        .prop_map(Formula::Atom)
        .prop_recursive(5, 40, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|f| Formula::Not(Box::new(f))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Formula::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| Formula::Or(Box::new(a), Box::new(b))),
            ]
        })
}

fn precedence(f: &Formula) -> u8 {
    match f {
        Formula::Or(..) => 1,
        Formula::And(..) => 2,
        Formula::Not(_) => 3,
        Formula::Atom(_) => 4,
    }
}

/// Writes the formula with only the parentheses SQL precedence needs.
fn render(f: &Formula, min_precedence: u8) -> String {
    let text = match f {
        Formula::Atom(i) => ATOMS[*i as usize].to_owned(),
        Formula::Not(a) => format!("NOT {}", render(a, 3)),
        Formula::And(a, b) => format!("{} AND {}", render(a, 2), render(b, 3)),
        Formula::Or(a, b) => format!("{} OR {}", render(a, 1), render(b, 2)),
    };
    if precedence(f) < min_precedence {
        format!("({text})")
    } else {
        text
    }
}

fn truth(f: &Formula) -> Option<bool> {
    match f {
        Formula::Atom(0) => Some(true),
        Formula::Atom(1) => Some(false),
        Formula::Atom(_) => None,
        Formula::Not(a) => truth(a).map(|b| !b),
        Formula::And(a, b) => match (truth(a), truth(b)) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        },
        Formula::Or(a, b) => match (truth(a), truth(b)) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        },
    }
}

fn shape(f: &Formula) -> String {
    match f {
        Formula::Atom(i) => format!("{i}"),
        Formula::Not(a) => format!("!{}", shape(a)),
        Formula::And(a, b) => format!("&({},{})", shape(a), shape(b)),
        Formula::Or(a, b) => format!("|({},{})", shape(a), shape(b)),
    }
}

fn parsed_shape(e: &Expr) -> String {
    match e {
        Expr::Compare {
            left: Operand::Property(p),
            right: Operand::Literal(Literal::Long(n)),
            ..
        } => match (p.as_str(), n) {
            ("t", 1) => "0".to_owned(),
            ("t", 2) => "1".to_owned(),
            _ => "2".to_owned(),
        },
        Expr::Not(a) => format!("!{}", parsed_shape(a)),
        Expr::And(a, b) => format!("&({},{})", parsed_shape(a), parsed_shape(b)),
        Expr::Or(a, b) => format!("|({},{})", parsed_shape(a), parsed_shape(b)),
        other => panic!("unexpected node {other:?}"),
    }
}

proptest! {
    #[test]
    fn precedence_follows_sql(f in formula()) {
        let text = render(&f, 0);
        let compiled = Sql92Filter::compile(&text).unwrap();
        prop_assert_eq!(parsed_shape(compiled.root()), shape(&f), "{}", text);
        let message = props(&[("t", "1")]);
        let got = compiled.root().evaluate(&|name: &str| message.get(name).map(String::as_str));
        prop_assert_eq!(got, truth(&f), "{}", text);
    }

    #[test]
    fn compiling_never_panics(text in "[a-z0-9 '()<>=!.,+-]{0,40}|(a|NOT|AND|OR|IN|IS|NULL|BETWEEN|'x'|1|\\(|\\)|=|>| )*") {
        let _ = Sql92Filter::compile(&text);
    }
}
