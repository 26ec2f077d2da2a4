//! Message filters: RocketMQ's SQL92 property selectors (`a > 5 AND b = 'x'`), compiled once
//! and evaluated against a message's properties, and [`MessageFilter`], the two-step check the
//! store applies while reading a queue (tag hash on the consume-queue entry, then optionally the
//! stored record's properties). Pure functions over strings: no I/O, no knowledge of the store.
//!
//! The language is RocketMQ's subset: `= <> > >= < <=`, `AND`/`OR`/`NOT` and parentheses,
//! `IS [NOT] NULL`, `[NOT] BETWEEN x AND y`, `[NOT] IN ('a', 'b')`, `TRUE`/`FALSE`, and the 5.x
//! `[NOT] CONTAINS`/`STARTSWITH`/`ENDSWITH 'text'`. Evaluation is three-valued: a comparison
//! with a missing property is unknown, and only a filter that is TRUE matches.

mod eval;
mod lexer;
mod parser;

pub use eval::{CmpOp, Expr, Literal, Operand, TextOp};

/// The subscription `expressionType` of tag expressions (`TagA || TagB`).
pub const EXPRESSION_TYPE_TAG: &str = "TAG";
/// The subscription `expressionType` of SQL92 property filters.
pub const EXPRESSION_TYPE_SQL92: &str = "SQL92";

/// Why an expression does not compile. `column` is 1-based, in characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("syntax error at column {column}: expected {expected}, found {found}")]
    Syntax {
        column: usize,
        expected: String,
        found: String,
    },
    #[error("invalid expression at column {column}: {reason}")]
    Invalid { column: usize, reason: String },
}

impl FilterError {
    pub(crate) fn syntax(
        column: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        FilterError::Syntax {
            column,
            expected: expected.into(),
            found: found.into(),
        }
    }

    pub(crate) fn invalid(column: usize, reason: impl Into<String>) -> Self {
        FilterError::Invalid {
            column,
            reason: reason.into(),
        }
    }

    pub fn column(&self) -> usize {
        match self {
            FilterError::Syntax { column, .. } | FilterError::Invalid { column, .. } => *column,
        }
    }
}

/// A compiled SQL92 filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql92Filter {
    expression: String,
    root: Expr,
}

impl Sql92Filter {
    pub fn compile(expression: &str) -> Result<Sql92Filter, FilterError> {
        let root = parser::parse(expression)?;
        Ok(Sql92Filter {
            expression: expression.to_owned(),
            root,
        })
    }

    /// The expression as the subscriber wrote it.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn root(&self) -> &Expr {
        &self.root
    }

    /// Whether a message whose property `name` is `property(name)` passes.
    pub fn matches<'m>(&self, property: impl Fn(&str) -> Option<&'m str>) -> bool {
        self.root.evaluate(&property) == Some(true)
    }

    /// [`matches`](Self::matches) over properties in their stored form (`k\u{1}v\u{2}…`).
    pub fn matches_encoded(&self, properties: &[u8]) -> bool {
        self.matches(|name| encoded_property(properties, name))
    }
}

/// One property of the stored properties string; an empty value counts as absent, as in
/// RocketMQ's decoder. Non-UTF-8 values are absent too: no filter can compare them.
pub fn encoded_property<'a>(properties: &'a [u8], name: &str) -> Option<&'a str> {
    crate::properties::find_encoded(properties, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// What a reader of a queue keeps: first the tag hash stored in the consume-queue entry is
/// checked, and only for entries that pass, when [`needs_properties`](Self::needs_properties),
/// the properties of the stored record.
pub trait MessageFilter {
    fn matches_tags_code(&self, tags_code: i64) -> bool;

    /// Whether [`matches_properties`](Self::matches_properties) must be asked at all (reading
    /// the record costs a commit-log access per entry).
    fn needs_properties(&self) -> bool {
        false
    }

    /// `properties` in their stored form (`k\u{1}v\u{2}…`).
    fn matches_properties(&self, _properties: &[u8]) -> bool {
        true
    }
}

/// A plain function of the tag hash is a filter without a property check.
impl<F: Fn(i64) -> bool> MessageFilter for F {
    fn matches_tags_code(&self, tags_code: i64) -> bool {
        self(tags_code)
    }
}

#[cfg(test)]
mod tests;
