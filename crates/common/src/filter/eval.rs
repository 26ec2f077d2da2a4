//! The compiled form of a SQL92 filter and its three-valued evaluation: `None` is SQL's
//! UNKNOWN (a missing property, or a value that is not a number where one is compared as a
//! number). Property values are strings; they are read as numbers when compared with numbers.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Long(i64),
    Double(f64),
    Str(String),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Property(String),
    Literal(Literal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
        }
    }

    pub fn is_ordering(self) -> bool {
        !matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(bool),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare {
        op: CmpOp,
        left: Operand,
        right: Operand,
    },
    IsNull {
        operand: Operand,
        negated: bool,
    },
    Between {
        operand: Operand,
        low: Operand,
        high: Operand,
        negated: bool,
    },
    In {
        property: String,
        values: Vec<String>,
        negated: bool,
    },
    Text {
        op: TextOp,
        operand: Operand,
        pattern: String,
        negated: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Str(&'a str),
    Long(i64),
    Double(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy)]
enum Number {
    Long(i64),
    Double(f64),
}

impl Number {
    fn of(value: Value<'_>) -> Option<Number> {
        match value {
            Value::Long(n) => Some(Number::Long(n)),
            Value::Double(n) => Some(Number::Double(n)),
            Value::Str(s) => match s.parse::<i64>() {
                Ok(n) => Some(Number::Long(n)),
                Err(_) => s.trim().parse::<f64>().ok().map(Number::Double),
            },
            Value::Bool(_) => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Long(n) => n as f64,
            Number::Double(n) => n,
        }
    }

    fn compare(self, other: Number) -> Option<Ordering> {
        match (self, other) {
            (Number::Long(a), Number::Long(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

fn and(a: Option<bool>, b: impl FnOnce() -> Option<bool>) -> Option<bool> {
    if a == Some(false) {
        return Some(false);
    }
    match (a, b()) {
        (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or(a: Option<bool>, b: impl FnOnce() -> Option<bool>) -> Option<bool> {
    if a == Some(true) {
        return Some(true);
    }
    match (a, b()) {
        (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

impl Operand {
    fn value<'v, 'm: 'v>(
        &'v self,
        property: &dyn Fn(&str) -> Option<&'m str>,
    ) -> Option<Value<'v>> {
        match self {
            Operand::Property(name) => property(name).map(Value::Str),
            Operand::Literal(Literal::Long(n)) => Some(Value::Long(*n)),
            Operand::Literal(Literal::Double(n)) => Some(Value::Double(*n)),
            Operand::Literal(Literal::Str(s)) => Some(Value::Str(s)),
            Operand::Literal(Literal::Bool(b)) => Some(Value::Bool(*b)),
        }
    }
}

/// `=` between two present values. Strings compare as text with strings, as numbers with
/// numbers, and as booleans (`true` in any case) with booleans; a string that is not a number
/// makes a comparison with a number unknown.
fn equal(left: Value<'_>, right: Value<'_>) -> Option<bool> {
    match (left, right) {
        (Value::Str(a), Value::Str(b)) => Some(a == b),
        (Value::Bool(a), Value::Bool(b)) => Some(a == b),
        (Value::Str(s), Value::Bool(b)) | (Value::Bool(b), Value::Str(s)) => {
            Some(s.eq_ignore_ascii_case("true") == b)
        }
        (Value::Bool(_), _) | (_, Value::Bool(_)) => Some(false),
        (a, b) => Some(Number::of(a)?.compare(Number::of(b)?)? == Ordering::Equal),
    }
}

/// `< <= > >=` order numbers only: strings are read as numbers, anything else is unknown.
fn order(left: Value<'_>, right: Value<'_>) -> Option<Ordering> {
    Number::of(left)?.compare(Number::of(right)?)
}

impl Expr {
    /// The filter's truth for one message: `Some(true)` matches, `Some(false)` does not,
    /// `None` is UNKNOWN (which does not match either).
    pub fn evaluate<'m>(&self, property: &dyn Fn(&str) -> Option<&'m str>) -> Option<bool> {
        match self {
            Expr::Const(b) => Some(*b),
            Expr::Not(e) => e.evaluate(property).map(|b| !b),
            Expr::And(a, b) => and(a.evaluate(property), || b.evaluate(property)),
            Expr::Or(a, b) => or(a.evaluate(property), || b.evaluate(property)),
            Expr::Compare { op, left, right } => {
                let l = left.value(property)?;
                let r = right.value(property)?;
                match op {
                    CmpOp::Eq => equal(l, r),
                    CmpOp::Ne => equal(l, r).map(|b| !b),
                    CmpOp::Gt => order(l, r).map(Ordering::is_gt),
                    CmpOp::Ge => order(l, r).map(Ordering::is_ge),
                    CmpOp::Lt => order(l, r).map(Ordering::is_lt),
                    CmpOp::Le => order(l, r).map(Ordering::is_le),
                }
            }
            Expr::IsNull { operand, negated } => {
                Some(operand.value(property).is_none() != *negated)
            }
            Expr::Between {
                operand,
                low,
                high,
                negated,
            } => {
                let v = operand.value(property)?;
                let above_low = low.value(property).and_then(|l| order(v, l));
                let below_high = high.value(property).and_then(|h| order(v, h));
                if *negated {
                    or(above_low.map(Ordering::is_lt), || {
                        below_high.map(Ordering::is_gt)
                    })
                } else {
                    and(above_low.map(Ordering::is_ge), || {
                        below_high.map(Ordering::is_le)
                    })
                }
            }
            Expr::In {
                property: name,
                values,
                negated,
            } => {
                let v = property(name)?;
                Some(values.iter().any(|x| x == v) != *negated)
            }
            Expr::Text {
                op,
                operand,
                pattern,
                negated,
            } => {
                let Value::Str(s) = operand.value(property)? else {
                    return Some(false);
                };
                if pattern.is_empty() {
                    return Some(false);
                }
                let found = match op {
                    TextOp::Contains => s.contains(pattern.as_str()),
                    TextOp::StartsWith => s.starts_with(pattern.as_str()),
                    TextOp::EndsWith => s.ends_with(pattern.as_str()),
                };
                Some(found != *negated)
            }
        }
    }
}
